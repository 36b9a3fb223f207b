"""Building and incrementally updating an index, with the fake encoder."""

import os
import time

import numpy as np
import pytest
from conftest import write_corpus
from fakes import FakeEncoder

from searcher import Searcher, build_index, open_index
from searcher.errors import IndexFormatError, InvalidInputError, ModelError
from searcher.projection import coarse_vectors
from searcher.store import Manifest


def build(corpus, index, fake, config, **kw):
    return build_index(corpus, index, config, encoder=fake, **kw)


def records_by_source(index_dir):
    out = {}
    for r in open_index(index_dir).iter_chunks():
        out.setdefault(os.path.basename(r["source"]), []).append(r)
    return out


def test_first_build_indexes_every_supported_file(tmp_path, corpus, fake, fake_config):
    (corpus / "image.png").write_bytes(b"\x89PNG")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.md").write_text("# hidden")
    report = build(corpus, tmp_path / "idx", fake, fake_config)
    assert (report.indexed, report.unchanged, report.skipped, report.failed, report.removed) == (5, 0, 1, 0, 0)
    assert report.documents == 5 and report.chunks == len(fake.embedded) and report.embedded == report.chunks
    sources = records_by_source(tmp_path / "idx")
    assert set(sources) == {"cooking.md", "astronomy.txt", "gardening.html", "python.rst", "birds.md"}
    garden = sources["gardening.html"][0]
    assert garden["title"] == "Growing tomatoes" and "Copyright" not in garden["text"] and "var x" not in garden["text"]
    assert garden["doc_id"] == "docs/gardening.html"
    assert sources["birds.md"][0]["doc_id"] == "docs/nested/birds.md"


def test_rerun_on_unchanged_folder_embeds_nothing(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config)
    before = open_index(tmp_path / "idx")
    n_embedded = len(fake.embedded)
    os.utime(corpus / "cooking.md")  # touched, same bytes: hashed, found equal
    report = build(corpus, tmp_path / "idx", fake, None)
    assert len(fake.embedded) == n_embedded
    assert (report.indexed, report.unchanged, report.embedded) == (0, 5, 0)
    after = open_index(tmp_path / "idx")
    assert np.array_equal(before.ids, after.ids) and np.array_equal(before.full, after.full)
    assert after.manifest.generation == before.manifest.generation + 1


def test_add_change_and_delete_files(tmp_path, corpus, fake, fake_config):
    idx = tmp_path / "idx"
    build(corpus, idx, fake, fake_config)
    old = records_by_source(idx)
    old_ids = {s: [r["id"] for r in rs] for s, rs in old.items()}
    (corpus / "astronomy.txt").unlink()
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice. Simmer it covered for twenty minutes.\n")
    (corpus / "new.txt").write_text("Volcanoes erupt molten lava and ash.")
    fake.embedded.clear()
    report = build(corpus, idx, fake, None)
    assert (report.indexed, report.unchanged, report.removed) == (2, 3, 1)
    new = records_by_source(idx)
    assert "astronomy.txt" not in new and "new.txt" in new
    assert "rice" in " ".join(r["text"] for r in new["cooking.md"])
    assert {s: [r["id"] for r in rs] for s, rs in new.items() if s in ("birds.md", "python.rst")} == {
        s: old_ids[s] for s in ("birds.md", "python.rst")
    }, "unchanged files keep their chunk ids"
    assert min(r["id"] for r in new["cooking.md"]) > max(max(v) for v in old_ids.values()), "ids are never reused"
    assert sorted(fake.embedded) == sorted(
        r["text"] if r["text"].startswith(r["title"]) else f"{r['title']}\n{r['text']}"
        for s in ("cooking.md", "new.txt")
        for r in new[s]
    ), "only the new text was embedded"
    # Both indexes and the metadata agree after the update.
    index = open_index(idx)
    coarse = index.load_coarse()
    import faiss

    assert sorted(faiss.vector_to_array(coarse.id_map)) == list(index.ids)
    assert index.manifest.files == 5 and index.manifest.chunks == len(index.ids)
    for row, record in enumerate(index.iter_chunks()):
        assert record["id"] == index.ids[row]
    deleted = set(old_ids["astronomy.txt"])
    hits = Searcher(idx, encoder=fake).search("moon telescope craters", k=50, shortlist=50)
    assert not deleted & {h.id for h in hits}


