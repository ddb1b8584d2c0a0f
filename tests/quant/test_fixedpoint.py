import math

import numpy as np
import pytest

from quant.fixedpoint import DEFAULT, FixedPointConfig, quantize_constant, round_shift_int
from quant.golden import round_shift
from quant.lut import error_bound, h_table, lookup, x_table
from quant.srcparams import PAPER_LATENCY


@pytest.mark.parametrize("value, shift, expected", [
    (5, 1, 3),     # 2.5 -> 3: ties go up
    (-5, 1, -2),   # -2.5 -> -2: ties go up, towards +inf
    (7, 2, 2),     # 1.75 -> 2
    (6, 2, 2),     # 1.5 -> 2
    (-6, 2, -1),   # -1.5 -> -1
    (-7, 2, -2),   # -1.75 -> -2
    (-1, 3, 0),    # -0.125 -> 0
    (3, 0, 3),
    (3, -2, 12),   # negative shift is an exact left shift
])
def test_round_half_up_on_hand_picked_cases(value, shift, expected):
    assert int(round_shift(value, shift)) == expected
    assert round_shift_int(value, shift) == expected


def test_quantized_constants_by_hand():
    c = DEFAULT.constants  # coef_frac = 12
    assert c["alpha"] == 3686          # 0.9 * 4096 = 3686.4
    assert c["z_hyp"] == 3686 and c["z_dep"] == 0
    assert c["r"] == 8192 and c["r_s"] == -28672
    assert c["readout_alpha"] == 4055  # 0.99 * 4096 = 4055.04
    assert c["readout_neg"] == -410    # -409.6 -> -410 (half up of -409.1)
    assert DEFAULT.b_h_max == -1024    # -4 * 256
    assert quantize_constant(-2.5, 0) == -2 and quantize_constant(2.5, 0) == 3
    assert DEFAULT.replace(params=PAPER_LATENCY).constants["alpha"] == 4055


def test_derived_widths_hold_their_worst_cases():
    cfg = DEFAULT
    assert cfg.one == 256 and cfg.half == 128 and cfg.weight_max == 127
    assert cfg.acc_width(784) == (784 * 127 * 256).bit_length() + 1
    worst_pre = max(cfg.x_lut) + abs(cfg.bias_min) + 2 * cfg.one + 7 * cfg.one
    assert worst_pre < 1 << (cfg.pre_width - 1)
    assert max(cfg.x_lut) < 1 << (cfg.x_width - 1)


def test_invalid_configurations_are_rejected():
    with pytest.raises(ValueError, match=r"x_lut_frac = 12 is outside 0\.\.10"):
        FixedPointConfig(x_lut_frac=12, i_frac=10)
    with pytest.raises(ValueError, match="bias_width = 8 cannot hold b_h_max"):
        FixedPointConfig(bias_width=8)


def test_digest_identifies_the_configuration():
    assert DEFAULT.digest() == FixedPointConfig().digest()
    assert DEFAULT.digest() != DEFAULT.replace(weight_width=6).digest()
    assert FixedPointConfig.from_dict(DEFAULT.to_dict()) == DEFAULT


def test_lut_entries_by_hand():
    x, h = x_table(DEFAULT), h_table(DEFAULT)
    assert x[0] == 0 and h[0] == 0
    assert x[32] == math.floor(3 * math.tanh(1 / 3) * 256 + 0.5)   # |i| = 1.0
    assert h[256] == math.floor(math.tanh(1.0) * 256 + 0.5) == 195
    assert h[-1] == 256 and x[-1] == 768                           # the tables reach the limits


@pytest.mark.parametrize("cfg", [DEFAULT, DEFAULT.replace(x_lut_frac=3, x_lut_size=128, h_lut_frac=6, h_lut_size=256)])
def test_x_lut_error_within_bound_over_every_i(cfg):
    i = np.arange(cfg.i_min, cfg.i_max + 1)
    got = lookup(cfg.x_lut, i, cfg.i_frac - cfg.x_lut_frac) / cfg.one
    exact = cfg.params.rho * np.tanh(i / 2.0 ** cfg.i_frac / cfg.params.rho)
    err = np.abs(got - exact).max()
    assert err <= error_bound(cfg, "x")
    assert err > error_bound(cfg, "x") / 4   # the bound is tight, not vacuous
    assert np.array_equal(lookup(cfg.x_lut, -i, cfg.i_frac - cfg.x_lut_frac),
                          -lookup(cfg.x_lut, i, cfg.i_frac - cfg.x_lut_frac))


@pytest.mark.parametrize("cfg", [DEFAULT, DEFAULT.replace(h_lut_frac=6, h_lut_size=256)])
def test_h_lut_error_within_bound_over_every_pre(cfg):
    pre = np.arange(-(1 << (cfg.pre_width - 1)), 1 << (cfg.pre_width - 1))
    got = lookup(cfg.h_lut, pre, cfg.state_frac - cfg.h_lut_frac) / cfg.one
    err = np.abs(got - np.tanh(pre / cfg.one)).max()
    assert err <= error_bound(cfg, "h")
    assert err > error_bound(cfg, "h") / 4
    assert np.abs(got).max() <= 1.0


