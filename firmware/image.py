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

__all__ = ["ImageError", "LayerEntry", "DeviceImage", "pack", "to_bytes", "from_bytes", "checksum", "to_network",
           "HEADER_SIZE", "TABLE_ENTRY_SIZE"]


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


# -- the image file -------------------------------------------------------------------------------
#
#   offset  size  field
#   0       4     magic b"SRCI"
#   4       2     format version (1)
#   6       2     lanes
#   8       2     layers L
#   10      2     classes
#   12      2     steps T
#   14      2     config JSON length J
#   16      32    SHA-256 digest of the fixed-point configuration
#   48      4     weight words W
#   52      4     state blocks B
#   56      J     configuration JSON (canonical, UTF-8)
#   ...     24*L  layer table: n_in, n_out, blocks, weight_base, block_base (u32), acc_shift (i32)
#   ...     2*W*lanes  weights, int16
#   ...     2*B*lanes  biases, int16
#   ...     2*X   x LUT, uint16 (X entries from the configuration)
#   ...     2*H   h LUT, uint16
#   ...     4     CRC-32 of all the bytes before it
#
# All integers little-endian.

import json as _json
import struct as _struct
import zlib as _zlib

MAGIC = b"SRCI"
VERSION = 1
_HEADER = _struct.Struct("<4sHHHHHH32sII")
_ENTRY = _struct.Struct("<IIIIIi")
#: Bytes of the fixed header, and of one layer-table row.
HEADER_SIZE, TABLE_ENTRY_SIZE = _HEADER.size, _ENTRY.size


def to_bytes(image):
    """Serialise a :class:`DeviceImage` into the image file format."""
    cfg = image.config
    config_json = _json.dumps(cfg.to_dict(), sort_keys=True).encode()
    out = bytearray(_HEADER.pack(MAGIC, VERSION, image.lanes, len(image.layers), image.n_classes, image.n_steps,
                                 len(config_json), bytes.fromhex(cfg.digest()), len(image.weights), image.state_blocks))
    out += config_json
    for e in image.layers:
        out += _ENTRY.pack(e.n_in, e.n_out, e.blocks, e.weight_base, e.block_base, e.acc_shift)
    out += np.asarray(image.weights, "<i2").tobytes()
    out += np.asarray(image.biases, "<i2").tobytes()
    out += np.asarray(cfg.x_lut, "<u2").tobytes()
    out += np.asarray(cfg.h_lut, "<u2").tobytes()
    out += _struct.pack("<I", _zlib.crc32(out))
    return bytes(out)


def checksum(blob):
    """The CRC-32 an image file ends with (the device reports it after loading)."""
    return _struct.unpack_from("<I", blob, len(blob) - 4)[0]


def from_bytes(blob, expected_digest=None):
    """Read and validate an image file; return the :class:`DeviceImage`.

    Raises :class:`ImageError` naming the problem: bad magic or version, a length that does not
    match the header, a CRC mismatch, a configuration whose digest or LUTs do not match, or a
    layer table that is not consistent with the weights.
    """
    from quant.fixedpoint import FixedPointConfig

    blob = bytes(blob)
    if len(blob) < _HEADER.size + 4:
        raise ImageError(f"image is {len(blob)} bytes, shorter than its header")
    magic, version, lanes, n_layers, n_classes, n_steps, jlen, digest, words, blocks = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ImageError(f"not a device image (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ImageError(f"image format version {version}, this reader knows {VERSION}")
    if _zlib.crc32(blob[:-4]) != checksum(blob):
        raise ImageError("image CRC-32 mismatch: the file is corrupt")
    pos = _HEADER.size
    try:
        config = FixedPointConfig.from_dict(_json.loads(blob[pos:pos + jlen]))
    except (ValueError, TypeError, KeyError) as error:
        raise ImageError(f"image configuration unreadable ({error})") from None
    pos += jlen
    if config.digest() != digest.hex():
        raise ImageError("image configuration does not match its digest")
    if expected_digest is not None and digest.hex() != expected_digest:
        raise ImageError(f"image was built for configuration {digest.hex()[:16]}, device has {expected_digest[:16]}")
    expected_len = (pos + _ENTRY.size * n_layers + 2 * lanes * (words + blocks)
                    + 2 * (config.x_lut_size + config.h_lut_size) + 4)
    if len(blob) != expected_len:
        raise ImageError(f"image is {len(blob)} bytes, its header says {expected_len}")
    layers = [LayerEntry(*_ENTRY.unpack_from(blob, pos + _ENTRY.size * k)) for k in range(n_layers)]
    pos += _ENTRY.size * n_layers
    weights = np.frombuffer(blob, "<i2", words * lanes, pos).astype(np.int64).reshape(words, lanes)
    pos += 2 * words * lanes
    biases = np.frombuffer(blob, "<i2", blocks * lanes, pos).astype(np.int64).reshape(blocks, lanes)
    pos += 2 * blocks * lanes
    x_lut = np.frombuffer(blob, "<u2", config.x_lut_size, pos)
    pos += 2 * config.x_lut_size
    h_lut = np.frombuffer(blob, "<u2", config.h_lut_size, pos)
    if not (np.array_equal(x_lut, config.x_lut) and np.array_equal(h_lut, config.h_lut)):
        raise ImageError("image LUTs differ from those of its configuration")
    image = DeviceImage(lanes, layers, weights, biases, n_classes, n_steps, config)
    _check_table(image)
    return image


def _check_table(image):
    weight_base = block_base = 0
    for k, e in enumerate(image.layers):
        if e.blocks != -(-e.n_out // image.lanes) or e.weight_base != weight_base or e.block_base != block_base:
            raise ImageError(f"layer table row {k} is inconsistent: {e}")
        if k and e.n_in != image.layers[k - 1].n_out:
            raise ImageError(f"layer {k} takes {e.n_in} inputs but layer {k - 1} has {image.layers[k - 1].n_out} neurons")
        weight_base += e.n_in * e.blocks
        block_base += e.blocks
    if weight_base != len(image.weights) or block_base != image.state_blocks:
        raise ImageError("layer table does not cover the weight and bias memories")
    if np.abs(image.weights).max(initial=0) > image.config.weight_max:
        raise ImageError(f"weights exceed the {image.config.weight_width}-bit range")
    if image.biases.size and (image.biases.min() < image.config.bias_min or image.biases.max() > image.config.bias_max):
        raise ImageError(f"biases exceed the {image.config.bias_width}-bit range")


def to_network(image):
    """The :class:`quant.golden.QuantizedNetwork` an image holds (the inverse of :func:`pack`)."""
    from quant.golden import QuantizedLayer, QuantizedNetwork

    cfg, layers = image.config, []
    for e in image.layers:
        rows = image.weights[e.weight_base:e.weight_base + e.n_in * e.blocks].reshape(e.n_in, e.blocks * image.lanes)
        bias = image.biases[e.block_base:e.block_base + e.blocks].reshape(-1)[:e.n_out]
        layers.append(QuantizedLayer(rows[:, :e.n_out].T.copy(), e.acc_shift - cfg.state_frac + cfg.i_frac, bias.copy()))
    return QuantizedNetwork(layers, image.n_classes, cfg, n_steps=image.n_steps)
