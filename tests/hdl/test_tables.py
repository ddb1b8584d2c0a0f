"""The lanes' shared lookup tables: every lane reads its own entry, a run-time write reaches every copy."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hdl.tables import LaneTables
from quant.fixedpoint import DEFAULT


@pytest.mark.parametrize("lanes", [1, 3, 4])
def test_every_lane_reads_its_own_address_one_cycle_later_and_writes_reach_every_copy(lanes):
    cfg = DEFAULT.replace(x_lut_frac=3, x_lut_size=128, h_lut_frac=6, h_lut_size=256)
    dut = LaneTables(cfg, lanes)
    rng = np.random.default_rng(lanes)
    x_table, h_table = list(cfg.x_lut), list(cfg.h_lut)
    # A run-time rewrite of a few entries of each table, then reads of random addresses.
    writes = [("x", int(a), int(rng.integers(0, 1 << (cfg.x_width - 1)))) for a in rng.integers(0, 128, 6)]
    writes += [("h", int(a), int(rng.integers(0, 1 << (cfg.h_width - 1)))) for a in rng.integers(0, 256, 6)]
    reads = [(rng.integers(0, 128, lanes).tolist(), rng.integers(0, 256, lanes).tolist()) for _ in range(40)]
    got = []

    async def bench(ctx):
        for n, (x_addr, h_addr) in enumerate(reads[:10]):      # the initial contents
            for p in range(lanes):
                ctx.set(dut.x_addr[p], x_addr[p])
                ctx.set(dut.h_addr[p], h_addr[p])
            await ctx.tick()
            got.append(([ctx.get(dut.x_data[p]) for p in range(lanes)], [ctx.get(dut.h_data[p]) for p in range(lanes)]))
        for table, address, value in writes:
            ctx.set(dut.lut_addr, address)
            ctx.set(dut.lut_data, value)
            ctx.set(dut.x_lut_we if table == "x" else dut.h_lut_we, 1)
            await ctx.tick()
            ctx.set(dut.x_lut_we, 0)
            ctx.set(dut.h_lut_we, 0)
        for x_addr, h_addr in reads[10:]:
            for p in range(lanes):
                ctx.set(dut.x_addr[p], x_addr[p])
                ctx.set(dut.h_addr[p], h_addr[p])
            await ctx.tick()
            got.append(([ctx.get(dut.x_data[p]) for p in range(lanes)], [ctx.get(dut.h_data[p]) for p in range(lanes)]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    before = [([x_table[a] for a in x], [h_table[a] for a in h]) for x, h in reads[:10]]
    for table, address, value in writes:
        (x_table if table == "x" else h_table)[address] = value
    after = [([x_table[a] for a in x], [h_table[a] for a in h]) for x, h in reads[10:]]
    assert got == before + after
    assert any(w[2] != cfg.x_lut[w[1]] for w in writes if w[0] == "x")   # the writes changed something


def test_two_lanes_share_one_memory_per_table():
    dut = LaneTables(DEFAULT, 8)
    fragment = Fragment.get(dut, None)
    names = [name for _, name, _ in fragment.subfragments]
    assert sorted(names) == sorted([f"x_lut{k}" for k in range(4)] + [f"h_lut{k}" for k in range(4)])