def test_coarse_index_after_updates_equals_a_fresh_build(tmp_path, corpus, fake, fake_config):
    idx = tmp_path / "idx"
    build(corpus, idx, fake, fake_config.replace(projection="prefix"))
    (corpus / "python.rst").unlink()
    (corpus / "more.md").write_text("# More\n\nExtra text about owls and rivers.\n")
    build(corpus, idx, fake, None)
    index = open_index(idx)
    coarse = index.load_coarse()
    import faiss

    stored_ids = faiss.vector_to_array(coarse.id_map)
    stored = coarse.index.reconstruct_n(0, coarse.ntotal)
    rebuilt = coarse_vectors(np.asarray(index.full), index.manifest.projection.coarse_dim)
    order = np.argsort(stored_ids)
    assert np.array_equal(stored_ids[order], index.ids)
    np.testing.assert_allclose(stored[order], rebuilt, atol=1e-6)


def test_moved_file_reuses_its_vectors(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config)
    (corpus / "cooking.md").rename(corpus / "nested" / "cooking-moved.md")
    fake.embedded.clear()
    report = build(corpus, tmp_path / "idx", fake, None)
    assert report.removed == 1 and report.indexed == 1
    assert fake.embedded == [] and report.reused > 0


def test_binary_files_are_skipped_with_a_warning_and_latin1_read(tmp_path, corpus, fake, fake_config):
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 garbage")
    (corpus / "latin1.md").write_bytes("café".encode("latin-1"))
    report = build(corpus, tmp_path / "idx", fake, fake_config)
    assert report.indexed == 6 and report.skipped == 1
    assert any("binary.txt" in w and "binary" in w for w in report.warnings)


def test_unreadable_file_keeps_its_indexed_version(tmp_path, corpus, fake, fake_config, monkeypatch):
    build(corpus, tmp_path / "idx", fake, fake_config)
    path = corpus / "cooking.md"
    path.write_text("# Changed\n\nSomething else entirely.\n")
    import searcher.scan

    real_read = searcher.scan.read_regular

    def read_regular(p):  # chmod 0 does not stop root, so fail the read directly
        if p == path:
            raise PermissionError(13, "Permission denied")
        return real_read(p)

    monkeypatch.setattr(searcher.scan, "read_regular", read_regular)
    report = build(corpus, tmp_path / "idx", fake, None)
    assert report.failed == 1 and "cannot read (Permission denied); kept the indexed version" in report.warnings[0]
    assert "pasta" in " ".join(r["text"] for r in records_by_source(tmp_path / "idx")["cooking.md"])


