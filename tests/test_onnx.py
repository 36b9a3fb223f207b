"""The exported torch-free encoder: same vectors as sentence-transformers, and a query path without torch."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from models import random_bert

from searcher import build_index, open_index
from searcher.cli import cli
from searcher.onnx_encoder import OnnxEncoder, export_onnx

pytestmark = pytest.mark.model

TEXTS = [
    "What is the capital of France?",
    "Ünïcödé: façade, naïve, résumé - and emoji 🙂 too",
    "x",
    "   leading and trailing spaces   ",
    "A long passage. " * 300,  # beyond every window: truncated the same way
    "def f(x):\n    return x ** 2  # code\n\n\nwith blank lines",
]


@pytest.fixture(scope="module")
def bert1024_encoder(tmp_path_factory):
    from searcher.encoder import load_encoder

    return load_encoder(str(random_bert(tmp_path_factory.mktemp("m") / "bert1024", hidden=1024)))


@pytest.mark.parametrize("which", ["minilm", "bert1024_encoder"])
def test_exported_vectors_match_sentence_transformers(tmp_path, request, which):
    encoder = request.getfixturevalue(which)
    exported = OnnxEncoder(export_onnx(encoder, tmp_path / "encoder"))
    assert exported.info == encoder.info
    for method in ("encode_queries", "encode_documents"):
        ours, theirs = getattr(exported, method)(TEXTS, batch_size=4), getattr(encoder, method)(TEXTS)
        cosine = np.sum(ours * theirs, axis=1)
        assert cosine.min() >= 0.9999, (method, cosine)
    if encoder.info.query_prompt:  # the random BERT has a query prompt: queries and documents must differ
        assert not np.allclose(exported.encode_queries(TEXTS[:1]), exported.encode_documents(TEXTS[:1]), atol=1e-3)


def test_query_process_never_imports_torch(tmp_path, corpus, minilm):
    build_index(corpus, tmp_path / "idx", encoder=minilm)
    assert open_index(tmp_path / "idx").manifest.query_encoder
    code = (
        "import sys; from searcher.cli import cli; "
        f"cli(['query', 'owls at night', '--index', {str(tmp_path / 'idx')!r}, '-k', '1'], standalone_mode=False); "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "birds.md" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert result.stderr == ""


def test_index_without_exported_encoder_still_answers_with_a_notice(tmp_path, corpus, minilm, monkeypatch):
    import searcher.search

    build_index(corpus, tmp_path / "idx", encoder=minilm, export_encoder=False)  # like an index from before
    monkeypatch.setattr(searcher.search, "load_encoder", lambda name: minilm)
    result = CliRunner().invoke(cli, ["query", "owls", "--index", str(tmp_path / "idx"), "-k", "1"])
    assert result.exit_code == 0 and "birds.md" in result.stdout
    assert result.stderr.startswith("notice: this index has no usable torch-free query encoder")
    assert len(result.stderr.strip().splitlines()) == 1
    # Re-running `searcher index` exports one, without re-embedding anything.
    report = build_index(corpus, tmp_path / "idx", encoder=minilm)
    assert report.embedded == 0 and open_index(tmp_path / "idx").manifest.query_encoder


def test_model_that_cannot_be_exported_falls_back_to_torch(tmp_path, corpus, minilm, monkeypatch):
    import searcher.embedding
    from searcher.onnx_encoder import ExportError

    def fail(encoder, out_dir):
        raise ExportError("unsupported operator")

    monkeypatch.setattr(searcher.embedding, "export_onnx", fail)
    report = build_index(corpus, tmp_path / "idx", encoder=minilm)
    assert any("could not export the model for torch-free queries (unsupported operator)" in w for w in report.warnings)
    assert open_index(tmp_path / "idx").manifest.query_encoder is None


def test_exported_encoder_is_kept_across_updates_and_replaced_on_rebuild(tmp_path, corpus, minilm):
    idx = tmp_path / "idx"
    build_index(corpus, idx, encoder=minilm)
    name = open_index(idx).manifest.query_encoder
    (corpus / "new.txt").write_text("Fresh notes about comets.")
    build_index(corpus, idx, encoder=minilm)
    assert open_index(idx).manifest.query_encoder == name
    assert sorted(p.name for p in idx.iterdir() if p.name.startswith("encoder-")) == [name]


def test_indexing_with_the_faster_encoder_gives_the_models_vectors(tmp_path, corpus, minilm):
    from searcher import IndexConfig
    from searcher.chunking import embedding_input

    report = build_index(
        corpus, tmp_path / "idx", IndexConfig(batch_size=1, full_storage="float32"), encoder=minilm
    )  # >= 6 batches: it measures
    from searcher.encoder_choice import INT8_MIN_COSINE

    assert report.embedded_with in ("onnx", "onnx-int8", "torch", "torch-bf16") and report.embedded >= 4
    index = open_index(tmp_path / "idx")
    stored = np.asarray(index.full) @ index.rotation.T if index.rotation is not None else np.asarray(index.full)
    expected = minilm.encode_documents([embedding_input(r["title"], r["text"]) for r in index.iter_chunks()])
    # the int8 graph has its own, measured bar (encoder_choice.INT8_DOCUMENTS); every other path gives the model's
    # vectors
    bar = INT8_MIN_COSINE if report.embedded_with == "onnx-int8" else 0.9999
    assert np.sum(stored * expected, axis=1).min() >= bar


def test_vectors_the_int8_check_made_are_kept_as_the_float_paths(tmp_path, minilm, monkeypatch):
    """A run long enough to make and check the int8 graph (the rules patched so this small one is): every stored
    vector is its text's, and the texts int8's retrieval check embedded with a float path keep those vectors - here
    all of them, the run being smaller than the check's sample - so none is embedded twice."""
    from conftest import write_corpus

    import searcher.encoder_choice
    from searcher import IndexConfig
    from searcher.chunking import embedding_input

    monkeypatch.setattr(searcher.encoder_choice, "PREPARE_SHARE", 1e6)
    monkeypatch.setattr(searcher.encoder_choice, "worth_checking", lambda *a: True)  # checked, however short
    corpus = write_corpus(
        tmp_path / "docs", {f"n{i}.txt": f"Note {i} about topic {i % 5}, in a few plain words." for i in range(12)}
    )
    report = build_index(corpus, tmp_path / "idx", IndexConfig(batch_size=1, full_storage="float32"), encoder=minilm)
    index = open_index(tmp_path / "idx")
    record = index.manifest.document_encoder
    if record is None:
        pytest.skip("this CPU offers one document-encoder path only: nothing to measure")
    assert "onnx-int8" in record["texts_per_second"]
    stored = np.asarray(index.full) @ index.rotation.T if index.rotation is not None else np.asarray(index.full)
    expected = minilm.encode_documents([embedding_input(r["title"], r["text"]) for r in index.iter_chunks()])
    # int8 is chosen only after its check, which embedded every text of this run with a float path: whichever path
    # won, each stored vector is a float path's (int8's own are further from float32: INT8_MIN_COSINE)
    assert report.embedded_with in record["texts_per_second"]
    assert np.sum(stored * expected, axis=1).min() >= 0.9999


