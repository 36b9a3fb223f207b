"""`searcher eval`: the model cards' IR tables for a BEIR data set, for every search mode and Matryoshka dim.

One run indexes the corpus (or reuses a matching index: the default index directory is keyed by corpus,
model and chunking, and re-indexing an unchanged corpus embeds nothing), embeds the judged queries (cached
per model, like the corpus chunks), and reports:

- the metrics of metrics.py for hybrid, dense (two-stage), lexical, exact full-dim and coarse-only search;
- the same for exact search with each Matryoshka prefix of the model's own vectors (64 ... full width), as
  the cards' `dim_N` tables do;
- the share of the exact top-10 documents the dense (two-stage) top-10 keeps;
- single-query latency, p50 and p95, with encoding and search apart.

As BEIR's evaluation does, a document that is its query (ArguAna, Quora: same id, the query's text) is left out of
that query's ranking unless `keep_identical_ids` (metrics.py); the report counts them.

A data set's queries are text, not a search box's: their quotes and word-leading minus signs are read as
punctuation (syntax.literal), as BEIR's retrievers and bm25s read them, not as the phrases and exclusions `searcher
query` makes of them. A claim that quotes a term (SciFact train: `Mouse models can be generated using "artificial
spermatids."`) would otherwise keep only the passages holding the quote word for word, and its answer, which
paraphrases it, out of the hybrid and lexical rankings. The report counts such queries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .cache import EmbeddingCache, text_key
from .config import DEFAULT_FUSION_WEIGHT, DEFAULT_SHORTLIST, FUSION_DEPTH, IndexConfig
from .encoder import Encoder, load_encoder, normalize_rows
from .errors import InvalidInputError
from .exact import EXACT_BLOCK, exact_top_k
from .indexer import Progress, build_index
from .metrics import (
    DEPTH,
    BeirData,
    document_rankings,
    ir_metrics,
    load_beir,
    metrics_table,
    query_metrics,
    top_overlap,
)
from .onnx_encoder import OnnxEncoder
from .search import Searcher
from .store import MANIFEST, read_manifest
from .syntax import literal
from .upkeep import set_fusion_weight

MATRYOSHKA_DIMS = (768, 512, 256, 128, 64)
EVAL_ROOT = Path("indexes/eval")
LATENCY_QUERIES = 100  # queries timed one at a time


@dataclass
class EvalReport:
    data: str
    split: str
    queries: int
    index: str
    model: str
    projection: str
    coarse_dim: int
    shortlist: int
    modes: dict[str, dict[str, float]] = field(default_factory=dict)  # hybrid/dense/lexical/full/coarse -> metrics
    fusion_weight: float = 0.0  # the index's dense weight in hybrid search (fusion.py)
    tuned: dict | None = None  # with --tune: the split, its queries, nDCG@10 per weight, the weight chosen
    dims: dict[int, dict[str, float]] = field(default_factory=dict)  # prefix width -> metrics, exact search
    agreement: float = 0.0  # share of the exact full-dim top-10 documents kept by the two-stage top-10
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # encode/two-stage/full -> p50, p95
    ndcg_by_query: dict[str, dict[str, float]] = field(default_factory=dict)  # hybrid/dense -> {query id: nDCG@10}
    corpus_documents: int = 0  # usable records in corpus.jsonl
    indexed_documents: int = 0  # documents the index holds
    judged_not_indexed: list[str] = field(default_factory=list)  # judged documents missing from the index
    identical_ids: int = 0  # judged queries that are themselves a document of the corpus (BeirData.itself)
    literal_queries: int = 0  # queries holding what `searcher query` reads as syntax, read as text (syntax.literal)
    keep_identical_ids: bool = False  # whether such a document stayed in its query's ranking
    warnings: list[str] = field(default_factory=list)  # what indexing dropped (bad lines, unreadable files, ...)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dims"] = {str(k): v for k, v in self.dims.items()}
        del d["ndcg_by_query"]  # per query: for comparisons in code (train.comparison), not for the report
        return d

    def to_markdown(self) -> str:
        columns = {**self.modes, **{f"dim {d}": m for d, m in self.dims.items()}}
        lines = [
            f"Data `{self.data}`, split `{self.split}`, {self.queries} queries; model `{self.model}`; "
            f"{self.projection} projection to {self.coarse_dim} dims, shortlist {self.shortlist}; hybrid = "
            f"{self.fusion_weight:g} x cosine + {1 - self.fusion_weight:g} x the query's word coverage (fusion.py).",
            f"Corpus: {self.corpus_documents} documents read, {self.indexed_documents} in the index; "
            f"{len(self.judged_not_indexed)} judged document(s) not in the index"
            + (
                f" (they cap recall; first: {', '.join(self.judged_not_indexed[:5])})"
                if self.judged_not_indexed
                else ""
            )
            + ".",
            *(
                [
                    f"{self.identical_ids} of the {self.queries} queries are themselves a document of the corpus "
                    "(the same id and text): "
                    + (
                        "that document was kept in their rankings."
                        if self.keep_identical_ids
                        else "that document was left out of their rankings, as BEIR's evaluation does "
                        "(--keep-identical-ids keeps it)."
                    )
                ]
                if self.identical_ids
                else []
            ),
            *(
                [
                    f"{self.literal_queries} of the {self.queries} queries hold quotes or a word-leading minus: read "
                    "as text, as BEIR's retrievers read them (`searcher query` reads them as phrases and exclusions)."
                ]
                if self.literal_queries
                else []
            ),
            *(f"warning: {w}" for w in self.warnings),
            *(
                [
                    f"Fusion weight tuned on the {self.tuned['split']} split ({self.tuned['queries']} queries): "
                    + ", ".join(f"{w}: {v:.4f}" for w, v in self.tuned["ndcg@10"].items())
                    + f"; chosen {self.tuned['weight']}, stored in the index."
                ]
                if self.tuned
                else []
            ),
            "",
            *metrics_table(columns),
            "",
            f"Dense (two-stage) top-10 keeps {self.agreement:.1%} of the exact full-dim top-10 (documents, set "
            "overlap).",
        ]
        if self.latency_ms:
            parts = [f"{name} p50 {v['p50']:.1f} ms, p95 {v['p95']:.1f} ms" for name, v in self.latency_ms.items()]
            lines.append("Single-query latency: " + "; ".join(parts) + ".")
        return "\n".join(lines)


def default_index_dir(root: Path, corpus: Path, config: IndexConfig, max_seq_length: int) -> Path:
    """<root>/<dataset>-<hash of corpus path, model, chunking, storage>: one index per thing worth comparing."""
    key = f"{corpus.resolve()}|{config.model}|{config.chunking(max_seq_length)}"
    if config.full_storage != "float32":  # (float32 indexes keep the names they had before storage types)
        key += f"|{config.full_storage}"
    if config.backend != "local":
        key += f"|{config.backend}|{config.qdrant_url or config.qdrant_path}|{config.qdrant_collection}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", corpus.resolve().parent.name)
    return root / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def cache_dir_for(root: Path, encoder: Encoder) -> Path:
    """<root>/cache/<model>-<fingerprint>: embeddings of one model, shared by all its eval indexes."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", encoder.info.name.strip("/"))[-60:]
    return root / "cache" / f"{slug}-{encoder.info.weights_id()}"


