"""Training data for `searcher finetune`: the three sources, and every bad-data message."""

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


def test_pairs_generated_from_a_corpus(tmp_path):
    docs = {
        f"doc{i}.md": f"# Title number {i} here\n\n"
        + " ".join(f"Sentence {j} of document {i} talks about topic {i * 7 + j} at some length." for j in range(12))
        for i in range(20)
    }
    write_corpus(tmp_path / "docs", docs)
    data = load_training_data(tmp_path / "docs", FakeEncoder(max_seq_length=48))
    titles = [p for p in data.train if p.query.startswith("Title number")]
    clozes = [p for p in data.train if p.query.startswith("Sentence")]
    assert titles and clozes and isinstance(data.evaluation, PairEval)
    for pair in clozes:
        assert pair.query not in pair.passage, "the cloze sentence is taken out of its passage"
    assert "generated from" in data.description


def test_unreadable_files_and_folders_are_skipped_with_warnings(tmp_path):
    import json

    from conftest import run_unprivileged

    docs = {
        f"doc{i}.txt": " ".join(f"Line {j} of text {i} says something about item {j + i}." for j in range(6))
        for i in range(12)
    }
    write_corpus(tmp_path / "docs", {**docs, "locked/secret.txt": "Nobody may read this folder."})
    (tmp_path / "docs" / "blob.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "docs" / "locked").chmod(0)  # real permissions; the child runs as a user they apply to
    child = run_unprivileged(
        "import json, sys\n"
        "from fakes import FakeEncoder\n"
        "from searcher.pairs import load_training_data\n"
        "data = load_training_data(sys.argv[1], FakeEncoder(max_seq_length=48))\n"
        "print(json.dumps({'train': len(data.train), 'warnings': data.warnings}))\n",
        tmp_path / "docs",
    )
    (tmp_path / "docs" / "locked").chmod(0o755)
    assert child.returncode == 0, child.stderr
    data = json.loads(child.stdout)
    assert data["train"] > 5
    assert f"{tmp_path / 'docs' / 'locked'}: cannot read folder (Permission denied); skipped" in data["warnings"]
    assert f"{tmp_path / 'docs' / 'blob.txt'}: binary content (NUL bytes); skipped" in data["warnings"]


def test_pairs_generated_from_an_existing_index(tmp_path, corpus, fake, fake_config):
    from searcher import build_index

    big = {
        f"d{i}.txt": " ".join(f"Statement {j} about subject {i} is written here plainly." for j in range(6))
        for i in range(12)
    }
    write_corpus(corpus, big)
    build_index(corpus, tmp_path / "idx", fake_config, encoder=fake)
    data = load_training_data(tmp_path / "idx", fake)
    assert len(data.train) > 5 and "chunks of idx" in data.description