def test_empty_folder_is_an_error_and_changes_nothing(tmp_path, corpus, fake, fake_config):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no documents to index.*no file there of a type searcher reads"):
        build(empty, tmp_path / "idx", fake, fake_config)
    (empty / "minutes.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    (empty / "dump.txt").write_bytes(b"\x00\x01")
    with pytest.raises(InvalidInputError) as error:  # says what the folder held instead, and why each was left out
        build(empty, tmp_path / "idx", fake, fake_config)
    assert "2 file(s) skipped" in str(error.value) and "binary content" in str(error.value)
    assert "minutes.doc (Word 97-2003 (.doc): save it as .docx to index it)" in str(error.value)
    build(corpus, tmp_path / "idx", fake, fake_config)
    for f in list(corpus.rglob("*")):
        if f.is_file():
            f.unlink()
    with pytest.raises(InvalidInputError, match="nothing was changed"):
        build(corpus, tmp_path / "idx", fake, None)
    assert open_index(tmp_path / "idx").manifest.documents == 5


def test_a_second_source_folder_is_added_beside_the_first(tmp_path, corpus, fake, fake_config):
    other = write_corpus(tmp_path / "other", {"x.txt": "Completely separate notes about trains."})
    build(corpus, tmp_path / "idx", fake, fake_config)
    report = build(other, tmp_path / "idx", fake, None)
    assert report.removed == 0 and report.documents == 6
    assert open_index(tmp_path / "idx").manifest.sources == (str(corpus), str(other))


def test_a_file_the_rules_leave_out_indexed_by_name_stays_through_updates_unread(
    tmp_path, corpus, fake, fake_config, use_fake_encoder
):
    from searcher.upkeep import update_index

    idx = tmp_path / "idx"
    build(corpus, idx, fake, fake_config.replace(exclude=("nested/*",)))
    named = corpus / "nested" / "birds.md"
    build(named, idx, fake, None)  # a source of its own: the first source's rules leave it out
    assert open_index(idx).manifest.sources == (str(corpus), str(named))
    entry = next(e for e in open_index(idx).files() if e.path == str(named))
    for _ in range(2):  # the first source's scan keeps the nested source's file: neither removed nor re-read
        reports = dict(update_index(idx))
        assert reports[str(corpus)].removed == 0 and reports[str(named)].indexed == 0
    assert next(e for e in open_index(idx).files() if e.path == str(named)) == entry, "the same chunks, kept"
    named.unlink()  # gone from disk: the folder's scan takes it out (a watch of the folder sees the delete)
    assert build(corpus, idx, fake, None).removed == 1
    assert not any(e.path == str(named) for e in open_index(idx).files())


def test_other_model_is_refused_unless_rebuilding(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config)
    other = FakeEncoder(salt="different weights", name="other-model")
    with pytest.raises(ModelError, match="was built with model 'fake-hash-encoder'.*--rebuild"):
        build(corpus, tmp_path / "idx", other, fake_config.replace(model="other-model"))
    report = build(corpus, tmp_path / "idx", other, fake_config.replace(model="other-model"), rebuild=True)
    assert report.embedded == report.chunks
    assert open_index(tmp_path / "idx").manifest.model.name == "other-model"


def test_same_model_name_with_other_weights_is_refused_and_says_so(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config)
    retrained = FakeEncoder(salt="retrained")  # same name, e.g. a model directory fine-tuned again
    with pytest.raises(ModelError, match="'fake-hash-encoder' has changed since the index .* was built with it"):
        build(corpus, tmp_path / "idx", retrained, fake_config)
    assert open_index(tmp_path / "idx").manifest.model.same_weights(fake.info), "nothing changed"


def test_changing_chunk_size_rechunks_everything(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config)
    n = open_index(tmp_path / "idx").manifest.chunks
    report = build(corpus, tmp_path / "idx", fake, fake_config.replace(chunk_tokens=16, overlap_tokens=0))
    assert report.indexed == 5 and open_index(tmp_path / "idx").manifest.chunks > n


def test_changing_projection_refits_without_embedding(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config.replace(projection="prefix"))
    fake.embedded.clear()
    build(corpus, tmp_path / "idx", fake, fake_config.replace(projection="pca"))
    index = open_index(tmp_path / "idx")
    assert fake.embedded == []
    assert index.manifest.projection.kind == "pca" and index.rotation is not None
    rotation = index.rotation.astype(np.float64)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(fake.dim), atol=1e-5)


def test_manifest_round_trips(tmp_path, corpus, fake, fake_config):
    build(corpus, tmp_path / "idx", fake, fake_config.replace(projection="auto"))
    manifest = open_index(tmp_path / "idx").manifest
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert manifest.config == fake_config.replace(projection="auto")
    assert set(manifest.projection.measurement) >= {"prefix", "pca", "sample", "shortlist"}


def test_store_round_trip_reads_back_what_was_written(tmp_path, corpus, fake, fake_config):
    from searcher.chunking import chunk_document
    from searcher.ingest import parse_file

    build(corpus, tmp_path / "idx", fake, fake_config.replace(projection="prefix"))
    index = open_index(tmp_path / "idx")
    path = corpus / "cooking.md"
    docs, _ = parse_file(path, path.read_bytes(), doc_id="docs/cooking.md")
    expected = chunk_document(docs[0], fake, chunk_tokens=32, overlap_tokens=4)
    rows = [i for i, r in enumerate(index.iter_chunks()) if r["source"] == str(path)]
    records = index.chunks(rows)
    assert [(r["text"], r["start"], r["end"], r["title"]) for r in records] == [
        (c.text, c.start, c.end, c.title) for c in expected
    ]
    np.testing.assert_allclose(index.full[rows], fake.encode_queries([c.embedding_input for c in expected]), atol=1e-6)


def test_single_file_and_missing_source(tmp_path, corpus, fake, fake_config):
    report = build(corpus / "cooking.md", tmp_path / "idx", fake, fake_config)
    assert report.indexed == 1 and report.documents == 1
    with pytest.raises(InvalidInputError, match="no such file or folder"):
        build(tmp_path / "nope", tmp_path / "idx", fake, fake_config)
    (tmp_path / "pic.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="not a type searcher reads"):
        build(tmp_path / "pic.png", tmp_path / "idx", fake, fake_config)


def test_beir_jsonl_indexes_with_document_ids(tmp_path, fake, fake_config):
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        '{"_id": "42", "title": "Owls", "text": "Owls hunt at night."}\n'
        '{"_id": "43", "title": "Trains", "text": "Trains run on rails."}\n'
    )
    build(path, tmp_path / "idx", fake, fake_config)
    hits = Searcher(tmp_path / "idx", encoder=fake).search("owls night", k=1)
    assert hits[0].doc_id == "42" and hits[0].title == "Owls"


