"""Single-query latency with an idle and with a busy machine, before and after running small query batches on
one thread (search.query_threads), side by side in one run on SciFact.

"Busy" is a known background job: one process spinning in a pure-Python loop, which keeps one of the two cores
fully loaded for the whole measurement and stops with it. "Before" is the same code with the one-thread limit
switched off (SINGLE_THREAD_QUERIES = 0), so FAISS and BLAS use their default thread teams. Rounds alternate
(before, after) in each machine state; query vectors are embedded once up front, so only search is timed.

    python benchmarks/threads.py [--queries 200] [--shortlist 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
from _common import CACHE, require_data, write_section

import searcher.search
from searcher import IndexConfig
from searcher.encoder import cpu_name
from searcher.evaluate import evaluate, percentiles_ms
from searcher.metrics import load_beir

BUSY = "while True:\n    pass\n"


def timed(searcher_, xq: np.ndarray, mode: str, shortlist: int) -> dict[str, float]:
    seconds = []
    for i in range(len(xq)):
        t = time.perf_counter()
        searcher_.search_vectors(xq[i : i + 1], k=10, shortlist=shortlist, mode=mode)
        seconds.append(time.perf_counter() - t)
    return percentiles_ms(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shortlist", type=int, default=200)
    args = parser.parse_args()
    data = require_data("scifact")
    report = evaluate(data, split="test", config=IndexConfig(), root=CACHE, latency=False)  # reuses quality's index
    beir = load_beir(data, "test")
    with searcher.search.Searcher(report.index) as s:
        xq = s.encoder.encode_queries(list(beir.queries.values())[: args.queries])
        results: dict[tuple[str, str, str], dict[str, float]] = {}
        for state in ("idle", "busy"):
            job = subprocess.Popen([sys.executable, "-c", BUSY]) if state == "busy" else None
            try:
                time.sleep(0.5 if job else 0)
                for mode in ("two-stage", "full"):
                    for _ in range(2):  # alternate, keep the better p50 of each
                        for label, limit in (("before", 0), ("after", searcher.search.SINGLE_THREAD_QUERIES)):
                            saved = searcher.search.SINGLE_THREAD_QUERIES
                            searcher.search.SINGLE_THREAD_QUERIES = limit
                            try:
                                timed(s, xq[:10], mode, args.shortlist)  # warm-up
                                r = timed(s, xq, mode, args.shortlist)
                            finally:
                                searcher.search.SINGLE_THREAD_QUERIES = saved
                            key = (state, mode, label)
                            if key not in results or r["p50"] < results[key]["p50"]:
                                results[key] = r
            finally:
                if job:
                    job.kill()
                    job.wait()
    lines = [
        f"CPU: **{cpu_name()}**. SciFact ({len(s.index):,} chunks), {len(xq)} test queries one at a time, k=10, "
        f"shortlist {args.shortlist}; search only (query vectors embedded beforehand). Busy = one process "
        "spinning on one of the two cores. Before = FAISS/BLAS default thread teams; after = one thread for "
        f"batches of up to {searcher.search.SINGLE_THREAD_QUERIES} queries.",
        "",
        "| machine | search | before p50 / p95 ms | after p50 / p95 ms | p50 before / after |",
        "|:--|:--|--:|--:|--:|",
    ]
    for state in ("idle", "busy"):
        for mode in ("two-stage", "full"):
            b, a = results[(state, mode, "before")], results[(state, mode, "after")]
            lines.append(
                f"| {state} | {mode} | {b['p50']:.2f} / {b['p95']:.2f} | {a['p50']:.2f} / {a['p95']:.2f} | "
                f"{b['p50'] / a['p50']:.1f}x |"
            )
    write_section("threads", "Single queries on one thread: idle and busy machine", "\n".join(lines))


if __name__ == "__main__":
    main()
