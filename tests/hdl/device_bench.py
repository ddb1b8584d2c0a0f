"""An Amaranth-simulator bench for :class:`hdl.device.SRCDevice`: bytes in, reply frames out."""

from amaranth.sim import Simulator

from firmware.protocol import FrameDecoder


def exchange(dut, script, replies, max_cycles=2_000_000):
    """Play ``script`` into ``dut.rx`` and return the events decoded from ``dut.tx``.

    ``script`` items are ``bytes`` (sent one byte per cycle as far as ``rx.ready`` allows) or
    ``int`` (that many idle cycles). The bench stops once ``replies`` events have arrived (or
    after ``max_cycles``, returning what came).
    """
    decoder, events = FrameDecoder(), []

    async def host(ctx):
        for item in script:
            if isinstance(item, int):
                await ctx.tick().repeat(item)
                continue
            for byte in item:
                ctx.set(dut.rx.payload, byte)
                ctx.set(dut.rx.valid, 1)
                await ctx.tick().until(dut.rx.ready)
            ctx.set(dut.rx.valid, 0)

    async def collect(ctx):
        ctx.set(dut.tx.ready, 1)
        cycles = 0
        async for _, _, valid, payload in ctx.tick().sample(dut.tx.valid, dut.tx.payload):
            cycles += 1
            if valid:
                events.extend(decoder.feed(bytes([payload])))
            if len(events) >= replies or cycles >= max_cycles:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(host)
    sim.add_testbench(collect)
    sim.run()
    return events
