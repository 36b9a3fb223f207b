"""Hybrid retrieval: the fusion searcher ships (fusion.py: cosine and the query's word coverage, weighted by the
calibrated score's own ratio) against the ones it replaced, re-implemented here on the same candidates - BM25 over
the query's ceiling (the fusion before), and min-max normalised per query with the weight adapted per query (the one
before that) - reciprocal rank fusion for comparison, every mode on the four given sets, and hybrid latency.
(No-match and calibrated scores: benchmarks/relevance.py.)

Protocol (no tuning on a reported split): the fusion and its weight are compared on the *tuning* splits only -
SciFact train and aie5-simonw-llms train+dev - and then reported on SciFact test, aie5-simonw-llms test, StatPearls
train and msmarco-5k test (never used for a choice). `--tune` figures (`searcher eval --tune`) pick a weight per set
on its own tuning split and report it on its test split.

    python benchmarks/hybrid.py [--model NAME_OR_PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import IndexConfig, Searcher, calibration
from searcher.cache import EmbeddingCache
from searcher.config import FUSION_DEPTH
from searcher.encoder import load_encoder
from searcher.evaluate import _query_vectors, cache_dir_for, evaluate, percentiles_ms
from searcher.metrics import DEPTH, document_rankings, ir_metrics, load_beir

WEIGHTS = [round(w, 2) for w in np.arange(0.0, 1.01, 0.1)]
SETS = {  # name: (tuning splits, reported split)
    "scifact": (["train"], "test"),
    "aie5-simonw-llms": (["train", "dev"], "test"),
    "dmiai2025-emergency-rag-statpearls": ([], "train"),
    "msmarco-5k": ([], "test"),
}


class Set:
    """One data set's index, and its queries (vectors embedded once) per split."""

    def __init__(self, name: str, encoder, config: IndexConfig) -> None:
        self.name = name
        self.report = evaluate(
            require_data(name), split=SETS[name][1], config=config, encoder=encoder, root=CACHE, latency=False
        )
        self.searcher = Searcher(self.report.index, encoder=encoder)
        self.doc_of = {r["id"]: r["doc_id"] for r in self.searcher.index.iter_chunks()}
        cache = EmbeddingCache(cache_dir_for(CACHE, encoder), encoder.info)
        self.splits = {}
        for split in [*SETS[name][0], SETS[name][1]]:
            data = load_beir(require_data(name), split)
            qids = list(data.queries)
            texts = [data.queries[q] for q in qids]
            self.splits[split] = (qids, texts, _query_vectors(encoder, texts, cache), data.qrels)

    def ndcg(self, split: str, **search) -> float:
        qids, texts, xq, qrels = self.splits[split]
        D, I = self.searcher.search_vectors(xq, texts=texts, **search)
        return ir_metrics(dict(zip(qids, document_rankings(D, I, self.doc_of))), qrels)["ndcg@10"]

    def tuning(self, measure=None, **search) -> float:
        """Mean nDCG@10 over the tuning splits' queries (weighted by their number): of `measure(self, split)`, or
        of a search with these settings."""
        splits = SETS[self.name][0]
        if not splits:
            return float("nan")
        values = [measure(self, split) if measure else self.ndcg(split, **search) for split in splits]
        return float(np.average(values, weights=[len(self.splits[split][0]) for split in splits]))

    def fused_ndcg(self, split: str, fuse) -> float:
        """nDCG@10 of a fusion re-implemented here over the candidates the shipped one sees (each side's top
        FUSION_DEPTH chunks): `fuse(i, ids, cosines, {id: BM25})` scores query i's union of candidates."""
        qids, texts, xq, qrels = self.splits[split]
        _, Id = self.searcher.search_vectors(xq, k=FUSION_DEPTH, shortlist=200, mode="dense")
        Dl, Il = self.searcher.search_vectors(None, k=FUSION_DEPTH, mode="lexical", texts=texts)
        rankings = {}
        for i, q in enumerate(qids):
            lex = {int(c): float(v) for c, v in zip(Il[i], Dl[i]) if c >= 0}
            ids = np.union1d(Id[i][Id[i] >= 0], np.array(list(lex), np.int64))
            fused = fuse(i, ids, self.searcher.backend.cosines(xq[i] / np.linalg.norm(xq[i]), ids), lex)
            rankings[q] = self.documents(ids, fused)
        return ir_metrics(rankings, qrels)["ndcg@10"]

    def documents(self, ids: np.ndarray, fused: np.ndarray, second: float = 0.0) -> list[tuple[str, float]]:
        """The top DEPTH documents of chunks `ids` scored `fused`: each by its best chunk (plus `second` x its second
        best, a variant fusion_ceiling.py measures), ties by the best chunk's smaller id."""
        chunks: dict[str, list[float]] = {}
        for j in np.lexsort((ids, -fused)):
            chunks.setdefault(self.doc_of[int(ids[j])], []).append(float(fused[j]))
        scored = {d: v[0] + second * (v[1] if len(v) > 1 else 0.0) for d, v in chunks.items()}
        return sorted(scored.items(), key=lambda x: -x[1])[:DEPTH]  # stable: ties keep the best chunks' order

    def bm25_ceiling(self, query: str) -> float:
        """The most BM25 a chunk can score for `query`: (k1 + 1) x the sum of its words' IDF (k1 = 1.2)."""
        lexical = self.searcher.backend.lexical
        n = len(lexical)
        return max(2.2 * sum(calibration.idf(lexical.doc_freq(t), n) for t in lexical.query_words(query)), 1e-9)


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.ones_like(x)


