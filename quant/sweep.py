"""Sweep fixed-point formats and report accuracy against bit widths, so the default is chosen by measurement.

Usage::

    python -m quant.sweep --model runs/x/model.safetensors --limit-test 1000 --out docs/results/sweep

Encodes the test samples once, runs the float model once, then the golden model for every
configuration (the default with one field changed at a time). Writes ``OUT.json`` and
``OUT.md`` (a table) and prints the table.

Exit codes: 0 success, 2 unreadable model or data.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import golden
from .fixedpoint import DEFAULT

__all__ = ["VARIANTS", "sweep", "main"]

#: One-field changes from the default that the sweep measures.
VARIANTS = [
    ("default", {}),
    ("weights 4 bit", {"weight_width": 4}),
    ("weights 6 bit", {"weight_width": 6}),
    ("weights 10 bit", {"weight_width": 10}),
    ("state 6 frac bits", {"state_frac": 6, "h_lut_frac": 6, "h_lut_size": 256, "bias_width": 10}),
    ("state 10 frac bits", {"state_frac": 10, "h_lut_frac": 10, "h_lut_size": 4096, "bias_width": 14}),
    ("h_s 8 frac bits", {"hs_frac": 8}),
    ("i 12 bit (frac 6)", {"i_width": 12, "i_frac": 6}),
    ("i 18 bit (frac 10, rails +-128)", {"i_width": 18}),
    ("x LUT step 1/8", {"x_lut_frac": 3, "x_lut_size": 128}),
    ("x LUT step 1/128", {"x_lut_frac": 7, "x_lut_size": 2048}),
    ("tanh LUT step 1/64", {"h_lut_frac": 6, "h_lut_size": 256}),
    ("coefficients 8 frac bits", {"coef_frac": 8}),
]


def sweep(model, spikes_batches, labels, encoding, n_steps, variants=VARIANTS, progress=True):
    """Accuracy of the float model and of each variant on the same spikes; a list of row dicts."""
    import torch
    from tqdm import tqdm

    from .quantize import quantize_model

    float_pred = []
    with torch.no_grad():
        for spikes in spikes_batches:
            float_pred.append(model(spikes)[0].argmax(1).numpy())
    float_pred = np.concatenate(float_pred)
    rows = [{"name": "float", "changes": {}, "accuracy": float((float_pred == labels).mean()), "agreement": 1.0}]
    for name, changes in tqdm(variants, desc="sweep", disable=not progress, dynamic_ncols=True):
        cfg = DEFAULT.replace(**changes)
        network = quantize_model(model, cfg, encoding, n_steps)
        started, preds, sats = time.time(), [], {}
        for spikes in spikes_batches:
            result = golden.run(network, spikes.numpy().astype(bool))
            preds.append(result.prediction)
            for key, value in result.saturations.items():
                sats[key] = sats.get(key, 0) + value
        pred = np.concatenate(preds)
        rows.append({"name": name, "changes": changes, "accuracy": float((pred == labels).mean()),
                     "agreement": float((pred == float_pred).mean()), "saturations": sats,
                     "seconds": time.time() - started})
    return rows


def markdown(rows, samples):
    lines = [f"Accuracy on {samples} test samples (same spikes for every row).", "",
             "| configuration | accuracy % | drop vs float (pp) | agreement with float % | saturations |",
             "|---|---|---|---|---|"]
    base = rows[0]["accuracy"]
    for row in rows:
        sats = sum(row.get("saturations", {}).values())
        lines.append(f"| {row['name']} | {100 * row['accuracy']:.2f} | {100 * (base - row['accuracy']):+.2f} | "
                     f"{100 * row['agreement']:.2f} | {sats} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    import torch

    from .checkpoint import CheckpointError, load_model
    from .data import DatasetError, default_data_dir, load_images
    from .train import Batches

    p = argparse.ArgumentParser(prog="python -m quant.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="float model file (safetensors)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="test set")
    p.add_argument("--data-dir", type=Path, help="folder with the IDX files (default: the shared copy)")
    p.add_argument("--limit-test", type=int, default=1000, help="number of test samples")
    p.add_argument("--batch-size", type=int, default=250, help="samples per batch")
    p.add_argument("--encoder", choices=["device", "bernoulli"], default="device",
                   help="image encoder for rate coding: the device's integer one or snnTorch's Bernoulli")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate-coded spikes")
    p.add_argument("--out", type=Path, default=Path("docs/results/sweep"), help="report path without suffix")
    args = p.parse_args(argv)
    try:
        model, config = load_model(args.model)
        directory = args.data_dir or default_data_dir(args.dataset)
        if directory is None:
            raise DatasetError(f"no local copy of {args.dataset}: pass --data-dir")
        test = load_images(directory, "test")
    except (CheckpointError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    test = test.subset(np.arange(min(args.limit_test, len(test))))
    model.eval()
    batches = [s for s, _ in Batches(test, config["encoding"], args.batch_size, config["n_steps"], seed=args.seed, encoder=args.encoder)]
    rows = sweep(model, batches, test.labels, config["encoding"], config["n_steps"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"model": str(args.model), "samples": len(test), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    table = markdown(rows, len(test))
    args.out.with_suffix(".md").write_text(f"# Fixed-point sweep\n\nModel `{args.model}`; command: "
                                           f"`python -m quant.sweep {' '.join(argv or sys.argv[1:])}`\n\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
