"""Label-free training data (labelfree.py) from a real index built with the fake encoder: the pseudo-queries, the
teacher's margins and the held-out BEIR folder."""

import orjson
import pytest
from conftest import write_corpus

from searcher import Searcher, build_index
from searcher.labelfree import COVERAGE_IN_COSINE, KINDS, TRAINED_KINDS, label_free_data

TOPICS = ["owls", "trains", "tomatoes", "volcanoes", "glaciers", "violins", "comets", "bees", "ships", "clocks"]


@pytest.fixture
def index(tmp_path, fake, fake_config):
    docs = {}
    for n, topic in enumerate(TOPICS * 2):
        docs[f"{topic}-{n}.md"] = f"# All about the {topic} of region {n}\n\n" + " ".join(
            f"The {topic} of region {n} show trait {j}. Observers call it remarkable, number {n * 13 + j}."
            for j in range(10)
        )
    write_corpus(tmp_path / "docs", docs)
    config = fake_config.replace(chunk_tokens=64, overlap_tokens=8)
    build_index(tmp_path / "docs", tmp_path / "idx", config, encoder=fake)
    return tmp_path / "idx"


def test_pseudo_queries_and_margins_from_the_hybrid_search(index, tmp_path, fake):
    data = label_free_data(index, tmp_path / "heldout", encoder=fake)
    triplets = data.triplets
    # trained on: the kinds whose lexical evidence is not circular (labelfree.TRAINED_KINDS)
    assert {t.kind for t in triplets} == set(TRAINED_KINDS) and "keywords" not in TRAINED_KINDS
    assert len(data.train) == len(triplets) and "label-free triplets" in data.description
    for t in triplets:
        assert t.positive != t.negative
        if t.kind == "sentence":
            assert t.query not in t.positive, "the sentence is taken out of its passage"
    # The teacher's margin is the hybrid evidence's: recompute one from the index's own searcher.
    t = next(t for t in triplets if t.kind == "sentence")
    with Searcher(index, encoder=fake) as s:
        q = fake.encode_queries([t.query])[0]
        cos = fake.encode_documents([t.positive, t.negative]) @ q
        cov = s.coverages(t.query, [t.positive, t.negative])
    teacher = cos + COVERAGE_IN_COSINE * cov
    assert t.margin == pytest.approx(teacher[0] - teacher[1], abs=0.02)  # titles: the lexical text adds the heading
    assert sum(t.margin > 0 for t in triplets) > len(triplets) / 2, "a source passage usually beats a candidate"
    # every kind is still made, and held out for the comparison: keywords are a chunk's own rare words
    folder = data.evaluation.data_dir
    held = [orjson.loads(line) for line in (folder / "queries.jsonl").read_bytes().splitlines()]
    corpus = {r["_id"]: r for r in map(orjson.loads, (folder / "corpus.jsonl").read_bytes().splitlines())}
    source = dict(line.split("\t")[:2] for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:])
    assert {q["kind"] for q in held} <= set(KINDS) and len({q["kind"] for q in held}) > 1
    keywords = [q for q in held if q["kind"] == "keywords"]
    assert keywords, "the fixture holds out keyword queries"
    for q in keywords:
        assert 3 <= len(q["text"].split()) <= 5
        assert all(w in corpus[source[q["_id"]]]["text"].lower() for w in q["text"].split())


def test_held_out_documents_become_a_beir_folder_never_trained_on(index, tmp_path, fake):
    data = label_free_data(index, tmp_path / "heldout", encoder=fake)
    folder = data.evaluation.data_dir
    assert data.evaluation.split == "test"
    queries = [orjson.loads(line) for line in (folder / "queries.jsonl").read_bytes().splitlines()]
    corpus = {r["_id"]: r for r in map(orjson.loads, (folder / "corpus.jsonl").read_bytes().splitlines())}
    qrels = [line.split("\t") for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    assert 1 <= len(queries) == len(qrels) < len(data.triplets)
    assert not {q["text"] for q in queries} & {t.query for t in data.triplets}
    texts = {q["_id"]: q for q in queries}
    for qid, doc, score in qrels:
        assert doc in corpus and score == "1"
        if texts[qid]["kind"] == "sentence":
            assert texts[qid]["text"] not in corpus[doc]["text"], "the source chunk holds its passage, not the query"


def test_too_small_an_index_is_one_clear_error(tmp_path, fake, fake_config):
    from searcher.errors import InvalidInputError

    write_corpus(tmp_path / "docs", {"one.txt": "Only one short document here."})
    build_index(tmp_path / "docs", tmp_path / "idx", fake_config, encoder=fake)
    with pytest.raises(InvalidInputError, match="holds 1 chunk"):
        label_free_data(tmp_path / "idx", tmp_path / "heldout", encoder=fake)
    write_corpus(tmp_path / "docs", {"two.txt": "Short words."})  # two chunks, no sentence to make a query of
    build_index(tmp_path / "docs", tmp_path / "idx", fake_config, encoder=fake)
    with pytest.raises(InvalidInputError, match="no pseudo-query of my notes found a passage.*needs more text"):
        label_free_data(tmp_path / "idx", tmp_path / "heldout", encoder=fake, described_as="my notes")


def test_a_tuned_model_is_better_only_when_its_gain_holds_up():
    from searcher.train import comparison

    def columns(hybrid, dense):
        return {"hybrid": {"ndcg@10": hybrid}, "two-stage": {"ndcg@10": dense}}

    before = {f"q{i}": 0.5 for i in range(200)}
    steady = {q: v + 0.02 for q, v in before.items()}
    verdict, low = comparison(columns(0.5, 0.5), columns(0.52, 0.5), before, steady)
    assert verdict == "better" and low == pytest.approx(0.02)
    lucky = dict(before, q0=1.0)  # one query of 200 gains: the mean rises, the interval reaches 0
    verdict, low = comparison(columns(0.5, 0.5), columns(0.5025, 0.5), before, lucky)
    assert verdict == "not better" and low <= 0
    verdict, _ = comparison(columns(0.5, 0.5), columns(0.52, 0.49), before, steady)
    assert verdict == "not better", "dense 0.01 lower is too much"
    assert comparison({"two-stage": {}}, {"two-stage": {}}) == ("", None)
