"""Reproduce the paper's experiments at a CPU budget: named grids of training runs, resumable cell by cell.

Usage::

    python -m quant.reproduce table1 --epochs 2 --limit-train 20000     # run (or continue) the grid
    python -m quant.reproduce table1 --epochs 2 --limit-train 20000 --list   # what is done, what is left
    python -m quant.reproduce deep --epochs 5 --width 128
    python -m quant.reproduce bypass --epochs 3 --width 128
    python -m quant.reproduce recurrent --epochs 1 --width 400
    python -m quant.reproduce table1 --epochs 1 --results docs/results --plot docs/figures   # Figure 4

Grids
-----
``table1``
    The paper's Table 1 without N-MNIST (not available offline): MNIST and Fashion-MNIST x rate and
    latency x 1, 2, 3 and 5 layers x SRC and LIF, 32 cells, the paper's value beside each.
``deep``
    Figure 5: 5, 10 and 15 layers, SRC and LIF, MNIST rate coding; per-epoch validation loss and
    accuracy.
``bypass``
    Figure 2: 5-layer SRC, MNIST rate coding, with and without the ReLU bypass (section 4.4), two
    seeds each; per-epoch validation loss and accuracy. The paper: without it 5-layer networks do
    not learn.
``recurrent``
    Issue 17's comparison on Fashion-MNIST, rate coding, 784-W-RW-...: the recurrent SRC
    (784-400-R400-100 at ``--width 400``), the same network feed-forward, and the recurrent LIF
    baseline of ST-RSBP's class (:mod:`quant.baseline`, 784-400-R400-10, learning rate 0.001),
    beside ST-RSBP's published 90.13 %; the summary's ``fashion`` entry holds the four numbers.

Every cell is one ``python -m quant.train`` run with the paper's hyper-parameters and the grid's
budget (``--epochs``, ``--limit-train``, ``--width``: the same for every cell of a grid, and
recorded in the summary). A cell's run lives in ``RUNS/GRID/CELL`` and resumes from its
checkpoint, so an interrupted grid continues where it stopped. When a cell finishes, its
training log is copied to ``RESULTS/GRID/CELL.json`` and the grid's summary
(``RESULTS/GRID.json``) is rewritten from every finished cell's log; ``--commit`` also commits
both with git, so a session that ends mid-grid loses at most the cell in progress.

Exit codes: 0 the grid (or ``--cells``) is complete, or ``--list``; 1 cells are left (``--max-cells``
reached); 2 bad arguments or data.
"""

import argparse
import fnmatch
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .cli import EXIT_USAGE, error, in_range
from .provenance import provenance

__all__ = ["PAPER_TABLE1", "Cell", "cells", "summary", "main"]

#: The paper's Table 1 (test accuracy, %), by (dataset, encoding, layers, neuron).
PAPER_TABLE1 = {
    ("mnist", "rate", 1, "src"): 97.27, ("mnist", "latency", 1, "src"): 96.54,
    ("fashion", "rate", 1, "src"): 86.24, ("fashion", "latency", 1, "src"): 86.28,
    ("mnist", "rate", 1, "lif"): 97.18, ("mnist", "latency", 1, "lif"): 96.98,
    ("fashion", "rate", 1, "lif"): 86.02, ("fashion", "latency", 1, "lif"): 84.72,
    ("mnist", "rate", 2, "src"): 98.32, ("mnist", "latency", 2, "src"): 98.30,
    ("fashion", "rate", 2, "src"): 87.80, ("fashion", "latency", 2, "src"): 87.06,
    ("mnist", "rate", 2, "lif"): 98.06, ("mnist", "latency", 2, "lif"): 96.92,
    ("fashion", "rate", 2, "lif"): 79.32, ("fashion", "latency", 2, "lif"): 87.27,
    ("mnist", "rate", 3, "src"): 98.44, ("mnist", "latency", 3, "src"): 98.21,
    ("fashion", "rate", 3, "src"): 88.35, ("fashion", "latency", 3, "src"): 84.86,
    ("mnist", "rate", 3, "lif"): 98.18, ("mnist", "latency", 3, "lif"): 94.73,
    ("fashion", "rate", 3, "lif"): 80.64, ("fashion", "latency", 3, "lif"): 78.09,
    ("mnist", "rate", 5, "src"): 98.39, ("mnist", "latency", 5, "src"): 97.52,
    ("fashion", "rate", 5, "src"): 88.54, ("fashion", "latency", 5, "src"): 82.09,
    ("mnist", "rate", 5, "lif"): 98.08, ("mnist", "latency", 5, "lif"): 97.61,
    ("fashion", "rate", 5, "lif"): 84.22, ("fashion", "latency", 5, "lif"): 85.88,
}
#: quant.train's name of each data set.
_TRAIN_DATASET = {"mnist": "mnist", "fashion": "fashion-mnist"}
GRIDS = ("table1", "deep", "bypass", "recurrent")
#: ST-RSBP's published Fashion-MNIST accuracy (784-400-R400-10; Zhang & Li, NeurIPS 2019).
ST_RSBP_FASHION = 0.9013
#: The recurrent LIF baseline's learning rate: of 0.005 (the SRC's) and 0.001, the better on one
#: epoch of 3,200 Fashion-MNIST samples (28 % and 36 %: ``python -m quant.train --dataset fashion-mnist
#: --neuron rlif --layers 3 --width 400 --recurrent 2 --epochs 1 --limit-train 3200 --limit-val 500
#: --limit-test 500 --lr LR``).
BASELINE_LR = 0.001
#: Grids whose cells record validation loss and accuracy per epoch (figures over epochs).
_PER_EPOCH = ("deep", "bypass", "recurrent")


