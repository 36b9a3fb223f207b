"""A small edit, searchable: one changed file re-indexed by a new `searcher index` process, and the first change
seen by a new `searcher index --watch` process (nothing loaded beforehand): the first until a new process's query
finds the file's new word, the second until a reader polling the index (a fresh Searcher every 20 ms, as
benchmarks/watch.py) does.

On an index that has the model as an ONNX graph, a small update chunks and embeds with the graph and never
imports torch (encoder_choice.small_edit_limit). For scale, the same run times what the update would otherwise load
first: `import sentence_transformers` and the bundled model, in a new process.

    python benchmarks/small_edit.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import HERE, write_section
from watch import visible  # a reader's view, as benchmarks/watch.py polls it

ROUNDS = 5
SEARCHER = [sys.executable, "-m", "searcher"]


def found(index: Path, word: str, env: dict) -> bool:
    done = subprocess.run(
        [*SEARCHER, "query", word, "--index", str(index), "--mode", "lexical", "-k", "1", "--format", "paths"],
        capture_output=True,
        text=True,
        env=env,
    )
    return done.returncode == 0 and done.stdout.strip() != ""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="searcher-edit-"))
    docs, index = work / "docs", work / "index"
    shutil.copytree(HERE.parent / "corpus", docs)
    env = {**os.environ, "SEARCHER_HOME": str(work / "home")}
    subprocess.run([*SEARCHER, "index", str(docs), "--index", str(index), "-q"], check=True, env=env)
    target = next(docs.rglob("*.md"))
    original = target.read_text()
    edits, paths = [], set()
    try:
        for i in range(ROUNDS):
            target.write_text(original + f"\nA line about zyxedit{i} added by hand.\n")
            started = time.perf_counter()
            done = subprocess.run(
                [*SEARCHER, "index", str(docs), "--index", str(index)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            edits.append(time.perf_counter() - started)
            paths.add(done.stdout.split(" embedded (")[1].split(")")[0] if "embedded (" in done.stdout else "?")
            assert found(index, f"zyxedit{i}", env), done.stdout
        load = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from searcher import load_encoder; load_encoder('sentence-transformers/all-MiniLM-L6-v2')",
                ],
                check=True,
                env=env,
            )
            load.append(time.perf_counter() - started)
        # The first change under a new `searcher index --watch`: from the save to a query that finds it.
        firsts = []
        for i in range(3):
            watcher = subprocess.Popen(
                [*SEARCHER, "index", str(docs), "--index", str(index), "--watch"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            try:
                line = ""
                deadline = time.monotonic() + 120
                while "watching" not in line and time.monotonic() < deadline:
                    line = watcher.stderr.readline()
                time.sleep(0.5)  # the observer is started just after the line is printed
                word = f"zyxwatch{i}"
                target.write_text(original + f"\nA line about {word} added under watch.\n")
                started = time.perf_counter()
                while not visible(index, word):
                    if time.perf_counter() - started > 120:
                        raise TimeoutError(word)
                    time.sleep(0.02)
                firsts.append(time.perf_counter() - started)
            finally:
                watcher.terminate()
                watcher.wait(timeout=30)
    finally:
        target.write_text(original)
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"A copy of corpus/ (bundled MiniLM); {ROUNDS} one-file edits, 3 first changes under watch.",
        "",
        "| what | median s | min s | max s |",
        "|:--|--:|--:|--:|",
        f"| one changed file: `searcher index` as a new process (embedded with: {', '.join(sorted(paths))}) | "
        f"{statistics.median(edits):.2f} | {min(edits):.2f} | {max(edits):.2f} |",
        f"| first change under a new `searcher index --watch`, from the save to a reader finding it "
        f"(the 0.5 s debounce included) | {statistics.median(firsts):.2f} | "
        f"{min(firsts):.2f} | {max(firsts):.2f} |",
        f"| for scale: a new process that imports sentence-transformers and loads the model (what a torch "
        f"update adds) | {statistics.median(load):.2f} | {min(load):.2f} | {max(load):.2f} |",
    ]
    write_section("small-edit", "A small edit, searchable (no torch)", "\n".join(lines))


if __name__ == "__main__":
    main()
