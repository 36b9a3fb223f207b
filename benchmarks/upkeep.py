"""Everyday upkeep and filters: how long `searcher index` takes when nothing changed (a new process, as a user
runs it), and what a path filter costs a query.

1. No-op update: `searcher index FOLDER` on an unchanged, already indexed folder, median of 5 runs: corpus/ and
   1,000 SciFact abstracts as files.
2. Filtered queries: single hybrid and dense queries (search only, vectors embedded beforehand) unfiltered and
   with a path filter keeping 1% and 0.1% of the files, on SciFact as 10,366 files (made by benchmarks/lexical.py)
   and on the 1M-chunk synthetic index of 10,000 files (also benchmarks/lexical.py).

    python benchmarks/upkeep.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import CACHE, HERE, require_data, write_section

from searcher import Searcher, Where
from searcher.evaluate import percentiles_ms


def noop(folder: Path, index: Path) -> float:
    env = {**os.environ, "SEARCHER_HOME": str(CACHE / "upkeep-home")}
    command = [sys.executable, "-m", "searcher", "index", str(folder), "--index", str(index), "-q"]
    subprocess.run(command, check=True, env=env, capture_output=True)  # the first run builds it
    times = []
    for _ in range(5):
        t = time.perf_counter()
        done = subprocess.run(command, check=True, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        assert " 0 indexed" in " " + done.stdout, done.stdout
    return statistics.median(times)


def scifact_files(n: int) -> Path:
    folder = CACHE / f"scifact-{n}-files"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        with open(require_data("scifact") / "corpus.jsonl") as f:
            for _, line in zip(range(n), f):
                r = json.loads(line)
                (folder / f"{r['_id']}.txt").write_text(f"{r['title']}\n\n{r['text']}\n")
    return folder


def filtered(index: Path, xq: np.ndarray, texts: list[str], globs: list[tuple[str, ...]]) -> list[str]:
    from searcher.filters import selected_ids

    rows = []
    with Searcher(index) as s:
        for paths in globs:
            where = Where(paths=paths) if paths else None
            share = len(selected_ids(s.index, where)) / len(s.index) if where else 1.0
            label = f"{', '.join(paths) or 'none'} ({share:.2%} of chunks)"
            for mode in ("dense", "hybrid"):
                times, counts = [], []
                for i in range(len(texts)):
                    t = time.perf_counter()
                    D, I = s.search_vectors(xq[i : i + 1], k=10, mode=mode, texts=[texts[i]], where=where)
                    times.append(time.perf_counter() - t)
                    counts.append(int((I[0] >= 0).sum()))
                p = percentiles_ms(times)
                rows.append(f"| {index.name} | {label} | {mode} | {p['p50']:.2f} | {p['p95']:.2f} | {min(counts)} |")
    return rows


def main() -> None:
    corpus = HERE.parent / "corpus"
    lines = [
        "### No-op update (a new `searcher index` process on an unchanged folder, median of 5)",
        "",
        "| folder | seconds |",
        "|:--|--:|",
        f"| corpus/ (35 files) | {noop(corpus, CACHE / 'upkeep-corpus'):.2f} |",
        f"| 1,000 SciFact abstracts as files | {noop(scifact_files(1000), CACHE / 'upkeep-scifact'):.2f} |",
    ]
    rows = []
    files_index = CACHE / "lexical-update" / "index"
    if files_index.is_dir():
        with Searcher(files_index) as s:
            texts = [r["text"][:80] for r in list(s.index.iter_chunks())[:: max(1, len(s.index) // 100)]][:100]
            xq = s.encoder.encode_queries(texts)
        rows += filtered(files_index, xq, texts, [(), ("*1-0.txt",), ("*11-0.txt",), ("*111-0.txt",)])
    synthetic = next(iter(sorted(CACHE.glob("lexical-scale-1000000"))), None)
    if synthetic is not None:
        xq = np.load(synthetic / "queries.npy")[:100]
        texts = json.loads((synthetic / "queries.json").read_text())[:100]
        rows += filtered(synthetic, xq, texts, [(), ("000[0-9][0-9].txt",), ("0000[0-9].txt",)])
    lines += [
        "",
        "### Filtered queries (single queries, k = 10, search only)",
        "",
        "| index | filter | mode | p50 ms | p95 ms | fewest hits of any query |",
        "|:--|:--|:--|--:|--:|--:|",
        *rows,
    ]
    write_section("upkeep", "Upkeep and filters", "\n".join(lines))


if __name__ == "__main__":
    main()
