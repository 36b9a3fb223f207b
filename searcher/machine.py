"""Facts about the CPU this process runs on, for choices made by measurement and recorded beside them, and how many
threads a query runs on (query_threads)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (Linux; elsewhere assume not). Emulated bf16 is slower."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), capped by OMP_NUM_THREADS when the user set it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def cpu_name() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (recorded beside speed-based choices)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# Up to this many queries are searched on one thread. subtle: on a busy machine, waking idle OpenMP/BLAS threads
# costs milliseconds a query: on SciFact, one thread took two-stage p95 from 4.77 to 0.87 ms with the other core
# loaded, for +0.08 ms p50 idle (RESULTS.md, threads; Intel Xeon with AMX). A large flat scan is what one thread
# cannot carry (1M chunks: 36.8 ms p50, same CPU, RESULTS.md ten million chunks), which is why an index that large
# gets an IVF coarse index (coarse.IVF_MIN_CHUNKS) instead of more threads.
SINGLE_THREAD_QUERIES = 8
_blas: tuple[int, Any] | None = None
_single = threading.Lock()
# single-thread queries running now; BLAS settings before the first
_blas_state: dict[str, Any] = {"queries": 0, "original": None}


@contextmanager
def query_threads(n_queries: int) -> Iterator[None]:
    """Run FAISS and BLAS on one thread for a small batch of queries, restoring the settings afterwards; large
    batches keep every thread. The user's environment (OMP_NUM_THREADS, ...) is not touched.

    subtle: a server runs queries in several threads at once, and thread settings differ in scope: OpenMP's
    (FAISS, an OpenMP build of OpenBLAS) belong to the calling thread, a pthreads OpenBLAS's to the process. Each
    query lowers both for itself; the settings found before the first of overlapping queries are restored when
    the last one leaves (restoring what each query found would leave a process-wide setting lowered for good when
    two overlap)."""
    global _blas
    if n_queries > SINGLE_THREAD_QUERIES:
        yield
        return
    import faiss

    with _single:
        if _blas_state["queries"] == 0:
            # subtle: the controller knows the libraries loaded when it was made; a later import (torch brings its
            # own BLAS) would escape it, so it is made again when the set of loaded modules has grown (0.2 ms).
            if _blas is None or _blas[0] != len(sys.modules):
                from threadpoolctl import ThreadpoolController

                _blas = (len(sys.modules), ThreadpoolController())
            _blas_state["original"] = _blas[1].select(user_api="blas").info()
        _blas_state["queries"] += 1
        assert _blas is not None
        controller = _blas[1]
    controller.limit(limits=1, user_api="blas")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
        with _single:
            _blas_state["queries"] -= 1
            if _blas_state["queries"] == 0:
                controller.limit(limits=_blas_state["original"])
