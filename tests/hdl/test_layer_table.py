"""The layer table: the baked image's rows at reset, any network's after its LOAD_TABLE writes."""

from amaranth.sim import Simulator

from firmware.image import TABLE_FIELDS, DeviceLimits, pack
from hdl.layer_table import LayerTable
from hdl.layouts import LOAD_TABLE, load_writes
from tests.helpers import random_network


def _rows(ctx, dut, layers):
    return [{name: ctx.get(dut.rows[k][name]) for name in TABLE_FIELDS} for k in range(layers)]


def test_reset_rows_are_the_baked_image_and_writes_replace_them():
    baked = pack(random_network([24, 12, 100], seed=1, n_steps=30), 4)
    other = pack(random_network([20, 16, 100], seed=2, n_steps=25), 4)
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
    expect = lambda image: ([{name: getattr(e, name) for name in TABLE_FIELDS} for e in image.layers], image.n_steps)
    assert seen["reset"] == expect(baked)
    assert seen["loaded"] == expect(other)
    assert seen["loaded"] != seen["reset"]
