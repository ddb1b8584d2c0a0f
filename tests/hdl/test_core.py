"""Amaranth-simulator tests of the whole core against the golden model, state by state."""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from firmware.image import DeviceLimits, FitError, pack
from hdl.core import SRCCore
from quant import golden
from sim.check import compare_trace, expected_trace, step_events
from tests.helpers import random_network


def simulate(network, lanes, samples, stream=False):
    """Run ``samples`` (list of ``(T, n_in)`` amplitude arrays) through the core.

    Returns per sample the observed trace ``{(t, layer, block): lanes}``, the result
    ``(scores, prediction)``, and the cycles from the first input word of the sample (or, with
    ``stream``, of the whole stream) to the sample's last result word. With ``stream`` the
    samples follow each other without a gap and results are read as they come, so samples
    overlap in the core; else each sample starts after the previous one's result.
    """
    dut = SRCCore(pack(network, lanes), trace=True)
    traces, results, cycles, duplicates = [{} for _ in samples], [], [], []
    clock = {"cycle": 0, "start": 0}

    async def monitor(ctx):
        seen = {}
        async for _, _, valid, payload in ctx.tick().sample(dut.trace.valid, dut.trace.payload):
            clock["cycle"] += 1
            if valid:
                key = (payload.t, payload.layer, payload.block)
                k = seen.get(key, 0)         # the k-th time a block is traced, it is sample k's
                seen[key] = k + 1
                if k >= len(traces):
                    duplicates.append(key)
                    continue
                traces[k][key] = [(payload.lanes[p].i, payload.lanes[p].h, payload.lanes[p].hs, payload.lanes[p].s)
                                  for p in range(lanes)]

    async def feed(ctx, amplitudes):
        for events in step_events(amplitudes):
            words = [{"index": j, "amplitude": a, "end": 0} for j, a in events]
            for word in words + [{"index": 0, "amplitude": 0, "end": 1}]:
                ctx.set(dut.events.payload, word)
                ctx.set(dut.events.valid, 1)
                await ctx.tick().until(dut.events.ready)
        ctx.set(dut.events.valid, 0)

    async def read(ctx):
        ctx.set(dut.result.ready, 1)
        scores = []
        for _ in range(network.n_classes):
            payload, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            scores.append(payload.score)
        results.append((scores, payload.prediction))
        cycles.append(clock["cycle"] - clock["start"])

    async def one_at_a_time(ctx):
        for amplitudes in samples:
            clock["start"] = clock["cycle"]
            await feed(ctx, amplitudes)
            await read(ctx)

    async def feeder(ctx):
        for amplitudes in samples:
            await feed(ctx, amplitudes)

    async def reader(ctx):
        for _ in samples:
            await read(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(monitor)
    if stream:
        sim.add_testbench(feeder)
        sim.add_testbench(reader)
    else:
        sim.add_testbench(one_at_a_time)
    sim.run()
    assert not duplicates, f"blocks traced too often: {duplicates[:3]}"
    return traces, results, cycles


def check_network(network, lanes, samples, stream=False):
    traces, results, cycles = simulate(network, lanes, samples, stream)
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


@pytest.mark.parametrize("sizes, lanes", [([24, 12, 100], 4), ([16, 9, 7, 100], 3)])
def test_streamed_samples_overlap_and_stay_exact(sizes, lanes):
    """Samples back to back: layer 0 starts the next sample while the upper layers finish this one."""
    from hdl.cycles import CoreSchedule, SampleProfile, stream_cycles

    network = random_network(sizes, seed=20 + lanes, n_steps=12)
    samples = rate_samples(sizes[0], 12, 4, seed=lanes, p=0.3) + [np.zeros((12, sizes[0]), np.int64)]
    measured = check_network(network, lanes, samples, stream=True)
    image = pack(network, lanes)
    profiles = []
    for amplitudes in samples:
        result = golden.run(network, amplitudes[:, None, :], record=True)
        profiles.append(SampleProfile.from_spikes(image, amplitudes, [st["s"][:, 0] for st in result.states]))
    done = CoreSchedule(image).run(profiles)
    assert measured == [d + 1 for d in done]
    # Overlap: the stream costs less than the samples one at a time.
    alone = sum(CoreSchedule(image).run([p])[0] + 1 for p in profiles)
    total, per_sample = stream_cycles(image, profiles)
    assert total == measured[-1] and total < alone
    assert sum(per_sample) == total


def test_a_queue_word_taken_frees_its_room_only_on_the_next_cycle():
    """Regression: on the cycle the accumulate unit takes a layer's step end from the queue, the
    update unit must still see the queue's registered level. The model once freed the room at once
    and started layer 0's update a cycle early (at cycle 351 of 672 with the three-stage
    accumulate and six-stage update pipelines of then); the RTL is right."""
    from hdl.cycles import CoreSchedule, golden_profiles

    network = random_network([40, 224, 100], seed=1, n_steps=12)
    samples = rate_samples(40, 12, 1, seed=1, p=0.05)
    _, _, measured = simulate(network, 8, samples, stream=True)
    image = pack(network, 8)
    profiles, _ = golden_profiles(network, image, np.array(samples))
    assert measured == [d + 1 for d in CoreSchedule(image).run(profiles)]


def test_run_time_load_replaces_the_baked_network():
    """Bake network A; load B (other layer sizes, another rho so other x-LUT contents) through the load port."""
    from hdl.layouts import load_writes
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


@pytest.mark.parametrize("sizes, recurrent, lanes", [([24, 12, 100], [0], 4), ([16, 9, 7, 100], [1], 3),
                                                     ([12, 100], [0], 8)])
def test_a_recurrent_network_matches_golden_state_by_state_and_cycle_by_cycle(sizes, recurrent, lanes):
    """The lateral path: each recurrent layer's spikes of step t come back as its inputs of t + 1."""
    from hdl.cycles import CoreSchedule, SampleProfile

    network = random_network(sizes, seed=30 + lanes, n_steps=20, recurrent=recurrent)
    samples = rate_samples(sizes[0], 20, 3, seed=lanes, p=0.4)
    result = golden.run(network, np.stack(samples, axis=1), record=True)
    own = sum(int(np.count_nonzero(result.states[k]["s"][:-1])) for k in recurrent)
    assert own > 20, "the lateral path must carry events"
    for stream in (False, True):
        measured = check_network(network, lanes, samples, stream=stream)
        image = pack(network, lanes)
        profiles = [SampleProfile.from_spikes(image, a, [st["s"][:, k] for st in result.states])
                    for k, a in enumerate(samples)]
        if stream:
            assert measured == [d + 1 for d in CoreSchedule(image).run(profiles)]
        else:
            assert measured == [CoreSchedule(image).run([p])[0] + 1 for p in profiles]
