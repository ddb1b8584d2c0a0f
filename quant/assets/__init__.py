"""The embedded default: a small trained SRC model, its quantized network, and encoded MNIST test samples.

Rebuilt with ``python -m quant.make_assets`` (see its ``--help``); ``manifest.json`` records
the command, the accuracies and the checksums.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
FLOAT_MODEL = ASSETS / "model.safetensors"
QUANTIZED_MODEL = ASSETS / "model.npz"
SAMPLES = ASSETS / "samples.npz"
MANIFEST = ASSETS / "manifest.json"
