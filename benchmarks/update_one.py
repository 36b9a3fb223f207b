"""One changed document in a large folder: how long until the index has it, in the process that built the index
(the library call, walking the folder or told which file changed, as the peers benchmark tells every system) and as
a new process (`searcher index FOLDER` as a cron job runs it, `searcher update FILE` as an editor's save hook
would). All of SciFact as one .txt file per document (title, then text), as in peers.py.

    python benchmarks/update_one.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import orjson
from _common import CACHE, require_data, write_section

from searcher import build_index
from searcher.store import read_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = CACHE / "update-one"
    folder, index = work / "docs", work / "index"
    if not (index / "manifest.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with open(require_data("scifact") / "corpus.jsonl", "rb") as f:
            for line in f:
                doc = orjson.loads(line)
                (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")
        build_index(folder, index)
    changed = sorted(folder.iterdir())[len(list(folder.iterdir())) // 2]

    def edit() -> None:
        with open(changed, "a") as f:
            f.write(f"\nOne more sentence, added at {time.time()}.\n")

    build_index(folder, index)  # in step with the folder; the model and the document encoder loaded

    def timed(update) -> list[float]:
        out = []
        for _ in range(args.rounds):
            edit()
            started = time.perf_counter()
            update()
            out.append(time.perf_counter() - started)
        return out

    def rescan() -> None:
        assert build_index(folder, index).embedded >= 1, "the edit was not seen"

    def told() -> None:
        assert build_index(folder, index, changed=[changed]).embedded >= 1, "the edit was not seen"

    def command(*words: str):
        return lambda: subprocess.run([sys.executable, "-m", "searcher", *words, "-q"], check=True, capture_output=True)

    rows = {  # label -> seconds per round; measured in turns, one kind after another
        "`build_index(FOLDER)` in the process that built the index: a walk of the folder": timed(rescan),
        "`build_index(FOLDER, changed=[FILE])` in that process (the peers benchmark's update column)": timed(told),
        "`searcher index FOLDER --index INDEX` as a new process (imports, walk, embed, new generation)": timed(
            command("index", str(folder), "--index", str(index))
        ),
        "`searcher update FILE --index INDEX` as a new process (imports, embed, new generation)": timed(
            command("update", str(changed), "--index", str(index))
        ),
    }
    manifest = read_manifest(index)
    lines = [
        f"{manifest.files} files ({manifest.chunks} chunks); one file gets a sentence appended, then the index is "
        f"updated; median (min-max) of {args.rounds} rounds each.",
        "",
        "| update of one changed file | seconds |",
        "|:--|--:|",
        *(f"| {label} | {statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) |" for label, t in rows.items()),
    ]
    write_section("update-one", "One changed document in a 5,183-file folder", "\n".join(lines))


if __name__ == "__main__":
    main()
