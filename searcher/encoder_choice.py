"""Which path embeds an index's documents on this CPU, chosen by measurement: the model in float32, under bfloat16
autocast where the CPU has native bf16, the exported ONNX graph and its int8 version (choose_document_encoder); and
when a small update embeds with the index's ONNX graph instead of loading torch at all (small_edit_limit). The
indexer asks; nothing here writes an index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from .config import Progress
from .encoder import Bf16Encoder, Encoder, ModelInfo, SentenceTransformerEncoder, cpu_has_bf16, cpu_name
from .metrics import top_overlap
from .onnx_encoder import ExportError, OnnxEncoder

log = logging.getLogger(__name__)


# Until this machine has timed loading the model (remember_start), loading torch and the model is taken to cost
# this many seconds: the order of what was measured on the machines in RESULTS.md, upkeep.
ASSUMED_START_SECONDS = 5.0


def embeds_small_edits_in_int8(record: dict | None, export: Path) -> bool:
    """Whether an update embeds its chunks with the int8 graph rather than the float one: when int8 is what this
    index's documents were embedded with on this CPU (its retrieval check passed) and the graph is there. Then an
    edit is embedded as the rest were, at the chosen path's rate, torch not loaded."""
    from .onnx_encoder import INT8_MODEL

    record = record or {}
    return record.get("choice") == "onnx-int8" and record.get("cpu") == cpu_name() and (export / INT8_MODEL).is_file()


def small_edit_limit(record: dict | None, start_seconds: float | None, batch_size: int) -> float:
    """How many chunks the float ONNX graph embeds sooner than loading torch and embedding them on the chosen path:
    n / rate(onnx) <= start + n / rate(choice), from the choice's measured rates (texts per second, on texts spread
    over its run's lengths: timing_groups) and the measured time to load the model. Without a measurement, a few
    batches."""
    rates = (record or {}).get("texts_per_second") or {}
    onnx, best = rates.get("onnx"), rates.get((record or {}).get("choice"))
    if not onnx or not best:
        return 4 * batch_size
    if onnx >= best:
        return float("inf")
    start = start_seconds if start_seconds is not None else ASSUMED_START_SECONDS
    return start / (1 / onnx - 1 / best)


# Graphs opened by this process, by folder and the stamp of its encoder.json: an exported folder is written once
# and switched in by a rename, so the same stamp is the same graph. subtle: opening one (an onnxruntime session)
# was a third of a one-file update in a process that updates an index again and again (RESULTS.md, update-one).
_graphs: OrderedDict[tuple[str, int, int, bool], OnnxEncoder] = OrderedDict()
_graphs_lock = threading.Lock()
GRAPHS_KEPT = 2


def open_graph(index_dir: Path, name: str | None, info: ModelInfo, int8: bool = False) -> Encoder | None:
    """The index's exported ONNX graph (its int8 version with `int8`), if it has one of this model; None otherwise
    (torch then)."""
    if not name:
        return None
    try:
        stat = (index_dir / name / "encoder.json").stat()
    except OSError:
        return None
    key = (str((index_dir / name).resolve()), stat.st_mtime_ns, stat.st_size, int8)
    with _graphs_lock:
        graph = _graphs.get(key)
        if graph is None:
            try:
                graph = OnnxEncoder(index_dir / name, int8=int8)
            except (ExportError, OSError, ValueError, ImportError) as e:
                log.info("no torch-free document encoder (%s)", e)
                return None
            _graphs[key] = graph
            while len(_graphs) > GRAPHS_KEPT:
                _graphs.popitem(last=False)
        _graphs.move_to_end(key)
    return graph if graph.info.same_weights(info) else None


