"""The queue between layers: blocks of spikes in, one event (or step end) out per take."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.spike_queue import SpikeQueue
from quant.fixedpoint import DEFAULT
from sim.streams import random_pauses


def pushed(block, spikes, last):
    """A push word for ``spikes`` (one amplitude per lane), with its summary worked out here, as
    the update unit hands it over: which lanes spike, the lowest one's index and amplitude."""
    spiking = [p for p, v in enumerate(spikes) if v]
    first = spiking[0] if spiking else 0
    return {"valid": 1, "block": block, "last": int(last), "keep": int(bool(spiking) or last),
            "spikes": sum(int(v) << (DEFAULT.spike_width * p) for p, v in enumerate(spikes)),
            "summary": {"spiking": sum(1 << p for p in spiking), "first_lane": first,
                        "first_index": block * len(spikes) + first, "first_amplitude": int(spikes[first])}}


def test_events_come_out_in_order_with_the_step_ends():
    """Three steps of 5 blocks of 4 lanes with random graded spikes, taken with random pauses: the
    events are each spiking neuron in index order, then the step's end; empty blocks that are not
    the last are not stored."""
    P, blocks, depth = 4, 5, 12
    rng = np.random.default_rng(1)
    steps = [rng.integers(1, 256, (blocks, P)) * (rng.random((blocks, P)) < 0.3) for _ in range(3)]
    dut = SpikeQueue(DEFAULT, P, blocks, depth)
    expected = []
    for spikes in steps:
        expected += [("event", b * P + p, int(spikes[b, p])) for b in range(blocks) for p in range(P) if spikes[b, p]]
        expected.append(("end",))
    got, levels = [], []

    async def producer(ctx):
        for spikes in steps:
            for b in range(blocks):
                while ctx.get(dut.level) > depth - 2:
                    await ctx.tick()
                ctx.set(dut.push, pushed(b, spikes[b], b == blocks - 1))
                await ctx.tick()
                levels.append(ctx.get(dut.level))
                ctx.set(dut.push, {"valid": 0})

    async def consumer(ctx):
        pauses = random_pauses(2, 0.4)
        while len(got) < len(expected):
            take = not next(pauses)
            ctx.set(dut.take, int(take))
            valid, end, index, amplitude = ctx.get(dut.event.valid), ctx.get(dut.event.end), \
                ctx.get(dut.event.index), ctx.get(dut.event.amplitude)
            if take and valid:
                got.append(("end",) if end else ("event", index, amplitude))
            await ctx.tick()
        ctx.set(dut.take, 0)

    sampled = []      # (level, move) at each clock edge

    async def monitor(ctx):
        async for _, _, level, stores, take, pops in ctx.tick().sample(dut.level, dut.stores, dut.take, dut.pops):
            sampled.append((level, stores - (take & pops)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(monitor)
    sim.run()
    assert got == expected
    assert max(levels) <= depth
    # ``stores - (take & pops)`` is the level's change at each edge (what the scheduler's room
    # register follows, working it out beside its take).
    assert all(level + move == after for (level, move), (after, _) in zip(sampled, sampled[1:]))
    assert {move for _, move in sampled} == {-1, 0, 1}


def test_a_step_without_spikes_is_just_its_end():
    dut = SpikeQueue(DEFAULT, 2, 3, 4)
    got = []

    async def bench(ctx):
        for b in range(3):
            ctx.set(dut.push, pushed(b, [0, 0], b == 2))
            await ctx.tick()
        ctx.set(dut.push, {"valid": 0})
        assert ctx.get(dut.level) == 1                  # only the last word was stored
        ctx.set(dut.take, 1)
        got.append((ctx.get(dut.event.valid), ctx.get(dut.event.end)))
        await ctx.tick()
        got.append((ctx.get(dut.event.valid), ctx.get(dut.level)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [(1, 1), (0, 0)]


@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 8])
def test_first_event_is_the_lowest_spiking_lane(lanes):
    """Every spiking pattern of a block against the lowest set lane found by hand: its index
    (``block * P + lane``), amplitude and lane; all 0 (but the block's base) when none spikes."""
    from amaranth import Module, Signal

    from hdl.spike_queue import first_event

    m = Module()
    spikes, spiking, block = [Signal(8, name=f"s{p}") for p in range(lanes)], Signal(lanes), Signal(5)
    index, amplitude, lane = first_event(m, block, spikes, spiking)
    outputs = [Signal(16, name="index"), Signal(8, name="amplitude"), Signal(4, name="lane")]
    m.d.comb += [o.eq(v) for o, v in zip(outputs, (index, amplitude, lane))]
    wrong = []

    async def bench(ctx):
        rng = np.random.default_rng(lanes)
        for mask in range(1 << lanes):
            values, base = [int(v) for v in rng.integers(1, 256, lanes)], int(rng.integers(32))
            for signal, value in zip(spikes, values):
                ctx.set(signal, value)
            ctx.set(spiking, mask)
            ctx.set(block, base)
            first = next((p for p in range(lanes) if mask >> p & 1), None)
            expected = (base * lanes, 0, 0) if first is None else (base * lanes + first, values[first], first)
            if tuple(ctx.get(o) for o in outputs) != expected:
                wrong.append(mask)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


@pytest.mark.parametrize("depth", [2, 4, 9])
def test_offers_what_a_fifo_offers_on_every_cycle_even_when_full(depth):
    """Against a list of words by hand, cycle by cycle: the offered event (or end, or nothing) is
    the model's head's on every cycle, with words pushed whenever the queue holds fewer than
    ``depth`` after the cycle's take (so it runs full, a word stored as the head leaves) and taken
    at random: the head is offered the cycle after it is pushed or its forerunner leaves, as the
    cycle model counts, and nothing is lost at ``depth`` words."""
    P, blocks = 3, 7
    rng = np.random.default_rng(depth)
    dut = SpikeQueue(DEFAULT, P, blocks, depth)
    words = []
    for _ in range(40):
        for b in range(blocks):
            spikes = rng.integers(1, 256, P) * (rng.random(P) < 0.3)
            if spikes.any() or b == blocks - 1:
                words.append((b, [int(v) for v in spikes], b == blocks - 1))
    wrong = []

    async def bench(ctx):
        queue, pushed_count, fullest = [], 0, 0     # queue: [events left of the word, last]
        for cycle in range(4000):
            if queue:
                events, last = queue[0]
                offer = (1, 0, *events[0]) if events else (1, 1)
            else:
                offer = (0,)
            got = (ctx.get(dut.event.valid),)
            if got[0]:
                got = (1, 1) if ctx.get(dut.event.end) else (1, 0, ctx.get(dut.event.index), ctx.get(dut.event.amplitude))
            if got != offer:
                wrong.append((cycle, got, offer))
            take = bool(queue) and rng.random() < 0.6
            pops = False
            if take:
                events, last = queue[0]
                if events:
                    events.pop(0)
                pops = not events and (not last or offer[1] == 1)
                if offer[1] == 1:
                    pops = True
            push = pushed_count < len(words) and len(queue) - pops < depth and rng.random() < 0.8
            ctx.set(dut.take, int(take))
            if push:
                b, spikes, last = words[pushed_count]
                ctx.set(dut.push, pushed(b, spikes, last))
            else:
                ctx.set(dut.push, {"valid": 0})
            if ctx.get(dut.level) != len(queue):
                wrong.append((cycle, "level", ctx.get(dut.level), len(queue)))
            await ctx.tick()
            fullest = max(fullest, len(queue))
            if pops:
                queue.pop(0)
            if push:
                b, spikes, last = words[pushed_count]
                queue.append([[(b * P + p, v) for p, v in enumerate(spikes) if v], last])
                pushed_count += 1
        assert pushed_count == len(words) and not queue   # every word went in and came out
        assert fullest == depth

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert wrong == []
