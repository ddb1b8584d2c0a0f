"""Train an SRC (or LIF baseline) network with the paper's set-up.

Usage::

    python -m quant.train --dataset mnist --encoding rate --neuron src --layers 2 --epochs 10

Defaults are the paper's (Appendix A): Adam, learning rate 0.005 with cosine
annealing (stepped per batch over the whole run), batch 64, gradient-norm
clipping 1.0, 90/10 train/validation split, Xavier-uniform weights, T = 200.
Each epoch appends train loss, validation accuracy and spike activity (eq. 2)
to ``OUT/log.json`` and writes ``OUT/checkpoint.pt`` (resumable with
``--resume``); the best validation model goes to ``OUT/model.safetensors``, and
its test accuracy is measured at the end.

Exit codes: 0 success, 2 bad arguments or unreadable data/checkpoint.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint
from .data import DatasetError, default_data_dir, load_images, load_nmnist, split_train_val
from .encode import N_STEPS, encode
from .fixedpoint import DEFAULT
from .golden import shape_name
from .intencode import latency as latency_spikes
from .intencode import rate_torch, to_pixels
from .model import build_model
from .srcparams import SRCParams

__all__ = ["Batches", "train_step", "evaluate", "main"]

DATASETS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "nmnist": None}
#: Image encoders: the device's integer ones (the default: the device's accuracy is the one trained
#: for), or snnTorch's float ones.
ENCODERS = ("device", "bernoulli")


class Batches:
    """Encoded batches ``(spikes (T, B, F), labels)`` of an image set or of N-MNIST frames.

    Images are encoded by ``encoder``: ``device``, the integer encoders the device runs
    (:mod:`quant.intencode`: rate coding from one seed per sample, drawn from the generator), or
    ``bernoulli``, snnTorch's float encoders (:mod:`quant.encode`). Latency coding gives the same
    spikes with both. Random draws come from a generator seeded by the caller, so that an epoch
    is reproducible (and a resumed run draws what the original would have).
    """

    def __init__(self, data, encoding, batch_size, n_steps=N_STEPS, shuffle=False, seed=0, encoder="device",
                 config=None):
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; expected one of {ENCODERS}")
        self.data, self.encoding, self.batch_size = data, encoding, batch_size
        self.n_steps, self.shuffle, self.seed, self.encoder = n_steps, shuffle, seed, encoder
        self.config = config or DEFAULT

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        n = len(self.data)
        order = torch.randperm(n, generator=generator).numpy() if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.encoding == "events":
                items = [self.data[int(k)] for k in index]
                frames = torch.from_numpy(np.stack([f for f, _ in items]))
                spikes = frames.reshape(len(items), frames.shape[1], -1).transpose(0, 1).contiguous()
                labels = torch.tensor([y for _, y in items])
            elif self.encoder == "device" and self.encoding == "rate":
                pixels = to_pixels(self.data.images[index], self.config)
                seeds = torch.randint(0, 1 << 32, (len(index),), generator=generator)
                spikes = rate_torch(pixels, seeds, self.n_steps, self.config)
                labels = torch.from_numpy(self.data.labels[index])
            elif self.encoder == "device":
                # The device's table on pixels of config.pixel_bits (at 8 bits the same spikes as
                # the float encoder below, tests/quant/test_intencode.py).
                pixels = to_pixels(self.data.images[index], self.config)
                spikes = torch.from_numpy(latency_spikes(pixels, self.n_steps, self.config)).to(
                    torch.get_default_dtype())
                labels = torch.from_numpy(self.data.labels[index])
            else:
                images = torch.from_numpy(self.data.images[index])
                spikes = encode(images, self.encoding, self.n_steps, generator=generator)
                labels = torch.from_numpy(self.data.labels[index])
            yield spikes, labels


def train_step(model, optimizer, spikes, labels, clip=1.0):
    """One optimizer step on cross-entropy at the last step; re-applies the ``b_h`` clamp after it.

    Returns the logits and the loss (both detached).
    """
    logits = model(spikes)[0]
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    model.clamp_()
    return logits.detach(), loss.detach()


def evaluate(model, batches, device, desc="eval"):
    """Accuracy, mean per-layer activity and mean cross-entropy loss of ``model`` over ``batches``."""
    model.eval()
    correct, total, activity, loss = 0, 0, None, 0.0
    with torch.no_grad():
        for spikes, labels in tqdm(batches, desc=desc, leave=False, dynamic_ncols=True):
            logits, act = model(spikes.to(device))[:2]
            correct += int((logits.argmax(1).cpu() == labels).sum())
            loss += float(F.cross_entropy(logits.cpu(), labels, reduction="sum"))
            total += len(labels)
            act = act.cpu() * len(labels)
            activity = act if activity is None else activity + act
    model.train()
    return correct / max(total, 1), (activity / max(total, 1)).tolist(), loss / max(total, 1)


def load_dataset(args):
    """Return ``(train, val, test, n_inputs, encoding)`` for the chosen dataset."""
    if args.dataset == "nmnist":
        if args.data_dir is None:
            raise DatasetError("N-MNIST has no shared copy: pass --data-dir")
        full = load_nmnist(args.data_dir, train=True, n_steps=args.steps)
        test = load_nmnist(args.data_dir, train=False, n_steps=args.steps)
        order = np.random.default_rng(args.seed).permutation(len(full))
        n_val = int(round(len(full) * args.val_fraction))
        subset = torch.utils.data.Subset
        train, val = subset(full, order[n_val:]), subset(full, order[:n_val])
        return _limit(train, args.limit_train), _limit(val, args.limit_val), _limit(test, args.limit_test), 2 * 34 * 34, "events"
    directory = args.data_dir or default_data_dir(DATASETS[args.dataset])
    if directory is None:
        raise DatasetError(f"no local copy of {args.dataset} found: pass --data-dir")
    train, val = split_train_val(load_images(directory, "train"), args.val_fraction, args.seed)
    test = load_images(directory, "test")
    lim = lambda d, n: d if n is None else d.subset(np.arange(min(n, len(d))))
    return lim(train, args.limit_train), lim(val, args.limit_val), lim(test, args.limit_test), train.images.shape[1], args.encoding


def _limit(dataset, n):
    return dataset if n is None else torch.utils.data.Subset(dataset, range(min(n, len(dataset))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m quant.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist", help="dataset to train on")
    p.add_argument("--data-dir", type=Path, help="folder with the dataset files (default: the shared copy)")
    p.add_argument("--encoding", choices=["rate", "latency"], default="rate",
                   help="spike encoding of static images (ignored for N-MNIST, which is event data)")
    p.add_argument("--encoder", choices=ENCODERS, default="device",
                   help="image encoder: the device's integer encoders (rate: a counter-based hash per pixel and "
                        "step) or snnTorch's Bernoulli; latency coding is the same with both")
    p.add_argument("--pixel-bits", type=int, default=DEFAULT.pixel_bits,
                   help="bits per pixel the device encoder sees (fixed-point config pixel_bits)")
    p.add_argument("--neuron", choices=["src", "lif", "rlif"], default="src",
                   help="SRC network, the snnTorch LIF baseline, or the recurrent LIF baseline of ST-RSBP's class "
                        "(quant.baseline: synaptic current, refractory period, one output neuron per class)")
    p.add_argument("--no-relu-bypass", dest="relu_bypass", action="store_false",
                   help="SRC only: train with the plain ReLU's gradient instead of the paper's bypass "
                        "(ds/dh = 1 everywhere, section 4.4); the paper's Figure 2 ablation")
    p.add_argument("--recurrent", type=int, nargs="+", default=[], metavar="LAYER",
                   help="SRC or rlif: layers (numbered from 1, the first spiking layer) with lateral weights from "
                        "their own spikes of the previous step, e.g. --layers 3 --recurrent 2 for 784-W-RW-100")
    p.add_argument("--layers", type=int, default=2, help="spiking layers, counting the 10*classes output layer")
    p.add_argument("--width", type=int, default=512, help="neurons per hidden layer")
    p.add_argument("--epochs", type=int, default=100, help="training epochs (paper: 100, 200 for Fashion-MNIST)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--lr", type=float, default=0.005, help="initial Adam learning rate (cosine-annealed to 0)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    p.add_argument("--steps", type=int, default=N_STEPS, help="sequence length T")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the training set held out")
    p.add_argument("--limit-train", type=int, help="use only the first N training samples (quick runs)")
    p.add_argument("--limit-val", type=int, help="use only the first N validation samples")
    p.add_argument("--limit-test", type=int, help="use only the first N test samples")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, split, shuffling and spike draws")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder (log, checkpoints, model)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop-after", type=int, metavar="EPOCHS",
                   help="stop (without testing) after this many epochs; the schedule still spans --epochs, "
                        "so --resume later continues exactly as an uninterrupted run")
    args = p.parse_args(argv)
    for name in ("layers", "width", "epochs", "batch_size", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.relu_bypass and args.neuron != "src":
        p.error("--no-relu-bypass applies to SRC networks only (the LIF baseline has no bypass)")
    if args.recurrent and args.neuron == "lif":
        p.error("--recurrent applies to SRC networks and the rlif baseline, not to snnTorch's LIF")
    for layer in args.recurrent:
        if not 1 <= layer <= args.layers:
            p.error(f"--recurrent {layer}: layers are numbered 1..{args.layers}")
    low, high = DEFAULT.field_ranges()["pixel_bits"]
    if not low <= args.pixel_bits <= high:
        p.error(f"--pixel-bits must lie in [{low}, {high}], got {args.pixel_bits}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        train, val, test, n_inputs, encoding = load_dataset(args)
    except (DatasetError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    params = SRCParams.for_encoding(encoding)
    config = DEFAULT.replace(pixel_bits=args.pixel_bits)
    model = build_model(args.neuron, n_inputs, args.layers, args.width, params=params,
                        bypass=args.relu_bypass, recurrent=[k - 1 for k in args.recurrent]).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path, model_path = args.out / "checkpoint.pt", args.out / "log.json", args.out / "model.safetensors"
    log = {"args": {k: str(v) for k, v in vars(args).items()}, "epochs": [], "sizes": model.sizes}
    start_epoch, best_val = 0, -1.0
    if args.resume:
        try:
            state = checkpoint.load_training_state(ckpt_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (checkpoint.CheckpointError, KeyError, RuntimeError, ValueError) as error:
            print(f"error: cannot resume: {error}", file=sys.stderr)
            return 2
        start_epoch, best_val = int(state["epoch"]), float(state["best_val"])
        log = json.loads(log_path.read_text()) if log_path.exists() else log
        print(f"resuming after epoch {start_epoch}")

    val_batches = Batches(val, encoding, 256, args.steps, seed=args.seed + 1, encoder=args.encoder, config=config)
    print(f"{args.neuron.upper()} {shape_name(model.sizes, getattr(model, 'recurrent', ()))} on {args.dataset}/{encoding}: "
          f"{len(train)} train, {len(val)} val, {len(test)} test, device {args.device}")
    last_epoch = args.epochs if args.stop_after is None else min(args.epochs, args.stop_after)
    for epoch in range(start_epoch, last_epoch):
        batches = Batches(train, encoding, args.batch_size, args.steps, shuffle=True, seed=args.seed * 1000 + epoch + 2,
                          encoder=args.encoder, config=config)
        total_loss, total_correct, seen, started = 0.0, 0, 0, time.time()
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", dynamic_ncols=True)
        for spikes, labels in bar:
            spikes, labels = spikes.to(args.device), labels.to(args.device)
            logits, loss = train_step(model, optimizer, spikes, labels, args.clip)
            scheduler.step()
            total_loss += loss.item() * len(labels)
            total_correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}")
        val_acc, val_activity, val_loss = evaluate(model, val_batches, args.device, "validate")
        entry = {"epoch": epoch + 1, "train_loss": total_loss / seen, "train_acc": total_correct / seen,
                 "val_acc": val_acc, "val_loss": val_loss, "val_activity": val_activity, "lr": scheduler.get_last_lr()[0],
                 "seconds": time.time() - started, "samples_per_s": seen / (time.time() - started)}
        log["epochs"].append(entry)
        print(json.dumps(entry))
        if val_acc > best_val:
            best_val = val_acc
            checkpoint.save_model(model_path, model, encoding, args.steps,
                                  extra={"epoch": epoch + 1, "val_acc": val_acc, "encoder": args.encoder})
        checkpoint.save_training_state(ckpt_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best_val": best_val})
        log_path.write_text(json.dumps(log, indent=1))

    if last_epoch < args.epochs:
        print(f"stopped after epoch {last_epoch} of {args.epochs}; continue with --resume")
        return 0
    best, _ = checkpoint.load_model(model_path, args.device)
    test_acc, test_activity, test_loss = evaluate(best, Batches(test, encoding, 256, args.steps, seed=args.seed + 3,
                                                     encoder=args.encoder, config=config), args.device, "test")
    log["test"] = {"accuracy": test_acc, "loss": test_loss, "activity": test_activity, "best_val_acc": best_val}
    log_path.write_text(json.dumps(log, indent=1))
    print(f"test accuracy {100 * test_acc:.2f} % (best validation {100 * best_val:.2f} %), "
          f"activity {[round(a, 4) for a in test_activity]}; model: {model_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
