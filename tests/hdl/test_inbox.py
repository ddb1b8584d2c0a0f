"""The inbox: words in order, and the core's enable equal to its definition, cycle by cycle.

The expected enable is recomputed from what the bench saw (words pushed and taken, step ends,
the result's last word), independently of the inbox's look-ahead registers.
"""

import random

import pytest
from amaranth.sim import Simulator

from hdl.inbox import Inbox
from quant.fixedpoint import FixedPointConfig

T = 3


def _simulate(seed, push_rate, take_rate, words_per_step=5):
    rng = random.Random(seed)
    dut = Inbox(FixedPointConfig(), 784, 8)
    words = []
    for t in range(T):
        words += [{"index": rng.randrange(784), "amplitude": rng.randrange(1, 256), "end": 0}
                  for _ in range(rng.randrange(words_per_step + 1))]
        words.append({"index": 0, "amplitude": 0, "end": 1})
    seen = {"taken": [], "cycles": [], "ends": []}

    async def bench(ctx):
        ctx.set(dut.n_steps, T)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        pushed = ends = 0
        counting, finish_at = False, None
        for cycle in range(400):
            offer = pushed < len(words) and rng.random() < push_rate
            ctx.set(dut.push.valid, offer)
            if offer:
                ctx.set(dut.push.payload, words[pushed])
            ready = rng.random() < take_rate
            ctx.set(dut.events.ready, ready)
            # The result's last word, some cycles after the last step end was taken.
            finished = finish_at is not None and cycle >= finish_at
            ctx.set(dut.finished, finished)
            run, valid = ctx.get(dut.run), ctx.get(dut.events.valid)
            seen["ends"].append((ctx.get(dut.steps), ctx.get(dut.full), ends))
            in_flight = pushed - len(seen["taken"])
            owed = ends < T
            seen["cycles"].append((run, not (counting and owed and in_flight == 0), counting and owed and run and not valid))
            took = valid and ready and run
            if took:
                seen["taken"].append(ctx.get(dut.events.payload))
            if offer and ctx.get(dut.push.ready):
                ends += words[pushed]["end"]
                pushed += 1
            if took:
                counting = True
                if len(seen["taken"]) == len(words):
                    finish_at = cycle + 7
            if finished and run:
                counting, finish_at = False, None
            await ctx.tick()
        assert pushed == len(words)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return words, seen


@pytest.mark.parametrize("seed,push_rate,take_rate", [(1, 0.3, 0.9), (2, 0.9, 0.3), (3, 0.6, 0.6), (4, 1.0, 1.0)])
def test_words_in_order_and_the_enable_is_its_definition(seed, push_rate, take_rate):
    words, seen = _simulate(seed, push_rate, take_rate)
    got = [{"index": w.index, "amplitude": w.amplitude, "end": w.end} for w in seen["taken"]]
    assert [w for w in got if not w["end"]] == [w for w in words if not w["end"]]
    assert [w["end"] for w in got] == [w["end"] for w in words]
    assert all(run == expected for run, expected, _ in seen["cycles"])
    assert all(steps == ends and full == (ends == T) for steps, full, ends in seen["ends"])
    assert not any(starved for *_, starved in seen["cycles"]), "the core ran without the word it could ask for"
    if push_rate < take_rate:
        assert any(not run for run, *_ in seen["cycles"]), "the input was never behind: a weak case"


def test_full_rate_both_ways_never_stops_the_core():
    _, seen = _simulate(5, 1.0, 1.0)
    assert all(run for run, *_ in seen["cycles"])
