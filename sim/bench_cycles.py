"""Benchmark: samples/s and lane utilisation of the core on MNIST (or Fashion-MNIST) test images, as the device encodes them.

Usage::

    python -m sim.bench_cycles                       # the shipped models at the default lanes
    python -m sim.bench_cycles --network runs/x.npz --encodings rate latency --lanes 8 16 32
    python -m sim.bench_cycles --network docs/results/models/fashion-rate-src-784-128-R128-100/model.npz \
        --dataset fashion-mnist --rtl-samples 2 --out runs/benchmarks/cycles-recurrent

For every network, encoding and lane count, ``--samples`` MNIST test images are encoded by the
device's integer encoder (:mod:`quant.intencode`, seeds as the host sends them) and streamed back
to back through the exact cycle model (:class:`hdl.cycles.CoreSchedule`): consecutive samples
overlap in the core as they do on the device. A row reports the cycles per sample in that stream
(and of one sample alone, its latency), the event-driven ideal (the busier unit's work:
:meth:`hdl.cycles.SampleProfile.ideal`), the utilisation ideal / cycles and samples/s at
``--clock-mhz``. ``--rtl-samples`` of them are also streamed through the core's Verilog (cocotb,
Verilator where installed), which must agree with the golden model state by state and leave each
result on the modelled cycle. Writes ``OUT.json`` and ``OUT.md`` (default ``runs/benchmarks/cycles``;
``make results`` regenerates the committed ``docs/benchmarks/cycles``).

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

from firmware.image import DEFAULT_LANES, MAX_LANES, pack
from hdl.cycles import CoreSchedule, golden_profiles
from quant import assets, intencode
from quant.cli import EXIT_DISAGREES, EXIT_USAGE, error, in_range, interruptible
from quant.data import DatasetError
from quant.files import FileError
from quant.provenance import provenance
from quant.quantize import load_network

__all__ = ["device_samples", "measure", "main"]


def device_samples(network, n, encoding, seed, data_dir=None, dataset="mnist"):
    """The first ``n`` test images of ``dataset`` as the device encodes them: ``(n, T, 784)`` amplitudes."""
    from quant.data import DatasetError, default_data_dir, load_images

    directory = data_dir or default_data_dir(dataset)
    if directory is None:
        raise DatasetError(f"no local copy of {dataset}")
    test = load_images(directory, "test")
    cfg = network.config
    pixels = intencode.to_pixels(test.images[:n], cfg)
    spikes = intencode.encode(pixels, encoding, network.n_steps, cfg, intencode.sample_seeds(seed, len(pixels)))
    return spikes.transpose(1, 0, 2).astype(np.int64) * cfg.one, test.labels[:n]


def measure(network, lanes, amplitudes, encoding, clock_mhz, rtl_samples=0, shipped=False):
    """One row: the stream of ``amplitudes`` on a core of ``lanes`` lanes (and ``rtl_samples`` of them in RTL)."""
    image = pack(network, lanes)
    profiles, _ = golden_profiles(network, image, amplitudes)
    schedule = CoreSchedule(image)
    done = schedule.run(profiles)
    total = done[-1] + 1
    alone = [CoreSchedule(image).run([p])[0] + 1 for p in profiles[:10]]
    ideal = sum(p.ideal(image) for p in profiles)
    row = {"network": network.shape_name(), "encoding": encoding, "lanes": lanes, "shipped": shipped,
           "samples": len(profiles), "cycles_per_sample": total / len(profiles),
           "latency_cycles": float(np.mean(alone)), "ideal_per_sample": ideal / len(profiles),
           "utilisation": ideal / total, "samples_per_s_at_100mhz": len(profiles) * 100e6 / total,
           "samples_per_s": len(profiles) * clock_mhz * 1e6 / total,
           "input_events_per_sample": float(np.mean([int(np.sum(p.events[0])) for p in profiles])),
           "rtl_checked": 0}
    if rtl_samples:
        from .runner import run_core_bench

        with tempfile.TemporaryDirectory() as workdir:
            started = time.time()
            report = run_core_bench(network, lanes, amplitudes[:rtl_samples], workdir, long_run=True)
        measured = [s["done"] for s in report["samples"]]
        expected = CoreSchedule(image).run(profiles[:rtl_samples])
        if measured != expected:
            raise AssertionError(f"RTL results left on cycles {measured}, the model says {expected}")
        row.update(rtl_checked=rtl_samples, rtl_seconds=time.time() - started)
    return row


def _shipped():
    """The shipped models with their encodings."""
    return [(entry.quantized_model, True) for entry in assets.models()]


@interruptible
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.bench_cycles", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 1 RTL disagreed; 2 bad arguments or files.")
    p.add_argument("--network", type=Path, nargs="+",
                   help="quantized networks (.npz from quant.quantize or quant.make_assets); default: the shipped models")
    p.add_argument("--encodings", nargs="+", choices=["rate", "latency"],
                   help="encodings to measure each network in (default: the one it was trained with)")
    p.add_argument("--lanes", type=int, nargs="+", default=[DEFAULT_LANES], help="lane counts P to measure")
    p.add_argument("--samples", type=int, default=100, help="test images per measurement")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="test set of the images")
    p.add_argument("--rtl-samples", type=int, default=0, help="of those, how many to confirm in RTL simulation")
    p.add_argument("--rtl-lanes", type=int, nargs="*", default=[DEFAULT_LANES],
                   help="lane counts whose samples are confirmed in RTL")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="core clock for the samples/s column")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate coder's per-sample seeds")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/cycles"), help="report path without suffix")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "rtl-samples", args.rtl_samples, 0, args.samples)
    in_range(p, "clock-mhz", args.clock_mhz, 0.001)
    for lanes in args.lanes + args.rtl_lanes:
        in_range(p, "lanes", lanes, 1, MAX_LANES)
    rows = []
    try:
        networks = [(path, False) for path in args.network] if args.network else _shipped()
        for path, shipped in networks:
            network = load_network(path)
            for encoding in args.encodings or [network.encoding]:
                amplitudes, _ = device_samples(network, args.samples, encoding, args.seed, dataset=args.dataset)
                for lanes in args.lanes:
                    rtl = args.rtl_samples if lanes in args.rtl_lanes else 0
                    is_default = shipped and encoding == network.encoding and lanes == DEFAULT_LANES
                    row = measure(network, lanes, amplitudes, encoding, args.clock_mhz, rtl, is_default)
                    print(json.dumps(row))
                    rows.append(row)
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    except AssertionError as problem:
        return error(problem, EXIT_DISAGREES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"clock_mhz": args.clock_mhz, "dataset": args.dataset, "rows": rows, **provenance("sim.bench_cycles", argv)}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    title = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[args.dataset]
    lines = [f"# Core throughput on {title} (samples streamed back to back, {args.clock_mhz:g} MHz)", "",
             f"`{report['command']}` (commit {report['git_commit'][:12]})", "",
             "Cycles from the exact cycle model (hdl/cycles.py); the RTL column counts samples also streamed "
             "through the Verilog, where the golden model and every result's cycle agreed exactly.", "",
             "| network | encoding | P | shipped | samples | cycles/sample | latency (cycles) | ideal | utilisation "
             "| samples/s | RTL-checked |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['encoding']} | {r['lanes']} | {'yes' if r['shipped'] else ''} "
                     f"| {r['samples']} | {r['cycles_per_sample']:.0f} | {r['latency_cycles']:.0f} "
                     f"| {r['ideal_per_sample']:.0f} | {100 * r['utilisation']:.1f} % | {r['samples_per_s']:.0f} "
                     f"| {r['rtl_checked']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
