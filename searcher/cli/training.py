"""Commands that measure and train models: eval, finetune, adopt."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import (
    DEFAULT_FULL_STORAGE,
    DEFAULT_SHORTLIST,
    FULL_STORAGE_TYPES,
    PROJECTIONS,
    RERANKER_LOSS,
    RERANKER_LOSSES,
    FinetuneConfig,
)
from .common import (
    _Progress,
    _with_qdrant,
    cli,
    complete_index,
    index_option,
    qdrant_options,
)


@cli.command("eval", short_help="Measure retrieval quality on a labelled (BEIR) data set.")
@click.argument("data_dir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to evaluate.")
@click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index of the corpus to build or reuse [default: indexes/eval/<data>-<hash of corpus, model, chunking>].",
)
@click.option(
    "--model", envvar="SEARCHER_MODEL", show_envvar=True, help="Model name or path [default: bundled MiniLM]."
)
@click.option(
    "--projection",
    type=click.Choice(PROJECTIONS),
    default="auto",
    show_default=True,
    help="How coarse vectors are made: the first dims (prefix), a PCA rotation, or measured (auto).",
)
@click.option("--coarse-dim", type=int, default=64, show_default=True, help="Width of the coarse index.")
@click.option("--chunk-tokens", type=int, help="Max model tokens per chunk [default: the model's max_seq_length].")
@click.option("--overlap-tokens", type=int, help="Tokens shared by neighbouring chunks [default: chunk tokens / 8].")
@click.option(
    "--shortlist",
    type=int,
    default=DEFAULT_SHORTLIST,
    show_default=True,
    help="Coarse candidates reranked with the full vectors.",
)
@click.option(
    "--full-storage",
    type=click.Choice(FULL_STORAGE_TYPES),
    help="How full vectors are stored: float32, float16, mixed or int8 (4, 2, ~1.06 or 1 byte per dimension; "
    "mixed keeps the 64 coarse dims in float16) "
    "[default: " + DEFAULT_FULL_STORAGE + "].",
)
@qdrant_options
@click.option("--no-latency", is_flag=True, help="Skip the single-query latency measurement.")
@click.option(
    "--tune",
    is_flag=True,
    help="First pick the hybrid fusion weight on another labelled split and store "
    "it in the index (train, else dev; never the split reported).",
)
@click.option("--tune-split", help="The split to tune on [default: train, else dev].")
@click.option(
    "--keep-identical-ids",
    is_flag=True,
    help="Count a document that is its query (the same id and text: ArguAna, Quora) in that query's ranking; by "
    "default it is left out, as BEIR's evaluation does.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_command(
    data_dir,
    split,
    index_dir,
    model,
    projection,
    coarse_dim,
    chunk_tokens,
    overlap_tokens,
    shortlist,
    full_storage,
    qdrant_url,
    qdrant_path,
    qdrant_collection,
    qdrant_quantization,
    qdrant_shards,
    qdrant_replicas,
    no_latency,
    tune,
    tune_split,
    keep_identical_ids,
    as_json,
    quiet,
):
    """Evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

    Reports the model cards' metrics for every search mode (hybrid, dense, lexical, exact full-dim, coarse)
    and each Matryoshka dim, the dense top-10 agreement with exact search, and query latency. Embeddings are
    cached, so a second run with other search settings embeds nothing. --tune picks the hybrid weight first.
    The data set's queries are read as text: their quotes and leading dashes are not phrases and exclusions.

    \b
    Example:
        searcher eval ../shared/data/scifact --split test --shortlist 100
    """
    from ..config import IndexConfig
    from ..evaluate import evaluate

    config = IndexConfig().replace(
        model=model,
        projection=projection,
        coarse_dim=coarse_dim,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap_tokens,
        full_storage=full_storage,
    )
    config = _with_qdrant(
        config, None, qdrant_url, qdrant_path, qdrant_collection, qdrant_quantization, qdrant_shards, qdrant_replicas
    )
    with _Progress(enabled=not quiet) as progress:
        report = evaluate(
            data_dir,
            split=split,
            config=config,
            index_dir=index_dir,
            shortlist=shortlist,
            progress=progress,
            latency=not no_latency,
            tune=tune or tune_split is not None,
            tune_split=tune_split,
            keep_identical_ids=keep_identical_ids,
        )
    if as_json:
        import orjson

        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report.to_markdown())


def _parse_dim_weights(ctx, param, values: tuple[str, ...]) -> tuple[tuple[int, float], ...]:
    """`--dim-weight 64=2` -> ((64, 2.0),)."""
    parsed = []
    for value in values:
        dim, _, weight = value.partition("=")
        try:
            parsed.append((int(dim), float(weight)))  # no "=": float("") fails
        except ValueError:
            raise click.BadParameter(f"expected DIM=WEIGHT such as 64=2, got {value!r}") from None
    return tuple(parsed)


@cli.command(short_help="Fine-tune an embedding model on your own documents or labels.")
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--index",
    "index_name",
    metavar="NAME",
    shell_complete=complete_index,
    help="Train label-free on this index's chunks (instead of DATA), then switch the index to the tuned model "
    "if it is better on held-out pseudo-queries.",
)
@click.option(
    "--reranker",
    is_flag=True,
    help="Train a reranker (CrossEncoder) instead, on DATA's labels, with hard negatives from --index.",
)
@click.option(
    "--adopt/--no-adopt",
    default=True,
    show_default=True,
    help="With --index: switch the index to the tuned model when it is better.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the fine-tuned model [required with DATA; with --index, default: a new folder under "
    "the searcher home's .models].",
)
@click.option(
    "--model",
    envvar="SEARCHER_MODEL",
    show_envvar=True,
    help="Base model [default: the index's own when training on an index, else the bundled MiniLM].",
)
@click.option("--epochs", type=int, help="Passes over the pairs [default: 10 with labels, 1 label-free].")
@click.option(
    "--batch-size",
    type=int,
    default=FinetuneConfig.batch_size,
    show_default=True,
    help="Pairs per step; the others in a batch are each pair's negatives.",
)
@click.option(
    "--learning-rate",
    type=float,
    help="Peak learning rate, linear schedule [default: 5e-5 with labels, 2e-5 label-free].",
)
@click.option(
    "--warmup-ratio",
    type=float,
    default=FinetuneConfig.warmup_ratio,
    show_default=True,
    help="Share of steps spent warming the learning rate up.",
)
@click.option(
    "--max-seq-length",
    type=int,
    default=FinetuneConfig.max_seq_length,
    show_default=True,
    help="Training window in tokens (0: the base model's own); the saved model keeps its window.",
)
@click.option("--bf16/--no-bf16", default=None, help="bfloat16 autocast [default: when the CPU has native bf16].")
@click.option("--max-pairs", type=int, help="Train on a random sample of at most this many pairs.")
@click.option(
    "--dim-weight",
    "dim_weights",
    multiple=True,
    callback=_parse_dim_weights,
    metavar="DIM=WEIGHT",
    help="MatryoshkaLoss weight of one dim, e.g. 64=2 (repeatable) [default: every dim 1].",
)
@click.option(
    "--pca-prefix/--no-pca-prefix",
    default=FinetuneConfig.pca_prefix,
    show_default=True,
    help="End the model with a rotation onto the corpus's principal directions, so that its 64-dim "
    "prefix shortlists faithfully (full-dim similarities are unchanged).",
)
@click.option(
    "--tuned-share",
    type=click.FloatRange(0, 1, min_open=True),
    help="Share of the trained weights in the saved model, the rest the base model's [default: 1 with labels, "
    "0.5 label-free].",
)
@click.option(
    "--seed", type=int, default=FinetuneConfig.seed, show_default=True, help="Random seed (shuffling, sampling)."
)
@click.option(
    "--blend",
    type=click.FloatRange(0, 1),
    help="With --reranker: the reranker's weight in the order, chosen elsewhere [default: chosen on held-out "
    "queries, DATA's dev split when it has one]. Choose it on queries the index's model was not trained on.",
)
@click.option(
    "--reranker-loss",
    type=click.Choice(RERANKER_LOSSES),
    help="With --reranker: residual learns, over each query's candidates, what to add to the first stage's order; "
    f"bce scores each (query, passage) pair on its own [default: {RERANKER_LOSS}].",
)
@click.option("--eval-split", help="BEIR split to evaluate on [default: test, else dev].")
@click.option("--no-eval", is_flag=True, help="Skip the before/after evaluation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def finetune(
    data,
    index_name,
    reranker,
    adopt,
    output,
    model,
    epochs,
    batch_size,
    learning_rate,
    warmup_ratio,
    max_seq_length,
    bf16,
    max_pairs,
    dim_weights,
    pca_prefix,
    tuned_share,
    seed,
    blend,
    reranker_loss,
    eval_split,
    no_eval,
    overwrite,
    quiet,
):
    """Fine-tune a model with MatryoshkaLoss on DATA: a JSONL file of (query, passage) pairs, a BEIR folder
    with a train split, or a plain corpus (folder, file or index) to train on label-free; or on an index's chunks
    with --index, switching the index to the tuned model when it is better.

    Label-free, the training queries are sentences taken out of the chunks, scored by the index's hybrid search;
    the documents of part of them are held out, and the base and tuned model are compared there on pseudo-queries
    of every kind (headings, sentences, rare words). The saved model keeps half of what training changed
    (--tuned-share).

    \b
    Examples:
        searcher finetune ../shared/data/scifact -o models/scifact-minilm
        searcher finetune --index notes
    """
    from ..config import FinetuneConfig
    from ..train import finetune as run_finetune

    if reranker:
        if tuned_share is not None:
            raise click.UsageError("--tuned-share mixes a bi-encoder with its base; a reranker is saved as trained")
        _finetune_reranker(
            data,
            index_name,
            output,
            quiet,
            base_model=model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            blend=blend,
            loss=reranker_loss,
            overwrite=overwrite,
        )
        return
    if blend is not None or reranker_loss is not None:
        raise click.UsageError(f"{'--blend' if blend is not None else '--reranker-loss'} goes with --reranker")
    if (data is None) == (index_name is None):
        raise click.UsageError("give DATA to train on or --index NAME, one of the two")
    if data is not None and output is None:
        raise click.UsageError("training on DATA needs -o/--output, the directory for the model")
    config = FinetuneConfig(
        base_model=model,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=warmup_ratio,
        seed=seed,
        max_seq_length=max_seq_length or None,
        max_pairs=max_pairs,
        bf16=bf16,
        dim_weights=dim_weights,
        pca_prefix=pca_prefix,
        tuned_share=tuned_share,
    )
    switched = None
    with _Progress(enabled=not quiet) as progress:
        if index_name is not None:
            from ..adopt import finetune_index

            report, switched = finetune_index(index_name, output, config, adopt=adopt, progress=progress)
        else:
            report = run_finetune(
                data,
                output,
                config,
                eval_split=eval_split,
                evaluate_model=not no_eval,
                overwrite=overwrite,
                progress=progress,
            )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    from ..render import finetune_summary

    for line in finetune_summary(report, index_name, switched, adopt):
        click.echo(line)


def _finetune_reranker(data, index_name, output, quiet, *, base_model, epochs, learning_rate, loss, **options):
    from ..config import DEFAULT_MODEL
    from ..rerank_train import RERANKER_EPOCHS, RERANKER_LR, finetune_reranker

    if data is None or index_name is None or output is None:
        raise click.UsageError(
            "--reranker needs DATA (a BEIR folder with a train split, or a JSONL file of pairs), --index NAME (the "
            "index of those documents, for hard negatives) and -o/--output"
        )
    with _Progress(enabled=not quiet) as progress:
        report = finetune_reranker(
            data,
            output,
            index_name,
            base_model=base_model or DEFAULT_MODEL,
            epochs=epochs or RERANKER_EPOCHS,
            learning_rate=learning_rate or RERANKER_LR,
            loss=loss or RERANKER_LOSS,
            progress=progress,
            **options,
        )
    click.echo(
        f"trained a reranker on {report.positives} positive and {report.negatives} hard negative pairs "
        f"({report.data}) in {report.train_seconds:.0f} s; written to {report.output}"
    )
    v = report.validation
    if v:
        click.echo(
            f"on {report.validation_queries} held-out queries ({report.held_out}), nDCG@10: "
            f"first stage {v['first stage']:.4f}, "
            f"reranker alone {v['reranker']:.4f}, blended ({report.blend:.2f} reranker) {v['blend']:.4f}"
        )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f'use it: searcher query --rerank {report.output} "..."')


@cli.command(short_help="Switch an index to another model, re-embedding its chunks.")
@click.argument("model")
@index_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def adopt(model, index_dir, quiet):
    """Re-embed every chunk of the index with MODEL (a fine-tuned model's folder, say) into a new generation and
    switch to it at once; the index answers with its old model until then, and a killed run resumes.

    \b
    Example:
        searcher adopt ~/.local/share/searcher/.models/notes-20261206-101500 --index notes
    """
    from ..adopt import adopt_model

    with _Progress(enabled=not quiet) as progress:
        report = adopt_model(index_dir, model, progress=progress)
    click.echo(
        f"{report.index_dir}: {report.chunks} chunks of {report.documents} documents re-embedded with {model} "
        f"({report.embedded} embedded, {report.reused} found from an interrupted run); generation {report.generation}"
    )
