"""cocotb bench: the Verilog of :class:`hdl.core.SRCCore` against the golden model, state by state.

Run from pytest through :mod:`sim.runner`. The case is described by a JSON file named in
``SRC_BENCH_SPEC``: the quantized network (``.npz``), the lanes, the samples (``.npz`` with
``amplitudes`` ``(n, T, n_in)``), where to write the report, and how to drive the core:

* ``stream`` (default true): the samples' input words back to back, results read as they come,
  so consecutive samples overlap in the core; else each sample waits for the previous result;
* ``idle``: the probability of an idle input cycle (bubbles), ``backpressure``: of a cycle with
  ``result.ready`` low; ``seed`` draws both.

Every updated block (the ``trace`` port) is compared with the golden model's state, every result
word with its scores. The report has, per sample, the cycle its last result word left, counted
from the first input word (cycle 0): :class:`hdl.cycles.CoreSchedule` predicts it exactly when
there are no bubbles and no back-pressure.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from firmware.image import DeviceLimits, pack
from hdl.layouts import event_layout, result_layout, trace_layout
from quant.quantize import load_network
from sim.check import compare_trace, expected_trace, step_events
from sim.cocotb_streams import StreamMonitor, StreamSink, StreamSource
from sim.layouts import pack_value, unpack_value
from sim.streams import random_pauses


class TB:
    """The core with a source on ``events``, a sink on ``result`` and a monitor on ``trace``."""

    def __init__(self, dut, spec):
        self.dut, self.spec = dut, spec
        self.network = load_network(spec["network"])
        self.image = pack(self.network, spec["lanes"])
        cfg, limits = self.network.config, DeviceLimits.exact(self.image)
        self.event_layout = event_layout(cfg, limits.max_inputs)
        self.result_layout = result_layout(cfg, self.network.n_classes)
        self.trace_layout = trace_layout(cfg, self.image.lanes, limits)
        Clock(dut.clk, 10, unit="ns").start()
        self.source = StreamSource(dut, "events", dut.clk)
        self.sink = StreamSink(dut, "result", dut.clk)
        self.trace = StreamMonitor(dut, "trace", dut.clk)
        dut.load__valid.value = 0
        seed = spec.get("seed", 0)
        if spec.get("idle"):
            self.source.set_pause_generator(random_pauses(seed, spec["idle"]))
        if spec.get("backpressure"):
            self.sink.set_pause_generator(random_pauses(seed + 1, spec["backpressure"]))

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def words(self, amplitudes):
        """A sample's input words: each step's events, then its end word."""
        out = []
        for events in step_events(amplitudes):
            out += [pack_value(self.event_layout, {"index": j, "amplitude": a}) for j, a in events]
            out.append(pack_value(self.event_layout, {"end": 1}))
        return out

    async def results(self, n):
        """Until ``n`` samples' results have been taken."""
        while len(self.sink.received) < n * self.network.n_classes:
            await RisingEdge(self.dut.clk)

    def split_trace(self, n):
        """The traced blocks of each of ``n`` samples: the ``k``-th time a block is traced, it is sample ``k``'s."""
        traces, seen = [{} for _ in range(n)], {}
        for _, raw in self.trace.seen:
            word = unpack_value(self.trace_layout, raw)
            key = (word["t"], word["layer"], word["block"])
            k = seen.get(key, 0)
            seen[key] = k + 1
            assert k < n, f"block {key} traced more often than there are samples"
            traces[k][key] = [(ln["i"], ln["h"], ln["hs"], ln["s"]) for ln in word["lanes"]]
        return traces


@cocotb.test()
async def core_matches_golden(dut):
    spec = json.loads(Path(os.environ["SRC_BENCH_SPEC"]).read_text())
    samples = np.load(spec["samples"], allow_pickle=False)["amplitudes"]
    tb = TB(dut, spec)
    await tb.reset()
    n, C = len(samples), tb.network.n_classes
    starts = []
    if spec.get("stream", True):
        starts = [tb.source.cycle + 1] * n
        for amplitudes in samples:
            tb.source.send(tb.words(amplitudes))
        await tb.results(n)
    else:
        for k, amplitudes in enumerate(samples):
            starts.append(tb.source.cycle + 1)       # offered from the next falling edge
            tb.source.send(tb.words(amplitudes))
            await tb.results(k + 1)
    report = {"samples": [], "mismatches": []}
    traces = tb.split_trace(n)
    for k, amplitudes in enumerate(samples):
        words = [unpack_value(tb.result_layout, raw) for _, raw in tb.sink.received[k * C:(k + 1) * C]]
        last_cycle = tb.sink.received[(k + 1) * C - 1][0]
        scores = [w["score"] for w in words]
        prediction = words[-1]["prediction"]
        problems = [f"result word {i} names class {w['cls']}" for i, w in enumerate(words) if w["cls"] != i]
        expected, golden_result = expected_trace(tb.network, tb.image, amplitudes)
        problems += compare_trace(expected, traces[k])
        if scores != golden_result.scores[0].tolist():
            problems.append(f"scores {scores} != golden {golden_result.scores[0].tolist()}")
        if prediction != int(golden_result.prediction[0]):
            problems.append(f"prediction {prediction} != golden {int(golden_result.prediction[0])}")
        report["mismatches"] += [f"sample {k}: {p}" for p in problems]
        spike_counts = [sum(1 for (_, layer, _), lanes in traces[k].items() if layer == l for ln in lanes if ln[3] > 0)
                        for l in range(len(tb.image.layers))]
        report["samples"].append({"cycles": last_cycle - starts[k] + 1, "done": last_cycle - starts[0],
                                  "prediction": prediction, "scores": scores, "spike_counts": spike_counts,
                                  "blocks_compared": len(expected),
                                  "events": [int(c.sum()) for c in golden_result.spike_counts],
                                  "input_events": int(np.count_nonzero(amplitudes))})
    with open(spec["report"], "w") as f:
        json.dump(report, f, indent=1)
    assert not report["mismatches"], "\n".join(report["mismatches"][:20])
