"""host.defaults: the shipped models' accuracy and build figures, and its verdicts."""

import json

import pytest

from host import defaults
from quant import assets
from quant.data import default_data_dir

needs_mnist = pytest.mark.skipif(default_data_dir("mnist") is None, reason="no local copy of MNIST")

SIZES = "784-224-100"


def _build_report(root, name, luts, capacity_luts=20800):
    path = defaults.build_report_path(root, name, [784, 224, 100], 8)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "resources": {"luts": luts, "ffs": 6000, "bram18": 90, "dsps": 75},
        "capacity": {"luts": capacity_luts, "ffs": 41600, "bram18": 100, "dsps": 90},
        "cycles_per_sample": 12345, "git_commit": "abc"}))


@needs_mnist
def test_the_latency_model_scores_on_the_test_set_what_its_manifest_says_on_the_same_images():
    # The manifest's figure comes from make_assets' own encoding of the first 200 test images
    # (latency coding has no seed): an independent path to the same predictions.
    entry = assets.model("latency")
    manifest = json.loads(entry.manifest.read_text())
    row = defaults.measure_model(entry, limit=manifest["samples"], progress=False)
    assert row["test_samples"] == manifest["samples"]
    assert row["fixed_test_accuracy"] == pytest.approx(manifest["fixed_accuracy_on_samples"])
    assert row["float_test_accuracy"] == pytest.approx(manifest["float_accuracy_on_samples"])
    assert (row["encoding"], row["sizes"]) == ("latency", manifest["sizes"])


@needs_mnist
def test_a_model_over_the_part_is_reported_as_not_fitting(tmp_path, monkeypatch, capsys):
    _build_report(tmp_path, "latency", luts=15000)
    _build_report(tmp_path, "rate", luts=25000)     # more LUTs than the XC7A35T has
    out = tmp_path / "defaults.json"
    code = defaults.main(["--limit-test", "20", "--root", str(tmp_path), "--out", str(out)])
    assert code == 1 and "rate" in capsys.readouterr().err
    rows = {r["name"]: r for r in json.loads(out.read_text())["models"]}
    assert rows["latency"]["fits"] == "XC7A35T" and rows["rate"]["fits"] is None
    assert rows["latency"]["luts"] == 15000 and rows["latency"]["bram18"] == 90


def test_a_missing_build_report_is_a_usage_error(tmp_path, capsys):
    code = defaults.main(["--limit-test", "5", "--root", str(tmp_path), "--out", str(tmp_path / "d.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hdl.build" in err and "Traceback" not in err
