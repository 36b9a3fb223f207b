"""An append-only, crash-safe cache of embeddings keyed by text hash, for one model.

`searcher index` writes every batch it embeds here before anything else, so a run killed at any moment
(SIGKILL included) loses at most the batch in flight: the next run finds the vectors and does not embed them
again. `searcher eval` keeps one per model so a second evaluation embeds nothing.

Layout: `model.json` (the model's name, width and fingerprint; a cache made by another model is discarded)
and shards `NNNNNN.npy` (float32 rows) + `NNNNNN.keys` (a `#kind NAME` line, then one hex key per line). A shard
counts only once its `.keys` file exists, and that file is renamed into place last, so a half-written shard is never
read.

Vectors are keyed by the kind of path that made them as well as by text: "float" (float32, or bf16 and the float
ONNX graph, which pass the float32 bar: encoder_choice.MIN_COSINE) or "int8" (the int8 ONNX graph). A run on a
float path never reuses int8 vectors; an int8 run takes either (float is the reference it approximates). Shards
written before kinds were recorded count as int8, the conservative reading.
Left out: eviction and size limits; delete the directory to reclaim space.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import orjson

from .atomic import write_atomic
from .model_info import ModelInfo

FLOAT, INT8 = "float", "int8"
KINDS = (FLOAT, INT8)  # in order of preference when a text has both


def kind_of(path: str) -> str:
    """The kind of vectors an embedding path makes ("torch", "torch-bf16", "onnx" -> float; "onnx-int8" -> int8)."""
    return INT8 if "int8" in path else FLOAT


def accepted(kind: str) -> tuple[str, ...]:
    """The kinds of cached vectors a run on `kind` may reuse."""
    return KINDS if kind == INT8 else (FLOAT,)


def text_key(text: str) -> str:
    """The cache key of one encoder input."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    def __init__(self, directory: Path, model: ModelInfo) -> None:
        self.directory = Path(directory)
        self.model = model
        self._where: dict[str, dict[str, tuple[int, int]]] = {}  # key -> {kind: (shard number, row)}
        self._shards: dict[int, np.ndarray] = {}
        header = self.directory / "model.json"
        if header.is_file() and not self._same_model(header):
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not header.is_file():
            write_atomic(header, orjson.dumps(model.to_dict()))
        numbers = [0]
        for keys_file in sorted(self.directory.glob("*.keys")):
            number = int(keys_file.stem)
            numbers.append(number)
            lines = keys_file.read_text().split("\n")
            kind = INT8  # no header: written before kinds were recorded
            if lines and lines[0].startswith("#kind "):
                kind = lines.pop(0).split()[1]
            for row, key in enumerate(k for k in lines if k):
                self._where.setdefault(key, {})[kind] = (number, row)
        self._next = 1 + max(numbers)

    def _same_model(self, header: Path) -> bool:
        try:
            return ModelInfo.from_dict(orjson.loads(header.read_bytes())).same_weights(self.model)
        except (ValueError, KeyError):
            return False

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def has(self, key: str, kinds: tuple[str, ...] = KINDS) -> bool:
        """Whether vectors of `key` made by one of `kinds` are here."""
        return any(kind in self._where.get(key, ()) for kind in kinds)

    def add(self, keys: list[str], vectors: np.ndarray, kind: str = FLOAT) -> None:
        """Store one batch made by a path of `kind`; durable once this returns."""
        assert kind in KINDS
        assert len(keys) == len(vectors) and vectors.dtype == np.float32
        number = self._next
        self._next += 1
        stem = self.directory / f"{number:06d}"
        vectors_path = stem.with_suffix(".npy")
        with open(vectors_path, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        write_atomic(stem.with_suffix(".keys"), "\n".join([f"#kind {kind}", *keys]).encode())
        for row, key in enumerate(keys):
            self._where.setdefault(key, {})[kind] = (number, row)

    def get(self, keys: list[str]) -> np.ndarray:
        """The vectors of `keys`, all of which must be present, as an (n, d) float32 array (a text's float vectors
        when it has both kinds)."""
        out = np.empty((len(keys), self.model.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            made = self._where[key]
            number, row = next(made[kind] for kind in KINDS if kind in made)
            shard = self._shards.get(number)
            if shard is None:
                shard = self._shards[number] = np.load(
                    self.directory / f"{number:06d}.npy", mmap_mode="r", allow_pickle=False
                )
            out[i] = shard[row]
        return out

    def clear(self) -> None:
        self._shards.clear()
        self._where.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
