import numpy as np
import pytest
import torch

from quant import golden
from quant.fixedpoint import DEFAULT, FixedPointConfig
from quant.golden import QuantizedLayer, QuantizedNetwork
from quant.model import SRCNet
from quant.quantize import quantize_model

WIDE = FixedPointConfig(weight_width=16, max_weight_frac=14, bias_width=24, state_frac=16, i_width=28, i_frac=18,
                        hs_frac=20, coef_frac=24, x_lut_frac=10, x_lut_size=16 * 1024, h_lut_frac=12,
                        h_lut_size=6 * 4096, readout_width=36, readout_frac=16)


def rshift(v, k):
    """Round half up, written independently: floor(v / 2**k + 1/2) with Python ints."""
    return (2 * v + (1 << k)) // (1 << (k + 1)) if k > 0 else v << -k


def reference_neuron(weights, bias, wfrac, inputs, cfg=DEFAULT):
    """One neuron, scalar Python ints, straight from the specification in quant.golden's docstring."""
    c, x_lut, h_lut = cfg.constants, cfg.x_lut, cfg.h_lut

    def lut(table, v, shift):
        k = min(rshift(abs(v), shift), len(table) - 1)
        return table[k] if v >= 0 else -table[k]

    i = h = hs = 0
    trace = []
    for amps in inputs:
        acc = sum(w * a for w, a in zip(weights, amps))
        i = max(cfg.i_min, min(cfg.i_max, rshift(c["alpha"] * i, cfg.coef_frac)
                               + rshift(acc, wfrac + cfg.state_frac - cfg.i_frac)))
        x = lut(x_lut, i, cfg.i_frac - cfg.x_lut_frac)
        pre = x + bias + rshift(c["r"] * h, cfg.coef_frac) + rshift(c["r_s"] * hs, cfg.coef_frac + cfg.hs_frac - cfg.state_frac)
        z = c["z_dep"] if h >= cfg.half else c["z_hyp"]
        hs = rshift(z * hs + (c["one_coef"] - z) * h * (1 << (cfg.hs_frac - cfg.state_frac)), cfg.coef_frac)
        h = lut(h_lut, pre, cfg.state_frac - cfg.h_lut_frac)
        trace.append((i, x, h, hs, max(h, 0)))
    return trace


def one_layer_network(weight, bias, wfrac=7, cfg=DEFAULT):
    """A one-layer network (100 outputs for the readout) whose neuron 0 is the neuron under test."""
    w = np.zeros((100, len(weight)), np.int64)
    w[0] = weight
    b = np.full(100, -1536, np.int64)
    b[0] = bias
    return QuantizedNetwork([QuantizedLayer(w, wfrac, b)], 10, cfg)


@pytest.mark.parametrize("bias", [-1024, -1536])
def test_golden_matches_the_scalar_reference_step_by_step(bias):
    rng = np.random.default_rng(1)
    weights = [90, -40, 127, 60]
    inputs = [[int(a) for a in row] for row in (rng.random((80, 4)) < 0.5) * 256]
    inputs[10] = [0, 0, 128, 0]  # a graded amplitude
    net = one_layer_network(weights, bias)
    r = golden.run(net, np.array(inputs, np.int64)[:, None, :], record=True)
    ref = reference_neuron(weights, bias, 7, inputs)
    got = list(zip(*(r.states[0][k][:, 0, 0].tolist() for k in ("i", "x", "h", "h_s", "s"))))
    assert got == ref
    assert any(h >= DEFAULT.half for _, _, h, _, _ in ref), "exercise the depolarised branch"


def test_hand_computed_first_steps():
    # One input of weight 64 at weight_frac 7 (0.5), spiking at step 0 only; bias -4.
    net = one_layer_network([64], -1024)
    r = golden.run(net, np.array([[[256]], [[0]]], np.int64), record=True)
    st = r.states[0]
    # acc = 64*256 = 16384 (frac 15); i = 16384 >> 5 = 512 (frac 10: 0.5)
    assert st["i"][0, 0, 0] == 512
    # x: |i| >> 5 = 16 -> round(3 tanh(0.5/3) 256) = 127
    assert st["x"][0, 0, 0] == 127
    # pre = 127 - 1024 = -897 -> tanh(-3.50390625) -> -256
    assert st["h"][0, 0, 0] == -256 and st["h_s"][0, 0, 0] == 0 and st["s"][0, 0, 0] == 0
    # step 1: i = (3686*512 + 2048) >> 12 = 461; h_s = (3686*0 + 410*(-256*16)) >> 12 = -410
    assert st["i"][1, 0, 0] == 461
    assert st["h_s"][1, 0, 0] == (410 * -4096 + 2048) >> 12 == -410


