"""`searcher finetune`: Matryoshka fine-tuning of a sentence-transformers model on the user's own data.

MatryoshkaLoss over MultipleNegativesRankingLoss, with the model's full width plus those of 768, 512, 256,
128 and 64 that are smaller, weighted 1 unless `dim_weights` says otherwise. The full width is always trained:
left out, the full vector is never optimised (sentence-transformers warns about exactly this). Training data
comes from pairs.py. The model is evaluated before and after, per Matryoshka dim, with the metrics of
`searcher eval`.

The output is a standard sentence-transformers directory (loads with plain `SentenceTransformer(path)` and
with `searcher index --model PATH`) plus a README model card (training configuration, before/after tables),
`searcher_model.json` (declares the Matryoshka dims; `auto` projection records them) and an exported
torch-free encoder. Everything is written to a hidden sibling directory that is renamed into place at the end,
so an interrupted run never leaves a half-written model at the output path.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .atomic import write_atomic
from .config import DEFAULT_MODEL, FinetuneConfig, IndexConfig
from .encoder import (
    SEARCHER_MODEL_FILE,
    SentenceTransformerEncoder,
    cpu_has_bf16,
    no_progress_bars,
    normalize_rows,
    quiet_transformers,
)
from .errors import InvalidInputError
from .evaluate import EVAL_ROOT, evaluate, matryoshka_dims
from .metrics import DEPTH, ir_metrics
from .model_card import FinetuneReport, model_card  # noqa: F401 - FinetuneReport is train's API too
from .onnx_encoder import MODEL_EXPORT_DIR, ExportError, export_onnx
from .pairs import BeirEval, PairEval, TrainingData, is_labelled, load_training_data
from .projection import fit_rotation
from .store import MANIFEST, read_manifest

log = logging.getLogger(__name__)
MAX_EVAL_CORPUS = 5000  # passages in a held-out-pairs evaluation (held-out passages always included)
SCRATCH_INDEX = "index"  # label-free from a folder: its index, inside the output's partial directory
HELD_OUT_DIR = "heldout"  # label-free: the held-out pseudo-queries as a BEIR folder, kept with the model
# label-free: a tuned model is better when held-out hybrid nDCG@10 rises and dense falls by no more than this
DENSE_TOLERANCE = 0.005
BOOTSTRAP = 2000  # resamples of the held-out queries behind comparison()'s interval
ROTATION_SAMPLE = 2000  # texts the closing rotation is fitted on (SciFact: 77 s to embed; RESULTS.md)


def finetune(
    data: Path | str,
    output: Path | str,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    eval_split: str | None = None,
    evaluate_model: bool = True,
    overwrite: bool = False,
    progress=None,
    eval_root: Path | str | None = None,
) -> FinetuneReport:
    """Fine-tune `config.base_model` on `data` (see pairs.py) and write the model to `output`.

    The before/after evaluation's indexes go under `eval_root`: by default, with labels, evaluate.EVAL_ROOT (as
    `searcher eval`, reused by later runs); label-free, a scratch folder beside `output`, deleted at the end (the
    held-out pseudo-queries are this run's own, so nothing there is worth keeping, and nothing is left in the
    working directory)."""
    output = Path(output).expanduser().resolve()
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise InvalidInputError(f"{output} already exists and is not empty; choose another output or pass --overwrite")
    progress = progress or (lambda *a, **k: None)
    source = Path(data).expanduser()
    label_free = not is_labelled(source)
    base_model = config.base_model or (
        read_manifest(source).model.name if (source / MANIFEST).is_file() else DEFAULT_MODEL
    )
    config = dataclasses.replace(config.for_data(label_free), base_model=base_model)
    encoder = SentenceTransformerEncoder(base_model)
    dims = matryoshka_dims(encoder.info.dim)
    config.loss_weights(dims)  # a bad dim weight fails before the data is read
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    scratch = output.with_name(f".{output.name}.eval") if eval_root is None and label_free else None
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    eval_root = scratch or eval_root or EVAL_ROOT
    try:
        if label_free:
            training = _label_free(source, encoder, config, partial, progress)
        else:
            training = load_training_data(
                source, encoder, eval_split=eval_split, seed=config.seed, max_pairs=config.max_pairs
            )
        return _finetune(encoder, training, config, dims, output, partial, evaluate_model, progress, eval_root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _label_free(source: Path, encoder, config: FinetuneConfig, partial: Path, progress) -> TrainingData:
    """Triplets from the index at `source`, or from a scratch index of the folder or file `source` built with
    the base model inside `partial` (deleted with it)."""
    from .indexer import build_index
    from .labelfree import label_free_data

    index_dir = source
    if not (source / MANIFEST).is_file():
        index_dir = partial / SCRATCH_INDEX
        build_index(source, index_dir, IndexConfig(model=encoder.info.name), encoder=encoder, progress=progress)
    training = label_free_data(
        index_dir,
        partial / HELD_OUT_DIR,
        seed=config.seed,
        max_queries=config.max_pairs,
        progress=progress,
        described_as=None if index_dir == source else str(source),
    )
    if index_dir != source:
        shutil.rmtree(index_dir, ignore_errors=True)
    return training


def _finetune(
    encoder,
    training: TrainingData,
    config: FinetuneConfig,
    dims: list[int],
    output: Path,
    partial: Path,
    evaluate_model: bool,
    progress,
    eval_root,
) -> FinetuneReport:
    report = FinetuneReport(
        str(output),
        encoder.info.name,
        training.description,
        len(training.train),
        dims,
        bf16=cpu_has_bf16() if config.bf16 is None else config.bf16,
        warnings=list(training.warnings),
        label_free=bool(training.triplets),
    )
    if evaluate_model and training.evaluation is not None:
        progress("evaluate", 0, 1)
        report.evaluation, report.before, before_by_query = _evaluate(
            encoder, training.evaluation, dims, Path(eval_root)
        )
    _train(encoder, training, config, dims, partial, report, progress)
    # Evaluate and export what was saved, loaded afresh: the trained object in memory still carries the
    # trainer's mixed-precision wrapper around forward(), which the ONNX tracer cannot follow.
    from sentence_transformers import SentenceTransformer

    with no_progress_bars():
        saved = SentenceTransformer(str(partial), device="cpu")
    if config.pca_prefix:
        progress("rotate", 0, 1)
        started = time.perf_counter()
        report.rotation_fitted_on = _rotate_prefix(saved, training, config.seed, partial, min(dims))
        if not report.rotation_fitted_on:
            report.warnings.append(
                f"too few distinct passages to fit the closing rotation (it needs more than "
                f"{min(dims)}); the model's prefixes are MatryoshkaLoss's own"
            )
        report.rotation_seconds = time.perf_counter() - started
    trained = SentenceTransformerEncoder.wrap(saved, name=str(output), matryoshka_dims=tuple(dims))
    if evaluate_model and training.evaluation is not None:
        progress("evaluate", 0, 1)
        _, report.after, after_by_query = _evaluate(trained, training.evaluation, dims, Path(eval_root))
        if report.label_free:
            report.verdict, report.hybrid_gain_low = comparison(
                report.before, report.after, before_by_query.get("hybrid"), after_by_query.get("hybrid")
            )
    progress("export", 0, 1)
    try:
        export_onnx(trained, partial / MODEL_EXPORT_DIR)
    except ExportError as e:
        report.warnings.append(f"could not export the model for torch-free queries ({e})")
    write_atomic(partial / "README.md", model_card(report, config).encode())
    if output.exists():
        shutil.rmtree(output)
    os.replace(partial, output)
    return report


def comparison(
    before: dict, after: dict, before_by_query: dict | None = None, after_by_query: dict | None = None
) -> tuple[str, float | None]:
    """("better" or "not better", the lower bound of the hybrid gain) of a tuned model against its base on the same
    held-out queries ("" when there is no hybrid column). Better means a hybrid nDCG@10 gain that holds up: the
    lower end of a 90% bootstrap interval of the mean per-query gain above 0 (with per-query scores; else the mean
    gain above 0), and a dense (two-stage) nDCG@10 no more than DENSE_TOLERANCE lower. A few held-out queries
    rarely prove a gain, so a small collection keeps its model unless the gain is clear."""
    if "hybrid" not in before or "hybrid" not in after:
        return "", None
    dense = after["two-stage"]["ndcg@10"] - before["two-stage"]["ndcg@10"]
    if before_by_query and after_by_query:
        gains = np.array([after_by_query[q] - before_by_query[q] for q in sorted(before_by_query)])
        rng = np.random.default_rng(0)
        means = gains[rng.integers(0, len(gains), (BOOTSTRAP, len(gains)))].mean(axis=1)
        low = float(np.percentile(means, 5))
    else:
        low = after["hybrid"]["ndcg@10"] - before["hybrid"]["ndcg@10"]
    return ("better" if low > 0 and dense >= -DENSE_TOLERANCE else "not better"), low


# What every training run here passes its transformers-style arguments: on the CPU, nothing saved, nothing printed.
QUIET_ARGS: dict[str, Any] = {
    "save_strategy": "no",
    "logging_steps": 1,
    "report_to": "none",
    "disable_tqdm": True,
    "use_cpu": True,
    "log_level": "error",
    "dataloader_num_workers": 0,
}


def run_trainer(make, on_loss) -> tuple[int, float]:
    """Train the trainer `make(callbacks)` builds, quietly, calling `on_loss(step, steps, loss)` at each logged
    step: (steps done, seconds). Shared by the bi-encoder (here) and the reranker (rerank_train.py)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                on_loss(state.global_step, state.max_steps, float(logs["loss"]))

    with quiet_transformers():
        trainer = make([Progress()])
        for noisy in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(noisy)
        started = time.perf_counter()
        result = trainer.train()
        return int(result.global_step), time.perf_counter() - started


