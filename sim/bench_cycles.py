"""Benchmark: cycles per sample, lane utilisation and samples/s of the core, on real MNIST rate-coded samples.

Usage::

    python -m sim.bench_cycles --network quant/assets/model.npz --lanes 1 8 32 --samples 20 --rtl-samples 1 --rtl-lanes 8

For every network and lane count: the exact cycle model (:mod:`hdl.cycles`) over ``--samples``
samples, its event-driven ideal, the utilisation ideal/cycles and samples/s at ``--clock-mhz``;
``--rtl-samples`` of them are also run through the core's Verilog (cocotb + Icarus), which must
agree with the golden model and take exactly the modelled cycles. Writes ``OUT.json`` and ``OUT.md``
(default ``runs/benchmarks/cycles``; ``make results`` regenerates the committed ``docs/benchmarks/cycles``).

Exit codes: 0 measured; 1 the RTL disagreed with the golden model or the cycle model; 2 bad
arguments or an unreadable network or data set.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from firmware.image import pack
from hdl.cycles import golden_cycles
from quant.cli import EXIT_DISAGREES, EXIT_USAGE, error, in_range, interruptible
from quant.data import DatasetError
from quant.files import FileError
from quant.provenance import provenance
from quant.quantize import load_network


def encoded_samples(network, n, seed, data_dir=None):
    """The first ``n`` MNIST test images, encoded as the network was trained, as ``(n, T, 784)`` amplitudes."""
    import torch

    from quant.data import default_data_dir, load_images
    from quant.encode import encode

    test = load_images(data_dir or default_data_dir("mnist"), "test")
    spikes = encode(torch.from_numpy(test.images[:n]), network.encoding, network.n_steps,
                    generator=torch.Generator().manual_seed(seed))
    return spikes.numpy().astype(np.int64).transpose(1, 0, 2) * network.config.one, test.labels[:n]


def measure(network, lanes, amplitudes, rtl_samples, clock_mhz):
    image = pack(network, lanes)
    cycles, ideals = [], []
    for sample in amplitudes:
        c, i, _ = golden_cycles(network, image, sample)
        cycles.append(c)
        ideals.append(i)
    row = {"network": "-".join(map(str, network.sizes)), "lanes": lanes, "samples": len(cycles),
           "cycles_mean": float(np.mean(cycles)), "cycles_max": int(np.max(cycles)),
           "ideal_mean": float(np.mean(ideals)), "utilisation": float(np.sum(ideals) / np.sum(cycles)),
           "samples_per_s": clock_mhz * 1e6 / float(np.mean(cycles)), "rtl_checked": 0}
    if rtl_samples:
        from .runner import run_core_bench

        with tempfile.TemporaryDirectory() as workdir:
            started = time.time()
            report = run_core_bench(network, lanes, amplitudes[:rtl_samples], workdir)
        measured = [s["cycles"] for s in report["samples"]]
        if measured != cycles[:rtl_samples]:
            raise AssertionError(f"RTL cycles {measured} differ from the model {cycles[:rtl_samples]}")
        row.update(rtl_checked=rtl_samples, rtl_seconds=time.time() - started)
    return row


@interruptible
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.bench_cycles", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 1 RTL disagreed; 2 bad arguments or files.")
    p.add_argument("--network", type=Path, nargs="+", default=[Path("quant/assets/model.npz")],
                   help="quantized networks (.npz from quant.quantize or quant.make_assets)")
    p.add_argument("--lanes", type=int, nargs="+", default=[1, 8, 32], help="lane counts P to measure")
    p.add_argument("--samples", type=int, default=20, help="MNIST test samples per measurement")
    p.add_argument("--rtl-samples", type=int, default=0, help="of those, how many to confirm in RTL simulation")
    p.add_argument("--rtl-lanes", type=int, nargs="*", default=[8],
                   help="lane counts whose samples are confirmed in RTL (small P simulates slowly)")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="core clock for samples/s")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate-coded spikes")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/cycles"), help="report path without suffix")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "rtl-samples", args.rtl_samples, 0, args.samples)
    in_range(p, "clock-mhz", args.clock_mhz, 0.001)
    for lanes in args.lanes + args.rtl_lanes:
        in_range(p, "lanes", lanes, 1, 256)
    rows = []
    try:
        networks = [(path, load_network(path)) for path in args.network]
        for path, network in networks:
            amplitudes, _ = encoded_samples(network, args.samples, args.seed)
            for lanes in args.lanes:
                rtl = args.rtl_samples if lanes in args.rtl_lanes else 0
                row = measure(network, lanes, amplitudes, rtl, args.clock_mhz)
                print(json.dumps(row))
                rows.append(row)
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    except AssertionError as problem:
        return error(problem, EXIT_DISAGREES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"clock_mhz": args.clock_mhz, "rows": rows,
                                                         **provenance("sim.bench_cycles", argv)}, indent=1))
    lines = [f"# Core cycles per sample (MNIST rate coding, {args.clock_mhz:g} MHz)", "",
             f"`python -m sim.bench_cycles {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             "Cycles from the exact cycle model (hdl/cycles.py); the RTL column counts samples also simulated "
             "in Verilog (cocotb + Icarus), where golden model and cycle count agreed exactly.", "",
             "| network | P | samples | cycles/sample | event-driven ideal | utilisation | samples/s | RTL-checked |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['lanes']} | {r['samples']} | {r['cycles_mean']:.0f} | {r['ideal_mean']:.0f} | "
                     f"{100 * r['utilisation']:.1f} % | {r['samples_per_s']:.0f} | {r['rtl_checked']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
