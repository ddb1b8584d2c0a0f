"""A memory of block-RAM-deep chunks against a Python list: contents, writes, and the read latency."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.chunked import CHUNK, ChunkedMemory


@pytest.mark.parametrize("depth", [300, 2 * CHUNK + 40])     # one chunk; two full chunks and a short one
def test_reads_equal_a_list_three_cycles_later_and_writes_land(depth):
    rng = np.random.default_rng(depth)
    init = rng.integers(0, 1 << 20, depth).tolist()
    dut = ChunkedMemory(20, depth, init)
    model = list(init)
    # Each cycle a read of a random address and, on some cycles, a write.
    plan = [(int(rng.integers(0, depth)), (int(rng.integers(0, depth)), int(rng.integers(0, 1 << 20)))
             if rng.random() < 0.3 else None) for _ in range(400)]
    plan += [(a, None) for a in range(0, depth, 7)]          # every chunk, after the writes
    got, want = [], []

    async def bench(ctx):
        for cycle, (address, write) in enumerate(plan + [(0, None)] * dut.LATENCY):
            ctx.set(dut.read_addr, address)
            ctx.set(dut.write_en, write is not None)
            if write:
                ctx.set(dut.write_addr, write[0])
                ctx.set(dut.write_data, write[1])
            if cycle >= dut.LATENCY:
                got.append(ctx.get(dut.read_data))
            await ctx.tick()

    # The read of cycle c sees the writes of cycles up to c: its address is registered, the
    # memory read the next cycle (a read port not transparent to the write of its own cycle).
    for address, write in plan:
        if write:
            model[write[0]] = write[1]
        want.append(model[address])
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
