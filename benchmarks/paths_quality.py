"""Each document-embedding path's retrieval quality on the machine at hand: nDCG@10 on the four shared sets with
exact search over that path's own chunk vectors (queries in float32, as queries are always embedded), and its
top-10 agreement with float32 when 500 of each corpus's own chunks are the queries. This is what decides whether
the int8 graph may embed documents (encoder_choice.INT8_MIN_AGREEMENT), by retrieval rather than by a cosine
alone; beside it, the agreement the indexer's own check measures on a sample of the chunks ("check": what the bar is
applied to in a run).

    python benchmarks/paths_quality.py [--sets scifact msmarco-5k ...]
"""

from __future__ import annotations

import argparse
import time

from _common import CACHE, write_section
from throughput import ndcg_by_path, paths

from searcher import IndexConfig
from searcher.encoder import load_encoder

# Smallest first: each set's row goes to RESULTS as soon as it is measured (a section per set).
SETS = [
    ("aie5-simonw-llms", "test"),
    ("msmarco-5k", "test"),
    ("scifact", "test"),
    ("dmiai2025-emergency-rag-statpearls", "train"),
]
AGREEMENT_QUERIES = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", help="only these sets (folder names under ../shared/data)")
    args = parser.parse_args()
    sets = [(n, split) for n, split in SETS if not args.sets or n in args.sets]
    work = CACHE / "paths-quality"
    work.mkdir(parents=True, exist_ok=True)
    config = IndexConfig()
    encoder = load_encoder(config.model)
    encoders = paths(encoder, work)
    chunk_tokens, overlap = config.chunking(encoder.info.max_seq_length)
    names = list(encoders)
    header = [
        "| set (split) | "
        + " | ".join(f"{n} nDCG@10" for n in names)
        + " | "
        + " | ".join(f"{n} top-10 agreement (check)" for n in names[1:])
        + " | seconds |",
        "|:--|" + "--:|" * (2 * len(names)),
    ]
    for name, split in sets:
        started = time.perf_counter()
        got = ndcg_by_path(name, encoders, chunk_tokens, overlap, split, AGREEMENT_QUERIES)
        row = (
            f"| {name} ({split}) | "
            + " | ".join(f"{got[n]:.4f}" for n in names)
            + " | "
            + " | ".join(f"{got[n + ' agreement']:.3f} ({got[n + ' check']:.3f})" for n in names[1:])
            + f" | {time.perf_counter() - started:.0f} |"
        )
        print(row, flush=True)
        write_section(
            f"paths-quality-{name}",
            f"Each embedding path's nDCG@10 and top-10 agreement, {name}",
            "\n".join(header + [row]),
        )


if __name__ == "__main__":
    main()
