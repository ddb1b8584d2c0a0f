"""The readout alone: output-layer blocks in, the golden model's class scores and prediction out."""

import numpy as np
from amaranth.sim import Simulator

from hdl.readout import Readout
from quant import golden
from quant.fixedpoint import DEFAULT
from sim.streams import random_pauses, stream_get


def _expected(spikes):
    """Scores and prediction of ``spikes`` ``(T, n_out)`` by the golden model's readout."""
    trace = golden._readout(spikes[:, None, :], 10, DEFAULT, {})
    return trace[-1, 0].tolist(), int(np.argmax(trace[-1, 0]))


def test_two_samples_back_to_back_with_result_backpressure():
    """100 output neurons in blocks of 8 (the last one half full), 6 steps per sample, blocks of the next
    step arriving while the previous step's job runs; results taken with random pauses."""
    P, T, n_out = 8, 6, 100
    blocks = -(-n_out // P)
    rng = np.random.default_rng(3)
    samples = [rng.integers(0, 257, (T, n_out)) * (rng.random((T, n_out)) < 0.4) for _ in range(2)]
    dut = Readout(DEFAULT, P, 10, blocks)
    busy = [False, False]
    results = []

    async def producer(ctx):
        step = 0
        for spikes in samples:
            for t in range(T):
                buffer = step % 2
                while busy[buffer]:
                    await ctx.tick()
                busy[buffer] = True
                for b in range(blocks):
                    lanes = [int(spikes[t, b * P + p]) if b * P + p < n_out else 0 for p in range(P)]
                    word = sum(v << (DEFAULT.spike_width * p) for p, v in enumerate(lanes))
                    ctx.set(dut.block, {"valid": 1, "block": b, "last": int(b == blocks - 1), "buffer": buffer,
                                        "first": int(t == 0), "final": int(t == T - 1), "spikes": word})
                    await ctx.tick()
                ctx.set(dut.block, {"valid": 0})
                step += 1

    async def done_watch(ctx):
        async for _, _, valid, buffer in ctx.tick().sample(dut.done.valid, dut.done.buffer):
            if valid:
                busy[buffer] = False

    async def consumer(ctx):
        pauses = random_pauses(4, 0.5)
        for _ in samples:
            words = [await stream_get(ctx, dut.result, pauses) for _ in range(10)]
            assert [w.cls for w in words] == list(range(10)) and words[-1].last
            results.append(([w.score for w in words], words[-1].prediction))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(done_watch)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert results == [_expected(s) for s in samples]
