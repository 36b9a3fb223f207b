"""The lexical side at scale: its size per chunk, what a one-file update costs in a 10,000-file index, and
hybrid against dense query latency at 1M synthetic chunks.

1. Size: the lexical folder of the SciFact eval index (made by benchmarks/quality.py or hybrid.py) per chunk.
2. Update: SciFact's abstracts as 10,366 files (each abstract's two halves), indexed with the bundled model;
   then one file is changed and `build_index` runs again. Reported: the whole update, and the lexical side's share
   against building the same lexical index from scratch.
3. 1M chunks: the scale benchmark's synthetic vectors (benchmarks/scale.py), each with a synthetic text of 60
   words drawn from a Zipf-distributed 50,000-word vocabulary, written through the project's own generation code
   (so the lexical index is built as `searcher index` builds it); queries are 4 words of a stored chunk's text
   with a noisy copy of its vector. Single queries, search only.

    python benchmarks/lexical.py [--chunks 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from _common import CACHE, require_data, write_section
from scale import spectrum, synthetic

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.encoder import ModelInfo, load_encoder, normalize_rows
from searcher.evaluate import percentiles_ms
from searcher.generation import _write_lexical, coarse_index
from searcher.lexical import LexicalWriter
from searcher.store import FileEntry, Manifest, Projection
from searcher.writer import GenerationWriter, now

VOCABULARY = 50_000
WORDS = 60


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def size_section() -> str:
    eval_root = CACHE
    indexes = [
        p
        for p in eval_root.glob("scifact-*")
        if (p / "manifest.json").is_file() and open_index(p).manifest.config.chunk_tokens is None
    ]  # default chunking, not funnel.py's variant
    if not indexes:
        return "No SciFact eval index under benchmarks/.cache: run benchmarks/hybrid.py first."
    index = open_index(indexes[0])
    lexical = index.path / "lexical"
    size, full = folder_bytes(lexical), (index.path / "full.npy").stat().st_size
    return (
        f"SciFact ({len(index):,} chunks): lexical index {size / 1e6:.1f} MB, **{size / len(index):.0f} B per chunk** "
        f"(full vectors: {full / len(index):.0f} B per chunk; chunks.jsonl: "
        f"{(index.path / 'chunks.jsonl').stat().st_size / len(index):.0f} B per chunk)."
    )


def update_section() -> str:
    work = CACHE / "lexical-update"
    docs = work / "docs"
    if not docs.is_dir():
        docs.mkdir(parents=True)
        with open(require_data("scifact") / "corpus.jsonl") as f:
            for line in f:
                r = json.loads(line)
                words = r["text"].split()
                for half, part in enumerate((words[: len(words) // 2], words[len(words) // 2 :])):
                    (docs / f"{r['_id']}-{half}.txt").write_text(f"{r['title']}\n\n{' '.join(part)}\n")
    files = sorted(docs.iterdir())
    encoder = load_encoder(IndexConfig().model)
    index_dir = work / "index"
    if not (index_dir / "manifest.json").exists():
        build_index(docs, index_dir, IndexConfig(), encoder=encoder, cache_dir=work / "cache")
    changed = files[len(files) // 2]
    original = changed.read_text()
    times = []
    for i in range(3):
        changed.write_text(original + f"\nAn added sentence, edit {i}.\n")
        t = time.perf_counter()
        report = build_index(docs, index_dir, encoder=encoder, cache_dir=work / "cache")
        times.append(time.perf_counter() - t)
    changed.write_text(original)
    build_index(docs, index_dir, encoder=encoder, cache_dir=work / "cache")
    index = open_index(index_dir)
    # The lexical side alone: an incremental generation against one built from scratch, same chunks.
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    t = time.perf_counter()
    writer = LexicalWriter(scratch, "english")
    records = list(index.iter_chunks())
    writer.add([r["id"] for r in records], [r["title"] + "\n" + r["text"] for r in records])
    writer.commit()
    full_lexical = time.perf_counter() - t
    shutil.rmtree(scratch)

    class Stub:  # the writer's folder, for _write_lexical
        path = work / "incremental"

    shutil.rmtree(Stub.path, ignore_errors=True)
    Stub.path.mkdir()
    kept = np.asarray(index.ids)[1:]  # one chunk replaced by one new chunk
    t = time.perf_counter()
    _write_lexical(Stub, "english", index, kept, [], np.empty(0, np.int64))
    incremental = time.perf_counter() - t
    shutil.rmtree(Stub.path)
    return (
        f"{len(files):,} files ({report.documents:,} documents, {report.chunks:,} chunks), one file changed: "
        f"`build_index` takes {min(times):.2f} s (best of 3: {', '.join(f'{x:.2f}' for x in times)}; "
        f"{report.embedded} chunk embedded, {report.unchanged:,} files unchanged and not read). The lexical side "
        f"of such an update (hard links, one delete, commit): **{incremental:.3f} s**, against {full_lexical:.1f} s "
        "to tokenise and index every chunk again."
    )


def build_synthetic(index_dir: Path, n: int, d: int) -> None:
    if (index_dir / "manifest.json").exists():
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(d)
    centres = rng.standard_normal((1000, d), dtype=np.float32)
    vocabulary = np.array([f"w{i}" for i in range(VOCABULARY)])
    p = 1.0 / np.arange(1, VOCABULARY + 1)
    p /= p.sum()
    writer = GenerationWriter(index_dir, 1, n, d)
    texts = []
    for a in range(0, n, 50_000):
        m = min(50_000, n - a)
        writer.full[a : a + m] = synthetic(rng, centres, m, d)
        words = vocabulary[rng.choice(VOCABULARY, size=(m, WORDS), p=p)]
        texts += [" ".join(row) for row in words]
    rows = np.sort(rng.integers(0, n, 1000))
    noise = 0.3 * rng.standard_normal((len(rows), d), dtype=np.float32) * spectrum(d)
    np.save(index_dir / "queries.npy", normalize_rows(np.asarray(writer.full[rows]) + noise))
    (index_dir / "queries.json").write_text(json.dumps([" ".join(texts[r].split()[5:9]) for r in rows]))
    ids = np.arange(n, dtype=np.int64)
    writer.write_ids(ids)
    writer.write_coarse(coarse_index(writer.full, ids, 64)[0])
    writer.write_chunks(
        json.dumps(
            {
                "id": i,
                "doc_id": f"d{i}",
                "title": "",
                "source": "synthetic",
                "start": 0,
                "end": 0,
                "hash": "",
                "text": t,
            }
        ).encode()
        + b"\n"
        for i, t in enumerate(texts)
    )
    # 10,000 synthetic files of n / 10,000 chunks each, so that path filters can select 1% or 0.1% of them
    per = max(1, n // 10_000)
    writer.write_files(
        [FileEntry(f"/synthetic/{a // per:05d}.txt", "", 0, 0, 1, a, min(a + per, n)) for a in range(0, n, per)]
    )
    t = time.perf_counter()
    from searcher.chunking import Chunk

    _write_lexical(
        writer,
        "english",
        None,
        np.empty(0, np.int64),
        [Chunk(f"d{i}", "", "synthetic", text, 0, 0) for i, text in enumerate(texts)],
        ids,
    )
    (index_dir / "lexical-build-seconds").write_text(f"{time.perf_counter() - t:.1f}")
    info = ModelInfo("synthetic", d, 512, "", "", (d, 64), ())
    writer.publish(
        Manifest(
            1,
            now(),
            now(),
            IndexConfig(model="synthetic", projection="prefix"),
            info,
            Projection("prefix", "prefix", 64, n),
            n,
            n,
            n,
            n,
            ("synthetic",),
        )
    )


def scale_section(n: int, n_queries: int) -> str:
    index_dir = CACHE / f"lexical-scale-{n}"
    build_synthetic(index_dir, n, 384)
    xq = np.load(index_dir / "queries.npy")[:n_queries]
    texts = json.loads((index_dir / "queries.json").read_text())[:n_queries]
    with Searcher(index_dir) as s:
        timings = {"dense": [], "lexical": [], "hybrid": []}
        for _ in range(2):
            for i in range(n_queries):
                for mode in timings:
                    t = time.perf_counter()
                    s.search_vectors(xq[i : i + 1], k=10, mode=mode, texts=[texts[i]])
                    timings[mode].append(time.perf_counter() - t)
        p = {m: percentiles_ms(v) for m, v in timings.items()}
        lexical_bytes = folder_bytes(s.index.path / "lexical")
    return "\n".join(
        [
            f"{n:,} synthetic chunks, 384 dims, {WORDS} words each; lexical index built in "
            f"{(index_dir / 'lexical-build-seconds').read_text()} s, {lexical_bytes / n:.0f} B per chunk. {n_queries} "
            "single queries, k = 10, search only:",
            "",
            "| mode | p50 ms | p95 ms |",
            "|:--|--:|--:|",
            *(f"| {m} | {v['p50']:.2f} | {v['p95']:.2f} |" for m, v in p.items()),
            "",
            f"Hybrid / dense p50: **{p['hybrid']['p50'] / p['dense']['p50']:.2f}x**.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    body = "\n\n".join(
        [
            "### Size\n\n" + size_section(),
            "### A one-file update in a 10,000-file index\n\n" + update_section(),
            f"### Hybrid at {args.chunks:,} synthetic chunks\n\n" + scale_section(args.chunks, args.queries),
        ]
    )
    write_section("lexical", "The lexical side: size, updates, scale", body)


if __name__ == "__main__":
    main()
