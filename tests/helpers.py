"""Small data the tests write themselves, in the real file formats."""

import gzip
from pathlib import Path

import numpy as np

from quant.data import IDX_FILES


def idx_bytes(array):
    """The IDX encoding of a uint8 array."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_dataset(directory, n_train=64, n_test=32, seed=0, compress=True):
    """A tiny MNIST-shaped dataset whose classes are separable (one bright 2x7 bar per class)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) < 0.05).astype(np.uint8) * 60
        for k, label in enumerate(labels):
            row = 2 + 2 * int(label)
            images[k, row:row + 2, 4:24] = 255
        for name, data in zip(IDX_FILES[split], (images, labels)):
            payload = idx_bytes(data)
            if compress:
                (directory / (name + ".gz")).write_bytes(gzip.compress(payload))
            else:
                (directory / name).write_bytes(payload)
    return directory


def nmnist_event_bytes(x, y, p, t):
    """Events in the N-MNIST binary format: 5 bytes each, x, y, then polarity bit 7 and a 23-bit time stamp."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t):
        out += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 0x7F), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def random_network(sizes, seed, weight_scale=4.0, bias=(-6.0, -4.0), n_steps=30, params=None, recurrent=(),
                   lateral=1.0):
    """A quantized SRC network with Xavier weights scaled up (so that neurons fire) and biases in ``bias``;
    the ``recurrent`` layers' lateral weights uniform in ``[-lateral, lateral]``."""
    import torch

    from quant.model import SRCNet
    from quant.quantize import quantize_model
    from quant.srcparams import PAPER

    torch.manual_seed(seed)
    model = SRCNet(sizes, params=params or PAPER, recurrent=recurrent)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(weight_scale)
            layer.bias.uniform_(*bias)
            if layer.recurrent:
                layer.weight_rec.uniform_(-lateral, lateral)
    return quantize_model(model, n_steps=n_steps)


def require_simulator(module_level=False):
    """Skip (the test, or with ``module_level`` the module) when no HDL simulator is installed;
    under ``SRC_REQUIRE_SIM`` (CI) its absence is an error instead."""
    import os

    import pytest

    from sim.runner import SimulatorMissing, available_simulator
    try:
        available_simulator()
    except SimulatorMissing as error:
        if os.environ.get("SRC_REQUIRE_SIM"):
            raise
        pytest.skip(str(error), allow_module_level=module_level)


#: A trained recurrent model (Fashion-MNIST, 784-128-R128-100) with its quantized network and sample
#: pack (``python -m quant.make_assets --name rate --dataset fashion-mnist --out`` this folder).
TRAINED_RECURRENT = Path(__file__).resolve().parents[1] / "docs" / "results" / "models" / "fashion-rate-src-784-128-R128-100"