def evaluate(
    data_dir: Path | str,
    *,
    split: str = "test",
    config: IndexConfig | None = None,
    index_dir: Path | str | None = None,
    shortlist: int = DEFAULT_SHORTLIST,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    latency: bool = True,
    root: Path | str = EVAL_ROOT,
    tune: bool = False,
    tune_split: str | None = None,
    keep_identical_ids: bool = False,
) -> EvalReport:
    """Evaluate a model and searcher's search modes on a BEIR data set (see the module docstring).

    Indexes (unless `index_dir` names one) and the per-model embedding cache live under `root`. `tune=True`
    first picks the hybrid fusion weight on another labelled split (`tune_split`, by default train, else dev;
    never the split reported) and stores it in the index. `keep_identical_ids` keeps a document that is its query
    in that query's ranking (the module docstring).
    """
    data = load_beir(data_dir, split)
    identical = len(data.itself)
    data = _counting_itself(data, keep_identical_ids)
    itself = data.itself
    config = config or IndexConfig()
    encoder = encoder or load_encoder(config.model)
    config = config.replace(model=encoder.info.name)
    root = Path(root)
    index_dir = (
        Path(index_dir) if index_dir else default_index_dir(root, data.corpus, config, encoder.info.max_seq_length)
    )
    cache = cache_dir_for(root, encoder)
    tune_split = _tune_split(Path(data_dir), split, tune_split) if tune else None
    # An eval index is derived data: if the model at this name has been retrained since, start it over.
    stale = (index_dir / MANIFEST).exists() and not read_manifest(index_dir).model.same_weights(encoder.info)
    if (index_dir / MANIFEST).exists() and not stale:  # a weight tuned earlier stays
        kept = read_manifest(index_dir).config
        config = config.replace(fusion_weight=kept.fusion_weight)
    built = build_index(
        data.corpus, index_dir, config, rebuild=stale, encoder=encoder, progress=progress, cache_dir=cache
    )
    tuned = None
    if tune_split is not None:
        tune_data = _counting_itself(load_beir(data_dir, tune_split), keep_identical_ids)
        tuned = tune_fusion(index_dir, tune_data, encoder, EmbeddingCache(cache, encoder.info), shortlist)
        tuned["split"] = tune_split

    qids = list(data.queries)
    xq = _query_vectors(encoder, [data.queries[q] for q in qids], EmbeddingCache(cache, encoder.info))
    with Searcher(index_dir, encoder=encoder) as searcher:
        manifest = searcher.manifest
        doc_of = {r["id"]: r["doc_id"] for r in searcher.index.iter_chunks()}
        depth = min(len(doc_of), DEPTH * max(Counter(doc_of.values()).values()))  # enough chunks for DEPTH docs

        def score(D: np.ndarray, I: np.ndarray) -> tuple[dict[str, float], list]:
            rankings = document_rankings(D, I, doc_of)
            return ir_metrics(dict(zip(qids, rankings)), data.qrels, itself=itself), rankings

        indexed = set(doc_of.values())
        stored = [f"{e.path}: {w}" for e in searcher.index.files() for w in e.warnings]
        report = EvalReport(
            data=str(data_dir),
            split=split,
            queries=len(qids),
            index=str(index_dir),
            model=manifest.model.name,
            projection=manifest.projection.kind,
            coarse_dim=manifest.projection.coarse_dim,
            shortlist=shortlist,
            corpus_documents=data.documents,
            indexed_documents=len(indexed),
            judged_not_indexed=sorted({d for rel in data.qrels.values() for d in rel} - indexed),
            identical_ids=identical,
            keep_identical_ids=keep_identical_ids,
            warnings=list(dict.fromkeys(built.warnings + stored)),
        )
        texts = [literal(data.queries[q]) for q in qids]
        report.literal_queries = sum(t != " ".join(data.queries[q].split()) for q, t in zip(qids, texts))
        if searcher.lexical is not None:
            # k = FUSION_DEPTH: each side brings the candidates it brings for any k up to that, as users see it
            report.modes["hybrid"], hybrid = score(
                *searcher.search_vectors(xq, k=FUSION_DEPTH, shortlist=shortlist, mode="hybrid", texts=texts)
            )
            report.ndcg_by_query["hybrid"] = _ndcg_by_query(qids, hybrid, data.qrels, itself)
        report.modes["dense"], dense = score(*searcher.search_vectors(xq, k=shortlist, shortlist=shortlist))
        report.ndcg_by_query["dense"] = _ndcg_by_query(qids, dense, data.qrels, itself)
        if searcher.lexical is not None:
            report.modes["lexical"], _ = score(*searcher.search_vectors(None, k=depth, mode="lexical", texts=texts))
        report.modes["full"], full = score(*searcher.search_vectors(xq, k=depth, mode="full"))
        report.modes["coarse"], _ = score(*searcher.search_vectors(xq, k=depth, mode="coarse"))
        report.agreement = top_overlap(dense, full, k=10)
        report.fusion_weight = manifest.config.fusion_weight
        report.tuned = tuned
        for dim in matryoshka_dims(manifest.model.dim):
            report.dims[dim], _ = score(*exact_prefix_search(searcher, xq, dim=dim, k=depth))
    if latency:
        # Timed as `searcher query` runs: with the index's own query encoder (the ONNX export, when it has one).
        with Searcher(index_dir, encoder=None if manifest.query_encoder else encoder) as searcher:
            report.latency_ms = _latency(searcher, [data.queries[q] for q in qids[:LATENCY_QUERIES]], shortlist)
    return report