@dataclass
class EncoderChoice:
    name: str  # "torch", "torch-bf16", "onnx" or "onnx-int8"
    encoder: Encoder
    record: dict | None  # what the manifest keeps: the choice, the CPU, the measurement
    # when it measured: the positions (in the texts measured on) of the texts it timed, and their float32 vectors
    sample: tuple[list[int], np.ndarray] | None = None
    # int8's retrieval check: the positions (in the texts measured on) of the texts it embedded, and their float
    # vectors, kept like `sample`'s so the run does not embed them again
    checked: tuple[list[int], np.ndarray] | None = None


MIN_COSINE = 0.9999  # a faster path must embed this close to float32 on every measured text
FASTER = 1.05  # ... and be this many times as fast as float32 to be worth switching to
# The int8 ONNX graph cannot match float32 that closely (mean cosine ~0.994 for MiniLM), so it has its own bar, in
# retrieval's terms: where it would be chosen, AGREEMENT_TEXTS of the run's own texts are embedded both ways and
# AGREEMENT_QUERIES of them (their float vectors) search the rest; int8 is used only if its top 10 agree with the
# float path's on at least INT8_MIN_AGREEMENT of the places (int8_agreement). The bar sits a little below the
# agreement at which int8 documents kept nDCG@10 on the shared sets, and far above a broken graph's (RESULTS.md,
# paths-quality-*: nDCG@10 per path, agreement on the whole collection and as this check measures it). Each
# measured text must also stay INT8_MIN_COSINE close to float32.
INT8_DOCUMENTS = True
INT8_MIN_COSINE = 0.98
INT8_MIN_AGREEMENT = 0.9
AGREEMENT_TEXTS = 200
AGREEMENT_QUERIES = 50
# The check runs when what it loses if int8 fails it is at most this share of what it saves the run if int8 passes
# (worth_checking, from the measured rates); a run too small to pay for it embeds with a float path and says so
# ("unmeasured").
CHECK_SHARE = 0.5
# A known choice is measured again only when the measurement would cost at most this share of the run's embedding
# (both estimated from the known record's timings). The old rule measured any run of 50+ batches; on 1,908 SciFact
# chunks a build that measures ran at 1.61x plain float32 encode, one that reuses the choice at 2.46x (2-core Intel
# Xeon with AMX; RESULTS.md, throughput, as of commit 5907554, when a measurement took 8-10 s).
REMEASURE_SHARE = 0.05
# The one-time int8 graph is made and measured only in a run whose embedding it costs at most this share of
# (worth_preparing).
PREPARE_SHARE = 0.10
# Texts each candidate is timed on (spread over the run's lengths: timing_groups).
SAMPLE = 8
# The two fastest candidates timed within this ratio of each other are timed again (retime_close).
CLOSE = 1.25


def worth_remeasuring(previous: dict, n_texts: int) -> bool:
    """Whether embedding n_texts takes long enough that measuring the candidates again (as `previous` timed them,
    warm-up included) costs at most REMEASURE_SHARE of it."""
    rates = previous.get("texts_per_second") or {}
    chosen = rates.get(previous.get("choice"), 0)
    if not chosen or not all(r > 0 for r in rates.values()):
        return True
    sample = previous.get("measured_on", 32) + 4
    cost = sum(previous.get("seconds", {}).values()) or sum(sample / r for r in rates.values())
    return cost <= REMEASURE_SHARE * n_texts / chosen


def faster_and_close(speedup: float, min_cosine: float, bar: float = MIN_COSINE) -> bool:
    """The rule a faster way of embedding documents must pass to replace float32: FASTER times its rate, and every
    measured text's vector within `bar` (cosine) of float32's. Ray workers apply it too (cluster.py)."""
    return speedup >= FASTER and min_cosine >= bar


