"""SIGKILL during `build_index` leaves the previous index intact and queryable; the next run completes it."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_corpus
from fakes import FakeEncoder

from searcher import IndexConfig, Searcher, build_index, open_index

TESTS = Path(__file__).parent
CONFIG = dict(
    chunk_tokens=32, overlap_tokens=4, batch_size=2, full_storage="float32"
)  # small batches: many pending-cache shards

# Runs build_index in a child process that SIGKILLs itself when progress reaches (phase, done), or that the
# test kills from outside at a random moment (phase "never").
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from fakes import FakeEncoder
    from searcher import IndexConfig, build_index

    source, index, phase, done, delay = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])

    def progress(p, d, total):
        if p == phase and d >= done:
            os.kill(os.getpid(), signal.SIGKILL)

    fake = FakeEncoder(delay=delay)
    build_index(source, index, IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, batch_size=2,
                                           full_storage="float32"),
                encoder=fake, progress=progress)
    """
)


def spawn(source, index, phase="never", done=0, delay=0.0):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(TESTS), str(source), str(index), phase, str(done), str(delay)],
        stderr=subprocess.PIPE,
    )


def second_version(corpus: Path) -> None:
    """Change one file, delete one, add enough new text for several pending-cache shards."""
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice and simmer it for twenty minutes.\n")
    (corpus / "astronomy.txt").unlink()
    rng = random.Random(1)
    words = ["lava", "ash", "crater", "magma", "plume", "basalt", "ridge", "summit", "eruption", "tremor"]
    write_corpus(
        corpus,
        {
            f"volcano/{i}.txt": "\n\n".join(" ".join(rng.choice(words) for _ in range(12)) + "." for _ in range(6))
            for i in range(20)
        },
    )


def snapshot(index_dir):
    index = open_index(index_dir)
    return (
        index.manifest.generation,
        np.array(index.ids),
        np.array(index.full),
        [r["text"] for r in index.iter_chunks()],
    )


def contents(index_dir):
    """The index as a set-like sorted list: (source, start, text, vector), whatever the row order."""
    index = open_index(index_dir)
    frame = index.full @ index.rotation.T if index.rotation is not None else np.asarray(index.full)
    rows = [
        (r["source"], r["start"], r["text"], tuple(np.round(frame[i], 4))) for i, r in enumerate(index.iter_chunks())
    ]
    return sorted(rows)


def assert_same_index(a, b):
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and a[3] == b[3]


@pytest.fixture
def v1(tmp_path, corpus):
    fake = FakeEncoder()
    build_index(corpus, tmp_path / "idx", IndexConfig(model=fake.info.name, **CONFIG), encoder=fake)
    before = snapshot(tmp_path / "idx")
    second_version(corpus)
    fresh = FakeEncoder()
    build_index(corpus, tmp_path / "fresh", IndexConfig(model=fresh.info.name, **CONFIG), encoder=fresh)
    return tmp_path / "idx", before, contents(tmp_path / "fresh")


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "done"), [("scan", 3), ("embed", 16), ("embed", 32), ("write", 0), ("write", 1)])
def test_kill_at_each_phase_keeps_the_old_index_and_the_next_run_completes(corpus, v1, phase, done):
    index_dir, before, fresh = v1
    child = spawn(corpus, index_dir, phase, done)
    assert child.wait(timeout=60) == -signal.SIGKILL, child.stderr.read().decode()
    assert_same_index(snapshot(index_dir), before)
    fake = FakeEncoder()
    hits = Searcher(index_dir, encoder=fake).search("moon telescope craters", k=3)
    assert "moon" in hits[0].text, "the old index still answers"
    report = build_index(corpus, index_dir, encoder=fake)
    if phase == "embed":
        assert report.reused >= done, "what the killed run embedded is not embedded again"
    assert contents(index_dir) == fresh
    assert not (index_dir / "pending").exists()
    generation = open_index(index_dir).manifest.generation
    assert generation == before[0] + 1
    assert sorted(p.name for p in index_dir.glob("gen-*")) == [f"gen-{generation:06d}"]


@pytest.mark.slow
def test_kill_at_random_moments(corpus, v1):
    index_dir, before, fresh = v1
    rng = random.Random(0)
    for _ in range(6):
        child = spawn(corpus, index_dir, delay=0.3)
        time.sleep(rng.uniform(0.3, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if child.returncode == 0:  # it finished before the kill: a whole new index
            assert contents(index_dir) == fresh
            break
        assert_same_index(snapshot(index_dir), before)
    build_index(corpus, index_dir, encoder=FakeEncoder())
    assert contents(index_dir) == fresh


def test_second_writer_is_refused_while_the_first_runs(corpus, v1, tmp_path):
    from searcher.errors import IndexBusyError

    index_dir, _, _ = v1
    child = spawn(corpus, index_dir, delay=0.5)
    try:
        deadline = time.time() + 20
        while not (index_dir / "pending").exists() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(IndexBusyError, match="another process is writing the index"):
            build_index(corpus, index_dir, encoder=FakeEncoder())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
