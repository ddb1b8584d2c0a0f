"""What the device's encoders cost in accuracy: each model on the full test set, with snnTorch's encoder and with the device's.

Usage::

    python -m quant.bench_encoder --out docs/results/encoder.json      # the shipped models
    python -m quant.bench_encoder --rate-model M.safetensors --latency-model L.safetensors

For each model and its encoding (by default the shipped models, float and quantized, with their
own fixed-point configuration, pixel bits included; a given float model is quantized with the
default configuration),
the test images are encoded by snnTorch's float encoder (:mod:`quant.encode`: Bernoulli draws
for rate coding) and by the device's integer encoder (:mod:`quant.intencode`: the counter-based
hash, one seed per sample), and run on the float model and on the golden model (the device's
own arithmetic). At 8-bit pixels latency coding gives the same spikes with both encoders (an
exhaustive test holds the table to snnTorch's encoder); with fewer pixel bits (the shipped
latency model's 3) the difference is what the coarser pixels cost.

Exit codes: 0 measured; 2 bad arguments or an unreadable model or data set.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import assets, golden, intencode
from .checkpoint import load_model
from .cli import EXIT_USAGE, error, in_range
from .data import DatasetError, default_data_dir, load_images
from .encode import encode
from .files import FileError
from .fixedpoint import DEFAULT
from .provenance import provenance
from .quantize import load_network, quantize_model


def _shown(path):
    """``path`` relative to the repository where it lies inside it (reports name shipped files portably)."""
    try:
        return str(Path(path).resolve().relative_to(assets.ASSETS.parents[1]))
    except ValueError:
        return str(path)


def accuracies(model, network, images, labels, encoding, seed, batch=500, progress=True):
    """``{"torch_encoder": {...}, "device_encoder": {...}}``: float and fixed-point accuracy with each encoder."""
    generator = torch.Generator().manual_seed(seed)
    cfg = network.config
    counts = {name: {"float": 0, "fixed": 0} for name in ("torch_encoder", "device_encoder")}
    for start in tqdm(range(0, len(images), batch), desc=encoding, disable=not progress, dynamic_ncols=True):
        chunk, y = images[start:start + batch], labels[start:start + batch]
        pixels = intencode.to_pixels(chunk, cfg)
        seeds = intencode.sample_seeds(seed, len(chunk), start)
        spikes = {"torch_encoder": encode(torch.from_numpy(chunk), encoding, network.n_steps, generator=generator),
                  "device_encoder": torch.from_numpy(
                      intencode.encode(pixels, encoding, network.n_steps, cfg, seeds).astype(np.float32))}
        for name, s in spikes.items():
            with torch.no_grad():
                counts[name]["float"] += int((model(s)[0].argmax(1).numpy() == y).sum())
            counts[name]["fixed"] += int((golden.run(network, s.numpy().astype(bool)).prediction == y).sum())
    return {name: {"float_accuracy": c["float"] / len(images), "fixed_accuracy": c["fixed"] / len(images)}
            for name, c in counts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.bench_encoder", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 2 bad arguments or files.")
    p.add_argument("--rate-model", type=Path,
                   help="float model trained with rate coding (safetensors; default: the shipped one)")
    p.add_argument("--latency-model", type=Path,
                   help="float model trained with latency coding (safetensors; default: the shipped one)")
    p.add_argument("--limit", type=int, help="use only the first N test images (default: all 10 000)")
    p.add_argument("--seed", type=int, default=3, help="seed of both rate coders")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--out", type=Path, default=Path("runs/encoder.json"), help="report (JSON)")
    args = p.parse_args(argv)
    in_range(p, "limit", args.limit, 1)
    shipped = not (args.rate_model or args.latency_model)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {}
    try:
        test = load_images(default_data_dir("mnist"), "test")
        images, labels = test.images[:args.limit], test.labels[:args.limit]
        for encoding, path in (("rate", args.rate_model), ("latency", args.latency_model)):
            if path is None and not shipped:
                continue
            if shipped:
                path = assets.model(encoding).float_model
                model, config = load_model(path)
                network = load_network(assets.model(encoding).quantized_model)
            else:
                model, config = load_model(path)
                network = quantize_model(model, DEFAULT, config["encoding"], config["n_steps"])
            result = accuracies(model, network, images, labels, encoding, args.seed)
            report[encoding] = {"model": _shown(path), "trained_with": config["encoding"], "test_samples": len(images),
                                "pixel_bits": network.config.pixel_bits, "weight_width": network.config.weight_width,
                                "torch_encoder_accuracy": result["torch_encoder"]["fixed_accuracy"],
                                "device_encoder_accuracy": result["device_encoder"]["fixed_accuracy"],
                                "float": {k: v["float_accuracy"] for k, v in result.items()}}
            print(json.dumps({encoding: report[encoding]}))
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    report.update(provenance("quant.bench_encoder", argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
