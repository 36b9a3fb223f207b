"""`searcher eval` on a small BEIR set with the fake encoder, and on real data when ../shared/data exists."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA
from fakes import FakeEncoder

from searcher import IndexConfig
from searcher.cli import cli
from searcher.evaluate import evaluate, exact_prefix_search
from searcher.metrics import METRICS
from searcher.store import read_manifest

TOPICS = [
    "owls hunt at night",
    "tomatoes need sun",
    "the moon has craters",
    "rice needs water",
    "trains run on rails",
    "volcanoes erupt lava",
    "eagles nest on cliffs",
    "pasta boils in water",
]


@pytest.fixture
def beir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # indexes/eval/... lands in the test's own directory
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as f:
        for i, topic in enumerate(TOPICS):
            long_text = " ".join([f"{topic}, paragraph {j}." for j in range(12)])  # several chunks per document
            f.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": long_text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for i, topic in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{i}", "text": topic.split()[0] + " " + topic.split()[-1]}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(TOPICS)))
    )
    return root


def test_eval_reports_every_mode_and_dim(beir, fake):
    config = IndexConfig(model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=2)
    report = evaluate(beir, config=config, encoder=fake, shortlist=8)
    assert report.queries == len(TOPICS)
    assert set(report.modes) == {"hybrid", "dense", "lexical", "full", "coarse"} and list(report.dims) == [96, 64]
    for metrics in [*report.modes.values(), *report.dims.values()]:
        assert list(metrics) == list(METRICS) and all(0 <= v <= 1 for v in metrics.values())
    assert report.modes["full"]["ndcg@10"] > 0.9, "each query names its document's topic"
    assert report.modes["full"] == report.dims[96], "full width prefix search is exact search"
    assert 0 <= report.agreement <= 1
    assert set(report.latency_ms) == {"encode (torch)", "dense search", "full search", "hybrid search"}
    table = report.to_markdown()
    assert "| Metric | hybrid | dense | lexical | full | coarse | dim 96 | dim 64 |" in table
    assert "| **ndcg@10** |" in table


def test_second_eval_with_other_search_settings_embeds_nothing(beir, fake):
    config = IndexConfig(model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=2)
    evaluate(beir, config=config, encoder=fake, latency=False)
    embedded = len(fake.embedded)
    evaluate(beir, config=config.replace(projection="pca"), encoder=fake, shortlist=3, latency=False)
    assert len(fake.embedded) == embedded
    # Other chunking: a new index, but chunks with the same text come from the per-model cache.
    evaluate(beir, config=config.replace(chunk_tokens=30), encoder=fake, latency=False)
    assert len(fake.embedded) - embedded < embedded


def test_eval_after_the_model_was_retrained_at_the_same_name_starts_its_index_over(beir, fake):
    config = IndexConfig(model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=2)
    before = evaluate(beir, config=config, encoder=fake, latency=False)
    retrained = FakeEncoder(salt="new weights")  # same name, other vectors: `finetune --overwrite` into one path
    assert retrained.info.name == fake.info.name and not retrained.info.same_weights(fake.info)
    after = evaluate(beir, config=config, encoder=retrained, latency=False)
    assert after.index == before.index
    assert len(retrained.embedded) > 0, "the retrained model's vectors, not the old index's"
    assert read_manifest(Path(after.index)).model.same_weights(retrained.info)


def test_prefix_search_undoes_the_pca_rotation(beir, fake):
    from searcher import Searcher

    config = IndexConfig(
        model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=2, projection="pca"
    )
    report = evaluate(beir, config=config, encoder=fake, latency=False)
    searcher = Searcher(report.index, encoder=fake)
    xq = fake.encode_queries(["owls night"])
    D, I = exact_prefix_search(searcher, xq, dim=64, k=3)
    raw = {
        r["id"]: fake.encode_queries(
            [r["text"] if r["text"].startswith(r["title"]) else r["title"] + "\n" + r["text"]]
        )[0]
        for r in searcher.index.iter_chunks()
    }
    q = xq[0, :64] / np.linalg.norm(xq[0, :64])
    expected = sorted(((float(v[:64] @ q / np.linalg.norm(v[:64])), i) for i, v in raw.items()), reverse=True)[:3]
    np.testing.assert_allclose(D[0], [s for s, _ in expected], atol=1e-5)


def test_eval_cli_errors(tmp_path, monkeypatch, use_fake_encoder):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert (
        result.output.strip() == f"Error: {tmp_path}/nothing/corpus.jsonl is missing; "
        "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/"
    )


def test_eval_cli_json(beir, use_fake_encoder):
    result = CliRunner().invoke(
        cli, ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "--json", "-q", "--no-latency"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"] == len(TOPICS) and set(data["dims"]) == {"96", "64"}


@pytest.mark.model
@pytest.mark.skipif(not (SHARED_DATA / "aie5-simonw-llms").is_dir(), reason="../shared/data is not present")
def test_eval_on_the_first_model_cards_data(tmp_path, monkeypatch, minilm):
    monkeypatch.chdir(tmp_path)
    report = evaluate(SHARED_DATA / "aie5-simonw-llms", encoder=minilm, latency=False)
    assert report.queries == 24
    # All 102 chunks fit a 200-chunk shortlist, so two-stage search is exact here.
    assert report.modes["dense"] == report.modes["full"] and report.agreement == 1.0
    assert report.modes["full"]["ndcg@10"] > 0.5


def test_eval_reads_a_data_sets_quotes_and_dashes_as_text_not_as_phrases_and_exclusions(beir, fake):
    """A claim that quotes a term its answer paraphrases: read as a search box's phrase, it kept the answer out of
    the lexical ranking (only the passages holding the quote were allowed)."""
    config = IndexConfig(model=fake.info.name, full_storage="float32", chunk_tokens=24, overlap_tokens=2)
    queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]

    def run(q0: str):
        queries[0]["text"] = q0  # q0's answer is d0, about owls; d2 holds "the moon has craters"
        (beir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
        return evaluate(beir, config=config, encoder=fake, latency=False)

    quoted, plain = run('owls -hunt "moon has"'), run("owls hunt moon has")
    assert quoted.literal_queries == 1 and plain.literal_queries == 0
    assert quoted.modes["lexical"] == plain.modes["lexical"] and quoted.modes["hybrid"] == plain.modes["hybrid"]
    assert "1 of the 8 queries hold quotes or a word-leading minus: read as text" in quoted.to_markdown()


def test_eval_reports_what_indexing_dropped_and_judged_documents_it_lacks(beir, use_fake_encoder):
    with open(beir / "corpus.jsonl", "a") as f:
        f.write("{broken json\n")
        f.write(json.dumps({"_id": "d-empty", "title": "", "text": ""}) + "\n")  # judged, but nothing to index
    with open(beir / "qrels" / "test.tsv", "a") as f:
        f.write("q0\td-empty\t1\n")
    result = CliRunner().invoke(
        cli, ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "--json", "-q", "--no-latency"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["judged_not_indexed"] == ["d-empty"]
    assert data["corpus_documents"] == len(TOPICS) + 1 and data["indexed_documents"] == len(TOPICS)
    assert any("1 line(s) skipped" in w for w in data["warnings"])
    text = (
        CliRunner()
        .invoke(cli, ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "-q", "--no-latency"])
        .stdout
    )
    assert "1 judged document(s) not in the index" in text and "warning: " in text, "also when the index is reused"


def test_eval_leaves_out_a_document_with_the_querys_id_unless_told_to_keep_it(beir, use_fake_encoder):
    queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]
    with open(beir / "corpus.jsonl", "a") as f:  # as in ArguAna: each query is also a document, under its id
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "title": "", "text": q["text"]}) + "\n")
    args = ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "-q", "--no-latency"]
    left_out = CliRunner().invoke(cli, [*args, "--json"])
    kept = CliRunner().invoke(cli, [*args, "--json", "--keep-identical-ids"])
    assert left_out.exit_code == 0 and kept.exit_code == 0, left_out.output + kept.output
    left_out_data, kept_data = json.loads(left_out.stdout), json.loads(kept.stdout)
    assert left_out_data["identical_ids"] == kept_data["identical_ids"] == len(TOPICS)
    assert left_out_data["modes"]["full"]["ndcg@10"] > 0.9, "each query names its document's topic"
    assert kept_data["modes"]["full"]["ndcg@10"] < left_out_data["modes"]["full"]["ndcg@10"] - 0.1
    text = CliRunner().invoke(cli, args).stdout
    assert f"{len(TOPICS)} of the {len(TOPICS)} queries are themselves a document of the corpus" in text
    assert "left out of their rankings, as BEIR's evaluation does" in text


def test_eval_keeps_a_judged_document_that_only_shares_its_querys_number(beir, use_fake_encoder):
    # As the classic collections converted to BEIR: queries and documents both numbered from 1.
    corpus = [json.loads(line) for line in (beir / "corpus.jsonl").read_text().splitlines()]
    (beir / "corpus.jsonl").write_text("".join(json.dumps({**d, "_id": str(i)}) + "\n" for i, d in enumerate(corpus)))
    queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]
    (beir / "queries.jsonl").write_text("".join(json.dumps({**q, "_id": str(i)}) + "\n" for i, q in enumerate(queries)))
    (beir / "qrels" / "test.tsv").write_text("".join(f"{i}\t{i}\t1\n" for i in range(len(TOPICS))))
    args = ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "--json", "-q", "--no-latency"]
    data = json.loads(CliRunner().invoke(cli, args).stdout)
    assert data["identical_ids"] == 0 and data["modes"]["full"]["ndcg@10"] > 0.9, "query i's answer is document i"


def test_eval_tune_picks_the_weight_on_another_split_and_stores_it(beir, use_fake_encoder):
    from searcher.store import read_manifest

    (beir / "qrels" / "train.tsv").write_text((beir / "qrels" / "test.tsv").read_text())
    args = ["eval", str(beir), "--chunk-tokens", "24", "--overlap-tokens", "2", "--json", "-q", "--no-latency"]
    result = CliRunner().invoke(cli, [*args, "--tune"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    tuned = data["tuned"]
    assert tuned["split"] == "train" and tuned["queries"] == len(TOPICS) and len(tuned["ndcg@10"]) == 11
    assert tuned["ndcg@10"][str(tuned["weight"])] == max(tuned["ndcg@10"].values())
    assert read_manifest(data["index"]).config.fusion_weight == tuned["weight"] == data["fusion_weight"]
    again = json.loads(CliRunner().invoke(cli, args).stdout)
    assert again["fusion_weight"] == tuned["weight"] and again["tuned"] is None, "a later eval keeps the tuned weight"
    for extra, message in (
        (["--tune-split", "test"], "cannot tune on the 'test' split and report it"),
        (["--tune-split", "dev"], "no split 'dev'"),
    ):
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 2 and message in result.output
    (beir / "qrels" / "train.tsv").unlink()
    result = CliRunner().invoke(cli, [*args, "--tune"])
    assert result.exit_code == 2 and "no labelled split other than 'test'" in result.output
