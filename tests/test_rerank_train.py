"""`searcher finetune --reranker` on a small BEIR folder, hard negatives from a real index, a tiny random BERT as
the base: the trained CrossEncoder loads as a reranker and has learned its training labels."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from models import random_bert

from searcher import IndexConfig, build_index
from searcher.cli import cli
from searcher.errors import InvalidInputError
from searcher.rerank import Reranker
from searcher.rerank_train import finetune_reranker

pytestmark = pytest.mark.model

TOPICS = ["owls", "trains", "tomatoes", "volcanoes", "glaciers", "violins", "comets", "bees", "ships", "clocks"]


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    root = tmp_path_factory.mktemp("beir")
    (root / "qrels").mkdir()
    with open(root / "corpus.jsonl", "w") as f:
        for i, t in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"d{i}", "title": t, "text": f"All about {t}: where {t} live and why."}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for i, t in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{i}", "text": f"tell me about {t}"}) + "\n")
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(TOPICS)))
    )
    base = random_bert(root / "models" / "tiny", hidden=64, layers=1, max_seq_length=64)
    build_index(root / "corpus.jsonl", root / "idx", IndexConfig(model=str(base)))
    return root, base


def test_a_trained_reranker_loads_and_has_learned_its_labels(beir, tmp_path):
    root, base = beir
    # the tiny BERT's weights with a fresh scoring head, as --reranker does with the bundled MiniLM's
    report = finetune_reranker(
        root, tmp_path / "rr", root / "idx", base_model=str(base), epochs=8, batch_size=4, learning_rate=1e-3
    )
    assert report.queries == len(TOPICS) and report.positives == len(TOPICS)
    assert 0 < report.negatives <= 4 * len(TOPICS) and report.steps > 0
    assert "hard negative" in (tmp_path / "rr" / "README.md").read_text()
    reranker = Reranker(str(tmp_path / "rr"))
    right, wrong = [], []
    for i, t in enumerate(TOPICS):
        scores = reranker.scores(f"tell me about {t}", [f"All about {u}: where {u} live and why." for u in TOPICS])
        right.append(scores[i])
        wrong.append(np.delete(scores, i).mean())
    assert np.mean(right) > np.mean(wrong)


def test_labels_are_required(beir, tmp_path):
    root, _ = beir
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidInputError, match="no qrels/train.tsv"):
        finetune_reranker(tmp_path / "plain", tmp_path / "rr", root / "idx")


def test_cli_needs_data_index_and_output(tmp_path):
    result = CliRunner().invoke(cli, ["finetune", "--reranker", "-o", str(tmp_path / "rr")])
    assert result.exit_code == 2 and "--reranker needs DATA" in result.output