def test_the_document_encoder_is_chosen_by_measurement_and_recorded(tmp_path, minilm):
    from searcher.encoder import cpu_has_bf16, cpu_name
    from searcher.encoder_choice import MIN_COSINE, choose_document_encoder

    texts = [f"Sentence number {i} says something about topic {i % 7} in plain words." for i in range(6 * 8)]
    seen = []
    choice = choose_document_encoder(minilm, None, texts, 8, None, lambda *a: seen.append(a))
    record = choice.record
    expected = {"torch", "torch-bf16"} if cpu_has_bf16() else {"torch"}
    if expected == {"torch"}:
        assert record is None and choice.name == "torch" and not seen
        return
    assert seen == [("measure", i, len(expected)) for i in range(len(expected) + 1)]  # the wait is shown
    assert set(record["texts_per_second"]) == expected == set(record["seconds"]) and record["cpu"] == cpu_name()
    assert choice.name == record["choice"] and record["min_cosine_to_float32"]["torch"] == 1.0
    assert choice.name == "torch" or record["min_cosine_to_float32"][choice.name] >= MIN_COSINE
    positions, vectors = choice.sample  # timed at the middles of the run's two halves, vectors kept for the run
    assert positions == [*range(10, 14), *range(34, 38)] and vectors.shape == (8, minilm.info.dim)
    np.testing.assert_allclose(vectors, minilm.encode_documents([texts[i] for i in positions]), atol=1e-5)
    # Too little to measure: the previous choice on this CPU stands.
    again = choose_document_encoder(minilm, None, texts[:3], 8, record)
    assert again.name == record["choice"] and again.record == record
    # ... but one made on another CPU, or naming a path this run does not offer (no export here), does not: the run
    # embeds with float32 and keeps no record, so the manifest never names a path its vectors did not come from
    for other in ({**record, "cpu": "another CPU"}, {**record, "choice": "onnx-int8"}):
        small = choose_document_encoder(minilm, None, texts[:3], 8, other)
        assert small.name == "torch" and small.record is None


