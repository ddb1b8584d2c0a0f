"""Benchmark: bytes per sample on the link, and whether the link keeps up with the core, for MNIST in both encodings.

Usage::

    python -m host.bench_link --samples 1000 --out docs/benchmarks/link

For each encoding (and its shipped model, unless ``--model`` names one for both) the first
``--samples`` MNIST test images are framed exactly as
:class:`host.device.Device` sends them: as IMAGE messages (the device encodes them), and, for
comparison, as the STEPS step records of the spikes the device's encoder makes of them. The
line carries 10 bits per byte (8N1) at ``--baud``; the core's samples/s for the same spikes come
from the exact cycle model at ``--clock-mhz`` and ``--lanes``. Writes ``OUT.json`` and
``OUT.md`` (default ``runs/benchmarks/link``; ``make results`` regenerates the committed
``docs/benchmarks/link``).

Exit codes: 0 measured; 2 bad arguments or an unreadable network or data set.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from firmware.image import DEFAULT_LANES, pack
from firmware.protocol import FRAME_OVERHEAD, Type, encode_frame, encode_image, encode_steps, split_records
from hdl.cycles import golden_cycles
from quant import assets, intencode
from quant.cli import EXIT_USAGE, error, in_range, interruptible
from quant.data import DatasetError
from quant.files import FileError
from quant.provenance import provenance
from quant.quantize import load_network

#: The Arty build's line rate (hdl.build) and the bits a byte takes on it (8N1).
DEFAULT_BAUD, BITS_PER_BYTE = 12_000_000, 10


def steps_bytes(spikes, one):
    """Bytes of the STEPS frames that carry one sample's ``(T, n)`` spikes."""
    return sum(len(encode_frame(Type.STEPS, p)) for p in split_records(encode_steps(spikes, one)))


def measure(network, lanes, pixels, encoding, seeds, clock_mhz, baud, progress=True):
    """One encoding's row: bytes per sample (images and spike records), link and core samples/s."""
    image = pack(network, lanes)
    cfg = network.config
    image_bytes, record_bytes, cycles, events = [], [], [], []
    for k in tqdm(range(len(pixels)), desc=encoding, disable=not progress, dynamic_ncols=True):
        image_bytes.append(len(encode_image(pixels[k], encoding, int(seeds[k]), cfg.pixel_bits)) + FRAME_OVERHEAD)
        spikes = intencode.encode_with_tables(pixels[k], encoding, int(seeds[k]), network.n_steps, image.rate_table,
                                              image.latency_table, cfg.draw_bits)
        record_bytes.append(steps_bytes(spikes, cfg.one))
        events.append(int(spikes.sum()))
        cycles.append(golden_cycles(network, image, spikes)[0])
    bytes_per_sample = float(np.mean(image_bytes))
    link = baud / BITS_PER_BYTE / bytes_per_sample
    core = clock_mhz * 1e6 / float(np.mean(cycles))
    return {"bytes_per_sample": bytes_per_sample, "bytes_max": int(np.max(image_bytes)),
            "spike_record_bytes_per_sample": float(np.mean(record_bytes)),
            "input_events_per_sample": float(np.mean(events)), "link_samples_per_s": link,
            "core_cycles_per_sample": float(np.mean(cycles)), "core_samples_per_s": core,
            "link_keeps_up": bool(link >= core), "bytes_budget_per_sample": baud / BITS_PER_BYTE / core}


@interruptible
def main(argv=None):
    from quant.data import default_data_dir, load_images

    p = argparse.ArgumentParser(prog="python -m host.bench_link", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 2 bad arguments or files.")
    p.add_argument("--model", type=Path,
                   help="quantized network (.npz) for both encodings (default: each encoding's shipped model)")
    p.add_argument("--samples", type=int, default=1000, help="MNIST test images per encoding")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="core lanes P for the cycle count")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="core clock")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="UART line rate")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate coder's per-sample seeds")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks/link"), help="report path without suffix")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "lanes", args.lanes, 1, 256)
    in_range(p, "clock-mhz", args.clock_mhz, 0.001)
    in_range(p, "baud", args.baud, 1)
    try:
        networks = {encoding: load_network(args.model or assets.model(encoding).quantized_model)
                    for encoding in ("rate", "latency")}
        test = load_images(default_data_dir("mnist"), "test")
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    seeds = intencode.sample_seeds(args.seed, args.samples)
    encodings = {}
    for encoding, network in networks.items():
        pixels = intencode.to_pixels(test.images[:args.samples], network.config)
        encodings[encoding] = {"model_encoding": network.encoding, **measure(
            network, args.lanes, pixels, encoding, seeds, args.clock_mhz, args.baud)}
        print(json.dumps({encoding: encodings[encoding]}))
    network = networks["latency"]
    report = {"model": network.shape_name(),
              "model_encoding": "each encoding's own" if args.model is None else network.encoding, "lanes": args.lanes,
              "samples": len(seeds), "baud": args.baud, "clock_mhz": args.clock_mhz, "encodings": encodings,
              **provenance("host.bench_link", argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [f"# Link bytes per sample ({report['model']}, P = {args.lanes}, {args.baud / 1e6:g} Mbaud, "
             f"{args.clock_mhz:g} MHz, {len(seeds)} MNIST test images; models: {report['model_encoding']})", "",
             f"`{report['command']}`", "",
             "| encoding | image bytes/sample | spike-record bytes/sample | input events/sample | link samples/s "
             "| core samples/s | link keeps up |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {e} | {r['bytes_per_sample']:.0f} | {r['spike_record_bytes_per_sample']:.0f} | "
              f"{r['input_events_per_sample']:.0f} | {r['link_samples_per_s']:.0f} | {r['core_samples_per_s']:.0f} "
              f"| {'yes' if r['link_keeps_up'] else 'no'} |" for e, r in encodings.items()]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
