"""A reranker without torch: a CrossEncoder exported once to an ONNX graph (and that graph with int8 weights), run
with onnxruntime and `tokenizers`, like the bi-encoder's onnx_encoder.py.

Made on a reranker's first use on a machine (rerank.Reranker measures which path scores fastest and keeps the
choice), for a reranker that is a local directory: its graphs live in the searcher home (GRAPHS/<key>, the key
from the directory's path and its files' sizes and times, so a retrained reranker gets new ones), never in the
model's folder. A graph is kept only if its scores match the model's on PROBES (MAX_DIFF); the int8 graph, which
cannot match that closely, must order the measured pairs as the float one does (rerank.INT8_MIN_AGREEMENT).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import orjson

from .atomic import write_atomic
from .home import home
from .onnx_encoder import INT8_MODEL, cpu_session, padded, quantize_int8

GRAPHS = ".rerankers"  # in the searcher home
FORMAT_VERSION = 1
FLOAT_MODEL = "model.onnx"  # and INT8_MODEL beside it, as onnx_encoder.quantize_int8 makes it
CHOICE = "choice.json"  # the measured choice of path, per CPU (rerank.Reranker)
MAX_DIFF = 1e-3  # largest difference of an exported graph's logits from the model's on PROBES
PROBES = [
    ("how do I read a file line by line", "Use a for loop over the open file object: each iteration yields a line."),
    ("Ünïcödé façade?", "naïve résumé & 3.14 <tags>!"),
    ("a", " ".join(f"word{i} and some more ordinary text." for i in range(200))),  # longer than the window
]


class GraphError(Exception):
    """The reranker could not be exported faithfully (the caller keeps torch)."""


def graph_dir(target: str) -> Path | None:
    """Where a local reranker directory's graphs live (None for a name that is not a local directory)."""
    path = Path(target)
    if not path.is_dir():
        return None
    parts = [str(path.resolve())]
    for name in sorted(os.listdir(path)):
        if (path / name).is_file():
            stat = (path / name).stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return home() / GRAPHS / hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def export_reranker(model, out_dir: Path, reference) -> Path:
    """Export a loaded CrossEncoder to `out_dir` (its float and int8 graphs, tokenizer and metadata), complete or
    not at all. `reference(pairs)`: the model's own logits, to check the export against."""
    import torch
    from tokenizers import Tokenizer

    tokenizer = model.tokenizer
    inputs = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise GraphError(f"unsupported model inputs {tokenizer.model_input_names}")
    network = model.model.eval()

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *tensors):
            return self.network(**dict(zip(inputs, tensors))).logits[:, :1]

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter; the probe comparison below is the real check
            torch.onnx.export(
                Graph().eval(),
                tuple(torch.ones((2, 8), dtype=torch.long) for _ in inputs),
                str(tmp / FLOAT_MODEL),
                input_names=inputs,
                output_names=["logits"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in inputs} | {"logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        tk = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        tk.no_padding()
        tk.enable_truncation(max_length=int(model.max_seq_length or tokenizer.model_max_length or 512))
        tk.save(str(tmp / "tokenizer.json"))
        meta = {"format": "searcher-reranker-graph", "version": FORMAT_VERSION, "inputs": inputs}
        write_atomic(tmp / "graph.json", orjson.dumps(meta | {"pad_id": int(tokenizer.pad_token_id or 0)}))
        diff = float(np.abs(GraphScorer(tmp).logits(PROBES) - reference(PROBES)).max())
        if diff > MAX_DIFF:
            raise GraphError(f"the exported graph's scores differ from the model's by {diff:.4f}")
        quantize_int8(tmp)
    except GraphError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as e:  # noqa: BLE001 - any exporter or quantiser failure means: no graph, torch it is
        shutil.rmtree(tmp, ignore_errors=True)
        raise GraphError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


class GraphScorer:
    """A reranker's logits from its exported graph (`int8`: the int8 one); imports neither torch nor transformers."""

    def __init__(self, directory: Path, *, int8: bool = False) -> None:
        from tokenizers import Tokenizer

        meta = orjson.loads((directory / "graph.json").read_bytes())
        if meta.get("version") != FORMAT_VERSION:
            raise GraphError(f"reranker graph at {directory} has version {meta.get('version')}")
        self._inputs, self._pad_id = meta["inputs"], meta["pad_id"]
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._session = cpu_session(directory / (INT8_MODEL if int8 else FLOAT_MODEL))

    def logits(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(pairs))
        out = np.empty(len(pairs), dtype=np.float32)
        # Longest first, the least padding; ties by text, so that a set of pairs makes the same batches in any order
        # (the int8 graph quantises activations per batch: a pair's score moves a little with its batch-mates).
        order = sorted(range(len(pairs)), key=lambda i: (-len(encodings[i].ids), pairs[i][1], pairs[i][0]))
        for a in range(0, len(order), batch_size):
            rows = order[a : a + batch_size]
            arrays = padded([encodings[i] for i in rows], self._inputs, self._pad_id)
            out[rows] = self._session.run(None, arrays)[0][:, 0]
        return out
