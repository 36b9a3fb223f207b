"""The server under load while its indexes change: concurrent clients against `searcher serve` while a watcher
(`searcher index --watch`) publishes a generation of index A after every edit and `searcher index` publishes
generations of index B over and over. Reported: requests, errors (must be 0), answers mixing generations (must be
0), and the server's resident memory at the start and end (bounded: no growth with requests or generations).

How a mixed answer is seen: index A holds `tick.md`, rewritten with a new token `tickN` before each generation;
the edit loop waits for each generation to be published and reads, from the index itself, which token that
generation holds. A client asks A for "tick" (lexical, k = 1): the answer names its generation, and the hit's
text must hold that generation's token - an answer from one generation's manifest with another's chunks would
not. (A generation published and replaced between two reads of the loop is not recorded: those answers are
counted apart.)

Everything runs on 127.0.0.1: the server and the watcher are subprocesses that stop themselves (--stop-after, a
deadline), the loops are bounded in count and time.

    python benchmarks/serve_faults.py [--requests 3000] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import CACHE, HERE, write_section

from searcher import build_index, open_index
from searcher.errors import SearcherError

DEADLINE = 600  # seconds: every loop and subprocess ends by then, whatever happens


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generation(index: Path) -> int:
    return _retried(lambda: _generation(index))


def _generation(index: Path) -> int:
    index_ = open_index(index)
    try:
        return index_.manifest.generation
    finally:
        index_.close()


def _retried(read):
    """A read of an index a writer is publishing: a generation deleted between reading the manifest and opening
    its files is read again (the server's catalog does the same)."""
    for _ in range(50):
        try:
            return read()
        except (FileNotFoundError, SearcherError):
            time.sleep(0.02)
    return read()


def published_token(index: Path) -> tuple[int, int | None]:
    return _retried(lambda: _published_token(index))


def _published_token(index: Path) -> tuple[int, int | None]:
    """(generation, the token its tick.md chunk holds): what that generation really has."""
    index_ = open_index(index)
    try:
        for record in index_.iter_chunks():
            if record["source"].endswith("tick.md"):
                found = re.search(r"tick(\d+)", record["text"])
                return index_.manifest.generation, int(found.group(1)) if found else None
        return index_.manifest.generation, None
    finally:
        index_.close()


def _wait_healthy(url: str, seconds: float = 60) -> None:
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    import httpx

    work = CACHE / "serve-faults"
    shutil.rmtree(work, ignore_errors=True)
    docs_a, docs_b = work / "a", work / "b"
    shutil.copytree(HERE.parent / "corpus" / "md", docs_a)
    shutil.copytree(HERE.parent / "corpus" / "rst", docs_b)
    (docs_a / "tick.md").write_text("# Tick\n\ntick0\n")
    home = work / "home"
    env = {**os.environ, "SEARCHER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    index_a, index_b = work / "index-a", work / "index-b"
    os.environ["SEARCHER_HOME"] = str(home)
    build_index(docs_a, index_a)
    build_index(docs_b, index_b)
    tokens = dict([published_token(index_a)])

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "searcher",
            "serve",
            "--index",
            str(index_a),
            "--index",
            str(index_b),
            "--port",
            str(port),
            "--stop-after",
            str(DEADLINE),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "searcher", "index", str(docs_a), "--index", str(index_a), "--watch", "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    time.sleep(2)  # the watcher's observer attaches

    stop = threading.Event()
    lock = threading.Lock()
    answers: list[tuple[int, int | None]] = []  # (generation, token in the hit) of index A's answers
    errors: list[str] = []
    counts = {"requests": 0}
    memory = [rss_mb(server.pid)]

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                with lock:
                    if counts["requests"] >= args.requests:
                        return
                    counts["requests"] += 1
                    i = counts["requests"]
                if i % 500 == 0:
                    memory.append(rss_mb(server.pid))
                try:
                    if i % 2:
                        r = http.get("/search", params={"query": "tick", "mode": "lexical", "k": 1, "index": "index-a"})
                        if r.status_code == 200:
                            body = r.json()
                            found = re.search(r"tick(\d+)", body["hits"][0]["text"]) if body["hits"] else None
                            with lock:
                                answers.append((body["generation"], int(found.group(1)) if found else None))
                    else:
                        r = http.get("/search", params={"query": "how do I read a file", "k": 5, "index": "index-b"})
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(type(e).__name__)

    def edits() -> None:  # index A: a new token, then wait for the watcher to publish it
        n = 0
        while not stop.is_set():
            n += 1
            before = generation(index_a)
            (docs_a / "tick.md").write_text(f"# Tick\n\ntick{n}\n")
            deadline = time.monotonic() + 20
            while generation(index_a) == before and time.monotonic() < deadline and not stop.is_set():
                time.sleep(0.05)
            g, token = published_token(index_a)
            with lock:
                tokens[g] = token

    def rebuilds() -> None:  # index B: `searcher index` over and over, a file changed each time
        n = 0
        while not stop.is_set():
            n += 1
            (docs_b / "churn.rst").write_text(f"Churn\n=====\n\nRevision {n} of a file that keeps changing.\n")
            subprocess.run(
                [sys.executable, "-m", "searcher", "index", str(docs_b), "--index", str(index_b), "-q"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=300,
            )

    workers = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    background = [threading.Thread(target=edits), threading.Thread(target=rebuilds)]
    t0 = time.monotonic()
    try:
        for t in background + workers:
            t.start()
        for t in workers:
            t.join(timeout=DEADLINE)
    finally:
        stop.set()
        for t in background:
            t.join(timeout=300)
        seconds = time.monotonic() - t0
        memory.append(rss_mb(server.pid))
        watcher.terminate()
        server.terminate()
        watcher.wait(timeout=30)
        _, err = server.communicate(timeout=30)
    mixed = [(g, t) for g, t in answers if g in tokens and t != tokens[g]]
    unknown = sum(1 for g, _ in answers if g not in tokens)
    generations_a = len({g for g, _ in answers})
    lines = [
        f"{counts['requests']:,} requests from {args.clients} clients in {seconds:.0f} s, half to index A (lexical "
        f"`tick`), half to index B (hybrid); index A went through {generations_a} generations seen by clients "
        f"({len(tokens)} published by the watcher), index B through {generation(index_b) - 1} rebuilds by "
        f"`searcher index`.",
        "",
        "| errors | answers mixing generations | answers from a generation the edit loop did not record | "
        "server RSS start -> end (MB) | traceback in the server's log |",
        "|--:|--:|--:|--:|:--|",
        f"| {len(errors)} | {len(mixed)} | {unknown} | {memory[0]:.0f} -> {memory[-1]:.0f} "
        f"(every 500 requests: {', '.join(f'{m:.0f}' for m in memory)}) | {'yes' if 'Traceback' in err else 'no'} |",
    ]
    if errors:
        lines += ["", "First errors: " + "; ".join(errors[:5])]
    write_section("serve-faults", "Server under load while its indexes change", "\n".join(lines))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
