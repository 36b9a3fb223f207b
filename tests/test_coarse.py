"""Coarse index kinds (coarse.py): flat and IVF round-trip, update and delete by chunk id, equal exact search when
the shortlist covers the index, keep k hits under a selective filter, and `auto` switches by size."""

from __future__ import annotations

import numpy as np
import pytest
from test_storage import many

from searcher import IndexConfig, Searcher, Where, build_index, open_index


def config(fake, **kw):
    return IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, **kw)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_each_coarse_kind_updates_by_id_and_equals_exact_search_when_the_shortlist_covers_it(tmp_path, fake, kind):
    docs = many(tmp_path / "docs", n=300)
    index_dir = tmp_path / "idx"
    build_index(docs, index_dir, config(fake, coarse_index=kind), encoder=fake)
    (docs / "f000.txt").unlink()
    (docs / "new.txt").write_text("geyser geyser steam vent hot spring")
    build_index(docs, index_dir, encoder=fake)
    index = open_index(index_dir)
    assert index.manifest.coarse["kind"] == kind
    coarse = index.load_coarse()
    assert coarse.ntotal == len(index)
    ids = np.asarray(index.ids)
    index.close()
    s = Searcher(index_dir, encoder=fake)
    xq = fake.encode_queries(["magma plume", "owl nest", "geyser steam"])
    _, coarse_ids = s.search_vectors(xq, k=len(ids), mode="coarse")
    assert set(coarse_ids[0][coarse_ids[0] >= 0].tolist()) <= set(ids.tolist())  # no deleted or unknown id
    D2, I2 = s.search_vectors(xq, k=10, mode="dense", shortlist=len(ids))
    Df, If = s.search_vectors(xq, k=10, mode="full")
    assert np.array_equal(I2, If) and np.allclose(D2, Df, atol=1e-5)
    assert s.search("geyser steam", 1, mode="dense")[0].source.endswith("new.txt")


def test_an_ivf_keeps_k_hits_under_a_selective_filter(tmp_path, fake, monkeypatch):
    from searcher import coarse

    monkeypatch.setattr(coarse, "NPROBE", 4)  # a small index: scan few of its cells, as a big one does
    docs = many(tmp_path / "docs", n=800)
    build_index(docs, tmp_path / "idx", config(fake, coarse_index="ivf"), encoder=fake)
    s = Searcher(tmp_path / "idx", encoder=fake)
    assert s.manifest.coarse["nprobe"] < s.manifest.coarse["nlist"]  # the scan does not cover every cell
    keep = Where(paths=("f7*.txt",))  # 100 of 800 files
    allowed = len(s.backend.selected(keep))
    for query in ("magma plume", "owl nest", "seed sparrow"):
        hits = s.search(query, 10, mode="dense", where=keep, per_doc=False)
        assert len(hits) == min(10, allowed) and all("/f7" in h.source for h in hits)
    one = Where(paths=("f123.txt",))
    assert len(s.search("magma", 10, mode="dense", where=one, per_doc=False)) == len(s.backend.selected(one))


def test_auto_switches_to_an_ivf_by_size_and_retrains_when_the_index_grows(tmp_path, fake, monkeypatch):
    from searcher import coarse

    monkeypatch.setattr(coarse, "IVF_MIN_CHUNKS", 200)
    docs = many(tmp_path / "docs", n=50)
    build_index(docs, tmp_path / "idx", config(fake), encoder=fake)
    assert open_index(tmp_path / "idx").manifest.coarse == {"kind": "flat"}
    many(docs, n=150, seed=1)  # f000..f149: 100 new files
    build_index(docs, tmp_path / "idx", encoder=fake)
    first = open_index(tmp_path / "idx").manifest
    assert first.coarse["kind"] == "ivf" and first.coarse["trained_at"] == first.chunks
    (docs / "extra.txt").write_text("lava lava lava")
    build_index(docs, tmp_path / "idx", encoder=fake)
    assert open_index(tmp_path / "idx").manifest.coarse == first.coarse  # grown a little: the same cells
    many(docs, n=700, seed=2)
    build_index(docs, tmp_path / "idx", encoder=fake)
    grown = open_index(tmp_path / "idx").manifest
    assert grown.chunks >= 4 * first.chunks and grown.coarse["trained_at"] == grown.chunks


