"""Quality: SciFact test and the first model card's data set (aie5-simonw-llms, test split against the whole
corpus), in every search mode and Matryoshka dim, with the default model and settings.

    python benchmarks/quality.py [--model NAME_OR_PATH] [--projection auto|pca|prefix] [--shortlist N]
"""

from __future__ import annotations

import argparse

from _common import CACHE, corpus_size, require_data, write_section

from searcher import IndexConfig
from searcher.config import DEFAULT_SHORTLIST
from searcher.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--projection", default="auto")
    parser.add_argument("--shortlist", type=int, default=DEFAULT_SHORTLIST)
    parser.add_argument("--section", default="quality", help="RESULTS.md section to write")
    args = parser.parse_args()
    config = IndexConfig().replace(model=args.model, projection=args.projection)
    parts = []
    for name in ("scifact", "aie5-simonw-llms"):
        report = evaluate(require_data(name), split="test", config=config, shortlist=args.shortlist, root=CACHE)
        parts.append(f"### {name} test ({report.queries} queries; {corpus_size(report)})\n\n{report.to_markdown()}")
    write_section(args.section, f"Quality ({config.model}, {args.projection} projection)", "\n\n".join(parts))


if __name__ == "__main__":
    main()
