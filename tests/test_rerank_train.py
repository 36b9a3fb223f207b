"""`searcher finetune --reranker` on a small BEIR folder, hard negatives from a real index, a tiny random BERT as
the base: the trained CrossEncoder loads as a reranker and has learned its training labels."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from models import random_bert

from searcher import IndexConfig, build_index
from searcher.cli import cli
from searcher.errors import InvalidInputError, ModelError
from searcher.hits import Hit
from searcher.rerank import BLEND_FILE, Reranker, rerank
from searcher.rerank_train import NEGATIVES, choose_blend, finetune_reranker, rechoose_blend, roc_auc

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
    root, _ = beir
    # the bundled MiniLM's weights with a fresh scoring head, as --reranker does by default (the tiny random BERT
    # scores every pair nearly alike before training and learns these labels only some runs: CI saw it fail)
    report = finetune_reranker(root, tmp_path / "rr", root / "idx", epochs=3, batch_size=8, learning_rate=1e-4)
    assert report.queries == len(TOPICS) and report.positives == len(TOPICS)
    assert 0 < report.negatives <= NEGATIVES * len(TOPICS) and report.steps > 0
    card = (tmp_path / "rr" / "README.md").read_text()
    assert "hard negative" in card and "loss residual" in card and report.loss == "residual"
    reranker = Reranker(str(tmp_path / "rr"))
    right, wrong = [], []
    for i, t in enumerate(TOPICS):
        scores = reranker.scores(f"tell me about {t}", [f"All about {u}: where {u} live and why." for u in TOPICS])
        right.append(scores[i])
        wrong.append(np.delete(scores, i).mean())
    assert np.mean(right) > np.mean(wrong)
    assert report.train_auc >= 0.9 and not any("diverged" in w for w in report.warnings)


def test_the_pairwise_loss_trains_too_and_an_unknown_one_is_refused(beir, tmp_path):
    """loss="bce" (the default is "residual"): each pair on its own; it learns its training pairs, and the card
    names the loss."""
    root, _ = beir
    report = finetune_reranker(
        root, tmp_path / "rr", root / "idx", epochs=3, batch_size=8, learning_rate=1e-4, loss="bce"
    )
    assert report.loss == "bce" and report.steps > 0 and report.train_auc >= 0.9
    assert "BinaryCrossEntropyLoss" in (tmp_path / "rr" / "README.md").read_text()
    with pytest.raises(InvalidInputError, match="unknown reranker loss"):
        finetune_reranker(root, tmp_path / "rr2", root / "idx", loss="hinge")


def test_labels_are_required(beir, tmp_path):
    root, _ = beir
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidInputError, match="no qrels/train.tsv"):
        finetune_reranker(tmp_path / "plain", tmp_path / "rr", root / "idx")


def test_cli_needs_data_index_and_output(tmp_path):
    result = CliRunner().invoke(cli, ["finetune", "--reranker", "-o", str(tmp_path / "rr")])
    assert result.exit_code == 2 and "--reranker needs DATA" in result.output


class _Judge:
    """A scorer for choose_blend's logic: +sign for passages that say "right", -sign for the rest."""

    def __init__(self, sign: float) -> None:
        self.sign = sign

    def predict(self, pairs, **_):
        return np.array([self.sign * (1.0 if "right" in p else -1.0) for _, p in pairs])


def _validation():
    # each query: the first stage ranks a wrong hit first and the relevant one third
    return [
        (f"q{i}", [("a", 0.9, "wrong a", False), ("b", 0.8, "wrong b", False), (f"r{i}", 0.7, "right", True)])
        for i in range(12)
    ]


def test_the_blend_weight_follows_what_the_reranker_gets_right():
    blend, ndcg = choose_blend(_validation(), _Judge(+1.0))
    assert blend > 0 and ndcg["reranker"] == pytest.approx(1.0) and ndcg["blend"] == pytest.approx(1.0)
    assert ndcg["first stage"] < 0.6
    blend, ndcg = choose_blend(_validation(), _Judge(-1.0))  # a reranker that learned the opposite changes nothing
    assert blend == 0.0 and ndcg["blend"] == pytest.approx(ndcg["first stage"])


def test_a_blend_file_puts_the_first_stage_back_in_the_order(beir, tmp_path):
    root, base = beir
    finetune_reranker(root, tmp_path / "rr", root / "idx", base_model=str(base), epochs=1, batch_size=4)
    hits = [
        Hit(id=i, score=1.0 - i / 10, doc_id=f"d{i}", title="", source="", text=f"All about {t}.", start=0, end=1)
        for i, t in enumerate(TOPICS)
    ]
    for form in ({}, {"form": "z"}):  # a file written before forms, and one of today's
        (tmp_path / "rr" / BLEND_FILE).write_text(json.dumps({"blend": 0.0, **form}))
        assert [h.doc_id for h in rerank(Reranker(str(tmp_path / "rr")), "tell me about bees", hits)] == [
            h.doc_id for h in hits
        ]
    (tmp_path / "rr" / BLEND_FILE).write_text(json.dumps({"blend": 7}))
    with pytest.raises(ModelError, match=r"not a weight in \[0, 1\]"):
        Reranker(str(tmp_path / "rr"))


