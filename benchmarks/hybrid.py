"""Hybrid retrieval: every search mode on the three given sets, the fusion weight chosen on training splits,
what adapting the weight without labels does, reciprocal rank fusion for comparison, the no-match threshold,
and hybrid latency.

Protocol (no tuning on a reported split): the default weight is the one with the best mean nDCG@10 over the
*tuning* splits - SciFact train and aie5-simonw-llms train+dev - and is then reported on SciFact test,
aie5-simonw-llms test and StatPearls train (never used for a choice). `--tune` figures (`searcher eval --tune`)
pick a weight per set on its own tuning split and report it on its test split.

    python benchmarks/hybrid.py [--model NAME_OR_PATH]
"""

from __future__ import annotations

import argparse
import random
import string
import time
from dataclasses import replace

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import IndexConfig, Searcher
from searcher.config import FUSION_DEPTH
from searcher.cache import EmbeddingCache
from searcher.encoder import load_encoder
from searcher.evaluate import _query_vectors, cache_dir_for, evaluate, percentiles_ms
from searcher.metrics import DEPTH, document_rankings, ir_metrics, load_beir
from searcher.search import NO_MATCH_SCORE

WEIGHTS = [round(w, 2) for w in np.arange(0.0, 1.01, 0.1)]
SETS = {  # name: (tuning splits, reported split)
    "scifact": (["train"], "test"),
    "aie5-simonw-llms": (["train", "dev"], "test"),
    "dmiai2025-emergency-rag-statpearls": ([], "train"),
}


class Set:
    """One data set's index, and its queries (vectors embedded once) per split."""

    def __init__(self, name: str, encoder, config: IndexConfig) -> None:
        self.name = name
        self.report = evaluate(require_data(name), split=SETS[name][1], config=config, encoder=encoder, root=CACHE,
                               latency=False)
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

    def tuning(self, **search) -> float:
        """Mean nDCG@10 over the tuning splits' queries (weighted by their number)."""
        splits = SETS[self.name][0]
        n = [len(self.splits[s][0]) for s in splits]
        return float(np.average([self.ndcg(s, **search) for s in splits], weights=n)) if splits else float("nan")


