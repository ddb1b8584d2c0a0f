"""Plot one SRC neuron's ``h``, ``h_s`` and output under an input sequence for ``b_h = -6`` and ``-4`` (paper Fig. 1).

Usage::

    python -m quant.figure1 --out docs/figures/figure1.png

The neuron has one input synapse of weight ``--weight``; the input spikes at
every step of ``[--on, --off)`` and is silent otherwise. With ``b_h = -6`` the
neuron fires only while driven; with ``b_h = -4`` it also fires with no input.
"""

import argparse
import sys
from pathlib import Path

import torch

from .model import SRCLayer
from .srcparams import PAPER


def traces(bias, weight, n_steps, on, off, params=PAPER):
    """States of a one-input, one-neuron SRC layer: dict of ``(n_steps,)`` tensors plus the input."""
    layer = SRCLayer(1, 1, params).double()
    with torch.no_grad():
        layer.weight.fill_(weight)
        layer.bias.fill_(bias)
        s_in = torch.zeros(n_steps, 1, 1, dtype=torch.float64)
        s_in[on:off] = 1.0
        _, states = layer(s_in, return_states=True)
    out = {k: v[:, 0, 0].numpy() for k, v in states.items()}
    out["input"] = s_in[:, 0, 0].numpy()
    return out


def plot(path, biases=(-6.0, -4.0), weight=0.3, n_steps=300, on=50, off=200):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(biases), figsize=(6 * len(biases), 7), sharex=True, squeeze=False)
    for col, bias in enumerate(biases):
        tr = traces(bias, weight, n_steps, on, off)
        axes[0, col].plot(tr["x"], color="tab:gray")
        axes[0, col].set_title(f"b_h = {bias:g}")
        axes[0, col].set_ylabel("x = rho tanh(i/rho)")
        axes[1, col].plot(tr["h"], label="h")
        axes[1, col].plot(tr["h_s"], label="h_s")
        axes[1, col].axhline(0.5, color="k", lw=0.5, ls=":")
        axes[1, col].set_ylabel("state")
        axes[1, col].legend(loc="lower right")
        axes[2, col].plot(tr["s"], color="tab:red")
        axes[2, col].set_ylabel("s = ReLU(h)")
        axes[2, col].set_xlabel("step")
        for ax in axes[:, col]:
            ax.axvspan(on, off, color="tab:green", alpha=0.08)
    fig.suptitle(f"One SRC neuron, input spikes every step in [{on}, {off}) through weight {weight:g}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.figure1", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("docs/figures/figure1.png"), help="PNG file to write")
    p.add_argument("--weight", type=float, default=0.3, help="input synapse weight")
    p.add_argument("--steps", type=int, default=300, help="number of steps")
    p.add_argument("--on", type=int, default=50, help="first step with input spikes")
    p.add_argument("--off", type=int, default=200, help="first step without input spikes after --on")
    args = p.parse_args(argv)
    if not 0 <= args.on <= args.off <= args.steps:
        p.error("need 0 <= --on <= --off <= --steps")
    plot(args.out, weight=args.weight, n_steps=args.steps, on=args.on, off=args.off)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