def _rail_network(weight_value, cfg=DEFAULT):
    w = np.full((100, 50), weight_value, np.int64)
    return QuantizedNetwork([QuantizedLayer(w, 0, np.full(100, cfg.b_h_max, np.int64))], 10, cfg)


@pytest.mark.parametrize("sign, rail", [(1, "i_max"), (-1, "i_min")])
def test_synaptic_state_saturates_at_both_rails_and_counts(sign, rail):
    net = _rail_network(sign * DEFAULT.weight_max)   # weight_frac 0: each event adds 127 * 2**-... huge
    r = golden.run(net, np.ones((5, 2, 50), bool), record=True)
    assert (r.states[0]["i"] == getattr(DEFAULT, rail)).all()
    assert r.saturations["i[0]"] == 5 * 2 * 100
    assert (np.abs(r.states[0]["x"]) == DEFAULT.x_lut[-1]).all()


def test_readout_saturates_and_counts():
    cfg = DEFAULT.replace(readout_width=10)
    net = _rail_network(DEFAULT.weight_max, cfg)
    r = golden.run(net, np.ones((200, 1, 50), bool), record=True)
    assert r.saturations["v"] > 0
    assert r.readout.max() <= cfg.readout_max and r.readout.min() >= cfg.readout_min


def test_silent_input_gives_silent_network_at_the_default_bias():
    torch.manual_seed(0)
    net = quantize_model(SRCNet([30, 20, 100]))
    r = golden.run(net, np.zeros((100, 3, 30), bool))
    assert all(c.sum() == 0 for c in r.spike_counts) and (r.scores == 0).all()
    assert (r.prediction == 0).all()   # ties go to the lowest class


def test_deterministic_and_batch_independent():
    torch.manual_seed(3)
    model = SRCNet([40, 30, 100])
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(4)
            layer.bias.uniform_(-6, -4)
    net = quantize_model(model)
    spikes = np.random.default_rng(0).random((60, 7, 40)) < 0.3
    full = golden.run(net, spikes, record=True)
    again = golden.run(net, spikes, record=True)
    assert np.array_equal(full.scores, again.scores)
    assert sum(c.sum() for c in full.spike_counts) > 0
    for k in (0, 4, 6):
        alone = golden.run(net, spikes[:, k:k + 1], record=True)
        assert np.array_equal(alone.scores[0], full.scores[k])
        for layer_alone, layer_full in zip(alone.states, full.states):
            for name in ("i", "h", "h_s", "s"):
                assert np.array_equal(layer_alone[name][:, 0], layer_full[name][:, k])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wide_formats_track_the_float_model(seed):
    torch.manual_seed(seed)
    model = SRCNet([40, 30, 100]).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(3)
            layer.bias.uniform_(-6, -4)
    spikes = (torch.rand(100, 8, 40) < 0.2).double()
    with torch.no_grad():
        logits, _, states = model(spikes, return_states=True)
    r = golden.run(quantize_model(model, WIDE), spikes.numpy().astype(bool), record=True)
    # The first layer's synaptic state depends only on inputs and weights: tight everywhere.
    assert np.abs(r.states[0]["i"] / 2.0 ** WIDE.i_frac - states[0]["i"].numpy()).max() < 2e-3
    assert sum(c.sum() for c in r.spike_counts) > 100
    for k in range(2):
        for name, frac in (("h", WIDE.state_frac), ("h_s", WIDE.hs_frac)):
            err = np.abs(r.states[k][name] / 2.0 ** frac - states[k][name].numpy())
            # Spike dynamics amplify tiny differences only where h crosses 0.5 a step earlier or later.
            assert (err > 1e-2).mean() < 0.03, (k, name)
            assert np.quantile(err, 0.99) < 0.03, (k, name)


def test_bad_inputs_are_rejected():
    net = quantize_model(SRCNet([30, 100]))
    with pytest.raises(ValueError, match=r"shape \(T, batch, 30\)"):
        golden.run(net, np.zeros((5, 2, 31), bool))
    with pytest.raises(ValueError, match=r"\[0, 256\]"):
        golden.run(net, np.full((5, 2, 30), 300, np.int64))
    with pytest.raises(ValueError, match="binary"):
        golden.run(net, np.full((5, 2, 30), 0.5))
    w = np.zeros((100, 30), np.int64)
    with pytest.raises(ValueError, match="weights exceed"):
        QuantizedNetwork([QuantizedLayer(w + 128, 7, np.full(100, -1024))], 10, DEFAULT)
    with pytest.raises(ValueError, match="biases outside"):
        QuantizedNetwork([QuantizedLayer(w, 7, np.full(100, -1000))], 10, DEFAULT)


