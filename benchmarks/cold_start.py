"""Cold start: median wall time of `searcher --help` and `searcher query` as new processes, on the index of
corpus/ and on a SciFact index (built here if missing; that takes minutes once). Also, for the torch-free
query path: warm `Searcher.search` latency (encoding included) on the SciFact index, and chunks/s of the
exported ONNX encoder against sentence-transformers on the same chunks (is it worth using for indexing?).

    python benchmarks/cold_start.py [--runs 5] [--warm-queries 200] [--chunks 600]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time

import numpy as np
from _common import CACHE, HERE, require_data, write_section

from searcher import Searcher, build_index, open_index
from searcher.chunking import embedding_input
from searcher.encoder import load_encoder
from searcher.evaluate import cache_dir_for, percentiles_ms
from searcher.metrics import load_beir
from searcher.onnx_encoder import OnnxEncoder

QUERY = "how do I read a file line by line"
SCIFACT_QUERY = "0-dimensional biomaterials show inductive properties."


def wall(args: list[str], runs: int) -> tuple[float, list[float]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(args, check=True, capture_output=True, env=env)  # warm the OS file cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm-queries", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=600)
    args = parser.parse_args()
    searcher_bin = shutil.which("searcher") or "searcher"
    corpus_index = CACHE / "corpus-index"
    scifact_index = CACHE / "scifact-index"
    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    build_index(HERE.parent / "corpus", corpus_index, encoder=encoder)
    # The embeddings benchmarks/quality.py cached: building this index embeds nothing after that has run.
    build_index(
        require_data("scifact") / "corpus.jsonl",
        scifact_index,
        encoder=encoder,
        cache_dir=cache_dir_for(CACHE, encoder),
    )
    rows = []
    for label, cmd in (
        ("`searcher --help`", [searcher_bin, "--help"]),
        ("`searcher query` on corpus/", [searcher_bin, "query", QUERY, "--index", str(corpus_index)]),
        ("`searcher query` on SciFact", [searcher_bin, "query", SCIFACT_QUERY, "--index", str(scifact_index)]),
    ):
        median, times = wall(cmd, args.runs)
        rows.append(f"| {label} | {median:.2f} | {' '.join(f'{t:.2f}' for t in times)} |")
    warm = warm_latency(scifact_index, args.warm_queries)
    onnx_rate, torch_rate, cosine = indexing_speed(scifact_index, encoder, args.chunks)
    body = "\n".join(
        [
            f"Wall time of a new process, median of {args.runs} runs after one warm-up run (OS file cache warm). "
            "`searcher query` uses the index's exported ONNX encoder: no torch import.",
            "",
            "| command | median s | runs (s) |",
            "|:--|--:|:--|",
            *rows,
            "",
            f"Warm library latency, `Searcher.search(query, k=10)` on the SciFact index, one query at a time, "
            f"{args.warm_queries} SciFact test queries (ms):",
            "",
            "| | p50 | p95 |",
            "|:--|--:|--:|",
            *(f"| {name} | {v['p50']:.2f} | {v['p95']:.2f} |" for name, v in warm.items()),
            "",
            "faiss searches a single query on one thread (its flat search parallelises over queries), so the coarse "
            "search of one query uses one of the two cores.",
            "",
            f"Embedding {args.chunks} SciFact chunks for indexing (batch 32, same texts, best of 2 interleaved "
            "rounds): "
            f"exported ONNX encoder {onnx_rate:.1f} chunks/s, sentence-transformers (torch) {torch_rate:.1f} chunks/s "
            f"(ratio {onnx_rate / torch_rate:.2f}); lowest cosine between their vectors {cosine:.6f}.",
        ]
    )
    write_section("cold-start", "Cold start", body)


def warm_latency(index_dir, n: int) -> dict[str, dict[str, float]]:
    """p50/p95 ms of Searcher.search (the default mode, hybrid), and of its parts, for single queries."""
    queries = list(load_beir(require_data("scifact"), "test").queries.values())[:n]
    with Searcher(index_dir) as searcher:
        assert isinstance(searcher.encoder, OnnxEncoder), "the SciFact index should have an exported encoder"
        searcher.search(queries[0])
        total, encode, dense, lexical = [], [], [], []
        for q in queries:
            t0 = time.perf_counter()
            xq = searcher.encoder.encode_queries([q])
            t1 = time.perf_counter()
            searcher.search_vectors(xq, k=10)
            t2 = time.perf_counter()
            searcher.search_vectors(None, k=10, mode="lexical", texts=[q])
            t3 = time.perf_counter()
            searcher.search(q, k=10)
            total.append(time.perf_counter() - t3)
            encode.append(t1 - t0)
            dense.append(t2 - t1)
            lexical.append(t3 - t2)

    return {
        "`Searcher.search`, default (hybrid) mode: encode, dense and BM25 search, fusion, hits with lines and "
        "snippets": percentiles_ms(total),
        "of which: encode the query (ONNX)": percentiles_ms(encode),
        "of which: two-stage dense search (search_vectors)": percentiles_ms(dense),
        "of which: BM25 search (search_vectors, lexical)": percentiles_ms(lexical),
    }


def indexing_speed(index_dir, encoder, n: int) -> tuple[float, float, float]:
    index = open_index(index_dir)
    texts = [embedding_input(r["title"], r["text"]) for r in index.chunks(range(n))]
    onnx = OnnxEncoder(index.index_dir / index.manifest.query_encoder)
    rates: dict[str, float] = {"onnx": 0.0, "torch": 0.0}
    for _ in range(2):
        for name, enc in (("torch", encoder), ("onnx", onnx)):
            t = time.perf_counter()
            vectors = enc.encode_documents(texts, batch_size=32)
            rates[name] = max(rates[name], len(texts) / (time.perf_counter() - t))
            if name == "torch":
                reference = vectors
    cosine = float(np.min(np.sum(reference * onnx.encode_documents(texts), axis=1)))
    return rates["onnx"], rates["torch"], cosine


if __name__ == "__main__":
    main()
