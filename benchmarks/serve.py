"""Load on `searcher serve`: 8 and 32 concurrent clients for 30 s each against the SciFact index, on 127.0.0.1.

The server is the real `searcher serve` in a subprocess (it stops itself after STOP_AFTER seconds whatever
happens); the clients are one asyncio process (httpx), each sending the 300 SciFact test queries round-robin as
GET /search (hybrid, k = 10, one hit per document: the API's defaults). Reported: requests per second, p50 and
p99 latency, errors (must be 0), and throughput as a ratio of the in-process rate of Searcher.search_batch over
the same queries with the same options, measured in the same run. Both sides share this machine's 2 cores: the
client loop takes part of the CPU the server could use.

    python benchmarks/serve.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import Searcher
from searcher.metrics import load_beir

INDEX = CACHE / "scifact-428e3e0ddb"  # the bundled MiniLM's SciFact index (benchmarks/quality.py builds it)
STOP_AFTER = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "searcher",
            "serve",
            "--index",
            str(INDEX),
            "--port",
            str(port),
            "--stop-after",
            str(STOP_AFTER),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEARCHER_HOME": str(CACHE / "serve-home")},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    sys.exit("server did not start within 120 s")


async def load(url: str, queries: list[str], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        i = n
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                r = await http.get("/search", params={"query": queries[i % len(queries)], "k": 10})
                ok = r.status_code == 200 and "hits" in r.json()
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t)
            errors += not ok
            i += clients

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        await asyncio.gather(*(client(n, http) for n in range(clients)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "errors": errors,
    }


def in_process_rate(queries: list[str]) -> float:
    with Searcher(INDEX) as s:
        s.search_batch(queries[:10], 10, per_doc=True)  # warm: encoder session, lexical side
        t = time.perf_counter()
        s.search_batch(queries, 10, per_doc=True)
        return len(queries) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    if not (INDEX / "manifest.json").is_file():
        sys.exit(f"{INDEX} is missing: run benchmarks/quality.py first (it builds the SciFact index)")
    queries = list(load_beir(require_data("scifact"), "test").queries.values())
    rate = in_process_rate(queries)
    port = free_port()
    server = start_server(port)
    rows = []
    try:
        for clients in (8, 32):
            r = asyncio.run(load(f"http://127.0.0.1:{port}", queries, clients, args.seconds))
            rows.append(
                f"| {clients} | {r['requests']:,} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                f"{r['errors']} | {r['rps'] / rate:.2f} |"
            )
            print(rows[-1], flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = [
        f"SciFact (5,183 documents in 9,979 chunks), bundled MiniLM through its ONNX export; GET /search, hybrid, "
        f"k = 10, one hit per document; {args.seconds:.0f} s per row. In-process Searcher.search_batch over the "
        f"300 test queries, same options, same run: {rate:.0f} queries/s.",
        "",
        "| clients | requests | requests/s | p50 ms | p99 ms | errors | throughput / in-process |",
        "|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
    ]
    write_section("serve", "Server under load (searcher serve)", "\n".join(lines))


if __name__ == "__main__":
    main()
