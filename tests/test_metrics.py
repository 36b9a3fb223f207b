import math
import random

import numpy as np
import pytest

from searcher.errors import InvalidInputError
from searcher.metrics import METRICS, document_rankings, ir_metrics, load_beir, top_overlap


def test_metrics_by_hand():
    rankings = {
        "q1": [("d2", 0.9), ("d1", 0.8), ("d3", 0.7), ("d4", 0.6)],
        "q2": [("d7", 0.5), ("d6", 0.9), ("d5", 0.5)],  # unsorted; d5 beats d7 on the tie by id
    }
    qrels = {"q1": {"d1": 1, "d3": 1}, "q2": {"d5": 2, "d6": 1}}
    m = ir_metrics(rankings, qrels)
    # q1: relevant at ranks 2 and 3.  q2: relevant at ranks 1 (grade 1) and 2 (grade 2).
    assert m["accuracy@1"] == pytest.approx((0 + 1) / 2)
    assert m["accuracy@3"] == pytest.approx(1.0)
    assert m["precision@1"] == pytest.approx((0 + 1) / 2)
    assert m["precision@3"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert m["precision@10"] == pytest.approx((2 / 10 + 2 / 10) / 2)
    assert m["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert m["recall@3"] == pytest.approx(1.0)
    # nDCG@10, q1: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3)) = 1.13093 / 1.63093 = 0.69342
    #          q2: (1 + 2/log2(3)) / (2 + 1/log2(3))       = 2.26186 / 2.63093 = 0.85972 (graded gains)
    q1 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    q2 = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert q1 == pytest.approx(0.69342, abs=1e-5) and q2 == pytest.approx(0.85972, abs=1e-5)
    assert m["ndcg@10"] == pytest.approx((q1 + q2) / 2)
    # MRR@10: 1/2 and 1/1.  MAP@100: q1 (1/2 + 2/3) / 2 = 0.58333, q2 (1/1 + 2/2) / 2 = 1.
    assert m["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["map@100"] == pytest.approx((0.583333 + 1) / 2, abs=1e-6)
    assert list(m) == list(METRICS)


def test_query_without_results_scores_zero():
    m = ir_metrics({}, {"q": {"d": 1}})
    assert all(v == 0 for v in m.values())


def test_a_query_that_is_a_document_is_left_out_of_its_ranking_only_when_it_is_that_document(tmp_path):
    rankings = {"q1": [("q1", 0.9), ("d1", 0.8), ("d2", 0.7)]}  # ArguAna: the query is itself a document
    qrels = {"q1": {"d1": 1}}
    left_out = ir_metrics(rankings, qrels, itself={"q1"})
    assert left_out["ndcg@10"] == 1.0 and left_out["precision@1"] == 1.0
    kept = ir_metrics(rankings, qrels)
    assert kept["ndcg@10"] == pytest.approx(1 / math.log2(3)) and kept["precision@1"] == 0.0
    root = write_beir(tmp_path / "beir", qrels="q1\td1\t1\nq2\td2\t1\n")
    with open(root / "corpus.jsonl", "a") as f:  # q1's text as a document of q1's id; q2's id on another text
        f.write('{"_id": "q1", "title": "First", "text": "first"}\n{"_id": "q2", "text": "a numbered document"}\n')
    assert load_beir(root).itself == {"q1"}, "an id alone is a coincidence (classic collections number both)"


def test_metrics_equal_sentence_transformers_evaluator():
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    rng = random.Random(0)
    docs = [f"d{i:03d}" for i in range(300)]
    queries = {f"q{i}": f"query {i}" for i in range(40)}
    qrels = {q: {d: 1 for d in rng.sample(docs, rng.randint(1, 4))} for q in queries}
    rankings = {
        q: [(d, round(rng.random(), 2)) for d in rng.sample(docs, rng.randint(5, 150))]  # rounding makes ties
        for q in queries
    }
    evaluator = InformationRetrievalEvaluator(
        queries=queries,
        corpus={d: d for d in docs},
        relevant_docs={q: set(r) for q, r in qrels.items()},
        accuracy_at_k=[1, 3, 5, 10],
        precision_recall_at_k=[1, 3, 5, 10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[100],
    )
    results = [
        [{"corpus_id": d, "score": s} for d, s in sorted(rankings[q], key=lambda h: -h[1])[:100]]
        for q in evaluator.queries_ids
    ]
    theirs = evaluator.compute_metrics(results)
    ours = ir_metrics(rankings, qrels)
    for name in METRICS:
        metric, k = name.split("@")
        assert ours[name] == pytest.approx(float(theirs[f"{metric}@k"][int(k)]), abs=1e-12), name


def test_a_document_ranks_by_its_best_chunk():
    D = np.array([[0.9, 0.8, 0.7, 0.6, -np.inf]])
    I = np.array([[10, 11, 12, 13, -1]])
    doc_of = {10: "a", 11: "b", 12: "a", 13: "c"}
    assert document_rankings(D, I, doc_of) == [
        [("a", pytest.approx(0.9)), ("b", pytest.approx(0.8)), ("c", pytest.approx(0.6))]
    ]
    assert document_rankings(D, I, doc_of, depth=2) == [[("a", pytest.approx(0.9)), ("b", pytest.approx(0.8))]]


def test_top_overlap():
    exact = [[("a", 3), ("b", 2), ("c", 1)]]
    approx = [[("a", 3), ("c", 2), ("d", 1)]]
    assert top_overlap(approx, exact, k=2) == 0.5
    assert top_overlap(exact, exact, k=3) == 1.0


def write_beir(root, *, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n", queries=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "one"}\n{"_id": "d2", "text": "two"}\n')
    (root / "queries.jsonl").write_text(
        queries
        or '{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "second"}\n{"_id": "q3", "text": "unjudged"}\n'
    )
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_load_beir_keeps_only_judged_queries(tmp_path):
    data = load_beir(write_beir(tmp_path / "beir"))
    assert data.queries == {"q1": "first", "q2": "second"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_load_beir_keeps_judged_documents_a_sampled_corpus_lacks_and_reads_any_header(tmp_path):
    data = load_beir(write_beir(tmp_path / "beir", qrels="qid\tdocid\trel\nq1\td1\t1\nq1\tgone\t1\nq2\td2\t2\n"))
    assert data.qrels == {"q1": {"d1": 1, "gone": 1}, "q2": {"d2": 2}}, "still judged: it caps recall"
    assert ir_metrics({"q1": [("d1", 1.0)], "q2": [("d2", 1.0)]}, data.qrels)["recall@10"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"qrels": "query-id\tcorpus-id\tscore\nq1\tnope\t1\n"},
            "none of the 1 judged document id(s) in test.tsv is in corpus.jsonl (first: 'nope'); are these the",
        ),
        (
            {"qrels": "query-id\tcorpus-id\tscore\nq9\td1\t1\n"},
            "1 query id(s) in test.tsv are not in queries.jsonl (first: 'q9')",
        ),
        ({"qrels": "query-id\tcorpus-id\tscore\n"}, "test.tsv has no relevance judgments"),
        ({"qrels": "query-id\tcorpus-id\tscore\nq1 d1 1\n"}, "must have 3 tab-separated columns"),
    ],
)
def test_load_beir_errors(tmp_path, change, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_beir(write_beir(tmp_path / "beir", **change))


def test_load_beir_missing_files_and_split(tmp_path):
    root = write_beir(tmp_path / "beir")
    with pytest.raises(InvalidInputError, match=r"no split 'dev' in .*qrels \(found: test\); pick one with --split"):
        load_beir(root, "dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(InvalidInputError, match="queries.jsonl is missing"):
        load_beir(root)
