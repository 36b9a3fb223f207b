"""The qdrant backend (an embedded Qdrant Edge shard) beside the local FAISS backend, and embedding on Ray.

- quality: SciFact test nDCG@10 of every search mode through both backends (same chunks, same vectors: the
  embedding cache is shared); the target is two-stage (dense) within 0.002.
- latency: p50/p95 of single two-stage queries (k=10, shortlist 200) at 100k and 1M synthetic chunks (384 dims,
  scale.py's generator), through searcher's own query path on each backend; top-10 agreement between the two;
  the shard's bytes on disk per chunk and the process's resident memory; the coarse vector quantised in Qdrant
  (scalar int8, binary) with rescoring.
- ray: chunks/s embedding SciFact chunks on a local Ray cluster with 1 worker (2 CPUs) and 2 workers (1 CPU each),
  as a ratio of the local path (the same texts, torch float32, and the path build_index chooses here).

    python benchmarks/qdrant.py [--sizes 100000 1000000] [--skip quality latency ray]

Writes two RESULTS.md sections: qdrant (quality, latency) and ray; `--bytes` (after a latency run) a third,
qdrant-bytes: the shards' bytes per chunk by component.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import CACHE, require_data, top10_agreement, write_section

from searcher import IndexConfig
from searcher.config import DEFAULT_SHORTLIST

QUANTIZATIONS = ("none", "scalar", "binary")


def quality() -> str:
    from searcher.evaluate import evaluate

    rows = []
    results = {}
    for backend in ("local", "qdrant"):
        config = (
            IndexConfig()
            if backend == "local"
            else IndexConfig(backend="qdrant", qdrant_path=str(CACHE / "scifact-edge-shard"))
        )
        index_dir = None if backend == "local" else CACHE / "scifact-edge"
        report = evaluate(
            require_data("scifact"), split="test", config=config, root=CACHE, index_dir=index_dir, latency=False
        )
        results[backend] = {mode: report.modes[mode]["ndcg@10"] for mode in report.modes}
        print(backend, results[backend], flush=True)
    for mode in results["local"]:
        a, b = results["local"][mode], results["qdrant"].get(mode)
        if b is not None:
            rows.append(f"| {mode} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    return "\n".join(["| mode | local FAISS | Qdrant Edge | difference |", "|:--|--:|--:|--:|", *rows])


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def latency_one(n: int, quantization: str, n_queries: int) -> dict:
    """In a fresh process: build (once) and measure one size and quantisation."""
    import scale

    from searcher.backends.qdrant import QdrantBackend, sync
    from searcher.backends.qdrant_stores import EdgeStore
    from searcher.evaluate import percentiles_ms
    from searcher.search import Searcher
    from searcher.store import open_index

    d = 384
    local = CACHE / f"qdrant-scale-{n}"
    scale.build(local, n, d)
    shard = CACHE / f"qdrant-scale-{n}-{quantization}-shard"
    config = IndexConfig(
        model="synthetic",
        backend="qdrant",
        qdrant_path=str(shard),
        qdrant_quantization=quantization,
        full_storage="float32",
    )
    seconds = {}
    if not (shard / ".synced").exists():
        shutil.rmtree(shard, ignore_errors=True)
        index = open_index(local)
        # the synthetic index names no backend: the sync gets the collection's settings from `config`
        object.__setattr__(index.manifest, "config", config)
        t = time.perf_counter()
        report = sync(index)
        seconds = {"sync": time.perf_counter() - t, "upserted": report.upserted}
        index.close()
        (shard / ".synced").write_text(json.dumps(seconds))
    seconds = json.loads((shard / ".synced").read_text())
    xq = np.load(local / "queries.npy")[:n_queries]
    base = _rss_mb()
    backend = QdrantBackend(config)
    opened = _rss_mb()

    def edge(q):
        return backend.search(q[None, :], None, 10, DEFAULT_SHORTLIST, "dense", 0.7, False, None)[1][0]

    for q in xq:  # warm: every query once before timing, as for FAISS below
        edge(q)
    times, I_edge = [], []
    for q in xq:
        t = time.perf_counter()
        I_edge.append(edge(q))
        times.append(time.perf_counter() - t)
    after = _rss_mb()
    searcher = Searcher(local)
    for q in xq:
        searcher.search_vectors(q[None, :], k=10, shortlist=DEFAULT_SHORTLIST)
    faiss_times, I_faiss = [], []
    for q in xq:
        t = time.perf_counter()
        I_faiss.append(searcher.search_vectors(q[None, :], k=10, shortlist=DEFAULT_SHORTLIST)[1][0])
        faiss_times.append(time.perf_counter() - t)
    agreement = top10_agreement(I_edge, I_faiss)
    store = EdgeStore(str(shard))
    segments = store.shard.info().segments_count
    store.close()
    backend.close()
    return {
        "n": n,
        "quantization": quantization,
        "edge_ms": percentiles_ms(times),
        "faiss_ms": percentiles_ms(faiss_times),
        "agreement": agreement,
        "shard_bytes_per_chunk": _dir_bytes(shard) / n,
        "rss_open_mb": opened - base,
        "rss_after_mb": after - base,
        "sync_seconds": seconds.get("sync"),
        "segments": segments,
    }


def _component(relative: Path) -> str:
    """The part of an Edge shard a file belongs to: the WAL, or a segment's component folder or file stem."""
    parts = relative.parts
    if parts[0] != "segments" or len(parts) < 3:
        return parts[0]
    return parts[2].split(".")[0]


