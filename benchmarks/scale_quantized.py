"""Ten million chunks on one machine: quantized full vectors and an IVF coarse index, against exact float32 search.

SYNTHETIC unit vectors with a Matryoshka-like spectrum (the generator of benchmarks/scale.py, made per block from a
seed so that the float32 originals can be made again for the exact search instead of stored: 41 GB at 10M x
1024). Each index is written in searcher's on-disk format by this script, block by block (the full vectors as
mixed or int8 codes by vectors.encode_rows with vectors.train_quantizer's FAISS quantizer, coarse.faiss built by
coarse.new_ivf / new_flat, ids, chunk records), because GenerationWriter goes through a float32 full.npy first.
Queries are noisy copies of stored vectors.

Measured per (size, dims, coarse kind), in a fresh process, the files warm in the page cache:
- coarse RAM per chunk: anonymous resident memory added by opening the index (Searcher);
- full vectors on disk per chunk;
- two-stage single-query p50/p95 (Searcher.search_vectors, k = 10, shortlists 200 and 1000);
- top-10 agreement with exact float32 full-dim search over the regenerated originals;
- build seconds (generate + encode + coarse train/add + write).

    python benchmarks/scale_quantized.py [--sizes 100000 1000000 10000000] [--dims 384 1024] [--storage mixed int8]
    python benchmarks/scale_quantized.py --validate [--sizes 10000000] [--dims 1024]
    python benchmarks/scale_quantized.py --threads [--sizes 10000000] [--dims 1024]

--validate sweeps nprobe and the shortlist with validation queries (other rows, other noise) instead of the
benchmark's: what coarse.NPROBE_SHARE was chosen on, so the choice is not made on the figures reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from _common import CACHE, HERE, top10_agreement, write_section
from scale import memory, spectrum, synthetic, warm_file

from searcher import coarse, vectors
from searcher.config import IndexConfig
from searcher.encoder import ModelInfo, normalize_rows
from searcher.projection import coarse_vectors
from searcher.store import MANIFEST, MARKER, FileEntry, Manifest, Projection
from searcher.writer import now

BLOCK = 50_000
N_QUERIES = 200
SHORTLISTS = (200, 1000, 2000)
VALIDATION_NPROBES = (128, 192, 253, 384, 512)
NPROBES = ("default", coarse.NPROBE)  # what a new index of that size records, and the minimum
HEAD = 64  # mixed storage's float16 dims: the coarse dims


def block(d: int, b: int, n: int, centres: np.ndarray) -> np.ndarray:
    """Block b of the synthetic vectors (rows b*BLOCK ..), the same every time it is asked for."""
    return synthetic(np.random.default_rng([d, b]), centres, min(BLOCK, n - b * BLOCK), d)


def centres_for(d: int) -> np.ndarray:
    return np.random.default_rng(d).standard_normal((1000, d), dtype=np.float32)


def id_blocks(n: int, d: int):
    """Every block of the synthetic vectors with its ids (rows), regenerated one at a time: the exact search's
    database, 41 GB at 10M x 1024 were it stored."""
    centres = centres_for(d)
    return (
        (block(d, b, n, centres), np.arange(b * BLOCK, min((b + 1) * BLOCK, n), dtype=np.int64))
        for b in range((n + BLOCK - 1) // BLOCK)
    )


def build(index_dir: Path, n: int, d: int, kind: str, storage: str) -> float:
    """Write the index; seconds taken (0 when it exists)."""
    if (index_dir / MANIFEST).exists():
        return json.loads((index_dir / "build.json").read_text())["seconds"]
    started = time.perf_counter()
    gen = index_dir / "gen-000001"
    gen.mkdir(parents=True, exist_ok=True)
    (index_dir / MARKER).write_text("searcher-index 1\n")
    centres = centres_for(d)
    blocks = (n + BLOCK - 1) // BLOCK
    sample = np.concatenate([block(d, b, n, centres) for b in range(min(blocks, 4))])
    head = vectors.head_dims(storage, d, HEAD)
    quantizer = vectors.train_quantizer(sample, head)
    vectors.write_quantizer(gen / vectors.QUANTIZERS[storage], quantizer)
    if kind == "ivf":
        nlist = coarse.nlist_for(n)
        stride = max(1, blocks // 20)  # the training sample from blocks across the index
        train = np.concatenate([coarse_vectors(block(d, b, n, centres), 64) for b in range(0, blocks, stride)])
        train = train[np.random.default_rng(0).permutation(len(train))[: coarse.TRAIN_PER_CELL * nlist]]
        index = coarse.new_ivf(np.ascontiguousarray(train), nlist)
        record = {
            "kind": "ivf",
            "nlist": int(index.nlist),
            "nprobe": coarse.default_nprobe(int(index.nlist)),
            "trained_at": n,
        }
    else:
        index, record = coarse.new_flat(64), {"kind": "flat"}
    codes = np.lib.format.open_memmap(gen / vectors.FILES[storage], mode="w+", dtype=np.uint8, shape=(n, d + head))
    rng = np.random.default_rng(7)
    query_rows = np.sort(rng.choice(n, N_QUERIES, replace=False))
    queries = []
    for b in range(blocks):
        x = block(d, b, n, centres)
        a = b * BLOCK
        codes[a : a + len(x)] = vectors.encode_rows(x, storage, quantizer, head)
        index.add_with_ids(coarse_vectors(x, 64), np.arange(a, a + len(x), dtype=np.int64))
        picked = query_rows[(query_rows >= a) & (query_rows < a + len(x))] - a
        queries.extend(x[picked])
    codes.flush()
    del codes
    noise = 0.3 * rng.standard_normal((N_QUERIES, d), dtype=np.float32) * spectrum(d)
    np.save(index_dir / "queries.npy", normalize_rows(np.array(queries) + noise)[rng.permutation(N_QUERIES)])
    import faiss

    faiss.write_index(index, str(gen / "coarse.faiss"))
    np.save(gen / "ids.npy", np.arange(n, dtype=np.int64))
    offsets = np.empty(n + 1, dtype=np.int64)
    pos = 0
    with open(gen / "chunks.jsonl", "wb") as f:
        for a in range(0, n, BLOCK):
            lines = [
                b'{"id":%d,"doc_id":"d%d","title":"","source":"synthetic","start":0,"end":0,"hash":"",'
                b'"text":""}\n' % (i, i)
                for i in range(a, min(a + BLOCK, n))
            ]
            sizes = np.fromiter((len(line) for line in lines), np.int64, len(lines))
            offsets[a : a + len(lines)] = pos + np.concatenate([[0], np.cumsum(sizes)[:-1]])
            pos += int(sizes.sum())
            f.write(b"".join(lines))
    offsets[n] = pos
    np.save(gen / "chunks.offsets.npy", offsets)
    with open(gen / "files.jsonl", "wb") as f:
        f.write(FileEntry("synthetic", "", 0, 0, n, 0, n).to_json() + b"\n")
    info = ModelInfo("synthetic", d, 512, "", "", (d, 64), ())
    config = IndexConfig(model="synthetic", projection="prefix", full_storage=storage, coarse_index=kind)
    manifest = Manifest(
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
        full_fitted=n,
        coarse=record,
    )
    (index_dir / MANIFEST).write_bytes(orjson.dumps(manifest.to_dict()))
    seconds = time.perf_counter() - started
    (index_dir / "build.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def truth_path(n: int, d: int) -> Path:
    return CACHE / f"quantized-truth-{d}-{n}.npy"


def exact_truth(index_dir: Path, n: int, d: int) -> np.ndarray:
    """Ids of the exact float32 top 10 of each query over the regenerated originals (cached beside the index)."""
    path = truth_path(n, d)  # the same queries for every kind: made from the same seeds
    if path.exists():
        return np.load(path)
    from searcher.exact import exact_top_k

    _, I = exact_top_k(np.load(index_dir / "queries.npy"), id_blocks(n, d), 10)
    np.save(path, I)
    return I


def validate(n: int, d: int) -> list[str]:
    """Top-10 agreement of the mixed IVF index for each nprobe x shortlist, with 200 validation queries."""
    from searcher.exact import exact_top_k
    from searcher.search import Searcher

    path = CACHE / f"quantized-validation-{d}-{n}.npz"
    if path.exists():
        z = np.load(path)
        xq, truth = z["xq"], z["T"]
    else:
        rng = np.random.default_rng(1234)  # the benchmark's queries come from seed 7
        rows = np.sort(rng.choice(n, N_QUERIES, replace=False))
        picked = [x[np.isin(ids, rows)] for x, ids in id_blocks(n, d)]
        noise = 0.3 * rng.standard_normal((N_QUERIES, d), dtype=np.float32) * spectrum(d)
        xq = normalize_rows(np.concatenate(picked) + noise)
        _, truth = exact_top_k(xq, id_blocks(n, d), 10)
        np.savez(path, xq=xq, T=truth)
    s = Searcher(index_path("mixed", "ivf", d, n))
    rows = []
    for nprobe in VALIDATION_NPROBES:
        s.manifest.coarse["nprobe"] = nprobe
        cells = []
        for shortlist in SHORTLISTS:
            _, I = s.search_vectors(xq, k=10, shortlist=shortlist)
            cells.append(f"{top10_agreement(I, truth):.3f}")
        share = nprobe / s.manifest.coarse["nlist"]
        rows.append(f"| {n:,} | {d} | {nprobe} ({share:.1%}) | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows


def one_thread_and_searchers(work, n: int, module, limit_name: str) -> tuple[float, float]:
    """p50 ms of work(i), i < n, on one thread (module.<limit_name>, the size from which searcher uses both cores,
    set out of reach) and as searcher runs it, alternating, inside search.query_threads as queries run."""
    from searcher.evaluate import percentiles_ms
    from searcher.search import query_threads

    limit = getattr(module, limit_name)
    times: tuple[list, list] = ([], [])
    for i in range(n):
        for how, value in enumerate((10**12, limit)):
            setattr(module, limit_name, value)
            try:
                with query_threads(1):
                    t = time.perf_counter()
                    work(i)
                    times[how].append(time.perf_counter() - t)
            finally:
                setattr(module, limit_name, limit)
    return percentiles_ms(times[0])["p50"], percentiles_ms(times[1])["p50"]


def threads(n: int, d: int) -> list[str]:
    """Single-query p50 of the coarse scan (one thread against coarse.search's choice) and of a 2,000-row rerank
    (one thread against the split), alternating, on the mixed IVF index."""
    from searcher.backends import local
    from searcher.search import Searcher

    path = index_path("mixed", "ivf", d, n)
    warm_file(path / "gen-000001" / vectors.FILES["mixed"])  # as measure() has them
    s = Searcher(path)
    backend, xq = s.backend, np.load(path / "queries.npy")
    x = coarse_vectors(xq, 64)
    rows_out = []
    for nprobe in (coarse.NPROBE, coarse.default_nprobe(s.manifest.coarse["nlist"])):
        one, both = one_thread_and_searchers(
            lambda i, nprobe=nprobe: coarse.search(backend._coarse, x[i : i + 1], 1000, None, nprobe),
            len(x),
            coarse,
            "PARALLEL_SCAN_CODES",
        )
        rows_out.append(
            f"| coarse scan, nprobe {nprobe}, 1,000 candidates | {one:.2f} | {both:.2f} | {one / both:.2f}x |"
        )
        print(rows_out[-1], flush=True)
    rng = np.random.default_rng(3)
    fresh = iter([np.sort(rng.choice(n, 2000, replace=False)) for _ in range(2 * len(x))])  # rows never read
    one, both = one_thread_and_searchers(
        lambda i: backend._scores(next(fresh), xq[0]), len(x), local, "SPLIT_RERANK_ROWS"
    )  # before: page faults, as in a query
    rows_out.append(f"| rerank of 2,000 rows not read before | {one:.2f} | {both:.2f} | {one / both:.2f}x |")
    print(rows_out[-1], flush=True)
    return rows_out


def n_of(index_dir: Path) -> int:
    return int(index_dir.name.rsplit("-", 1)[1])


def d_of(index_dir: Path) -> int:
    return int(index_dir.name.rsplit("-", 2)[1])


def index_path(storage: str, kind: str, d: int, n: int) -> Path:
    return CACHE / f"quantized-{storage}-{kind}-{d}-{n}"


def measure(index_dir: Path) -> dict:
    """In a fresh process: RAM of the opened index, single-query latency, agreement with exact search."""
    from searcher.evaluate import percentiles_ms
    from searcher.search import Searcher

    xq = np.load(index_dir / "queries.npy")
    truth = np.load(truth_path(n_of(index_dir), d_of(index_dir)))
    storage = json.loads((index_dir / MANIFEST).read_text())["config"]["full_storage"]
    codes_path = index_dir / "gen-000001" / vectors.FILES[storage]
    warm_file(codes_path)  # the full vectors in the page cache: the steady state measured
    base = memory()
    s = Searcher(index_dir)
    opened = memory()
    n = len(s.index)
    out = {
        "n": n,
        "coarse_ram_bytes_per_chunk": (opened["RssAnon"] - base["RssAnon"]) / n,
        "full_disk_bytes_per_chunk": codes_path.stat().st_size / n,
        "shortlists": {},
    }
    nprobes = NPROBES if s.manifest.coarse["kind"] == "ivf" else (None,)
    for nprobe, shortlist in ((p, sl) for p in nprobes for sl in SHORTLISTS):
        if nprobe == "default":
            nprobe = coarse.default_nprobe(s.manifest.coarse["nlist"])
            if nprobe == coarse.NPROBE:
                continue  # the same as the minimum's row
        if nprobe is not None:
            s.manifest.coarse["nprobe"] = nprobe  # (a sweep; an index built earlier may record another)
        s.search_vectors(xq[:5], k=10, shortlist=shortlist)
        times, found = [], []
        for q in xq:
            t = time.perf_counter()
            _, I = s.search_vectors(q[None], k=10, shortlist=shortlist)
            times.append(time.perf_counter() - t)
            found.append(I[0])
        agreement = top10_agreement(found, truth)
        out["shortlists"][f"{shortlist}" if nprobe is None else f"{shortlist}, nprobe {nprobe}"] = {
            "ms": percentiles_ms(times),
            "agreement": agreement,
        }
    out["ceiling"] = None
    if n <= 1_000_000:
        _, I = s.search_vectors(xq, k=10, mode="full")
        out["ceiling"] = top10_agreement(I, truth)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1024])
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf"])
    parser.add_argument("--storage", nargs="+", default=["mixed", "int8"], choices=["mixed", "int8"])
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--validate", action="store_true", help="sweep nprobe x shortlist on validation queries")
    parser.add_argument("--threads", action="store_true", help="one thread against both cores for big single queries")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from RESULTS.md's table")
    args = parser.parse_args()
    if args.replot:
        plot(points_from_results())
        return
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.threads:
        rows = [r for d in args.dims for n in args.sizes for r in threads(n, d)]
        lines = [
            "Single queries on the mixed IVF index (p50 of 200, alternating): a coarse scan of 100k+ codes runs "
            "on every core split by inverted list (coarse.PARALLEL_SCAN_CODES), a rerank of 1,000+ rows is split "
            "over a thread pool (backends/local.SPLIT_RERANK_ROWS); against the same work on one thread.",
            "",
            "| work | one thread ms | as searcher runs it ms | speed-up |",
            "|:--|--:|--:|--:|",
            *rows,
        ]
        write_section("scale-quantized-threads", "Ten million chunks: both cores for one query", "\n".join(lines))
        return
    if args.validate:
        rows = [r for d in args.dims for n in args.sizes for r in validate(n, d)]
        lines = [
            "Validation queries (200 noisy copies of other stored vectors, another seed than the benchmark's) on "
            "the mixed IVF index: top-10 agreement with exact float32 search for each nprobe and shortlist. "
            "coarse.NPROBE_SHARE was chosen here, the least share of the cells that clears 0.97 at a "
            "shortlist of 2,000 with some margin; the ten-million-chunks section reports with the benchmark's "
            "own queries.",
            "",
            "| chunks | dims | nprobe (share of cells) | " + " | ".join(f"shortlist {k}" for k in SHORTLISTS) + " |",
            "|--:|--:|--:|" + "--:|" * len(SHORTLISTS),
            *rows,
        ]
        write_section(
            "scale-quantized-validation", "Ten million chunks: choosing nprobe on validation queries", "\n".join(lines)
        )
        return
    rows, points, ceilings = [], [], []
    for d, n, kind, storage in (
        (d, n, kind, storage) for d in args.dims for n in args.sizes for kind in args.kinds for storage in args.storage
    ):
        if kind == "flat" and n > 1_000_000:
            continue  # 256 B/chunk of RAM and a 10M-row scan per query: measured up to 1M only
        if storage != "mixed" and n > 1_000_000:
            continue  # int8 (not the default) up to 1M: at 10M it held 0.924 / 0.938 at most (384 / 1024 dims)
        index_dir = index_path(storage, kind, d, n)
        seconds = build(index_dir, n, d, kind, storage)
        exact_truth(index_dir, n, d)
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(index_dir)],
            check=True,
            capture_output=True,
            text=True,
            cwd=HERE,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if r.get("ceiling") is not None and kind == "flat":
            ceilings.append(f"{storage} {r['ceiling']:.3f} ({n:,} x {d})")
        for shortlist, m in r["shortlists"].items():
            ms = m["ms"]
            rows.append(
                f"| {n:,} | {d} | {storage} | {kind} | {shortlist} | {seconds:.0f} | "
                f"{r['coarse_ram_bytes_per_chunk']:.0f} | {r['full_disk_bytes_per_chunk']:.0f} | "
                f"{ms['p50']:.2f} | {ms['p95']:.2f} | {m['agreement']:.3f} |"
            )
            if storage == args.storage[0]:
                points.append((f"{kind}, shortlist {shortlist}", d, n, ms["p50"], ms["p95"]))
            print(rows[-1], flush=True)
    plot(points)
    lines = [
        "Synthetic Matryoshka-like vectors; full vectors as `mixed` (the default: the 64 coarse dims float16, the "
        "rest int8) or `int8` (every dim int8, FAISS 8-bit scalar quantizer); "
        f"{N_QUERIES} single queries, k = 10; IVF nprobe {coarse.NPROBE} and, where more, the default for the "
        f"index's cells ({coarse.NPROBE_SHARE:.0%} of them, coarse.default_nprobe; coarse.nprobe_for raises it "
        "for a long shortlist); a scan of 100k+ codes runs on both cores (coarse.PARALLEL_SCAN_CODES); agreement "
        "= share of the exact float32 full-dim top 10 kept (exact search over the regenerated float32 originals). "
        "Flat and int8 are measured up to 1M chunks (flat would hold 2.6 GB of RAM at 10M and scan it all; "
        "int8's agreement at 10M was 0.924 / 0.938 at most, 384 / 1024 dims, in the 2026-11-30 run, and its "
        "ceiling falls with size). Ceiling = agreement of an exhaustive "
        "search over the stored vectors (up to 1M chunks): what the storage type alone allows. Each index's full "
        "vectors are read into the page cache before it is measured (this VM's kdamond pages out file pages "
        "untouched for a minute; an index idle that long reads its shortlisted rows from disk).",
        "",
        "| chunks | dims | storage | coarse | shortlist | build s | coarse RAM B/chunk | full vectors B/chunk "
        "on disk | p50 ms | p95 ms | top-10 agreement |",
        "|--:|--:|:--|:--|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
        "Ceilings: " + "; ".join(ceilings) + ".",
        "",
        "![latency against index size](scale_quantized.png)",
    ]
    write_section("scale-quantized", "Ten million chunks: quantized full vectors, IVF coarse index", "\n".join(lines))


def points_from_results() -> list:
    from _common import RESULTS

    section = RESULTS.read_text().split("<!-- section:scale-quantized -->")[1].split("<!-- /section")[0]
    points = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 11 and cells[0].replace(",", "").isdigit() and cells[2] == "mixed":
            n, d, kind, shortlist = int(cells[0].replace(",", "")), int(cells[1]), cells[3], cells[4]
            points.append((f"{kind}, shortlist {shortlist}", d, n, float(cells[8]), float(cells[9])))
    return points


def plot(points) -> None:
    """p50 against index size, one panel per width: flat, and IVF at the nprobe a new index of that size records."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    series: dict[tuple[int, str, int], list[tuple[int, float]]] = {}  # (dims, kind, shortlist) -> [(n, p50)]
    for label, d, n, p50, _ in points:
        kind, _, rest = label.partition(", shortlist ")
        shortlist, _, nprobe = rest.partition(", nprobe ")
        if nprobe and int(nprobe) != coarse.default_nprobe(coarse.nlist_for(n)):
            continue  # the sweep's other nprobe
        series.setdefault((d, kind, int(shortlist)), []).append((n, p50))
    dims = sorted({d for d, _, _ in series})
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), sharey=True, squeeze=False)
    for ax, d in zip(axes[0], dims):
        for (dd, kind, shortlist), xs in sorted(series.items()):
            if dd == d:
                ax.plot(*zip(*sorted(xs)), marker="o", label=f"{kind}, shortlist {shortlist}")
        ax.set_xscale("log")
        ax.set_title(f"{d} dims")
        ax.set_xlabel("chunks")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("two-stage p50 ms (single query)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("IVF at the nprobe its size records (128 up to 1M chunks, 380 at 10M)", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "scale_quantized.png", dpi=100)


if __name__ == "__main__":
    os.environ.setdefault("SEARCHER_HOME", str(CACHE / "scale-home"))
    main()
