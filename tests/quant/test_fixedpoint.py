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
    with pytest.raises(ValueError, match="x_lut_frac cannot exceed i_frac"):
        FixedPointConfig(x_lut_frac=12, i_frac=10)
    with pytest.raises(ValueError, match="bias_width cannot hold"):
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