def _train(
    encoder,
    training: TrainingData,
    config: FinetuneConfig,
    dims: list[int],
    partial: Path,
    report: FinetuneReport,
    progress,
) -> None:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        MarginMSELoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.util import pairwise_cos_sim

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict) -> None:
            """No automatic card: ours, with the before/after evaluations, is written at the end."""

    assert config.epochs is not None and config.learning_rate is not None  # FinetuneConfig.for_data filled them in
    assert config.tuned_share is not None
    model = encoder.model
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if config.tuned_share < 1 else None
    window = model.max_seq_length
    if config.max_seq_length:  # a shorter window for training only; the saved model keeps its own
        model.max_seq_length = min(config.max_seq_length, window)
    if training.triplets:  # label-free: the teacher's margins (labelfree.py)
        inner: torch.nn.Module = MarginMSELoss(model, similarity_fct=pairwise_cos_sim)
        dataset = Dataset.from_dict(
            {
                "query": [t.query for t in training.triplets],
                "positive": [t.positive for t in training.triplets],
                "negative": [t.negative for t in training.triplets],
                "label": [t.margin for t in training.triplets],
            }
        )
    else:
        inner = MultipleNegativesRankingLoss(model)
        dataset = Dataset.from_dict(
            {"anchor": [p.query for p in training.train], "positive": [p.passage for p in training.train]}
        )
    loss = MatryoshkaLoss(model, inner, matryoshka_dims=dims, matryoshka_weights=config.loss_weights(dims))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(partial / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float here is a ratio (transformers 5 deprecates warmup_ratio)
        # in-batch negatives must not be another pair's positive; MarginMSE compares within a triplet only
        batch_sampler=BatchSamplers.BATCH_SAMPLER if training.triplets else BatchSamplers.NO_DUPLICATES,
        seed=config.seed,
        bf16=report.bf16,
        **QUIET_ARGS,
    )

    def on_loss(step: int, steps: int, loss: float) -> None:
        report.losses.append((step, loss))
        progress("train", step, steps, loss=loss)

    try:
        report.steps, report.train_seconds = run_trainer(
            lambda callbacks: Trainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks),
            on_loss,
        )
        report.pairs_per_second = len(training.train) * config.epochs / report.train_seconds
    finally:
        model.max_seq_length = window
    if base_state is not None:
        mix_weights(model.state_dict(), base_state, config.tuned_share)
    shutil.rmtree(partial / "checkpoints", ignore_errors=True)
    with no_progress_bars():
        model.save(str(partial), create_model_card=False)  # ours is written at the end, with the evaluations
    marker = {
        "matryoshka_dims": dims,
        "base_model": encoder.info.name,
        "trained_by": "searcher finetune",
        "config": asdict(config),
    }
    write_atomic(partial / SEARCHER_MODEL_FILE, orjson.dumps(marker, option=orjson.OPT_INDENT_2))


