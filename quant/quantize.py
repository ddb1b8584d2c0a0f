"""Quantize a trained float SRC model into the fixed-point network the hardware runs, and measure the cost.

Usage::

    python -m quant.quantize --model runs/x/model.safetensors --out model.npz --report report.json

Weights of each layer get the largest binary point (up to ``max_weight_frac``) at which the
layer's largest weight fits ``weight_width`` bits, then are rounded half up and clipped
symmetrically; biases are rounded into the state format and clamped at ``b_h_max``. The
report compares the float model and the golden model on the same encoded test samples:
accuracy, agreement of predictions, spike activity and saturation counts.

Quantized networks are stored as ``.npz`` (read with ``allow_pickle=False``) with the
fixed-point configuration as JSON inside.

Exit codes: 0 success, 2 unreadable model/data or bad arguments.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import golden
from .fixedpoint import DEFAULT, FixedPointConfig
from .golden import QuantizedLayer, QuantizedNetwork
from .files import FileError, read_npz

__all__ = ["QUANT_FORMAT", "QuantizationError", "quantize_layer", "quantize_model", "save_network",
           "load_network", "compare", "main"]

#: Format tag of quantized-network files.
QUANT_FORMAT = "src-quantized-network/1"


class QuantizationError(FileError):
    """A model cannot be quantized, or a quantized-network file is corrupt."""


def _round_half_up(values):
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)


def quantize_layer(weight, bias, cfg, stats=None, weight_rec=None):
    """Quantize one layer's float ``weight`` ``(n_out, n_in)`` and ``bias`` ``(n_out,)``.

    A recurrent layer's ``weight_rec`` ``(n_out, n_out)`` shares the layer's binary point (the
    hardware sums both in one accumulator), chosen from the largest of all its weights.
    """
    if weight_rec is not None:
        weight = np.concatenate([np.asarray(weight, dtype=np.float64), np.asarray(weight_rec, dtype=np.float64)], 1)
        layer = quantize_layer(weight, bias, cfg, stats)
        n_in = weight.shape[1] - weight.shape[0]
        return QuantizedLayer(layer.weight[:, :n_in], layer.weight_frac, layer.bias, layer.weight[:, n_in:])
    weight = np.asarray(weight, dtype=np.float64)
    largest = float(np.abs(weight).max(initial=0.0))
    # The largest binary point at which the largest weight fits, within 0..max_weight_frac (a layer
    # whose weights exceed weight_max even at 0 fractional bits is clipped, and the clips counted).
    frac = cfg.max_weight_frac if largest == 0 else min(cfg.max_weight_frac,
                                                        max(0, math.floor(math.log2(cfg.weight_max / largest))))
    w = _round_half_up(weight * 2.0 ** frac)
    b = _round_half_up(np.asarray(bias, dtype=np.float64) * 2.0 ** cfg.state_frac)
    if stats is not None:
        stats["weights_clipped"] = stats.get("weights_clipped", 0) + int(np.count_nonzero(np.abs(w) > cfg.weight_max))
        stats["biases_clipped"] = stats.get("biases_clipped", 0) + int(
            np.count_nonzero((b < cfg.bias_min) | (b > cfg.b_h_max)))
    return QuantizedLayer(np.clip(w, -cfg.weight_max, cfg.weight_max), frac, np.clip(b, cfg.bias_min, cfg.b_h_max))


def quantize_model(model, config=None, encoding="rate", n_steps=200, stats=None):
    """Quantize a float :class:`quant.model.SRCNet` with ``config`` (its cell constants replaced by the model's)."""
    if getattr(model, "neuron", None) != "src":
        raise QuantizationError(f"only SRC networks can be quantized, got {getattr(model, 'neuron', type(model))!r}")
    cfg = (config or DEFAULT).replace(params=model.params)
    layers = [quantize_layer(layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy(), cfg, stats,
                             layer.weight_rec.detach().cpu().numpy() if getattr(layer, "recurrent", False) else None)
              for layer in model.layers]
    return QuantizedNetwork(layers, model.readout.n_classes, cfg, encoding, n_steps)


def save_network(path, network):
    """Write a quantized network to ``.npz``: integer arrays plus its JSON header."""
    header = {"format": QUANT_FORMAT, "config": network.config.to_dict(), "n_classes": network.n_classes,
              "encoding": network.encoding, "n_steps": network.n_steps,
              "weight_frac": [layer.weight_frac for layer in network.layers]}
    arrays = {"header": np.array(json.dumps(header))}
    for k, layer in enumerate(network.layers):
        arrays[f"weight{k}"] = layer.weight.astype(np.int32)
        arrays[f"bias{k}"] = layer.bias.astype(np.int32)
        if layer.recurrent:
            arrays[f"weight_rec{k}"] = layer.weight_rec.astype(np.int32)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_network(path):
    """Read a quantized network written by :func:`save_network`, validating it."""
    header, arrays = read_npz(path, QUANT_FORMAT, QuantizationError, "quantized network")
    try:
        config = FixedPointConfig.from_dict(header["config"])
        layers = [QuantizedLayer(arrays[f"weight{k}"].astype(np.int64), int(frac), arrays[f"bias{k}"].astype(np.int64),
                                 arrays[f"weight_rec{k}"].astype(np.int64) if f"weight_rec{k}" in arrays else None)
                  for k, frac in enumerate(header["weight_frac"])]
    except (KeyError, TypeError, ValueError) as error:
        raise QuantizationError(f"{path}: not a valid quantized network ({type(error).__name__}: {error})") from None
    try:
        return QuantizedNetwork(layers, int(header["n_classes"]), config, header["encoding"], int(header["n_steps"]))
    except ValueError as error:
        raise QuantizationError(f"{path}: {error}") from None


def compare(model, network, batches, device="cpu", progress=True):
    """Run the float model and the golden model on the same encoded batches; return a report dict."""
    import torch
    from tqdm import tqdm

    n = correct_float = correct_fixed = agree = 0
    act_float, act_fixed, saturations = None, None, {}
    started = time.time()
    model.eval()
    for spikes, labels in tqdm(batches, desc="float vs fixed", disable=not progress, dynamic_ncols=True):
        with torch.no_grad():
            logits, activity = model(spikes.to(device))[:2]
        pred_float = logits.argmax(1).cpu().numpy()
        result = golden.run(network, spikes.numpy().astype(bool))
        y = labels.numpy()
        b = len(y)
        n += b
        correct_float += int((pred_float == y).sum())
        correct_fixed += int((result.prediction == y).sum())
        agree += int((pred_float == result.prediction).sum())
        act_float = activity.cpu().numpy() * b + (0 if act_float is None else act_float)
        act_fixed = np.array(result.activity) * b + (0 if act_fixed is None else act_fixed)
        for key, value in result.saturations.items():
            saturations[key] = saturations.get(key, 0) + value
    return {
        "samples": n,
        "float_accuracy": correct_float / n,
        "fixed_accuracy": correct_fixed / n,
        "accuracy_drop_pp": 100 * (correct_float - correct_fixed) / n,
        "prediction_agreement": agree / n,
        "float_activity": (act_float / n).tolist(),
        "fixed_activity": (act_fixed / n).tolist(),
        "saturations": saturations,
        "seconds": time.time() - started,
    }


def main(argv=None):
    from .checkpoint import CheckpointError, load_model
    from .data import DatasetError, default_data_dir, load_images
    from .train import Batches

    p = argparse.ArgumentParser(prog="python -m quant.quantize", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="float model file (safetensors) from quant.train")
    p.add_argument("--out", type=Path, help="write the quantized network here (.npz)")
    p.add_argument("--report", type=Path, help="write the float-vs-fixed report here (.json)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="test set to compare on")
    p.add_argument("--data-dir", type=Path, help="folder with the IDX files (default: the shared copy)")
    p.add_argument("--limit-test", type=int, help="compare on the first N test samples only (default: all)")
    p.add_argument("--batch-size", type=int, default=250, help="samples per evaluation batch")
    p.add_argument("--encoder", choices=["device", "bernoulli"], default="device",
                   help="image encoder for rate coding: the device's integer one or snnTorch's Bernoulli")
    p.add_argument("--seed", type=int, default=3, help="seed of the rate-coded test spikes")
    p.add_argument("--weight-width", type=int, default=DEFAULT.weight_width, help="bits per weight")
    p.add_argument("--pixel-bits", type=int, default=DEFAULT.pixel_bits,
                   help="bits per pixel the device encoder sees (the test spikes are encoded from them)")
    args = p.parse_args(argv)
    try:
        model, config = load_model(args.model)
        stats = {}
        network = quantize_model(model, DEFAULT.replace(weight_width=args.weight_width, pixel_bits=args.pixel_bits),
                                 config["encoding"],
                                 config["n_steps"], stats)
        directory = args.data_dir or default_data_dir(args.dataset)
        if directory is None:
            raise DatasetError(f"no local copy of {args.dataset}: pass --data-dir")
        test = load_images(directory, "test")
    except (FileError, DatasetError, ValueError) as error:   # ValueError: a fixed-point format out of its range
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit_test:
        test = test.subset(np.arange(min(args.limit_test, len(test))))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_network(args.out, network)
    report = {"model": str(args.model), "sizes": network.sizes, "network": network.shape_name(), "weight_width": network.config.weight_width,
              "pixel_bits": network.config.pixel_bits,
              "weight_frac": [l.weight_frac for l in network.layers],
              "config_digest": network.config.digest()[:16], **stats,
              "encoder": args.encoder,
              **compare(model, network, Batches(test, config["encoding"], args.batch_size, config["n_steps"],
                                                seed=args.seed, encoder=args.encoder, config=network.config))}
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