@dataclass(frozen=True)
class Cell:
    """One training run of a grid."""

    dataset: str
    encoding: str
    layers: int
    neuron: str
    #: The ReLU bypass (SRC only; Figure 2 turns it off).
    bypass: bool = True
    #: Added to the grid's ``--seed`` (Figure 2 repeats cells over seeds).
    seed: int = 0
    #: Layers (numbered from 1) with lateral weights.
    recurrent: tuple = ()

    @property
    def name(self):
        return (f"{self.dataset}-{self.encoding}-{self.neuron}-L{self.layers}"
                + "".join(f"-R{k}" for k in self.recurrent)
                + ("" if self.bypass else "-nobypass") + (f"-seed{self.seed}" if self.seed else ""))

    @property
    def paper(self):
        if not self.bypass or self.recurrent or self.neuron == "rlif":
            return None
        return PAPER_TABLE1.get((self.dataset, self.encoding, self.layers, self.neuron))


def cells(grid):
    """The cells of ``grid``, in the order they run (cheap ones first: SRC before LIF, shallow first)."""
    if grid == "table1":
        return [Cell(d, e, n_layers, n) for n in ("src", "lif") for n_layers in (1, 2, 3, 5)
                for d in ("mnist", "fashion") for e in ("rate", "latency")]
    if grid == "deep":
        return [Cell("mnist", "rate", n_layers, n) for n_layers in (5, 10, 15) for n in ("src", "lif")]
    if grid == "recurrent":
        return [Cell("fashion", "rate", 3, "src", recurrent=(2,)), Cell("fashion", "rate", 3, "src"),
                Cell("fashion", "rate", 3, "rlif", recurrent=(2,))]
    if grid == "bypass":
        return [Cell("mnist", "rate", 5, "src", bypass, seed) for seed in (0, 1) for bypass in (True, False)]
    raise ValueError(f"unknown grid {grid!r}; expected one of {', '.join(GRIDS)}")


def train_argv(cell, args, out):
    """``python -m quant.train`` arguments of one cell under the grid's budget."""
    argv = ["--dataset", _TRAIN_DATASET[cell.dataset], "--encoding", cell.encoding, "--neuron", cell.neuron,
            "--layers", str(cell.layers), "--width", str(args.width), "--epochs", str(args.epochs),
            "--steps", str(args.steps), "--seed", str(args.seed + cell.seed), "--out", str(out)]
    if not cell.bypass:
        argv.append("--no-relu-bypass")
    if cell.recurrent:
        argv += ["--recurrent", *map(str, cell.recurrent)]
    if cell.neuron == "rlif":
        argv += ["--lr", str(BASELINE_LR)]
    for flag, value in (("--limit-train", args.limit_train), ("--limit-val", args.limit_val),
                        ("--limit-test", args.limit_test), ("--threads", args.threads)):
        if value is not None:
            argv += [flag, str(value)]
    if (out / "checkpoint.pt").exists():
        argv.append("--resume")
    return argv


def finished(log_path):
    """The training log at ``log_path`` if its run has finished (tested), else None."""
    try:
        log = json.loads(Path(log_path).read_text())
    except (OSError, ValueError):
        return None
    return log if "test" in log else None


