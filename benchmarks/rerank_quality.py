"""The reranking stage's quality and cost with a reranker trained here (`searcher finetune --reranker`): SciFact
test, hybrid search with and without a CrossEncoder trained on SciFact train (the bundled MiniLM's weights, a fresh
scoring head, hard negatives from the index), on the index of the SciFact-train fine-tuned bi-encoder (the
finetune-scifact setting) and on the bundled model's.

    python benchmarks/rerank_quality.py [--epochs N] [--lr LR] [--negatives N] [--loss L] [--tuned-only] [--reuse]
    python benchmarks/rerank_quality.py --validation-only [...]   # a recipe's dev figures alone, test untouched

`--reuse` keeps the rerankers an earlier run trained (their training does not depend on the blend) and chooses the
blend again on the validation split (rerank_train.rechoose_blend): for a change of the blend alone.

The blend of reranker and first stage is a hyperparameter, chosen on queries that neither model was trained on:
with the fine-tuned bi-encoder, the SciFact validation split of finetune.py (200 train queries held out as dev) is
used twice over - a bi-encoder and a reranker are trained on the rest, and the blend with the best dev nDCG@10 is
kept - then both are trained on the whole train split and the reranker is given that blend (`--blend`). (Choosing
it on the reranker's own held-out train queries instead meets a first stage that was trained on them: it ranks them
far better than new ones, and the weight chosen there is 0.) With the bundled bi-encoder, which no label trained,
the reranker holds a fifth of SciFact train out and chooses there, as `searcher finetune --reranker` does. The table
shows each reranker with its blend (what `--rerank DIR` does) and in its own order.
"""

from __future__ import annotations

import argparse
import time

import orjson
from _common import CACHE, require_data, write_section
from finetune import validation_split  # a sibling benchmark's SciFact validation split

from searcher import IndexConfig, Searcher
from searcher.config import RERANKER_LOSS, RERANKER_LOSSES
from searcher.evaluate import evaluate, percentiles_ms
from searcher.metrics import ir_metrics, load_beir
from searcher.rerank import BLEND_FILE, DEFAULT_DEPTH, Reranker, write_blend
from searcher.rerank_train import NEGATIVES, RERANKER_EPOCHS, RERANKER_LR, finetune_reranker, rechoose_blend
from searcher.train import FinetuneConfig, finetune


def rankings(searcher: Searcher, queries: dict[str, str], reranker: Reranker | None) -> tuple[dict, list[float]]:
    out, seconds = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = searcher.search(text, k=10, mode="hybrid", rerank=reranker)
        seconds.append(time.perf_counter() - started)
        out[qid] = [(h.doc_id, -float(rank)) for rank, h in enumerate(hits)]
    return out, seconds


def choose_on_validation(data, root, args) -> tuple[float, str]:
    """The blend weight chosen on the SciFact validation split's dev queries, with a bi-encoder and a reranker
    trained on its train queries (neither sees dev), and the line that says how."""
    folder = validation_split(data)
    bi = root / "scifact-minilm-validation"
    if not (bi / "README.md").is_file():
        finetune(folder, bi, FinetuneConfig(), evaluate_model=False, overwrite=True)
    index = evaluate(folder, split="dev", config=IndexConfig(model=str(bi)), latency=False, root=root / "eval").index
    # kept: the same run gives the same model
    trained = root / f"reranker-validation-e{args.epochs}-lr{args.lr:g}-n{args.negatives}{_loss_suffix(args)}"
    if args.reuse and (trained / BLEND_FILE).is_file():
        rechoose_blend(folder, trained, index)
    elif not (trained / BLEND_FILE).is_file():
        finetune_reranker(
            folder,
            trained,
            index,
            epochs=args.epochs,
            learning_rate=args.lr,
            negatives=args.negatives,
            loss=args.loss,
            overwrite=True,
        )
    chosen = orjson.loads((trained / BLEND_FILE).read_bytes())
    v = chosen["ndcg@10"]
    line = (
        f"blend chosen on the validation split ({chosen['validation_queries']} dev queries; bi-encoder and reranker "
        f"trained without them): first stage {v['first stage']:.4f}, reranker {v['reranker']:.4f}, "
        f"blend {chosen['blend']:.2f} {v['blend']:.4f}"
    )
    print(line, flush=True)
    return chosen["blend"], line


