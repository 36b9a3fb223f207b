"""A model behind an OpenAI-compatible embeddings server the user already runs (Ollama, llama.cpp's server,
text-embeddings-inference, vLLM, infinity): `--model http://HOST:PORT/v1#NAME`, the base URL, then the model's
name on that server.

`EndpointEncoder` POSTs batches to `<base>/embeddings` (`{"model": NAME, "input": [...]}`), retries a refused
connection, a timeout, 429 and 5xx a few times with backoff, and raises ModelError with one sentence when the server
is down or refuses the model. The model's width and fingerprint are read from the server's own answers, so an index
records them like any other model's, and a server that starts serving other weights under the same name is caught
(encoder.ModelInfo.same_weights).

Left out, and why: the server's tokenizer is not reachable through this API, so chunks are measured in estimated
tokens (a word piece of up to four characters, or a punctuation mark, counts as one: more than a WordPiece or BPE
tokenizer would count, so a chunk fits the server's window) and the window is ENDPOINT_MAX_TOKENS unless the URL's
fragment says `NAME@TOKENS`. No prompts: a server that wants a query instruction is given it in the query text.
Only the standard library is used (urllib): no new dependency.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import numpy as np
import orjson

from .errors import ModelError
from .model_info import FINGERPRINT_DIMS, FINGERPRINT_TEXT, ModelInfo, normalize_rows

ENDPOINT_MAX_TOKENS = 256  # the window assumed for a served model (most sentence embedders have 256 or 512)
RETRIES = 3  # after the first try: 0.5, 1 and 2 s apart
TIMEOUT_SECONDS = 60.0
BATCH = 32
_PIECE = re.compile(r"\w{1,4}|[^\w\s]")


def is_endpoint(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def parse(name: str) -> tuple[str, str, int]:
    """(base URL, model name on the server, window in tokens) of `http://HOST:PORT/v1#NAME[@TOKENS]`."""
    base, _, model = name.partition("#")
    tokens = ENDPOINT_MAX_TOKENS
    if "@" in model:
        model, _, window = model.rpartition("@")
        if not window.isdigit() or int(window) < 16:
            raise ModelError(f"{name!r}: the window after @ must be a number of tokens >= 16, e.g. {base}#{model}@512")
        tokens = int(window)
    if not model:
        raise ModelError(f"{name!r} names no model: write the server's model name after #, e.g. {base}#all-minilm")
    return base.rstrip("/"), model, tokens


class EndpointEncoder:
    """The Encoder interface over an OpenAI-compatible `/embeddings` endpoint (see the module docstring)."""

    path = "endpoint"  # the embedding path an index reports (encoder_choice.choose_document_encoder)

    def __init__(self, name: str) -> None:
        self.base, self.model, window = parse(name)
        probe = self._post([FINGERPRINT_TEXT])
        self.info = ModelInfo(
            name=name,
            dim=int(probe.shape[1]),
            max_seq_length=window,
            query_prompt="",
            document_prompt="",
            matryoshka_dims=(),
            fingerprint=tuple(round(float(v), 6) for v in probe[0][:FINGERPRINT_DIMS]),
        )

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _PIECE.finditer(text)]

    def input_lengths(self, texts: list[str]) -> list[int]:
        return [len(_PIECE.findall(t)) + 2 for t in texts]  # + the [CLS]/[SEP] a tokenizer adds

    def encode_documents(self, texts: list[str], *, batch_size: int = BATCH) -> np.ndarray:
        return self._encode(texts, batch_size)

    def encode_queries(self, texts: list[str], *, batch_size: int = BATCH) -> np.ndarray:
        return self._encode(texts, batch_size)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        if not texts:
            return np.empty((0, self.info.dim), dtype=np.float32)
        parts = [self._post(list(texts[a : a + batch_size])) for a in range(0, len(texts), batch_size)]
        return normalize_rows(np.concatenate(parts))

    def _post(self, texts: list[str]) -> np.ndarray:
        url = self.base + "/embeddings"
        body = orjson.dumps({"model": self.model, "input": texts})
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                    return self._vectors(orjson.loads(response.read()), len(texts))
            except urllib.error.HTTPError as e:
                if e.code in (429, 500, 502, 503, 504) and attempt < RETRIES:
                    time.sleep(0.5 * 2**attempt)
                    continue
                detail = e.read()[:300].decode("utf-8", "replace").strip()
                raise ModelError(
                    f"the embedding server at {self.base} refused model {self.model!r} (HTTP {e.code}: "
                    f"{detail or e.reason}); check the name after # against the server's models"
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt < RETRIES:
                    time.sleep(0.5 * 2**attempt)
                    continue
                reason = getattr(e, "reason", e)
                raise ModelError(
                    f"the embedding server at {self.base} did not answer ({reason}); start it, or pass another --model"
                ) from None
            except (orjson.JSONDecodeError, ValueError) as e:
                raise ModelError(
                    f"the embedding server at {self.base} answered something that is not an "
                    f"OpenAI-compatible embeddings response ({e})"
                ) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _vectors(answer: dict, n: int) -> np.ndarray:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != n:
            raise ValueError(f"expected {n} embeddings under 'data'")
        rows = sorted(data, key=lambda d: d.get("index", 0))
        x = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        if x.ndim != 2 or not x.shape[1]:
            raise ValueError("the embeddings are not vectors of one width")
        return x