def mix_weights(state: dict, base_state: dict, share: float) -> None:
    """Make each floating-point tensor of `state` (a model's state dict, changed in place) `share` of itself and the
    rest its value in `base_state` (the model before training): weight-space ensembling (WiSE-FT, Wortsman et al.,
    2022). Between a fine-tuned model and the model it started from lie models that keep much of the gain where the
    training data reaches and lose less where it does not; a label-free run's pseudo-queries reach less far than a
    user's real ones (RESULTS.md, label-free-share)."""
    import torch

    with torch.no_grad():
        for name, tensor in state.items():
            if tensor.is_floating_point():
                tensor.mul_(share).add_(base_state[name], alpha=1 - share)


def _rotate_prefix(model, training: TrainingData, seed: int, partial: Path, smallest_dim: int) -> int:
    """Append an orthogonal rotation onto the principal directions of the corpus's embeddings; save the model.

    Why: MatryoshkaLoss makes the 64-dim prefix a good embedding on its own, but not a faithful shortlist for
    the full vector: fine-tuned on a validation split of SciFact train, the prefix kept 84% of the full vector's
    top-10 at a shortlist of 100 chunks whatever its loss weight (1 to 8); with this rotation, 97.6%
    (benchmarks/RESULTS.md, finetune-weights and finetune-rotation). Rotating the output makes the model's own
    prefix the corpus's PCA projection. Being orthogonal, the rotation changes no full-dim similarity. Fitted
    without labels on the corpus (a BEIR folder's corpus, the chunks pairs were generated from) or, for a pairs
    file, on its distinct training passages. It needs more texts than the smallest prefix has dims, or that
    prefix would hold directions the texts do not determine.
    Returns the number of texts it was fitted on (0: too few, nothing done).
    """
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense

    texts = training.corpus or sorted({p.passage for p in training.train})
    if len(texts) <= smallest_dim:
        return 0
    if len(texts) > ROTATION_SAMPLE:
        texts = random.Random(seed).sample(texts, ROTATION_SAMPLE)
    x = SentenceTransformerEncoder.wrap(model, name=str(partial)).encode_documents(texts)
    rotation = fit_rotation(x)  # columns: principal directions, strongest first; y = x @ rotation
    d = rotation.shape[0]
    model.append(
        Dense(
            d,
            d,
            bias=False,
            activation_function=torch.nn.Identity(),
            init_weight=torch.from_numpy(np.ascontiguousarray(rotation.T)),
        )
    )
    with no_progress_bars():
        model.save(str(partial), create_model_card=False)
    return len(texts)