def summary(grid, budget, results):
    """The grid's summary from every finished cell's log in ``results / grid``."""
    rows, missing = [], []
    for cell in cells(grid):
        log = finished(results / grid / f"{cell.name}.json")
        if log is None:
            missing.append(cell.name)
            continue
        row = {"dataset": cell.dataset, "encoding": cell.encoding, "layers": cell.layers, "neuron": cell.neuron,
               **({} if grid == "table1" else {"bypass": cell.bypass, "seed": budget["seed"] + cell.seed,
                                               "recurrent": list(cell.recurrent)}),
               "test_accuracy": log["test"]["accuracy"], "paper": None if cell.paper is None else cell.paper / 100,
               "epochs_run": len(log["epochs"]), "seconds": sum(e["seconds"] for e in log["epochs"])}
        if grid in _PER_EPOCH:
            row["val_accuracy"] = [e["val_acc"] for e in log["epochs"]]
            row["val_loss"] = [e.get("val_loss") for e in log["epochs"]]
        rows.append(row)
    report = {**budget, "cells": rows, "missing": missing}
    if grid == "recurrent":
        accuracy = {(r["neuron"], bool(r["recurrent"])): r["test_accuracy"] for r in rows}
        report["fashion"] = {"src_recurrent": accuracy.get(("src", True)), "src_feedforward": accuracy.get(("src", False)),
                             "lif_recurrent_baseline": accuracy.get(("rlif", True)),
                             "st_rsbp_published": ST_RSBP_FASHION}
    return report


