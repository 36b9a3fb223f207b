"""Training data for `searcher finetune`: the two labelled sources, and every bad-data message."""

import json

import pytest
from conftest import write_corpus
from fakes import FakeEncoder

from searcher.errors import InvalidInputError
from searcher.pairs import BeirEval, Pair, PairEval, load_training_data


def jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("columns", [("sentence_0", "sentence_1"), ("anchor", "positive"), ("query", "passage")])
def test_pairs_file_with_the_cards_column_names(tmp_path, columns):
    records = [{columns[0]: f"question {i}", columns[1]: f"answer text {i}"} for i in range(30)]
    data = load_training_data(jsonl(tmp_path / "pairs.jsonl", records), FakeEncoder())
    assert len(data.train) == 27 and isinstance(data.evaluation, PairEval)
    assert len(data.evaluation.queries) == 3 and len(data.evaluation.corpus) == 30, "every passage is in the corpus"
    held = set(data.evaluation.queries.values())
    assert not held & {p.query for p in data.train}, "held-out queries are not trained on"


def test_bad_pairs_are_dropped_with_warnings(tmp_path):
    records = [{"anchor": f"q{i}", "positive": f"p{i}"} for i in range(5)]
    records += [
        {"anchor": "", "positive": "x"},
        {"anchor": "q0", "positive": "p0"},
        {"anchor": "q9", "positive": "long " * 100},
    ]
    data = load_training_data(jsonl(tmp_path / "p.jsonl", records), FakeEncoder(max_seq_length=64))
    assert data.train[:5] == [Pair(f"q{i}", f"p{i}") for i in range(5)]
    assert "dropped 1 pair(s) with an empty query or passage" in data.warnings
    assert "dropped 1 duplicate pair(s)" in data.warnings
    assert any(
        "1 passage(s) are longer than the model's 64-token window; training sees only their beginning" in w
        for w in data.warnings
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty; it must hold one JSON object per line"),
        (
            '{"question": "a", "answer": "b"}\n',
            "has columns answer, question; training pairs need sentence_0/sentence_1",
        ),
        ('{"anchor": "a", "positive": "b"}\n', "gives 1 usable training pair(s); at least 2 are needed"),
        ('{"anchor": "a", "positive": "b"}\nnot json\n', ":2 is not valid JSON"),
        (
            '{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": 3}\n',
            ":2 lacks a string 'anchor' and 'positive'",
        ),
        ('{"anchor": "", "positive": "b"}\n{"anchor": "c", "positive": " "}\n', "gives 0 usable training pair(s)"),
    ],
)
def test_unusable_pair_files(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_training_data(path, FakeEncoder())


def test_beir_folder_trains_on_the_train_split_and_evaluates_on_test(tmp_path):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Birds", "text": "Owls hunt at night."},
            {"_id": "d2", "title": "", "text": "Trains run on rails."},
        ],
    )
    jsonl(
        root / "queries.jsonl",
        [{"_id": "q1", "text": "night birds"}, {"_id": "q2", "text": "railways"}, {"_id": "q3", "text": "test query"}],
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td1\t1\n")
    data = load_training_data(root, FakeEncoder())
    assert data.train == [Pair("night birds", "Birds\nOwls hunt at night."), Pair("railways", "Trains run on rails.")]
    assert data.evaluation == BeirEval(root, "test")
    assert load_training_data(root, FakeEncoder(), eval_split="train").evaluation.split == "train"


def test_a_corpus_without_labels_points_to_label_free_training(tmp_path):
    write_corpus(tmp_path / "docs", {"a.txt": "Some text with no labels at all."})
    with pytest.raises(InvalidInputError, match="holds no labels.*label-free"):
        load_training_data(tmp_path / "docs", FakeEncoder())
