"""Shared exported encoders in the home directory, and deleting an index (home.py, upkeep.delete_index)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import write_corpus

from searcher import Searcher, build_index, delete_index
from searcher.cli import cli
from searcher.home import collect_encoders, shared_encoders


@pytest.fixture(scope="module")
def two_indexes(tmp_path_factory, minilm):
    """Two small indexes of the bundled model in one home: the second must link the first's export."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse fixture's home is per test
        mp.setenv("SEARCHER_HOME", str(home))
        docs = write_corpus(tmp_path_factory.mktemp("docs"))
        build_index(docs / "cooking.md", "a", encoder=minilm)
        build_index(docs / "astronomy.txt", "b", encoder=minilm)
    return home, docs


@pytest.mark.model
def test_indexes_of_one_model_share_one_exported_encoder(two_indexes, monkeypatch):
    home, docs = two_indexes
    monkeypatch.setenv("SEARCHER_HOME", str(home))
    (shared,) = list(shared_encoders().iterdir())
    a, b = home / "a" / shared.name, home / "b" / shared.name
    for f in shared.iterdir():
        assert (a / f.name).samefile(f) and (b / f.name).samefile(f)  # one copy on disk
        assert f.stat().st_nlink == 3
    hits = Searcher("b").search("planets with rings", 1)  # the linked export answers queries
    assert "Saturn" in hits[0].text

    assert collect_encoders() == []  # both indexes still use it
    runner = CliRunner()
    assert runner.invoke(cli, ["drop", "a", "--yes"]).exit_code == 0
    assert not (home / "a").exists() and shared.is_dir()  # b still links it
    result = runner.invoke(cli, ["drop", "b"], input="y\n")
    assert result.exit_code == 0, result.output
    assert not (home / "b").exists() and not shared.exists()  # the last index gone: so is the shared copy


def test_drop_deletes_only_what_searcher_made(tmp_path, fake, fake_config):
    docs = write_corpus(tmp_path / "docs")
    index_dir = tmp_path / "idx"
    build_index(docs, index_dir, fake_config, encoder=fake)
    (index_dir / "my-notes.txt").write_text("mine")  # someone's own file, put into the index folder later
    assert delete_index(index_dir) == ["my-notes.txt"]
    assert sorted(p.name for p in index_dir.iterdir()) == ["my-notes.txt"]
    assert (docs / "cooking.md").is_file()


def test_drop_refuses_what_is_not_an_index(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("x")
    result = CliRunner().invoke(cli, ["drop", str(tmp_path / "folder"), "--yes"])
    assert result.exit_code == 2 and "no searcher index at" in result.output
    assert (tmp_path / "folder" / "keep.txt").is_file()
    result = CliRunner().invoke(cli, ["drop", "nothing-here", "--yes"])
    assert result.exit_code == 2 and "`searcher list` shows your indexes" in result.output
    # without --yes: no question about an index that is not there, the same one line
    asked = CliRunner().invoke(cli, ["drop", str(tmp_path / "folder")], input="y\n")
    assert asked.exit_code == 2 and "Delete the index" not in asked.output and "no searcher index at" in asked.output
