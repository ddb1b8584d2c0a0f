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
