"""One changed document in a large folder: how long until the index has it, in the process that built the index
(the library call, as the peers benchmark times every system's update) and as a new `searcher index` process (as a
user or a cron job runs it). All of SciFact as one .txt file per document (title, then text), as in peers.py.

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
    in_process = []
    for _ in range(args.rounds):
        edit()
        started = time.perf_counter()
        report = build_index(folder, index)
        in_process.append(time.perf_counter() - started)
        assert report.embedded >= 1, "the edit was not seen"
    new_process = []
    for _ in range(args.rounds):
        edit()
        started = time.perf_counter()
        command = [sys.executable, "-m", "searcher", "index", str(folder), "--index", str(index), "-q"]
        subprocess.run(command, check=True, capture_output=True)
        new_process.append(time.perf_counter() - started)
    manifest = read_manifest(index)
    lines = [
        f"{manifest.files} files ({manifest.chunks} chunks); one file gets a sentence appended, then the index is "
        f"updated; median (min-max) of {args.rounds} rounds each.",
        "",
        "| update of one changed file | seconds |",
        "|:--|--:|",
        f"| `build_index` in the process that built the index (the peers benchmark's update column) | "
        f"{statistics.median(in_process):.2f} ({min(in_process):.2f}-{max(in_process):.2f}) |",
        f"| `searcher index FOLDER --index INDEX` as a new process (imports, scan, embed, new generation) | "
        f"{statistics.median(new_process):.2f} ({min(new_process):.2f}-{max(new_process):.2f}) |",
    ]
    write_section("update-one", "One changed document in a 5,183-file folder", "\n".join(lines))


if __name__ == "__main__":
    main()
