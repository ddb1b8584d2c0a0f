"""cocotb bench: the Verilog of :class:`hdl.core.SRCCore` against the golden model, state by state.

Run from pytest through :mod:`sim.runner`. The case is described by a JSON file named in
``SRC_BENCH_SPEC``: the quantized network (``.npz``), the lanes, the samples (``.npz`` with
``amplitudes`` ``(n, T, n_in)``) and where to write the report (cycles and mismatches).

Each cycle the bench drives its inputs at the falling edge and samples every output after
``ReadOnly``, so a handshake seen there completes at the next rising edge.
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from firmware.image import pack
from firmware.image import DeviceLimits
from hdl.core import event_layout, result_layout, trace_layout
from quant.quantize import load_network
from sim.check import compare_trace, expected_trace, step_events
from sim.layouts import pack_value, unpack_value


async def _reset(dut):
    dut.rst.value = 1
    dut.events__valid.value = 0
    dut.result__ready.value = 0
    dut.load__valid.value = 0
    dut.trace__ready.value = 1
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def core_matches_golden(dut):
    spec = json.loads(Path(os.environ["SRC_BENCH_SPEC"]).read_text())
    network = load_network(spec["network"])
    samples = np.load(spec["samples"], allow_pickle=False)["amplitudes"]
    image = pack(network, spec["lanes"])
    cfg, limits = network.config, DeviceLimits.exact(image)
    ev_layout, res_layout = event_layout(cfg, limits.max_inputs), result_layout(cfg, network.n_classes)
    tr_layout = trace_layout(cfg, image.lanes, limits)

    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut)
    report = {"samples": [], "mismatches": []}
    for n, amplitudes in enumerate(samples):
        words = []
        for events in step_events(amplitudes):
            words += [pack_value(ev_layout, {"index": j, "amplitude": a}) for j, a in events]
            words.append(pack_value(ev_layout, {"end": 1}))
        trace, scores, prediction, cycles, sent = {}, [], None, 0, 0
        while len(scores) < network.n_classes:
            await FallingEdge(dut.clk)
            dut.events__valid.value = int(sent < len(words))
            dut.events__payload.value = words[sent] if sent < len(words) else 0
            dut.result__ready.value = 1
            await ReadOnly()
            cycles += 1
            if sent < len(words) and dut.events__ready.value == 1:
                sent += 1
            if dut.trace__valid.value == 1:
                raw = dut.trace__payload.value
                if not raw.is_resolvable:
                    raise AssertionError(f"X in trace at cycle {cycles}: {str(raw)}")
                word = unpack_value(tr_layout, int(raw))
                key = (word["t"], word["layer"], word["block"])
                assert key not in trace, f"block {key} traced twice"
                trace[key] = [(ln["i"], ln["h"], ln["hs"], ln["s"]) for ln in word["lanes"]]
            if dut.result__valid.value == 1:
                result = unpack_value(res_layout, int(dut.result__payload.value))
                assert result["cls"] == len(scores)
                scores.append(result["score"])
                prediction = result["prediction"]
            assert cycles < spec.get("max_cycles", 10_000_000), "the core stopped making progress"
        expected, golden_result = expected_trace(network, image, amplitudes)
        problems = compare_trace(expected, trace)
        if scores != golden_result.scores[0].tolist():
            problems.append(f"scores {scores} != golden {golden_result.scores[0].tolist()}")
        if prediction != int(golden_result.prediction[0]):
            problems.append(f"prediction {prediction} != golden {int(golden_result.prediction[0])}")
        report["mismatches"] += [f"sample {n}: {p}" for p in problems]
        spike_counts = [sum(1 for (t_, k_, _), lanes in trace.items() if k_ == k for ln in lanes if ln[3] > 0)
                        for k in range(len(image.layers))]
        report["samples"].append({"cycles": cycles, "prediction": prediction, "scores": scores,
                                  "spike_counts": spike_counts, "blocks_compared": len(expected),
                                  "events": [int(c.sum()) for c in golden_result.spike_counts],
                                  "input_events": int(np.count_nonzero(amplitudes))})
        # The core is ready again for the next sample; state is reset by the t == 0 masking.
    with open(spec["report"], "w") as f:
        json.dump(report, f, indent=1)
    assert not report["mismatches"], "\n".join(report["mismatches"][:20])
