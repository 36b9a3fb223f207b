"""A torch-free encoder: the model exported to one ONNX graph (transformer, pooling, normalisation) beside
its tokenizer.json, run with onnxruntime and `tokenizers`.

`export_onnx` (needs torch) writes the directory; `OnnxEncoder` (needs only onnxruntime, tokenizers, numpy)
reads it. An export is kept only if its vectors match sentence-transformers' on a set of probe texts
(cosine >= MIN_COSINE), so a model whose graph does not trace faithfully keeps using the torch encoder.

Directory layout: `model.onnx`, `tokenizer.json` (truncation at the model's max_seq_length, no padding) and
`encoder.json` (format version, the model's ModelInfo, the graph's input names, lower-casing, pad id, seconds the
export took), and, once an index has wanted it, `model.int8.onnx`: the graph with int8 weights (onnxruntime's
dynamic quantisation, per channel) for embedding documents only, where the measurement allows it
(encoder_choice.choose_document_encoder); queries always use the float graph. Left out: GPU providers.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson

from .atomic import write_atomic
from .machine import usable_cores
from .model_info import ModelInfo, normalize_rows

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MIN_COSINE = 0.9999
MODEL_EXPORT_DIR = "searcher-onnx"  # where `searcher finetune` leaves an export inside the model directory
PROBES = [
    "how do I read a file line by line",
    "Represent this sentence: Ünïcödé façade, naïve résumé & 3.14 <tags>!",
    "a",
    " ".join(f"word{i} and some more ordinary text." for i in range(200)),  # longer than any window: truncated
]


class ExportError(Exception):
    """The model could not be exported faithfully (the caller falls back to torch)."""


def export_onnx(encoder, out_dir: Path) -> Path:
    """Export a SentenceTransformerEncoder's model to `out_dir` (complete, or not there at all)."""
    import torch

    started = time.perf_counter()
    model = encoder.model.eval()
    modules = list(model.children())
    first = modules[0]
    tokenizer = encoder.model.tokenizer
    input_names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    if "input_ids" not in input_names or "attention_mask" not in input_names:
        raise ExportError(f"unsupported model inputs {tokenizer.model_input_names}")
    lowercase = bool(getattr(first, "do_lower_case", False))

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            features = dict(zip(input_names, tensors))
            return torch.nn.functional.normalize(self.model(features)["sentence_embedding"], dim=-1)

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names} | {"embedding": {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer chatter; the probe comparison below is the real check
            torch.onnx.export(
                Graph().eval(),
                example,
                str(tmp / "model.onnx"),
                input_names=input_names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    except Exception as e:  # noqa: BLE001 - any exporter failure means: no export, torch it is
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None

    from tokenizers import Tokenizer

    tk = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    tk.no_padding()
    tk.enable_truncation(max_length=encoder.info.max_seq_length)
    tk.save(str(tmp / "tokenizer.json"))
    meta = {
        "format": "searcher-onnx-encoder",
        "version": FORMAT_VERSION,
        "model": encoder.info.to_dict(),
        "inputs": input_names,
        "lowercase": lowercase,
        "pad_id": int(tokenizer.pad_token_id or 0),
        # what tracing and writing the graph took: quantize_int8 walks the same weights, so a build estimates
        # the int8 candidate's one-time cost from it (encoder_choice.choose_document_encoder)
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    write_atomic(tmp / "encoder.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))

    exported = OnnxEncoder(tmp)
    checks = ["encode_documents"]
    if encoder.info.query_prompt != encoder.info.document_prompt:  # else the same inputs: the same vectors
        checks.append("encode_queries")
    for encode in checks:
        ours, theirs = getattr(exported, encode)(PROBES), getattr(encoder, encode)(PROBES)
        cosine = float(np.min(np.sum(ours * theirs, axis=1)))
        if cosine < MIN_COSINE:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ExportError(f"exported vectors differ from the model's ({encode}: cosine {cosine:.6f})")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def exported_with_model(info: ModelInfo) -> Path | None:
    """The export a model directory carries (made by `searcher finetune`), if it matches the model."""
    directory = Path(info.name) / MODEL_EXPORT_DIR
    try:
        meta = orjson.loads((directory / "encoder.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    same = meta.get("version") == FORMAT_VERSION and ModelInfo.from_dict(meta["model"]).same_weights(info)
    return directory if same else None


INT8_MODEL = "model.int8.onnx"


def quantize_int8(directory: Path) -> Path:
    """The export's int8 graph (weights int8 per output channel, activations quantised on the fly), made once."""
    target = directory / INT8_MODEL
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = directory / (INT8_MODEL + ".tmp")
    before = set(os.listdir(directory))
    logging.getLogger("root").disabled = True  # the quantiser logs a "consider pre-processing" notice to root
    try:
        quantize_dynamic(str(directory / "model.onnx"), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as e:
        # subtle: the quantiser (protobuf) reports a full disk as its own error, not as an OSError, and leaves
        # its half-written files (the graph, a shape-inferred copy): take them away, and call a full disk a full
        # disk (indexer.os_error says so)
        for name in set(os.listdir(directory)) - before:
            (directory / name).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise
        if shutil.disk_usage(directory).free < 2 * (directory / "model.onnx").stat().st_size:
            raise OSError(errno.ENOSPC, "No space left on device", str(directory)) from None
        raise
    finally:
        logging.getLogger("root").disabled = False
    for name in set(os.listdir(directory)) - before - {tmp.name}:  # the quantiser's intermediate copies
        (directory / name).unlink(missing_ok=True)
    os.replace(tmp, target)
    return target


class OnnxEncoder:
    """The Encoder interface over an exported directory; imports neither torch nor transformers. `int8` runs the
    int8 graph (quantize_int8), for documents, one text per run.

    subtle: the int8 graph quantises activations dynamically, with a range taken over the whole input tensor, so
    a text's vector would depend on the other texts of its batch (and their padding): an incremental update, a
    resumed run and a clean build would then disagree. One text per run makes each vector the text's own; the
    encoder choice (encoder_choice.choose_document_encoder) times it that way, so it is chosen only where it is still
    the fastest. Runs that small keep two threads of one run waiting on each other, so the int8 graph runs one
    text per core at once, each on one thread (the same vectors, bit for bit; RESULTS.md, throughput-no-bf16)."""

    def __init__(self, directory: Path | str, *, int8: bool = False) -> None:
        from tokenizers import Tokenizer

        directory = Path(directory)
        meta = orjson.loads((directory / "encoder.json").read_bytes())
        if meta.get("version") != FORMAT_VERSION:
            raise ExportError(f"exported encoder at {directory} has version {meta.get('version')}")
        self.info = ModelInfo.from_dict(meta["model"])
        self._inputs = meta["inputs"]
        self._lowercase = meta["lowercase"]
        self._pad_id = meta["pad_id"]
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.int8 = int8
        self._batch_limit = 1 if int8 else None  # see the class docstring
        self._workers = usable_cores() if int8 else 1
        graph = directory / (INT8_MODEL if int8 else "model.onnx")
        self._session = cpu_session(graph, threads=1 if self._workers > 1 else None)
        self._spans = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._spans.no_truncation()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._spans.encode(text, add_special_tokens=False).offsets

    def input_lengths(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._spans.encode_batch([self.info.document_prompt + t for t in texts])]

    def encode_documents(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        return self._encode([self.info.document_prompt + t for t in texts], batch_size)

    def encode_queries(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        return self._encode([self.info.query_prompt + t for t in texts], batch_size)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        batch_size = min(batch_size, self._batch_limit or batch_size)
        if self._lowercase:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts)
        out = np.empty((len(texts), self.info.dim), dtype=np.float32)
        # Longest first, batches of similar length: the least padding.
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        batches = [order[a : a + batch_size] for a in range(0, len(order), batch_size)]

        def run(batch: list[int]) -> np.ndarray:
            return self._session.run(None, padded([encodings[i] for i in batch], self._inputs, self._pad_id))[0]

        if self._workers > 1 and len(batches) > 1:  # onnxruntime lets go of the GIL while it runs
            with ThreadPoolExecutor(self._workers) as pool:
                for batch, x in zip(batches, pool.map(run, batches)):
                    out[batch] = x
        else:
            for batch in batches:
                out[batch] = run(batch)
        return normalize_rows(out)


def cpu_session(graph: Path, threads: int | None = None):
    """An onnxruntime session for `graph` on the CPU, quiet, its threads sleeping between runs; `threads` per run
    (by default onnxruntime's, one per core).

    subtle: by default onnxruntime's threads spin after each run; on 2 cores they starve the faiss search that
    follows a query encoding (benchmarks/cold_start.py, warm two-stage search p50: 3.42 ms with spinning in
    RESULTS.md as of commit 2d0572f, 0.45 ms without in today's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def padded(batch: list, inputs: list[str], pad_id: int) -> dict[str, np.ndarray]:
    """A graph's int64 inputs for a batch of `tokenizers` encodings, padded on the right to the longest."""
    width = max(len(e.ids) for e in batch)
    arrays = {name: np.zeros((len(batch), width), dtype=np.int64) for name in inputs}
    arrays["input_ids"][:] = pad_id
    for row, e in enumerate(batch):
        n = len(e.ids)
        arrays["input_ids"][row, :n] = e.ids
        arrays["attention_mask"][row, :n] = e.attention_mask
        if "token_type_ids" in arrays:
            arrays["token_type_ids"][row, :n] = e.type_ids
    return arrays
