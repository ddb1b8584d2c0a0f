"""Run inference on a device (or the emulator): stream encoded samples, report accuracy and throughput.

Usage::

    python -m host.infer --emulate                       # shipped model and samples, golden emulator
    python -m host.infer --port /dev/ttyUSB1             # the board
    python -m host.infer --port socket://127.0.0.1:5555 --dataset mnist --limit 1000

Loads the model into the device, streams each sample's spikes, and reports accuracy,
samples/s (wall clock, and at the device's clock from its cycle counter), bytes per sample
on the link, input events and spike activity per layer, and agreement with the golden model
run on the same spikes on the host.

Exit codes: 0 success; 1 the device disagreed with the golden model; 2 bad input or link failure.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from quant import assets, golden
from quant.quantize import QuantizationError, load_network
from quant.samples import SampleError, load_samples

from .device import Device, DeviceError
from .transport import TransportError


def load_inputs(args, network):
    """``(spikes (n, T, n_in) bool, labels)`` from the shipped pack or an encoded data set."""
    if args.dataset == "shipped":
        spikes, labels, _, _ = load_samples(args.samples_file)
        spikes = spikes.transpose(1, 0, 2)
    else:
        import torch

        from quant.data import default_data_dir, load_images
        from quant.encode import encode

        test = load_images(args.data_dir or default_data_dir(args.dataset), "test")
        n = min(args.limit or len(test), len(test))
        encoded = encode(torch.from_numpy(test.images[:n]), args.encoding or network.encoding, network.n_steps,
                         generator=torch.Generator().manual_seed(args.seed))
        spikes, labels = encoded.numpy().astype(bool).transpose(1, 0, 2), test.labels[:n]
    if args.limit:
        spikes, labels = spikes[:args.limit], labels[:args.limit]
    return spikes, labels


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host.infer", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--port", help="device URL: a serial port, socket://HOST:PORT, loop://, or pcie://H2C,C2H")
    link.add_argument("--emulate", action="store_true", help="start the golden-model emulator in-process and use it")
    p.add_argument("--baud", type=int, default=3_000_000, help="serial line rate")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply")
    p.add_argument("--lanes", type=int, default=8, help="lanes of the emulated core (with --emulate)")
    p.add_argument("--backend", choices=["golden", "rtl"], default="golden",
                   help="what the emulator computes with (with --emulate): the golden model, or the device's "
                        "Verilog with --model baked in (cocotb + Icarus; slow: use --limit)")
    p.add_argument("--model", type=Path, default=assets.QUANTIZED_MODEL, help="quantized network (.npz)")
    p.add_argument("--dataset", choices=["shipped", "mnist", "fashion-mnist"], default="shipped",
                   help="the shipped encoded samples, or a data set encoded here")
    p.add_argument("--samples-file", type=Path, default=assets.SAMPLES, help="sample pack for --dataset shipped")
    p.add_argument("--data-dir", type=Path, help="data set folder (default: the shared copy)")
    p.add_argument("--encoding", choices=["rate", "latency"], help="encoding (default: the model's)")
    p.add_argument("--limit", type=int, help="use only the first N samples")
    p.add_argument("--seed", type=int, default=3, help="seed of rate coding")
    p.add_argument("--clock-mhz", type=float, default=100.0, help="device clock, for samples/s from cycles")
    p.add_argument("--no-check", action="store_true", help="skip the golden-model comparison")
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args(argv)

    server = None
    try:
        network = load_network(args.model)
        spikes, labels = load_inputs(args, network)
        if args.emulate:
            from sim.emulator import serve
            server = serve(args.backend, lanes=args.lanes, network=network)
        # A simulated device runs some ten thousand cycles a second: a sample takes seconds.
        timeout = max(args.timeout, 600.0) if args.emulate and args.backend == "rtl" else args.timeout
        device = Device(server.url if server else args.port, baudrate=args.baud, timeout=timeout)
    except (QuantizationError, SampleError, TransportError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        with device:
            identity = device.identify()
            device.load_model(network)
            results, started = [], time.perf_counter()
            for sample in tqdm(spikes, desc="infer", dynamic_ncols=True):
                results.append(device.infer(sample))
            seconds = time.perf_counter() - started
    except (DeviceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if server:
            server.shutdown()

    predictions = np.array([r.prediction for r in results])
    n_steps = network.n_steps
    report = {
        "device": device.transport.url, "lanes": identity.lanes, "model": "-".join(map(str, network.sizes)),
        "samples": len(results), "accuracy": float((predictions == labels).mean()),
        "samples_per_s_wall": len(results) / seconds,
        "bytes_per_sample": float(np.mean([r.bytes_sent for r in results])),
        "input_events_per_sample": float(np.mean([r.input_events for r in results])),
        "activity": [float(np.mean([r.spike_counts[k] for r in results])) / (n_steps * layer.n_out)
                     for k, layer in enumerate(network.layers)],
        "cycles_per_sample": float(np.mean([r.cycles for r in results])),
    }
    report["samples_per_s_at_clock"] = args.clock_mhz * 1e6 / report["cycles_per_sample"]
    report["link_bytes_per_s_needed"] = report["bytes_per_sample"] * report["samples_per_s_at_clock"]
    status = 0
    if not args.no_check:
        expected = golden.run(network, spikes.transpose(1, 0, 2))
        scores_equal = all(np.array_equal(r.scores, s) for r, s in zip(results, expected.scores))
        report["golden_agreement"] = float((predictions == expected.prediction).mean())
        report["golden_scores_identical"] = bool(scores_equal)
        status = 0 if scores_equal and report["golden_agreement"] == 1.0 else 1
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if status:
        print("error: the device disagrees with the golden model", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