def _with_dev(root, data):
    """The BEIR folder at `root` with a dev split of its own: q8 and q9, which its train split lists too."""
    (data / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (data / name).symlink_to(root / name)
    (data / "qrels" / "train.tsv").write_text((root / "qrels" / "train.tsv").read_text())
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq8\td8\t1\nq9\td9\t1\n")
    return data


def test_a_dev_split_is_held_out_and_chooses_the_blend(beir, tmp_path):
    root, base = beir
    data = _with_dev(root, tmp_path / "with-dev")
    report = finetune_reranker(data, tmp_path / "rr", root / "idx", base_model=str(base), epochs=1, batch_size=4)
    # the dev queries judge the blend and are not trained on, though the train split lists them too
    assert report.held_out == "dev split" and report.validation_queries == 2
    assert report.positives == len(TOPICS) - 2
    chosen = json.loads((tmp_path / "rr" / BLEND_FILE).read_text())
    assert chosen["held_out"] == "dev split" and chosen["validation_queries"] == 2
    assert "(dev split)" in (tmp_path / "rr" / "README.md").read_text()


def test_a_trained_rerankers_blend_is_chosen_again_on_the_dev_split(beir, tmp_path):
    root, base = beir
    finetune_reranker(root, tmp_path / "rr", root / "idx", base_model=str(base), epochs=1, batch_size=4, blend=0.3)
    data = _with_dev(root, tmp_path / "with-dev")
    dev = (data / "qrels" / "dev.tsv").read_text()
    (data / "qrels" / "dev.tsv").unlink()
    with pytest.raises(InvalidInputError, match="no dev split"):
        rechoose_blend(data, tmp_path / "rr", root / "idx")
    (data / "qrels" / "dev.tsv").write_text(dev)
    blend, scores = rechoose_blend(data, tmp_path / "rr", root / "idx")
    written = json.loads((tmp_path / "rr" / BLEND_FILE).read_text())
    assert written["blend"] == blend and written["form"] == "z" and written["validation_queries"] == 2
    assert set(scores) == {"first stage", "reranker", "blend"} and scores["blend"] >= scores["first stage"]
    assert Reranker(str(tmp_path / "rr")).blend == blend, "the stage uses the weight chosen again"


def test_a_given_blend_holds_nothing_out_and_is_what_the_reranker_uses(beir, tmp_path):
    root, base = beir
    report = finetune_reranker(
        root, tmp_path / "rr", root / "idx", base_model=str(base), epochs=1, batch_size=4, blend=0.3, negatives=1
    )
    assert report.held_out == "given" and report.validation_queries == 0 and report.positives == len(TOPICS)
    assert report.negatives == len(TOPICS), "one hard negative per query"
    assert Reranker(str(tmp_path / "rr")).blend == pytest.approx(0.3) and Reranker(str(tmp_path / "rr")).form == "z"
    with pytest.raises(InvalidInputError, match="blend weight must be in"):
        finetune_reranker(root, tmp_path / "rr2", root / "idx", base_model=str(base), blend=1.5)
    with pytest.raises(InvalidInputError, match="negatives in"):
        finetune_reranker(root, tmp_path / "rr2", root / "idx", base_model=str(base), negatives=0)
    assert not (tmp_path / "rr2").exists()


def test_cli_blend_goes_with_reranker(tmp_path):
    result = CliRunner().invoke(cli, ["finetune", str(tmp_path), "-o", str(tmp_path / "m"), "--blend", "0.2"])
    assert result.exit_code == 2 and "--blend goes with --reranker" in result.output
    result = CliRunner().invoke(cli, ["finetune", str(tmp_path), "-o", str(tmp_path / "m"), "--reranker-loss", "bce"])
    assert result.exit_code == 2 and "--reranker-loss goes with --reranker" in result.output


def test_cli_trains_a_reranker_with_a_given_blend(beir, tmp_path):
    root, base = beir
    args = ["finetune", str(root), "--reranker", "--index", str(root / "idx"), "-o", str(tmp_path / "rr"), "-q"]
    args += ["--model", str(base), "--epochs", "1", "--batch-size", "4", "--blend", "0.3", "--seed", "7"]
    result = CliRunner().invoke(cli, [*args, "--reranker-loss", "residual"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "rr" / BLEND_FILE).read_text()) == {"blend": 0.3, "form": "z", "chosen": "given"}
    card = (tmp_path / "rr" / "README.md").read_text()
    assert "1 epoch(s)" in card and "loss residual" in card


def test_a_run_that_diverges_is_retried_slower_then_refused(beir, tmp_path):
    """A learning rate far too high leaves the model scoring every pair alike (as 8e-5 once did on SciFact): it is
    trained again at half the rate, RETRIES times, then refused in one line, nothing saved."""
    root, base = beir
    with pytest.raises(ModelError, match="diverged .* pass a lower --learning-rate"):
        # the pairwise loss: at this rate it ends scoring every pair alike (the residual loss, whose lists keep the
        # first stage's spread in every score, did not in this tiny setting; the guard is the same for both)
        finetune_reranker(
            root, tmp_path / "rr", root / "idx", base_model=str(base), epochs=2, learning_rate=0.9, loss="bce"
        )
    assert not (tmp_path / "rr").exists() and not list(tmp_path.glob(".rr*"))


def test_roc_auc_counts_ties_half_and_nan_as_lowest():
    assert roc_auc([2.0, 1.0, 0.0], [1, 0, 0]) == 1.0
    assert roc_auc([1.0, 1.0, 1.0], [1, 0, 0]) == 0.5
    assert roc_auc([float("nan"), 1.0], [1, 0]) == 0.0
    assert roc_auc([1.0], [1]) == 0.5
