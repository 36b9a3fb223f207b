"""A deterministic fake encoder: hashed bag of words, whitespace/punctuation tokens, no torch.

Importable on its own (the kill tests run it in a subprocess). Vectors are unit length; texts sharing words
have a positive inner product, so searches behave sensibly and can be reasoned about.
"""

from __future__ import annotations

import hashlib
import re
import time

import numpy as np

from searcher.encoder import ModelInfo, fingerprint

_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEncoder:
    def __init__(
        self,
        *,
        dim: int = 96,
        max_seq_length: int = 64,
        name: str = "fake-hash-encoder",
        salt: str = "",
        delay: float = 0.0,
    ) -> None:
        self.dim, self.max_seq_length, self.salt, self.delay = dim, max_seq_length, salt, delay
        self.embedded: list[str] = []  # every document text ever embedded, in order
        self.info = ModelInfo(
            name=name,
            dim=dim,
            max_seq_length=max_seq_length,
            query_prompt="",
            document_prompt="",
            matryoshka_dims=(),
            fingerprint=fingerprint(self._encode),
        )

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def input_lengths(self, texts: list[str]) -> list[int]:
        return [len(self.token_spans(t)) + 2 for t in texts]  # + [CLS] and [SEP]

    def _encode(self, texts: list[str]) -> np.ndarray:
        x = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = [text[a:b].lower() for a, b in self.token_spans(text)][: self.max_seq_length - 2]
            for w in words:
                h = hashlib.md5((self.salt + w).encode()).digest()
                x[i, int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] % 2 else -1.0
            if not words:
                x[i, 0] = 1.0
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def encode_documents(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        self.embedded.extend(texts)
        return self._encode(texts)

    def encode_queries(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        return self._encode(texts)
