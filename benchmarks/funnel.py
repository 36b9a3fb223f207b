"""The dense funnel at document level: how far two-stage search (coarse shortlist, full rerank) falls behind exact
search when documents are split into chunks, and why.

Sets: the three given sets at their default chunking, and a synthetic two-chunks-per-document variant of SciFact
(each abstract cut to its first 70 words, indexed in 64-token chunks: nearly every document becomes two short
chunks). For every query whose two-stage nDCG@10 is below its exact nDCG@10, the cause is classified by the
relevant documents exact search ranks in its top 10 and two-stage does not:
- "document missing": none of the document's chunks reached the shortlist;
- "best chunk missing": the document reached the shortlist only through a weaker chunk, so it ranks lower;
- "order": every such document's best chunk was shortlisted (a tie or a reordering among shortlisted chunks).

    python benchmarks/funnel.py [--shortlist 200]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import IndexConfig, Searcher
from searcher.cache import EmbeddingCache
from searcher.encoder import load_encoder
from searcher.evaluate import _query_vectors, cache_dir_for, evaluate
from searcher.metrics import DEPTH, document_rankings, ir_metrics, load_beir
from searcher.projection import coarse_vectors

VARIANT_WORDS = 70
VARIANT_CHUNK_TOKENS = 64


def two_chunk_variant() -> tuple:
    """A BEIR folder under the cache: SciFact with each abstract cut to its first VARIANT_WORDS words."""
    data = require_data("scifact")
    folder = CACHE / "scifact-two-chunks"
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(data / "corpus.jsonl") as src, open(folder / "corpus.jsonl", "w") as dst:
        for line in src:
            r = json.loads(line)
            r["text"] = " ".join(r["text"].split()[:VARIANT_WORDS])
            dst.write(json.dumps(r) + "\n")
    for name in ("queries.jsonl", "qrels/test.tsv"):
        (folder / name).write_bytes((data / name).read_bytes())
    return folder


def diagnose(name: str, data_dir, split: str, config: IndexConfig, encoder, shortlist: int) -> str:
    report = evaluate(
        data_dir, split=split, config=config, encoder=encoder, root=CACHE, latency=False, shortlist=shortlist
    )
    beir = load_beir(data_dir, split)
    qids = list(beir.queries)
    xq = _query_vectors(
        encoder, [beir.queries[q] for q in qids], EmbeddingCache(cache_dir_for(CACHE, encoder), encoder.info)
    )
    with Searcher(report.index, encoder=encoder) as s:
        doc_of = {r["id"]: r["doc_id"] for r in s.index.iter_chunks()}
        per_doc = np.bincount(np.unique(list(doc_of.values()), return_inverse=True)[1])
        depth = min(len(doc_of), DEPTH * int(per_doc.max()))
        two = document_rankings(*s.search_vectors(xq, k=shortlist, shortlist=shortlist, mode="dense"), doc_of)
        full = document_rankings(*s.search_vectors(xq, k=depth, mode="full"), doc_of)
        Df, If = s.search_vectors(xq, k=depth, mode="full")
        x = xq / np.linalg.norm(xq, axis=1, keepdims=True)
        if s.index.rotation is not None:
            x = x @ s.index.rotation
        _, shortlisted = s.backend._coarse.search(
            coarse_vectors(np.ascontiguousarray(x, dtype=np.float32), s.manifest.projection.coarse_dim), shortlist
        )
    causes = {"document missing": 0, "best chunk missing": 0, "order": 0}
    losing = 0
    for i, q in enumerate(qids):
        a = ir_metrics({q: two[i]}, {q: beir.qrels[q]})["ndcg@10"]
        b = ir_metrics({q: full[i]}, {q: beir.qrels[q]})["ndcg@10"]
        if a >= b - 1e-9:
            continue
        losing += 1
        top_full = [d for d, _ in sorted(full[i], key=lambda h: -h[1])[:10] if d in beir.qrels[q]]
        top_two = {d for d, _ in sorted(two[i], key=lambda h: -h[1])[:10]}
        listed = {doc_of[int(c)] for c in shortlisted[i] if c >= 0}
        best_chunk = {}
        for c in If[i]:
            if c >= 0:
                best_chunk.setdefault(doc_of[int(c)], int(c))
        cause = "order"
        for d in top_full:
            if d in top_two:
                continue
            if d not in listed:
                cause = "document missing"
                break
            if best_chunk[d] not in set(shortlisted[i].tolist()):
                cause = "best chunk missing"
        causes[cause] += 1
    gap = report.modes["full"]["ndcg@10"] - report.modes["dense"]["ndcg@10"]
    return (
        f"| {name} | {report.indexed_documents:,} docs, {len(doc_of):,} chunks "
        f"({len(doc_of) / report.indexed_documents:.2f} per doc) "
        f"| {report.modes['dense']['ndcg@10']:.4f} | {report.modes['full']['ndcg@10']:.4f} | {gap:+.4f} | {losing} of "
        f"{len(qids)} | {causes['document missing']} / {causes['best chunk missing']} / {causes['order']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shortlist", type=int, default=200)
    args = parser.parse_args()
    encoder = load_encoder(IndexConfig().model)
    base = IndexConfig(model=encoder.info.name)
    rows = [
        diagnose("scifact test", require_data("scifact"), "test", base, encoder, args.shortlist),
        diagnose("aie5-simonw-llms test", require_data("aie5-simonw-llms"), "test", base, encoder, args.shortlist),
        diagnose(
            "statpearls train",
            require_data("dmiai2025-emergency-rag-statpearls"),
            "train",
            base,
            encoder,
            args.shortlist,
        ),
        diagnose(
            f"scifact two-chunk variant test ({VARIANT_WORDS} words, {VARIANT_CHUNK_TOKENS}-token chunks)",
            two_chunk_variant(),
            "test",
            base.replace(chunk_tokens=VARIANT_CHUNK_TOKENS, overlap_tokens=0),
            encoder,
            args.shortlist,
        ),
    ]
    write_section(
        "funnel",
        "The dense funnel at document level",
        "\n".join(
            [
                f"Dense two-stage search (shortlist {args.shortlist} chunks, default projection) against exact "
                "full-dim search, "
                "nDCG@10 with documents ranked by their best chunk. Causes, for each query two-stage ranks worse: a "
                "relevant "
                "document of the exact top 10 missing from the shortlist altogether / present only through a weaker "
                "chunk "
                "/ neither (reordering).",
                "",
                "| set | size | two-stage | exact | gap | queries worse | missing / best chunk missing / order |",
                "|:--|--:|--:|--:|--:|--:|--:|",
                *rows,
            ]
        ),
    )


if __name__ == "__main__":
    main()
