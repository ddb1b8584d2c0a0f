"""The embedded default: the shipped model, its quantized network and samples, and the demo command."""

import hashlib
import json

import numpy as np

from quant import assets, golden
from quant.demo import main as demo
from quant.quantize import load_network, quantize_model
from quant.checkpoint import load_model
from quant.samples import load_samples

MANIFEST = json.loads(assets.MANIFEST.read_text())


def test_shipped_files_match_the_manifest():
    for name, digest in MANIFEST["sha256"].items():
        assert hashlib.sha256((assets.ASSETS / name).read_bytes()).hexdigest() == digest, name


def test_shipped_network_is_the_quantized_shipped_model():
    model, config = load_model(assets.FLOAT_MODEL)
    shipped = load_network(assets.QUANTIZED_MODEL)
    again = quantize_model(model, shipped.config, config["encoding"], config["n_steps"])
    assert shipped.config.digest() == MANIFEST["config_digest"]
    for a, b in zip(shipped.layers, again.layers):
        assert a.weight_frac == b.weight_frac and np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


def test_golden_predictions_on_shipped_samples_are_the_recorded_ones():
    spikes, labels, _, _ = load_samples(assets.SAMPLES)
    result = golden.run(load_network(assets.QUANTIZED_MODEL), spikes)
    assert result.prediction.tolist() == MANIFEST["fixed_predictions"]
    assert (result.prediction == labels).mean() >= 0.9


def test_demo_runs_and_reports(tmp_path, capsys):
    assert demo(["--limit", "40", "--out", str(tmp_path), "--no-plot"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    expected = (np.array(MANIFEST["fixed_predictions"][:40]) == load_samples(assets.SAMPLES)[1][:40]).mean()
    assert report["samples"] == 40 and report["fixed_accuracy"] == expected
    assert abs(report["float_accuracy"] - report["fixed_accuracy"]) <= 0.1
    assert "fixed point (golden model)" in capsys.readouterr().out