def plot(grid, results, out):
    """The grid's figures from its finished cells' logs, as PNG files in ``out``; returns their paths.

    ``table1``: Figure 4, the mean spiking activity (eq. 2, averaged over layers) of each MNIST
    network on the test set, rate and latency coding side by side. ``deep``: Figure 5, validation
    loss and accuracy per epoch of each depth, SRC and LIF. ``bypass``: Figure 2, the same curves of
    the 5-layer SRC with and without the ReLU bypass, per seed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    logs = {c: finished(Path(results) / grid / f"{c.name}.json") for c in cells(grid)}
    logs = {c: log for c, log in logs.items() if log is not None}
    if grid == "table1":
        networks = [(n_layers, neuron) for neuron in ("src", "lif") for n_layers in (1, 2, 3, 5)]
        fig, ax = plt.subplots(figsize=(8, 4))
        for k, encoding in enumerate(("rate", "latency")):
            heights = [statistics.fmean(logs[c]["test"]["activity"]) if c in logs else 0.0
                       for c in (Cell("mnist", encoding, n, neuron) for n, neuron in networks)]
            ax.bar([x + 0.4 * k - 0.2 for x in range(len(networks))], heights, width=0.4, label=f"{encoding} coding")
        ax.set_xticks(range(len(networks)), [f"{neuron.upper()} {n}L" for n, neuron in networks])
        ax.set_xlabel("network (neuron, layers)")
        ax.set_ylabel("mean spiking activity (eq. 2)")
        missing = any(Cell("mnist", e, n, neuron) not in logs for e in ("rate", "latency") for n, neuron in networks)
        ax.set_title("Figure 4: activity on the MNIST test set" + (" (missing bars: cell not run yet)" if missing else ""))
        ax.legend()
        path = out / "figure4-activity.png"
    else:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
        for c, log in logs.items():
            epochs = [e["epoch"] for e in log["epochs"]]
            if grid == "deep":
                style, label = ("-" if c.neuron == "src" else "--"), f"{c.neuron.upper()} {c.layers}L"
            elif grid == "bypass":
                style = "-" if c.bypass else "--"
                label = f"{'with' if c.bypass else 'without'} bypass, seed {c.seed}"
            else:
                style = "-" if c.neuron == "src" else "--"
                label = {"src": "SRC", "rlif": "LIF baseline"}[c.neuron] + (" recurrent" if c.recurrent else
                                                                             " feed-forward")
            ax_loss.plot(epochs, [e.get("val_loss") for e in log["epochs"]], style, marker="o", label=label)
            ax_acc.plot(epochs, [e["val_acc"] for e in log["epochs"]], style, marker="o", label=label)
        for ax, name in ((ax_loss, "validation loss"), (ax_acc, "validation accuracy")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.legend()
        if grid == "deep":
            fig.suptitle("Figure 5: deep SRC and LIF networks, MNIST rate coding")
            path = out / "figure5-deep.png"
        elif grid == "bypass":
            fig.suptitle("Figure 2: 5-layer SRC with and without the ReLU bypass, MNIST rate coding")
            path = out / "figure2-bypass.png"
        else:
            fig.suptitle("Recurrent layers: Fashion-MNIST, rate coding (ST-RSBP published: 90.13 %)")
            path = out / "recurrent-fashion.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def _commit(paths, message):
    """``git add`` and ``git commit`` of ``paths`` in their repository (a failure is reported, not
    fatal: the files stay)."""
    paths = [str(Path(p).resolve()) for p in paths]
    git = ["git", "-C", str(Path(paths[0]).parent)]
    try:
        subprocess.run([*git, "add", "--", *paths], check=True, capture_output=True)
        subprocess.run([*git, "commit", "-q", "-m", message, "--", *paths], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as problem:
        print(f"warning: could not commit {message!r}: {problem}", file=sys.stderr)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 complete (or --list); 1 cells left; 2 bad arguments or data.")
    p.add_argument("grid", choices=GRIDS, help="which experiment grid")
    p.add_argument("--epochs", type=int, default=2, help="training epochs of every cell (the paper: 100)")
    p.add_argument("--limit-train", type=int, help="train every cell on the first N training samples")
    p.add_argument("--limit-val", type=int, help="validate on the first N validation samples")
    p.add_argument("--limit-test", type=int, help="test on the first N test samples (default: all 10 000)")
    p.add_argument("--width", type=int, help="neurons per hidden layer (default: 512 for table1, 400 for recurrent, 128 for deep and bypass)")
    p.add_argument("--steps", type=int, default=200, help="sequence length T (the paper: 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of every cell")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--cells", default="*", help="run only cells whose name matches this glob (e.g. 'mnist-*-src-*')")
    p.add_argument("--max-cells", type=int, help="stop after finishing this many cells")
    p.add_argument("--runs", type=Path, default=Path("runs/reproduce"), help="folder of the cells' training runs")
    p.add_argument("--results", type=Path, default=Path("runs/reproduce/results"),
                   help="folder of the finished cells' logs and the grid summaries (docs/results to publish)")
    p.add_argument("--commit", action="store_true", help="git-commit each finished cell's log and the summary")
    p.add_argument("--list", action="store_true", help="print the grid's state and exit")
    p.add_argument("--summary", action="store_true",
                   help="rewrite the grid's summary (RESULTS/GRID.json) from its finished cells' logs and exit")
    p.add_argument("--plot", type=Path, metavar="DIR",
                   help="write the grid's figures (from its finished cells in --results) to DIR and exit")
    args = p.parse_args(argv)
    for name in ("epochs", "limit_train", "limit_val", "limit_test", "width", "steps", "threads", "max_cells"):
        in_range(p, name.replace("_", "-"), getattr(args, name), 1)
    if args.width is None:
        args.width = {"table1": 512, "recurrent": 400}.get(args.grid, 128)
    return args


def main(argv=None):
    from . import train

    args = parse_args(argv)
    budget = {"grid": args.grid, "epochs": args.epochs, "limit_train": args.limit_train, "width": args.width,
              "steps": args.steps, "seed": args.seed}
    todo = [c for c in cells(args.grid) if fnmatch.fnmatch(c.name, args.cells)]
    if not todo:
        return error(f"no cell of {args.grid} matches {args.cells!r}", EXIT_USAGE)
    summary_path = args.results / f"{args.grid}.json"
    previous = finished_budget(summary_path)
    if previous and previous != budget:
        return error(f"{summary_path} holds a grid run with {previous}; this run asks for {budget}: "
                     f"finish it with the same budget or pass another --results", EXIT_USAGE)
    if args.plot:
        for path in plot(args.grid, args.results, args.plot):
            print(f"wrote {path}")
        return 0
    if args.summary:
        summary_path.write_text(json.dumps({**summary(args.grid, budget, args.results),
                                            **provenance("quant.reproduce", argv)}, indent=1))
        print(f"wrote {summary_path}")
        return 0
    done = 0
    for cell in todo:
        published = args.results / args.grid / f"{cell.name}.json"
        if args.list:
            log = finished(published)
            state = f"{100 * log['test']['accuracy']:.2f} %" if log else "left"
            print(f"{cell.name:28s} {state:>8s}   paper {cell.paper if cell.paper is not None else '-'}")
            continue
        if finished(published):
            continue
        if args.max_cells is not None and done >= args.max_cells:
            print(f"stopped after {done} cells; run again to continue")
            return 1
        out = args.runs / args.grid / cell.name
        argv_cell = train_argv(cell, args, out)
        print(f"== {cell.name}: python -m quant.train {' '.join(argv_cell)}", flush=True)
        status = train.main(argv_cell)
        if status != 0:
            return error(f"training {cell.name} failed (exit {status})", status)
        log = finished(out / "log.json")
        published.parent.mkdir(parents=True, exist_ok=True)
        published.write_text(json.dumps({**log, "cell": cell.name, "budget": budget}, indent=1))
        summary_path.write_text(json.dumps({**summary(args.grid, budget, args.results),
                                            **provenance("quant.reproduce", argv)}, indent=1))
        done += 1
        if args.commit:
            _commit([published, summary_path], f"reproduce {args.grid}: {cell.name} "
                    f"{100 * log['test']['accuracy']:.2f} % (paper {cell.paper})")
    return 0


def finished_budget(summary_path):
    """The budget a grid summary was made with (None when there is none yet)."""
    try:
        report = json.loads(Path(summary_path).read_text())
    except (OSError, ValueError):
        return None
    return {k: report.get(k) for k in ("grid", "epochs", "limit_train", "width", "steps", "seed")}


if __name__ == "__main__":
    sys.exit(main())
