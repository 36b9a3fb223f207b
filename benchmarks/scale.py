"""Scale: search latency and memory at 10k, 100k and 1M chunks, two-stage against exact full-dim flat search,
at full widths 384 and 1024.

Embedding 1M chunks is out of reach on 2 cores (MiniLM does ~20 chunks/s: 14 hours), so this benchmark
stores SYNTHETIC unit vectors with a Matryoshka-like spectrum (the variance of dim i falls as 1/(i+1), in
clusters, so the first 64 dims carry the most signal, as in a Matryoshka-trained model) through the project's
own store code (GenerationWriter, the coarse IndexIDMap2, the prefix projection), and queries that are noisy
copies of stored vectors. Each configuration is measured in a fresh process:

- coarse RAM per chunk: anonymous resident memory added by opening the index in a fresh process (the coarse
  index; ids and offsets are memory-mapped);
- two-stage search: `Searcher.search_vectors` (coarse faiss search + rerank of the shortlisted memory-mapped
  rows), single queries and batches of 64;
- exact full-dim flat search: faiss IndexFlatIP holding all full vectors in RAM, the same queries;
- full vectors resident: full.npy is evicted from the page cache (posix_fadvise DONTNEED), the queries run
  again, and we report how much of the file is then mapped in the process and how much was read from disk.
  (With a warm page cache the kernel maps 64 KB of cached pages around each touched row, "fault-around",
  so resident memory overstates what a rerank needs; those pages are clean and reclaimable either way.)

    python benchmarks/scale.py [--sizes 10000 100000 1000000] [--dims 384 1024] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import CACHE, top10_agreement, write_section

from searcher.config import DEFAULT_SHORTLIST, IndexConfig
from searcher.encoder import ModelInfo, normalize_rows
from searcher.generation import coarse_index
from searcher.store import FileEntry, Manifest, Projection
from searcher.writer import GenerationWriter, now

BLOCK = 50_000
BATCH = 64


def spectrum(d: int) -> np.ndarray:
    return (1.0 / np.sqrt(np.arange(1, d + 1))).astype(np.float32)


def synthetic(rng: np.random.Generator, centres: np.ndarray, n: int, d: int) -> np.ndarray:
    assign = rng.integers(0, len(centres), n)
    return normalize_rows((centres[assign] + 0.7 * rng.standard_normal((n, d), dtype=np.float32)) * spectrum(d))


def build(index_dir: Path, n: int, d: int) -> None:
    """A complete index of n synthetic chunks, written with the project's store code."""
    if (index_dir / "manifest.json").exists():
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(d)
    centres = rng.standard_normal((1000, d), dtype=np.float32)
    writer = GenerationWriter(index_dir, 1, n, d)
    for a in range(0, n, BLOCK):
        writer.full[a : a + BLOCK] = synthetic(rng, centres, min(BLOCK, n - a), d)
    # Queries: noisy copies of stored vectors, saved beside the index so measuring never touches full.npy.
    rows = np.sort(rng.integers(0, n, 1000))
    noise = 0.3 * rng.standard_normal((len(rows), d), dtype=np.float32) * spectrum(d)
    np.save(
        index_dir / "queries.npy", normalize_rows(np.asarray(writer.full[rows]) + noise)[rng.permutation(len(rows))]
    )
    ids = np.arange(n, dtype=np.int64)
    writer.write_ids(ids)
    coarse, coarse_record = coarse_index(writer.full, ids, 64)  # flat, or an IVF from coarse.IVF_MIN_CHUNKS
    writer.write_coarse(coarse)
    writer.write_chunks(
        b'{"id":%d,"doc_id":"d%d","title":"","source":"synthetic","start":0,"end":0,"hash":"","text":""}\n' % (i, i)
        for i in range(n)
    )
    writer.write_files([FileEntry("synthetic", "", 0, 0, n, 0, n)])
    info = ModelInfo("synthetic", d, 512, "", "", (d, 64), ())
    config = IndexConfig(model="synthetic", projection="prefix", full_storage="float32")  # full.npy as written
    writer.publish(
        Manifest(
            1,
            now(),
            now(),
            config,
            info,
            Projection("prefix", "prefix", 64, n),
            n,
            n,
            n,
            n,
            ("synthetic",),
            coarse=coarse_record,
        )
    )


