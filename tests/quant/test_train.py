import json

import pytest

from quant.checkpoint import load_model
from quant.train import main
from tests.helpers import write_idx_dataset


def _args(data, out, *extra):
    return ["--data-dir", str(data), "--out", str(out), "--width", "16", "--steps", "40", "--batch-size", "16",
            "--lr", "0.01", *extra]


def test_training_learns_a_separable_task_and_logs_each_epoch(tmp_path):
    data = write_idx_dataset(tmp_path / "data", n_train=320, n_test=64)
    assert main(_args(data, tmp_path / "run", "--epochs", "3")) == 0
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    for entry in log["epochs"]:
        assert {"train_loss", "val_acc", "val_activity", "lr"} <= set(entry)
        assert len(entry["val_activity"]) == 2
    assert log["test"]["accuracy"] >= 0.5  # ten bars, chance is 0.1
    model, config = load_model(tmp_path / "run" / "model.safetensors")
    assert config["sizes"] == [784, 16, 100] and config["n_steps"] == 40


def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    import torch
    from quant.checkpoint import load_training_state

    data = write_idx_dataset(tmp_path / "data", n_train=64, n_test=16)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_args(data, straight, "--epochs", "2")) == 0
    assert main(_args(data, split, "--epochs", "2", "--stop-after", "1")) == 0
    assert load_training_state(split / "checkpoint.pt")["epoch"] == 1
    assert main(_args(data, split, "--epochs", "2", "--resume")) == 0
    log = json.loads((split / "log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2] and "test" in log
    a, b = load_training_state(straight / "checkpoint.pt"), load_training_state(split / "checkpoint.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name


def test_resume_without_checkpoint_fails_clearly(tmp_path, capsys):
    data = write_idx_dataset(tmp_path / "data", n_train=32, n_test=16)
    assert main(_args(data, tmp_path / "none", "--epochs", "1", "--resume")) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_missing_dataset_fails_clearly(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--epochs", "1"]) == 2
    assert "not found" in capsys.readouterr().err
