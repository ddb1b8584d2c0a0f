"""The layer table: the baked image's rows at reset, any network's after its LOAD_TABLE writes."""

from amaranth.sim import Simulator

from firmware.image import TABLE_FIELDS, DeviceLimits, pack
from hdl.layer_table import LayerTable
from hdl.layouts import LOAD_TABLE, load_writes
from tests.helpers import random_network


FIELDS = (*TABLE_FIELDS, "more_groups", "several_groups")


def _rows(ctx, dut, layers):
    return [{name: ctx.get(dut.rows[k][name]) for name in FIELDS} for k in range(layers)]


def _expected(e):
    """A row as the scheduler reads it: the table's fields, and its groups of four blocks (by hand:
    ceil(blocks / 4) - 1 more after the first, and whether there are several)."""
    groups = -(-e.blocks // 4)
    return {**{name: getattr(e, name) for name in TABLE_FIELDS}, "more_groups": groups - 1,
            "several_groups": int(groups > 1)}


def test_reset_rows_are_the_baked_image_and_writes_replace_them():
    baked = pack(random_network([24, 12, 100], seed=1, n_steps=30), 4)
    other = pack(random_network([20, 20, 100], seed=2, n_steps=25), 4)
    dut = LayerTable(baked, DeviceLimits(2, 24, 100, 600, 60, 30))
    seen = {}

    async def bench(ctx):
        seen["reset"] = (_rows(ctx, dut, 2), ctx.get(dut.n_steps))
        for memory, address, word in load_writes(other):
            if memory == LOAD_TABLE:
                ctx.set(dut.write, {"valid": 1, "address": address, "word": word})
                await ctx.tick()
        ctx.set(dut.write, {"valid": 0})
        await ctx.tick()
        seen["loaded"] = (_rows(ctx, dut, 2), ctx.get(dut.n_steps))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expect = lambda image: ([_expected(e) for e in image.layers], image.n_steps)
    assert seen["reset"] == expect(baked)
    assert seen["loaded"] == expect(other)
    assert seen["loaded"] != seen["reset"]
    # Layer 0 has 3 blocks of 4 lanes (one group) in the baked image, 5 (two groups) in the other;
    # layer 1, 25 blocks: 7 groups.
    assert (seen["reset"][0][0]["several_groups"], seen["loaded"][0][0]["several_groups"]) == (0, 1)
    assert seen["loaded"][0][1]["more_groups"] == 6
