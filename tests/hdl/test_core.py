"""Amaranth-simulator tests of the whole core against the golden model, state by state."""

import dataclasses

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from firmware.image import DeviceLimits, FitError, pack
from hdl.core import SRCCore
from quant import golden
from quant.model import SRCNet
from quant.quantize import quantize_model
from sim.check import compare_trace, expected_trace, step_events
from tests.helpers import random_network


def simulate(network, lanes, samples):
    """Run ``samples`` (list of ``(T, n_in)`` amplitude arrays) through the core.

    Returns per sample the observed trace ``{(t, layer, block): lanes}``, the result
    ``(scores, prediction)``, and the cycles from its first input word to its last result word.
    """
    dut = SRCCore(pack(network, lanes), trace=True)
    traces, results, cycles, duplicates = [], [], [], []
    clock = {"cycle": 0}

    async def monitor(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.trace.valid, dut.trace.payload):
            clock["cycle"] += 1
            if valid:
                key = (payload.t, payload.layer, payload.block)
                if key in traces[-1]:
                    duplicates.append(key)
                traces[-1][key] = [(payload.lanes[p].i, payload.lanes[p].h, payload.lanes[p].hs, payload.lanes[p].s)
                                   for p in range(lanes)]

    async def feeder(ctx):
        for amplitudes in samples:
            traces.append({})
            start = clock["cycle"]
            for events in step_events(amplitudes):
                words = [{"index": j, "amplitude": a, "end": 0} for j, a in events]
                for word in words + [{"index": 0, "amplitude": 0, "end": 1}]:
                    ctx.set(dut.events.payload, word)
                    ctx.set(dut.events.valid, 1)
                    await ctx.tick().until(dut.events.ready)
                ctx.set(dut.events.valid, 0)
            ctx.set(dut.result.ready, 1)
            scores = []
            for _ in range(network.n_classes):
                payload, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
                scores.append(payload.score)
            ctx.set(dut.result.ready, 0)
            results.append((scores, payload.prediction))
            cycles.append(clock["cycle"] - start)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(monitor)
    sim.add_testbench(feeder)
    sim.run()
    assert not duplicates, f"blocks traced twice: {duplicates[:3]}"
    return traces, results, cycles


def check_network(network, lanes, samples):
    traces, results, cycles = simulate(network, lanes, samples)
    image = pack(network, lanes)
    for amplitudes, trace, (scores, prediction) in zip(samples, traces, results):
        expected, result = expected_trace(network, image, amplitudes)
        problems = compare_trace(expected, trace)
        assert not problems, "\n".join(problems[:10])
        assert scores == result.scores[0].tolist() and prediction == result.prediction[0]
    return cycles


def rate_samples(n_in, n_steps, n, seed, p=0.2, one=256):
    rng = np.random.default_rng(seed)
    return [(rng.random((n_steps, n_in)) < p).astype(np.int64) * one for _ in range(n)]


@pytest.mark.parametrize("lanes", [1, 4])
def test_two_layers_match_golden_state_by_state(lanes):
    network = random_network([24, 12, 100], seed=lanes)
    cycles = check_network(network, lanes, rate_samples(24, 30, 2, seed=lanes))
    assert all(c > 0 for c in cycles)


def test_elaboration_fails_when_the_network_does_not_fit():
    network = random_network([24, 12, 100], seed=0)
    image = pack(network, 4)
    with pytest.raises(FitError, match="24 inputs > 16"):
        SRCCore(image, limits=DeviceLimits(2, 16, 100, 10_000, 100))


@pytest.mark.parametrize("sizes, lanes", [([24, 12, 100], 1), ([24, 12, 100], 4), ([16, 9, 7, 100], 3), ([10, 100], 8)])
def test_cycle_model_is_exact(sizes, lanes):
    from hdl.cycles import sample_cycles

    network = random_network(sizes, seed=len(sizes) + lanes)
    samples = rate_samples(sizes[0], 30, 2, seed=lanes) + [np.zeros((30, sizes[0]), np.int64)]
    _, _, cycles = simulate(network, lanes, samples)
    image = pack(network, lanes)
    for amplitudes, measured in zip(samples, cycles):
        result = golden.run(network, amplitudes[:, None, :], record=True)
        states = [{"s": st["s"][:, 0]} for st in result.states]
        predicted, ideal = sample_cycles(image, amplitudes, states)
        assert measured == predicted
        assert ideal <= predicted