def choose_document_encoder(
    encoder: Encoder,
    export: Path | None,
    texts: list[str],
    batch_size: int,
    previous: dict | None,
    progress: Progress | None = None,
) -> EncoderChoice:
    """The fastest way this machine has to embed documents like the model in float32.

    Candidates: the model in float32, under bfloat16 autocast where the CPU has native bf16, the exported ONNX
    graph, and its int8 version. Which is fastest depends on the CPU (ONNX was 1.8x torch on the AMD EPYC of
    earlier runs, RESULTS.md's cold-start section as of commit 6b903e9; on an Intel Xeon with AMX, all of SciFact,
    bf16 ran 2.49x plain float32 encode, ONNX int8 1.20x, ONNX 0.80x: RESULTS.md, throughput-5183), so it is
    measured: each candidate is warmed up, then embeds the same SAMPLE texts (timing_groups); a candidate must be 5%
    faster than float32 and agree with it (cosine >= MIN_COSINE on each text) to be chosen. The int8 graph must first be
    made (quantize_int8, once per model), so it is a candidate only in a run long enough to pay for that
    (worth_preparing); a run that leaves it out says so in the record ("unmeasured"). Unless there is so much to
    embed that measuring again costs little (worth_remeasuring), the previous choice made on the same CPU (this
    index's, or one remembered in the home for this model) is kept without measuring: on corpus/ a first build's
    embedding took 11.4 s against a later build's 10.1 s (RESULTS.md, throughput-corpus; 19.6 against 12.7 s as of
    commit 5907554, when each candidate was timed on 32 texts and the int8 graph always made).
    """
    candidates: dict[str, Callable[[], Encoder]] = {"torch": lambda: encoder}
    if isinstance(encoder, SentenceTransformerEncoder) and cpu_has_bf16():
        candidates["torch-bf16"] = lambda: Bf16Encoder(encoder)
    if export is not None:
        from .onnx_encoder import OnnxEncoder

        candidates["onnx"] = lambda: OnnxEncoder(export)
        if INT8_DOCUMENTS:
            from .onnx_encoder import quantize_int8

            candidates["onnx-int8"] = lambda: (quantize_int8(export), OnnxEncoder(export, int8=True))[1]
    cpu = cpu_name()
    if len(candidates) == 1:  # (an endpoint model names its own path)
        return EncoderChoice(getattr(encoder, "path", "torch"), encoder, None)
    small = len(texts) < 6 * batch_size  # too little to embed for a measurement to pay
    known = previous is not None and previous.get("cpu") == cpu and previous.get("choice") in candidates
    if previous is not None and known and (small or not worth_remeasuring(previous, len(texts))):
        return EncoderChoice(previous["choice"], candidates[previous["choice"]](), previous)
    if small:  # float32, and no record: one made on another CPU, or naming a path not on offer, is not this run's
        return EncoderChoice("torch", encoder, None)
    # A few texts: on a small folder the measurement is a large share of the run, and float32's vectors of them are
    # kept, so only the other candidates' time is spent on it.
    groups = timing_groups(len(texts), min(batch_size, SAMPLE))
    positions = [i for group in groups for i in group]
    sample = [[texts[i] for i in group] for group in groups]
    rates: dict[str, float] = {}
    cosines: dict[str, float] = {}
    seconds: dict[str, float] = {}
    unmeasured: list[str] = []
    reference = None
    built: dict[str, Encoder] = {}
    progress = progress or (lambda phase, done, total: None)
    for i, (name, make) in enumerate(candidates.items()):
        progress("measure", i, len(candidates))  # once per model and CPU: the user sees why embedding waits
        if name == "onnx-int8" and (
            export is None or not worth_preparing(export, seconds["onnx"], len(texts), max(rates.values()))
        ):
            unmeasured.append(name)
            continue
        started = time.perf_counter()
        built[name] = candidate = make()
        candidate.encode_documents(sample[0][:4], batch_size=batch_size)  # warm-up: first-call allocations
        elapsed, x = timed(candidate, sample, batch_size)
        rates[name] = round(len(positions) / elapsed, 1)
        seconds[name] = round(time.perf_counter() - started, 2)  # loading, warm-up and the timed batch
        if reference is None:
            reference = x
        cosines[name] = round(float(np.min(np.sum(x * reference, axis=1))), 6)
    retimed = retime_close(rates, seconds, built, sample, batch_size)
    progress("measure", len(candidates), len(candidates))
    eligible = [
        n
        for n in rates
        if n == "torch"
        or faster_and_close(rates[n] / rates["torch"], cosines[n], INT8_MIN_COSINE if n == "onnx-int8" else MIN_COSINE)
    ]
    agreement, checked = None, None
    if "onnx-int8" in eligible and max(eligible, key=lambda n: rates[n]) == "onnx-int8":
        floats = max((n for n in eligible if n != "onnx-int8"), key=lambda n: rates[n])
        if worth_checking(len(texts), rates[floats], rates["onnx-int8"]):
            agreement, checked = int8_agreement(built[floats], built["onnx-int8"], texts, batch_size)
        else:
            unmeasured.append("onnx-int8")  # too small a run to check its retrieval: a larger run will
        if agreement is None or agreement < INT8_MIN_AGREEMENT:
            eligible.remove("onnx-int8")
    name = max(eligible, key=lambda n: rates[n])
    record = {
        "choice": name,
        "cpu": cpu,
        "texts_per_second": rates,
        "min_cosine_to_float32": cosines,
        "measured_on": len(positions),
        "seconds": seconds,
    }
    if retimed:
        record["retimed"] = retimed
    if agreement is not None:
        record["int8_top10_agreement"] = agreement
    if unmeasured:
        record["unmeasured"] = unmeasured
    log.info("document encoder: %s", record)
    return EncoderChoice(name, built[name], record, None if reference is None else (positions, reference), checked)


