"""Search quality on the four shared sets and scores that mean something: the lexical side against bm25s, every
mode side by side, the calibrated probability fitted on tuning splits only, its reliability, and no-match rates
for a set's own queries against queries from another set (off-topic).

Protocol (no choice made on a reported split):
- tuning material: SciFact train, aie5-simonw-llms train and dev. The calibration's coefficients
  (calibration.COEFFICIENTS) are fitted there by logistic regression (each query's top 10 documents, label:
  judged relevant) and the no-match threshold (calibration.NO_MATCH) is chosen there: the largest that flags under
  0.5% of the tuning queries against their own index, then the share of each tuning set's queries flagged against
  the other tuning set's index is reported.
- reported: SciFact test, aie5-simonw-llms test, StatPearls train (its only split, never used for a choice),
  msmarco-5k test. bm25s (English stemmer and stopwords, k1 1.5, b 0.75: its defaults) runs on whole documents
  (title and text), as BEIR's BM25 does; searcher's lexical mode on its chunks, one hit per document.

    python benchmarks/relevance.py           # needs the eval indexes: builds them (cached) on first run
    python benchmarks/relevance.py --fit     # also prints the coefficients fitted on the tuning splits
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import Searcher, calibration
from searcher.encoder import load_encoder
from searcher.evaluate import evaluate
from searcher.metrics import ir_metrics, load_beir

TUNING = {"scifact": ["train"], "aie5-simonw-llms": ["train", "dev"]}
REPORTED = {
    "scifact": "test",
    "aie5-simonw-llms": "test",
    "dmiai2025-emergency-rag-statpearls": "train",
    "msmarco-5k": "test",
}
MODES = ("dense", "lexical", "hybrid")
K = 10


def bm25s_ndcg(name: str, split: str) -> float:
    import bm25s
    import Stemmer

    data = load_beir(require_data(name), split)
    with open(data.corpus, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    ids = [str(r["_id"]) for r in records]
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(
            [f"{r.get('title') or ''}\n{r['text']}" for r in records],
            stopwords="en",
            stemmer=stemmer,
            show_progress=False,
        ),
        show_progress=False,
    )
    qids = list(data.queries)
    tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    found, scores = retriever.retrieve(tokens, k=min(100, len(ids)), show_progress=False)
    rankings = {q: [(ids[j], float(s)) for j, s in zip(found[i], scores[i])] for i, q in enumerate(qids)}
    return ir_metrics(rankings, data.qrels)["ndcg@10"]


def run(searcher: Searcher, queries: dict[str, str], mode: str):
    """{query id: Hits} for one mode, one hit per document."""
    qids = list(queries)
    out = {}
    for a in range(0, len(qids), 64):
        batch = qids[a : a + 64]
        for q, hits in zip(batch, searcher.search_batch([queries[q] for q in batch], K, mode=mode, per_doc=True)):
            out[q] = hits
    return out


def ndcg(results, qrels) -> float:
    return ir_metrics({q: [(h.doc_id, -r) for r, h in enumerate(hits)] for q, hits in results.items()}, qrels)[
        "ndcg@10"
    ]


def features(results, qrels):
    """(cosine, coverage, label) of every hit."""
    rows = [
        (_num(h.cosine), _num(h.coverage), float(h.doc_id in qrels.get(q, {})))
        for q, hits in results.items()
        for h in hits
    ]
    return np.array(rows, np.float64).reshape(-1, 3)


def _num(x: float | None) -> float:
    return np.nan if x is None else x


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Coefficients (b0, b...) of a logistic regression, by Newton's method."""
    X = np.hstack([np.ones((len(x), 1)), x])
    b = np.zeros(X.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ b))
        grad = X.T @ (p - y) + l2 * np.r_[0, b[1:]]
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.diag(np.r_[0, np.ones(len(b) - 1)])
        step = np.linalg.solve(hess, grad)
        b -= step
        if np.abs(step).max() < 1e-8:
            break
    return b


