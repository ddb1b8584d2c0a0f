"""The shipped default models, measured: accuracy on the full MNIST test set and their Arty A7-35T build.

Usage::

    python -m host.defaults                    # writes runs/defaults.json
    python -m host.defaults --out docs/results/defaults.json

For every shipped model (:mod:`quant.assets`) the float model and the quantized network the device
runs are evaluated on the whole test set with the encoder the device uses (``quant.quantize``'s
:func:`~quant.quantize.compare`, the device's integer encoder, seed 3), and the block RAM and LUTs
are read from the model's committed Arty A7-35T build report
(``docs/builds/arty_a7_35-NAME-SIZES-PP/report.json``, from ``python -m hdl.build --board arty_a7
--model quant/assets/NAME/model.npz``). A model *fits* the XC7A35T when every resource of that
report is within the part.

Exit codes: 0 written; 1 a shipped model misses its accuracy target or does not fit; 2 missing or
unreadable files.
"""

import argparse
import json
import sys
from pathlib import Path

from quant import assets
from quant.cli import EXIT_DISAGREES, EXIT_USAGE, error, in_range, interruptible
from quant.provenance import provenance

__all__ = ["TARGETS", "build_report_path", "measure_model", "main"]

ROOT = Path(__file__).resolve().parent.parent
#: Fixed-point test accuracy each shipped model must reach (the default-models issue).
TARGETS = {"latency": 0.980, "rate": 0.975}
PART = "XC7A35T"


def build_report_path(root, name, sizes, lanes):
    """Where the committed Arty A7-35T build report of shipped model ``name`` lives."""
    return Path(root) / "docs" / "builds" / f"arty_a7_35-{name}-{'-'.join(map(str, sizes))}-P{lanes}" / "report.json"


def measure_model(entry, limit=None, batch_size=250, progress=True):
    """Float and fixed-point accuracy of one shipped model on the MNIST test set (``limit``: first N)."""
    import numpy as np

    from quant.checkpoint import load_model
    from quant.data import default_data_dir, load_images
    from quant.quantize import compare, load_network
    from quant.train import Batches

    model, config = load_model(entry.float_model)
    network = load_network(entry.quantized_model)
    test = load_images(default_data_dir("mnist"), "test")
    if limit:
        test = test.subset(np.arange(min(limit, len(test))))
    batches = Batches(test, network.encoding, batch_size, network.n_steps, seed=3, encoder="device",
                      config=network.config)
    report = compare(model, network, batches, progress=progress)
    return {"name": entry.name, "encoding": network.encoding, "sizes": list(network.sizes),
            "weight_width": network.config.weight_width, "n_steps": network.n_steps,
            "float_test_accuracy": report["float_accuracy"], "fixed_test_accuracy": report["fixed_accuracy"],
            "test_samples": report["samples"], "target": TARGETS.get(entry.name)}


def _build_figures(root, entry, lanes):
    from quant.quantize import load_network

    path = build_report_path(root, entry.name, load_network(entry.quantized_model).sizes, lanes)
    try:
        build = json.loads(path.read_text())
    except (OSError, ValueError) as problem:
        raise FileNotFoundError(f"{path}: no readable build report ({problem}); "
                                f"run python -m hdl.build --board arty_a7 --model quant/assets/{entry.name}/model.npz") from None
    resources, capacity = build["resources"], build["capacity"]
    fits = all(resources[k] <= capacity[k] for k in ("luts", "ffs", "bram18", "dsps") if k in resources)
    return {"bram18": resources["bram18"], "luts": resources["luts"], "ffs": resources.get("ffs"),
            "dsps": resources.get("dsps"), "cycles_per_sample": build.get("cycles_per_sample"),
            "fits": PART if fits else None, "build_report": str(path.relative_to(root)),
            "build_commit": build.get("git_commit")}


@interruptible
def main(argv=None):
    from firmware.image import DEFAULT_LANES
    from quant.data import DatasetError
    from quant.files import FileError

    p = argparse.ArgumentParser(prog="python -m host.defaults", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 written; 1 a model misses its target or does not fit; "
                                       "2 missing or unreadable files.")
    p.add_argument("--out", type=Path, default=Path("runs/defaults.json"), help="report to write")
    p.add_argument("--limit-test", type=int, help="evaluate on the first N test images only (default: all 10,000)")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="lane count of the build reports to read")
    p.add_argument("--root", type=Path, default=ROOT, help="repository whose docs/builds reports are read")
    args = p.parse_args(argv)
    if args.limit_test is not None:
        in_range(p, "limit-test", args.limit_test, 1, 10_000)
    rows = []
    try:
        builds = {entry.name: _build_figures(args.root, entry, args.lanes) for entry in assets.models()}
        for entry in assets.models():     # the build reports are checked first: evaluation takes minutes
            row = {**measure_model(entry, args.limit_test), "lanes": args.lanes, **builds[entry.name]}
            print(json.dumps(row))
            rows.append(row)
    except (FileError, DatasetError, FileNotFoundError) as problem:
        return error(problem, EXIT_USAGE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": rows, **provenance("host.defaults", argv)}, indent=1))
    missed = [r["name"] for r in rows
              if r["fits"] is None or (r["target"] is not None and r["fixed_test_accuracy"] < r["target"])]
    if missed:
        return error(f"{', '.join(missed)}: below the accuracy target or not fitting the {PART}", EXIT_DISAGREES)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
