"""The qdrant backend on Qdrant's real engine (an Edge shard in tmp_path): the same answers as the local backend in
every mode, incremental updates, filters, per-document results, reload, a killed sync finished by the next run,
and clear errors. qdrant-client's local mode checks the server path's request shapes; a real server is used
only where QDRANT_URL is set (docker run -p 6333:6333 qdrant/qdrant, then QDRANT_URL=http://127.0.0.1:6333)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import write_corpus

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.backends import qdrant, qdrant_server, qdrant_stores
from searcher.errors import InvalidInputError, SearcherError
from searcher.filters import Where
from searcher.projection import coarse_vectors

pytest.importorskip("qdrant_edge", reason="the qdrant extra is not installed: pip install 'searcher-local[qdrant]'")

QUERIES = ["pasta with tomato sauce", "planets and moons", "water the soil", "owls at night", "read a file"]
MODES = ["dense", "hybrid", "lexical", "full", "coarse"]


@pytest.fixture
def pair(tmp_path, fake, fake_config):
    """The same corpus indexed locally and into an Edge shard."""
    docs = write_corpus(tmp_path / "docs")
    qconfig = fake_config.replace(backend="qdrant", qdrant_path=str(tmp_path / "shard"))
    report = build_index(docs, tmp_path / "q", qconfig, encoder=fake)
    build_index(docs, tmp_path / "l", fake_config, encoder=fake)
    return docs, tmp_path / "q", tmp_path / "l", report


def _ids(hits):
    return [(h.id, round(h.score, 4)) for h in hits]


def _same(a, b):
    """Same scores; the same chunks, except that which of several chunks tied at the last place is kept, and the
    order inside a tie, may differ (FAISS's coarse-only search does not break ties by id)."""
    assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
    if not a:
        return
    last = round(a[-1].score, 4)
    for score in {round(h.score, 4) for h in a} - {last}:
        assert {h.id for h in a if round(h.score, 4) == score} == {h.id for h in b if round(h.score, 4) == score}


def test_every_mode_answers_like_the_local_backend(pair, fake):
    docs, q, local, report = pair
    assert report.synced.startswith("qdrant generation 1: ")
    with Searcher(q, encoder=fake) as sq, Searcher(local, encoder=fake) as sl:
        assert type(sq.backend).__name__ == "QdrantBackend" and type(sl.backend).__name__ == "LocalBackend"
        for mode in MODES:
            for query in QUERIES:
                a, b = sq.search(query, 5, mode=mode, per_doc=False), sl.search(query, 5, mode=mode, per_doc=False)
                _same(a, b)
                local_hits = {h.id: h for h in b}
                for h in a:  # the chunk record comes back from the payload as it is stored locally
                    if h.id in local_hits:
                        assert dataclasses.replace(h, score=0, rank_score=0, cosine=0) == dataclasses.replace(
                            local_hits[h.id], score=0, rank_score=0, cosine=0
                        )
                assert a.no_match == b.no_match
        D1, I1 = sq.search_vectors(fake.encode_queries(QUERIES), k=4)
        D2, I2 = sl.search_vectors(fake.encode_queries(QUERIES), k=4)
        assert np.allclose(D1, D2, atol=1e-4)
        for d, i1, i2 in zip(D1, I1, I2):  # the same chunks, but where scores tie (the fake's orthogonal vectors)
            untied = [j for j in range(len(d)) if np.sum(np.abs(d - d[j]) < 1e-4) == 1]
            assert [i1[j] for j in untied] == [i2[j] for j in untied]


def test_filters_and_per_document(pair, fake):
    docs, q, local, _ = pair
    with Searcher(q, encoder=fake) as sq, Searcher(local, encoder=fake) as sl:
        for where in (Where(types=("md",)), Where(paths=("nested/*",)), Where(types=("txt", "rst"))):
            a, b = (
                sq.search("water the soil", 10, where=where, per_doc=False),
                sl.search("water the soil", 10, where=where, per_doc=False),
            )
            _same(a, b)
            assert a and all(where.matches(h.source) for h in a)
        assert sq.search("water", 5, where=Where(types=("pdf",))) == []
        recent = Where.of(changed_within="30d")  # every file was written today: the local file table says so
        _same(sq.search("water the soil", 5, where=recent), sl.search("water the soil", 5, where=recent))
        assert sq.search("water", 5, where=Where.of(changed_before="2000-01-01")) == []
        a, b = sq.search("water", 3, per_doc=True), sl.search("water", 3, per_doc=True)
        _same(a, b)
        assert [len(h.more) for h in a] == [len(h.more) for h in b]
        assert len({h.source for h in a}) == len(a)


def _collection_ids(path: str) -> np.ndarray:
    """The chunk ids of the live points, sorted (a duplicate would show twice)."""
    store = qdrant_stores.EdgeStore(path)
    try:
        return np.sort(store.ids() & ((1 << qdrant.EPOCH_SHIFT) - 1))
    finally:
        store.close()


def _every_point(path: str) -> int:
    """Points in the shard, retired and meta included: what BM25's statistics count."""
    store = qdrant_stores.EdgeStore(path)
    try:
        return store.shard.count(store.models.CountRequest(exact=True))
    finally:
        store.close()


def _assert_mirrors(index_dir, shard) -> None:
    """The collection's live points are the index's chunks, each once."""
    index = open_index(index_dir)
    try:
        assert np.array_equal(_collection_ids(str(shard)), np.asarray(index.ids))
    finally:
        index.close()


def _finish_and_compare(docs, q, local, fake, shard, queries) -> None:
    """After an interrupted sync: the next run (nothing changed locally) syncs, and then answers as the local
    backend on the same documents."""
    report = build_index(docs, q, encoder=fake, export_encoder=False)
    assert report.generation == 0 and "points written" in report.synced
    build_index(docs, local, encoder=fake)
    _assert_mirrors(q, shard)
    with Searcher(q, encoder=fake) as sq, Searcher(local, encoder=fake) as sl:
        for query in queries:
            _same(sq.search(query, 5, mode="hybrid"), sl.search(query, 5, mode="hybrid"))


def test_incremental_update_replaces_changed_and_removes_deleted_files(pair, fake, tmp_path):
    docs, q, local, _ = pair
    first = open_index(q)
    old_ids = set(first.ids.tolist())
    first.close()
    (docs / "cooking.md").unlink()
    (docs / "astronomy.txt").write_text("Quantum physics of water waves.\n", encoding="utf-8")
    (docs / "new.md").write_text("# New\n\nA note about sourdough bread.\n", encoding="utf-8")
    report = build_index(docs, q, encoder=fake)
    build_index(docs, local, encoder=fake)
    assert report.removed == 1 and report.indexed == 2
    index = open_index(q)
    try:
        new_ids, gone_ids = set(index.ids.tolist()) - old_ids, old_ids - set(index.ids.tolist())
        # only the changed files' chunks travel; the others stay as they are in the collection
        assert report.synced.endswith(f": {len(new_ids)} points written, {len(gone_ids)} retired")
        assert 0 < len(new_ids) < len(index)
    finally:
        index.close()
    _assert_mirrors(q, tmp_path / "shard")  # no orphans, no duplicates
    with Searcher(q, encoder=fake) as sq, Searcher(local, encoder=fake) as sl:
        assert sq.backend.count() == len(sl.index)
        for query in QUERIES + ["sourdough bread", "quantum waves"]:
            _same(sq.search(query, 6, mode="hybrid"), sl.search(query, 6, mode="hybrid"))
        assert not any("cooking" in h.source for h in sq.search("pasta tomato sauce", 10, mode="lexical"))
    again = build_index(docs, q, encoder=fake, export_encoder=False)  # nothing changed: nothing written
    assert again.generation == 0 and again.synced.endswith("in step")


def test_a_reloaded_shard_answers_the_same(pair, fake):
    docs, q, _, _ = pair
    with Searcher(q, encoder=fake) as sq:
        before = [_ids(sq.search(query, 5)) for query in QUERIES]
    code = (
        "import sys; sys.path.insert(0, 'tests'); from fakes import FakeEncoder; from searcher import Searcher;"
        f"s = Searcher({str(q)!r}, encoder=FakeEncoder());"
        f"print([[(h.id, round(h.score, 4)) for h in s.search(x, 5)] for x in {QUERIES!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert out.stdout.strip() == str(before)


def test_a_killed_sync_is_invisible_and_the_next_run_finishes_it(pair, fake, tmp_path, monkeypatch):
    docs, q, local, _ = pair
    with Searcher(q, encoder=fake) as sq:
        before = [_ids(sq.search(query, 5, mode="dense")) for query in QUERIES]
        before_hybrid = [[h.id for h in sq.search(query, 5, mode="hybrid")] for query in QUERIES]
    (docs / "cooking.md").unlink()
    (docs / "extra.md").write_text("# Extra\n\nPasta again, with pesto and pine nuts.\n", encoding="utf-8")

    def killed(self, payload):
        raise KeyboardInterrupt  # the process dies after upserting and retiring, before publishing

    monkeypatch.setattr(qdrant_stores.EdgeStore, "set_meta", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index(docs, q, encoder=fake)
    monkeypatch.undo()
    with Searcher(q, encoder=fake) as sq:  # readers still see the last published generation, whole
        assert [_ids(sq.search(query, 5, mode="dense")) for query in QUERIES] == before
        # (the hidden points do count in BM25's statistics until the sync is finished: same hits, other scores)
        assert [[h.id for h in sq.search(query, 5, mode="hybrid")] for query in QUERIES] == before_hybrid
    _finish_and_compare(docs, q, local, fake, tmp_path / "shard", QUERIES + ["pesto"])


def test_a_rebuild_replaces_every_point(pair, fake, tmp_path):
    docs, q, _, _ = pair
    first = open_index(q)
    old_ids = np.asarray(first.ids).copy()
    first.close()
    build_index(docs, q, rebuild=True, encoder=fake)
    index = open_index(q)
    try:
        assert not set(index.ids.tolist()) & set(old_ids.tolist())  # ids are never reused
    finally:
        index.close()
    _assert_mirrors(q, tmp_path / "shard")


@pytest.mark.parametrize("quantization", ["scalar", "binary"])
def test_a_quantised_coarse_vector_is_rescored(tmp_path, fake, fake_config, quantization):
    docs = write_corpus(tmp_path / "docs")
    config = fake_config.replace(
        backend="qdrant", qdrant_path=str(tmp_path / "shard"), qdrant_quantization=quantization
    )
    build_index(docs, tmp_path / "q", config, encoder=fake)
    build_index(docs, tmp_path / "l", fake_config, encoder=fake)
    with Searcher(tmp_path / "q", encoder=fake) as sq, Searcher(tmp_path / "l", encoder=fake) as sl:
        for query in QUERIES:  # a shortlist as large as this small index: rescoring makes the answers exact
            _same(sq.search(query, 5, mode="dense"), sl.search(query, 5, mode="dense"))


def test_config_errors_name_the_fix(tmp_path):
    with pytest.raises(InvalidInputError, match="exactly one of --qdrant-url"):
        IndexConfig(backend="qdrant")
    with pytest.raises(InvalidInputError, match="exactly one of --qdrant-url"):
        IndexConfig(backend="qdrant", qdrant_url="http://x", qdrant_path="/y")
    with pytest.raises(InvalidInputError, match="qdrant_quantization must be one of"):
        IndexConfig(qdrant_quantization="pq")


def test_an_unreachable_server_is_one_clear_error_and_the_local_index_is_kept(tmp_path, fake, fake_config, monkeypatch):
    monkeypatch.setattr(qdrant_server, "RETRY_WAIT", 0.01)
    docs = write_corpus(tmp_path / "docs")
    config = fake_config.replace(backend="qdrant", qdrant_url="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(SearcherError, match="cannot reach Qdrant at http://127.0.0.1:9 .*run the same command again"):
        build_index(docs, tmp_path / "q", config, encoder=fake)
    index = open_index(tmp_path / "q")  # published locally; the next run syncs it
    try:
        assert len(index) > 0
    finally:
        index.close()


def test_a_shard_held_by_another_process_is_one_clear_error(pair, tmp_path):
    code = (
        "from qdrant_edge import EdgeShard; import sys, time; s = EdgeShard.load(sys.argv[1]);"
        "print('held', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "shard")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SearcherError, match="in use by another process .*--qdrant-url"):
            qdrant_stores.EdgeStore(str(tmp_path / "shard"))
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_indexes_and_queries_through_an_edge_shard(tmp_path, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = write_corpus(tmp_path / "docs")
    runner = CliRunner()
    shard = tmp_path / "shard"
    result = runner.invoke(
        cli,
        [
            "index",
            str(docs),
            "--index",
            str(tmp_path / "q"),
            "--qdrant-path",
            str(shard),
            "--chunk-tokens",
            "32",
            "--full-storage",
            "float32",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "qdrant generation 1: " in result.output
    result = runner.invoke(
        cli,
        ["index", str(docs), "--index", str(tmp_path / "l"), "--chunk-tokens", "32", "--full-storage", "float32", "-q"],
    )
    assert result.exit_code == 0, result.output
    outputs = [
        runner.invoke(cli, ["query", "owls hunt at night", "--index", str(tmp_path / name), "--format", "json"])
        for name in ("q", "l")
    ]
    assert outputs[0].exit_code == 0 and outputs[0].output == outputs[1].output
    bad = runner.invoke(cli, ["index", str(docs), "--index", str(tmp_path / "x"), "--backend", "qdrant"])
    assert bad.exit_code != 0 and "exactly one of --qdrant-url" in bad.output
    info = runner.invoke(cli, ["info", "--index", str(tmp_path / "q")])
    assert f"backend     Qdrant Edge shard {shard}; coarse vector quantization: none" in info.output
    dropped = runner.invoke(cli, ["drop", str(tmp_path / "q"), "--yes"])
    assert dropped.exit_code == 0 and f"kept the Qdrant Edge shard at {shard}" in dropped.output
    assert (shard / "segments").is_dir()  # the collection is other clients' too: not searcher's to delete silently


# --- the server path: request shapes against qdrant-client's local mode, answers against a real server ---------


def _client_store(url: str | None, collection: str):
    if url is None:  # the pure-Python local mode: the same request models, not the engine
        return qdrant_stores.ClientStore("", collection, location=":memory:")
    return qdrant_stores.ClientStore(url, collection)


def test_client_requests_are_well_formed(tmp_path, fake, fake_config):
    """Local mode validates every request model the server path sends (create, payload indexes, upsert, set and
    delete payload, delete by filter, scroll, facet, the prefetch funnel with its filter, retrieve)."""
    docs = write_corpus(tmp_path / "docs")
    build_index(docs, tmp_path / "l", fake_config.replace(qdrant_shards=3, qdrant_replicas=2), encoder=fake)
    index = open_index(tmp_path / "l")
    try:
        store = _client_store(None, "shapes")
        created, create = {}, store.client.create_collection
        store.client.create_collection = lambda *a, **kw: (created.update(kw), create(*a, **kw))[1]
        report = qdrant.sync(index, store=store)
        assert (created["shard_number"], created["replication_factor"]) == (3, 2)
        assert created["vectors_config"]["full"].on_disk and created["vectors_config"]["full"].hnsw_config.m == 0
        assert report.upserted == len(index) and report.generation == 1
        assert np.array_equal(store.ids(), np.asarray(index.ids))
        q = fake.encode_queries(["pasta with tomato sauce"])[0]
        scope = qdrant_stores.Scope(1, types=(".md",))
        hits = store.funnel(coarse_vectors(q[None, :], 64)[0], q, 20, 5, scope, 128, False)
        assert sorted(store.sources(1)) == sorted(str(p) for p in docs.rglob("*") if p.is_file())
        assert hits and all(h.payload["source"].endswith(".md") for h in hits)
        assert set(store.full_vectors([hits[0].id])) == {hits[0].id}
        assert store.count(qdrant_stores.Scope(1)) == len(index)
        assert qdrant.sync(index, store=store).upserted == 0
        store.close()
    finally:
        index.close()


@pytest.mark.skipif(
    not os.environ.get("QDRANT_URL"),
    reason="set QDRANT_URL to a Qdrant server to run "
    "(docker run -p 6333:6333 qdrant/qdrant; QDRANT_URL=http://127.0.0.1:6333)",
)
def test_a_real_server_answers_like_the_local_backend(tmp_path, fake, fake_config):
    docs = write_corpus(tmp_path / "docs")
    collection = f"searcher-test-{os.getpid()}-{int(time.time())}"
    config = fake_config.replace(backend="qdrant", qdrant_url=os.environ["QDRANT_URL"], qdrant_collection=collection)
    build_index(docs, tmp_path / "q", config, encoder=fake)
    build_index(docs, tmp_path / "l", fake_config, encoder=fake)
    try:
        with Searcher(tmp_path / "q", encoder=fake) as sq, Searcher(tmp_path / "l", encoder=fake) as sl:
            for mode in MODES:
                for query in QUERIES:
                    _same(sq.search(query, 5, mode=mode), sl.search(query, 5, mode=mode))
    finally:
        store = qdrant_stores.ClientStore(os.environ["QDRANT_URL"], collection)
        store.client.delete_collection(collection)
        store.close()


# --- Ray -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster on loopback, for the session."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'searcher-local[ray]'")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        object_store_memory=200 * 1024 * 1024,
    )
    yield ray
    ray.shutdown()


@pytest.mark.model
@pytest.mark.slow
def test_ray_embeds_like_the_local_path(tmp_path, ray_cluster, minilm):
    docs = write_corpus(
        tmp_path / "docs",
        {
            f"note{i}.md": f"# Note {i}\n\nThe tide came in at {i} o'clock; gulls followed the fishing boats home.\n"
            for i in range(12)
        },
    )
    config = IndexConfig(full_storage="float32", chunk_tokens=32, overlap_tokens=4)
    report = build_index(docs, tmp_path / "ray", config, encoder=minilm, ray="local")
    assert report.embedded_with.startswith("ray: torch") and report.embedded == report.chunks > 0
    build_index(docs, tmp_path / "local", config, encoder=minilm)
    a, b = open_index(tmp_path / "ray"), open_index(tmp_path / "local")
    try:
        xa = np.asarray(a.full) @ (a.rotation.T if a.rotation is not None else np.eye(a.full.shape[1]))
        xb = np.asarray(b.full) @ (b.rotation.T if b.rotation is not None else np.eye(b.full.shape[1]))
        assert [r["text"] for r in a.iter_chunks()] == [r["text"] for r in b.iter_chunks()]
        assert np.min(np.sum(xa * xb, axis=1)) >= 0.9999
    finally:
        a.close()
        b.close()


KILLED_SYNC = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from fakes import FakeEncoder
from searcher import build_index
from searcher.backends import qdrant, qdrant_server, qdrant_stores

qdrant.BATCH = 4  # many upsert requests, so that the kill lands between two of them

def progress(phase, done, total):
    if phase == "sync" and done >= 8:
        os.kill(os.getpid(), signal.SIGKILL)

build_index(sys.argv[2], sys.argv[3], encoder=FakeEncoder(), progress=progress)
"""


def test_sigkill_during_a_sync_loses_nothing(pair, fake, tmp_path):
    """A real kill (SIGKILL between two upserts): the shard recovers from its write-ahead log, readers see the
    previous generation, and the next run finishes the sync with no duplicate and no orphan point."""
    docs, q, local, _ = pair
    with Searcher(q, encoder=fake) as sq:
        before = [_ids(sq.search(query, 5, mode="dense")) for query in QUERIES]
    write_corpus(docs, {f"more/{i}.md": f"# Note {i}\n\nSourdough bread needs {i} hours to rise.\n" for i in range(12)})
    child = subprocess.run(
        [sys.executable, "-c", KILLED_SYNC, os.path.dirname(__file__), str(docs), str(q)],
        capture_output=True,
        text=True,
    )
    assert child.returncode == -9, child.stderr
    with Searcher(q, encoder=fake) as sq:
        assert [_ids(sq.search(query, 5, mode="dense")) for query in QUERIES] == before
    _finish_and_compare(docs, q, local, fake, tmp_path / "shard", QUERIES + ["sourdough bread"])


def test_a_client_with_only_the_collection_answers_the_same(pair, fake, tmp_path, use_fake_encoder):
    """The manifest lives in the collection: a Searcher (and `searcher query`) with no local index answers like the
    indexer's own, filters included (path globs go by the collection's own list of files)."""
    from click.testing import CliRunner

    from searcher.cli import cli

    docs, q, local, _ = pair
    with Searcher(q, encoder=fake) as sq:
        expected = [sq.search(query, 5) for query in QUERIES]
        filtered = sq.search("water", 5, where=Where(paths=("nested/*", "*.html")))
        sq_snippets = sq.search("owls hunting", 3)  # stemmed: "hunting" highlights "hunt"
    with Searcher.from_collection(qdrant_path=str(tmp_path / "shard"), encoder=fake) as remote:
        assert remote.manifest.model == open_index(local).manifest.model
        for query, hits in zip(QUERIES, expected):
            _same(remote.search(query, 5), hits)
        assert [h.id for h in remote.search("water", 5, where=Where(paths=("nested/*", "*.html")))] == [
            h.id for h in filtered
        ]
        assert remote.notices == []  # (an encoder was given: no model to load)
        with pytest.raises(InvalidInputError, match="need the index's local file table"):
            remote.search("water", 5, where=Where.of(changed_within="7d"))  # a file's time is not in the collection
        assert [(h.snippet, h.highlights) for h in remote.search("owls hunting", 3)] == [
            (h.snippet, h.highlights) for h in sq_snippets
        ]
    runner = CliRunner()
    by_index = runner.invoke(cli, ["query", "owls hunt at night", "--index", str(q), "--format", "json"])
    by_collection = runner.invoke(
        cli, ["query", "owls hunt at night", "--qdrant-path", str(tmp_path / "shard"), "--format", "json"]
    )
    assert by_collection.exit_code == 0, by_collection.output
    assert by_collection.stdout == by_index.stdout and "source" in by_index.stdout
    empty = tmp_path / "empty-shard"
    bad = runner.invoke(cli, ["query", "owls", "--qdrant-path", str(empty)])
    assert bad.exit_code == 2 and "holds no searcher index yet" in bad.output


@pytest.mark.model
def test_the_server_answers_from_an_edge_backed_index(tmp_path, minilm, monkeypatch):
    """`searcher serve` on a qdrant-backed index: the same records as `searcher query`; while it holds the shard,
    another process's `searcher index` is refused with one line naming the way out."""
    pytest.importorskip("httpx")
    import httpx
    from test_server import Server

    home = tmp_path / "home"
    docs = write_corpus(tmp_path / "docs")
    index_dir = tmp_path / "index"
    config = IndexConfig(backend="qdrant", qdrant_path=str(tmp_path / "shard"))
    monkeypatch.setenv("SEARCHER_HOME", str(home))
    build_index(docs, index_dir, config, encoder=minilm)
    env = {**os.environ, "SEARCHER_HOME": str(home)}
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "searcher",
            "query",
            "planets with rings",
            "-k",
            "3",
            "--index",
            str(index_dir),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    server = Server([index_dir], home)
    try:
        got = httpx.get(server.url + "/search", params={"query": "planets with rings", "k": 3}).json()
        assert got["hits"] == __import__("json").loads(cli.stdout) and got["hits"][0]["source"].endswith(
            "astronomy.txt"
        )
        (docs / "new.md").write_text("# New\n\nComets have icy tails.\n", encoding="utf-8")
        busy = subprocess.run(
            [sys.executable, "-m", "searcher", "index", str(docs), "--index", str(index_dir), "-q"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert busy.returncode == 2 and "in use by another process" in busy.stderr and "Traceback" not in busy.stderr
    finally:
        err = server.stop()
    assert "Traceback" not in err, err


class _Unavailable(Exception):
    status_code = 503


class _BadRequest(Exception):
    status_code = 400


def test_transient_errors_are_retried_and_a_refusal_is_not(tmp_path, fake, fake_config, monkeypatch):
    """Two 503s, then the real upsert (local mode): the sync succeeds; a 400 fails at once, in one line."""
    monkeypatch.setattr(qdrant_server, "RETRY_WAIT", 0.01)
    docs = write_corpus(tmp_path / "docs")
    build_index(docs, tmp_path / "l", fake_config, encoder=fake)
    index = open_index(tmp_path / "l")
    store = _client_store(None, "retries")
    real, calls = store.client.upsert, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise _Unavailable("service unavailable")
        return real(*args, **kwargs)

    try:
        monkeypatch.setattr(store.client, "upsert", flaky)
        assert qdrant.sync(index, store=store).upserted == len(index)
        assert len(calls) >= 3 and np.array_equal(store.ids(), np.asarray(index.ids))

        def refuse(*args, **kwargs):
            raise _BadRequest("Wrong input: vector dimension error")

        monkeypatch.setattr(store.client, "upsert", refuse)
        with pytest.raises(qdrant_stores.QdrantError, match="Qdrant refused a request .*vector dimension error"):
            store.upsert([1], np.zeros((1, 64)), np.zeros((1, 96)), [{}])
    finally:
        store.close()
        index.close()


def test_another_quantization_for_an_existing_collection_is_refused(pair, fake):
    docs, q, _, _ = pair
    config = open_index(q).manifest.config.replace(qdrant_quantization="scalar")
    with pytest.raises(InvalidInputError, match="was made with --qdrant-quantization none; pass that"):
        build_index(docs, q, config, encoder=fake)


def test_the_bm25_request_is_well_formed(monkeypatch):
    """Local mode builds and validates the server path's BM25 request, then cannot run it (it has no stemming text
    index: the engine, Edge or a server, does); the request is checked here, its answers by the tests above."""
    from qdrant_client.http import models

    store = _client_store(None, "text")
    try:
        store.create(96, 64, "none")
        sent, real = {}, store.client.query_points
        monkeypatch.setattr(store.client, "query_points", lambda *a, **kw: (sent.update(kw), real(*a, **kw))[1])
        with pytest.raises(qdrant_stores.QdrantError, match="refused a request.*default tokenization"):
            store.text("owls hunting", 5, qdrant_stores.Scope(3, types=(".md",)))
        assert isinstance(sent["query"], models.TextQuery) and sent["query"].text == "owls hunting"
        assert sent["using"] == qdrant_stores.LEXICAL and sent["limit"] == 5
        must = {c.key: c for c in sent["query_filter"].must}
        assert must["gen_from"].range.lte == 3 and must["ext"].match.any == [".md"]
        assert [c.key for c in sent["query_filter"].must_not] == ["gen_to"]
    finally:
        store.close()


def test_a_sync_killed_between_the_shard_and_its_indexes_is_finished_by_the_next(
    tmp_path, fake, fake_config, monkeypatch
):
    docs = write_corpus(tmp_path / "docs")
    qconfig = fake_config.replace(backend="qdrant", qdrant_path=str(tmp_path / "shard"))

    def killed(self):
        raise KeyboardInterrupt  # the shard exists, its payload and text indexes do not

    monkeypatch.setattr(qdrant_stores.EdgeStore, "ensure_indexes", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index(docs, tmp_path / "q", qconfig, encoder=fake)
    monkeypatch.undo()
    assert (tmp_path / "shard").is_dir()
    build_index(docs, tmp_path / "q", qconfig, encoder=fake)
    build_index(docs, tmp_path / "l", fake_config, encoder=fake)
    with Searcher(tmp_path / "q", encoder=fake) as sq, Searcher(tmp_path / "l", encoder=fake) as sl:
        for query in QUERIES:
            for mode in ("hybrid", "lexical"):
                _same(sq.search(query, 5, mode=mode), sl.search(query, 5, mode=mode))


def test_a_sync_killed_after_publishing_leaves_no_retired_point_behind(pair, fake, tmp_path, monkeypatch):
    docs, q, local, _ = pair
    (docs / "cooking.md").unlink()
    published = {}
    real_set_meta, real_delete = qdrant_stores.EdgeStore.set_meta, qdrant_stores.EdgeStore.delete_where

    def set_meta(self, payload):
        real_set_meta(self, payload)
        published["now"] = True

    def delete_where(self, key, kind, value):
        if published:
            raise KeyboardInterrupt  # killed after publishing, before the retired points were deleted
        real_delete(self, key, kind, value)

    monkeypatch.setattr(qdrant_stores.EdgeStore, "set_meta", set_meta)
    monkeypatch.setattr(qdrant_stores.EdgeStore, "delete_where", delete_where)
    with pytest.raises(KeyboardInterrupt):
        build_index(docs, q, encoder=fake)
    monkeypatch.undo()
    assert _every_point(str(tmp_path / "shard")) > len(open_index(q).ids) + 1, "the retired points are still there"
    build_index(docs, q, encoder=fake)  # nothing changed locally: the sync is in step, and verifies it
    build_index(docs, local, encoder=fake)
    _assert_mirrors(q, tmp_path / "shard")
    assert _every_point(str(tmp_path / "shard")) == len(open_index(q).ids) + 1, "chunks and the meta point only"
    with Searcher(q, encoder=fake) as sq, Searcher(local, encoder=fake) as sl:
        for query in QUERIES:
            _same(sq.search(query, 5, mode="hybrid"), sl.search(query, 5, mode="hybrid"))