def fit(tuning_features: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float]]:
    out = {}
    for mode, f in tuning_features.items():
        if mode == "hybrid":
            b = logistic(f[:, :2], f[:, 2])
            out[mode] = (b[0], b[1], b[2])
        elif mode == "dense":
            b = logistic(f[:, :1], f[:, 2])
            out[mode] = (b[0], b[1], 0.0)
        else:
            b = logistic(f[:, 1:2], f[:, 2])
            out[mode] = (b[0], 0.0, b[1])
    return {m: tuple(round(float(v), 2) for v in c) for m, c in out.items()}


def listed_table(reported) -> list[str]:
    """What `searcher query -l` (and --format grep) list of each query's top 10 documents in hybrid mode: the hits
    scored at least calibration.match_floor, against all 10 (what they listed before)."""
    floor = calibration.match_floor("hybrid")
    lines = [
        "### What `searcher query -l` lists (hybrid, each query's top 10 documents)",
        "",
        "Listed: the hits scored at least the no-match threshold (calibration.match_floor), as `-l` and `--format "
        "grep` list them; before 2026-12-07 they listed all 10. Judged relevant: in the split's qrels (any grade). "
        "Relevant kept: of the top 10's judged relevant documents, the share listed.",
        "",
        "| set | listed per query | listed, judged relevant | all 10, judged relevant | relevant kept |",
        "|:--|--:|--:|--:|--:|",
    ]
    for name in REPORTED:
        data, results = reported[name]
        hits = results["hybrid"]
        relevant = [[h.doc_id in data.qrels.get(q, {}) for h in found] for q, found in hits.items()]
        listed = [[h.score >= floor for h in found] for found in hits.values()]
        n_listed = sum(sum(x) for x in listed)
        good_listed = sum(r and x for rs, xs in zip(relevant, listed) for r, x in zip(rs, xs))
        good_all = sum(sum(rs) for rs in relevant)
        every = sum(len(rs) for rs in relevant)
        lines.append(
            f"| {name} | {n_listed / len(hits):.1f} | {good_listed / max(n_listed, 1):.1%} | "
            f"{good_all / max(every, 1):.1%} | {good_listed / max(good_all, 1):.1%} |"
        )
    return lines


