"""Full-vector storage types (vectors.py): each round-trips, updates and deletes like float32, and two-stage search
equals exact search over the same stored vectors when the shortlist covers the index."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_corpus

from searcher import IndexConfig, Searcher, build_index, open_index, store
from searcher.errors import IndexFormatError
from searcher.vectors import DOT_ROWS, FILES, QUANTIZERS, scores

TOPIC_WORDS = "lava ash crater magma plume basalt ridge summit eruption tremor owl sparrow eagle nest seed".split()


def many(root, n=60, seed=0):
    rng = np.random.default_rng(seed)
    return write_corpus(root, {f"f{i:03d}.txt": " ".join(rng.choice(TOPIC_WORDS, 30)) for i in range(n)})


@pytest.mark.parametrize("storage, tolerance", [("float32", 0.0), ("float16", 1e-3), ("mixed", 2e-2), ("int8", 2e-2)])
def test_each_storage_type_round_trips_updates_and_deletes(tmp_path, fake, storage, tolerance):
    docs = many(tmp_path / "docs")
    index_dir = tmp_path / "idx"
    config = IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, full_storage=storage)
    build_index(docs, tmp_path / "reference", config.replace(full_storage="float32"), encoder=fake)
    reference = open_index(tmp_path / "reference")
    build_index(docs, index_dir, config, encoder=fake)
    index = open_index(index_dir)
    assert (index.path / FILES[storage]).is_file() and not (storage != "float32" and (index.path / "full.npy").exists())
    assert [q for q in QUANTIZERS.values() if (index.path / q).is_file()] == (
        [QUANTIZERS[storage]] if storage in QUANTIZERS else []
    )
    records = list(index.iter_chunks())
    exact = np.asarray(reference.full)
    stored = index.full[np.arange(len(index))]
    assert stored.dtype == np.float32 and stored.shape == exact.shape
    assert np.abs(stored - exact).max() <= tolerance + 1e-7
    assert np.allclose(index.full[3], stored[3]) and np.allclose(index.full[2:5], stored[2:5])
    # A rerank's scores come from the codes without decoding rows (vectors.scores): the same as decoding them,
    # for unsorted and repeated rows over several of FullVectors.dot's blocks.
    rows = np.random.default_rng(1).integers(0, len(index), 3 * DOT_ROWS + 5)
    q = exact[7]
    assert np.allclose(scores(index.full, rows, q), stored[rows] @ q, atol=1e-5)
    index.close()

    # An update keeps the untouched rows' stored vectors bit for bit (no drift from decoding and encoding again),
    # drops a deleted file's rows and adds a new file's.
    (docs / "f000.txt").unlink()
    (docs / "new.txt").write_text("geyser geyser steam vent hot spring")
    build_index(docs, index_dir, encoder=fake)
    after = open_index(index_dir)
    kept = {r["id"]: row for row, r in enumerate(records)}
    rows_now = {r["id"]: row for row, r in enumerate(after.iter_chunks())}
    assert not any(r["source"].endswith("f000.txt") for r in after.chunks(range(len(after))))
    common = sorted(set(kept) & set(rows_now))
    assert np.array_equal(after.full[[rows_now[i] for i in common]], stored[[kept[i] for i in common]])
    after.close()

    s = Searcher(index_dir, encoder=fake)
    assert s.search("geyser steam", 1, mode="dense")[0].source.endswith("new.txt")
    D2, I2 = s.search_vectors(fake.encode_queries(["magma plume"]), k=10, mode="dense", shortlist=10_000)
    Df, If = s.search_vectors(fake.encode_queries(["magma plume"]), k=10, mode="full")
    assert np.array_equal(I2, If) and np.allclose(D2, Df, atol=1e-5)


@pytest.mark.parametrize("before, after", [("mixed", "int8"), ("int8", "mixed"), ("float32", "mixed")])
def test_changing_the_storage_type_converts_an_index_without_embedding(tmp_path, fake, before, after):
    docs = many(tmp_path / "docs")
    index_dir = tmp_path / "idx"
    build_index(
        docs,
        index_dir,
        IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, full_storage=before),
        encoder=fake,
    )
    before = Searcher(index_dir, encoder=fake).search_vectors(fake.encode_queries(["owl nest"]), k=5, mode="full")
    fake.embedded.clear()
    report = build_index(
        docs,
        index_dir,
        IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, full_storage=after),
        encoder=fake,
    )
    assert report.embedded == 0 and fake.embedded == []
    s = Searcher(index_dir, encoder=fake)
    assert s.manifest.config.full_storage == after
    assert sorted(p.name for p in s.index.path.glob("full.*")) == sorted(
        [FILES[after]] + ([QUANTIZERS[after]] if after in QUANTIZERS else [])
    )
    after = s.search_vectors(fake.encode_queries(["owl nest"]), k=5, mode="full")
    assert list(after[1][0][:3]) == list(before[1][0][:3])


def test_an_index_without_a_storage_type_is_read_as_float32(tmp_path, fake):
    import orjson

    docs = many(tmp_path / "docs", n=5)
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name, full_storage="float32"), encoder=fake)
    manifest = orjson.loads((tmp_path / "idx" / "manifest.json").read_bytes())
    del manifest["config"]["full_storage"]  # as an index made before storage types existed
    (tmp_path / "idx" / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert Searcher(tmp_path / "idx", encoder=fake).search("owl", 1)
    assert open_index(tmp_path / "idx").manifest.config.full_storage == "float32"


def test_a_damaged_quantizer_is_one_line(tmp_path, fake):
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = many(tmp_path / "docs", n=5)
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name, full_storage="int8"), encoder=fake)
    (open_index(tmp_path / "idx").path / QUANTIZERS["int8"]).write_bytes(b"not faiss")
    result = CliRunner().invoke(cli, ["query", "owl", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2 and "full.sq8.faiss is damaged" in result.output and "--rebuild" in result.output


@pytest.mark.parametrize("coarse_dim", [16, 96])
def test_mixed_storage_keeps_the_coarse_dims_in_float16(tmp_path, fake, coarse_dim):
    """The head (the projection's first coarse_dim dims) is float16-exact, the tail int8; with coarse_dim equal to
    the model's width there is no tail and no quantizer."""
    docs = many(tmp_path / "docs")
    config = IndexConfig(
        model=fake.info.name, chunk_tokens=32, overlap_tokens=4, projection="pca", coarse_dim=coarse_dim
    )
    build_index(docs, tmp_path / "ref", config.replace(full_storage="float32"), encoder=fake)
    build_index(docs, tmp_path / "mixed", config.replace(full_storage="mixed"), encoder=fake)
    build_index(docs, tmp_path / "int8", config.replace(full_storage="int8"), encoder=fake)
    exact, mixed, int8 = (
        np.asarray(open_index(tmp_path / name).full[np.arange(len(open_index(tmp_path / name)))])
        for name in ("ref", "mixed", "int8")
    )
    h = min(coarse_dim, fake.dim)
    assert np.abs(mixed[:, :h] - exact[:, :h]).max() <= 1e-3
    assert np.abs(mixed[:, :h] - exact[:, :h]).max() < np.abs(int8[:, :h] - exact[:, :h]).max() / 4
    assert np.abs(mixed[:, h:] - exact[:, h:]).max(initial=0) <= 2e-2  # the int8 tail, if any
    gen = open_index(tmp_path / "mixed").path
    assert np.load(gen / FILES["mixed"], mmap_mode="r").shape[1] == fake.dim + h
    assert (gen / QUANTIZERS["mixed"]).is_file() == (h < fake.dim)
    xq = fake.encode_queries(["magma plume"])
    s = Searcher(tmp_path / "mixed", encoder=fake)
    D2, I2 = s.search_vectors(xq, k=10, mode="dense", shortlist=10_000)
    Df, If = s.search_vectors(xq, k=10, mode="full")
    assert np.array_equal(I2, If) and np.allclose(D2, Df, atol=1e-5)


@pytest.mark.parametrize("storage", ["int8", "mixed"])
@pytest.mark.parametrize("damage", ["truncated codes", "float32 codes", "missing quantizer", "flat quantizer"])
def test_damaged_int8_files_are_one_line(tmp_path, fake, damage, storage):
    import faiss
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = many(tmp_path / "docs", n=5)
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name, full_storage=storage), encoder=fake)
    gen = open_index(tmp_path / "idx").path
    codes, n = gen / FILES[storage], len(open_index(tmp_path / "idx"))
    quantizer = QUANTIZERS[storage]
    if damage == "truncated codes":
        codes.write_bytes(codes.read_bytes()[:-40])
    elif damage == "float32 codes":
        np.save(codes, np.zeros((n, fake.dim), np.float32))
    elif damage == "missing quantizer":
        (gen / quantizer).unlink()
    else:
        faiss.write_index(faiss.IndexFlatIP(fake.dim), str(gen / quantizer))
    result = CliRunner().invoke(cli, ["query", "owl", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2 and result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
    assert "is damaged" in result.output and "--rebuild" in result.output


def test_rows_of_finds_every_id_through_its_fence(tmp_path, fake, monkeypatch):
    """rows_of searches the page of ids.npy that its in-RAM fence (every FENCE-th id) names, or, for as many ids as
    pages, all of ids.npy at once: with a fence of 4 over ids with gaps (deleted files), both find every id in any
    order, and an id the index lacks is damage to either."""
    monkeypatch.setattr(store, "FENCE", 4)
    docs = many(tmp_path / "docs")
    config = IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4)
    build_index(docs, tmp_path / "idx", config, encoder=fake)
    for name in ("f003.txt", "f010.txt", "f011.txt", "f040.txt"):
        (docs / name).unlink()
    build_index(docs, tmp_path / "idx", encoder=fake)
    index = open_index(tmp_path / "idx")
    ids = np.asarray(index.ids)
    assert len(ids) > 20 and np.any(np.diff(ids) > 1)
    order = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(index.rows_of(ids[order]), order)  # all of them: one searchsorted
    assert all(index.rows_of(ids[[row]])[0] == row for row in range(len(ids)))  # one at a time: the fence
    assert np.array_equal(index.rows_of(ids[[0, -1, 0]]), [0, len(ids) - 1, 0])
    assert index._fence is not None and index._fence[0] == 4
    missing = np.setdiff1d(np.arange(ids[-1] + 2), ids)
    for absent in (missing[0], missing[len(missing) // 2], ids[-1] + 1):
        for asked in (np.array([ids[1], absent]), np.concatenate([ids[order], [absent]])):
            with pytest.raises(IndexFormatError):
                index.rows_of(asked)
