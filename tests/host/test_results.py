"""docs/RESULTS.md's generated tables are exactly what the committed reports give."""

import json
import shutil

from host.results import RESULTS, ROOT, main, render


def test_the_committed_tables_are_those_of_the_committed_reports():
    assert main(["--check"]) == 0


def test_a_changed_report_changes_its_table(tmp_path):
    for folder in ("docs/benchmarks", "docs/results", "docs/builds"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    report = json.loads((tmp_path / "docs/results/fuzz.json").read_text())
    report["wrong_answers"] = 7
    (tmp_path / "docs/results/fuzz.json").write_text(json.dumps(report))
    text = RESULTS.read_text()
    changed = render(text, tmp_path)
    assert changed != text and "| 7 |" in changed
    (tmp_path / "RESULTS.md").write_text(text)
    assert main(["--check", "--file", str(tmp_path / "RESULTS.md")]) == 0   # reads the repository's reports


def test_the_reproduction_tables_are_those_of_the_committed_grid():
    assert main(["--check", "--file", str(ROOT / "docs" / "REPRODUCTION.md")]) == 0


def test_a_per_epoch_grid_lists_each_cells_curve(tmp_path):
    from host.results import RENDERERS

    (tmp_path / "docs" / "results").mkdir(parents=True)
    report = {"grid": "recurrent", "epochs": 2, "limit_train": None, "width": 400, "steps": 200, "seed": 0,
              "missing": ["x"], "git_commit": "0123456789abcdef",
              "cells": [{"neuron": "src", "layers": 3, "recurrent": [2], "bypass": True, "seed": 0,
                         "val_accuracy": [0.5, 0.625], "test_accuracy": 0.6}]}
    (tmp_path / "docs" / "results" / "recurrent.json").write_text(json.dumps(report))
    lines = RENDERERS["recurrent"](tmp_path)
    assert "2 epochs, all training images, hidden width 400, T = 200; 1 of 2 cells done." in lines[0]
    assert lines[-1] == "| SRC, 3 layers, layer 2 recurrent | 0 | 50.0, 62.5 | 60.00 |"


def test_a_build_over_several_seeds_names_each_seeds_fmax(tmp_path):
    from host.results import boards

    shutil.copytree(ROOT / "docs/builds", tmp_path / "docs/builds")
    path = tmp_path / "docs/builds/ulx3s_85f-latency-784-224-100-P8/report.json"
    report = json.loads(path.read_text())
    report.update(fmax_mhz=101.25, seeds=[{"seed": 1, "fmax_mhz": 97.5}, {"seed": 2, "fmax_mhz": 101.25},
                                          {"seed": 3, "fmax_mhz": None}])
    path.write_text(json.dumps(report))
    row = next(line for line in boards(tmp_path) if "ulx3s_85f" in line)
    assert "**101.2 MHz** (seeds 1: 97.5, 2: 101.2, 3: -)" in row


def test_a_build_over_the_part_says_which_resources_do_not_fit(tmp_path):
    from host.results import boards

    shutil.copytree(ROOT / "docs/builds", tmp_path / "docs/builds")
    path = tmp_path / "docs/builds/arty_a7_35-latency-784-224-100-P8/report.json"
    report = json.loads(path.read_text())
    assert "| yes |" in next(line for line in boards(tmp_path) if "latency, 8 |" in line and "arty_a7_35" in line)
    report["resources"].update(luts=20_801, bram18=101)       # capacity: 20 800 LUTs, 100 halves
    path.write_text(json.dumps(report))
    row = next(line for line in boards(tmp_path) if "latency, 8 |" in line and "arty_a7_35" in line)
    assert "| no: LUTs, block RAM |" in row