def timing_groups(n_texts: int, size: int) -> list[list[int]]:
    """Positions of the texts each candidate is timed on, in texts sorted longest first: `size` texts in two equal
    groups at the middles of the run's longer and shorter halves (one group at its middle when size is 1), each
    group embedded as a batch of its own, so that each is padded only to its own longest text as the run's batches
    of neighbours by length are.

    Why not the run's longest texts, as before: the paths' rates differ with length. On the AMD EPYC of RESULTS.md's
    throughput-epyc section the int8 graph's lead over bf16 on a run's longest texts was well under its lead over
    the whole run, enough to leave int8 out of a build it would have sped up; timed at the middles of the two halves
    (a midpoint estimate of the run's mean cost per text), the lead came out near the whole run's."""
    if size <= 1 or n_texts < 2 * size:
        middle = max(0, (n_texts - size) // 2)
        return [list(range(middle, min(n_texts, middle + size)))]
    half = size // 2
    return [
        list(range(c - half // 2, c - half // 2 + n))
        for c, n in ((n_texts // 4, half), (3 * n_texts // 4, size - half))
    ]


def timed(encoder: Encoder, groups: list[list[str]], batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds `encoder` took to embed each group of texts as a batch of its own, and the vectors, in order."""
    t = time.perf_counter()
    x = np.concatenate([encoder.encode_documents(group, batch_size=batch_size) for group in groups])
    return time.perf_counter() - t, x


def worth_checking(n_texts: int, float_rate: float, int8_rate: float) -> bool:
    """Whether int8's retrieval check pays for itself in a run of n_texts (rates in texts/s, as measured).

    The check embeds AGREEMENT_TEXTS of the run with the float path and the int8 graph, and the float vectors are
    kept for the index whichever path wins. So if int8 fails, what is lost is the int8 half alone; if it passes, the
    run takes AGREEMENT_TEXTS at the float rate and every text at the int8 rate, against every text at the float rate.
    Checked when the loss is at most CHECK_SHARE of the gain."""
    lost = AGREEMENT_TEXTS / int8_rate
    gained = n_texts / float_rate - (AGREEMENT_TEXTS / float_rate + n_texts / int8_rate)
    return gained > 0 and lost <= CHECK_SHARE * gained


def retime_close(
    rates: dict[str, float],
    seconds: dict[str, float],
    built: dict[str, Encoder],
    sample: list[list[str]],
    batch_size: int,
) -> list[str]:
    """When the two fastest candidates' rates are within CLOSE of each other, time both again on the same sample, in
    turn, and keep each one's better rate (`rates` and `seconds` updated); the names re-timed.

    Why: one short timing can rank two close paths the wrong way round. On the AMD EPYC of RESULTS.md's
    throughput-epyc section a first build timed bf16 just above the int8 graph and chose it, where the whole run
    embeds with int8 far faster; the same 8 texts timed again in the benchmark ranked int8 first every time. A second
    timing costs two short batches, and only when the call is close."""
    top = sorted(rates, key=lambda n: rates[n], reverse=True)[:2]
    if len(top) < 2 or rates[top[0]] > CLOSE * rates[top[1]]:
        return []
    for name in reversed(top):
        elapsed, _ = timed(built[name], sample, batch_size)
        rates[name] = max(rates[name], round(sum(map(len, sample)) / elapsed, 1))
        seconds[name] = round(seconds[name] + elapsed, 2)
    return top


def int8_agreement(
    floats: Encoder, int8: Encoder, texts: list[str], batch_size: int
) -> tuple[float, tuple[list[int], np.ndarray]]:
    """Top-10 agreement of int8 document vectors with a float path's, the run's own texts as the collection and as
    the queries: AGREEMENT_TEXTS texts spread over the run, each of the first AGREEMENT_QUERIES (its float vector, as
    a query is always embedded) searching the others both ways; the share of top-10 places the two lists share.
    Also the texts' positions and float vectors, for the run to keep."""
    picked = sorted(set(np.linspace(0, len(texts) - 1, min(AGREEMENT_TEXTS, len(texts))).astype(int).tolist()))
    sample = [texts[i] for i in picked]
    exact = floats.encode_documents(sample, batch_size=batch_size)
    agreement = top_agreement(exact, int8.encode_documents(sample, batch_size=batch_size), AGREEMENT_QUERIES)
    return agreement, (picked, exact)


def top_agreement(exact: np.ndarray, other: np.ndarray, n_queries: int, k: int = 10) -> float:
    """The share of top-k places two versions of a collection's vectors agree on (metrics.top_overlap), the first
    n_queries rows of `exact` searching the rest (a row never finds itself)."""
    queries = exact[:n_queries]

    def rankings(docs: np.ndarray) -> list[list[tuple[str, float]]]:
        scores = (queries @ docs.T).tolist()
        return [[(str(j), s) for j, s in enumerate(row) if j != i] for i, row in enumerate(scores)]

    return round(top_overlap(rankings(exact), rankings(other), k=k), 4)


def worth_preparing(export: Path, onnx_seconds: float, n_texts: int, best_rate: float) -> bool:
    """Whether the int8 graph is worth measuring in a run of n_texts: yes once it exists; otherwise only when making
    and measuring it, estimated as the export's own time (quantising walks the same weights) plus what measuring
    the float graph took, costs at most PREPARE_SHARE of the run's embedding at the best rate measured so far. An
    estimate, and a low one: for MiniLM on the 2-core Xeon with AMX the export took ~0.9 s (export_seconds in the
    benchmark's encoder.json) and measuring the float graph 0.61 s, where making and measuring the int8 graph took
    2.02 s (RESULTS.md, throughput). A small folder (~10 s of embedding) skips it; a later, larger run measures it
    (worth_remeasuring)."""
    from .onnx_encoder import INT8_MODEL

    if (export / INT8_MODEL).is_file():
        return True
    try:
        exported = float(orjson.loads((export / "encoder.json").read_bytes()).get("export_seconds", 0.0))
    except (OSError, orjson.JSONDecodeError, TypeError, ValueError):
        exported = 0.0
    return exported + onnx_seconds <= PREPARE_SHARE * n_texts / best_rate
