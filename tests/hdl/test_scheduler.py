"""The scheduler alone: its accumulate and update decisions for hand-worked cases.

The bench stands in for the units and the queues around the scheduler: the accumulate unit's
``done`` comes a fixed time after a step end is issued, queue heads are held as the test says.
The expectations are worked out by hand from the module's rules (an event costs
``ceil(blocks / 4)`` groups; a layer takes at most two steps ahead of its update; an update starts
when a step's sums are final and ``STATE_SPACING`` after the layer's last start; the deepest source
is served first; an input past layer 0 is dropped and flagged).
"""

from amaranth.sim import Simulator

from firmware.image import TABLE_FIELDS, DeviceLimits, pack
from hdl.accumulate import SPAN, AccumulateUnit
from hdl.cycles import queue_depth
from hdl.layer_table import _derived, row_layout
from hdl.layouts import accumulator_width
from hdl.scheduler import Scheduler
from hdl.update import UpdateUnit
from tests.helpers import random_network

LANES, STEPS = 4, 3
SIZES = [20, 24, 100]     # layer 0: 6 blocks (2 groups of 4), layer 1: 25 blocks (7 groups)


def _scheduler():
    network = random_network(SIZES, seed=1, n_steps=STEPS)
    image = pack(network, LANES)
    limits = DeviceLimits.exact(image)
    row = row_layout(image.config, limits, LANES)
    acc = AccumulateUnit(image, limits, accumulator_width(image.config, limits))
    upd = UpdateUnit(image, limits, accumulator_width(image.config, limits), row)
    acc._MustUse__silence = upd._MustUse__silence = True     # built for their issue layouts only
    max_blocks = -(-limits.max_neurons // LANES)
    dut = Scheduler(image.config, limits, LANES, len(image.layers), row,
                    (acc.issue.shape(), upd.issue.shape()), queue_depth(max_blocks))
    rows = [{**{name: getattr(e, name) for name in TABLE_FIELDS},
             **{name: max(0, int(v)) for name, v in _derived(e.blocks).items()}} for e in image.layers]
    return image, dut, rows


def _run(inputs, cycles, done_after=4, spikes=None):
    """Offer ``inputs`` (``(end, index, amplitude)`` words) on layer 0's stream, and ``spikes``
    (likewise) as the head of layer 1's queue, one popped each time it is taken; report
    ``done`` for each issued step end ``done_after`` cycles later. Returns per cycle the
    accumulate issue, the update issue, ``events.ready``, ``take`` and ``error``."""
    image, dut, rows = _scheduler()
    inputs, spikes = list(inputs), list(spikes or [])
    trace = []

    async def bench(ctx):
        ctx.set(dut.rows, rows)
        ctx.set(dut.n_steps, STEPS)
        dones = {}
        for cycle in range(cycles):
            ctx.set(dut.accumulated, {"valid": cycle in dones, "layer": dones.pop(cycle, 0)})
            if inputs:
                end, index, amplitude = inputs[0]
                ctx.set(dut.events.valid, 1)
                ctx.set(dut.events.payload, {"end": end, "index": index, "amplitude": amplitude})
            else:
                ctx.set(dut.events.valid, 0)
            head = spikes[0] if spikes else (0, 0, 0)
            ctx.set(dut.spikes[1], {"valid": bool(spikes), "end": head[0], "index": head[1], "amplitude": head[2]})
            ctx.set(dut.levels[1], len(spikes))
            acc, upd = ctx.get(dut.accumulate), ctx.get(dut.update)
            ready, take = ctx.get(dut.events.ready), ctx.get(dut.take)
            if ready and inputs:
                inputs.pop(0)
            if take & 2:
                spikes.pop(0)
            if acc.valid and acc.end:
                dones[cycle + done_after] = acc.layer
            trace.append({"acc": None if not acc.valid else
                          (acc.layer, int(acc.end), acc.parity) + (() if acc.end else
                                                                   (acc.index, acc.group, acc.amplitude, acc.base, acc.blocks)),
                          "upd": None if not upd.valid else (upd.layer, upd.block, upd.t, upd.parity, upd.first),
                          "ready": ready, "take": take, "error": ctx.get(dut.error)})
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return image, trace


def test_an_event_issues_one_cycle_per_group_of_four_blocks():
    """Layer 0 has 6 blocks: each event issues groups 0 and 1 on two consecutive cycles, with the
    row's weight base and blocks, and layer 0's stream waits meanwhile; the step end then issues
    ``end`` once."""
    image, trace = _run([(0, 7, 3), (0, 19, 1), (1, 0, 0)], cycles=12)
    row = image.layers[0]
    assert row.blocks == 6 and -(-row.blocks // SPAN) == 2
    issued = [c["acc"] for c in trace if c["acc"] is not None]
    assert issued == [(0, 0, 0, 7, 0, 3, row.weight_base, 6), (0, 0, 0, 7, 1, 3, row.weight_base, 6),
                      (0, 0, 0, 19, 0, 1, row.weight_base, 6), (0, 0, 0, 19, 1, 1, row.weight_base, 6),
                      (0, 1, 0)]
    # One word taken per event: ready only on the cycles an event's first group may issue.
    first = next(c for c, t in enumerate(trace) if t["acc"] is not None)
    assert [t["ready"] for t in trace[first:first + 5]] == [1, 0, 1, 0, 1]
    assert not any(t["error"] for t in trace)


def test_an_input_past_layer_0_is_dropped_and_flagged():
    """Index 20 of a 20-input layer issues nothing and sets the sticky ``error``; the events around
    it are issued as usual."""
    _, trace = _run([(0, 5, 2), (0, 20, 2), (0, 19, 2)], cycles=10)
    indices = [c["acc"][3] for c in trace if c["acc"] is not None]
    assert indices == [5, 5, 19, 19]
    errors = [t["error"] for t in trace]
    assert errors[-1] == 1 and errors[0] == 0


def test_a_layer_runs_at_most_two_steps_ahead_of_its_update():
    """Three empty steps of layer 0, the accumulate unit never done: two step ends are issued
    (parities 0 then 1: the sums are double-buffered), the third is held and nothing updates."""
    _, trace = _run([(1, 0, 0)] * 3, cycles=12, done_after=10 ** 6)
    assert [c["acc"] for c in trace if c["acc"] is not None] == [(0, 1, 0), (0, 1, 1)]
    assert all(c["upd"] is None for c in trace)
    assert trace[-1]["ready"] == 0


def test_an_update_starts_when_the_sums_are_final_and_state_spacing_after_the_last():
    """Two empty steps of layer 0: each step's update (6 blocks, step t, parity t % 2, ``first`` on
    step 0) starts the cycle after its ``done``; the second waits for ``STATE_SPACING`` cycles
    after the first start, though its sums were final sooner."""
    done_after = 2
    _, trace = _run([(1, 0, 0)] * 2, cycles=60, done_after=done_after)
    ends = [c for c, t in enumerate(trace) if t["acc"] is not None]
    updates = [(c, t["upd"]) for c, t in enumerate(trace) if t["upd"] is not None and t["upd"][0] == 0]
    assert [u for _, u in updates] == [(0, b, 0, 0, 1) for b in range(6)] + [(0, b, 1, 1, 0) for b in range(6)]
    starts = [updates[0][0], updates[6][0]]
    assert starts[0] == ends[0] + done_after + 1          # done seen, then the decision
    assert [c for c, _ in updates[:6]] == list(range(starts[0], starts[0] + 6))
    assert ends[1] + done_after + 1 < starts[0] + UpdateUnit.STATE_SPACING, "the spacing does not bind: a weak test"
    assert starts[1] == starts[0] + UpdateUnit.STATE_SPACING


def test_the_deepest_layer_is_served_first():
    """Layer 1's queue head and layer 0's events both waiting: layer 1's two events are taken
    first (7 groups each: 25 blocks), layer 0 is asked for input only once that queue is empty."""
    image, trace = _run([(0, 3, 1)], cycles=18, spikes=[(0, 2, 5), (0, 9, 4)])
    row1 = image.layers[1]
    assert row1.blocks == 25
    issued = [c["acc"] for c in trace if c["acc"] is not None]
    assert issued[:14] == [(1, 0, 0, j, g, a, row1.weight_base, 25) for j, a in ((2, 5), (9, 4)) for g in range(7)]
    assert issued[14][:5] == (0, 0, 0, 3, 0)
    assert [t["take"] for t in trace[:15]] == [2] + [0] * 6 + [2] + [0] * 7
    assert [t["ready"] for t in trace[:15]] == [0] * 14 + [1]
