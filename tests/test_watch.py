"""`searcher index --watch` (watch.py): a real watchdog observer on a real folder, the fake encoder embedding."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest
from conftest import write_corpus

from searcher import Searcher, build_index
from searcher.watch import watch

pytest.importorskip("watchdog")


class Watching:
    """watch() in a thread; `next_update()` waits (bounded) for the report of the next update."""

    def __init__(self, source, index_dir, fake) -> None:
        self.source, self.index_dir, self.fake = source, index_dir, fake
        self.reports: queue.Queue = queue.Queue()
        self.errors: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch,
            args=(source, index_dir),
            kwargs=dict(
                stop=self.stop, encoder=fake, debounce=0.2, on_update=self.reports.put, on_error=self.errors.append
            ),
            daemon=True,
        )

    def next_update(self, timeout: float = 15.0):
        return self.reports.get(timeout=timeout)

    def paths(self, query: str) -> list[str]:
        hits = Searcher(self.index_dir, encoder=self.fake).search(query, 3, mode="lexical", per_doc=True)
        return [os.path.basename(h.source) for h in hits]


@pytest.fixture
def watching(tmp_path, fake, fake_config):
    source = write_corpus(tmp_path / "docs")
    index_dir = tmp_path / "docs" / ".index"  # kept inside its own source: its writes must not trigger updates
    build_index(source, index_dir, fake_config, encoder=fake)
    w = Watching(source, index_dir, fake)
    w.thread.start()
    time.sleep(0.3)  # the observer is scheduled before watch() loops; give inotify a moment to attach
    yield w
    w.stop.set()
    w.thread.join(timeout=10)
    assert not w.thread.is_alive()


def test_watch_follows_create_change_save_by_rename_and_delete(watching):
    docs = watching.source
    (docs / "volcano.md").write_text("# Volcanoes\n\nMagma rises through the crust and erupts as lava.\n")
    report = watching.next_update()
    assert report.indexed == 1 and watching.paths("magma lava") == ["volcano.md"]

    (docs / "volcano.md").write_text("# Volcanoes\n\nAsh clouds ground aeroplanes for days.\n")
    report = watching.next_update()
    assert report.indexed == 1 and report.removed == 0
    assert watching.paths("aeroplanes") == ["volcano.md"] and watching.paths("magma") == []

    # An editor's save: write a temporary file beside the original, then rename it over the original.
    tmp = docs / ".volcano.md.swp"
    tmp.write_text("# Volcanoes\n\nGeysers spout boiling water.\n")
    os.replace(tmp, docs / "volcano.md")
    report = watching.next_update()
    assert report.indexed == 1 and watching.paths("geysers") == ["volcano.md"] and watching.paths("aeroplanes") == []

    os.rename(docs / "cooking.md", docs / "recipes.md")  # a rename: the old name goes, the new one comes
    report = watching.next_update()
    assert report.removed == 1 and report.indexed == 1 and watching.paths("pasta") == ["recipes.md"]

    (docs / "volcano.md").unlink()
    report = watching.next_update()
    assert report.removed == 1 and watching.paths("geysers") == []
    assert watching.errors == []


def test_a_burst_of_changes_is_one_update_and_updates_do_not_trigger_updates(watching):
    for i in range(20):
        (watching.source / f"note{i}.txt").write_text(f"note number {i} about comets")
    report = watching.next_update()
    assert report.indexed == 20
    # The update wrote a generation inside the watched folder and read every new file: no update follows.
    with pytest.raises(queue.Empty):
        watching.next_update(timeout=1.5)


def test_watch_takes_in_a_folder_moved_in_and_lets_go_of_one_moved_out(watching, tmp_path):
    """The events name only the moved folder, not the files in it: the update walks what a named folder holds."""
    outside = write_corpus(tmp_path / "outside", {"lakes/a.md": "# Lakes\n\nFjords are flooded glacial valleys."})
    write_corpus(outside, {"lakes/deep/b.txt": "Tarns sit in cirques below peaks."})
    os.rename(outside / "lakes", watching.source / "lakes")
    report = watching.next_update()
    assert report.indexed == 2 and watching.paths("fjords") == ["a.md"] and watching.paths("tarns") == ["b.txt"]
    os.rename(watching.source / "nested", tmp_path / "gone")
    report = watching.next_update()
    assert report.removed == 1 and watching.paths("owls") == []
    assert watching.errors == []


def test_an_ignore_file_changed_under_watch_rescans_the_folder(watching):
    """A new .searcherignore names no indexed file in its event, yet changes what is indexed anywhere under it."""
    (watching.source / ".searcherignore").write_text("astronomy.txt\n")
    report = watching.next_update()
    assert report.removed == 1 and watching.paths("telescopes craters") == []
    assert watching.errors == []


def test_watch_reports_a_failed_update_and_goes_on(watching):
    (watching.source / "cooking.md").unlink()
    for name in os.listdir(watching.source):  # every document gone: that update fails, the index is kept
        path = watching.source / name
        if path.is_file():
            path.unlink()
    import shutil

    shutil.rmtree(watching.source / "nested")
    deadline = time.monotonic() + 15
    while not watching.errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watching.errors and "no documents to index" in str(watching.errors[0])
    assert watching.paths("pasta") == ["cooking.md"]  # the published index is as it was
    (watching.source / "comet.txt").write_text("comets have tails of dust")
    report = watching.next_update()
    assert report.indexed == 1 and watching.paths("comets") == ["comet.txt"]


# `searcher index --watch` in a child process, the fake encoder standing in for every model name.
# subtle: a shell starts background jobs with SIGINT ignored, and Python keeps an inherited SIG_IGN, so under a
# suite run from `cmd &` the child would never see the Ctrl-C; it takes Python's own handler back first.
CLI_CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, sys.argv[1])
from fakes import FakeEncoder
import searcher.indexer, searcher.watch
from searcher.cli import cli
fake = FakeEncoder()
searcher.indexer.load_encoder = searcher.watch.load_encoder = lambda name: fake
cli(sys.argv[2:])
"""


