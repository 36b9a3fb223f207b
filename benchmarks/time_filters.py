"""What a date filter (`--changed-within`, `--changed-before`) costs a query: selecting the chunk ids of the files
changed in the window, before the search itself.

A relative bound ("2d") moves with the clock, so its selection cannot be kept from one query to the next as a path
glob's is. Synthetic file tables of 10,000 to 1,000,000 files (10 chunks each, listed by path, their id ranges in
another order, times spread over ten years); windows keeping 1% and 10% of the files. Two ways, median of 7 each:
- pass: Where.keeps over each file of the table, then the kept ranges' ids checked against the index's ids with
  np.isin (what a filter without the arrays would do);
- arrays (shipped): filters.FileTimes, made once per open generation (its cost shown apart), compared against the
  window, and filters.among against the index's sorted ids.

    python benchmarks/time_filters.py
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np
from _common import write_section

from searcher.filters import FileTimes, Where, among
from searcher.manifest import FileEntry

SIZES = (10_000, 100_000, 1_000_000)
CHUNKS = 10
TEN_YEARS = 10 * 365 * 86400
NOW = 1_800_000_000.0


def table(n: int) -> list[FileEntry]:
    rng = random.Random(0)
    order = list(range(n))
    rng.shuffle(order)  # a table lists files by path; their ids follow the order they were indexed in
    files = []
    for i, j in enumerate(order):
        changed = int((NOW - rng.random() * TEN_YEARS) * 1e9)
        files.append(FileEntry(f"/docs/{i:07d}.md", "0" * 64, 1, changed, 1, j * CHUNKS, (j + 1) * CHUNKS))
    return files


def median_ms(f, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    rows = []
    for n in SIZES:
        files = table(n)
        live = np.arange(n * CHUNKS, dtype=np.int64)
        started = time.perf_counter()
        times = FileTimes.of(files)
        made = (time.perf_counter() - started) * 1000
        for share in (0.01, 0.10):
            where = Where(changed_after=NOW - share * TEN_YEARS)

            def by_pass(where=where, files=files, live=live):
                ranges = [np.arange(e.id_start, e.id_end) for e in files if where.keeps(e)]
                ids = np.sort(np.concatenate(ranges))
                return ids[np.isin(ids, live)]

            def by_arrays(where=where, times=times, live=live):
                return among(times.ids(where), live)

            assert np.array_equal(by_pass(), by_arrays())
            kept = len(by_arrays()) / len(live)
            rows.append(f"| {n:,} | {kept:.1%} | {median_ms(by_pass):.1f} | {median_ms(by_arrays):.1f} | {made:.0f} |")
    body = (
        f"{CHUNKS} chunks per file; times in ms, median of 7.\n\n"
        "| files | chunks kept | pass over the table | arrays (shipped) | arrays made once (per open generation) |\n"
        "|:--|--:|--:|--:|--:|\n" + "\n".join(rows)
    )
    write_section("time-filters", "Date filters: selecting the files changed in a window", body)


if __name__ == "__main__":
    main()
