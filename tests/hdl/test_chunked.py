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
    # Each cycle a read of a random address, or a write (never both: the write would take the
    # chunk's port from the read), some of them reads of the address written the cycle before.
    plan = []
    for _ in range(400):
        if rng.random() < 0.3:
            plan.append(("write", int(rng.integers(0, depth)), int(rng.integers(0, 1 << 20))))
        elif plan and plan[-1][0] == "write" and rng.random() < 0.5:
            plan.append(("read", plan[-1][1]))
        else:
            plan.append(("read", int(rng.integers(0, depth))))
    plan += [("read", a) for a in range(0, depth, 7)]          # every chunk, after the writes
    assert sum(op[0] == "write" for op in plan) > 80
    got, want = [], []

    async def bench(ctx):
        for cycle, op in enumerate(plan + [("idle",)] * dut.LATENCY):
            ctx.set(dut.read_addr, op[1] if op[0] == "read" else 0)
            ctx.set(dut.write_en, op[0] == "write")
            if op[0] == "write":
                ctx.set(dut.write_addr, op[1])
                ctx.set(dut.write_data, op[2])
            if cycle >= dut.LATENCY and plan[cycle - dut.LATENCY][0] == "read":
                got.append(ctx.get(dut.read_data))
            await ctx.tick()

    # The read of cycle c sees the writes of the cycles before c (a write lands the cycle after it
    # is given, as the read's address is registered: the memory is read the cycle after it too).
    for op in plan:
        if op[0] == "write":
            model[op[1]] = op[2]
        elif op[0] == "read":
            want.append(model[op[1]])
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