@pytest.mark.parametrize("field, value", [("coef_frac", 52), ("coef_frac", 0), ("state_frac", 0), ("i_frac", 16),
                                          ("weight_width", 40), ("x_lut_size", 1), ("readout_width", 64),
                                          ("hs_frac", 4), ("h_lut_frac", 9)])
def test_every_field_out_of_its_range_is_rejected_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field} = {value} is outside"):
        FixedPointConfig(**{field: value})


def test_combinations_that_overflow_int64_are_rejected_naming_the_fields():
    # Each field within its own range, together too wide for int64.
    with pytest.raises(ValueError, match="coef_frac and hs_frac make the golden model's worst case"):
        FixedPointConfig(coef_frac=30, hs_frac=34)
    with pytest.raises(ValueError, match="coef_frac and readout_width"):
        FixedPointConfig(coef_frac=20, readout_width=48)
    with pytest.raises(ValueError, match="r_s = -100"):
        FixedPointConfig(params=DEFAULT.params.__class__(r_s=-100.0))


from hypothesis import HealthCheck, assume, given, settings, strategies as st


def _reference_network(weights, biases, wfrac, inputs, cfg, n_classes):
    """One layer and the readout in unbounded Python ints, straight from quant.golden's docstring."""
    from tests.quant.test_golden import reference_neuron, rshift

    traces = [reference_neuron(w, b, wfrac, inputs, cfg) for w, b in zip(weights, biases)]
    c, g = cfg.constants, cfg.params.group_size
    v = [0] * n_classes
    for t in range(len(inputs)):
        s = [trace[t][4] for trace in traces]
        group = [sum(s[k * g:(k + 1) * g]) for k in range(n_classes)]
        total = sum(group)
        shift = cfg.coef_frac + cfg.state_frac - cfg.readout_frac
        v = [max(cfg.readout_min, min(cfg.readout_max, rshift(c["readout_alpha"] * v[k], cfg.coef_frac) + rshift(
            c["readout_pos"] * group[k] + c["readout_neg"] * (total - group[k]), shift))) for k in range(n_classes)]
    return [[trace[t][:4] for trace in traces] for t in range(len(inputs))], v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.data())
def test_accepted_configurations_compute_exactly_at_their_extremes(data):
    """Whatever the constructor accepts, the int64 golden model equals unbounded integer arithmetic,
    with every state driven to its rails."""
    from quant import golden
    from quant.golden import QuantizedLayer, QuantizedNetwork
    from quant.srcparams import SRCParams

    # Ranges' ends are drawn often: that is where int64 would overflow.
    draw = lambda lo, hi: data.draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi])))
    state_frac = draw(1, 14)
    i_width = draw(4, 40)
    fields = dict(weight_width=draw(2, 24), max_weight_frac=draw(0, 30), bias_width=draw(8, 32),
                  state_frac=state_frac, i_width=i_width, i_frac=draw(0, min(i_width - 1, 24)),
                  hs_frac=draw(state_frac, 40), coef_frac=draw(1, 30),
                  readout_width=draw(2, 48), readout_frac=draw(0, 40))
    # Tables that reach their functions' limits (|u| up to 4), so h and h_s reach their rails.
    fields["x_lut_frac"] = draw(0, min(fields["i_frac"], 3))
    fields["x_lut_size"] = 4 << fields["x_lut_frac"] + 2
    fields["h_lut_frac"] = draw(0, min(state_frac, 3))
    fields["h_lut_size"] = 4 << fields["h_lut_frac"]
    try:
        cfg = FixedPointConfig(params=SRCParams(group_size=1, b_h_max=0.0), **fields)
    except ValueError:
        assume(False)
    n_in, n_out = 3, 2
    wfrac = data.draw(st.sampled_from([0, cfg.max_weight_frac]))
    assume(cfg.acc_width(n_in) <= 53)
    sign = data.draw(st.sampled_from([1, -1]))
    weights = [[sign * cfg.weight_max] * n_in, [-sign * cfg.weight_max, cfg.weight_max, sign * cfg.weight_max]]
    biases = [cfg.b_h_max, cfg.bias_min]
    steps = 40
    inputs = [[cfg.one] * n_in if t < 25 else [0] * n_in for t in range(steps)]
    network = QuantizedNetwork([QuantizedLayer(np.array(weights, np.int64), wfrac, np.array(biases, np.int64))],
                               n_out, cfg, n_steps=steps)
    got = golden.run(network, np.array(inputs, np.int64)[:, None, :], record=True)
    states, scores = _reference_network(weights, biases, wfrac, inputs, cfg, n_out)
    for t in range(steps):
        for n in range(n_out):
            assert tuple(int(got.states[0][k][t, 0, n]) for k in ("i", "x", "h", "h_s")) == states[t][n], (t, n)
    assert got.scores[0].tolist() == scores