def oracle_thresholds(top: dict[tuple[str, str], np.ndarray]) -> list[str]:
    """What a threshold per index could do, each set at the highest that flags under 1% of its own judged queries:
    chosen with the reported labels (an oracle, not something searcher could ship), it bounds any rule that decides
    no match from the best hit's score."""
    lines = [
        "### No match with a threshold per index, chosen on its own judged queries (hybrid; an oracle, not shipped)",
        "",
        "Each index's threshold: its own queries' 1% quantile of the best hit's score (the highest flagging under 1%"
        " of them). Cells: the share of another set's queries it flags; in brackets, that set's median best score.",
        "",
        "| index | threshold | " + " | ".join(REPORTED) + " |",
        "|:--|--:|" + "--:|" * len(REPORTED),
    ]
    for index_name in REPORTED:
        threshold = float(np.quantile(top[index_name, index_name], 0.01))
        cells = [
            "own"
            if query_set == index_name
            else f"{100 * np.mean(top[index_name, query_set] < threshold):.1f}% "
            f"({np.median(top[index_name, query_set]):.3f})"
            for query_set in REPORTED
        ]
        lines.append(f"| {index_name} | {threshold:.3f} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", action="store_true", help="fit the calibration on the tuning splits and print it")
    args = parser.parse_args()
    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    searchers = {}
    for name, split in REPORTED.items():
        report = evaluate(require_data(name), split=split, encoder=encoder, root=CACHE, latency=False)
        searchers[name] = Searcher(report.index, encoder=encoder)

    # --- tuning: fit, choose the threshold -------------------------------------------------------------------
    tuning = {m: [] for m in MODES}
    own_top = {m: [] for m in MODES}
    for name, splits in TUNING.items():
        for split in splits:
            data = load_beir(require_data(name), split)
            for mode in MODES:
                results = run(searchers[name], data.queries, mode)
                tuning[mode].append(features(results, data.qrels))
                own_top[mode] += [hits[0].score if hits else 0.0 for hits in results.values()]
    tuning = {m: np.vstack(v) for m, v in tuning.items()}
    fitted = fit(tuning)
    if args.fit:
        print("fitted on the tuning splits:", fitted)
    threshold = {m: float(np.quantile(own_top[m], 0.005)) for m in MODES}
    lines = [
        "Coefficients (b0, b_cosine, b_coverage) fitted on the tuning splits (this run): "
        + "; ".join(f"{m} {fitted[m]}" for m in MODES)
        + ". searcher ships: "
        + "; ".join(f"{m} {calibration.COEFFICIENTS[m]}" for m in MODES)
        + f"; no match below {calibration.NO_MATCH}. The largest threshold flagging under 0.5% of the tuning "
        "queries against their own index, this run: " + ", ".join(f"{m} {threshold[m]:.3f}" for m in MODES) + ".",
        "",
    ]

    # --- reported: every mode, bm25s ---------------------------------------------------------------------------
    lines += [
        "### Every mode on the reported splits (nDCG@10)",
        "",
        "| set (split, queries) | bm25s | lexical | lexical - bm25s | dense | hybrid | better side | hybrid - better |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    reported, gaps = {}, []
    for name, split in REPORTED.items():
        data = load_beir(require_data(name), split)
        reported[name] = (data, {m: run(searchers[name], data.queries, m) for m in MODES})
        s = {m: ndcg(reported[name][1][m], data.qrels) for m in MODES}
        ref = bm25s_ndcg(name, split)
        better = max(s["dense"], s["lexical"])
        gaps.append(s["hybrid"] - better)
        lines.append(
            f"| {name} ({split}, {len(data.queries)}) | {ref:.4f} | {s['lexical']:.4f} | "
            f"{s['lexical'] - ref:+.4f} | {s['dense']:.4f} | **{s['hybrid']:.4f}** | {better:.4f} | "
            f"{s['hybrid'] - better:+.4f} |"
        )
    lines += ["", f"Mean hybrid - better side: **{np.mean(gaps):+.4f}**; worst: {min(gaps):+.4f}.", ""]

    # --- reliability on the reported splits -------------------------------------------------------------------
    lines += [
        "### Reliability of the score (reported splits, every hit of the top 10)",
        "",
        "| mode | predicted | hits | observed relevant |",
        "|:--|:--|--:|--:|",
    ]
    for mode in MODES:
        f = np.vstack([features(reported[n][1][mode], reported[n][0].qrels) for n in REPORTED])
        raw = calibration.probability(mode, np.nan_to_num(f[:, 0]), np.nan_to_num(f[:, 1]))
        for lo, hi in [(0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]:
            sel = (raw >= lo) & (raw < hi)
            if sel.any():
                lines.append(
                    f"| {mode} | {lo:.1f}-{min(hi, 1):.1f} (mean {raw[sel].mean():.2f}) | {sel.sum()} | "
                    f"{f[sel, 2].mean():.2f} |"
                )
    lines += ["", *listed_table(reported), ""]

    # --- no match: own queries and off-topic ones ---------------------------------------------------------------
    lines += [
        "### No match: own queries against off-topic ones (reported splits)",
        "",
        "Share of queries answered `no match` (best hit below calibration.NO_MATCH of its mode). Rows: the index; "
        "columns: "
        "whose queries.",
        "",
        "| index \\ queries | mode | " + " | ".join(REPORTED) + " |",
        "|:--|:--|" + "--:|" * len(REPORTED),
    ]
    top: dict[tuple[str, str], np.ndarray] = {}  # (index, whose queries): each query's best hybrid score
    for index_name in REPORTED:
        for mode in MODES:
            cells = []
            for query_set in REPORTED:
                if query_set == index_name:
                    results = reported[index_name][1][mode]
                else:
                    results = run(searchers[index_name], reported[query_set][0].queries, mode)
                if mode == "hybrid":
                    top[index_name, query_set] = np.array([hits[0].score if hits else 0.0 for hits in results.values()])
                flagged = np.mean([hits.no_match for hits in results.values()])
                cells.append(
                    f"{'**' if query_set == index_name else ''}{100 * flagged:.1f}%"
                    f"{'**' if query_set == index_name else ''}"
                )
            lines.append(f"| {index_name} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", *oracle_thresholds(top)]
    write_section("relevance", "Search quality and calibrated scores on the shared sets", "\n".join(lines))


if __name__ == "__main__":
    main()
