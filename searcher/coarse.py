"""The coarse index: the shortlist stage over the 64-dim coarse vectors, exact or inverted-file.

    flat  IndexIDMap(IndexFlatIP): every chunk scored; 256 B + 8 B per chunk of RAM at 64 dims. Fastest and exact
          for small indexes.
    ivf   IndexIVFScalarQuantizer: nlist k-means cells over the coarse vectors, 8-bit codes (64 B) and the chunk id
          (8 B) per chunk; a query scans the `nprobe` nearest cells only, so its cost grows with the cells scanned,
          not with the index.

`auto` (the default) keeps flat search up to IVF_MIN_CHUNKS chunks and builds an IVF above, as measured in
benchmarks/RESULTS.md (scale section); the kind, nlist, nprobe and the size it was trained at are recorded in the
manifest. Ids are the chunk ids in both, so incremental updates remove and add by id; an IVF is trained again
(rebuilt from the full vectors) when the index has grown 4x since its cells were trained, so cells stay balanced.
A filter (an id selector) runs inside either search; an IVF scan may find fewer than k allowed chunks in the
cells it visits, and the caller then searches the allowed chunks exactly (search.py).
"""

from __future__ import annotations

import math

import numpy as np

from .machine import usable_cores

# auto: flat below this many chunks. Single-query p50 on an Intel Xeon with AMX (2 cores), 384 dims: flat 2.2 ms and
# IVF 0.8 ms at 100k chunks, 36.8 and 1.2 ms at 1M (RESULTS.md, ten million chunks).
IVF_MIN_CHUNKS = 200_000
NPROBE = 128  # IVF cells scanned per query, at least: at 1M chunks as good a shortlist as flat search
NPROBE_SHARE = 0.06  # ... and at least this share of the cells: a fixed nprobe finds less as cells multiply. Chosen
# on validation queries (not the benchmark's) at 10M synthetic 1024-dim chunks, 6,324 cells, mixed storage: the top-10
# agreement with exact search at shortlists 1,000 / 2,000 was 0.954 / 0.964 at nprobe 128, 0.958 / 0.970 at 253 (4%),
# 0.963 / 0.976 at 384 (6%), 0.963 / 0.978 at 512: 6% is the least that clears 0.97 at 2,000 with some margin
RETRAIN_GROWTH = 4  # rebuild an IVF when the index has grown this many times since it was trained
TRAIN_PER_CELL = 64  # training points per cell (FAISS warns below 39)
# A query batch whose IVF scan covers at least this many codes per query runs on every core, split by inverted list
# (FAISS parallel_mode 1), even when machine.query_threads keeps small batches on one thread: a single query's scan
# halves (10M chunks, 1,000 candidates: nprobe 128 4.4 -> 2.5 ms, 380 12.3 -> 6.5 ms; Intel Xeon with AMX, 2 cores;
# RESULTS.md, both cores for one query), and batches of queries scan as fast as split by query. Below it, waking
# threads costs more than it saves on a busy machine (machine.SINGLE_THREAD_QUERIES). 100k codes: ~2.2 ms on one
# thread (half the 4.4 ms of nprobe 128's ~200k codes above).
PARALLEL_SCAN_CODES = 100_000


def kind_for(requested: str, n: int) -> str:
    if requested != "auto":
        return requested
    return "ivf" if n >= IVF_MIN_CHUNKS else "flat"


def nlist_for(n: int) -> int:
    """Cells for n chunks: 2 sqrt(n), at least 64 (about 6,300 at 10M chunks, ~1,600 points per cell)."""
    return max(64, int(2 * math.sqrt(max(n, 1))))


def new_flat(d: int):
    import faiss

    return faiss.IndexIDMap(faiss.IndexFlatIP(d))


def new_ivf(sample: np.ndarray, nlist: int):
    """An untrained-then-trained IVF with 8-bit codes over `sample` (n, d) coarse vectors."""
    import faiss

    d = sample.shape[1]
    nlist = max(1, min(nlist, len(sample) // 8))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.min_points_per_centroid = 1  # small test indexes: no warning; real ones have TRAIN_PER_CELL
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def default_nprobe(nlist: int) -> int:
    """The nprobe a new IVF of nlist cells records: NPROBE, or NPROBE_SHARE of its cells when that is more."""
    return min(nlist, max(NPROBE, math.ceil(NPROBE_SHARE * nlist)))


def nprobe_for(record: dict, k: int, n: int) -> int:
    """Cells to scan for a shortlist of k: the recorded nprobe, or more when k asks for more candidates than
    those cells hold on average (4x, as cells are uneven); every cell when k covers the index."""
    nlist = record.get("nlist", 1)
    if k >= n:
        return nlist
    return min(nlist, max(record.get("nprobe", default_nprobe(nlist)), math.ceil(4 * k * nlist / max(n, 1))))


def prepare(index) -> None:
    """Search settings FAISS does not keep in the file: an IVF scans a query's cells in parallel
    (PARALLEL_SCAN_CODES)."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        index.parallel_mode = 1


def scan_threads(index, nprobe: int) -> int:
    """Threads for an IVF scan of nprobe cells: every core the process may use (OMP_NUM_THREADS caps it) when the
    scan is large, else 0 (leave the caller's setting)."""
    if nprobe * index.ntotal / max(index.nlist, 1) < PARALLEL_SCAN_CODES:
        return 0
    return usable_cores()


def search(index, x: np.ndarray, k: int, allowed: np.ndarray | None, nprobe: int):
    """(D, I) of the coarse search; `allowed`: sorted chunk ids to keep (a filter), applied inside the search."""
    import faiss

    ivf = isinstance(index, faiss.IndexIVF)
    if allowed is None and not ivf:
        return index.search(x, k)
    selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
    params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector) if ivf else faiss.SearchParameters(sel=selector)
    threads = scan_threads(index, nprobe) if ivf else 0
    before = faiss.omp_get_max_threads()
    if threads <= before:
        return index.search(x, k, params=params)
    faiss.omp_set_num_threads(threads)  # this thread's OpenMP setting only
    try:
        return index.search(x, k, params=params)
    finally:
        faiss.omp_set_num_threads(before)


def check(index, kind: str, d: int, n: int) -> str | None:
    """What is wrong with a coarse index read from disk (type, width, count), or None."""
    import faiss

    expected = faiss.IndexIVFScalarQuantizer if kind == "ivf" else faiss.IndexIDMap
    if not isinstance(index, expected) or index.d != d or index.ntotal != n:
        return (
            f"{type(index).__name__} of {index.ntotal} vectors of {index.d} dims, expected "
            f"{expected.__name__} of {n} of {d}"
        )
    return None
