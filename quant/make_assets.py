"""Build the embedded default: copy a trained model, quantize it, and encode test samples.

Usage::

    python -m quant.make_assets --model runs/mnist-rate-src-784-128-100/model.safetensors --samples 200

Writes ``quant/assets/model.safetensors``, ``model.npz`` (default fixed-point configuration),
``samples.npz`` (the first N MNIST test images, their labels and their exact input spikes)
and ``manifest.json`` (sizes, accuracies on the samples, config digest, SHA-256 of each file).
"""

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from . import assets, golden
from .checkpoint import load_model
from .cli import EXIT_USAGE, error, in_range
from .data import DatasetError, default_data_dir, load_images
from .files import FileError
from .encode import encode
from .fixedpoint import DEFAULT
from .quantize import quantize_model, save_network
from .samples import save_samples


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.make_assets", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 written; 2 bad arguments or an unreadable model or data set.")
    p.add_argument("--model", type=Path, required=True, help="trained float SRC model (safetensors)")
    p.add_argument("--samples", type=int, default=200, help="number of MNIST test samples to ship")
    p.add_argument("--data-dir", type=Path, help="MNIST folder (default: the shared copy)")
    p.add_argument("--seed", type=int, default=2024, help="seed of the rate-coded spikes")
    p.add_argument("--out", type=Path, default=assets.ASSETS, help="asset folder")
    args = p.parse_args(argv)
    in_range(p, "samples", args.samples, 1, 10_000)
    try:
        model, config = load_model(args.model)
        test = load_images(args.data_dir or default_data_dir("mnist"), "test")
    except (FileError, DatasetError) as problem:
        return error(problem, EXIT_USAGE)
    if model.neuron != "src":
        return error(f"{args.model} is a {model.neuron.upper()} model; only SRC models run on the device", EXIT_USAGE)
    network = quantize_model(model, DEFAULT, config["encoding"], config["n_steps"])
    images = test.images[:args.samples]
    labels = test.labels[:args.samples]
    spikes = encode(torch.from_numpy(images), config["encoding"], config["n_steps"],
                    generator=torch.Generator().manual_seed(args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model, args.out / "model.safetensors")
    save_network(args.out / "model.npz", network)
    save_samples(args.out / "samples.npz", np.rint(images * 255).astype(np.uint8), labels, spikes.numpy(),
                 config["encoding"], args.seed)
    with torch.no_grad():
        float_pred = model(spikes)[0].argmax(1).numpy()
    result = golden.run(network, spikes.numpy().astype(bool))
    manifest = {
        "command": "python -m quant.make_assets " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sizes": network.sizes, "encoding": config["encoding"], "n_steps": config["n_steps"],
        "samples": int(len(labels)), "config_digest": DEFAULT.digest(),
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
