"""Benchmark: training samples/s of SRC (fused kernels, and the previous dense implementation) and of the snnTorch
LIF baseline, same sizes, batch, inputs and device, in one run.

Usage::

    python -m quant.bench_train --device cpu --threads 2 --out docs/benchmarks

Each model (784-512-100 by default, T = 200, batch 64) runs ``--warmup`` untimed optimizer steps
(forward, backward, clip, Adam, clamp); then the models take turns, ``--iters`` steps each, for
``--repeats`` rounds (medians and ranges reported: a shared machine's speed wanders by 20 %), on
one batch of rate-coded MNIST
training images (real images, so the input spikes have MNIST's density, about 3 %; random
images of MNIST's mean pixel value where the data set is not found). The ratios
``src_over_lif`` and ``src_over_dense_src`` are medians of the ratios within each round. Writes
``OUT/train_speed_<device>.json`` and ``.md`` (default ``runs/benchmarks``).

Exit codes: 0 measured; 2 bad arguments or an unavailable device.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from .cli import EXIT_USAGE, error, in_range
from .encode import rate
from .model import build_model
from .provenance import provenance
from .train import train_step

#: The implementations measured: (name in the report, neuron, SRC implementation).
MODELS = (("SRC (fused)", "src", "fused"), ("SRC (dense, previous)", "src", "dense"), ("LIF (snnTorch)", "lif", None))


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def mnist_batch(batch, n_steps, seed=0):
    """``(spikes (T, B, 784), labels, source)``: rate-coded MNIST training images, or stand-ins of MNIST's density."""
    generator = torch.Generator().manual_seed(seed)
    try:
        from .data import default_data_dir, load_images

        train = load_images(default_data_dir("mnist"), "train")
        images, labels, source = torch.from_numpy(train.images[:batch]), torch.from_numpy(train.labels[:batch]), "mnist"
    except Exception:  # no data set here: random images with MNIST's mean pixel value (0.13)
        images = torch.rand(batch, 784, generator=generator) * 0.26
        labels, source = torch.randint(0, 10, (batch,), generator=generator), "random images of MNIST's mean"
    return rate(images, n_steps, generator=generator), labels.long(), source


def _model(neuron, implementation, sizes, device, seed=0):
    torch.manual_seed(seed)
    model = build_model(neuron, sizes[0], len(sizes) - 1, sizes[1] if len(sizes) > 2 else 1,
                        **({"implementation": implementation} if implementation else {})).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=0.005)


def measure(models, spikes, labels, device, warmup, iters, repeats):
    """Seconds per optimizer step of each ``(model, optimizer)``: ``repeats`` lists of one figure each.

    The models take turns, ``iters`` steps at a time, so that a slow spell of a shared machine
    falls on all of them alike; the figures are kept per repeat for medians and paired ratios.
    """
    spikes, labels = spikes.to(device), labels.to(device)
    for model, optimizer in models:
        for _ in range(warmup):
            train_step(model, optimizer, spikes, labels)
    times = [[] for _ in models]
    for repeat in range(repeats):
        for k in range(len(models)):
            index = (k + repeat) % len(models)   # each model first in turn
            model, optimizer = models[index]
            _sync(device)
            started = time.perf_counter()
            for _ in range(iters):
                train_step(model, optimizer, spikes, labels)
            _sync(device)
            times[index].append((time.perf_counter() - started) / iters)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.bench_train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 2 bad arguments or an unavailable device.")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--width", type=int, default=512, help="hidden layer width (784-WIDTH-100)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--steps", type=int, default=200, help="sequence length T")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--iters", type=int, default=4, help="timed optimizer steps per model and repeat")
    p.add_argument("--repeats", type=int, default=7, help="rounds in which the models take turns")
    p.add_argument("--threads", type=int, help="CPU threads for torch and the kernels")
    p.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="report folder")
    args = p.parse_args(argv)
    for name in ("width", "batch_size", "steps", "iters", "repeats"):
        in_range(p, name.replace("_", "-"), getattr(args, name), 1)
    in_range(p, "warmup", args.warmup, 0)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return error("--device cuda: no CUDA device here", EXIT_USAGE)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [784, args.width, 100]
    spikes, labels, source = mnist_batch(args.batch_size, args.steps)
    models = [_model(neuron, implementation, sizes, args.device) for _, neuron, implementation in MODELS]
    times = measure(models, spikes, labels, args.device, args.warmup, args.iters, args.repeats)
    rows = []
    for (name, neuron, implementation), seconds in zip(MODELS, times):
        rates = [args.batch_size / t for t in seconds]
        rows.append({"name": name, "neuron": neuron, "implementation": implementation,
                     "samples_per_s": statistics.median(rates), "samples_per_s_min": min(rates),
                     "samples_per_s_max": max(rates), "seconds_per_step": statistics.median(seconds)})
        print(json.dumps(rows[-1]))
    paired = lambda a, b: statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))
    device_name = (torch.cuda.get_device_name(args.device) if args.device.startswith("cuda")
                   else platform.processor() or platform.machine())
    report = {"device": args.device, "device_name": device_name, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "sizes": sizes, "batch_size": args.batch_size, "steps": args.steps,
              "iters": args.iters, "repeats": args.repeats, "warmup": args.warmup, "inputs": source,
              "input_density": float(spikes.mean()), "results": rows,
              "src_over_lif": paired(0, 2), "src_over_dense_src": paired(0, 1),
              **provenance("quant.bench_train", argv)}
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"train_speed_{kind}.json").write_text(json.dumps(report, indent=1))
    md = [f"# Training speed on {kind} ({device_name}, {report['threads']} threads, torch {torch.__version__})", "",
          f"`{report['command']}` (commit `{report['git_commit']}`)", "",
          f"{'-'.join(map(str, sizes))}, T = {args.steps}, batch {args.batch_size}; the models take turns, "
          f"{args.iters} steps each, {args.repeats} times; medians (range); inputs: {source} "
          f"(density {report['input_density']:.3f}).", "",
          "| model | samples/s | s/step |", "|---|---|---|"]
    md += [f"| {r['name']} | {r['samples_per_s']:.1f} ({r['samples_per_s_min']:.0f}-{r['samples_per_s_max']:.0f}) "
           f"| {r['seconds_per_step']:.3f} |" for r in rows]
    md += ["", f"SRC / LIF: **{report['src_over_lif']:.2f}x**; fused SRC / previous dense SRC: "
               f"**{report['src_over_dense_src']:.2f}x** (medians of the ratios within each round)"]
    (args.out / f"train_speed_{kind}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
