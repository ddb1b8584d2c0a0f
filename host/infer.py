"""Run inference on a device (or the emulator): stream encoded samples, report accuracy and throughput.

Usage::

    python -m host.infer --emulate                       # shipped model and samples, golden emulator
    python -m host.infer --port /dev/ttyUSB1             # the board
    python -m host.infer --port socket://127.0.0.1:5555 --dataset mnist --limit 1000

Loads the model into the device, streams each sample's spikes, and reports accuracy,
samples/s (wall clock, and at the device's clock from its cycle counter), bytes per sample
on the link, input events and spike activity per layer, and agreement with the golden model
run on the same spikes on the host.

Prints a summary and writes the report as JSON (``--json``, default ``runs/infer/report.json``).

Exit codes: 0 success; 1 the device disagreed with the golden model; 2 usage or input error
(arguments, files, a model that does not fit the device); 3 the link or the device failed; 130
interrupted.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from firmware import image as fw_image
from quant import assets, golden
from quant.cli import (EXIT_CODES, EXIT_DISAGREES, EXIT_LINK, EXIT_OK, EXIT_USAGE, error, in_range,
                       interruptible)
from quant.data import DatasetError
from quant.files import FileError
from quant.quantize import load_network
from quant.provenance import file_record, provenance
from quant.samples import load_samples

from .device import Device, DeviceError, DeviceTimeout
from .transport import TransportError


def load_inputs(args, network, encoding):
    """``(pixels (n, n_in) or None, spikes (n, T, n_in) bool, labels, seeds)``.

    With ``--send images`` the pixels go to the device, and ``spikes`` are what the device's
    encoders make of them (:mod:`quant.intencode`, from the same seeds): the golden model's input.
    With ``--send spikes``: the shipped pack's stored spikes, or a data set encoded here with the
    device's encoders.
    """
    from quant import intencode

    cfg = network.config
    if args.dataset == "shipped":
        stored, labels, images, header = load_samples(args.samples_file)
        stored = stored.transpose(1, 0, 2)
        if stored.shape[1:] != (network.n_steps, network.layers[0].n_in):
            raise ValueError(f"{args.samples_file} holds samples of (T, inputs) = {stored.shape[1:]}, the model "
                             f"takes {(network.n_steps, network.layers[0].n_in)}")
        if args.send == "spikes" and header["encoding"] != encoding:
            print(f"warning: {args.samples_file} is {header['encoding']}-coded, not {encoding}", file=sys.stderr)
    else:
        from quant.data import default_data_dir, load_images

        test = load_images(args.data_dir or default_data_dir(args.dataset), "test")
        images, labels, stored = test.images, test.labels, None
    n = min(args.limit or len(labels), len(labels))
    pixels = intencode.to_pixels(images[:n], cfg)
    seeds = intencode.sample_seeds(args.seed, n)
    if stored is not None and args.send == "spikes":
        spikes = stored[:n]
    else:
        spikes = intencode.encode(pixels, encoding, network.n_steps, cfg, seeds).transpose(1, 0, 2)
    return (pixels if args.send == "images" else None), spikes, np.asarray(labels[:n]), seeds


def summary(report):
    """A few readable lines of a run's report."""
    lines = [f"SRC {report['model']} on {report['samples']} samples through {report['device']} "
             f"({report['lanes']} lanes, {report['encoding']} coding, {report['sent']} sent)",
             f"  accuracy:               {100 * report['accuracy']:.2f} %",
             f"  link:                   {report['samples_per_s_wall']:.1f} samples/s wall clock, "
             f"{report['bytes_per_sample']:.0f} bytes/sample",
             f"  device:                 {report['cycles_per_sample']:.0f} cycles/sample, "
             f"{report['samples_per_s_at_clock']:.0f} samples/s at {report['clock_mhz']:g} MHz",
             f"  input events/sample:    {report['input_events_per_sample']:.0f}",
             f"  spike activity/layer:   {report['activity']}"]
    if "golden_agreement" in report:
        verdict = ("identical scores and predictions" if report["golden_scores_identical"]
                   and report["golden_agreement"] == 1.0 else
                   f"DISAGREES (predictions agree on {100 * report['golden_agreement']:.1f} %)")
        lines.append(f"  golden model:           {verdict}")
    if report.get("stale_replies_skipped"):
        lines.append(f"  stale replies skipped:  {report['stale_replies_skipped']}")
    return "\n".join(lines)


def _rounded(value, digits=6):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


