from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.protocol import crc16
from hdl.crc import CRC16


def hardware_crc(chunks):
    dut = CRC16()
    out = []

    async def bench(ctx):
        for chunk in chunks:
            ctx.set(dut.clear, 1)
            for n, byte in enumerate(chunk):
                ctx.set(dut.valid, 1)
                ctx.set(dut.data, byte)
                await ctx.tick()
                ctx.set(dut.clear, 0)
            ctx.set(dut.valid, 0)
            await ctx.tick()
            out.append(ctx.get(dut.crc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_check_value():
    assert hardware_crc([b"123456789"]) == [0x29B1]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3))
def test_matches_the_protocol_crc(chunks):
    assert hardware_crc(chunks) == [crc16(c) for c in chunks]