def test_a_known_choice_is_measured_again_only_when_that_costs_little_of_the_run():
    from searcher.encoder_choice import REMEASURE_SHARE, worth_remeasuring

    record = {"choice": "torch-bf16", "texts_per_second": {"torch": 30.0, "torch-bf16": 75.0}, "measured_on": 32}
    cost = 36 / 30.0 + 36 / 75.0  # seconds the two candidates took, warm-up included
    break_even = cost / REMEASURE_SHARE * 75.0  # texts whose embedding takes cost / REMEASURE_SHARE seconds
    assert not worth_remeasuring(record, int(break_even * 0.9))
    assert worth_remeasuring(record, int(break_even * 1.1) + 1)
    assert worth_remeasuring({"choice": "torch"}, 10)  # a record without rates: measure
    # what the measurement took, loading included, when the record has it (exports, int8 quantisation)
    assert not worth_remeasuring({**record, "seconds": {"torch": 2.0, "torch-bf16": 8.0}}, int(break_even * 1.1) + 1)


def test_the_int8_graph_embeds_documents_close_to_the_float_graph_and_is_a_measured_candidate(
    tmp_path, minilm, monkeypatch
):
    import searcher.encoder_choice
    from searcher.encoder_choice import AGREEMENT_TEXTS, INT8_MIN_COSINE, choose_document_encoder, int8_agreement
    from searcher.onnx_encoder import INT8_MODEL, OnnxEncoder, export_onnx, quantize_int8

    export = export_onnx(minilm, tmp_path / "enc")
    texts = [f"Sentence number {i} says something about topic {i % 7} in plain words." for i in range(6 * 8)]
    monkeypatch.setattr(searcher.encoder_choice, "INT8_DOCUMENTS", True)
    # a run this short cannot pay for making the int8 graph: measured without it, and said so
    short = choose_document_encoder(minilm, export, texts, 8, None)
    assert short.record["unmeasured"] == ["onnx-int8"] and "onnx-int8" not in short.record["texts_per_second"]
    assert "onnx" in short.record["texts_per_second"] and not (export / INT8_MODEL).exists()
    assert (
        quantize_int8(export) == export / INT8_MODEL
        and (export / INT8_MODEL).stat().st_size < (export / "model.onnx").stat().st_size / 2
    )
    float_graph, int8_graph = OnnxEncoder(export), OnnxEncoder(export, int8=True)
    int8_vectors = int8_graph.encode_documents(texts)
    cosines = np.sum(float_graph.encode_documents(texts) * int8_vectors, axis=1)
    assert 0.95 < cosines.min() < 0.99999  # close, and not the float graph under another name
    # a text's vector is its own, whatever else is in its batch: incremental, resumed and clean builds agree
    alone = np.vstack([int8_graph.encode_documents([t]) for t in texts[:5]])
    shuffled = int8_graph.encode_documents([texts[40] * 3, *texts[:5]], batch_size=32)[1:]
    assert np.array_equal(alone, int8_vectors[:5]) and np.array_equal(shuffled, int8_vectors[:5])
    # once made, it costs no more than any other candidate to measure
    monkeypatch.setattr(searcher.encoder_choice, "worth_checking", lambda *a: True)  # checked, however short
    choice = choose_document_encoder(minilm, export, texts, 8, None)
    record = choice.record
    assert "onnx-int8" in record["texts_per_second"] and "unmeasured" not in record
    assert choice.name != "onnx-int8" or record["min_cosine_to_float32"]["onnx-int8"] >= INT8_MIN_COSINE
    # int8 is used only with its retrieval checked: where it is the fastest, its top-10 agreement is in the record
    fastest = max(record["texts_per_second"], key=record["texts_per_second"].get)
    close = record["min_cosine_to_float32"]["onnx-int8"] >= INT8_MIN_COSINE
    assert (fastest == "onnx-int8" and close) == ("int8_top10_agreement" in record)
    monkeypatch.setattr(searcher.encoder_choice, "INT8_MIN_AGREEMENT", 1.01)  # a bar no graph meets
    assert choose_document_encoder(minilm, export, texts, 8, None).name != "onnx-int8"
    # the check's float vectors are the float path's own, returned with their texts' positions for the run to keep
    agreement, (picked, kept) = int8_agreement(float_graph, int8_graph, texts, 8)
    assert 0.5 < agreement <= 1 and picked == sorted(set(picked)) and len(picked) == min(AGREEMENT_TEXTS, len(texts))
    assert np.array_equal(kept, float_graph.encode_documents([texts[i] for i in picked], batch_size=8))