def memory() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def mapped_resident(path: Path) -> int:
    """Resident bytes of the memory mappings of one file (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1]) * 1024
    return total


def read_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    return 0


def cold_residency(searcher, xq: np.ndarray, path: Path) -> tuple[float, float]:
    """(MB of full.npy mapped, MB read from disk) after running the queries on an evicted file."""
    import os

    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    before = read_bytes()
    for q in xq:
        searcher.search_vectors(q[None], k=10, shortlist=DEFAULT_SHORTLIST)
    return mapped_resident(path) / 1e6, (read_bytes() - before) / 1e6


def warm_file(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def timed(fn, queries: np.ndarray, batch: int) -> list[float]:
    """Seconds per query, calling fn on batches of `batch` queries."""
    per_query = []
    for a in range(0, len(queries), batch):
        t = time.perf_counter()
        fn(queries[a : a + batch])
        per_query.append((time.perf_counter() - t) / len(queries[a : a + batch]))
    return per_query


def measure(index_dir: Path, n_queries: int) -> dict:
    """Run in a fresh process: memory and latency of one index."""
    import faiss

    from searcher.evaluate import percentiles_ms
    from searcher.search import Searcher

    xq = np.load(index_dir / "queries.npy")[:n_queries]
    full_path = index_dir / f"gen-{1:06d}" / "full.npy"
    # Cold first, while nothing maps full.npy: evict it, query, see what was mapped and read.
    base = memory()
    cold = Searcher(index_dir)
    opened = memory()
    full_mapped, full_read = cold_residency(cold, xq, full_path)
    cold.close()
    del cold
    warm_file(full_path)  # steady state for the timings below: the file in the page cache

    searcher = Searcher(index_dir)
    n, d = searcher.index.full.shape

    def two_stage(q):
        return searcher.search_vectors(q, k=10, shortlist=DEFAULT_SHORTLIST)

    two_stage(xq[:5])  # warm-up
    single = timed(two_stage, xq, 1)
    batched = timed(two_stage, xq, BATCH)
    _, I_two = two_stage(xq)

    flat = faiss.IndexFlatIP(d)
    for a in range(0, n, BLOCK):
        flat.add(np.ascontiguousarray(searcher.index.full[a : a + BLOCK]))
    flat.search(xq[:5], 10)
    exact_single = timed(lambda q: flat.search(q, 10), xq, 1)
    exact_batched = timed(lambda q: flat.search(q, 10), xq, BATCH)
    _, I_exact = flat.search(xq, 10)
    agreement = top10_agreement(I_two, I_exact)

    return {
        "n": n,
        "d": d,
        "coarse_bytes_per_chunk": (opened["RssAnon"] - base["RssAnon"]) / n,
        "coarse_file_bytes_per_chunk": (searcher.index.path / "coarse.faiss").stat().st_size / n,
        "full_file_mb": n * d * 4 / 1e6,
        "full_mapped_mb_cold": full_mapped,
        "full_read_mb_cold": full_read,
        "two_stage_single_ms": percentiles_ms(single),
        "two_stage_batched_ms_per_query": percentiles_ms(batched),
        "exact_single_ms": percentiles_ms(exact_single),
        "exact_batched_ms_per_query": percentiles_ms(exact_batched),
        "agreement": agreement,
        "faiss_threads": faiss.omp_get_max_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1024])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.queries)))
        return
    results = []
    for d in args.dims:
        for n in args.sizes:
            index_dir = CACHE / f"scale-{d}-{n}"
            build(index_dir, n, d)
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(index_dir), "--queries", str(args.queries)],
                check=True,
                capture_output=True,
                text=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(results[-1], file=sys.stderr)
    write_section("scale", "Scale (synthetic Matryoshka-like vectors)", report(results, args.queries))


def report(results: list[dict], n_queries: int) -> str:
    lines = [
        f"Synthetic vectors (see the script's docstring: not a model's embeddings), {n_queries} queries, k=10, "
        f"shortlist {DEFAULT_SHORTLIST}. Latency in ms; batched = per query in batches of {BATCH}. Exact = faiss "
        "IndexFlatIP with every full vector in RAM. Coarse RAM = resident memory added by opening the index.",
        "",
        "| dim | chunks | two-stage p50 / p95 | exact p50 / p95 | two-stage / exact (p50) | batched two-stage | "
        "batched exact "
        "| coarse RAM B/chunk | full.npy mapped / read from disk, cold, after all queries | top-10 agreement |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        t, e = r["two_stage_single_ms"], r["exact_single_ms"]
        lines.append(
            f"| {r['d']} | {r['n']:,} | {t['p50']:.2f} / {t['p95']:.2f} | {e['p50']:.2f} / {e['p95']:.2f} "
            f"| {t['p50'] / e['p50']:.2f} | {r['two_stage_batched_ms_per_query']['p50']:.3f} "
            f"| {r['exact_batched_ms_per_query']['p50']:.3f} | {r['coarse_bytes_per_chunk']:.0f} "
            f"| {r['full_mapped_mb_cold']:.1f} / {r['full_read_mb_cold']:.1f} of {r['full_file_mb']:.0f} MB "
            f"| {r['agreement']:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