def test_growth_refits_the_projection(tmp_path, fake, fake_config):
    docs = tmp_path / "docs"
    write_corpus(docs, {"a.txt": "alpha beta gamma. " * 5})
    build(docs, tmp_path / "idx", fake, fake_config.replace(projection="pca"))
    first = open_index(tmp_path / "idx").manifest.projection.fitted_chunks
    write_corpus(docs, {f"f{i}.txt": f"word{i} other{i} text{i}. " * 8 for i in range(10)})
    time.sleep(0.01)
    build(docs, tmp_path / "idx", fake, None)
    index = open_index(tmp_path / "idx")
    assert index.manifest.projection.fitted_chunks == len(index.ids) > 2 * first
    # Refitting rotates stored vectors; scores are unchanged: exact search equals a direct computation.
    q = fake.encode_queries(["word3 other3"])
    D, I = Searcher(tmp_path / "idx", encoder=fake).search_vectors(q, k=3, mode="full")
    rows = index.rows_of(I[0])
    direct = np.asarray(index.full[rows]) @ (q[0] @ index.rotation)
    np.testing.assert_allclose(D[0], direct, atol=1e-5)


def test_the_embedding_cache_keys_vectors_by_the_kind_of_path_that_made_them(tmp_path, corpus, fake, fake_config):
    """A float run never reuses int8 vectors (nor a cache from before kinds were recorded); an int8 run takes either."""
    from searcher.cache import FLOAT, INT8, EmbeddingCache, text_key

    build(corpus, tmp_path / "ref", fake, fake_config, cache_dir=tmp_path / "cache")
    made = len(fake.embedded)
    assert made > 0
    keys = [text_key(t) for t in dict.fromkeys(fake.embedded)]
    cache = EmbeddingCache(tmp_path / "cache", fake.info)
    assert all(cache.has(k, (FLOAT,)) and not cache.has(k, (INT8,)) for k in keys), "the fake runs on torch: float"
    # The same texts, as if an int8 graph had made them (other numbers, to tell them apart).
    planted = EmbeddingCache(tmp_path / "int8-cache", fake.info)
    planted.add(keys, -cache.get(keys), INT8)
    before = len(fake.embedded)
    report = build(corpus, tmp_path / "float", fake, fake_config, cache_dir=tmp_path / "int8-cache")
    assert report.embedded == len(keys) and len(fake.embedded) - before == len(keys), "int8 vectors not reused"
    assert np.array_equal(
        np.asarray(open_index(tmp_path / "float").full), np.asarray(open_index(tmp_path / "ref").full)
    )
    reread = EmbeddingCache(tmp_path / "int8-cache", fake.info)
    assert all(reread.has(k, (FLOAT,)) and reread.has(k, (INT8,)) for k in keys)
    assert np.array_equal(reread.get(keys), cache.get(keys)), "a text with both kinds gives its float vectors"
    # A shard written before kinds were recorded (no #kind line) counts as int8.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (tmp_path / "int8-cache" / "model.json").replace(legacy / "model.json")
    first = sorted((tmp_path / "int8-cache").glob("*.keys"))[0]
    (legacy / "000001.npy").write_bytes(first.with_suffix(".npy").read_bytes())
    (legacy / "000001.keys").write_text("\n".join(first.read_text().split("\n")[1:]))
    old = EmbeddingCache(legacy, fake.info)
    assert len(old) and all(old.has(k, (INT8,)) and not old.has(k, (FLOAT,)) for k in old._where)


def test_small_edit_limit_weighs_torch_start_against_the_graphs_slower_rate():
    from searcher.encoder_choice import ASSUMED_START_SECONDS, small_edit_limit

    record = {"choice": "torch-bf16", "texts_per_second": {"torch": 20.0, "torch-bf16": 40.0, "onnx": 20.0}}
    # n / 20 <= 5 + n / 40  <=>  n <= 200
    assert small_edit_limit(record, 5.0, 32) == pytest.approx(200)
    assert small_edit_limit(record, None, 32) == pytest.approx(ASSUMED_START_SECONDS * 40)
    assert small_edit_limit({"choice": "onnx", "texts_per_second": {"onnx": 30.0}}, 5.0, 32) == float("inf")
    assert small_edit_limit(None, 5.0, 32) == 4 * 32, "no measurement: a few batches"


