"""The update unit alone: blocks of step sums through the neuron lanes, against the golden arithmetic.

The step sums are served by the test (as the accumulate unit would, on the unit's ``acc_read``);
the expected states come from ``tests.hdl.test_neuron.golden_update``, neuron by neuron.
"""

import numpy as np
from amaranth.sim import Simulator

from firmware.image import TABLE_FIELDS, DeviceLimits, pack
from hdl.layer_table import row_layout
from hdl.layouts import accumulator_width
from hdl.accumulate import AccumulateUnit
from hdl.update import UpdateUnit
from tests.hdl.test_neuron import golden_update
from tests.helpers import random_network

LANES, STEPS = 4, 12      # SRC neurons need a few steps of drive before they fire


def _unit(sizes, seed):
    network = random_network(sizes, seed=seed, n_steps=STEPS)
    image = pack(network, LANES)
    limits = DeviceLimits.exact(image)
    acc_width = accumulator_width(image.config, limits)
    return network, image, UpdateUnit(image, limits, acc_width, row_layout(image.config, limits, LANES)), acc_width


def _expected(network, image, sums):
    """Per step and neuron of layer 0, ``(i, h, hs, s)`` from the golden arithmetic; spikes masked past ``n_out``."""
    cfg, layer, entry = network.config, network.layers[0], image.layers[0]
    n = entry.blocks * LANES
    state = [(0, 0, 0)] * n
    out = []
    for t in range(STEPS):
        row = []
        for k in range(n):
            bias = int(image.biases[entry.block_base + k // LANES][k % LANES])   # padding lanes: the image's bias
            assert k >= layer.n_out or bias == layer.bias[k]
            i, h, hs, s = golden_update(cfg, *state[k], int(sums[t][k]), bias, entry.acc_shift)
            state[k] = (i, h, hs)
            row.append((i, h, hs, s if k < layer.n_out else 0))
        out.append(row)
    return out


def _run(dut, image, sums, gap, acc_width):
    """Issue every block of layer 0 for each step, the steps ``gap`` cycles apart; collect the exits."""
    entry = image.layers[0]
    exits, issued_at, serving, summaries = [], {}, {}, []
    plan = {}                                              # cycle -> (t, block)
    for t in range(STEPS):
        for b in range(entry.blocks):
            plan[t * gap + b] = (t, b)
    last = max(plan)

    def word(values):
        mask = (1 << acc_width) - 1
        return sum((int(v) & mask) << (acc_width * p) for p, v in enumerate(values))

    async def bench(ctx):
        ctx.set(dut.rows, [{name: getattr(e, name) for name in TABLE_FIELDS} for e in image.layers])
        for cycle in range(last + UpdateUnit.LATENCY + 2):
            if cycle in plan:
                t, b = plan[cycle]
                ctx.set(dut.issue, {"valid": 1, "layer": 0, "block": b, "t": t, "parity": t % 2, "first": t == 0})
                issued_at[t, b] = cycle
            else:
                ctx.set(dut.issue, {"valid": 0})
            if cycle in serving:                            # the block's sums, as the accumulate unit serves them
                ctx.set(dut.acc_data, serving.pop(cycle))
            read = ctx.get(dut.acc_read)
            if read.consume:                                # with the memories' data
                t = next(t for (t, b), c in issued_at.items()
                         if c + UpdateUnit.READ_AFTER + 1 == cycle + AccumulateUnit.READ_LATENCY)
                block = read.block
                serving[cycle + AccumulateUnit.READ_LATENCY] = word(sums[t][block * LANES:(block + 1) * LANES])
            out = ctx.get(dut.exit)
            if out.valid:
                exits.append((cycle, out.t, out.block,
                              [(out.lanes[p].i, out.lanes[p].h, out.lanes[p].hs, out.lanes[p].s) for p in range(LANES)]))
                summaries.append((out.block, [out.lanes[p].s for p in range(LANES)],
                                  (out.summary.spiking, out.summary.first_lane, out.summary.first_index,
                                   out.summary.first_amplitude), (out.keep, out.last)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return exits, issued_at, summaries


def _sums(network, image, seed):
    rng = np.random.default_rng(seed)
    n = image.layers[0].blocks * LANES
    limit = 1 << (accumulator_width(image.config, DeviceLimits.exact(image)) - 3)
    return rng.integers(-limit // 4, limit, (STEPS, n))     # mostly excitatory: some neurons spike


def test_blocks_leave_after_the_pipeline_with_the_golden_state():
    """Layer 0 of 18 neurons (5 blocks of 4, the last two lanes of the last block past ``n_out``):
    every block of every step leaves ``LATENCY`` cycles after its issue with the golden model's
    i, h, h_s and spike, and lanes past ``n_out`` never spike."""
    network, image, dut, acc_width = _unit([12, 18, 100], seed=3)
    sums = _sums(network, image, 0)
    exits, issued_at, summaries = _run(dut, image, sums, gap=20, acc_width=acc_width)
    expected = _expected(network, image, sums)
    assert len(exits) == STEPS * image.layers[0].blocks
    for cycle, t, block, lanes in exits:
        assert cycle == issued_at[t, block] + UpdateUnit.LATENCY
        assert lanes == expected[t][block * LANES:(block + 1) * LANES], (t, block)
    assert any(s for *_, lanes in exits for _, _, _, s in lanes), "no neuron spiked: a weak test"
    # Each block's summary for the next layer's queue: the lanes that spike, the lowest one's event.
    # It is kept (stored by the queue) when it spikes or closes its step.
    for block, spikes, summary, (keep, last) in summaries:
        lanes = [p for p, s in enumerate(spikes) if s]
        first = lanes[0] if lanes else 0
        assert summary == (sum(1 << p for p in lanes), first, block * LANES + first, spikes[first]), (block, spikes)
        assert keep == int(bool(lanes) or bool(last)), (block, spikes, last)
    assert any(not keep for *_, (keep, _) in summaries), "every block kept: a weak test"
    assert any(bin(spiking).count("1") > 1 and spiking & 1 == 0 for _, _, (spiking, *_), _ in summaries), \
        "no block whose first spike is past lane 0 among several: a weak test"


def test_the_next_step_may_issue_state_spacing_cycles_after_the_last():
    """Steps issued exactly ``STATE_SPACING`` cycles apart (5 blocks: the state of block 0 is read
    for step t + 1 the cycle after its step-t state was written) give the same states as far
    apart; one cycle closer and a block reads a stale state."""
    network, image, dut, acc_width = _unit([12, 18, 100], seed=3)
    sums = _sums(network, image, 1)
    expected = _expected(network, image, sums)
    exits, *_ = _run(dut, image, sums, gap=UpdateUnit.STATE_SPACING, acc_width=acc_width)
    assert [lanes for *_, lanes in exits] == [expected[t][b * LANES:(b + 1) * LANES]
                                               for t in range(STEPS) for b in range(image.layers[0].blocks)]
    _, _, dut, _ = _unit([12, 18, 100], seed=3)
    exits, *_ = _run(dut, image, sums, gap=UpdateUnit.STATE_SPACING - 1, acc_width=acc_width)
    assert [lanes for *_, lanes in exits] != [expected[t][b * LANES:(b + 1) * LANES]
                                               for t in range(STEPS) for b in range(image.layers[0].blocks)]
