"""The embedded default: run the shipped SRC model on the shipped MNIST samples, float and bit-exact fixed point.

Usage::

    python -m quant.demo [--limit N] [--out runs/demo]

Runs the golden model (the hardware's specification) and the float model on the same
shipped input spikes, prints accuracy, agreement, spike activity, saturation counts and
throughput, writes ``OUT/report.json`` and plots one sample (input raster, hidden raster,
membrane traces, readout) to ``OUT/sample.png``.

Exit codes: 0 success, 2 missing or corrupt assets.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import assets, golden
from .quantize import QuantizationError, load_network
from .samples import SampleError, load_samples


def plot_sample(path, network, spikes, label, sample=0):
    """Input raster, first-layer raster, h traces of the most active neurons and the readout, for one sample."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = network.config
    result = golden.run(network, spikes[:, sample:sample + 1], record=True)
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    t_in, n_in = np.nonzero(spikes[:, sample])
    axes[0].scatter(t_in, n_in, s=0.5, color="k")
    axes[0].set_ylabel("input pixel")
    axes[0].set_title(f"Golden model on one shipped sample (label {label}, predicted {result.prediction[0]})")
    s0 = result.states[0]["s"][:, 0]
    t_h, n_h = np.nonzero(s0)
    axes[1].scatter(t_h, n_h, s=2, c=s0[t_h, n_h] / cfg.one, cmap="viridis", vmin=0, vmax=1)
    axes[1].set_ylabel("layer 0 neuron")
    busiest = np.argsort(-np.count_nonzero(s0, axis=0))[:3]
    for n in busiest:
        axes[2].plot(result.states[0]["h"][:, 0, n] / cfg.one, label=f"h, neuron {n}")
    axes[2].plot(result.states[0]["h_s"][:, 0, busiest[0]] / 2 ** cfg.hs_frac, "--", label=f"h_s, neuron {busiest[0]}")
    axes[2].set_ylabel("state")
    axes[2].legend(loc="lower right", fontsize=8)
    for c in range(network.n_classes):
        axes[3].plot(result.readout[:, 0, c] / 2 ** cfg.readout_frac, lw=2.5 if c == label else 0.8, label=str(c))
    axes[3].set_ylabel("readout v")
    axes[3].set_xlabel("step")
    axes[3].legend(ncol=5, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--limit", type=int, help="use only the first N shipped samples")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for report.json and sample.png")
    p.add_argument("--no-float", action="store_true", help="skip the float (torch) model")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    args = p.parse_args(argv)
    try:
        network = load_network(assets.QUANTIZED_MODEL)
        spikes, labels, _, header = load_samples(assets.SAMPLES)
    except (QuantizationError, SampleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        spikes, labels = spikes[:, :args.limit], labels[:args.limit]
    started = time.perf_counter()
    result = golden.run(network, spikes)
    seconds = time.perf_counter() - started
    report = {"model": "-".join(map(str, network.sizes)), "encoding": header["encoding"], "samples": int(len(labels)),
              "fixed_accuracy": float((result.prediction == labels).mean()),
              "fixed_activity": result.activity, "saturations": result.saturations,
              "golden_samples_per_s": len(labels) / seconds}
    if not args.no_float:
        import torch
        from .checkpoint import load_model
        model, _ = load_model(assets.FLOAT_MODEL)
        with torch.no_grad():
            logits, activity = model(torch.from_numpy(spikes.astype(np.float32)))
        float_pred = logits.argmax(1).numpy()
        report.update(float_accuracy=float((float_pred == labels).mean()), float_activity=activity.tolist(),
                      agreement=float((float_pred == result.prediction).mean()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"SRC {report['model']} on {report['samples']} shipped MNIST samples ({report['encoding']} coded, T={spikes.shape[0]})")
    print(f"  fixed point (golden model): {100 * report['fixed_accuracy']:.2f} %  "
          f"({report['golden_samples_per_s']:.0f} samples/s in numpy)")
    if "float_accuracy" in report:
        print(f"  float model:                {100 * report['float_accuracy']:.2f} %  "
              f"(predictions agree on {100 * report['agreement']:.1f} %)")
    print(f"  spike activity per layer:   {[round(a, 4) for a in report['fixed_activity']]}")
    print(f"  saturations:                {report['saturations']}")
    if not args.no_plot:
        plot_sample(args.out / "sample.png", network, spikes, int(labels[0]))
        print(f"  plot:                       {args.out / 'sample.png'}")
    print(f"  report:                     {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