def test_top10_agreement_counts_shared_places():
    from searcher.encoder_choice import top_agreement

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    near = x + 0.02 * rng.standard_normal(x.shape).astype(np.float32)
    unrelated = rng.standard_normal(x.shape).astype(np.float32)
    assert top_agreement(x, x, 50) == 1.0
    assert 0.8 < top_agreement(x, near, 50) < 1.0
    assert top_agreement(x, unrelated, 50) < 0.2
    assert top_agreement(x[:1], x[:1], 1) == 1.0  # nothing to search: nothing to disagree on


def test_the_int8_graph_is_made_only_in_a_run_that_can_pay_for_it(tmp_path):
    import orjson

    from searcher.encoder_choice import PREPARE_SHARE, worth_preparing
    from searcher.onnx_encoder import INT8_MODEL

    export = tmp_path / "enc"
    export.mkdir()
    (export / "encoder.json").write_bytes(orjson.dumps({"export_seconds": 2.0}))
    cost = 2.0 + 1.0  # the export's seconds (quantising walks the same weights) and measuring the float graph
    break_even = cost / PREPARE_SHARE * 50.0  # texts whose embedding at 50 texts/s takes cost / PREPARE_SHARE
    assert not worth_preparing(export, 1.0, int(break_even * 0.9), 50.0)
    assert worth_preparing(export, 1.0, int(break_even * 1.1), 50.0)
    (export / INT8_MODEL).write_bytes(b"made")  # made by an earlier run: nothing left to pay for
    assert worth_preparing(export, 1.0, 10, 50.0)


def test_a_new_index_of_the_same_model_reuses_the_measured_choice(tmp_path, minilm):
    from conftest import write_corpus

    from searcher import IndexConfig
    from searcher.home import remembered_choice

    corpus = write_corpus(
        tmp_path / "docs", {f"n{i}.txt": f"Note {i} about topic {i % 5}, in a few plain words." for i in range(12)}
    )
    config = IndexConfig(batch_size=1, full_storage="float32")  # 12 batches: the first index measures
    first = build_index(corpus, tmp_path / "a", config, encoder=minilm)
    measured = open_index(tmp_path / "a").manifest.document_encoder
    if measured is None:
        pytest.skip("this CPU offers one document-encoder path only: nothing to measure")
    assert remembered_choice(minilm.info.weights_id()) == measured
    second = build_index(corpus, tmp_path / "b", config, encoder=minilm)
    # the same record, rates and all: taken over, not measured again
    assert open_index(tmp_path / "b").manifest.document_encoder == measured
    assert second.embedded_with == first.embedded_with == measured["choice"]


def test_an_index_graph_is_opened_once_per_process_until_its_folder_changes(tmp_path, minilm):
    import os

    from searcher.encoder_choice import open_graph

    export_onnx(minilm, tmp_path / "idx" / "enc")
    first = open_graph(tmp_path / "idx", "enc", minilm.info)
    assert first is not None and open_graph(tmp_path / "idx", "enc", minilm.info) is first
    meta = tmp_path / "idx" / "enc" / "encoder.json"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns + 1_000_000))  # re-exported in place
    again = open_graph(tmp_path / "idx", "enc", minilm.info)
    assert again is not None and again is not first
    assert open_graph(tmp_path / "idx", "missing", minilm.info) is None


