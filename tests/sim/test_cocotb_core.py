"""cocotb benches of the core's Verilog against the golden model: zero mismatches.

Each case builds the Verilog of a network, streams its samples through the event port (back to
back, so that they overlap in the core, or one at a time; with or without input bubbles and
result back-pressure), and compares every neuron's i, h, h_s and s at every step, and the final
scores, with the golden model. Without bubbles, every sample's result leaves on the cycle the
cycle model predicts.
"""


import numpy as np
import pytest

from firmware.image import pack
from hdl.cycles import CoreSchedule, golden_cycles, golden_profiles
from quant import assets, golden
from quant.golden import QuantizedLayer, QuantizedNetwork
from quant.model import SRCNet
from quant.quantize import load_network, quantize_model
from quant.samples import load_samples
from sim.runner import run_core_bench
from tests.helpers import TRAINED_RECURRENT, random_network, require_simulator

require_simulator(module_level=True)  # CI installs Icarus and sets SRC_REQUIRE_SIM

T = 24


def network(sizes, seed, weight_scale=4.0, bias=(-6.0, -4.0)):
    return random_network(sizes, seed, weight_scale, bias, n_steps=T)


def spikes(n_in, n, seed, p=0.25, graded=False):
    rng = np.random.default_rng(seed)
    amplitudes = (rng.random((n, T, n_in)) < p).astype(np.int64) * 256
    if graded:
        amplitudes = amplitudes * rng.integers(1, 257, amplitudes.shape) // 256
    return amplitudes


def bench(tmp_path, net, lanes, amplitudes, long_run=False, **drive):
    """Run the bench; check zero mismatches and, without bubbles or back-pressure, the cycle model.

    Short cases run on Icarus, long ones on Verilator (:func:`sim.runner.available_simulator`), so
    CI runs both simulators."""
    report = run_core_bench(net, lanes, amplitudes, tmp_path, long_run=long_run, **drive)
    assert report["mismatches"] == []
    assert all(s["blocks_compared"] > 0 for s in report["samples"])
    if not drive.get("idle") and not drive.get("backpressure"):
        image = pack(net, lanes)
        if drive.get("stream", True):
            profiles, _ = golden_profiles(net, image, amplitudes)
            assert [s["done"] for s in report["samples"]] == CoreSchedule(image).run(profiles)
        else:
            assert [s["cycles"] for s in report["samples"]] == [golden_cycles(net, image, a)[0] for a in amplitudes]
    return report


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_one_hidden_layer(tmp_path, lanes):
    report = bench(tmp_path, network([20, 12, 100], lanes), lanes, spikes(20, 2, lanes))
    assert all(s["events"][0] > 0 and s["events"][1] > 0 for s in report["samples"])


def test_several_hidden_layers_and_graded_input(tmp_path):
    bench(tmp_path, network([16, 10, 9, 100], 5), 4, spikes(16, 3, 5, graded=True))


def test_samples_one_at_a_time(tmp_path):
    bench(tmp_path, network([16, 10, 9, 100], 8), 3, spikes(16, 2, 8), stream=False)


@pytest.mark.parametrize("lanes", [2, 5])
def test_input_bubbles_and_result_backpressure(tmp_path, lanes):
    """Random idle input cycles and ``result.ready`` low half the time: still zero mismatches."""
    report = bench(tmp_path, network([16, 10, 9, 100], 9), lanes, spikes(16, 4, 9), idle=0.3, backpressure=0.5,
                   seed=lanes)
    assert len(report["samples"]) == 4


def test_single_layer(tmp_path):
    bench(tmp_path, network([30, 100], 6), 8, spikes(30, 1, 6))


def _rails(sign, lanes=4):
    cfg = quantize_model(SRCNet([12, 100])).config
    weight = np.full((100, 12), sign * cfg.weight_max, np.int64)
    weight[::3] *= -1   # both rails in one network
    return QuantizedNetwork([QuantizedLayer(weight, 0, np.full(100, cfg.b_h_max, np.int64))], 10, cfg, "rate", T)


@pytest.mark.parametrize("sign", [1, -1])
def test_extreme_weights_saturate_at_both_rails(tmp_path, sign):
    net, amplitudes = _rails(sign), np.full((1, T, 12), 256, np.int64)
    result = golden.run(net, amplitudes.transpose(1, 0, 2), record=True)
    assert result.saturations["i[0]"] > 0
    i = result.states[0]["i"]
    assert (i == net.config.i_max).any() and (i == net.config.i_min).any()
    bench(tmp_path, net, 4, amplitudes)


def test_bias_at_the_clamp_silent_and_full_inputs(tmp_path):
    net = network([20, 12, 100], 7, bias=(-4.0, -4.0))
    assert all((layer.bias == net.config.b_h_max).all() for layer in net.layers)
    silent = np.zeros((1, T, 20), np.int64)
    full = np.full((1, T, 20), 256, np.int64)
    report = bench(tmp_path, net, 4, np.concatenate([silent, full]))
    assert report["samples"][0]["input_events"] == 0 and report["samples"][1]["input_events"] == T * 20
    assert report["samples"][0]["events"][0] > 0   # b_h = -4 fires with no input (paper section 3)


def test_shipped_model_on_a_real_mnist_sample(tmp_path):
    net = load_network(assets.QUANTIZED_MODEL)
    amplitudes, labels, _, _ = load_samples(assets.SAMPLES)
    sample = amplitudes[:, :1].transpose(1, 0, 2).astype(np.int64) * net.config.one
    report = bench(tmp_path, net, 8, sample, long_run=True)
    assert report["samples"][0]["prediction"] == golden.run(net, amplitudes[:, :1]).prediction[0]


@pytest.mark.parametrize("lanes", [3, 8])
def test_a_recurrent_layer(tmp_path, lanes):
    """The lateral path in Verilog: the hidden layer's spikes of step t are its own inputs of t + 1;
    streamed samples, cycle-exact."""
    net = random_network([16, 10, 100], 11 + lanes, n_steps=T, recurrent=[0])
    report = bench(tmp_path, net, lanes, spikes(16, 3, 11, p=0.35))
    assert all(s["events"][1] > 0 for s in report["samples"])


def test_a_recurrent_output_layer_with_bubbles_and_backpressure(tmp_path):
    net = random_network([16, 9, 100], 13, n_steps=T, recurrent=[0, 1])
    bench(tmp_path, net, 4, spikes(16, 3, 13, p=0.35), idle=0.3, backpressure=0.5, seed=2)


def test_a_trained_recurrent_model_on_a_real_fashion_sample(tmp_path):
    net = load_network(TRAINED_RECURRENT / "model.npz")
    assert net.recurrent == [1]
    spikes_tn, labels, _, _ = load_samples(TRAINED_RECURRENT / "samples.npz")
    sample = spikes_tn[:, :1].transpose(1, 0, 2).astype(np.int64) * net.config.one
    report = bench(tmp_path, net, 8, sample, long_run=True)
    assert report["samples"][0]["prediction"] == golden.run(net, spikes_tn[:, :1]).prediction[0]
    assert report["samples"][0]["events"][1] > 0
