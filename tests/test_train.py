"""`searcher finetune` end to end on a tiny randomly initialised BERT (fast enough for CI)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from models import random_bert

from searcher import IndexConfig, build_index, open_index
from searcher.cli import cli
from searcher.errors import InvalidInputError
from searcher.train import FinetuneConfig, finetune

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return random_bert(tmp_path_factory.mktemp("base") / "tiny", hidden=128, layers=1, max_seq_length=64)


@pytest.fixture
def pairs_file(tmp_path):
    topics = [
        "owls",
        "trains",
        "tomatoes",
        "volcanoes",
        "rice",
        "comets",
        "violins",
        "glaciers",
        "bees",
        "ships",
        "maps",
        "clocks",
    ]
    path = tmp_path / "pairs.jsonl"
    with open(path, "w") as f:
        for t in topics:
            for i in range(6):
                f.write(
                    json.dumps(
                        {
                            "sentence_0": f"question {i} about {t}",
                            "sentence_1": f"A passage number {i} that explains {t} in detail.",
                        }
                    )
                    + "\n"
                )
    return path


def test_finetune_writes_a_loadable_matryoshka_model(tmp_path, tiny_base, pairs_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "model"
    # learning rate 2e-5: at the default 5e-5 the tiny random base ends with near-constant embeddings (variances
    # about 1e-6), too flat to check the rotation's ordering; this test checks mechanics, not the default
    config = FinetuneConfig(base_model=str(tiny_base), epochs=2, batch_size=4, learning_rate=2e-5)
    report = finetune(pairs_file, out, config)
    assert report.dims == [128, 64], "the full width is always trained"
    assert report.steps > 0 and report.losses and report.pairs_per_second > 0
    assert set(report.before) == set(report.after) == {"dim 128", "dim 64"}

    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(out), device="cpu")
    assert plain.get_embedding_dimension() == 128
    card = (out / "README.md").read_text()
    assert "loss:MatryoshkaLoss" in card and "### Before (base model)" in card and "matryoshka_dims` [128, 64]" in card
    marker = json.loads((out / "searcher_model.json").read_text())
    assert marker["matryoshka_dims"] == [128, 64]
    assert (out / "searcher-onnx" / "model.onnx").is_file()
    assert not list(tmp_path.glob(".model.partial*"))
    # The output ends with an orthogonal rotation onto the principal directions of the passages' embeddings.
    import torch

    dense = plain[-1]
    assert type(dense).__name__ == "Dense" and isinstance(dense.activation_function, torch.nn.Identity)
    w = dense.linear.weight.detach().numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(128), atol=1e-5)
    passages = [json.loads(line)["sentence_1"] for line in pairs_file.read_text().splitlines()]
    rotated = plain.encode(passages)
    unrotated = torch.nn.Sequential(*list(plain)[:-1])
    with torch.no_grad():
        features = plain.preprocess(passages)
        before = unrotated(features)["sentence_embedding"].numpy()
    np.testing.assert_allclose(rotated, before @ w.T, atol=1e-5)
    np.testing.assert_allclose(rotated @ rotated.T, before @ before.T, rtol=1e-5)  # full-dim similarity unchanged
    spread = plain.encode(passages, normalize_embeddings=True).var(axis=0)  # what the rotation was fitted on
    assert np.all(np.diff(spread[:16]) <= 0.01 * spread[0]) and spread[0] > 100 * spread[64], "strongest first"
    assert report.rotation_fitted_on == report.pairs, "fitted on the distinct training passages"
    assert "Output rotated" in card
    # The weights changed, and the index records the dims the model declares.
    base_vec = SentenceTransformer(str(tiny_base), device="cpu").encode(["owls"])
    assert not np.allclose(base_vec, plain.encode(["owls"]), atol=1e-4)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Owls hunt at night. " * 5)
    import searcher.embedding

    def no_second_export(encoder, out_dir):
        raise AssertionError("the model's own export is copied, not redone")

    monkeypatch.setattr(searcher.embedding, "export_onnx", no_second_export)
    build_index(docs, tmp_path / "idx", IndexConfig(model=str(out)))
    manifest = open_index(tmp_path / "idx").manifest
    assert manifest.projection.measurement["declared_matryoshka_dims"] == [128, 64]
    assert (tmp_path / "idx" / manifest.query_encoder / "model.onnx").is_file()


def test_too_few_passages_for_the_rotation_is_a_warning(tmp_path, tiny_base, pairs_file):
    config = FinetuneConfig(base_model=str(tiny_base), epochs=1, batch_size=4, max_pairs=40)
    report = finetune(pairs_file, tmp_path / "model", config, evaluate_model=False)
    assert report.rotation_fitted_on == 0
    assert any(
        "too few distinct passages to fit the closing rotation (it needs more than 64)" in w for w in report.warnings
    )
    from sentence_transformers import SentenceTransformer

    assert type(SentenceTransformer(str(tmp_path / "model"), device="cpu")[-1]).__name__ != "Dense"


def test_existing_output_is_refused(tmp_path, tiny_base, pairs_file):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(
        InvalidInputError, match="already exists and is not empty; choose another output or pass --overwrite"
    ):
        finetune(pairs_file, out, FinetuneConfig(base_model=str(tiny_base)))
    assert (out / "keep.txt").read_text() == "precious"


def test_interrupted_training_leaves_no_model_at_the_output(tmp_path, tiny_base, pairs_file, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def interrupt(phase, done, total, **extra):
        if phase == "train" and done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(
            pairs_file,
            tmp_path / "model",
            FinetuneConfig(base_model=str(tiny_base), epochs=3, batch_size=4),
            evaluate_model=False,
            progress=interrupt,
        )
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".model.partial"))


def test_dim_weights_are_checked_against_the_model_dims():
    config = FinetuneConfig(dim_weights=((64, 4.0),))
    assert config.loss_weights([384, 256, 128, 64]) == [1.0, 1.0, 1.0, 4.0]
    assert FinetuneConfig().loss_weights([128, 64]) == [1.0, 1.0], "every dim weighs 1 by default, as in the cards"
    with pytest.raises(InvalidInputError, match="no Matryoshka dim 32 to weight: this model trains dims 128, 64"):
        FinetuneConfig(dim_weights=((32, 2.0),)).loss_weights([128, 64])
    with pytest.raises(InvalidInputError, match="the weight of dim 64 must be above 0"):
        FinetuneConfig(dim_weights=((64, 0.0),))


def test_tuned_share_is_by_the_data_and_checked():
    assert FinetuneConfig().for_data(label_free=False).tuned_share == 1.0, "a labelled run keeps its trained weights"
    assert 0 < FinetuneConfig().for_data(label_free=True).tuned_share < 1
    assert FinetuneConfig(tuned_share=0.8).for_data(label_free=True).tuned_share == 0.8
    for bad in (0.0, 1.5):
        with pytest.raises(InvalidInputError, match="tuned_share must be above 0 and at most 1"):
            FinetuneConfig(tuned_share=bad)


def test_tuned_share_on_the_command_line_is_checked(tmp_path, pairs_file):
    runner = CliRunner()
    result = runner.invoke(cli, ["finetune", str(pairs_file), "-o", str(tmp_path / "m"), "--tuned-share", "0"])
    assert result.exit_code == 2 and "--tuned-share" in result.output
    result = runner.invoke(
        cli, ["finetune", str(pairs_file), "-o", str(tmp_path / "m"), "--reranker", "--tuned-share", "0.5"]
    )
    assert result.exit_code == 2 and "a reranker is saved as trained" in result.output
    assert not (tmp_path / "m").exists()


def test_mixing_weights_lands_between_the_base_and_the_trained_model(tiny_base):
    import torch
    from sentence_transformers import SentenceTransformer

    from searcher.train import mix_weights

    model = SentenceTransformer(str(tiny_base), device="cpu")
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # "training"
    trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mix_weights(model.state_dict(), base, 0.25)
    mixed = model.state_dict()
    moved = [k for k in base if base[k].is_floating_point() and not torch.equal(base[k], trained[k])]
    assert moved, "the perturbation moved the weights"
    for k in moved:
        torch.testing.assert_close(mixed[k], 0.25 * trained[k] + 0.75 * base[k])
    for k in base:
        if not base[k].is_floating_point():
            assert torch.equal(mixed[k], base[k]), f"{k}: integer buffers are left alone"


def test_finetune_cli(tmp_path, tiny_base, pairs_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import sentence_transformers.sentence_transformer.losses as losses

    seen = []
    real = losses.MatryoshkaLoss

    def recording(*args, **kwargs):
        seen.append(kwargs["matryoshka_weights"])
        return real(*args, **kwargs)

    monkeypatch.setattr(losses, "MatryoshkaLoss", recording)
    result = CliRunner().invoke(
        cli,
        [
            "finetune",
            str(pairs_file),
            "-o",
            str(tmp_path / "m"),
            "--model",
            str(tiny_base),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--dim-weight",
            "64=3",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "model written to" in result.stdout and "dim 64:" in result.stdout
    assert seen == [[1.0, 3.0]], "the loss gets the weights asked for"
    assert "weights [1.0, 3.0]" in (tmp_path / "m" / "README.md").read_text()
    for arg, message in (
        ("64", "expected DIM=WEIGHT such as 64=2, got '64'"),
        ("32=2", "no Matryoshka dim 32 to weight: this model trains dims 128, 64"),
    ):
        bad = CliRunner().invoke(
            cli,
            ["finetune", str(pairs_file), "-o", str(tmp_path / "m3"), "--model", str(tiny_base), "--dim-weight", arg],
        )
        assert bad.exit_code != 0 and message in bad.output
        assert not (tmp_path / "m3").exists()
    for option, value, message in (
        ("--batch-size", "1", "batch_size must be at least 2"),
        ("--max-pairs", "0", "max_pairs must be at least 1, got 0"),
    ):
        bad = CliRunner().invoke(
            cli, ["finetune", str(pairs_file), "-o", str(tmp_path / "m2"), "--model", str(tiny_base), option, value]
        )
        assert bad.exit_code == 2 and message in bad.output
