"""Indexing on a Ray cluster: `searcher index --ray [ADDRESS]`.

One actor per worker holds the model for the whole run (a GPU each where the cluster has them, else
`cpus_per_worker` CPUs with torch limited to as many threads) and does the two heavy steps: parsing and chunking
files (the driver reads their bytes, as it must to hash them, and sends them, so workers need no shared
filesystem), and embedding chunks. `ray.util.ActorPool` spreads batches over the actors and returns results in
order, so the index is the one the local path builds: the same chunks, and the same vectors - the model in
float32, or under bfloat16 autocast on a CPU with native bf16 where that is faster and agrees with float32
(cosine >= encoder_choice.MIN_COSINE on each text of the worker's first batch, as the local path measures). The driver
keeps scanning, diffing and writing; each window of vectors is saved to the run's embedding cache as it
arrives, so a killed run keeps what the cluster finished.

Left out: shipping searcher to the workers (a cluster's nodes need it installed, or a `runtime_env`:
docs/scale-out.md).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import SearcherError, install_hint

log = logging.getLogger(__name__)
WINDOW = 4096  # texts embedded per round of batches; each round is saved before the next is sent
FILES_PER_TASK = 8  # files parsed and chunked per actor call
FILE_WINDOW = (256, 64 << 20)  # files (count, bytes) the driver reads and holds before a round of parsing


def _ray():
    try:
        import ray
    except ImportError:
        raise SearcherError(f"indexing on Ray needs the ray extra: {install_hint('ray')}") from None
    return ray


class _Worker:
    """A Ray actor: the model, loaded once per run."""

    def __init__(self, model: str, threads: int) -> None:
        import torch

        from .encoder import SentenceTransformerEncoder

        torch.set_num_threads(max(1, threads))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.encoder = SentenceTransformerEncoder(model, device=self.device)
        self.documents: Any = None  # the encoder documents are embedded with, chosen on the first batch (_choose)
        self.chosen = "torch"

    def info(self):
        return self.encoder.info

    def chunk(self, items: list[tuple[str, bytes, str]], chunk_tokens: int, overlap_tokens: int) -> list:
        from pathlib import Path

        from .chunking import chunk_document, parse_and_chunk

        def chunker(doc):
            return chunk_document(doc, self.encoder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)

        return [parse_and_chunk(Path(path), data, doc_id, chunker) for path, data, doc_id in items]

    def embed(self, texts: list[str], batch_size: int) -> tuple[np.ndarray, str]:
        """(vectors, the path that embedded them)."""
        if self.documents is None:
            return self._choose(texts, batch_size), self.chosen
        return self.documents.encode_documents(texts, batch_size=batch_size), self.chosen

    def _choose(self, texts: list[str], batch_size: int) -> np.ndarray:
        """On a CPU with native bf16, the local path's rule (encoder_choice.faster_and_close) on the first batch:
        bfloat16 autocast when it is faster and every text's vector stays close to float32's. Returns that batch's
        float32 vectors."""
        from .encoder import Bf16Encoder, cpu_has_bf16
        from .encoder_choice import faster_and_close

        self.documents = self.encoder
        started = time.perf_counter()
        x = self.encoder.encode_documents(texts, batch_size=batch_size)
        seconds = time.perf_counter() - started
        if self.device == "cpu" and cpu_has_bf16() and len(texts) >= 8:
            bf16 = Bf16Encoder(self.encoder)
            bf16.encode_documents(texts[:4], batch_size=batch_size)  # warm-up
            started = time.perf_counter()
            y = bf16.encode_documents(texts, batch_size=batch_size)
            if faster_and_close(seconds / (time.perf_counter() - started), float(np.min(np.sum(x * y, axis=1)))):
                self.documents, self.chosen = bf16, "torch-bf16"
        return x


class RayWorkers:
    """`workers` actors on the cluster at `address` ("local": start one on this machine, on 127.0.0.1, shut down
    by `close`; "auto" or "ray://host:port": join a running one). Without `workers`, one per GPU, else one per
    `cpus_per_worker` of the cluster's CPUs."""

    def __init__(
        self, model: str, address: str = "local", *, workers: int | None = None, cpus_per_worker: int = 1
    ) -> None:
        self.ray = ray = _ray()
        self.started = False
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(
                        num_cpus=os.cpu_count(),
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        log_to_driver=False,
                        configure_logging=False,
                    )
                    self.started = True
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
                raise SearcherError(
                    f"cannot start or join the Ray cluster at {address!r}: "
                    f"{str(e).strip().splitlines()[0][:200]}; pass --ray ADDRESS of a running "
                    "cluster, or --ray alone for a local one"
                ) from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        n = workers or gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker)
        actor = ray.remote(num_gpus=1, num_cpus=0)(_Worker) if gpus else ray.remote(num_cpus=cpus_per_worker)(_Worker)
        self.actors = [actor.remote(model, cpus_per_worker) for _ in range(n)]
        from ray.util import ActorPool

        self.pool = ActorPool(self.actors)
        self.paths: set[str] = set()  # how the workers embedded ("torch", "torch-bf16")

    def info(self):
        """The model's ModelInfo, as the workers loaded it."""
        return self.ray.get(self.actors[0].info.remote())

    def chunk(self, items: list[tuple[str, bytes, str]], chunk_tokens: int, overlap_tokens: int) -> list:
        """[chunking.Parsed] of files, parsed and chunked FILES_PER_TASK per call, in the order of `items`."""
        tasks = [items[a : a + FILES_PER_TASK] for a in range(0, len(items), FILES_PER_TASK)]
        out = []
        for parsed in self.pool.map(lambda a, t: a.chunk.remote(t, chunk_tokens, overlap_tokens), tasks):
            out.extend(parsed)
        return out

    def embed(self, texts: list[str], batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, vectors) for each window of `texts`, in order."""
        for start in range(0, len(texts), WINDOW):
            window = texts[start : start + WINDOW]
            batches = [window[a : a + batch_size] for a in range(0, len(window), batch_size)]
            parts = list(self.pool.map(lambda a, b: a.embed.remote(b, batch_size), batches))
            self.paths.update(path for _, path in parts)
            yield start, np.concatenate([x for x, _ in parts]).astype(np.float32, copy=False)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()
