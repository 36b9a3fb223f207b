"""Watch latency: from a file saved under a watched folder to the first query that finds it.

`searcher index --watch` on a copy of corpus/ with the bundled model (watch.py in a thread of this process, as
the CLI runs it); each round saves one file (new, changed, saved by rename, deleted) holding a word found
nowhere else, and polls a lexical query (a fresh Searcher each poll, as a separate reader would) every 10 ms
until the change shows. Latency = the debounce (0.5 s) + the rescan + embedding the file + publishing.

    python benchmarks/watch.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _common import HERE, write_section

from searcher import Searcher, build_index, load_encoder
from searcher.watch import DEBOUNCE_SECONDS, watch

ROUNDS = 5


def visible(index: Path, word: str) -> bool:
    with Searcher(index) as s:
        return any(word in h.text for h in s.search(word, 1, mode="lexical"))


def wait_for(index: Path, word: str, present: bool, timeout: float = 60.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if visible(index, word) == present:
            return time.perf_counter() - start
        time.sleep(0.01)
    raise TimeoutError(f"{word} did not {'appear' if present else 'go'} within {timeout} s")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="searcher-watch-"))
    docs, index = work / "docs", work / "index"
    shutil.copytree(HERE.parent / "corpus", docs)
    os.environ["SEARCHER_HOME"] = str(work / "home")
    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    build_index(docs, index, encoder=encoder)
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(docs, index), kwargs=dict(stop=stop, encoder=encoder), daemon=True)
    thread.start()
    time.sleep(1)
    rows = {"create": [], "change": [], "save by rename": [], "delete": []}
    try:
        for i in range(ROUNDS):
            word = f"zyxwatch{i}"
            path = docs / f"watch-{i}.md"
            path.write_text(f"# Note {i}\n\nThe {word} appears here and nowhere else.\n")
            rows["create"].append(wait_for(index, word, True))
            path.write_text(f"# Note {i}\n\nNow it says {word}b instead.\n")
            rows["change"].append(wait_for(index, word + "b", True))
            tmp = docs / f".watch-{i}.md.swp"
            tmp.write_text(f"# Note {i}\n\nSaved by rename: {word}c.\n")
            os.replace(tmp, path)
            rows["save by rename"].append(wait_for(index, word + "c", True))
            path.unlink()
            rows["delete"].append(wait_for(index, word + "c", False))
    finally:
        stop.set()
        thread.join(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"debounce {DEBOUNCE_SECONDS} s; {ROUNDS} rounds on a copy of corpus/, bundled MiniLM",
        "",
        "| change | median s | max s |",
        "|:--|--:|--:|",
    ]
    lines += [f"| {name} | {statistics.median(v):.2f} | {max(v):.2f} |" for name, v in rows.items()]
    write_section("watch", "Watch latency (save to searchable)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
