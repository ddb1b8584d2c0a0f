"""Saving and loading trained models and training state, without pickles.

A *model file* is a safetensors file: the state dict, plus a JSON ``config``
entry in its metadata (neuron type, layer sizes, cell constants, encoding).
A *training checkpoint* (for ``--resume``) is a ``torch.save`` dict of tensors
and plain values, read back only with ``torch.load(weights_only=True)``.
"""

import dataclasses
import json
from pathlib import Path

import torch

from .files import FileError, check_kind
from .srcparams import SRCParams

__all__ = ["CheckpointError", "FORMAT", "save_model", "load_model", "read_model_config",
           "save_training_state", "load_training_state"]

#: Format tag written into every model file.
FORMAT = "src-float-model/1"


class CheckpointError(FileError):
    """A model file or training checkpoint is missing, corrupt or of the wrong kind."""


def model_config(model, encoding, n_steps):
    return {
        "neuron": model.neuron,
        "sizes": model.sizes,
        "n_classes": model.n_classes if hasattr(model, "n_classes") else model.readout.n_classes,
        "params": dataclasses.asdict(model.params),
        "encoding": encoding,
        "n_steps": n_steps,
        # Indices of the SRC layers with lateral weights (absent in files from before them: none).
        "recurrent": list(getattr(model, "recurrent", [])),
    }


def save_model(path, model, encoding, n_steps, extra=None):
    """Write ``model`` to a safetensors file with its configuration in the metadata."""
    from safetensors.torch import save_file

    config = model_config(model, encoding, n_steps)
    metadata = {"format": FORMAT, "config": json.dumps(config)}
    if extra:
        metadata["extra"] = json.dumps(extra)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def read_model_config(path):
    """Return ``(config, tensors)`` of a model file, validated, with tensors on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open

    path = Path(path)
    check_kind(path, FORMAT, CheckpointError)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors model file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}")
    try:
        config = json.loads(metadata["config"])
        if config.get("neuron") == "rlif":
            from .baseline import LIFSynapticParams

            config["params"] = LIFSynapticParams(**config["params"])
        else:
            config["params"] = SRCParams(**config["params"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: malformed model configuration ({error})") from None
    return config, tensors


def load_model(path, device="cpu"):
    """Rebuild the model saved in ``path``. Returns ``(model, config)``."""
    from .baseline import RecurrentLIFNet
    from .model import LIFNet, SRCNet

    config, tensors = read_model_config(path)
    cls = {"src": SRCNet, "lif": LIFNet, "rlif": RecurrentLIFNet}.get(config["neuron"])
    if cls is None:
        raise CheckpointError(f"{path}: unknown neuron type {config['neuron']!r}")
    recurrent = config.get("recurrent", [])
    if recurrent and cls is LIFNet:
        raise CheckpointError(f"{path}: recurrent layers {recurrent} in a {config['neuron']!r} model")
    try:
        # LIFNet has no recurrent layers (refused above), so it takes no such argument.
        model = cls(config["sizes"], config["n_classes"], config["params"],
                    **({"recurrent": recurrent} if recurrent else {}))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: malformed model configuration ({error})") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: tensors do not match the configuration ({error})") from None
    return model.to(device), config


def save_training_state(path, state):
    """Write a resumable training state (tensors and plain values only), atomically."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_training_state(path):
    """Read a training state written by :func:`save_training_state`, refusing arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: not a valid training checkpoint ({type(error).__name__}: {error})") from None
