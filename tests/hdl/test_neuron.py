"""Amaranth-simulator tests of the neuron lane against the golden model's arithmetic."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.neuron import StandaloneLane
from quant.fixedpoint import DEFAULT
from quant.golden import round_shift, saturate
from quant.lut import lookup


def golden_update(cfg, i_prev, h_prev, hs_prev, acc, bias, acc_shift):
    """One neuron update, written with the golden model's primitives (the order of quant.golden._layer)."""
    c = cfg.constants
    i = saturate(round_shift(c["alpha"] * i_prev, cfg.coef_frac) + round_shift(acc, acc_shift), cfg.i_min, cfg.i_max)
    x = lookup(cfg.x_lut, i, cfg.i_frac - cfg.x_lut_frac)
    pre = x + bias + round_shift(c["r"] * h_prev, cfg.coef_frac) + round_shift(
        c["r_s"] * hs_prev, cfg.coef_frac + cfg.hs_frac - cfg.state_frac)
    h = lookup(cfg.h_lut, pre, cfg.state_frac - cfg.h_lut_frac)
    z = np.where(h_prev >= cfg.half, c["z_dep"], c["z_hyp"])
    hs = round_shift(z * hs_prev + (c["one_coef"] - z) * (h_prev << (cfg.hs_frac - cfg.state_frac)), cfg.coef_frac)
    return int(i), int(h), int(hs), int(max(h, 0))


def random_cases(cfg, n, seed, acc_width):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        cases.append(dict(
            i_prev=int(rng.integers(cfg.i_min, cfg.i_max + 1)),
            h_prev=int(rng.integers(-cfg.one, cfg.one + 1)),
            hs_prev=int(rng.integers(-(1 << cfg.hs_frac), (1 << cfg.hs_frac) + 1)),
            acc=int(rng.integers(-(1 << (acc_width - 2)), 1 << (acc_width - 2))),
            bias=int(rng.integers(cfg.bias_min, cfg.b_h_max + 1)),
            acc_shift=int(rng.integers(-2, 11)),
        ))
    # Rails and hand-picked corners.
    cases += [
        dict(i_prev=cfg.i_max, h_prev=cfg.one, hs_prev=-(1 << cfg.hs_frac), acc=(1 << (acc_width - 2)) - 1,
             bias=cfg.b_h_max, acc_shift=-2),
        dict(i_prev=cfg.i_min, h_prev=-cfg.one, hs_prev=1 << cfg.hs_frac, acc=-(1 << (acc_width - 2)),
             bias=cfg.bias_min, acc_shift=-2),
        dict(i_prev=0, h_prev=cfg.half, hs_prev=0, acc=0, bias=cfg.b_h_max, acc_shift=0),
        dict(i_prev=0, h_prev=cfg.half - 1, hs_prev=0, acc=0, bias=cfg.b_h_max, acc_shift=0),
    ]
    return cases


@pytest.mark.parametrize("cfg", [DEFAULT, DEFAULT.replace(x_lut_frac=3, x_lut_size=128, h_lut_frac=6, h_lut_size=256,
                                                          hs_frac=8, coef_frac=10)])
def test_lane_matches_golden_arithmetic(cfg):
    acc_width = cfg.acc_width(784)
    dut = StandaloneLane(cfg, acc_width, -2, 10)
    cases = random_cases(cfg, 400, 0, acc_width)
    expected = [golden_update(cfg, **case) for case in cases]
    got = []

    async def bench(ctx):
        for n, case in enumerate(cases + [cases[-1]] * dut.LATENCY):
            for name, value in case.items():
                ctx.set(getattr(dut, name), value)
            await ctx.tick()
            if n >= dut.LATENCY - 1 and len(got) < len(cases):
                got.append((ctx.get(dut.i), ctx.get(dut.h), ctx.get(dut.hs), ctx.get(dut.s)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    mismatches = [(case, e, g) for case, e, g in zip(cases, expected, got) if e != g]
    assert not mismatches, mismatches[:3]
    assert any(h >= cfg.half for _, h, _, _ in expected) and any(i == cfg.i_max for i, _, _, _ in expected)
