"""Indexing throughput: chunks/s of `build_index` and of every document-encoder path against plain
`SentenceTransformer.encode` (float32) over the same chunk texts, in one run, on the CPU at hand; and what the
faster paths cost in nDCG@10 (exact search over each path's own vectors of a whole corpus).

The corpus is the first --docs abstracts of SciFact. Runs alternate (encode, paths, index, ...) so that all see
the same machine state; the best run of each is reported. The builds use a searcher home of their own, emptied
first: the first build is a first build on this machine (it exports the query encoder and measures the
document-encoder paths), the later ones find the shared encoder and the remembered choice, as every later index of
the model on this CPU does. A last table times each path as the measurement does, on 8, 16 and 32 texts spread over
the run's lengths (encoder_choice.timing_groups) and on the 8 longest (how it timed before), three times: whether a
sample that small picks the path the whole run would.

    python benchmarks/throughput.py [--docs 1000] [--rounds 2] [--model NAME_OR_PATH] [--no-quality]
    python benchmarks/throughput.py --docs 5183 --no-quality   # all of SciFact (~10k chunks), own section
    python benchmarks/throughput.py --folder corpus     # build_index on a folder against each path, own section
    python benchmarks/throughput.py --no-bf16 --no-quality  # as on a CPU without bf16 (own section)
    python benchmarks/throughput.py --section throughput-epyc  # another CPU beside the one a section records

--no-bf16 takes bf16 autocast out of the candidates, here and in the indexer's choice, as on a CPU without native
bf16 (the other paths' speed on such a CPU is not emulated: its int8 and float kernels are this CPU's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np
from _common import CACHE, require_data, write_section

from searcher import IndexConfig, build_index, open_index
from searcher.chunking import chunk_document, embedding_input
from searcher.encoder import Bf16Encoder, cpu_has_bf16, cpu_name, load_encoder
from searcher.encoder_choice import AGREEMENT_QUERIES, AGREEMENT_TEXTS, timed, timing_groups, top_agreement
from searcher.exact import exact_top_k
from searcher.ingest import Document
from searcher.metrics import corpus_records, document_rankings, ir_metrics, load_beir
from searcher.onnx_encoder import OnnxEncoder, export_onnx, quantize_int8

DOCS = 1000  # SciFact abstracts measured by default (1,908 chunks); --docs 5183 is the whole corpus


def paths(encoder, work) -> dict:
    """Every document-encoder path this machine offers (as choose_document_encoder sees them)."""
    out = {"torch float32": encoder}
    if cpu_has_bf16():
        out["torch bf16 autocast"] = Bf16Encoder(encoder)
    export = work / "onnx"
    if not (export / "encoder.json").is_file():
        export_onnx(encoder, export)
    out["onnx float32"] = OnnxEncoder(export)
    quantize_int8(export)
    out["onnx int8"] = OnnxEncoder(export, int8=True)
    return out


def sample_rates(encoders: dict, texts: list[str], batch_size: int, repeats: int = 3) -> list[str]:
    """Table rows: each path's texts/s as choose_document_encoder times it (warm-up on 4 texts, then the texts
    encoder_choice.timing_groups picks from the run sorted longest first), for samples of 8, 16 and 32 texts, and as
    it timed before (the run's 8 longest), `repeats` times each: does a small sample rank the paths as a whole run
    does?"""
    ordered = sorted(texts, key=len, reverse=True)
    samples = [(f"{size}", timing_groups(len(ordered), size)) for size in (8, 16, 32)]
    samples.append(("8 longest (before)", [list(range(8))]))
    rows = []
    for repeat in range(repeats):
        for label, groups in samples:
            sample = [[ordered[i] for i in group] for group in groups]
            rates = {}
            for name, enc in encoders.items():
                enc.encode_documents(sample[0][:4], batch_size=batch_size)
                elapsed, _ = timed(enc, sample, batch_size)
                rates[name] = sum(map(len, sample)) / elapsed
            order = " > ".join(sorted(rates, key=rates.get, reverse=True))
            cells = " | ".join(f"{r:.1f}" for r in rates.values())
            rows.append(f"| {label} | {repeat + 1} | {cells} | {order} |")
    return rows


def ndcg_by_path(
    name: str, encoders: dict, chunk_tokens: int, overlap: int, split: str = "test", agreement_queries: int = 0
) -> dict[str, float]:
    """nDCG@10 on a BEIR split with exact search over each path's own document vectors (queries in float32, as
    `searcher query` embeds them); with `agreement_queries`, also each path's top-10 agreement with float32 when
    that many of the corpus's own chunks (every n-th) are the queries, under "<path> agreement", and the agreement
    the run's own check measures (encoder_choice.int8_agreement, on a sample of the chunks) under "<path> check"."""
    data = load_beir(require_data(name), split)
    base = encoders["torch float32"]
    chunks = []
    for doc_id, title, text in corpus_records(data.corpus):
        doc = Document(doc_id, title, text or title, "")
        chunks += chunk_document(doc, base, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    texts = [c.embedding_input for c in chunks]
    doc_of = dict(enumerate(c.doc_id for c in chunks))
    qids = list(data.queries)
    xq = base.encode_queries([data.queries[q] for q in qids])
    out = {}
    own = (
        base.encode_queries(texts[:: max(1, len(texts) // agreement_queries)][:agreement_queries])
        if agreement_queries
        else None
    )
    reference = None
    # the texts encoder_choice.int8_agreement would check in a run over this corpus (its AGREEMENT_TEXTS, spread)
    spread = sorted(set(np.linspace(0, len(texts) - 1, min(AGREEMENT_TEXTS, len(texts))).astype(int).tolist()))
    exact = None
    for path, enc in encoders.items():
        xb = enc.encode_documents(texts)
        exact = xb[spread] if exact is None else exact
        if agreement_queries:
            out[f"{path} check"] = top_agreement(exact, xb[spread], AGREEMENT_QUERIES)
        D, I = exact_top_k(xq, [(xb, np.arange(len(xb)))], min(len(xb), 1000))
        out[path] = ir_metrics(dict(zip(qids, document_rankings(D, I, doc_of))), data.qrels)["ndcg@10"]
        if own is not None:
            _, top = exact_top_k(own, [(xb, np.arange(len(xb)))], 10)
            reference = top if reference is None else reference
            out[f"{path} agreement"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, reference)]))
    return out


def fresh_home(work) -> None:
    """Builds in a home of their own, emptied: nothing shared or remembered yet."""
    shutil.rmtree(work / "home", ignore_errors=True)
    os.environ["SEARCHER_HOME"] = str(work / "home")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=DOCS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-quality", action="store_true", help="skip the nDCG@10 of each path")
    parser.add_argument("--folder", help="measure build_index on this folder against each path instead")
    parser.add_argument("--no-bf16", action="store_true", help="as on a CPU without bf16 (own section)")
    parser.add_argument("--section", help="the RESULTS section to write (default: by the options above)")
    args = parser.parse_args()
    if args.no_bf16:
        import searcher.encoder_choice

        searcher.encoder_choice.cpu_has_bf16 = lambda: False  # type: ignore[attr-defined]
        globals()["cpu_has_bf16"] = lambda: False
    if args.folder:
        folder_throughput(args)
        return
    work = CACHE / "throughput"
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    with open(require_data("scifact") / "corpus.jsonl") as src, open(corpus, "w") as dst:
        for _, line in zip(range(args.docs), src):
            dst.write(line)
    config = IndexConfig().replace(model=args.model, batch_size=args.batch_size)
    encoder = load_encoder(config.model)
    config = config.replace(model=encoder.info.name)
    encoders = paths(encoder, work)

    index_runs, encode_runs = [], []
    path_runs: dict[str, list[float]] = {p: [] for p in encoders}
    texts: list[str] = []
    fresh_home(work)
    for _ in range(args.rounds):
        if texts:
            t = time.perf_counter()
            encoder.model.encode(texts, batch_size=args.batch_size)
            encode_runs.append(len(texts) / (time.perf_counter() - t))
            for name, enc in encoders.items():
                t = time.perf_counter()
                enc.encode_documents(texts, batch_size=args.batch_size)
                path_runs[name].append(len(texts) / (time.perf_counter() - t))
        shutil.rmtree(work / "index", ignore_errors=True)
        t = time.perf_counter()
        report = build_index(
            corpus, work / "index", config, encoder=encoder, rebuild=True, cache_dir=work / "fresh-cache"
        )
        total = time.perf_counter() - t
        shutil.rmtree(work / "fresh-cache")
        index_runs.append((report.chunks / total, report.seconds, total, report.chunks, report.embedded_with))
        if not texts:
            texts = [embedding_input(r["title"], r["text"]) for r in open_index(work / "index").iter_chunks()]

    first = index_runs[0][0]
    rate, seconds, total, chunks, embedded_with = max(index_runs[1:] or index_runs, key=lambda r: r[0])
    plain = max(encode_runs)
    onnx = max(path_runs["onnx float32"])
    split = ", ".join(f"{name} {s:.1f} s ({s / total:.0%})" for name, s in seconds.items())
    record = open_index(work / "index").manifest.document_encoder or {}
    rows = [
        f"| `{name}`.encode_documents | {max(r):.1f} | {max(r) / plain:.2f}x | {max(r) / onnx:.2f}x |"
        for name, r in path_runs.items()
    ]
    lines = [
        f"CPU: **{cpu_name()}**. {args.docs} SciFact abstracts -> {chunks} chunks, model `{encoder.info.name}`, batch "
        f"size {args.batch_size}; best of {args.rounds} rounds each (all rounds: index "
        f"{', '.join(f'{r[0]:.1f}' for r in index_runs)}; plain encode {', '.join(f'{r:.1f}' for r in encode_runs)} "
        "chunks/s).",
        "",
        "| | chunks/s | / plain float32 encode | / ONNX float32 |",
        "|:--|--:|--:|--:|",
        f"| plain `SentenceTransformer.encode` (float32) of the same chunk texts | {plain:.1f} | 1.00x | "
        f"{plain / onnx:.2f}x |",
        *rows,
        f"| `build_index`, a first build on this machine (read, chunk, export the query encoder, measure the paths, "
        f"embed, write; fresh index) | {first:.1f} | **{first / plain:.2f}x** | **{first / onnx:.2f}x** |",
        f"| `build_index`, every later fresh index of the model (shared encoder, remembered choice) | {rate:.1f} | "
        f"**{rate / plain:.2f}x** | **{rate / onnx:.2f}x** |",
        "",
        f"`build_index` embedded with **{embedded_with}**; the first build's measurement (texts/s on "
        f"{record.get('measured_on', '?')} texts spread over the run's lengths, and the lowest cosine to float32): "
        f"{record.get('texts_per_second')}, {record.get('min_cosine_to_float32')}; seconds each took, loading "
        f"included: {record.get('seconds')}; left out in that run (not worth preparing or checking): "
        f"{record.get('unmeasured') or 'none'}.",
        f"Where `build_index`'s {total:.1f} s went: {split}; the rest is loading the previous state and bookkeeping.",
        "",
        "The measurement's sample: texts/s of each path timed as `choose_document_encoder` times it (warm-up on 4 "
        "texts, then texts spread over the run's lengths), by sample size, and on the run's 8 longest texts as it "
        "timed before, against the whole run above:",
        "",
        "| sample | repeat | " + " | ".join(encoders) + " | order |",
        "|--:|--:|" + "--:|" * len(encoders) + ":--|",
        *sample_rates(encoders, texts, args.batch_size),
        "| all (table above) | | "
        + " | ".join(f"{max(r):.1f}" for r in path_runs.values())
        + " | "
        + " > ".join(sorted(path_runs, key=lambda n: max(path_runs[n]), reverse=True))
        + " |",
    ]
    if not args.no_quality:
        chunk_tokens, overlap = config.chunking(encoder.info.max_seq_length)
        lines += [
            "",
            "nDCG@10 (test split, exact search) with each path's own document vectors:",
            "",
            "| data | " + " | ".join(encoders) + " |",
            "|:--|" + "--:|" * len(encoders),
        ]
        for name in ("aie5-simonw-llms", "scifact"):
            scores = ndcg_by_path(name, encoders, chunk_tokens, overlap)
            lines.append(f"| {name} | " + " | ".join(f"{scores[p]:.4f}" for p in encoders) + " |")
    if args.no_bf16:
        lines.insert(0, "**bf16 autocast left out of the candidates (--no-bf16): as on a CPU without it.**\n")
    if args.section:
        write_section(
            args.section, f"Indexing throughput, {args.docs} SciFact abstracts ({cpu_name()})", "\n".join(lines)
        )
    elif args.no_bf16:
        write_section(
            f"throughput-no-bf16-{args.docs}",
            f"Indexing throughput without bf16, {args.docs} SciFact abstracts",
            "\n".join(lines),
        )
    elif args.docs == DOCS:
        write_section("throughput", "Indexing throughput", "\n".join(lines))
    else:  # another size (--docs 5183: all of SciFact, ~10k chunks) has a section of its own
        write_section(
            f"throughput-{args.docs}", f"Indexing throughput, {args.docs} SciFact abstracts", "\n".join(lines)
        )


def folder_throughput(args) -> None:
    """`build_index` (fresh, its own choice of path) on a folder, beside each path's rate on the same chunk texts."""
    from pathlib import Path

    folder = Path(args.folder)
    work = CACHE / "throughput-folder"
    work.mkdir(parents=True, exist_ok=True)
    config = IndexConfig().replace(model=args.model, batch_size=args.batch_size)
    encoder = load_encoder(config.model)
    encoders = paths(encoder, work)
    runs, texts, measured = [], [], {}
    fresh_home(work)
    for _ in range(args.rounds):
        shutil.rmtree(work / "index", ignore_errors=True)
        shutil.rmtree(work / "fresh-cache", ignore_errors=True)
        t = time.perf_counter()
        report = build_index(
            folder, work / "index", config, encoder=encoder, rebuild=True, cache_dir=work / "fresh-cache"
        )
        total = time.perf_counter() - t
        runs.append((report.chunks / total, report.embedded_with, report.chunks, report.seconds["embed"]))
        texts = texts or [embedding_input(r["title"], r["text"]) for r in open_index(work / "index").iter_chunks()]
        measured = measured or open_index(work / "index").manifest.document_encoder or {}  # the first build's
    rates = {}
    for name, enc in encoders.items():
        enc.encode_documents(texts[:8], batch_size=args.batch_size)
        t = time.perf_counter()
        enc.encode_documents(texts, batch_size=args.batch_size)
        rates[name] = len(texts) / (time.perf_counter() - t)
    first, _, _, first_embed = runs[0]
    rate, chosen, chunks, embed = max(runs[1:] or runs)
    onnx = rates["onnx float32"]
    lines = [
        f"CPU: **{cpu_name()}**. `{folder}`: {chunks} chunks, model `{encoder.info.name}`; build_index best of "
        f"{args.rounds} fresh builds (embedding cache emptied each time).",
        "",
        "| | chunks/s | / ONNX float32 |",
        "|:--|--:|--:|",
        *[f"| `{name}`.encode_documents | {r:.1f} | {r / onnx:.2f}x |" for name, r in rates.items()],
        f"| `build_index`, a first build on this machine (exports, measures the paths) | {first:.1f} | "
        f"**{first / onnx:.2f}x** |",
        f"| `build_index`, every later fresh index of the model (chose {chosen}, remembered) | {rate:.1f} | "
        f"**{rate / onnx:.2f}x** |",
        "",
        f"Embedding took {first_embed:.1f} s of the first build, including the measurement that chose the path "
        f"(each candidate warmed up and timed on the same texts), and {embed:.1f} s of the best later "
        "one: the measurement is a fixed cost, once per model and CPU, that a small folder feels most. The first "
        "build's "
        f"measurement (texts/s on {measured.get('measured_on', '?')} texts spread over the run's lengths): "
        f"{measured.get('texts_per_second')}; seconds each took, loading included: {measured.get('seconds')}; "
        f"left out in that run (not worth preparing or checking): {measured.get('unmeasured') or 'none'}.",
    ]
    write_section(f"throughput-{folder.name}", f"Indexing throughput on {folder.name}/", "\n".join(lines))


if __name__ == "__main__":
    main()