def shard_bytes(sizes: list[int]) -> str:
    """Bytes per chunk of each component of the shards the latency runs built (no quantisation)."""
    rows, components = {}, set()
    for n in sizes:
        shard = CACHE / f"qdrant-scale-{n}-none-shard"
        if not (shard / ".synced").exists():
            sys.exit(f"{shard} is missing: run the latency part first")
        per = {}
        for f in shard.rglob("*"):
            if f.is_file() and f.name != ".synced":
                key = _component(f.relative_to(shard))
                per[key] = per.get(key, 0) + f.stat().st_size
        rows[n] = per
        components |= set(per)
    order = sorted(components, key=lambda c: -rows[sizes[-1]].get(c, 0))
    lines = ["| component | " + " | ".join(f"{n:,} chunks" for n in sizes) + " |", "|:--|" + "--:|" * len(sizes)]
    for c in order:
        lines.append(f"| {c} | " + " | ".join(f"{rows[n].get(c, 0) / n:,.1f}" for n in sizes) + " |")
    lines.append("| **total** | " + " | ".join(f"**{sum(rows[n].values()) / n:,.1f}**" for n in sizes) + " |")
    return "\n".join(
        [
            "Bytes per chunk on disk of the Edge shards the latency runs built (384 dims, synthetic chunks "
            "with empty text, no quantisation), by component: a segment's folders and files, and the "
            "write-ahead log (preallocated: a fixed cost the larger shard spreads thinner).",
            "",
            *lines,
        ]
    )


def latency(sizes: list[int], n_queries: int) -> str:
    rows = []
    for n in sizes:
        for quantization in QUANTIZATIONS:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(n), quantization, str(n_queries)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(r, flush=True)
            rows.append(
                f"| {n:,} | {quantization} | {r['edge_ms']['p50']:.2f} / {r['edge_ms']['p95']:.2f} | "
                f"{r['faiss_ms']['p50']:.2f} / {r['faiss_ms']['p95']:.2f} | "
                f"{r['edge_ms']['p50'] / r['faiss_ms']['p50']:.2f}x | {r['agreement']:.3f} | "
                f"{r['shard_bytes_per_chunk']:,.0f} | {r['rss_open_mb']:,.0f} | "
                f"{r['sync_seconds'] / 60 if r['sync_seconds'] else float('nan'):.1f} |"
            )
    return "\n".join(
        [
            "| chunks | coarse in Qdrant | Edge p50 / p95 ms | FAISS p50 / p95 ms | Edge / FAISS p50 | top-10 "
            "agreement "
            "| shard bytes/chunk on disk | RSS to open (MB) | sync + optimize (min) |",
            "|--:|:--|--:|--:|--:|--:|--:|--:|--:|",
            *rows,
        ]
    )


