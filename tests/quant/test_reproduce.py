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
