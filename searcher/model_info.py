"""What an index records about the model that embedded it (ModelInfo: name, width, window, prompts, Matryoshka
dims, a fingerprint of its weights; CosineMap, its cosines on the calibrated scale), and the convention every layer
shares: vectors are float32 unit rows. Imports no model runtime: the store, the cache and the generation writer read
and write it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

FINGERPRINT_TEXT = "searcher model fingerprint: the quick brown fox jumps over the lazy dog"
FINGERPRINT_DIMS = 16
FINGERPRINT_TOLERANCE = 1e-3  # torch thread counts and the ONNX export differ by ~1e-6; other models by far more


@dataclass(frozen=True)
class ModelInfo:
    """What the index records about the model that embedded it."""

    name: str  # canonical name: a hub id, or an absolute path for local models
    dim: int
    max_seq_length: int
    query_prompt: str
    document_prompt: str
    matryoshka_dims: tuple[int, ...]  # dims the model was trained to truncate to; () if unknown
    fingerprint: tuple[float, ...]  # first dims of the embedding of FINGERPRINT_TEXT

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "matryoshka_dims": list(self.matryoshka_dims),
            "fingerprint": list(self.fingerprint),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelInfo:
        return cls(
            name=d["name"],
            dim=int(d["dim"]),
            max_seq_length=int(d["max_seq_length"]),
            query_prompt=d.get("query_prompt", ""),
            document_prompt=d.get("document_prompt", ""),
            matryoshka_dims=tuple(d.get("matryoshka_dims", ())),
            fingerprint=tuple(d.get("fingerprint", ())),
        )

    def same_weights(self, other: ModelInfo) -> bool:
        """Whether two loaded models embed alike (same width and the same fingerprint vector)."""
        if self.dim != other.dim or len(self.fingerprint) != len(other.fingerprint):
            return False
        diff = np.abs(np.asarray(self.fingerprint) - np.asarray(other.fingerprint))
        return bool(diff.max(initial=0.0) < FINGERPRINT_TOLERANCE)

    def weights_id(self) -> str:
        """A short name for these weights, for directories that belong to one model (eval caches, exports)."""
        return hashlib.sha256(repr(self.fingerprint).encode()).hexdigest()[:10]


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """float32, C-contiguous rows of unit length (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class CosineMap:
    """cosine' = offset + slope x cosine: a model's cosines on the calibration's reference model's scale
    (calibration.py says why, and fits it)."""

    slope: float = 1.0
    offset: float = 0.0
    fitted_on: int = 0  # pseudo-queries behind the fit

    def __call__(self, cosine: np.ndarray | float) -> np.ndarray:
        return self.offset + self.slope * np.asarray(cosine, np.float64)

    def weight(self, w: float) -> float:
        """The fusion weight on the model's own cosines that ranks as `w` does on the mapped ones:
        w x (offset + slope x cos) + (1 - w) x coverage orders candidates as w' x cos + (1 - w') x coverage."""
        a = w * self.slope
        return a / (a + 1.0 - w) if a + 1.0 - w > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"slope": self.slope, "offset": self.offset, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: Any) -> CosineMap | None:
        """Inverse of `to_dict`; None for anything else (an index made before maps existed has none)."""
        try:
            m = cls(float(d["slope"]), float(d["offset"]), int(d.get("fitted_on", 0)))
        except (TypeError, KeyError, ValueError):
            return None
        return m if math.isfinite(m.slope) and math.isfinite(m.offset) and m.slope > 0 else None


IDENTITY = CosineMap()