def ray_throughput(n_texts: int) -> str:
    from searcher.cluster import RayWorkers
    from searcher.encoder import Bf16Encoder, cpu_has_bf16, load_encoder
    from searcher.store import open_index

    index = open_index(
        next(
            p
            for p in sorted(CACHE.glob("scifact-*"))
            if (p / "manifest.json").exists() and (p / "manifest.json").read_text().count("all-MiniLM-L6-v2")
        )
    )
    texts = [r["text"] for _, r in zip(range(n_texts), index.iter_chunks())]
    index.close()
    model = "sentence-transformers/all-MiniLM-L6-v2"
    encoder = load_encoder(model)
    rates = {}
    encoder.encode_documents(texts[:32])
    t = time.perf_counter()
    reference = encoder.encode_documents(texts, batch_size=32)
    rates["local torch float32"] = len(texts) / (time.perf_counter() - t)
    if cpu_has_bf16():
        bf16 = Bf16Encoder(encoder)
        bf16.encode_documents(texts[:32])
        t = time.perf_counter()
        bf16.encode_documents(texts, batch_size=32)
        rates["local torch-bf16 (chosen here)"] = len(texts) / (time.perf_counter() - t)
    cosines = {}
    for workers, cpus in ((1, 2), (2, 1)):
        import ray

        t0 = time.perf_counter()
        pool = RayWorkers(model, "local", workers=workers, cpus_per_worker=cpus)
        pool.info()  # the actors have loaded the model
        started = time.perf_counter()
        x = np.concatenate([v for _, v in pool.embed(texts, 32)])
        done = time.perf_counter()
        pool.close()
        name = f"Ray, {workers} worker{'s' if workers > 1 else ''} x {cpus} CPU ({', '.join(sorted(pool.paths))})"
        rates[name] = len(texts) / (done - started)
        rates[name + " (with cluster start)"] = len(texts) / (done - t0)
        cosines[name] = float(np.min(np.sum(x * reference, axis=1)))
        assert not ray.is_initialized()
    base = rates["local torch float32"]
    rows = [
        f"| {name} | {rate:.1f} | {rate / base:.2f}x | {f'{cosines[name]:.6f}' if name in cosines else '-'} |"
        for name, rate in rates.items()
    ]
    return "\n".join(
        [
            f"{len(texts):,} SciFact chunks, bundled MiniLM, batch 32. Ray rates start once the actors have "
            "loaded the model; the ones marked so include the cluster's start and the model loads.",
            "",
            "| path | chunks/s | vs local float32 | min cosine to local float32 |",
            "|:--|--:|--:|--:|",
            *rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ray-texts", type=int, default=2048)
    parser.add_argument("--skip", nargs="*", default=[])
    parser.add_argument(
        "--bytes",
        action="store_true",
        help="only the shards' bytes per chunk by component (RESULTS.md section qdrant-bytes)",
    )
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        n, quantization, n_queries = args.measure
        print(json.dumps(latency_one(int(n), quantization, int(n_queries))))
        return
    if args.bytes:
        write_section("qdrant-bytes", "Qdrant Edge shard: bytes per chunk by component", shard_bytes(args.sizes))
        return
    parts = []
    if "quality" not in args.skip:
        parts += [
            "SciFact test, nDCG@10 (bundled MiniLM, int8 full vectors locally; Qdrant gets them decoded):",
            "",
            quality(),
        ]
    if "latency" not in args.skip:
        parts += [
            "",
            f"Single queries, {args.queries} per row, k=10, shortlist {DEFAULT_SHORTLIST}, 384 dims, "
            "synthetic (scale.py), both through searcher's query path, warm (each query run once before "
            "timing); the shard after optimize(), `full` on disk (Memory.Cold), `coarse` cached; FAISS: "
            "the local backend's flat index below 200k chunks, IVF from there (coarse.py). RSS: the "
            "process's resident memory after opening the shard:",
            "",
            latency(args.sizes, args.queries),
        ]
    if parts:
        write_section("qdrant", "Qdrant Edge backend", "\n".join(parts))
    if "ray" not in args.skip:
        write_section("ray", "Indexing on Ray", ray_throughput(args.ray_texts))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
