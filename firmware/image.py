"""The packed model the device holds: memories laid out for a core with ``lanes`` parallel lanes.

Layout (``P`` = lanes, ``nb(l) = ceil(n_out(l) / P)`` blocks of layer ``l``):

* **weights**: layer ``l``'s word for input ``j`` and output block ``b`` is at
  ``weight_base(l) + j*nb(l) + b``; lane ``p`` of it holds ``W_l[b*P + p, j]`` (0 past ``n_out``).
* **biases** and **neuron state**: layer ``l``'s block ``b`` is at ``block_base(l) + b``; lane
  ``p`` holds neuron ``b*P + p``. Padding lanes get the most negative bias and never spike.
* **layer table**: per layer ``n_in``, ``n_out``, ``blocks``, ``weight_base``, ``block_base``
  and ``acc_shift = weight_frac + state_frac - i_frac`` (the shift from the exact product sum
  to the synaptic state format).

Words are lists of per-lane Python ints; the gateware packs them into memory words.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageError", "LayerEntry", "DeviceImage", "pack"]


class ImageError(ValueError):
    """A network cannot be packed for the requested core, or an image is corrupt."""


@dataclass(frozen=True)
class LayerEntry:
    """One row of the layer table."""

    n_in: int
    n_out: int
    blocks: int
    weight_base: int
    block_base: int
    acc_shift: int


@dataclass
class DeviceImage:
    """A quantized network packed for a core of ``lanes`` lanes.

    Attributes
    ----------
    lanes : int
    layers : list of LayerEntry
    weights : numpy.ndarray
        ``int64`` ``(weight_words, lanes)``.
    biases : numpy.ndarray
        ``int64`` ``(state_blocks, lanes)``.
    n_classes, n_steps : int
    config : quant.fixedpoint.FixedPointConfig
    """

    lanes: int
    layers: list
    weights: np.ndarray
    biases: np.ndarray
    n_classes: int
    n_steps: int
    config: object

    @property
    def state_blocks(self):
        return len(self.biases)

    @property
    def max_blocks(self):
        return max(layer.blocks for layer in self.layers)

    @property
    def max_fan_in(self):
        return max(layer.n_in for layer in self.layers)


def pack(network, lanes):
    """Pack a :class:`quant.golden.QuantizedNetwork` for a core with ``lanes`` lanes."""
    if lanes < 1:
        raise ImageError(f"lanes must be at least 1, got {lanes}")
    cfg = network.config
    entries, weight_rows, bias_rows = [], [], []
    weight_base = block_base = 0
    for k, layer in enumerate(network.layers):
        blocks = -(-layer.n_out // lanes)
        padded = np.zeros((blocks * lanes, layer.n_in), np.int64)
        padded[:layer.n_out] = layer.weight
        # (n_in, blocks, lanes): input-major, then output block, then lane.
        weight_rows.append(padded.T.reshape(layer.n_in, blocks, lanes).reshape(-1, lanes))
        bias = np.full(blocks * lanes, cfg.bias_min, np.int64)
        bias[:layer.n_out] = layer.bias
        bias_rows.append(bias.reshape(blocks, lanes))
        acc_shift = layer.weight_frac + cfg.state_frac - cfg.i_frac
        entries.append(LayerEntry(layer.n_in, layer.n_out, blocks, weight_base, block_base, acc_shift))
        weight_base += layer.n_in * blocks
        block_base += blocks
    return DeviceImage(lanes, entries, np.concatenate(weight_rows), np.concatenate(bias_rows),
                       network.n_classes, network.n_steps, cfg)