def test_an_index_embedded_with_int8_embeds_its_edits_with_int8_too(tmp_path, corpus, minilm):
    """Where the index's documents were embedded with the int8 graph on this CPU (its retrieval check passed), an
    edit is embedded with that graph too, torch not loaded: as the rest were, at the chosen path's rate."""
    import orjson

    from searcher import IndexConfig
    from searcher.chunking import embedding_input
    from searcher.encoder import cpu_name
    from searcher.encoder_choice import INT8_MIN_COSINE
    from searcher.onnx_encoder import quantize_int8

    idx = tmp_path / "idx"
    build_index(corpus, idx, IndexConfig(full_storage="float32"), encoder=minilm)
    manifest = orjson.loads((idx / "manifest.json").read_bytes())
    quantize_int8(idx / manifest["query_encoder"])
    # as a build that chose int8 records it (the choice itself is measured: test_the_int8_graph_embeds_...)
    manifest["document_encoder"] = {"choice": "onnx-int8", "cpu": cpu_name(), "texts_per_second": {"onnx-int8": 50.0}}
    (idx / "manifest.json").write_bytes(orjson.dumps(manifest))
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice, then simmer it covered.\n")
    report = build_index(corpus, idx, changed=[corpus / "cooking.md"])
    assert report.embedded == 1 and report.embedded_with.startswith("onnx-int8"), report.embedded_with
    index = open_index(idx)
    (record,) = [r for r in index.iter_chunks() if r["source"].endswith("cooking.md")]
    stored = np.asarray(index.full[index.rows_of(np.array([record["id"]]))], dtype=np.float32)
    stored = stored @ index.rotation.T if index.rotation is not None else stored
    exact = minilm.encode_documents([embedding_input(record["title"], record["text"])])
    cosine = float(np.sum(stored * exact))
    assert INT8_MIN_COSINE <= cosine < 0.99999, "the int8 graph's vector: close to float32, not float32's own"
    # on another CPU the record is not this machine's measurement: the float graph (or torch) embeds instead
    manifest = orjson.loads((idx / "manifest.json").read_bytes())
    manifest["document_encoder"]["cpu"] = "another CPU"
    (idx / "manifest.json").write_bytes(orjson.dumps(manifest))
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice, then simmer it for twenty minutes.\n")
    report = build_index(corpus, idx, changed=[corpus / "cooking.md"])
    assert report.embedded == 1 and not report.embedded_with.startswith("onnx-int8"), report.embedded_with


def test_two_close_candidates_are_timed_again_and_keep_their_better_rate():
    import time

    from searcher.encoder_choice import CLOSE, retime_close

    class Paced:
        """Embeds at a set pace: what retime_close reads is the time it takes."""

        def __init__(self, seconds: float) -> None:
            self.seconds, self.calls = seconds, 0

        def encode_documents(self, texts, batch_size=32):
            self.calls += 1
            time.sleep(self.seconds * len(texts) / 8)  # self.seconds for the 8 texts of the sample
            return np.zeros((len(texts), 4), np.float32)

    sample = [["a text"] * 4, ["another"] * 4]  # two groups, each embedded as a batch (timing_groups)
    slow, fast, third = Paced(0.08), Paced(0.02), Paced(0.0)
    # the first timing put the truly faster path just behind (a slow first run): close, so both are timed again
    rates = {"slow": 100.0, "fast": 100.0 / CLOSE + 1, "third": 10.0}
    seconds = {"slow": 0.5, "fast": 0.5, "third": 0.5}
    built = {"slow": slow, "fast": fast, "third": third}
    assert sorted(retime_close(rates, seconds, built, sample, 8)) == ["fast", "slow"]
    assert rates["fast"] > 2 * rates["slow"] >= 200.0  # each keeps its better rate: the order now the true one
    assert (slow.calls, fast.calls, third.calls) == (2, 2, 0) and seconds["third"] == 0.5 < seconds["fast"]
    # far apart: the first timing stands, nothing is embedded again
    rates = {"slow": 100.0, "fast": 100.0 / CLOSE - 1}
    assert retime_close(rates, {"slow": 0.5, "fast": 0.5}, built, sample, 8) == [] and fast.calls == 2


def test_int8s_retrieval_check_runs_when_a_failure_would_cost_little_of_what_a_pass_saves():
    from searcher.encoder_choice import AGREEMENT_TEXTS, CHECK_SHARE, worth_checking

    float_rate, int8_rate = 30.0, 45.0
    lost = AGREEMENT_TEXTS / int8_rate  # int8's half of the check: the float half's vectors are kept either way

    def gained(n: int) -> float:
        return n / float_rate - (AGREEMENT_TEXTS / float_rate + n / int8_rate)

    # the run size where the loss is exactly CHECK_SHARE of the gain: n / f - A / f - n / i = lost / share
    even = (lost / CHECK_SHARE + AGREEMENT_TEXTS / float_rate) / (1 / float_rate - 1 / int8_rate)
    assert gained(even) == pytest.approx(lost / CHECK_SHARE)
    assert not worth_checking(int(even * 0.95), float_rate, int8_rate)
    assert worth_checking(int(even * 1.05) + 1, float_rate, int8_rate)
    assert not worth_checking(10**6, 45.0, 45.0) and not worth_checking(10**6, 50.0, 45.0)  # nothing to gain
