"""Label-free fine-tuning end to end and switching an index to the tuned model (adopt.py), with small randomly
initialised BERTs trained here: a model and a comparison come out, the switch is one atomic generation, a kill
mid-way leaves the old index answering and the next run resumes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_corpus
from models import random_bert

from searcher import IndexConfig, Searcher, build_index
from searcher.adopt import adopt_model
from searcher.cli import cli
from searcher.config import LABEL_FREE
from searcher.errors import InvalidInputError, ModelError
from searcher.store import PENDING, read_manifest
from searcher.train import FinetuneConfig, finetune

pytestmark = pytest.mark.model

TOPICS = ["owls", "trains", "tomatoes", "volcanoes", "glaciers", "violins", "comets", "bees", "ships", "clocks"]
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return random_bert(tmp_path_factory.mktemp("base") / "tiny", hidden=128, layers=1, max_seq_length=64)


@pytest.fixture(scope="module")
def built(tmp_path_factory, base):
    """An index of 24 small documents built with the tiny base model."""
    root = tmp_path_factory.mktemp("adopt")
    docs = {
        f"{topic}-{n}.md": f"# Notes on the {topic} of valley {n}\n\n"
        + " ".join(f"The {topic} of valley {n} have feature {j}. Many find it odd, case {n * 7 + j}." for j in range(8))
        for n, topic in enumerate(TOPICS * 2 + TOPICS[:4])
    }
    write_corpus(root / "docs", docs)
    build_index(root / "docs", root / "idx", IndexConfig(model=str(base), chunk_tokens=48, overlap_tokens=8))
    return root / "idx"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, built):
    """A label-free model trained on the index's chunks (the index's own model is the base)."""
    out = tmp_path_factory.mktemp("tuned") / "model"
    cwd, work = os.getcwd(), tmp_path_factory.mktemp("cwd")
    os.chdir(work)  # where a user runs it from: the evaluation's indexes must not land here
    try:
        report = finetune(built, out, FinetuneConfig(batch_size=8))
    finally:
        os.chdir(cwd)
    return out, report, work


@pytest.fixture
def index(tmp_path, built):
    shutil.copytree(built, tmp_path / "idx")
    return tmp_path / "idx"


def test_label_free_run_makes_a_model_and_a_comparison(built, base, tuned):
    out, report, work = tuned
    assert report.label_free and report.base_model == str(base)
    # the held-out comparison's indexes were scratch: nothing in the working directory, nothing beside the model
    assert list(work.iterdir()) == [] and sorted(p.name for p in out.parent.iterdir()) == ["model"]
    assert report.steps > 0 and "label-free triplets" in report.data
    assert report.verdict in ("better", "not better") and report.hybrid_gain_low is not None
    if report.better:
        assert report.after["hybrid"]["ndcg@10"] > report.before["hybrid"]["ndcg@10"]
        assert report.after["two-stage"]["ndcg@10"] >= report.before["two-stage"]["ndcg@10"] - 0.005
    assert (out / "heldout" / "qrels" / "test.tsv").is_file(), "the held-out pseudo-queries stay with the model"
    card = (out / "README.md").read_text()
    assert "MarginMSELoss" in card and f"Weights: {LABEL_FREE[2]:g} of the trained model's" in card
    assert not (out / "index").exists(), "no scratch index is left in the model"
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out), device="cpu").encode(["owls"]).shape == (1, 128)


def test_adopting_switches_the_index_in_one_generation(index, tuned):
    out, _, _ = tuned
    before = read_manifest(index)
    with Searcher(index) as s:
        old_hits = s.search("owls of valley 3", k=3, per_doc=False)
    cwd = os.getcwd()
    os.chdir(out.parent)  # the model named by a relative path, as a user in its folder would
    try:
        report = adopt_model(index, out.name)
    finally:
        os.chdir(cwd)
    after = read_manifest(index)
    assert after.generation == report.generation > before.generation
    # stored absolute: a later update from any folder loads the same model
    assert after.model.name == str(out) and after.config.model == str(out)
    # ... and an index 0.2.0 adopted with a relative path reads as the model's absolute path
    manifest = index / "manifest.json"
    saved = manifest.read_bytes()
    manifest.write_bytes(saved.replace(f'"model": "{out}"'.encode(), b'"model": "model"', 1))
    assert b'"model": "model"' in manifest.read_bytes() and read_manifest(index).config.model == str(out)
    manifest.write_bytes(saved)
    assert (after.documents, after.chunks, after.sources) == (before.documents, before.chunks, before.sources)
    assert report.embedded == after.chunks
    with Searcher(index) as s:
        new_hits = s.search("owls of valley 3", k=3, per_doc=False)
        assert s.encoder.info.same_weights(after.model)
    assert {h.text for h in new_hits} and [h.cosine for h in new_hits] != [h.cosine for h in old_hits]
    with pytest.raises(InvalidInputError, match="already uses"):
        adopt_model(index, str(out))


def test_a_kill_mid_way_leaves_the_old_index_answering_and_the_next_run_resumes(index, tuned):
    out, _, _ = tuned
    before = read_manifest(index)
    with Searcher(index) as s:
        old = [(h.id, h.score) for h in s.search("tomatoes of valley 2", k=5, per_doc=False)]
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from searcher.adopt import adopt_model\n"
            "def progress(phase, done, total, **extra):\n"
            "    if phase == 'write':\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "adopt_model(sys.argv[1], sys.argv[2], progress=progress)\n",
            str(index),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )
    assert child.returncode == -9, child.stderr
    assert read_manifest(index) == before
    with Searcher(index) as s:
        assert [(h.id, h.score) for h in s.search("tomatoes of valley 2", k=5, per_doc=False)] == old
    assert any((index / PENDING).rglob("*.npy")), "the embeddings made before the kill are kept"
    report = adopt_model(index, str(out))
    assert report.embedded == 0 and report.reused == before.chunks, "the second run embeds nothing again"
    assert read_manifest(index).model.name == str(out)


def test_a_model_whose_window_the_chunks_overflow_is_refused(index, tmp_path):
    small = random_bert(tmp_path / "small", hidden=64, layers=1, max_seq_length=16)
    before = read_manifest(index)
    with pytest.raises(ModelError, match="--rebuild --model"):
        adopt_model(index, str(small))
    assert read_manifest(index) == before


def test_finetune_index_cli_reports_the_verdict_and_acts_on_it(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert "DATA to train on or --index" in runner.invoke(cli, ["finetune"]).output
    result = runner.invoke(cli, ["finetune", "--index", str(index), "-o", "m", "--batch-size", "8", "-q"])
    assert result.exit_code == 0, result.output
    model = read_manifest(index).model.name
    if "the tuned model is better" in result.output:
        assert model == str(tmp_path / "m") and "now uses it" in result.output
    else:
        assert "is not better" in result.output and "keeps its model" in result.output
        assert model != str(tmp_path / "m")
