"""Two-stage search against the exact reference, with the fake encoder."""

import random

import numpy as np
import pytest
from conftest import write_corpus

from searcher import Searcher, build_index
from searcher.errors import InvalidInputError, ModelError

WORDS = (
    "river mountain forest ocean desert valley island canyon glacier meadow volcano lake "
    "owl eagle sparrow heron falcon raven swan crane robin wren"
).split()


@pytest.fixture(scope="module")
def big_index(tmp_path_factory):
    """~600 chunks of random word soup: enough that a small shortlist misses things."""
    from fakes import FakeEncoder

    fake = FakeEncoder(dim=128)
    rng = random.Random(0)
    files = {
        f"doc{i:03d}.txt": "\n\n".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))) + "." for _ in range(6)
        )
        for i in range(100)
    }
    root = tmp_path_factory.mktemp("big")
    write_corpus(root / "docs", files)
    from searcher import IndexConfig

    config = IndexConfig(
        model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=0, projection="prefix"
    )
    build_index(root / "docs", root / "idx", config, encoder=fake)
    queries = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(40)]
    return Searcher(root / "idx", encoder=fake), fake.encode_queries(queries)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def test_two_stage_equals_exact_when_the_shortlist_holds_every_chunk(big_index):
    searcher, xq = big_index
    n = len(searcher.index)
    D_full, I_full = searcher.search_vectors(xq, k=10, mode="full")
    D_two, I_two = searcher.search_vectors(xq, k=10, shortlist=n)
    np.testing.assert_array_equal(I_two, I_full)
    np.testing.assert_allclose(D_two, D_full, atol=1e-6)


def test_agreement_with_exact_never_falls_as_the_shortlist_grows(big_index):
    searcher, xq = big_index
    _, I_full = searcher.search_vectors(xq, k=10, mode="full")
    agreements = [
        overlap(searcher.search_vectors(xq, k=10, shortlist=s)[1], I_full) for s in (10, 20, 40, 80, 160, 320, 640)
    ]
    assert agreements == sorted(agreements)
    assert agreements[0] < 1.0 and agreements[-1] == 1.0, "the test corpus must be hard enough to show a difference"


def test_exact_search_matches_brute_force(big_index):
    searcher, xq = big_index
    D, I = searcher.search_vectors(xq[:3], k=5, mode="full")
    scores = xq[:3] @ np.asarray(searcher.index.full).T
    for i in range(3):
        best = np.sort(scores[i])[::-1][:5]
        np.testing.assert_allclose(D[i], best, atol=1e-6)


def test_coarse_mode_returns_the_coarse_ranking(big_index):
    searcher, xq = big_index
    D, I = searcher.search_vectors(xq, k=5, mode="coarse")
    assert (I >= 0).all() and (np.diff(D, axis=1) <= 1e-6).all()


def test_search_results_are_clamped_when_k_exceeds_the_index(tmp_path, corpus, fake, fake_config):
    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    searcher = Searcher(tmp_path / "idx", encoder=fake)
    n = len(searcher.index)
    D, I = searcher.search_vectors(fake.encode_queries(["owls"]), k=n + 5, shortlist=3)
    assert I.shape == (1, n) and (I[0] >= 0).all(), "k is clamped to the index, nothing padded beyond it"
    assert len(searcher.search("owls", k=n + 5, per_doc=False)) == n


def test_hits_carry_the_chunk_metadata(tmp_path, corpus, fake, fake_config):
    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    hits = Searcher(tmp_path / "idx", encoder=fake).search("Owls hunt at night", k=3)
    top = hits[0]
    assert top.source == str(corpus / "nested" / "birds.md") and top.title == "Birds"
    assert "Owls hunt at night" in top.text
    text = (corpus / "nested" / "birds.md").read_text()
    assert text[top.start : top.end] == top.text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("projection", ["prefix", "pca"])
def test_batch_equals_single_queries(tmp_path, corpus, fake, fake_config, projection):
    """To the last bit: a rotated query (pca) alone and in a batch took other BLAS kernels, and their scores
    differed in the fourth digit after fusion."""
    build_index(corpus, tmp_path / "idx", fake_config.replace(projection=projection), encoder=fake)
    searcher = Searcher(tmp_path / "idx", encoder=fake)
    queries = ["tomato sun", "moon craters", "rice"]
    assert searcher.search_batch(queries, k=4) == [searcher.search(q, k=4) for q in queries]


