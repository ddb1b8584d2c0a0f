"""The accumulate unit alone: step sums against numpy, four blocks per cycle, run-time weight writes."""

import numpy as np
from amaranth.sim import Simulator

from firmware.image import DeviceLimits, pack
from hdl.accumulate import SPAN, AccumulateUnit
from hdl.layouts import accumulator_width
from sim.streams import random_pauses
from tests.helpers import random_network


def _unit(sizes, lanes, seed):
    network = random_network(sizes, seed=seed, n_steps=4)
    image = pack(network, lanes)
    limits = DeviceLimits.exact(image)
    return network, image, AccumulateUnit(image, limits, accumulator_width(image.config, limits))


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def _issue_event(ctx, dut, image, layer, index, amplitude, parity):
    entry = image.layers[layer]
    for group in range(-(-entry.blocks // SPAN)):
        ctx.set(dut.issue, {"valid": 1, "layer": layer, "parity": parity, "blocks": entry.blocks,
                            "base": entry.weight_base, "index": index, "group": group, "amplitude": amplitude})
        await ctx.tick()


async def _read_block(ctx, dut, layer, parity, block, lanes, width, consume=True):
    ctx.set(dut.issue, {"valid": 0})
    ctx.set(dut.read, {"consume": int(consume), "layer": layer, "parity": parity, "block": block})
    await ctx.tick()
    ctx.set(dut.read, {"consume": 0})
    await ctx.tick().repeat(AccumulateUnit.READ_LATENCY - 1)
    word = ctx.get(dut.read_data)
    mask = (1 << width) - 1
    values = [(word >> (p * width)) & mask for p in range(lanes)]
    return [v - (1 << width) if v >> (width - 1) else v for v in values]


def test_step_sums_equal_numpy_for_both_layers_and_parities():
    """Random graded events into both layers (10 and 25 blocks: partial last groups of four), two steps
    in flight, then every block read back: each sum is W @ a of its own layer and parity."""
    network, image, dut = _unit([40, 37, 100], lanes=4, seed=1)   # 37 neurons: 10 blocks of 4
    rng = np.random.default_rng(0)
    P, AW = image.lanes, dut.acc_width
    plan = {(layer, parity): [(int(j), int(a)) for j, a in zip(
        rng.integers(0, network.layers[layer].n_in, 12), rng.integers(1, 257, 12))]
        for layer in range(2) for parity in range(2)}
    got = {}

    async def bench(ctx):
        for (layer, parity), events in plan.items():
            for j, a in events:
                await _issue_event(ctx, dut, image, layer, j, a, parity)
        ctx.set(dut.issue, {"valid": 0})
        await ctx.tick().repeat(AccumulateUnit.LATENCY)  # through the pipeline
        for layer, parity in plan:
            blocks = image.layers[layer].blocks
            got[layer, parity] = sum([await _read_block(ctx, dut, layer, parity, b, P, AW) for b in range(blocks)], [])

    _run(dut, bench)
    for (layer, parity), events in plan.items():
        weight = network.layers[layer].weight
        expected = np.zeros(weight.shape[0], np.int64)
        for j, a in events:
            expected += weight[:, j] * a
        assert got[layer, parity][:weight.shape[0]] == expected.tolist()
        assert not any(got[layer, parity][weight.shape[0]:])      # padding lanes hold nothing


def test_back_to_back_events_to_the_same_blocks_add_up():
    """A layer of one group (3 blocks): every event writes the blocks the event before it wrote, the
    cycle after, so each reads its old sums before the previous write lands (forwarding)."""
    network, image, dut = _unit([12, 10, 100], lanes=4, seed=3)
    assert image.layers[0].blocks <= SPAN
    rng = np.random.default_rng(1)
    events = [(int(j), int(a)) for j, a in zip(rng.integers(0, 12, 20), rng.integers(1, 257, 20))]
    got = []

    async def bench(ctx):
        for j, a in events:
            await _issue_event(ctx, dut, image, 0, j, a, 0)
        ctx.set(dut.issue, {"valid": 0})
        await ctx.tick().repeat(AccumulateUnit.LATENCY)
        for b in range(image.layers[0].blocks):
            got.extend(await _read_block(ctx, dut, 0, 0, b, image.lanes, dut.acc_width))

    _run(dut, bench)
    weight = network.layers[0].weight
    expected = sum(weight[:, j].astype(np.int64) * a for j, a in events)
    assert got[:weight.shape[0]] == expected.tolist()


def test_a_block_read_is_consumed_and_unwritten_blocks_read_zero():
    network, image, dut = _unit([12, 10, 100], lanes=4, seed=2)   # layer 0: 3 blocks (one group, one spare)
    weight = network.layers[0].weight
    seen = []

    async def bench(ctx):
        P, AW = image.lanes, dut.acc_width
        await _issue_event(ctx, dut, image, 0, 5, 256, 0)
        ctx.set(dut.issue, {"valid": 0})
        await ctx.tick().repeat(AccumulateUnit.LATENCY)
        seen.append(await _read_block(ctx, dut, 0, 0, 1, P, AW))                 # the sum, consumed
        seen.append(await _read_block(ctx, dut, 0, 0, 1, P, AW))                 # nothing written since
        seen.append(await _read_block(ctx, dut, 0, 0, 3, P, AW, consume=False))  # past the layer's 3 blocks
        await _issue_event(ctx, dut, image, 0, 7, 100, 0)
        ctx.set(dut.issue, {"valid": 0})
        await ctx.tick().repeat(AccumulateUnit.LATENCY)
        seen.append(await _read_block(ctx, dut, 0, 0, 1, P, AW))                 # a new step: overwritten

    _run(dut, bench)
    assert seen[0] == (weight[4:8, 5] * 256).tolist()
    assert seen[1] == [0, 0, 0, 0]
    assert seen[2] == [0, 0, 0, 0], "the tail of the last group of four was written"
    assert seen[3] == (weight[4:8, 7] * 100).tolist()


def test_end_is_reported_after_the_pipeline():
    _, image, dut = _unit([12, 10, 100], lanes=4, seed=3)
    done = []

    async def bench(ctx):
        ctx.set(dut.issue, {"valid": 1, "end": 1, "layer": 1})
        await ctx.tick()
        ctx.set(dut.issue, {"valid": 0})
        for _ in range(AccumulateUnit.LATENCY + 2):
            done.append((ctx.get(dut.done.valid), ctx.get(dut.done.layer)))
            await ctx.tick()

    _run(dut, bench)
    assert [d for d, _ in done].index(1) == AccumulateUnit.LATENCY - 2 and done[AccumulateUnit.LATENCY - 2][1] == 1


def test_run_time_weight_writes_land_in_both_memories():
    """New weights for every word through the load port (even and odd addresses), then an event: its
    sums are the new weights'."""
    network, image, dut = _unit([12, 10, 100], lanes=4, seed=4)
    other = random_network([12, 10, 100], seed=5, n_steps=4)
    new_image = pack(other, 4)
    got = []

    async def bench(ctx):
        P, AW, WB = image.lanes, dut.acc_width, image.config.weight_width
        mask = (1 << WB) - 1
        pauses = random_pauses(6, 0.3)
        for address, row in enumerate(new_image.weights):
            while next(pauses):
                await ctx.tick()
            word = sum((int(v) & mask) << (WB * p) for p, v in enumerate(row))
            ctx.set(dut.load, {"valid": 1, "address": address, "word": word})
            await ctx.tick()
        ctx.set(dut.load, {"valid": 0})
        await _issue_event(ctx, dut, image, 0, 11, 256, 1)
        ctx.set(dut.issue, {"valid": 0})
        await ctx.tick().repeat(AccumulateUnit.LATENCY)
        for b in range(3):
            got.extend(await _read_block(ctx, dut, 0, 1, b, P, AW))

    _run(dut, bench)
    assert got[:10] == (other.layers[0].weight[:, 11] * 256).tolist()
