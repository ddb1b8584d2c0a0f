"""The shipped models: for each encoding a trained SRC model, its quantized network, and encoded MNIST test samples.

Each model has a folder (``quant/assets/latency``, ``quant/assets/rate``) holding
``model.safetensors``, ``model.npz``, ``samples.npz`` and ``manifest.json``, rebuilt with
``python -m quant.make_assets`` (the manifest records the command, the accuracies and the
checksums). The latency-coded model is the default: ``make demo``, ``host.infer``, ``hdl.build``
and the emulator use it unless told otherwise; the networks carry their encoding.
"""

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ASSETS", "NAMES", "DEFAULT", "ShippedModel", "model", "models", "FLOAT_MODEL", "QUANTIZED_MODEL",
           "SAMPLES", "MANIFEST"]

ASSETS = Path(__file__).resolve().parent
#: The shipped models, by the encoding they were trained with; the first is the default.
NAMES = ("latency", "rate")
DEFAULT = NAMES[0]


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model's files."""

    name: str

    @property
    def folder(self):
        return ASSETS / self.name

    @property
    def float_model(self):
        return self.folder / "model.safetensors"

    @property
    def quantized_model(self):
        return self.folder / "model.npz"

    @property
    def samples(self):
        return self.folder / "samples.npz"

    @property
    def manifest(self):
        return self.folder / "manifest.json"


def model(name=DEFAULT):
    """The shipped model ``name`` (``latency`` or ``rate``)."""
    if name not in NAMES:
        raise ValueError(f"no shipped model {name!r}; the shipped ones are {', '.join(NAMES)}")
    return ShippedModel(name)


def models():
    """Every shipped model, the default first."""
    return [ShippedModel(name) for name in NAMES]


FLOAT_MODEL = model().float_model
QUANTIZED_MODEL = model().quantized_model
SAMPLES = model().samples
MANIFEST = model().manifest