def _counting_itself(data: BeirData, keep: bool) -> BeirData:
    """`data` whose queries that are documents count those documents in their rankings (`keep`), or as it is."""
    return dataclasses.replace(data, itself=frozenset()) if keep and data.itself else data


def _ndcg_by_query(qids: list[str], rankings: list, qrels, itself: frozenset[str]) -> dict[str, float]:
    by_query = query_metrics(dict(zip(qids, rankings)), qrels, itself=itself)
    return {q: m["ndcg@10"] for q, m in by_query.items()}


TUNE_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def _tune_split(data_dir: Path, split: str, requested: str | None) -> str:
    """The labelled split to tune on: the one asked for, else train, else dev; never the split reported."""
    available = sorted(p.stem for p in (data_dir / "qrels").glob("*.tsv"))
    if requested is not None:
        if requested == split:
            raise InvalidInputError(f"cannot tune on the {split!r} split and report it; pass another --tune-split")
        if requested not in available:
            raise InvalidInputError(f"no split {requested!r} in {data_dir}/qrels (found: {', '.join(available)})")
        return requested
    for candidate in ("train", "dev"):
        if candidate in available and candidate != split:
            return candidate
    raise InvalidInputError(
        f"{data_dir}/qrels has no labelled split other than {split!r} to tune on "
        f"(found: {', '.join(available)}); tuning on the reported split would overstate it"
    )


