"""Benchmark: bytes per sample on the link for rate- and latency-coded MNIST, against the core's sample rate.

Usage::

    python -m host.bench_link --samples 100 --lanes 8 --baud 3000000

For each encoding, the STEPS frames of ``--samples`` MNIST test images (the first ones) are
built exactly as :class:`host.device.Device` sends them, and their size gives the samples/s a
UART of ``--baud`` carries (10 bits per byte, 8N1, RESULT replies on the other wire). The
core's samples/s for the same spikes comes from the exact cycle model at ``--clock-mhz``.
Two figures put the result in scale: the bytes per sample the line could afford to keep up
with the core, and the *combinatorial size* of the sample, ``sum_t log2 C(n_inputs, k_t)``
bits for ``k_t`` events in step ``t``: what naming the active inputs costs any coder that
knows the per-step counts but has no model of the images (a spatial model could do better).
Writes ``OUT.json`` and ``OUT.md`` (default ``runs/benchmarks/link``; ``make results`` regenerates
the committed ``docs/benchmarks/link``).

Exit codes: 0 measured; 2 bad arguments or an unreadable network or data set.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from firmware.image import pack
from firmware.protocol import Type, encode_frame, encode_steps, split_records
from hdl.cycles import golden_cycles
from quant import assets
from quant.cli import EXIT_USAGE, error, in_range, interruptible
from quant.data import DatasetError
from quant.files import FileError
from quant.provenance import provenance
from quant.quantize import load_network


def frame_bytes(amplitudes, one):
    """Bytes of the STEPS frames that carry one sample."""
    return sum(len(encode_frame(Type.STEPS, p)) for p in split_records(encode_steps(amplitudes, one)))


def combinatorial_bytes(spikes):
    """``sum_t log2 C(n, k_t)`` / 8 for one sample's ``(T, n)`` binary spikes."""
    n = spikes.shape[1]
    bits = sum((math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)
               for k in spikes.sum(axis=1).tolist())
    return bits / 8


@interruptible
def main(argv=None):
    import torch

    from quant.data import default_data_dir, load_images
    from quant.encode import encode

    p = argparse.ArgumentParser(prog="python -m host.bench_link", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 2 bad arguments or files.")
    p.add_argument("--model", type=Path, default=assets.QUANTIZED_MODEL, help="quantized network (.npz)")
    p.add_argument("--samples", type=int, default=100, help="MNIST test images per encoding")
    p.add_argument("--lanes", type=int, default=8, help="core lanes P for the cycle count")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="core clock")
    p.add_argument("--baud", type=int, default=3_000_000, help="UART line rate")
    p.add_argument("--seed", type=int, default=3, help="seed of rate coding")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/link"), help="report path without suffix")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "lanes", args.lanes, 1, 256)
    in_range(p, "clock-mhz", args.clock_mhz, 0.001)
    in_range(p, "baud", args.baud, 1)
    try:
        network = load_network(args.model)
        test = load_images(default_data_dir("mnist"), "test")
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    image = pack(network, args.lanes)
    rows = []
    for encoding in ("rate", "latency"):
        spikes = encode(torch.from_numpy(test.images[:args.samples]), encoding, network.n_steps,
                        generator=torch.Generator().manual_seed(args.seed)).numpy().astype(bool)
        sizes, cycles, floor = [], [], []
        for k in range(spikes.shape[1]):
            sample = spikes[:, k]
            sizes.append(frame_bytes(sample, network.config.one))
            floor.append(combinatorial_bytes(sample))
            cycles.append(golden_cycles(network, image, sample)[0])
        link_rate = args.baud / 10 / np.mean(sizes)
        core_rate = args.clock_mhz * 1e6 / np.mean(cycles)
        rows.append({"encoding": encoding, "bytes_per_sample": float(np.mean(sizes)), "bytes_max": int(np.max(sizes)),
                     "input_events_per_sample": float(spikes.sum() / spikes.shape[1]),
                     "link_samples_per_s": float(link_rate), "core_cycles_per_sample": float(np.mean(cycles)),
                     "core_samples_per_s": float(core_rate), "link_keeps_up": bool(link_rate >= core_rate),
                     "bytes_budget_per_sample": float(args.baud / 10 / core_rate),
                     "combinatorial_bytes_per_sample": float(np.mean(floor)),
                     "baud_to_keep_up": float(core_rate * np.mean(sizes) * 10)})
        print(json.dumps(rows[-1]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"model": "-".join(map(str, network.sizes)), "lanes": args.lanes,
                                                         "baud": args.baud, "rows": rows,
                                                         **provenance("host.bench_link", argv)}, indent=1))
    lines = [f"# Link bytes per sample ({'-'.join(map(str, network.sizes))}, P = {args.lanes}, "
             f"{args.baud / 1e6:g} Mbaud, {args.clock_mhz:g} MHz)", "",
             f"`python -m host.bench_link {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             "| encoding | bytes/sample | input events/sample | link samples/s | core samples/s | link keeps up "
             "| budget bytes/sample | combinatorial bytes/sample | baud to keep up |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['encoding']} | {r['bytes_per_sample']:.0f} | {r['input_events_per_sample']:.0f} | "
              f"{r['link_samples_per_s']:.0f} | {r['core_samples_per_s']:.0f} | {'yes' if r['link_keeps_up'] else 'no'} "
              f"| {r['bytes_budget_per_sample']:.0f} | {r['combinatorial_bytes_per_sample']:.0f} "
              f"| {r['baud_to_keep_up'] / 1e6:.1f} M |"
              for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
