"""Shortlist sweep on SciFact test: two-stage nDCG@10 and agreement with exact full-dim search for shortlists
from 10 to 1000, with the prefix and the PCA projection. Writes a table to RESULTS.md and a PNG beside it.

    python benchmarks/shortlist_sweep.py [--model NAME_OR_PATH]
"""

from __future__ import annotations

import argparse

from _common import CACHE, HERE, corpus_size, require_data, write_section

from searcher import IndexConfig
from searcher.evaluate import evaluate

SHORTLISTS = (10, 20, 50, 100, 200, 300, 500, 1000)
PLOT = HERE / "shortlist_sweep.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    data = require_data("scifact")
    rows: dict[str, list[tuple[int, float, float]]] = {}
    exact = 0.0
    for projection in ("prefix", "pca"):
        config = IndexConfig().replace(model=args.model, projection=projection)
        rows[projection] = []
        for shortlist in SHORTLISTS:
            report = evaluate(data, config=config, shortlist=shortlist, root=CACHE, latency=False)
            rows[projection].append((shortlist, report.modes["dense"]["ndcg@10"], report.agreement))
            exact = report.modes["full"]["ndcg@10"]
    model = report.model
    lines = [
        f"Model `{model}`; exact full-dim nDCG@10 = {exact:.4f}. Agreement = share of the exact top-10 documents "
        f"kept by the two-stage top-10. Shortlists count chunks (SciFact: {corpus_size(report)}).",
        "",
        "| shortlist | prefix nDCG@10 | prefix agreement | pca nDCG@10 | pca agreement |",
        "|--:|--:|--:|--:|--:|",
    ]
    for (s, pn, pa), (_, cn, ca) in zip(rows["prefix"], rows["pca"]):
        lines.append(f"| {s} | {pn:.4f} | {pa:.1%} | {cn:.4f} | {ca:.1%} |")
    lines += ["", f"![shortlist sweep]({PLOT.name})"]
    _plot(rows, exact, model)
    write_section("shortlist-sweep", "Shortlist sweep (SciFact test)", "\n".join(lines))


def _plot(rows, exact: float, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for projection, points in rows.items():
        s = [p[0] for p in points]
        left.plot(s, [p[1] for p in points], marker="o", label=projection)
        right.plot(s, [100 * p[2] for p in points], marker="o", label=projection)
    left.axhline(exact, color="grey", linestyle="--", label="exact full-dim")
    for ax, ylabel in ((left, "nDCG@10"), (right, "% of exact top-10 kept")):
        ax.set_xscale("log")
        ax.set_xlabel("shortlist (chunks)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"Two-stage search on SciFact test, {model}")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)


if __name__ == "__main__":
    main()
