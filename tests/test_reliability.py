"""Hostile input, one test per case of the reliability issue: nothing outside an index is touched, nothing that
cannot be read is dropped, and every bad input is one line (CLI) or one SearcherError (library)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_unprivileged, write_corpus
from fakes import FakeEncoder

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.chunking import MAX_RUN_CHARS, chunk_document
from searcher.cli import cli
from searcher.errors import IndexFormatError, InvalidInputError
from searcher.ingest import Document, iter_files

CONFIG = dict(chunk_tokens=32, overlap_tokens=4, full_storage="float32")  # the files the damage list names


def build(source, index_dir, **kw):
    fake = kw.pop("encoder", None) or FakeEncoder()
    return build_index(source, index_dir, IndexConfig(model=fake.info.name, **CONFIG), encoder=fake, **kw)


def texts(index_dir) -> list[str]:
    return [r["text"] for r in open_index(index_dir).iter_chunks()]


# --- 1. data loss: a folder that is not an index ---------------------------------------------------------------


def test_a_folder_that_is_not_an_index_is_refused_and_left_untouched(tmp_path, corpus):
    proj = tmp_path / "proj"
    (proj / "gen-2024-reports").mkdir(parents=True)
    (proj / "gen-2024-reports" / "q1.docx").write_text("r")
    (proj / "encoder-notes").mkdir()
    (proj / "draft.tmp").write_text("mine")
    before = sorted(p.relative_to(proj) for p in proj.rglob("*"))
    with pytest.raises(InvalidInputError, match="not a searcher index and is not empty"):
        build(corpus, proj)
    assert sorted(p.relative_to(proj) for p in proj.rglob("*")) == before, "not even a lock file is added"
    assert (proj / "gen-2024-reports" / "q1.docx").read_text() == "r"


def test_an_empty_folder_becomes_an_index_and_gc_keeps_names_it_did_not_generate(tmp_path, corpus):
    idx = tmp_path / "idx"
    idx.mkdir()
    build(corpus, idx)
    assert (idx / ".searcher-index").is_file()
    (idx / "gen-2024-reports").mkdir()  # the user's, inside the index: not an exact generated name
    (idx / "gen-000099.notes").write_text("keep")
    (idx / "gen-000077").mkdir()  # a leftover searcher would have made: collected
    (corpus / "extra.txt").write_text("Penguins swim in cold water.")
    build(corpus, idx)
    assert (idx / "gen-2024-reports").is_dir() and (idx / "gen-000099.notes").is_file()
    assert not (idx / "gen-000077").exists()


# --- 2. an unreadable folder keeps what was indexed under it ----------------------------------------------------


def test_an_unreadable_folder_keeps_its_indexed_files(tmp_path, corpus):
    code = (
        "import json, sys\n"
        "from fakes import FakeEncoder\n"
        "from searcher import IndexConfig, build_index\n"
        "fake = FakeEncoder()\n"
        "r = build_index(sys.argv[1], sys.argv[2], IndexConfig(model=fake.info.name, chunk_tokens=32, "
        "overlap_tokens=4), encoder=fake)\n"
        "print(json.dumps({'failed': r.failed, 'removed': r.removed, 'warnings': r.warnings}))\n"
    )
    first = run_unprivileged(code, corpus, tmp_path / "idx")
    assert first.returncode == 0, first.stderr
    (corpus / "nested").chmod(0)
    try:
        second = run_unprivileged(code, corpus, tmp_path / "idx")
    finally:
        (corpus / "nested").chmod(0o755)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert (report["failed"], report["removed"]) == (1, 0)
    assert "kept what was indexed under it" in report["warnings"][0]
    assert any("Owls hunt at night" in t for t in texts(tmp_path / "idx"))


# --- 3. an index never ingests an index -------------------------------------------------------------------------


def test_indexing_a_folder_that_holds_its_own_index_never_ingests_it(tmp_path):
    notes = write_corpus(
        tmp_path / "notes",
        {
            "a.txt": "Lemurs live on Madagascar.",
            "b.jsonl": '{"_id": "x", "title": "", "text": "Tapirs have a short trunk."}\n',
        },
    )
    other = tmp_path / "notes" / "old-index"
    build(tmp_path / "notes", other)  # another index inside the folder
    counts = []
    for _ in range(3):
        build(notes, notes / "indexes" / "default")
        counts.append(open_index(notes / "indexes" / "default").manifest.chunks)
    assert counts == [2, 2, 2]
    with pytest.raises(InvalidInputError, match="is a searcher index"):
        build(other, tmp_path / "idx2")
    chunks_file = next((notes / "indexes" / "default").glob("gen-*/chunks.jsonl"))
    with pytest.raises(InvalidInputError, match="inside the searcher index"):
        build(chunks_file, tmp_path / "idx3")


# --- 4. a title-only record ------------------------------------------------------------------------------------


def test_a_title_only_record_is_indexed_and_found(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Otters", "text": "Otters hold hands while they sleep."}\n'
        '{"_id": "d3", "title": "Only a title about lemurs", "text": ""}\n'
    )
    report = build(tmp_path / "c", tmp_path / "idx")
    assert report.documents == 2 and report.chunks == 2
    hits = Searcher(tmp_path / "idx", encoder=FakeEncoder()).search("lemurs", k=1)
    assert hits[0].doc_id == "d3"


# --- 5. a change that keeps size and mtime ---------------------------------------------------------------------


def test_a_changed_file_with_the_same_size_and_mtime_is_read_again(tmp_path, corpus):
    build(corpus, tmp_path / "idx")
    path = corpus / "astronomy.txt"
    st = path.stat()
    text = path.read_text()
    path.write_text(text.replace("moon", "mars"))  # same length
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -d back
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    report = build(corpus, tmp_path / "idx")
    assert report.indexed == 1
    assert any("mars orbits" in t for t in texts(tmp_path / "idx"))


# --- 6. a very long run without spaces -------------------------------------------------------------------------


def test_a_long_run_without_spaces_is_split_and_chunks_stay_bounded(tmp_path):
    fake = FakeEncoder()
    run = "x" * 300_000
    doc = Document("d", "", f"Before the blob. {run} After the blob.", "/d.txt")
    chunks = chunk_document(doc, fake, chunk_tokens=32, overlap_tokens=4)
    assert len(chunks) > 100
    assert max(len(c.text) for c in chunks) <= 30 * MAX_RUN_CHARS
    assert all(len(w) <= MAX_RUN_CHARS for c in chunks for w in c.embedding_input.split())
    assert chunks[0].text.startswith("Before") and chunks[-1].text.endswith("After the blob.")
    assert "".join(c.text.replace(" ", "") for c in chunks).count("x") >= len(run), "no text swallowed"


@pytest.mark.model
def test_a_long_run_is_not_one_unknown_token_for_the_real_tokenizer(minilm):
    doc = Document("d", "", "a" * 20_000, "/d.txt")
    chunks = chunk_document(doc, minilm, chunk_tokens=256, overlap_tokens=32)
    assert len(chunks) > 5
    for c in chunks:
        ids = minilm._tokenizer.encode(c.embedding_input).ids
        assert ids.count(100) == 0, "no [UNK] (id 100) swallows the run"  # 100 = [UNK] in MiniLM's vocab
        assert len(ids) <= 256


def test_whitespace_between_two_words_does_not_make_a_huge_chunk():
    doc = Document("d", "", "alpha" + " " * 100_000 + "omega", "/d.txt")
    chunks = chunk_document(doc, FakeEncoder(), chunk_tokens=32, overlap_tokens=4)
    assert [c.text for c in chunks] == ["alpha", "omega"]


# --- 7. one file, one document id ------------------------------------------------------------------------------


def test_the_same_file_from_two_roots_keeps_one_document_id(tmp_path):
    c200 = write_corpus(
        tmp_path / "c200", {"astronomy/moon.txt": "The moon orbits the earth.", "cooking/rice.txt": "Rinse the rice."}
    )
    build(c200, tmp_path / "idx")
    (c200 / "astronomy" / "moon.txt").write_text("The moon has craters and no air.")
    build(c200 / "astronomy", tmp_path / "idx")
    ids = {r["source"]: r["doc_id"] for r in open_index(tmp_path / "idx").iter_chunks()}
    assert ids[str(c200 / "astronomy" / "moon.txt")] == "c200/astronomy/moon.txt"


# --- 8. and 9. a hostile or damaged index directory -------------------------------------------------------------


@pytest.fixture
def real_index(tmp_path, corpus):
    fake = FakeEncoder()
    build_index(corpus, tmp_path / "idx", IndexConfig(model=fake.info.name, projection="pca", **CONFIG), encoder=fake)
    return tmp_path / "idx"


_OPENED: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_record_opens)  # audit hooks cannot be removed; it records only while _OPENED is a list


def test_a_query_encoder_outside_the_index_is_never_loaded(real_index, tmp_path):
    global _OPENED
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "encoder.json").write_text("{}")
    manifest = json.loads((real_index / "manifest.json").read_text())
    for hostile in ("../elsewhere", str(outside), "encoder-../../x", "gen-000001"):
        manifest["query_encoder"] = hostile
        (real_index / "manifest.json").write_text(json.dumps(manifest))
        _OPENED = []
        try:
            with pytest.raises(IndexFormatError, match="manifest.json is damaged"):
                Searcher(real_index).search("moon")
            assert not [p for p in _OPENED if p.startswith(str(outside))], "nothing outside the index was read"
        finally:
            _OPENED = None


def test_a_generation_that_links_outside_is_not_followed(real_index, tmp_path):
    gen = next(real_index.glob("gen-*"))
    outside = tmp_path / "outside"
    shutil.move(gen, outside)
    gen.symlink_to(outside, target_is_directory=True)
    with pytest.raises(IndexFormatError, match="a link or a path outside the index"):
        Searcher(real_index, encoder=FakeEncoder())
    gen.unlink()
    shutil.move(outside, gen)
    (gen / "ids.npy").rename(tmp_path / "ids.npy")
    (gen / "ids.npy").symlink_to(tmp_path / "ids.npy")
    with pytest.raises(IndexFormatError, match="ids.npy is damaged"):
        Searcher(real_index, encoder=FakeEncoder())


def _corruptions(gen: Path, n: int, dim: int):
    """(file, description, function that damages it) for every file of a generation."""
    rng = np.random.default_rng(0)

    def truncate(name):
        return lambda: (gen / name).write_bytes((gen / name).read_bytes()[: (gen / name).stat().st_size // 2])

    def empty(name):
        return lambda: (gen / name).write_bytes(b"")

    def noise(name):
        return lambda: (gen / name).write_bytes(rng.bytes(max(64, (gen / name).stat().st_size)))

    def save(name, array, **kw):
        return lambda: np.save(gen / name, array, **kw)

    def coarse(index):
        import faiss

        return lambda: faiss.write_index(index, str(gen / "coarse.faiss"))

    import faiss

    out = []
    for name in ("ids.npy", "full.npy", "chunks.offsets.npy", "rotation.npy", "coarse.faiss", "chunks.jsonl"):
        out += [(name, "truncated", truncate(name)), (name, "empty", empty(name)), (name, "random bytes", noise(name))]
    out += [
        ("ids.npy", "float dtype", save("ids.npy", np.arange(n, dtype=np.float64))),
        ("ids.npy", "2-d", save("ids.npy", np.arange(n, dtype=np.int64).reshape(n, 1))),
        ("ids.npy", "object dtype", save("ids.npy", np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)),
        ("ids.npy", "too few", save("ids.npy", np.arange(n - 1, dtype=np.int64))),
        ("ids.npy", "descending", save("ids.npy", np.arange(n, dtype=np.int64)[::-1].copy())),
        ("full.npy", "1-d", save("full.npy", np.zeros(n * dim, np.float32))),
        ("full.npy", "wrong width", save("full.npy", np.zeros((n, dim + 1), np.float32))),
        ("full.npy", "float64", save("full.npy", np.zeros((n, dim), np.float64))),
        ("full.npy", "object dtype", save("full.npy", np.array([None] * n, dtype=object), allow_pickle=True)),
        ("chunks.offsets.npy", "wrong length", save("chunks.offsets.npy", np.arange(n, dtype=np.int64))),
        ("rotation.npy", "wrong shape", save("rotation.npy", np.eye(dim - 1, dtype=np.float32))),
        ("coarse.faiss", "wrong dimension", coarse(faiss.IndexIDMap(faiss.IndexFlatIP(8)))),
        ("coarse.faiss", "not an id map", coarse(faiss.IndexFlatIP(64))),
        (
            "chunks.jsonl",
            "garbage lines",
            lambda: (gen / "chunks.jsonl").write_bytes(b"x" * ((gen / "chunks.jsonl").stat().st_size - 1) + b"\n"),
        ),
    ]
    for name in ("ids.npy", "full.npy", "coarse.faiss", "chunks.jsonl", "chunks.offsets.npy"):
        out.append((name, "missing", lambda name=name: (gen / name).unlink()))
    return out


def _one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"a traceback: {result.exception!r}"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_every_damaged_index_file_is_one_line_and_a_nonzero_exit(real_index, corpus, use_fake_encoder):
    pristine = real_index.parent / "pristine"
    shutil.copytree(real_index, pristine, symlinks=True)
    gen_name = next(real_index.glob("gen-*")).name
    manifest = json.loads((real_index / "manifest.json").read_text())
    n, dim = manifest["counts"]["chunks"], manifest["model"]["dim"]
    cases = _corruptions(real_index / gen_name, n, dim)
    assert len(cases) > 30
    for name, what, damage in cases:
        shutil.rmtree(real_index)
        shutil.copytree(pristine, real_index, symlinks=True)
        damage()
        result = CliRunner().invoke(cli, ["query", "moon craters", "--index", str(real_index)])
        line = _one_line_error(result)
        assert name in line or "manifest" in line, (name, what, line)
        assert "--rebuild" in line, (name, what, line)


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2]",
        b"{not json",
        b"",
        b'{"format": "searcher-index", "version": 1, "generation": "x"}',
        b'{"format": "searcher-index", "version": 99}',
    ],
)
def test_a_damaged_manifest_is_one_line_and_rebuild_repairs_it(real_index, corpus, use_fake_encoder, content):
    (real_index / "manifest.json").write_bytes(content)
    line = _one_line_error(CliRunner().invoke(cli, ["query", "moon", "--index", str(real_index)]))
    assert "manifest.json" in line or "format version" in line
    assert "--rebuild" in line
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(real_index), "--rebuild", "-q"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli, ["query", "moon", "--index", str(real_index)]).exit_code == 0


def test_a_manifest_that_is_a_folder_and_a_missing_file_table(real_index, corpus, use_fake_encoder):
    next(real_index.glob("gen-*/files.jsonl")).unlink()
    line = _one_line_error(CliRunner().invoke(cli, ["index", str(corpus), "--index", str(real_index), "-q"]))
    assert "files.jsonl is damaged (missing)" in line
    (real_index / "manifest.json").unlink()
    (real_index / "manifest.json").mkdir()
    assert "manifest.json is damaged" in _one_line_error(CliRunner().invoke(cli, ["info", "--index", str(real_index)]))


# --- 11. k and shortlist are clamped to the index -------------------------------------------------------------------


def test_huge_k_and_shortlist_allocate_nothing_beyond_the_index(real_index):
    searcher = Searcher(real_index, encoder=FakeEncoder())
    n = len(searcher.index)
    tracemalloc.start()
    hits = searcher.search("moon", k=100_000_000, shortlist=1_000_000_000, per_doc=False)
    D, I = searcher.search_vectors(FakeEncoder().encode_queries(["moon"]), k=100_000_000, mode="full")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(hits) == n and D.shape == I.shape == (1, n)
    assert peak < 50_000_000


# --- 12. names and queries that are not UTF-8 ---------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_by_name_and_the_rest_indexed(tmp_path, corpus):
    bad = os.fsencode(corpus) + b"/caf\xe9.txt"
    with open(bad, "wb") as f:
        f.write(b"Coffee notes.")
    report = build(corpus, tmp_path / "idx")
    assert report.indexed == 5 and report.skipped == 1
    assert any("caf\\xe9.txt" in w and "not valid UTF-8" in w for w in report.warnings)


def test_queries_that_are_not_utf8_do_not_lose_the_batch(real_index, use_fake_encoder):
    result = CliRunner().invoke(
        cli, ["query", "-", "--index", str(real_index), "--json"], input=b"moon craters\n\xff\xfe owls\npasta\n"
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["query"] for r in records} == {"moon craters", "\ufffd\ufffd owls", "pasta"}
    assert "line 2 of standard input is not UTF-8" in result.stderr
    surrogate = os.fsdecode(b"moon \xff")
    result = CliRunner().invoke(cli, ["query", surrogate, "--index", str(real_index)])
    assert result.exit_code == 0 and "not UTF-8" in result.stderr
    with pytest.raises(InvalidInputError, match="not valid UTF-8"):
        Searcher(real_index, encoder=FakeEncoder()).search(surrogate)


# --- 13. a full disk, a read-only index ---------------------------------------------------------------------------


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs for the disk-full case")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "256k")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_the_old_index_survives(small_disk, tmp_path, use_fake_encoder):
    small = write_corpus(tmp_path / "small", {"a.txt": "The moon orbits the earth."})
    idx = small_disk / "idx"
    assert CliRunner().invoke(cli, ["index", str(small), "--index", str(idx), "-q"]).exit_code == 0
    big = write_corpus(tmp_path / "big", {f"f{i}.txt": f"word{i} " * 3000 for i in range(40)})
    code = (
        "import sys, searcher.indexer\nfrom fakes import FakeEncoder\nfrom searcher.cli import cli\n"
        "searcher.indexer.load_encoder = lambda name: FakeEncoder()\n"
        "cli(['index', sys.argv[1], '--index', sys.argv[2], '-q'])\n"
    )
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + code,
            str(big),
            str(idx),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 2, (child.returncode, child.stderr)  # no SIGBUS (-7), no traceback
    assert child.stderr.strip().splitlines() == [child.stderr.strip()]
    assert "disk full at" in child.stderr
    hits = Searcher(idx, encoder=FakeEncoder()).search("moon", k=1)
    assert "moon" in hits[0].text
    assert len(list(idx.glob("gen-*"))) == 1, "the half-written generation was removed"


def test_a_read_only_index_is_one_line(tmp_path, corpus, use_fake_encoder):
    mount = tmp_path / "ro"
    _mount_tmpfs(mount, "4m")
    try:
        assert CliRunner().invoke(cli, ["index", str(corpus), "--index", str(mount / "idx"), "-q"]).exit_code == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        (corpus / "new.txt").write_text("Penguins.")
        line = _one_line_error(CliRunner().invoke(cli, ["index", str(corpus), "--index", str(mount / "idx"), "-q"]))
        assert "cannot write to" in line and "Read-only file system" in line
        result = CliRunner().invoke(cli, ["query", "moon", "--index", str(mount / "idx")])
        assert result.exit_code == 0 and "lexical" not in result.output, result.output
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# --- 14. a very long document: bounded memory, progress within the file ---------------------------------------


def test_a_long_document_is_chunked_in_bounded_memory_with_progress():
    sentence = "Volcanoes erupt lava and ash when magma rises through the crust. "
    doc = Document("d", "", (sentence * 8 + "\n\n") * 10_000, "/d.txt")  # 5.3 MB
    seen = []
    tracemalloc.start()
    chunks = chunk_document(
        doc, FakeEncoder(), chunk_tokens=32, overlap_tokens=4, progress=lambda done, total: seen.append((done, total))
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    chunk_bytes = sum(len(c.text) + 200 for c in chunks)  # the result itself
    assert peak - chunk_bytes < 120_000_000, f"{peak / 1e6:.0f} MB"
    assert len(seen) > 10 and seen[-1] == (len(doc.text), len(doc.text))
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)


# --- 15. a publish between opening an index and reading its coarse index --------------------------------------------


def test_a_publish_between_open_and_coarse_read_does_not_break_the_reader(tmp_path, corpus):
    build(corpus, tmp_path / "idx")
    index = open_index(tmp_path / "idx")
    old_gen = index.path
    (corpus / "extra.txt").write_text("Penguins swim in cold water.")
    build(corpus, tmp_path / "idx")
    assert not old_gen.exists(), "the writer collected the generation the reader holds"
    coarse = index.load_coarse()
    assert coarse.ntotal == len(index)


# --- 16. malformed BEIR files, very deep folders ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("queries.jsonl", '{"text": "no id"}', "queries.jsonl:2 is not a query"),
        ("queries.jsonl", '{"_id": "q2", "text": 7}', "queries.jsonl:2 is not a query"),
        ("queries.jsonl", '["a", "list"]', "queries.jsonl:2 is not a query"),
    ],
)
def test_malformed_beir_files_are_one_line(tmp_path, use_fake_encoder, file, line, message):
    data = tmp_path / "beir"
    write_corpus(
        data,
        {
            "corpus.jsonl": '{"_id": "d1", "title": "", "text": "Moon."}\n["a list"]\n{"_id": "d2", "text": "Sun."}\n',
            "queries.jsonl": '{"_id": "q1", "text": "moon"}\n',
            "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
        },
    )
    with open(data / file, "a") as f:
        f.write(line + "\n")
    result = CliRunner().invoke(cli, ["eval", str(data), "--index", str(tmp_path / "idx"), "-q", "--no-latency"])
    assert message in _one_line_error(result)


def test_a_corpus_line_that_is_a_list_is_skipped_and_eval_says_so(tmp_path, use_fake_encoder):
    data = write_corpus(
        tmp_path / "beir",
        {
            "corpus.jsonl": '{"_id": "d1", "title": "", "text": "Moon."}\n["a list"]\n{"_id": "d2", "text": "Sun."}\n',
            "queries.jsonl": '{"_id": "q1", "text": "moon"}\n',
            "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
        },
    )
    result = CliRunner().invoke(cli, ["eval", str(data), "--index", str(tmp_path / "idx"), "-q", "--no-latency"])
    assert result.exit_code == 0, result.output
    assert "1 line(s) skipped" in result.output and "2 documents read, 2 in the index" in result.output


def test_folders_deeper_than_the_recursion_limit(tmp_path):
    deep = tmp_path / "deep"
    folder = deep
    deep.mkdir()
    for _ in range(1100):  # os.makedirs itself recurses
        folder = folder / "d"
        folder.mkdir()
    (folder / "bottom.txt").write_text("At the bottom.")
    try:
        assert list(iter_files(deep)) == [folder / "bottom.txt"]
    finally:  # pytest's own cleanup recurses: leave it nothing deep
        subprocess.run(["rm", "-rf", str(deep)], check=True)


# --- 17. an interrupted run keeps what it embedded, batch by batch ---------------------------------------------------


@pytest.mark.slow
def test_a_run_killed_after_one_batch_keeps_that_batch(tmp_path):
    corpus = write_corpus(tmp_path / "docs", {f"f{i}.txt": f"Topic {i} sentence. " * 6 for i in range(300)})
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os, signal, sys\n"
                f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                "from fakes import FakeEncoder\nfrom searcher import IndexConfig, build_index\n"
                "class Dying(FakeEncoder):\n"
                "    def encode_documents(self, texts, *, batch_size=32):\n"
                "        if len(self.embedded) + len(texts) > 112:  # killed in the call that would pass chunk 112\n"
                "            os.kill(os.getpid(), signal.SIGKILL)\n"
                "        return super().encode_documents(texts, batch_size=batch_size)\n"
                "fake = Dying()\n"
                "build_index(sys.argv[1], sys.argv[2], IndexConfig(model=fake.info.name, chunk_tokens=32, "
                "overlap_tokens=4, "
                "batch_size=32), encoder=fake)\n"
            ),
            str(corpus),
            str(tmp_path / "idx"),
        ],
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL
    report = build(corpus, tmp_path / "idx")
    assert report.reused >= 96 and report.embedded == report.chunks - report.reused


def test_disk_errors_name_the_cause(tmp_path):
    from searcher.indexer import os_error

    assert "disk full at /x" in str(os_error(OSError(28, "No space left on device", "/x"), tmp_path))
    assert str(os_error(OSError(5, "Input/output error", "/y"), tmp_path)) == (
        "Input/output error at /y; the index is as it was before this run"
    )
    assert "cannot write to /z (Read-only file system)" in str(
        os_error(OSError(30, "Read-only file system", "/z"), tmp_path)
    )