def test_the_cli_watches_until_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    source = write_corpus(tmp_path / "docs")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI_CHILD,
            str(Path(__file__).parent),
            "index",
            str(source),
            "--index",
            str(tmp_path / "idx"),
            "--chunk-tokens",
            "32",
            "--overlap-tokens",
            "4",
            "--watch",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "watching" in child.stderr.readline() or "watching" in child.stderr.readline()
        time.sleep(0.3)
        (source / "comet.txt").write_text("comets have tails of dust")
        line = ""
        deadline = time.monotonic() + 20
        while "1 indexed" not in line and time.monotonic() < deadline:
            line = child.stdout.readline()
        assert "1 indexed" in line
    finally:
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
    assert child.returncode == 0, err
    assert "Traceback" not in err


def test_watch_follows_a_folder_deleted_and_made_again(tmp_path, fake, fake_config):
    import shutil

    source = write_corpus(tmp_path / "docs")
    index_dir = tmp_path / "idx"  # outside the source: deleting the source must not delete the index
    build_index(source, index_dir, fake_config, encoder=fake)
    w = Watching(source, index_dir, fake)
    w.thread.start()
    try:
        time.sleep(0.3)
        shutil.rmtree(source)
        deadline = time.monotonic() + 10
        while not any("is gone" in str(e) for e in w.errors) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("is gone; waiting for it to come back" in str(e) for e in w.errors), w.errors
        write_corpus(source, {"comets.md": "# Comets\n\nComets grow tails of dust near the sun.\n"})
        while True:  # the re-armed watch scans the new folder at once
            report = w.next_update()
            if report.indexed:
                break
        assert w.paths("comets tails dust") == ["comets.md"]
        (source / "later.md").write_text("# Later\n\nA kettle whistles when water boils.\n")
        assert w.next_update().indexed == 1, "changes in the new folder are followed"
        assert w.paths("kettle whistles") == ["later.md"]
    finally:
        w.stop.set()
        w.thread.join(timeout=10)
    assert not w.thread.is_alive()