def _evaluate(encoder, evaluation: PairEval | BeirEval, dims: list[int], root: Path) -> tuple[str, dict, dict]:
    """(description, {column: metrics}, {"hybrid"/"dense": {query id: nDCG@10}}) for the model as it is now."""
    if isinstance(evaluation, BeirEval):
        report = evaluate(
            evaluation.data_dir,
            split=evaluation.split,
            config=IndexConfig(model=encoder.info.name),
            encoder=encoder,
            latency=False,
            root=root,
        )
        columns = {f"dim {d}": m for d, m in report.dims.items()} | {"two-stage": report.modes["dense"]}
        if "hybrid" in report.modes:
            columns["hybrid"] = report.modes["hybrid"]
        description = f"{evaluation.data_dir.name}, {evaluation.split} split: {report.queries} queries, whole corpus"
        return description, columns, report.ndcg_by_query
    columns = {f"dim {d}": m for d, m in evaluate_pairs(encoder, evaluation, dims).items()}
    return (
        (
            f"held-out pairs: {len(evaluation.queries)} queries against "
            f"{min(len(evaluation.corpus), MAX_EVAL_CORPUS)} passages"
        ),
        columns,
        {},
    )


def evaluate_pairs(encoder, evaluation: PairEval, dims: list[int]) -> dict[int, dict[str, float]]:
    """Exact search with each Matryoshka prefix over an in-memory corpus: the IR evaluator's three dicts."""
    relevant = {p for rel in evaluation.qrels.values() for p in rel}
    others = [p for p in evaluation.corpus if p not in relevant]
    rng = np.random.default_rng(0)
    keep = max(0, MAX_EVAL_CORPUS - len(relevant))
    pids = sorted(relevant) + [others[i] for i in sorted(rng.permutation(len(others))[:keep])]
    qids = list(evaluation.queries)
    x = encoder.encode_documents([evaluation.corpus[p] for p in pids])
    q = encoder.encode_queries([evaluation.queries[i] for i in qids])
    out = {}
    for d in dims:
        scores = normalize_rows(q[:, :d]) @ normalize_rows(x[:, :d]).T
        top = np.argsort(-scores, axis=1)[:, :DEPTH]
        rankings = {qid: [(pids[j], float(scores[i, j])) for j in top[i]] for i, qid in enumerate(qids)}
        out[d] = ir_metrics(rankings, evaluation.qrels)
    return out