def _flag_row(label: str, found: list[tuple[int, float]], thresholds) -> str:
    no_lexical = [best for hits, best in found if hits == 0]
    cells = [f"{sum(b < t for b in no_lexical) / len(found):.1%}" for t in thresholds]
    p1 = np.percentile([best for _, best in found], 1)
    return f"| {label} | {len(no_lexical)} | {p1:.3f} | " + " | ".join(cells) + " |"


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

    # 1. The default weight, and whether it adapts per query, from the tuning splits only.
    def tuning_row(w: float, adaptive: bool) -> dict[str, float]:
        for s in sets.values():
            s.searcher.manifest = replace(s.searcher.manifest, config=s.searcher.manifest.config.replace(
                fusion_adaptive=adaptive))
        return {n: s.tuning(**base, fusion_weight=w) for n, s in sets.items() if SETS[n][0]}

    sweep = {(w, a): tuning_row(w, a) for a in (False, True) for w in WEIGHTS}
    (chosen, adaptive) = max(sweep, key=lambda key: (np.mean(list(sweep[key].values())), -abs(key[0] - 0.5)))
    shipped = (IndexConfig().fusion_weight, IndexConfig().fusion_adaptive)
    for s in sets.values():
        s.searcher.manifest = replace(s.searcher.manifest, config=s.searcher.manifest.config.replace(
            fusion_adaptive=adaptive))
    lines = ["### The default weight (tuning splits only)", "",
             "Dense (base) weight w in fused = w x dense + (1 - w) x lexical, fixed or adapted per query "
             "(fusion.adaptive_weight); nDCG@10 on the tuning splits:", "",
             "| w | fixed: scifact | fixed: aie5 | fixed: mean | adaptive: scifact | adaptive: aie5 | adaptive: mean |",
             "|--:|--:|--:|--:|--:|--:|--:|"]
    for w in WEIGHTS:
        cells = []
        for a in (False, True):
            row = sweep[(w, a)]
            mean = f"{np.mean(list(row.values())):.4f}"
            cells += [f"{v:.4f}" for v in row.values()] + [f"**{mean}**" if (w, a) == (chosen, adaptive) else mean]
        lines.append(f"| {w:.1f} | " + " | ".join(cells) + " |")
    lines += ["", f"Chosen: w = {chosen}, {'adaptive' if adaptive else 'fixed'}; searcher ships "
              f"w = {shipped[0]}, {'adaptive' if shipped[1] else 'fixed'}"
              f"{' (the same)' if (chosen, adaptive) == shipped else ' (DIFFERENT: update config.py)'}."]

    # 2. Every mode on the reported splits, with the chosen weight, and RRF beside it.
    lines += ["", f"### Every mode, reported splits (w = {chosen})", "",
              "| set (split, queries) | dense | lexical | hybrid | better side | hybrid - better | RRF (k=60) | tuned w -> hybrid |",
              "|:--|--:|--:|--:|--:|--:|--:|--:|"]
    gains, rows = [], {}
    for name, s in sets.items():
        split = SETS[name][1]
        dense = s.ndcg(split, k=200, shortlist=200, mode="dense")
        lexical = s.ndcg(split, k=2000, mode="lexical")
        hybrid = s.ndcg(split, **base, fusion_weight=chosen)
        better = max(dense, lexical)
        tuned = "n/a (no tuning split)"
        if SETS[name][0]:
            w_set = max(WEIGHTS, key=lambda w: (sweep[(w, adaptive)][name], -abs(w - 0.5)))
            tuned = f"{w_set:.1f} -> {s.ndcg(split, **base, fusion_weight=w_set):.4f}"
        rows[name] = (dense, lexical, hybrid)
        gains.append((hybrid, better))
        lines.append(f"| {name} ({split}, {len(s.splits[split][0])}) | {dense:.4f} | {lexical:.4f} | **{hybrid:.4f}** | "
                     f"{better:.4f} | {hybrid - better:+.4f} | {rrf(s, split):.4f} | {tuned} |")
    mean_h, mean_b = np.mean([g[0] for g in gains]), np.mean([g[1] for g in gains])
    lines += ["", f"Mean over the three: hybrid {mean_h:.4f}, better side {mean_b:.4f}, difference **{mean_h - mean_b:+.4f}**."]

    # 3. The no-match threshold: real queries against made-up words.
    rng = random.Random(0)
    nonsense = [" ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 10)))
                         for _ in range(rng.randint(1, 3))) for _ in range(200)]
    thresholds = (0.25, 0.3, 0.35, 0.4, 0.45)
    lines += ["", "### No match", "",
              "A query has no match when no word of it occurs in the index and its best dense score is below the "
              "threshold. Share of queries flagged, per threshold (real queries all have judged relevant documents; "
              "made-up: 200 queries of 1-3 random letter strings, seed 0):", "",
              "| set, queries | with no lexical hit | best dense score, 1st percentile | "
              + " | ".join(f"< {t}" for t in thresholds) + " |",
              "|:--|--:|--:|" + "--:|" * len(thresholds)]
    for name, s in sets.items():
        for split, (qids, texts, xq, _) in s.splits.items():
            found = s.searcher._search(xq, texts, 10, 200, "hybrid", None)[2]
            lines.append(_flag_row(f"{name} {split} ({len(texts)})", found, thresholds))
        xn = encoder.encode_queries(nonsense)
        lines.append(_flag_row(f"{name}, made-up ({len(nonsense)})", s.searcher._search(xn, nonsense, 10, 200, "hybrid",
                                                                                         None)[2], thresholds))
    lines += ["", f"searcher uses {NO_MATCH_SCORE} (search.NO_MATCH_SCORE), chosen on the tuning splits: there it flags no "
              "real query and most made-up ones, and it sits near the 1st percentile of real queries' best dense "
              "scores (column above). It is the bundled model's: other models' cosines differ."]

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
                    s.searcher.search_vectors(None if mode == "lexical" else xq[i : i + 1], k=10, mode=mode,
                                              texts=[texts[i]])
                    timings[mode].append(time.perf_counter() - t)
                for mode in whole:
                    t = time.perf_counter()
                    warm.search(texts[i], 10, mode=mode)
                    whole[mode].append(time.perf_counter() - t)
        runtime = type(warm.encoder).__name__
    p = {m: percentiles_ms(v) for m, v in timings.items()}
    q = {m: percentiles_ms(v) for m, v in whole.items()}
    lines += ["", "### Latency (SciFact test, single queries, k = 10, warm process)", "",
              "| | p50 ms | p95 ms |", "|:--|--:|--:|",
              *(f"| search only: {m} | {v['p50']:.2f} | {v['p95']:.2f} |" for m, v in p.items()),
              *(f"| whole query (`Searcher.search`, {runtime}): {m} | {v['p50']:.2f} | {v['p95']:.2f} |"
                for m, v in q.items()),
              "", f"Hybrid / dense p50: **{q['hybrid']['p50'] / q['dense']['p50']:.2f}x** for a whole query, "
              f"{p['hybrid']['p50'] / p['dense']['p50']:.2f}x for the search alone (query vectors embedded beforehand)."]
    write_section("hybrid", f"Hybrid retrieval ({encoder.info.name})", "\n".join(lines))


if __name__ == "__main__":
    main()
