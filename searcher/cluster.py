"""Embedding on a Ray cluster: `searcher index --ray [ADDRESS]`.

Ray Data's `map_batches` with an actor class: each actor loads the model once and embeds the batches it is
given; the cluster's GPUs are used where it has them (one per actor), its CPUs otherwise (`cpus_per_worker`
each, with torch limited to as many threads). The driver keeps reading, chunking and writing: it sends texts,
gets float32 vectors back in the same order, and saves each window of them to the run's embedding cache, so a
killed run keeps what the cluster finished. Vectors are the model's own float32 ones (torch, no autocast), the
same the local path's measured choice must agree with (indexer.MIN_COSINE).

Left out: reading and chunking on the cluster (the driver does them; they are a small share of indexing time on
a model this size), and shipping searcher to the workers: a cluster's nodes need it installed, or a
`runtime_env` (docs/scale-out.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import numpy as np

from .errors import SearcherError

log = logging.getLogger(__name__)
WINDOW = 4096  # texts sent per Ray Data pipeline; each window's vectors are saved before the next is sent


def _ray():
    try:
        import ray
    except ImportError:
        raise SearcherError("indexing on Ray needs the ray extra: pip install 'searcher[ray]'") from None
    return ray


class _Embedder:
    """A Ray actor: one model, loaded once, embedding batches of {"i", "text"} rows."""

    def __init__(self, model: str, threads: int) -> None:
        import torch

        from .encoder import SentenceTransformerEncoder

        torch.set_num_threads(max(1, threads))
        self.encoder = SentenceTransformerEncoder(model, device="cuda" if torch.cuda.is_available() else "cpu")

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"i": batch["i"], "vector": self.encoder.encode_documents(texts, batch_size=len(texts))}


class RayEmbedder:
    """Embeds documents with `workers` actors on the cluster at `address` ("local": start a local one, on
    127.0.0.1, shut down by `close`; "auto" or "ray://host:port": join a running one)."""

    def __init__(self, model: str, address: str = "local", *, workers: int | None = None,
                 cpus_per_worker: int = 1) -> None:
        self.ray = ray = _ray()
        self.model, self.started = model, False
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                             log_to_driver=False, configure_logging=False)
                    self.started = True
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
                raise SearcherError(f"cannot start or join the Ray cluster at {address!r}: "
                                    f"{str(e).strip().splitlines()[0][:200]}") from None
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus_per_worker = cpus_per_worker
        self.workers = workers or (self.gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker))

    def embed(self, texts: list[str], batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """(start, vectors) for each window of `texts`, in order."""
        for start in range(0, len(texts), WINDOW):
            yield start, self._window(texts[start : start + WINDOW], batch_size)

    def _window(self, texts: list[str], batch_size: int) -> np.ndarray:
        ds = self.ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        out = ds.map_batches(
            _Embedder, fn_constructor_kwargs={"model": self.model, "threads": self.cpus_per_worker},
            batch_size=batch_size, concurrency=self.workers, batch_format="numpy",
            num_gpus=1 if self.gpus else 0, num_cpus=0 if self.gpus else self.cpus_per_worker)
        x = None
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            vectors = np.asarray(batch["vector"], dtype=np.float32)
            if x is None:
                x = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            x[np.asarray(batch["i"], dtype=np.int64)] = vectors
        return x

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def embed_on_ray(texts: list[str], model: str, address: str, batch_size: int,
                 save: Callable[[int, np.ndarray], None], progress: Callable[[int], None]) -> None:
    """Embed `texts` on the cluster, calling save(start, vectors) per window and progress(done) after it."""
    embedder = RayEmbedder(model, address)
    try:
        for start, x in embedder.embed(texts, batch_size):
            save(start, x)
            progress(start + len(x))
    finally:
        embedder.close()