def _loss_suffix(args) -> str:
    return "" if args.loss == "bce" else f"-{args.loss}"  # the pairwise loss's folders keep their first names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=RERANKER_EPOCHS, help="reranker training epochs")
    parser.add_argument("--lr", type=float, default=RERANKER_LR, help="reranker learning rate")
    parser.add_argument("--negatives", type=int, default=NEGATIVES, help="hard negatives per query")
    parser.add_argument("--tuned-only", action="store_true", help="only the SciFact-train fine-tuned bi-encoder")
    parser.add_argument("--loss", choices=RERANKER_LOSSES, default=RERANKER_LOSS, help="the reranker's training loss")
    parser.add_argument("--reuse", action="store_true", help="keep the trained rerankers; choose the blend again")
    parser.add_argument("--validation-only", action="store_true", help="the dev split's figures only; no test")
    args = parser.parse_args()
    data = require_data("scifact")
    root = CACHE / "rerank-quality"
    if args.validation_only:  # choosing a recipe: dev queries only, the test split not read
        choose_on_validation(data, root, args)
        return
    bi = root / "scifact-minilm"
    if not (bi / "README.md").is_file():  # the finetune-scifact model: SciFact train, searcher's defaults
        finetune(data, bi, FinetuneConfig(), evaluate_model=False, overwrite=True)
    test = load_beir(data, "test")
    queries = {q: test.queries[q] for q in test.qrels}
    lines = [
        f"SciFact test, {len(queries)} queries; hybrid search, 10 documents; the reranker re-scores the top "
        f"{DEFAULT_DEPTH}. Latency: one query at a time, search plus rerank (p50/p95).",
        "",
        "| bi-encoder | reranker | nDCG@10 | recall@10 | p50 ms | p95 ms | reranker training |",
        "|:--|:--|--:|--:|--:|--:|:--|",
    ]
    encoders = (("SciFact-train fine-tune", str(bi)), ("bundled MiniLM", IndexConfig().model))
    for name, model in encoders[: 1 if args.tuned_only else 2]:
        report = evaluate(data, split="test", config=IndexConfig(model=model), latency=False, root=root / "eval")
        trained = root / f"reranker-{'tuned' if model == str(bi) else 'base'}{_loss_suffix(args)}"
        started = time.perf_counter()
        blend, chosen = choose_on_validation(data, root, args) if model == str(bi) else (None, "")
        if args.reuse and blend is not None and (trained / BLEND_FILE).is_file():
            write_blend(trained, blend, chosen="given")
            training = f"trained by an earlier run (its card: README.md beside it), kept; {chosen}"
        else:
            rr = finetune_reranker(
                data,
                trained,
                report.index,
                epochs=args.epochs,
                learning_rate=args.lr,
                negatives=args.negatives,
                loss=args.loss,
                blend=blend,
                overwrite=True,
            )
            v = rr.validation
            retried = f" ({'; '.join(rr.warnings)})" if rr.warnings else ""
            training = (
                f"{rr.positives} positive + {rr.negatives} negative pairs ({args.negatives} per query at most), "
                f"{rr.epochs} epoch(s), lr {rr.learning_rate:g}{retried}, train AUC {rr.train_auc:.2f}, "
                f"{(time.perf_counter() - started) / 60:.1f} min; "
                + (
                    chosen
                    or f"{rr.validation_queries} held-out train queries: first stage {v.get('first stage', 0):.4f}, "
                    f"reranker {v.get('reranker', 0):.4f}, blend {rr.blend:.2f} {v.get('blend', 0):.4f}"
                )
            )
        print(training, flush=True)
        blending, alone = Reranker(str(trained)), Reranker(str(trained))
        alone.blend = 1.0
        with Searcher(report.index) as searcher:
            searcher.search("warm up", k=10)
            for label, reranker in (
                ("none", None),
                (f"trained on SciFact train, blend {blending.blend:.2f}", blending),
                ("trained on SciFact train, its own order", alone),
            ):
                ranked, seconds = rankings(searcher, queries, reranker)
                m = ir_metrics(ranked, test.qrels)
                p = percentiles_ms(seconds)
                lines.append(
                    f"| {name} | {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {p['p50']:.0f} | "
                    f"{p['p95']:.0f} | {training if reranker else ''} |"
                )
                print(lines[-1], flush=True)
    write_section("rerank-quality", "Reranking quality: a reranker trained on SciFact train", "\n".join(lines))


if __name__ == "__main__":
    main()
