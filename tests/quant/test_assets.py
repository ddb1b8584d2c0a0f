"""The shipped models: each one's files, quantized network and samples, and the demo command."""

import hashlib
import json

import numpy as np
import pytest

from quant import assets, golden
from quant.checkpoint import load_model
from quant.demo import main as demo
from quant.quantize import load_network, quantize_model
from quant.samples import load_samples

SHIPPED = assets.models()


def _manifest(entry):
    return json.loads(entry.manifest.read_text())


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_shipped_files_match_the_manifest(entry):
    for name, digest in _manifest(entry)["sha256"].items():
        assert hashlib.sha256((entry.folder / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_shipped_network_is_the_quantized_shipped_model(entry):
    manifest = _manifest(entry)
    model, config = load_model(entry.float_model)
    shipped = load_network(entry.quantized_model)
    again = quantize_model(model, shipped.config, config["encoding"], config["n_steps"])
    assert shipped.config.digest() == manifest["config_digest"]
    assert shipped.encoding == config["encoding"] == entry.name
    assert shipped.config.weight_width == manifest["weight_width"]
    for a, b in zip(shipped.layers, again.layers):
        assert a.weight_frac == b.weight_frac and np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_shipped_samples_are_the_device_encoders_and_predictions_the_recorded_ones(entry):
    from quant import intencode

    spikes, labels, images, header = load_samples(entry.samples)
    network = load_network(entry.quantized_model)
    pixels = intencode.to_pixels(images, network.config)
    again = intencode.encode(pixels, network.encoding, network.n_steps, network.config,
                             intencode.sample_seeds(header["seed"], len(pixels)))
    assert np.array_equal(spikes, again)
    result = golden.run(network, spikes)
    assert result.prediction.tolist() == _manifest(entry)["fixed_predictions"]
    assert (result.prediction == labels).mean() >= 0.95


def test_the_default_is_the_latency_model():
    assert assets.DEFAULT == "latency" and assets.QUANTIZED_MODEL == assets.model("latency").quantized_model
    assert load_network(assets.QUANTIZED_MODEL).encoding == "latency"
    with pytest.raises(ValueError, match="no shipped model"):
        assets.model("poisson")


def test_demo_runs_and_reports(tmp_path, capsys):
    manifest = _manifest(assets.model())
    assert demo(["--limit", "40", "--out", str(tmp_path), "--no-plot"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    expected = (np.array(manifest["fixed_predictions"][:40]) == load_samples(assets.SAMPLES)[1][:40]).mean()
    assert report["samples"] == 40 and report["fixed_accuracy"] == expected
    assert abs(report["float_accuracy"] - report["fixed_accuracy"]) <= 0.1
    assert "fixed point (golden model)" in capsys.readouterr().out
