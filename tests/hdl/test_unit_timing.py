"""hdl.unit_timing: the harness drives every input of a unit and observes every output."""

import pytest
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hdl.neuron import StandaloneLane
from hdl.unit_timing import Harness, measure
from quant.fixedpoint import DEFAULT


def test_the_harness_drives_every_input_and_folds_every_output():
    lane = StandaloneLane(DEFAULT, 24, -8, 24)
    harness = Harness(lane)
    inputs = [v for _, member, v in lane.signature.flatten(lane) if member.flow == wiring.In]
    width = sum(len(v) for v in inputs)
    seen = {"nonzero": set(), "toggles": 0}

    async def bench(ctx):
        ctx.set(harness.seed, 1)
        previous = ctx.get(harness.out)
        for _ in range(width + 50):
            await ctx.tick()
            seen["nonzero"] |= {k for k, v in enumerate(inputs) if ctx.get(v) != 0}
            out = ctx.get(harness.out)
            seen["toggles"] += out != previous
            previous = out

    sim = Simulator(harness)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen["nonzero"]) == len(inputs)      # the LFSR reached every input
    assert seen["toggles"] > 20                     # the outputs move the observed bit


@pytest.mark.slow
def test_a_lane_places_and_routes(tmp_path):
    report = measure(StandaloneLane(DEFAULT, 24, -8, 24), tmp_path, "lane", log=lambda *_: None)
    assert 20 < report["fmax_mhz"] < 500 and report["critical_path"]["sources"]