@interruptible
def main(argv=None):

    p = argparse.ArgumentParser(prog="python -m host.infer", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=EXIT_CODES)
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--port", help="device URL: a serial port, socket://HOST:PORT, loop://, or pcie://H2C,C2H")
    link.add_argument("--emulate", action="store_true", help="start an emulated device in-process, built with --model")
    p.add_argument("--baud", type=int, default=12_000_000, help="serial line rate (the Arty build: 12 Mbaud)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    p.add_argument("--lanes", type=int, default=fw_image.DEFAULT_LANES, help=f"lanes of the emulated core (with --emulate; 1..{fw_image.MAX_LANES})")
    p.add_argument("--backend", choices=["golden", "rtl"], default="golden",
                   help="what the emulator computes with (with --emulate): the golden model, or the device's "
                        "Verilog with --model baked in (cocotb; slow: use --limit)")
    p.add_argument("--model", type=Path, default=assets.QUANTIZED_MODEL, help="quantized network (.npz)")
    p.add_argument("--force-load", action="store_true",
                   help="send the model even when the device reports holding exactly it")
    p.add_argument("--dataset", choices=["shipped", "mnist", "fashion-mnist"], default="shipped",
                   help="the shipped encoded samples, or a data set encoded here")
    p.add_argument("--samples-file", type=Path, default=assets.SAMPLES, help="sample pack for --dataset shipped")
    p.add_argument("--data-dir", type=Path, help="data set folder (default: the shared copy)")
    p.add_argument("--encoding", choices=["rate", "latency"], help="encoding (default: the model's)")
    p.add_argument("--send", choices=["images", "spikes"], default="images",
                   help="images: the device encodes them (IMAGE messages); spikes: the host sends step records")
    p.add_argument("--limit", type=int, help="use only the first N samples (at least 1)")
    p.add_argument("--seed", type=int, default=3, help="seed of rate coding")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="device clock, for samples/s from cycles")
    p.add_argument("--no-check", action="store_true", help="skip the golden-model comparison")
    p.add_argument("--json", type=Path, default=Path("runs/infer/report.json"), help="where the report (JSON) goes")
    args = p.parse_args(argv)
    in_range(p, "limit", args.limit, 1)
    in_range(p, "lanes", args.lanes, 1, fw_image.MAX_LANES)
    in_range(p, "timeout", args.timeout, 0.001)
    in_range(p, "baud", args.baud, 1)
    in_range(p, "clock-mhz", args.clock_mhz, 0.001)

    try:
        network = load_network(args.model)
    except FileError as problem:
        return error(problem, EXIT_USAGE)
    encoding = args.encoding or network.encoding
    if args.encoding and args.encoding != network.encoding:
        print(f"warning: {args.model} was trained with {network.encoding} coding; {args.encoding}-coded inputs "
              f"will not give its accuracy", file=sys.stderr)
    try:
        pixels, spikes, labels, seeds = load_inputs(args, network, encoding)
    except (FileError, DatasetError, ValueError) as problem:
        return error(problem, EXIT_USAGE)
    server = None
    try:
        if args.emulate:
            from sim.emulator import serve
            server = serve(args.backend, network, lanes=args.lanes)
        # A simulated device runs some ten thousand cycles a second: a sample takes seconds.
        timeout = max(args.timeout, 600.0) if args.emulate and args.backend == "rtl" else args.timeout
        device = Device(server.url if server else args.port, baudrate=args.baud, timeout=timeout)
    except fw_image.ImageError as problem:
        return error(problem, EXIT_USAGE)
    except (TransportError, OSError, RuntimeError) as problem:
        if server:
            server.shutdown()
        return error(problem, EXIT_LINK)
    try:
        with device:
            identity = device.identify()
            device.load_model(network, force=args.force_load)
            results, started = [], time.perf_counter()
            for k in tqdm(range(len(labels)), desc="infer", dynamic_ncols=True):
                results.append(device.infer(spikes[k]) if pixels is None else
                               device.infer_image(pixels[k], encoding, int(seeds[k])))
            seconds = time.perf_counter() - started
    except DeviceTimeout as problem:
        return error(f"the device stopped answering: {problem}", EXIT_LINK)
    except DeviceError as problem:
        return error(f"device: {problem}", EXIT_LINK)
    except (TransportError, OSError) as problem:
        return error(f"the link to the device was lost: {problem}", EXIT_LINK)
    finally:
        if server:
            server.shutdown()

    predictions = np.array([r.prediction for r in results])
    n_steps = network.n_steps
    report = {
        "device": device.transport.url, "lanes": identity.lanes, "model": network.shape_name(),
        **file_record(args.model), "encoding": encoding, "sent": args.send, "samples": len(results),
        "accuracy": float((predictions == labels).mean()),
        "samples_per_s_wall": len(results) / seconds,
        "bytes_per_sample": float(np.mean([r.bytes_sent for r in results])),
        "input_events_per_sample": float(np.mean([r.input_events for r in results])),
        "activity": [float(np.mean([r.spike_counts[k] for r in results])) / (n_steps * layer.n_out)
                     for k, layer in enumerate(network.layers)],
        "cycles_per_sample": float(np.mean([r.cycles for r in results])),
        "clock_mhz": args.clock_mhz, "stale_replies_skipped": device.stale_replies,
        **provenance("host.infer", argv),
    }
    report["samples_per_s_at_clock"] = args.clock_mhz * 1e6 / report["cycles_per_sample"]
    report["link_bytes_per_s_needed"] = report["bytes_per_sample"] * report["samples_per_s_at_clock"]
    status = EXIT_OK
    if not args.no_check:
        expected = golden.run(network, spikes.transpose(1, 0, 2))
        scores_equal = all(np.array_equal(r.scores, s) for r, s in zip(results, expected.scores))
        report["golden_agreement"] = float((predictions == expected.prediction).mean())
        report["golden_scores_identical"] = bool(scores_equal)
        status = EXIT_OK if scores_equal and report["golden_agreement"] == 1.0 else EXIT_DISAGREES
    report = {k: _rounded(v) for k, v in report.items()}
    print(summary(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"  report:                 {args.json}")
    if status:
        print("error: the device disagrees with the golden model", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