def test_pca_rotation_leaves_exact_scores_unchanged(tmp_path, corpus, fake, fake_config):
    build_index(corpus, tmp_path / "a", fake_config.replace(projection="prefix"), encoder=fake)
    build_index(corpus, tmp_path / "b", fake_config.replace(projection="pca"), encoder=fake)
    xq = fake.encode_queries(["pasta with tomato sauce", "eagles nest"])
    Da, Ia = Searcher(tmp_path / "a", encoder=fake).search_vectors(xq, k=5, mode="full")
    Db, Ib = Searcher(tmp_path / "b", encoder=fake).search_vectors(xq, k=5, mode="full")
    np.testing.assert_allclose(Da, Db, atol=1e-5)
    # Ids agree wherever the score is not tied with another one (a rotation changes rounding, so tied chunks
    # may trade places).
    for da, ia, ib in zip(Da, Ia, Ib):
        untied = [j for j in range(len(da)) if np.sum(np.abs(da - da[j]) < 1e-5) == 1]
        assert untied and [ia[j] for j in untied] == [ib[j] for j in untied]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "   "}, "query is empty"),
        ({"query": "x", "k": 0}, "k must be at least 1, got 0"),
        ({"query": "x", "shortlist": 0}, "shortlist must be at least 1, got 0"),
        ({"query": "x", "mode": "fast"}, "mode must be one of hybrid, dense, lexical, full, coarse"),
    ],
)
def test_bad_search_arguments(tmp_path, corpus, fake, fake_config, kwargs, message):
    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    with pytest.raises(InvalidInputError, match=message):
        Searcher(tmp_path / "idx", encoder=fake).search(**kwargs)


def test_querying_with_another_model_is_an_error(tmp_path, corpus, fake, fake_config):
    from fakes import FakeEncoder

    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    other = FakeEncoder(salt="x", name="other")
    with pytest.raises(ModelError, match=r"'other' did not build the index .* \(built with 'fake-hash-encoder'\)"):
        Searcher(tmp_path / "idx", encoder=other).search("owls")
    same_weights_other_name = FakeEncoder(name="copy-of-fake")
    assert Searcher(tmp_path / "idx", encoder=same_weights_other_name).search("owls")


def test_small_batches_search_on_one_thread_and_large_ones_keep_the_team(tmp_path, corpus, fake, fake_config):
    import faiss
    from threadpoolctl import threadpool_info

    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    searcher = Searcher(tmp_path / "idx", encoder=fake)
    seen = []

    class Recording:  # records the thread settings in force when FAISS is called; the real index answers
        def __init__(self, index):
            self.index = index

        def search(self, x, k):
            blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            seen.append((len(x), faiss.omp_get_max_threads(), blas))
            return self.index.search(x, k)

    searcher.backend._coarse = Recording(searcher.backend._coarse)
    before = faiss.omp_get_max_threads()
    for mode in ("dense", "coarse"):
        searcher.search("owls at night", k=3, mode=mode)
    searcher.search_batch(["owls"] * 64, k=3)
    assert [(n, threads) for n, threads, _ in seen] == [(1, 1), (1, 1), (64, before)]
    assert all(b == [1] * len(b) for _, _, b in seen[:2]) and seen[0][2], f"BLAS on one thread too: {seen}"
    assert faiss.omp_get_max_threads() == before, "the setting is restored"


def test_query_threads_holds_when_queries_overlap_and_restores_after_the_last():
    """Server threads enter and leave query_threads in any order: each query runs FAISS on one thread while it is
    inside, also after another query has left, and every setting (FAISS's, each BLAS library's) is back as it was
    after the last one leaves. (How a BLAS limit set in one thread shows in another depends on the BLAS build, so
    inside a query only FAISS's, an OpenMP setting of the calling thread, is checked.)"""
    import threading

    import faiss
    from threadpoolctl import threadpool_info

    from searcher.machine import query_threads

    def settings():
        blas = sorted((i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")
        return faiss.omp_get_max_threads(), blas

    before = settings()
    inside, first_out = threading.Barrier(2), threading.Event()
    seen: dict[str, int] = {}

    def first():
        with query_threads(1):
            inside.wait(timeout=10)
            seen["first"] = faiss.omp_get_max_threads()
        first_out.set()

    def second():
        with query_threads(1):
            inside.wait(timeout=10)
            first_out.wait(timeout=10)
            seen["second, after the first left"] = faiss.omp_get_max_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert seen == {"first": 1, "second, after the first left": 1}
    assert settings() == before
    with query_threads(1):  # and the main thread can still lower and restore them
        assert faiss.omp_get_max_threads() == 1
    assert settings() == before
