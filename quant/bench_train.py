"""Benchmark: training samples/s of the SRC network and of the snnTorch LIF baseline, same sizes, batch and device.

Usage::

    python -m quant.bench_train --device cpu --iters 10 --out docs/benchmarks

Each model (784-512-100 by default, T = 200, batch 64, rate-coded random images) runs
``--warmup`` untimed then ``--iters`` timed optimizer steps (forward, backward, clip, Adam,
clamp). Prints the figures and writes ``OUT/train_speed_<device>.json`` and ``.md`` with
the SRC/LIF ratio.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from .encode import rate
from .model import build_model
from .provenance import provenance
from .train import train_step


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def measure(neuron, sizes, batch, n_steps, device, warmup, iters, seed=0):
    """Training samples/s of one model."""
    torch.manual_seed(seed)
    model = build_model(neuron, sizes[0], len(sizes) - 1, sizes[1] if len(sizes) > 2 else 1).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    generator = torch.Generator().manual_seed(seed)
    spikes = rate(torch.rand(batch, sizes[0], generator=generator) * 0.5, n_steps, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
    for _ in range(warmup):
        train_step(model, optimizer, spikes, labels)
    _sync(device)
    started = time.perf_counter()
    for _ in range(iters):
        train_step(model, optimizer, spikes, labels)
    _sync(device)
    seconds = time.perf_counter() - started
    return {"neuron": neuron, "samples_per_s": batch * iters / seconds, "seconds_per_step": seconds / iters}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.bench_train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--width", type=int, default=512, help="hidden layer width (784-WIDTH-100)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--steps", type=int, default=200, help="sequence length T")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--iters", type=int, default=10, help="timed optimizer steps per model")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="report folder")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [784, args.width, 100]
    rows = [measure(n, sizes, args.batch_size, args.steps, args.device, args.warmup, args.iters) for n in ("src", "lif")]
    ratio = rows[0]["samples_per_s"] / rows[1]["samples_per_s"]
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor() or platform.machine()
    report = {"device": args.device, "device_name": device_name, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "sizes": sizes, "batch_size": args.batch_size, "steps": args.steps,
              "iters": args.iters, "results": rows, "src_over_lif": ratio,
              **provenance("quant.bench_train", argv)}
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"train_speed_{kind}.json").write_text(json.dumps(report, indent=1))
    md = [f"# Training speed on {kind} ({device_name}, {report['threads']} threads, torch {torch.__version__})", "",
          f"`python -m quant.bench_train {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
          f"{'-'.join(map(str, sizes))}, T = {args.steps}, batch {args.batch_size}, {args.iters} timed steps.", "",
          "| model | samples/s | s/step |", "|---|---|---|"]
    md += [f"| {r['neuron'].upper()} | {r['samples_per_s']:.1f} | {r['seconds_per_step']:.3f} |" for r in rows]
    md += ["", f"SRC / LIF: **{ratio:.2f}x**"]
    (args.out / f"train_speed_{kind}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