def test_run_time_load_replaces_the_baked_network():
    """Bake network A; load B (other layer sizes, another rho so other x-LUT contents) through the load port."""
    from hdl.core import load_writes
    from quant.srcparams import PAPER

    a = random_network([24, 12, 100], seed=10)
    b = random_network([20, 16, 100], seed=11, params=dataclasses.replace(PAPER, rho=2.5), n_steps=25)
    assert a.config.x_lut != b.config.x_lut
    lanes = 4
    dut = SRCCore(pack(a, lanes), limits=DeviceLimits(2, 24, 100, 600, 60, 30))
    sample = rate_samples(20, 25, 1, seed=12)[0]
    results = []

    async def bench(ctx):
        for memory, address, word in load_writes(pack(b, lanes)):
            ctx.set(dut.load.payload, {"memory": memory, "address": address, "word": word})
            ctx.set(dut.load.valid, 1)
            await ctx.tick().until(dut.load.ready)
        ctx.set(dut.load.valid, 0)
        for events in step_events(sample):
            for word in [{"index": j, "amplitude": x, "end": 0} for j, x in events] + [{"end": 1}]:
                ctx.set(dut.events.payload, {"index": 0, "amplitude": 0, "end": 0} | word)
                ctx.set(dut.events.valid, 1)
                await ctx.tick().until(dut.events.ready)
        ctx.set(dut.events.valid, 0)
        ctx.set(dut.result.ready, 1)
        for _ in range(10):
            payload, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            results.append(payload.score)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert results == golden.run(b, sample[:, None, :]).scores[0].tolist()
    same_weights_baked_lut = dataclasses.replace(b, config=a.config)
    assert results != golden.run(same_weights_baked_lut, sample[:, None, :]).scores[0].tolist()


def test_out_of_range_input_is_dropped_and_flagged():
    network, lanes = random_network([24, 12, 100], seed=13), 4
    dut = SRCCore(pack(network, lanes))
    sample = rate_samples(24, 30, 1, seed=14)[0]
    scores, flags = [], []

    async def bench(ctx):
        for t, events in enumerate(step_events(sample)):
            words = [{"index": j, "amplitude": a, "end": 0} for j, a in events]
            if t == 3:
                words.insert(0, {"index": 24, "amplitude": 256, "end": 0})   # past the 24 inputs
            for word in words + [{"index": 0, "amplitude": 0, "end": 1}]:
                ctx.set(dut.events.payload, word)
                ctx.set(dut.events.valid, 1)
                await ctx.tick().until(dut.events.ready)
                flags.append(ctx.get(dut.error))
        ctx.set(dut.events.valid, 0)
        ctx.set(dut.result.ready, 1)
        for _ in range(10):
            payload, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            scores.append(payload.score)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert flags[-1] == 1 and flags[0] == 0
    assert scores == golden.run(network, sample[:, None, :]).scores[0].tolist()


def test_a_core_refused_at_construction_leaves_no_unused_elaboratable_warning(monkeypatch):
    import gc
    import warnings

    from amaranth.hdl import UnusedElaboratable

    image = pack(random_network([24, 12, 100], seed=3, n_steps=10), 4)
    # Amaranth keeps the warning quiet until a first design is elaborated in the process; as after one:
    monkeypatch.setattr(UnusedElaboratable, "_MustUse__silence", False)

    def refuse():
        try:
            SRCCore(image, limits=DeviceLimits(2, 16, 100, 10_000, 100))
        except FitError as problem:
            return str(problem)   # the traceback, which holds the half-built core, ends here

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "24 inputs > 16" in refuse()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]
