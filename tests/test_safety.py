"""The long-lived surfaces against a hostile filesystem or index: reading an indexed file back (/document, MCP's
get_document), sources that are not regular files, links planted in the index folder. All on the real
filesystem."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import orjson
import pytest
from conftest import write_corpus

from searcher import IndexConfig, build_index, open_index
from searcher.documents import read_lines
from searcher.errors import SearcherError


@pytest.fixture
def indexed(tmp_path, fake):
    docs = write_corpus(tmp_path / "docs")
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
    return docs, tmp_path / "idx"


def _read(index_dir, path):
    index = open_index(index_dir)
    try:
        return read_lines(index, str(path))
    finally:
        index.close()


def test_an_indexed_file_reads_back_while_it_is_the_file_that_was_indexed(indexed):
    docs, idx = indexed
    assert "moon" in _read(idx, docs / "astronomy.txt").text


def test_an_indexed_file_replaced_by_a_link_is_not_followed(indexed):
    docs, idx = indexed
    target = docs / "astronomy.txt"
    target.unlink()
    target.symlink_to("/etc/passwd")
    with pytest.raises(SearcherError, match="symbolic link"):
        _read(idx, target)
    target.unlink()
    target.symlink_to("/dev/zero")
    with pytest.raises(SearcherError, match="symbolic link"):
        _read(idx, target)


def test_an_indexed_file_replaced_by_a_fifo_is_refused_without_blocking(indexed):
    docs, idx = indexed
    target = docs / "astronomy.txt"
    target.unlink()
    os.mkfifo(target)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_safe_read(idx, target)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "no longer a regular file" in outcome[0]


def _safe_read(idx, path) -> str:
    try:
        _read(idx, path)
    except SearcherError as e:
        return str(e)
    return "read"


def test_a_changed_file_is_not_served_as_the_indexed_one(indexed):
    docs, idx = indexed
    (docs / "astronomy.txt").write_text("Something else entirely.\n")
    with pytest.raises(SearcherError, match="changed since it was indexed"):
        _read(idx, docs / "astronomy.txt")


def test_a_hostile_file_table_listing_a_secret_reads_nothing(indexed, tmp_path):
    docs, idx = indexed
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    table = open_index(idx).path / "files.jsonl"
    entry = orjson.loads(table.read_bytes().splitlines()[0])
    entry.update(path=str(secret), sha256="0" * 64)  # whoever wrote the index does not know the secret's bytes
    table.write_bytes(table.read_bytes() + orjson.dumps(entry) + b"\n")
    with pytest.raises(SearcherError, match="changed since it was indexed"):
        _read(idx, secret)
    with pytest.raises(SearcherError, match="not a file of this index"):
        _read(idx, Path("/etc/shadow"))


def test_sources_that_are_not_regular_files_are_skipped_by_name(tmp_path, fake):
    docs = write_corpus(tmp_path / "docs")
    os.mkfifo(docs / "pipe.txt")
    os.mkfifo(docs / "README")  # no extension: would be sniffed for text
    (docs / "zeros.txt").symlink_to("/dev/zero")
    (docs / "random.md").symlink_to("/dev/urandom")
    (docs / "gone.txt").symlink_to(docs / "nowhere")
    outcome = []
    worker = threading.Thread(
        daemon=True,
        target=lambda: outcome.append(
            build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
        ),
    )
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "indexing blocked on a FIFO or read a device"
    report = outcome[0]
    skipped = "\n".join(report.skipped_files)
    for name in ("pipe.txt", "README", "zeros.txt", "random.md", "gone.txt"):
        assert name in skipped and "not a regular file" in skipped, name
    assert report.indexed == 5


def test_a_link_to_a_file_is_indexed_and_a_link_to_a_folder_is_not_followed(tmp_path, fake):
    docs = write_corpus(tmp_path / "docs")
    outside = write_corpus(tmp_path / "outside", {"far.md": "A note kept outside the folder."})
    (docs / "far-link.md").symlink_to(outside / "far.md")
    (docs / "outside").symlink_to(outside, target_is_directory=True)
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    report = build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
    names = sorted(Path(e.path).relative_to(docs).as_posix() for e in open_index(tmp_path / "idx").files())
    assert "far-link.md" in names and not [n for n in names if n.startswith(("outside/", "loop/"))]
    assert report.indexed == len(names) == 6


def test_links_planted_in_the_index_folder_are_never_written_through(indexed, tmp_path, fake):
    docs, idx = indexed
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's own file\n")
    (idx / "manifest.json.tmp").symlink_to(victim)
    (idx / ".lock").unlink()
    (idx / ".lock").symlink_to(tmp_path / "created-through-a-link")
    (docs / "new.txt").write_text("A new document about comets.\n")
    build_index(docs, idx, IndexConfig(model=fake.info.name), encoder=fake)
    assert victim.read_text() == "the user's own file\n"
    assert not (tmp_path / "created-through-a-link").exists()
    assert not (idx / "manifest.json").is_symlink() and not (idx / ".lock").is_symlink()
    assert "comets" in _read(idx, docs / "new.txt").text


# --- the index's memory of its sources ------------------------------------------------------------------------------


def test_a_missing_source_is_reported_and_kept_with_its_files(tmp_path, fake, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = write_corpus(tmp_path / "docs")
    idx = str(tmp_path / "idx")
    assert CliRunner().invoke(cli, ["index", str(docs), "--index", idx, "-q"]).exit_code == 0
    before = open_index(idx).manifest
    docs.rename(tmp_path / "renamed")  # an unmounted disk, a renamed folder
    result = CliRunner().invoke(cli, ["update", "--index", idx, "-q"])
    assert result.exit_code != 0 and "missing" in result.stderr and "searcher remove" in result.stderr
    after = open_index(idx).manifest
    assert (after.sources, after.documents, after.generation) == (before.sources, before.documents, before.generation)
    (tmp_path / "renamed").rename(docs)
    (docs / "new.txt").write_text("Comets have tails of dust and gas.\n")
    back = CliRunner().invoke(cli, ["update", "--index", idx, "-q"])
    assert back.exit_code == 0 and "1 indexed" in back.stdout and "5 unchanged" in back.stdout, back.output
    docs.rename(tmp_path / "elsewhere")
    docs.mkdir()  # an empty mount point where files were indexed
    assert CliRunner().invoke(cli, ["update", "--index", idx, "-q"]).exit_code != 0
    assert open_index(idx).manifest.documents == 6


def test_a_folder_removed_inside_a_source_stays_out_until_indexed_again(tmp_path, fake, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = write_corpus(tmp_path / "docs")
    idx = str(tmp_path / "idx")
    run = CliRunner().invoke
    assert run(cli, ["index", str(docs), "--index", idx, "-q"]).exit_code == 0
    assert run(cli, ["remove", str(docs / "nested"), "--index", idx]).exit_code == 0
    assert run(cli, ["update", "--index", idx, "-q"]).exit_code == 0
    assert run(cli, ["index", str(docs), "--index", idx, "-q"]).exit_code == 0
    files = [e.path for e in open_index(idx).files()]
    assert not any("/nested/" in f for f in files), "a re-scan of the source left the removed folder out"
    assert str(docs / "nested") in run(cli, ["info", "--index", idx]).stdout
    assert run(cli, ["index", str(docs / "nested"), "--index", idx, "-q"]).exit_code == 0
    assert any("/nested/" in e.path for e in open_index(idx).files())
    assert run(cli, ["update", "--index", idx, "-q"]).exit_code == 0
    assert any("/nested/" in e.path for e in open_index(idx).files()), "indexed again: back for good"
    assert "removed " not in run(cli, ["info", "--index", idx]).stdout


# --- a first build that does not publish leaves nothing --------------------------------------------------------------


def test_a_failed_first_build_leaves_no_stub_index(tmp_path, use_fake_encoder, monkeypatch):
    from click.testing import CliRunner

    from searcher.cli import cli

    empty = tmp_path / "empty"
    empty.mkdir()
    docs = write_corpus(tmp_path / "docs")
    home = tmp_path / "home"
    monkeypatch.setenv("SEARCHER_HOME", str(home))
    run = CliRunner().invoke
    assert run(cli, ["index", str(empty), "--index", "notes"]).exit_code == 2
    assert not (home / "notes").exists(), "an empty folder: nothing was made"
    import searcher.indexer
    from searcher.errors import ModelError

    def cannot_load(name):
        raise ModelError(f"could not load model {name!r}")

    with monkeypatch.context() as m:
        m.setattr(searcher.indexer, "load_encoder", cannot_load)
        assert run(cli, ["index", str(docs), "--index", "bad", "--model", "/no/such/model"]).exit_code == 2
    assert not (home / "bad").exists(), "a bad model: nothing was made"
    mine = tmp_path / "mine"
    mine.mkdir()  # the user's own empty folder, given as the index folder, stays theirs
    assert run(cli, ["index", str(empty), "--index", str(mine)]).exit_code == 2
    assert mine.is_dir() and not any(mine.iterdir())
    listing = run(cli, ["list"])
    assert "unreadable" not in listing.output


def test_an_interrupted_first_build_keeps_only_resumable_embeddings_and_list_says_so(tmp_path, fake, monkeypatch):
    from click.testing import CliRunner

    import searcher.indexer
    from searcher.cli import cli

    docs = write_corpus(tmp_path / "docs")
    monkeypatch.setenv("SEARCHER_HOME", str(tmp_path / "home"))
    real_write = searcher.indexer.write_generation

    def interrupted(*args, **kwargs):  # Ctrl-C after every chunk was embedded, before anything was published
        raise KeyboardInterrupt

    monkeypatch.setattr(searcher.indexer, "write_generation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_index(docs, "notes", IndexConfig(model=fake.info.name), encoder=fake)
    assert "unfinished" in CliRunner().invoke(cli, ["list"]).output
    monkeypatch.setattr(searcher.indexer, "write_generation", real_write)
    fake.embedded.clear()
    report = build_index(docs, "notes", IndexConfig(model=fake.info.name), encoder=fake)
    assert report.generation == 1 and report.reused > 0 and not fake.embedded, "resumed from the saved embeddings"


def test_a_reader_keeps_its_generations_file_table_after_a_publish(indexed, fake):
    docs, idx = indexed
    reader = open_index(idx)
    try:
        old_path = reader.path
        (docs / "astronomy.txt").write_text("The moon has craters and no air at all.\n")
        build_index(docs, idx, IndexConfig(model=fake.info.name), encoder=fake)
        assert not old_path.exists(), "the writer deleted the old generation's folder"
        assert len(reader.files()) == 5, "the reader still has its generation's file table"
    finally:
        reader.close()


def test_drop_on_a_folder_it_cannot_write_is_one_line(indexed):
    from conftest import run_unprivileged

    _, idx = indexed
    os.chmod(idx, 0o555)
    try:
        child = run_unprivileged(
            "import sys\nfrom click.testing import CliRunner\nfrom searcher.cli import cli\n"
            "result = CliRunner().invoke(cli, ['drop', sys.argv[1], '--yes'])\n"
            "print(result.exit_code); print(result.output, end='')\n",
            idx,
        )
    finally:
        os.chmod(idx, 0o755)
    code, *output = child.stdout.splitlines()
    assert child.returncode == 0 and code == "2", child.stderr
    assert len(output) == 1 and "cannot write to" in output[0] and "Traceback" not in child.stdout
    assert (idx / "manifest.json").is_file(), "nothing was deleted"


@pytest.mark.model
def test_making_the_int8_graph_on_a_full_disk_says_so_and_leaves_nothing(tmp_path, minilm):
    import errno
    import shutil
    import subprocess

    from searcher.onnx_encoder import INT8_MODEL, export_onnx, quantize_int8

    export = export_onnx(minilm, tmp_path / "enc")
    small = tmp_path / "small"
    small.mkdir()
    size = sum(p.stat().st_size for p in export.iterdir()) // 2**20 + 8  # room for the export, not its int8 graph
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}m", "tmpfs", str(small)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root) to fill a disk")
    try:
        shutil.copytree(export, small / "enc")
        with pytest.raises(OSError) as raised:
            quantize_int8(small / "enc")
        assert raised.value.errno == errno.ENOSPC
        assert sorted(p.name for p in (small / "enc").iterdir()) == sorted(p.name for p in export.iterdir()), (
            "the half-written graph is gone"
        )
        assert not (small / "enc" / INT8_MODEL).exists()
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
