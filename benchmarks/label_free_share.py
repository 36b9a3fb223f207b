"""How much of a label-free run's trained weights to keep (FinetuneConfig.tuned_share, train.mix_weights), chosen
on SciFact's train split: the model `label_free.py` trained there with every trained weight kept, mixed with its
base at each share, dense and hybrid nDCG@10 on the train split's labels (never test's).

    python benchmarks/label_free.py --sets scifact --split train --tag=-train --tuned-share 1   # the trained model
    python benchmarks/label_free_share.py [SHARE ...]

The rule, fixed before the shares were scored: the smallest share whose dense nDCG@10 is within 0.003 of the best
share's (closer than that, 809 queries cannot tell two models apart), its hybrid not below the base's by more than
0.005. The nearer the base, the less a model trained on one collection's pseudo-queries can lose on the queries it
did not see.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _common import CACHE, require_data, write_section

from searcher import IndexConfig
from searcher.config import DEFAULT_MODEL
from searcher.encoder import resolve_model
from searcher.evaluate import evaluate
from searcher.train import mix_weights

SPLIT = "train"


def mixed_model(trained: Path, base: Path, share: float, out: Path) -> Path:
    """A copy of `trained` whose transformer weights are `share` of its own and the rest `base`'s (train.mix_weights,
    as `searcher finetune` mixes them). Its closing rotation is the trained model's (a finetune run fits it after
    mixing): the full-dim similarities do not depend on it; the prefixes' figures may understate a mixed model's a
    little."""
    from safetensors.torch import load_file, save_file

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(trained, out, ignore=shutil.ignore_patterns("searcher-onnx", "heldout"))
    ours, theirs = load_file(str(trained / "model.safetensors")), load_file(str(base / "model.safetensors"))
    mix_weights(ours, theirs, share)
    save_file(ours, str(out / "model.safetensors"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shares", nargs="*", type=float, default=[0.25, 0.5, 0.75])
    args = parser.parse_args()
    root, data = CACHE / "label-free", require_data("scifact")
    trained = root / "models" / "scifact-train"
    if not trained.is_dir():
        raise SystemExit(f"no trained model at {trained}: run the label_free.py command in this script's docstring")
    base = Path(resolve_model(DEFAULT_MODEL)[1])
    rows = []
    for share in sorted({0.0, 1.0, *args.shares}):
        model = {0.0: DEFAULT_MODEL, 1.0: str(trained)}.get(share) or str(
            mixed_model(trained, base, share, root / "models" / f"scifact-train-share-{share:g}")
        )
        # Indexes of its own: every model here embeds on its run's own path choice (the int8 graph on a CPU where it
        # wins), where label_free.py's indexes are all on a float path; a base index from there would not compare.
        report = evaluate(data, split=SPLIT, config=IndexConfig(model=model), latency=False, root=root / "share-eval")
        rows.append((share, report.modes["hybrid"]["ndcg@10"], report.modes["dense"]["ndcg@10"], report.dims))
        print(rows[-1][:3], flush=True)
    best = max(r[2] for r in rows if r[0] > 0)
    base_hybrid = rows[0][1]
    chosen = min(r[0] for r in rows if r[0] > 0 and r[2] >= best - 0.003 and r[1] >= base_hybrid - 0.005)
    dims = sorted(rows[0][3], reverse=True)
    lines = [
        f"### scifact ({SPLIT} split; the label-free model trained there, mixed with its base)",
        "",
        "| tuned share | hybrid | dense | " + " | ".join(f"dim {d}" for d in dims) + " |",
        "|--:|--:|--:|" + "--:|" * len(dims),
        *(
            f"| {s:g}{' (base)' if s == 0 else ''}{' (chosen)' if s == chosen else ''} | {h:.4f} | {d:.4f} | "
            + " | ".join(f"{r[dim]['ndcg@10']:.4f}" for dim in dims)
            + " |"
            for s, h, d, r in rows
        ),
    ]
    print("\n".join(lines))
    title = "Label-free fine-tuning: how much of the trained weights to keep"
    write_section("label-free-share", title, "\n".join(lines))


if __name__ == "__main__":
    main()
