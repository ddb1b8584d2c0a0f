"""quant.reproduce: a grid runs cell by cell, resumes where it stopped, and refuses a changed budget."""

import json

import pytest

from quant import reproduce
from quant.data import default_data_dir

needs_mnist = pytest.mark.skipif(default_data_dir("mnist") is None, reason="no local copy of MNIST")


def test_table1_has_the_papers_32_cells():
    cells = reproduce.cells("table1")
    assert len(cells) == len(set(cells)) == 32
    assert all(c.paper is not None for c in cells)
    assert reproduce.Cell("fashion", "rate", 2, "lif").paper == 79.32       # Table 1, as printed
    assert [c.layers for c in reproduce.cells("deep")] == [5, 5, 10, 10, 15, 15]


def test_the_bypass_grid_pairs_each_seed_with_and_without_the_bypass():
    cells = reproduce.cells("bypass")
    assert [(c.layers, c.neuron, c.bypass, c.seed) for c in cells] == [
        (5, "src", True, 0), (5, "src", False, 0), (5, "src", True, 1), (5, "src", False, 1)]
    assert len({c.name for c in cells}) == 4
    args = reproduce.parse_args(["bypass", "--seed", "7"])
    assert args.width == 128
    argv = reproduce.train_argv(cells[3], args, reproduce.Path("/nonexistent"))
    assert "--no-relu-bypass" in argv and argv[argv.index("--seed") + 1] == "8"
    assert "--no-relu-bypass" not in reproduce.train_argv(cells[2], args, reproduce.Path("/nonexistent"))
    assert cells[1].paper is None and cells[0].paper == 98.39


@needs_mnist
def test_a_grid_resumes_cell_by_cell_and_keeps_its_budget(tmp_path, capsys):
    base = ["table1", "--epochs", "1", "--limit-train", "64", "--limit-val", "32", "--limit-test", "32",
            "--steps", "5", "--width", "16", "--threads", "1", "--cells", "mnist-*-src-L1",
            "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    assert reproduce.main(base + ["--max-cells", "1"]) == 1                   # one cell done, one left
    summary = json.loads((tmp_path / "results" / "table1.json").read_text())
    assert [c["encoding"] for c in summary["cells"]] == ["rate"] and summary["epochs"] == 1
    assert "mnist-latency-src-L1" in summary["missing"]
    first = (tmp_path / "results" / "table1" / "mnist-rate-src-L1.json").read_text()
    assert reproduce.main(base) == 0                                          # the other one, only
    assert (tmp_path / "results" / "table1" / "mnist-rate-src-L1.json").read_text() == first
    summary = json.loads((tmp_path / "results" / "table1.json").read_text())
    assert sorted(c["encoding"] for c in summary["cells"]) == ["latency", "rate"]
    for row in summary["cells"]:
        assert 0 <= row["test_accuracy"] <= 1 and row["paper"] == pytest.approx(
            reproduce.PAPER_TABLE1[("mnist", row["encoding"], 1, "src")] / 100)
    assert reproduce.main(base + ["--plot", str(tmp_path / "figures")]) == 0   # Figure 4 from the two cells
    assert (tmp_path / "figures" / "figure4-activity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert reproduce.main([*base[:2], "2", *base[3:]]) == 2                   # another epoch budget
    assert "error:" in capsys.readouterr().err


@needs_mnist
def test_the_bypass_grid_trains_both_variants_and_plots_figure2(tmp_path):
    base = ["bypass", "--epochs", "2", "--limit-train", "64", "--limit-val", "32", "--limit-test", "32",
            "--steps", "5", "--width", "8", "--threads", "1",
            "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    assert reproduce.main(base + ["--max-cells", "2"]) == 1
    summary = json.loads((tmp_path / "results" / "bypass.json").read_text())
    assert [(c["bypass"], c["seed"]) for c in summary["cells"]] == [(True, 0), (False, 0)]
    assert all(len(c["val_accuracy"]) == len(c["val_loss"]) == 2 for c in summary["cells"])
    log = json.loads((tmp_path / "results" / "bypass" / "mnist-rate-src-L5-nobypass.json").read_text())
    assert log["args"]["relu_bypass"] == "False"
    assert reproduce.main(base + ["--plot", str(tmp_path / "figures")]) == 0
    assert (tmp_path / "figures" / "figure2-bypass.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_recurrent_grid_compares_three_networks_of_one_shape():
    cells = reproduce.cells("recurrent")
    assert [(c.neuron, c.layers, c.recurrent) for c in cells] == [("src", 3, (2,)), ("src", 3, ()), ("rlif", 3, (2,))]
    assert cells[0].name == "fashion-rate-src-L3-R2" and cells[0].paper is None and cells[2].paper is None
    args = reproduce.parse_args(["recurrent"])
    assert args.width == 400
    argv = reproduce.train_argv(cells[2], args, reproduce.Path("/nonexistent"))
    assert argv[argv.index("--recurrent") + 1] == "2" and argv[argv.index("--lr") + 1] == str(reproduce.BASELINE_LR)
    assert "--recurrent" not in reproduce.train_argv(cells[1], args, reproduce.Path("/nonexistent"))


def test_the_recurrent_summary_names_the_four_numbers(tmp_path):
    for cell, accuracy in zip(reproduce.cells("recurrent"), (0.85, 0.84, 0.80)):
        path = tmp_path / "recurrent" / f"{cell.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"epochs": [{"seconds": 1.0, "val_acc": 0.5}], "test": {"accuracy": accuracy}}))
    report = reproduce.summary("recurrent", {"epochs": 1, "seed": 0}, tmp_path)
    assert report["epochs"] == 1 and report["missing"] == []
    assert report["fashion"] == {"src_recurrent": 0.85, "src_feedforward": 0.84, "lif_recurrent_baseline": 0.80,
                                 "st_rsbp_published": 0.9013}


def test_summary_rewrites_a_grids_summary_from_its_cells(tmp_path, capsys):
    for cell, accuracy in zip(reproduce.cells("recurrent"), (0.85, 0.84, 0.80)):
        path = tmp_path / "recurrent" / f"{cell.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"epochs": [{"seconds": 1.0, "val_acc": 0.5, "val_loss": 1.0}],
                                    "test": {"accuracy": accuracy}}))
    assert reproduce.main(["recurrent", "--epochs", "1", "--results", str(tmp_path), "--summary"]) == 0
    report = json.loads((tmp_path / "recurrent.json").read_text())
    assert report["fashion"]["lif_recurrent_baseline"] == 0.80 and report["command"].endswith("--summary")
    assert [c["val_accuracy"] for c in report["cells"]] == [[0.5]] * 3
