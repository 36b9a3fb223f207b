"""The second model card's setting (../shared/seeds/model-card-biobert-medical-matryoshka.md) reproduced with the
bundled MiniLM: StatPearls articles cut into ~100-token chunks, (statement, chunk) pairs, MatryoshkaLoss over
MultipleNegativesRankingLoss with the card's hyperparameters (batch 16, learning rate 2e-5, 4 epochs, warmup 0.1,
no-duplicates batches, training window 100 tokens), the card's per-dimension table before and after.

The set's labels are statement -> article (topic level, one split): a seeded fifth of the statements is held out
for the table, the rest trains. The card's pairs are statements against chunks of their article; which chunks is not
said, so each training statement is paired with the POSITIVES chunks of its relevant articles that the base
model's hybrid search ranks highest (labels at the article level, the retriever choosing within it).

    python benchmarks/finetune_statpearls.py
"""

from __future__ import annotations

import random
import time

import orjson
from _common import CACHE, require_data, write_section

from searcher import IndexConfig, Searcher, build_index
from searcher.evaluate import evaluate
from searcher.metrics import load_beir, metrics_table
from searcher.train import FinetuneConfig, finetune

NAME = "dmiai2025-emergency-rag-statpearls"
HELD_OUT = 0.2
POSITIVES = 10  # chunks per training statement (the card: 1,701 pairs)
CARD = FinetuneConfig(batch_size=16, learning_rate=2e-5, epochs=4, warmup_ratio=0.1, max_seq_length=100)
CHUNKS = IndexConfig(chunk_tokens=100, overlap_tokens=20)  # the card's positives are at most 100 tokens


def main() -> None:
    data = require_data(NAME)
    root = CACHE / "statpearls-card"
    beir = load_beir(data, "train")
    qids = sorted(beir.qrels)
    held = set(random.Random(42).sample(qids, round(len(qids) * HELD_OUT)))
    # The held-out statements as a BEIR folder of their own (the corpus and queries linked, not copied).
    split = root / "split"
    (split / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (split / name).exists():
            (split / name).symlink_to((data / name).resolve())
    (split / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{s}\n" for q in sorted(held) for d, s in beir.qrels[q].items())
    )
    index = root / "index"
    build_index(data / "corpus.jsonl", index, CHUNKS)
    pairs = []
    train = [q for q in qids if q not in held]
    with Searcher(index) as searcher:
        for q, hits in zip(train, searcher.search_batch([beir.queries[q] for q in train], 1000, per_doc=False)):
            relevant = [h for h in hits if h.doc_id in beir.qrels[q]][:POSITIVES]
            pairs += [{"anchor": beir.queries[q], "positive": h.text} for h in relevant]
    pairs_file = root / "pairs.jsonl"
    pairs_file.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in pairs))
    started = time.perf_counter()
    report = finetune(pairs_file, root / "model", CARD, evaluate_model=False, overwrite=True)
    seconds = time.perf_counter() - started
    before = evaluate(split, split="test", config=CHUNKS, latency=False, root=root / "eval")
    after = evaluate(
        split, split="test", config=CHUNKS.replace(model=str(root / "model")), latency=False, root=root / "eval"
    )

    def table(r) -> list[str]:
        return metrics_table({f"dim {d}": m for d, m in r.dims.items()} | {"hybrid": r.modes["hybrid"]})

    body = [
        f"{len(pairs)} (statement, chunk) training pairs from {len(train)} statements (the card: 1,701); "
        f"{len(held)} held-out statements against all {before.corpus_documents} articles "
        f"({before.indexed_documents} indexed, chunks of {CHUNKS.chunk_tokens} tokens); documents rank by their best "
        f"chunk. Hyperparameters as the card's: batch {CARD.batch_size}, learning rate {CARD.learning_rate}, "
        f"{CARD.epochs} epochs, warmup {CARD.warmup_ratio}, training window {CARD.max_seq_length}, no-duplicates "
        f"batches; MatryoshkaLoss dims {report.dims}. Trained in {report.train_seconds:.0f} s "
        f"({report.pairs_per_second:.1f} pairs/s); {seconds / 60:.1f} min for `searcher finetune` in all.",
        "",
        "### Before (bundled MiniLM)",
        "",
        *table(before),
        "",
        "### After",
        "",
        *table(after),
    ]
    write_section("finetune-statpearls", "Fine-tuning: the second model card's setting (StatPearls)", "\n".join(body))


if __name__ == "__main__":
    main()