def _file_table(idx):
    return {(os.path.basename(e.path), e.sha256) for e in open_index(idx).files()}


def test_an_update_told_what_changed_equals_a_full_scan(tmp_path, corpus, fake, fake_config):
    """`changed` (a watch's events, `searcher update PATH`): edits, a new file, a delete, a new folder and a
    deleted folder, named, give the index a full scan gives; a file not named is not looked at."""
    targeted, scanned = tmp_path / "targeted", tmp_path / "scanned"
    build(corpus, targeted, fake, fake_config)
    build(corpus, scanned, fake, fake_config)
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice. Simmer it covered.\n")
    (corpus / "astronomy.txt").unlink()
    (corpus / "new.txt").write_text("Volcanoes erupt molten lava and ash.")
    write_corpus(corpus, {"fresh/a.md": "# Rivers\n\nRivers carve valleys.", "fresh/deep/b.txt": "Glaciers move."})
    (corpus / "nested" / "birds.md").unlink()
    (corpus / "nested").rmdir()
    changed = ["cooking.md", "astronomy.txt", "new.txt", "fresh", "nested"]
    report = build(corpus, targeted, fake, None, changed=[corpus / p for p in changed])
    assert (report.indexed, report.removed, report.unchanged) == (4, 2, 2)
    build(corpus, scanned, fake, None)
    assert _file_table(targeted) == _file_table(scanned)
    assert {f.name for f in (corpus / "fresh").rglob("*.*")} <= {p for p, _ in _file_table(targeted)}

    (corpus / "python.rst").write_text("Writing files\n=============\n\nUse write().\n")
    report = build(corpus, targeted, fake, None, changed=[corpus / "new.txt"], export_encoder=False)
    assert (report.indexed, report.generation) == (0, 0), "nothing named changed: nothing written"
    assert "Use write()" not in " ".join(r["text"] for r in records_by_source(targeted)["python.rst"])


def test_the_file_table_kept_in_memory_is_the_one_on_disk(tmp_path, corpus, fake, fake_config):
    """An update reads back the table the run before wrote from memory (store.remember_file_table): the same
    entries a fresh parse gives, and a damaged table on disk is still refused, not answered from memory."""
    from searcher import store

    idx = tmp_path / "idx"
    build(corpus, idx, fake, fake_config)
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice.\n")
    build(corpus, idx, fake, None, changed=[corpus / "cooking.md"])
    remembered = open_index(idx).files()
    store._file_tables.clear()
    assert open_index(idx).files() == remembered, "what memory held is what the file says"
    table = next(idx.glob("gen-*")) / "files.jsonl"
    table.write_bytes(table.read_bytes().replace(b'"sha256"', b'"sha2"', 1))
    with pytest.raises(IndexFormatError, match="files.jsonl"):
        open_index(idx).files()


def test_changed_paths_follow_the_ignore_rules_and_must_be_inside(tmp_path, corpus, fake, fake_config):
    idx = tmp_path / "idx"
    (corpus / ".gitignore").write_text("drafts/\n")
    build(corpus, idx, fake, fake_config)
    write_corpus(corpus, {"drafts/todo.md": "# Todo\n\nSecret plans.", ".hidden.md": "# Hidden"})
    named = [corpus / "drafts/todo.md", corpus / ".hidden.md"]
    report = build(corpus, idx, fake, None, changed=named, export_encoder=False)
    assert report.generation == 0 and "todo.md" not in records_by_source(idx)
    before = _file_table(idx)
    with pytest.raises(InvalidInputError, match="not under"):
        build(corpus, idx, fake, None, changed=[tmp_path / "elsewhere.md"])
    assert _file_table(idx) == before


def test_changed_paths_on_a_new_source_scan_it_whole(tmp_path, corpus, fake, fake_config):
    """A folder the index does not have yet is walked whole, whatever `changed` names: naming one file must not
    leave the rest of a new source out."""
    report = build(corpus, tmp_path / "idx", fake, fake_config, changed=[corpus / "cooking.md"])
    assert report.indexed == 5


def test_an_ignore_file_among_the_changed_paths_rescans_the_source(tmp_path, corpus, fake, fake_config):
    """What an ignore file leaves out may be anywhere below it: told only that it changed, the update walks."""
    idx = tmp_path / "idx"
    build(corpus, idx, fake, fake_config)
    (corpus / ".searcherignore").write_text("python.rst\n")
    report = build(corpus, idx, fake, None, changed=[corpus / ".searcherignore"])
    assert report.removed == 1 and "python.rst" not in records_by_source(idx)
