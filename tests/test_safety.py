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
    worker = threading.Thread(daemon=True, target=lambda: outcome.append(
        build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)))
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "indexing blocked on a FIFO or read a device"
    report = outcome[0]
    skipped = "\n".join(report.skipped_files)
    for name in ("pipe.txt", "README", "zeros.txt", "random.md", "gone.txt"):
        assert name in skipped and "not a regular file" in skipped, name
    assert report.indexed == 5


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