def _scalar_recurrent(weight, weight_rec, bias, wfrac, inputs, cfg=DEFAULT):
    """(i, h, h_s, s) of every step and neuron of a recurrent layer, scalar ints."""
    c, x_lut, h_lut = cfg.constants, cfg.x_lut, cfg.h_lut

    def lut(table, v, shift):
        k = min(rshift(abs(v), shift), len(table) - 1)
        return table[k] if v >= 0 else -table[k]

    n = len(bias)
    i, h, hs, s = [0] * n, [0] * n, [0] * n, [0] * n
    trace = []
    for amps in inputs:
        acc = [sum(int(w) * int(a) for w, a in zip(weight[k], amps))
               + sum(int(w) * a for w, a in zip(weight_rec[k], s)) for k in range(n)]
        new = []
        for k in range(n):
            i[k] = max(cfg.i_min, min(cfg.i_max, rshift(c["alpha"] * i[k], cfg.coef_frac)
                                      + rshift(acc[k], wfrac + cfg.state_frac - cfg.i_frac)))
            x = lut(x_lut, i[k], cfg.i_frac - cfg.x_lut_frac)
            pre = (x + int(bias[k]) + rshift(c["r"] * h[k], cfg.coef_frac)
                   + rshift(c["r_s"] * hs[k], cfg.coef_frac + cfg.hs_frac - cfg.state_frac))
            z = c["z_dep"] if h[k] >= cfg.half else c["z_hyp"]
            hs[k] = rshift(z * hs[k] + (c["one_coef"] - z) * h[k] * (1 << (cfg.hs_frac - cfg.state_frac)),
                           cfg.coef_frac)
            h[k] = lut(h_lut, pre, cfg.state_frac - cfg.h_lut_frac)
            new.append(max(h[k], 0))
        s = new
        trace.append((list(i), list(h), list(hs), list(s)))
    return trace


def test_a_recurrent_layer_matches_the_scalar_reference():
    rng = np.random.default_rng(4)
    n_in, n = 6, 100
    weight = rng.integers(-127, 128, (n, n_in))
    weight_rec = rng.integers(-60, 61, (n, n))
    bias = rng.integers(-1200, -1024, n)
    inputs = (rng.random((30, n_in)) < 0.5) * 256
    net = QuantizedNetwork([QuantizedLayer(weight, 7, bias, weight_rec)], 10, DEFAULT)
    assert net.recurrent == [0] and net.shape_name() == "6-R100"
    r = golden.run(net, inputs[:, None, :], record=True)
    ref = _scalar_recurrent(weight, weight_rec, bias, 7, inputs.tolist())
    assert sum(sum(v > 0 for v in step[3]) for step in ref) > 50, "the lateral path must carry spikes"
    for t, (i, h, hs, s) in enumerate(ref):
        for name, values in (("i", i), ("h", h), ("h_s", hs), ("s", s)):
            assert r.states[0][name][t, 0].tolist() == values, (t, name)
    # The lateral weights matter: without them the same layer gives other states.
    plain = golden.run(QuantizedNetwork([QuantizedLayer(weight, 7, bias)], 10, DEFAULT), inputs[:, None, :], record=True)
    assert not np.array_equal(plain.states[0]["h"], r.states[0]["h"])


def test_recurrent_weights_are_checked():
    w, b = np.zeros((100, 8), np.int64), np.full(100, -1024)
    with pytest.raises(ValueError, match="recurrent weights of shape"):
        QuantizedNetwork([QuantizedLayer(w, 7, b, np.zeros((100, 99), np.int64))], 10, DEFAULT)
    with pytest.raises(ValueError, match="recurrent weights exceed"):
        QuantizedNetwork([QuantizedLayer(w, 7, b, np.full((100, 100), 200, np.int64))], 10, DEFAULT)


def test_a_wide_recurrent_network_tracks_the_float_model():
    torch.manual_seed(7)
    model = SRCNet([40, 30, 100], recurrent=[0]).double()
    with torch.no_grad():
        model.layers[0].weight_rec.uniform_(-0.3, 0.3)
        for layer in model.layers:
            layer.weight.mul_(3)
            layer.bias.uniform_(-6, -4)
    spikes = (torch.rand(100, 8, 40) < 0.2).double()
    with torch.no_grad():
        _, _, states = model(spikes, return_states=True)
    r = golden.run(quantize_model(model, WIDE), spikes.numpy().astype(bool), record=True)
    assert r.spike_counts[0].sum() > 100
    for k in range(2):
        err = np.abs(r.states[k]["h"] / 2.0 ** WIDE.state_frac - states[k]["h"].numpy())
        assert (err > 1e-2).mean() < 0.03 and np.quantile(err, 0.99) < 0.03, k
