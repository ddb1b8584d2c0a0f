"""Build a shipped model: copy a trained model, quantize it, and encode test samples as the device does.

Usage::

    python -m quant.make_assets --model docs/results/models/mnist-latency-src-784-224-100.safetensors \
        --name latency --weight-width 6

Writes, in ``quant/assets/NAME/``, ``model.safetensors``, ``model.npz`` (the default fixed-point
configuration at ``--weight-width``), ``samples.npz`` (the first N test images of ``--dataset``, their labels
and their exact input spikes from the device's integer encoder, seeds as the host sends them) and
``manifest.json`` (sizes, accuracies on the samples, config digest, SHA-256 of each file).
"""

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from . import assets, golden, intencode
from .checkpoint import load_model
from .cli import EXIT_USAGE, error, in_range
from .data import DatasetError, default_data_dir, load_images
from .files import FileError
from .fixedpoint import DEFAULT
from .quantize import quantize_model, save_network
from .samples import save_samples


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.make_assets", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 written; 2 bad arguments or an unreadable model or data set.")
    p.add_argument("--model", type=Path, required=True, help="trained float SRC model (safetensors)")
    p.add_argument("--samples", type=int, default=200, help="number of test samples to ship")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                   help="test set the samples come from (the shipped models: MNIST)")
    p.add_argument("--data-dir", type=Path, help="data set folder (default: the shared copy)")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate coder (the host's default)")
    p.add_argument("--name", choices=assets.NAMES, default=assets.DEFAULT, help="which shipped model this is")
    p.add_argument("--weight-width", type=int, default=DEFAULT.weight_width, help="bits per weight")
    p.add_argument("--pixel-bits", type=int, default=DEFAULT.pixel_bits,
                   help="bits per pixel the device encoder sees (fixed-point config pixel_bits)")
    p.add_argument("--out", type=Path, help="asset folder (default: quant/assets/NAME)")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "weight-width", args.weight_width, *DEFAULT.field_ranges()["weight_width"])
    in_range(p, "pixel-bits", args.pixel_bits, *DEFAULT.field_ranges()["pixel_bits"])
    args.out = args.out or assets.model(args.name).folder
    try:
        model, config = load_model(args.model)
        directory = args.data_dir or default_data_dir(args.dataset)
        if directory is None:
            raise DatasetError(f"no local copy of {args.dataset}: pass --data-dir")
        test = load_images(directory, "test")
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    if model.neuron != "src":
        return error(f"{args.model} is a {model.neuron.upper()} model; only SRC models run on the device", EXIT_USAGE)
    if config["encoding"] != args.name:
        return error(f"{args.model} is {config['encoding']}-coded; the shipped model {args.name!r} must be "
                     f"{args.name}-coded", EXIT_USAGE)
    cfg = DEFAULT.replace(weight_width=args.weight_width, pixel_bits=args.pixel_bits)
    network = quantize_model(model, cfg, config["encoding"], config["n_steps"])
    images = test.images[:args.samples]
    labels = test.labels[:args.samples]
    pixels = intencode.to_pixels(images, network.config)
    spikes = torch.from_numpy(intencode.encode(pixels, config["encoding"], config["n_steps"], network.config,
                                               intencode.sample_seeds(args.seed, len(pixels))).astype(np.float32))
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model, args.out / "model.safetensors")
    save_network(args.out / "model.npz", network)
    save_samples(args.out / "samples.npz", np.rint(images * 255).astype(np.uint8), labels, spikes.numpy(), config["encoding"],
                 args.seed)
    with torch.no_grad():
        float_pred = model(spikes)[0].argmax(1).numpy()
    result = golden.run(network, spikes.numpy().astype(bool))
    manifest = {
        "command": "python -m quant.make_assets " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sizes": network.sizes, "network": network.shape_name(), "dataset": args.dataset,
        "encoding": config["encoding"], "n_steps": config["n_steps"],
        "samples": int(len(labels)), "weight_width": args.weight_width,
        "pixel_bits": args.pixel_bits, "encoder": "device",
        "config_digest": network.config.digest(),
        "float_accuracy_on_samples": float((float_pred == labels).mean()),
        "fixed_accuracy_on_samples": float((result.prediction == labels).mean()),
        "fixed_predictions": result.prediction.tolist(),
        "sha256": {name: hashlib.sha256((args.out / name).read_bytes()).hexdigest()
                   for name in ("model.safetensors", "model.npz", "samples.npz")},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps({k: v for k, v in manifest.items() if k != "fixed_predictions"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
