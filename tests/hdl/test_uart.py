"""UART transmitter and receiver in the Amaranth simulator: bit timing, loopback, framing errors."""

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from hdl.uart import UARTRx, UARTTx, divisor


def test_divisor_rounds_and_rejects_bad_rates():
    assert divisor(100e6, 3e6) == 33            # 3.03 Mbaud, 1 % off
    with pytest.raises(ValueError, match="off by"):
        divisor(20e6, 3e6)   # 7 cycles: 2.857 Mbaud, 4.8 % off
    with pytest.raises(ValueError, match="at least 4"):
        divisor(10e6, 5e6)


def test_tx_bit_timing_by_hand():
    dut = UARTTx(divisor=5)
    line = []

    async def bench(ctx):
        ctx.set(dut.data.payload, 0b1010_0011)
        ctx.set(dut.data.valid, 1)
        await ctx.tick().until(dut.data.ready)
        ctx.set(dut.data.valid, 0)
        for _ in range(5 * 11):
            await ctx.tick()
            line.append(ctx.get(dut.tx))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    bits = line[2::5][:10]   # one sample per bit period
    assert bits == [0, 1, 1, 0, 0, 0, 1, 0, 1, 1]   # start, LSB first, stop


@pytest.mark.parametrize("data", [[0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80]])
def test_loopback_through_tx_and_rx(data):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor=7)
    m.submodules.rx = rx = UARTRx(divisor=7)
    m.d.comb += rx.rx.eq(tx.tx)
    received = []

    async def sender(ctx):
        for byte in data:
            ctx.set(tx.data.payload, byte)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def receiver(ctx):
        ctx.set(rx.data.ready, 1)
        while len(received) < len(data):
            payload, = await ctx.tick().sample(rx.data.payload).until(rx.data.valid)
            received.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(sender)
    sim.add_testbench(receiver)
    sim.run()
    assert received == data


def test_bad_stop_bit_is_a_framing_error():
    dut = UARTRx(divisor=6)
    seen = {"error": 0, "valid": 0}

    async def bench(ctx):
        for bit in [1] * 5 + [0] + [1, 0, 1, 0, 1, 0, 1, 0] + [0] + [1] * 3:   # stop bit low
            ctx.set(dut.rx, bit)
            for _ in range(6):
                await ctx.tick()
                seen["error"] += ctx.get(dut.error)
                seen["valid"] += ctx.get(dut.data.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"error": 1, "valid": 0}