def tune_fusion(index_dir: Path, data, encoder: Encoder, cache: EmbeddingCache, shortlist: int) -> dict:
    """Pick the hybrid fusion weight with the best nDCG@10 on `data`'s queries and store it in the index.

    Ties go to the weight nearer the default. Returns {"queries", "ndcg@10": {weight: value}, "weight"}.
    """
    scores = fusion_sweep(index_dir, data, encoder, cache, shortlist)
    best = max(TUNE_WEIGHTS, key=lambda w: (round(scores[w], 6), -abs(w - DEFAULT_FUSION_WEIGHT)))
    set_fusion_weight(index_dir, best)
    return {"queries": len(data.queries), "ndcg@10": {str(w): round(v, 4) for w, v in scores.items()}, "weight": best}


def fusion_sweep(index_dir: Path, data, encoder: Encoder, cache: EmbeddingCache, shortlist: int) -> dict[float, float]:
    """Hybrid nDCG@10 on `data`'s queries at each of TUNE_WEIGHTS; the index is not changed."""
    qids = list(data.queries)
    xq = _query_vectors(encoder, [data.queries[q] for q in qids], cache)
    texts = [literal(data.queries[q]) for q in qids]  # read as text, as evaluate reads them
    scores = {}
    with Searcher(index_dir, encoder=encoder) as searcher:
        if searcher.lexical is None:
            raise InvalidInputError(f"the index at {index_dir} has no lexical side to fuse; re-run `searcher index`")
        doc_of = {r["id"]: r["doc_id"] for r in searcher.index.iter_chunks()}
        for w in TUNE_WEIGHTS:
            D, I = searcher.search_vectors(
                xq, k=FUSION_DEPTH, shortlist=shortlist, mode="hybrid", texts=texts, fusion_weight=w
            )
            rankings = dict(zip(qids, document_rankings(D, I, doc_of)))
            scores[w] = ir_metrics(rankings, data.qrels, itself=data.itself)["ndcg@10"]
    return scores


def matryoshka_dims(full_dim: int) -> list[int]:
    """The cards' dims that a model of this width has, full width first."""
    return [full_dim] + [d for d in MATRYOSHKA_DIMS if d < full_dim]


def _query_vectors(encoder: Encoder, texts: list[str], cache: EmbeddingCache) -> np.ndarray:
    """Query embeddings through the per-model cache (keys differ from documents': the prompt differs)."""
    keys = [text_key("\0query\0" + encoder.info.query_prompt + t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items())
    if missing:
        cache.add([k for k, _ in missing], encoder.encode_queries([t for _, t in missing]))
    return cache.get(keys)


def exact_prefix_search(searcher: Searcher, xq: np.ndarray, *, dim: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact search with the first `dim` dims of the model's own vectors (undoing any pca rotation),
    re-normalised: what sentence-transformers' `truncate_dim` evaluates."""
    index = searcher.index

    def blocks():
        for a in range(0, len(index), EXACT_BLOCK):
            x = np.asarray(index.full[a : a + EXACT_BLOCK])
            if index.rotation is not None:
                x = x @ index.rotation.T
            yield normalize_rows(x[:, :dim]), np.asarray(index.ids[a : a + len(x)])

    return exact_top_k(normalize_rows(xq[:, :dim]), blocks(), k)


def _latency(searcher: Searcher, texts: list[str], shortlist: int) -> dict[str, dict[str, float]]:
    runtime = "onnx" if isinstance(searcher.encoder, OnnxEncoder) else "torch"
    timings: dict[str, list[float]] = {
        f"encode ({runtime})": [],
        "dense search": [],
        "full search": [],
        "hybrid search": [],
    }
    encode = timings[f"encode ({runtime})"]
    searcher.encoder.encode_queries(texts[:1])  # warm-up
    for text, words in zip(texts, map(literal, texts)):  # (read as text, as evaluate reads them; outside the timing)
        t0 = time.perf_counter()
        xq = searcher.encoder.encode_queries([text])
        t1 = time.perf_counter()
        searcher.search_vectors(xq, k=10, shortlist=shortlist)
        t2 = time.perf_counter()
        searcher.search_vectors(xq, k=10, mode="full")
        t3 = time.perf_counter()
        if searcher.lexical is not None:
            searcher.search_vectors(xq, k=10, shortlist=shortlist, mode="hybrid", texts=[words])
            timings["hybrid search"].append(time.perf_counter() - t3)
        encode.append(t1 - t0)
        timings["dense search"].append(t2 - t1)
        timings["full search"].append(t3 - t2)
    return {name: percentiles_ms(v) for name, v in timings.items() if v}


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds of a list of durations in seconds (and how many there were)."""
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "n": float(len(ms))}