def test_a_large_ivf_scan_runs_on_every_core_and_finds_what_one_thread_finds(monkeypatch):
    import os

    import faiss

    from searcher import coarse
    from searcher.machine import query_threads

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ivf = coarse.new_ivf(x, 64)
    ivf.add_with_ids(x, np.arange(len(x), dtype=np.int64))
    coarse.prepare(ivf)
    assert ivf.parallel_mode == 1
    q = x[:3] + 0.1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    real = faiss.omp_set_num_threads

    def search(codes_threshold):
        """One coarse search inside a single-thread query: (D, I, thread settings it made)."""
        monkeypatch.setattr(coarse, "PARALLEL_SCAN_CODES", codes_threshold)
        with query_threads(1):
            calls = []
            monkeypatch.setattr(faiss, "omp_set_num_threads", lambda n: (calls.append(n), real(n)))
            D, I = coarse.search(ivf, q, 50, None, 32)  # 32 of 64 cells: ~10,000 codes
            monkeypatch.setattr(faiss, "omp_set_num_threads", real)
            assert faiss.omp_get_max_threads() == 1  # the query's own setting, restored
        return D, I, calls

    D1, I1, calls = search(10**9)
    assert calls == [] and coarse.scan_threads(ivf, 32) == 0  # a small scan stays on the caller's thread
    D2, I2, calls = search(1_000)
    cores = min(2, len(os.sched_getaffinity(0)))
    assert coarse.scan_threads(ivf, 32) == cores
    assert calls == ([cores, 1] if cores > 1 else [])
    assert np.array_equal(I1, I2) and np.allclose(D1, D2)


def test_the_default_nprobe_grows_with_the_cells_past_the_minimum():
    from searcher import coarse

    assert coarse.default_nprobe(coarse.nlist_for(1_000_000)) == coarse.NPROBE == 128  # 2,000 cells
    assert coarse.default_nprobe(coarse.nlist_for(10_000_000)) == 380  # 6,324 cells: 6%
    assert coarse.default_nprobe(100) == 100  # never more than the cells there are
    assert coarse.nprobe_for({"nlist": 6324}, 10, 10_000_000) == 380  # a record without nprobe: the default
    assert coarse.nprobe_for({"nlist": 6324, "nprobe": 128}, 10, 10_000_000) == 128  # an index keeps its own


def test_a_long_rerank_split_over_threads_scores_like_one_thread(tmp_path, fake, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from searcher.backends import local

    docs = many(tmp_path / "docs", n=200)
    build_index(docs, tmp_path / "idx", config(fake, full_storage="mixed"), encoder=fake)
    s = Searcher(tmp_path / "idx", encoder=fake)
    xq = fake.encode_queries(["magma plume", "owl nest"])
    D1, I1 = s.search_vectors(xq, k=20, mode="dense", shortlist=150)

    class Counting(ThreadPoolExecutor):  # real threads; counts the splits
        parts = []

        def map(self, fn, parts):
            parts = list(parts)
            Counting.parts.append(len(parts))
            return super().map(fn, parts)

    monkeypatch.setattr(local, "SPLIT_RERANK_ROWS", 10)
    monkeypatch.setattr(local, "_rerank_pool", lambda: (Counting(2), 2))
    D2, I2 = s.search_vectors(xq, k=20, mode="dense", shortlist=150)
    assert Counting.parts == [2, 2]  # each query's rerank went to two threads
    assert np.array_equal(I1, I2) and np.allclose(D1, D2, atol=1e-6)  # BLAS may round a row 1 ulp apart


def test_auto_gives_a_prefix_nobody_trained_no_benefit_of_the_doubt():
    """Chunks as queries measure both projections near 1.0 on a collection like this one (clusters of near
    duplicates); within the margin, a model without Matryoshka dims gets pca, one with them keeps its prefix."""
    from searcher.projection import CHOICE_MARGIN, choose

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 96)).astype(np.float32)
    x = centres[rng.integers(0, 20, 600)] + 0.05 * rng.standard_normal((600, 96)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    plain, _, measured = choose(x, requested="auto", coarse_dim=16, matryoshka_dims=(), shortlist=200, total=600)
    assert abs(measured["prefix"] - measured["pca"]) <= CHOICE_MARGIN, measured  # the case this rule decides
    trained, _, _ = choose(x, requested="auto", coarse_dim=16, matryoshka_dims=(96, 16), shortlist=200, total=600)
    assert (plain, trained) == ("pca", "prefix")
