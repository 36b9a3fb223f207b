"""End to end with real models: the bundled MiniLM and a randomly initialised 1024-dim BERT."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from models import random_bert

from searcher import Searcher, open_index
from searcher.chunking import embedding_input
from searcher.cli import cli

pytestmark = pytest.mark.model


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def bert1024(tmp_path_factory):
    return random_bert(tmp_path_factory.mktemp("models") / "bert1024", hidden=1024)


def test_bundled_model_indexes_and_answers(tmp_path, corpus, minilm, monkeypatch):
    import searcher.indexer
    import searcher.search

    # The session's loaded MiniLM, so this test does not load it again; the name path is tested below.
    monkeypatch.setattr(searcher.indexer, "load_encoder", lambda name: minilm)
    monkeypatch.setattr(searcher.search, "load_encoder", lambda name: minilm)
    idx = tmp_path / "idx"
    run("index", corpus, "--index", idx, "-q")
    hits = [
        json.loads(line) for line in run("query", "which birds hunt in the dark", "--index", idx, "--json").splitlines()
    ]
    assert hits[0]["source"].endswith("birds.md")
    manifest = open_index(idx).manifest
    assert (manifest.model.name, manifest.model.dim, manifest.model.max_seq_length) == (
        "sentence-transformers/all-MiniLM-L6-v2",
        384,
        256,
    )
    assert "0 chunks embedded" in run("index", corpus, "--index", idx, "-q")


def test_1024_dim_bert_end_to_end(tmp_path, corpus, bert1024):
    idx = tmp_path / "idx"
    out = run("index", corpus, "--index", idx, "--model", bert1024, "--chunk-tokens", 48, "-q")
    assert "5 indexed" in out
    index = open_index(idx)
    m = index.manifest
    assert m.model.dim == 1024 and m.model.name == str(bert1024) and m.model.query_prompt == "query: "
    assert index.full.shape == (m.chunks, 1024)
    assert m.config.full_storage == "mixed"  # the default storage, at 1024 dims
    assert np.load(index.path / "full.mx8.npy", mmap_mode="r").shape == (m.chunks, 1024 + 64)  # float16 head
    # unit vectors although the model has no Normalize module (the int8 tail decodes to within ~1e-3 of them)
    np.testing.assert_allclose(np.linalg.norm(index.full[np.arange(m.chunks)], axis=1), 1.0, atol=3e-3)
    assert index.load_coarse().d == m.projection.coarse_dim == 64
    with Searcher(idx) as searcher:
        lengths = searcher.encoder.input_lengths([embedding_input(r["title"], r["text"]) for r in index.iter_chunks()])
        assert max(lengths) <= 48
        hits = searcher.search("owls", k=3)
        assert len(hits) == 3
        D_full, I_full = searcher.search_vectors(searcher.encoder.encode_queries(["owls"]), k=3, mode="full")
        assert [h.id for h in hits] == list(I_full[0]), "shortlist covers this tiny index: two-stage is exact"


def test_query_prompt_is_applied(tmp_path, bert1024):
    from searcher.encoder import load_encoder

    enc = load_encoder(str(bert1024))
    q = enc.encode_queries(["owls"])[0]
    d = enc.encode_documents(["owls"])[0]
    d_with_prompt = enc.encode_documents(["query: owls"])[0]
    assert not np.allclose(q, d, atol=1e-4)
    np.testing.assert_allclose(q, d_with_prompt, atol=1e-5)


@pytest.mark.slow
def test_console_script_with_the_default_model(tmp_path, corpus):
    """The installed `searcher` command, as a user runs it: new processes, the bundled model by name."""
    idx = str(tmp_path / "idx")
    index = subprocess.run(["searcher", "index", str(corpus), "--index", idx, "-q"], capture_output=True, text=True)
    assert index.returncode == 0, index.stderr
    query = subprocess.run(
        [sys.executable, "-m", "searcher", "query", "growing tomatoes in the sun", "--index", idx, "-k", "1"],
        capture_output=True,
        text=True,
    )
    assert query.returncode == 0, query.stderr
    assert "gardening.html" in query.stdout and query.stderr == ""


def test_an_update_that_finds_nothing_changed_never_imports_torch(tmp_path, corpus, minilm):
    from searcher import IndexConfig, build_index

    exact = IndexConfig(full_storage="float32")  # stored as embedded, to compare vectors below
    build_index(corpus, tmp_path / "idx", exact, encoder=minilm)
    code = (
        "import sys, json\nfrom searcher import build_index\n"
        f"r = build_index({str(corpus)!r}, {str(tmp_path / 'idx')!r})\n"
        "print(json.dumps([r.unchanged, r.embedded, 'torch' in sys.modules, 'sentence_transformers' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [5, 0, False, False]
    # A small edit is chunked and embedded with the index's ONNX graph: still no torch
    # (encoder_choice.small_edit_limit).
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice, then simmer it.\n")
    done = subprocess.run(
        [sys.executable, "-c", code.replace("r.embedded,", "r.embedded, r.embedded_with,")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    unchanged, embedded, path, torch, st = json.loads(done.stdout)
    assert (unchanged, embedded, torch, st) == (4, 1, False, False) and path.startswith("onnx"), done.stdout
    build_index(corpus, tmp_path / "ref", exact, encoder=minilm)  # the same folder embedded with torch, anew

    def stored(name):  # in the model's own frame: each index has its own projection, a pca one its own rotation
        index = open_index(tmp_path / name)
        (record,) = [r for r in index.iter_chunks() if r["source"].endswith("cooking.md")]
        x = np.asarray(index.full[index.rows_of(np.array([record["id"]]))][0], dtype=np.float32)
        return x if index.rotation is None else x @ index.rotation.T

    a, b = stored("idx"), stored("ref")
    assert float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b)) > 0.999, "the graph's vector is the model's"
