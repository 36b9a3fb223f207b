"""Cold start: median wall time of `searcher --help` and `searcher query` as new processes, on the index of
corpus/ and on a SciFact index (built here if missing; that takes minutes once).

    python benchmarks/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time

from _common import CACHE, HERE, require_data, write_section

from searcher import build_index
from searcher.encoder import load_encoder
from searcher.evaluate import cache_dir_for

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
    args = parser.parse_args()
    searcher_bin = shutil.which("searcher") or "searcher"
    corpus_index = CACHE / "corpus-index"
    scifact_index = CACHE / "scifact-index"
    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    build_index(HERE.parent / "corpus", corpus_index, encoder=encoder)
    # The embeddings benchmarks/quality.py cached: building this index embeds nothing after that has run.
    build_index(require_data("scifact") / "corpus.jsonl", scifact_index, encoder=encoder, cache_dir=cache_dir_for(CACHE, encoder))
    rows = []
    for label, cmd in (
        ("`searcher --help`", [searcher_bin, "--help"]),
        ("`searcher query` on corpus/", [searcher_bin, "query", QUERY, "--index", str(corpus_index)]),
        ("`searcher query` on SciFact", [searcher_bin, "query", SCIFACT_QUERY, "--index", str(scifact_index)]),
    ):
        median, times = wall(cmd, args.runs)
        rows.append(f"| {label} | {median:.2f} | {' '.join(f'{t:.2f}' for t in times)} |")
    body = "\n".join([
        f"Wall time of a new process, median of {args.runs} runs after one warm-up run (OS file cache warm).",
        "",
        "| command | median s | runs (s) |",
        "|:--|--:|:--|",
        *rows,
    ])
    write_section("cold-start", "Cold start", body)


if __name__ == "__main__":
    main()
