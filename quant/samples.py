"""Encoded sample packs: test images with their exact input spikes, readable with numpy alone.

A pack is an ``.npz`` (read with ``allow_pickle=False``) holding ``images`` (uint8,
``(n, features)``), ``labels`` (uint8), ``spikes`` (the binary spikes ``(T, n, features)``
packed along the feature axis with :func:`numpy.packbits`) and a JSON ``header`` (encoding, T,
seed, feature count). The spikes are stored, not re-drawn, so every stage (golden model,
emulator, RTL) sees the very same inputs.
"""

import json
from pathlib import Path

import numpy as np

from .files import FileError, read_npz

__all__ = ["SAMPLES_FORMAT", "SampleError", "save_samples", "load_samples"]

SAMPLES_FORMAT = "src-sample-pack/1"


class SampleError(FileError):
    """A sample pack is missing, corrupt or inconsistent."""


def save_samples(path, images, labels, spikes, encoding, seed):
    spikes = np.asarray(spikes).astype(bool)
    n_steps, n, features = spikes.shape
    if images.shape != (n, features) or labels.shape != (n,):
        raise SampleError(f"images {images.shape} / labels {labels.shape} do not match spikes {spikes.shape}")
    header = {"format": SAMPLES_FORMAT, "encoding": encoding, "n_steps": n_steps, "features": features, "seed": seed}
    with open(path, "wb") as f:
        np.savez_compressed(f, header=np.array(json.dumps(header)), images=np.asarray(images, np.uint8),
                            labels=np.asarray(labels, np.uint8), spikes=np.packbits(spikes, axis=2))


def load_samples(path):
    """Return ``(spikes (T, n, features) bool, labels (n,) int64, images (n, features) uint8, header)``."""
    header, arrays = read_npz(path, SAMPLES_FORMAT, SampleError, "sample pack")
    try:
        spikes = np.unpackbits(arrays["spikes"], axis=2, count=header["features"]).astype(bool)
        labels, images = arrays["labels"].astype(np.int64), arrays["images"]
    except (KeyError, TypeError, ValueError) as error:
        raise SampleError(f"{path}: not a valid sample pack ({type(error).__name__}: {error})") from None
    if spikes.shape[0] != header["n_steps"] or spikes.shape[1] != len(labels) or images.shape != (len(labels), header["features"]):
        raise SampleError(f"{path}: inconsistent shapes {spikes.shape}, {labels.shape}, {images.shape}")
    return spikes, labels, images, header