def _confidence(scores: np.ndarray) -> float:
    x = np.sort(scores)[::-1][:FUSION_DEPTH]
    if len(x) < 10:
        return 1.0
    return float((x[0] - x[9]) / (x[0] - x[-1])) if x[0] > x[-1] else 0.0


def previous_fusion(s: Set, split: str, base: float = 0.7) -> float:
    """The fusion searcher shipped before both: each side min-max normalised over its own candidates (the lexical
    floor 0), the dense weight `base` shifted toward the side whose top scores stand out."""

    def fuse(i, ids, cos, lex):
        if not lex:
            return cos
        c_d, c_l = _confidence(cos), _confidence(np.array(list(lex.values())))
        total = base * c_d + (1 - base) * c_l
        w = base * c_d / total if total > 0 else base
        bm = np.array([lex.get(int(c), np.nan) for c in ids])
        found = ~np.isnan(bm)
        norm = np.zeros(len(ids))
        norm[found] = _minmax(bm[found])
        return w * _minmax(cos) + (1 - w) * norm

    return s.fused_ndcg(split, fuse)


def bm25_fusion(s: Set, split: str, weight: float) -> float:
    """The fusion searcher shipped before the coverage one: w x cosine + (1 - w) x min(1, BM25 / ceiling), the
    ceiling being (k1 + 1) x the sum of the query words' IDF (k1 = 1.2), dense-only candidates at 0 lexically."""
    texts = s.splits[split][1]

    def fuse(i, ids, cos, lex):
        ceiling = s.bm25_ceiling(texts[i])
        return weight * cos + (1 - weight) * np.array([min(lex.get(int(c), 0.0) / ceiling, 1.0) for c in ids])

    return s.fused_ndcg(split, fuse)


def rrf(s: Set, split: str, k: int = 60) -> float:
    """Reciprocal rank fusion of the dense and lexical chunk rankings, for comparison."""
    qids, texts, xq, qrels = s.splits[split]
    Dd, Id = s.searcher.search_vectors(xq, k=200, shortlist=200, mode="dense")
    _, Il = s.searcher.search_vectors(None, k=200, mode="lexical", texts=texts)
    rankings = {}
    for q, dense, lexical in zip(qids, Id, Il):
        score: dict[int, float] = {}
        for ranked in (dense, lexical):
            for rank, chunk in enumerate(c for c in ranked if c >= 0):
                score[int(chunk)] = score.get(int(chunk), 0.0) + 1.0 / (k + rank + 1)
        best: dict[str, float] = {}
        for chunk, v in sorted(score.items(), key=lambda x: -x[1]):
            best.setdefault(s.doc_of[chunk], v)
        rankings[q] = list(best.items())[:DEPTH]
    return ir_metrics(rankings, qrels)["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    config = IndexConfig().replace(model=args.model)
    encoder = load_encoder(config.model)
    sets = {name: Set(name, encoder, config) for name in SETS}
    base = dict(k=FUSION_DEPTH, shortlist=200, mode="hybrid")  # as searcher eval runs it

    # 1. The fusion and its weight, from the tuning splits only.
    tuning = {n: s for n, s in sets.items() if SETS[n][0]}
    shipped = IndexConfig().fusion_weight
    b0, bc, bv = calibration.COEFFICIENTS["hybrid"]
    grid = sorted({*WEIGHTS, shipped})
    sweep = {w: {n: s.tuning(**base, fusion_weight=w) for n, s in tuning.items()} for w in grid}

    def tuning_mean(measure) -> dict[str, float]:
        return {n: s.tuning(measure) for n, s in tuning.items()}

    bm25_sweep = {w: tuning_mean(lambda s, split, w=w: bm25_fusion(s, split, w)) for w in WEIGHTS}
    bm25_best = max(bm25_sweep, key=lambda w: (np.mean(list(bm25_sweep[w].values())), -abs(w - 0.5)))
    previous = tuning_mean(previous_fusion)
    best = max(WEIGHTS, key=lambda w: (np.mean(list(sweep[w].values())), -abs(w - 0.5)))
    lines = [
        "### The fusion and its weight (tuning splits only)",
        "",
        "nDCG@10 on the tuning splits. Coverage fusion (shipped, fusion.py): w x cosine + (1 - w) x the IDF-weighted "
        "share of the query's words a chunk holds; BM25 fusion (before it): w x cosine + (1 - w) x min(1, BM25 / "
        "the query's ceiling), on the same candidates.",
        "",
        "| w | coverage: scifact | coverage: aie5 | coverage: mean | BM25: scifact | BM25: aie5 | BM25: mean |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for w in grid:
        mean = np.mean(list(sweep[w].values()))
        cells = " | ".join(f"{v:.4f}" for v in sweep[w].values())
        b = bm25_sweep.get(w)
        bcells = (" | ".join(f"{v:.4f}" for v in b.values()) + f" | {np.mean(list(b.values())):.4f}") if b else "| |"
        label = f"**{w:g}** (shipped)" if w == shipped else f"{w:g}"
        lines.append(f"| {label} | {cells} | {mean:.4f} | {bcells} |")
    lines += [
        "",
        "The min-max fusion before both (each side min-max normalised per query, the dense weight 0.7 adapted per "
        "query): "
        + ", ".join(f"{n} {v:.4f}" for n, v in previous.items())
        + f", mean {np.mean(list(previous.values())):.4f}.",
        "",
        f"searcher ships w = {shipped:g}, b_cosine / (b_cosine + b_coverage) of the calibrated hybrid score "
        f"({bc:g} / ({bc:g} + {bv:g}) = {bc / (bc + bv):.3f}; calibration.py), so hits rank in the order of the score "
        f"they show. Its tuning mean: {np.mean(list(sweep[shipped].values())):.4f}; the grid's best coverage weight "
        f"{best:g}: {np.mean(list(sweep[best].values())):.4f}; the BM25 fusion at its best weight ({bm25_best:g}): "
        f"{np.mean(list(bm25_sweep[bm25_best].values())):.4f}.",
    ]

    # 2. Every mode on the reported splits, with the shipped weight; the earlier fusions and RRF beside it.
    lines += [
        "",
        f"### Every mode, reported splits (w = {shipped:g})",
        "",
        "| set (split, queries) | dense | lexical | hybrid | better side | hybrid - better | BM25 fusion "
        f"(w {bm25_best:g}) | min-max fusion | RRF (k=60) | tuned w -> hybrid |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    gains = []
    for name, s in sets.items():
        split = SETS[name][1]
        dense = s.ndcg(split, k=200, shortlist=200, mode="dense")
        lexical = s.ndcg(split, k=2000, mode="lexical")
        hybrid = s.ndcg(split, **base, fusion_weight=shipped)
        better = max(dense, lexical)
        tuned = "n/a (no tuning split)"
        if SETS[name][0]:
            w_set = max(grid, key=lambda w: (sweep[w][name], -abs(w - 0.5)))
            tuned = f"{w_set:g} -> {s.ndcg(split, **base, fusion_weight=w_set):.4f}"
        gains.append(hybrid - better)
        lines.append(
            f"| {name} ({split}, {len(s.splits[split][0])}) | {dense:.4f} | {lexical:.4f} | **{hybrid:.4f}** | "
            f"{better:.4f} | {hybrid - better:+.4f} | {bm25_fusion(s, split, bm25_best):.4f} | "
            f"{previous_fusion(s, split):.4f} | {rrf(s, split):.4f} | {tuned} |"
        )
    lines += ["", f"Mean hybrid - better side over the four: **{np.mean(gains):+.4f}**; worst {min(gains):+.4f}."]

    # 4. Latency: hybrid against dense, single queries, SciFact; search alone, and whole queries as `searcher
    # query` runs them (the index's own query encoder, chunk metadata) in a warm process.
    s = sets["scifact"]
    qids, texts, xq, _ = s.splits["test"]
    timings = {"dense": [], "hybrid": [], "lexical": []}
    whole = {"dense": [], "hybrid": []}
    with Searcher(s.report.index) as warm:
        warm.search(texts[0])
        for _ in range(2):
            for i in range(len(qids)):
                for mode in timings:
                    t = time.perf_counter()
                    s.searcher.search_vectors(
                        None if mode == "lexical" else xq[i : i + 1], k=10, mode=mode, texts=[texts[i]]
                    )
                    timings[mode].append(time.perf_counter() - t)
                for mode in whole:
                    t = time.perf_counter()
                    warm.search(texts[i], 10, mode=mode)
                    whole[mode].append(time.perf_counter() - t)
        runtime = type(warm.encoder).__name__
    p = {m: percentiles_ms(v) for m, v in timings.items()}
    q = {m: percentiles_ms(v) for m, v in whole.items()}
    lines += [
        "",
        "### Latency (SciFact test, single queries, k = 10, warm process)",
        "",
        "| | p50 ms | p95 ms |",
        "|:--|--:|--:|",
        *(f"| search only: {m} | {v['p50']:.2f} | {v['p95']:.2f} |" for m, v in p.items()),
        *(
            f"| whole query (`Searcher.search`, {runtime}): {m} | {v['p50']:.2f} | {v['p95']:.2f} |"
            for m, v in q.items()
        ),
        "",
        f"Hybrid / dense p50: **{q['hybrid']['p50'] / q['dense']['p50']:.2f}x** for a whole query, "
        f"{p['hybrid']['p50'] / p['dense']['p50']:.2f}x for the search alone (query vectors embedded beforehand).",
    ]
    write_section("hybrid", f"Hybrid retrieval ({encoder.info.name})", "\n".join(lines))


if __name__ == "__main__":
    main()
