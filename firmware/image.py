"""The packed model the device holds: memories laid out for a core with ``lanes`` parallel lanes.

Layout (``P`` = lanes, ``nb(l) = ceil(n_out(l) / P)`` blocks of layer ``l``):

* **weights**: layer ``l``'s word for input ``j`` and output block ``b`` is at
  ``weight_base(l) + j*nb(l) + b``; lane ``p`` of it holds ``W_l[b*P + p, j]`` (0 past ``n_out``).
  A **recurrent** layer has ``n_out`` more input rows after its ``n_in``: row ``n_in + m`` holds
  ``W_rec[:, m]``, the weights of its own neuron ``m``'s spike of the previous step.
* **biases** and **neuron state**: layer ``l``'s block ``b`` is at ``block_base(l) + b``; lane
  ``p`` holds neuron ``b*P + p``. Padding lanes get the most negative bias and never spike.
* **layer table**: per layer ``n_in``, ``n_out``, ``recurrent`` (0 or 1), ``blocks``,
  ``weight_base``, ``block_base`` and ``acc_shift = weight_frac + state_frac - i_frac`` (the shift from the exact product sum
  to the synaptic state format).

Words are lists of per-lane Python ints; the gateware packs them into memory words.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["ImageError", "FitError", "LayerEntry", "DeviceImage", "DeviceLimits", "DeviceRules", "pack", "to_bytes",
           "from_bytes", "checksum", "to_network", "HEADER_SIZE", "TABLE_ENTRY_SIZE", "TABLE_FIELDS", "HEADER_FIELDS",
           "DEFAULT_LANES", "MAX_LANES"]

#: Neuron lanes of the device as built by default (``hdl.build``, the emulator, the benchmarks): the
#: shipped models fit the Arty A7-35T at this count (docs/RESULTS.md).
DEFAULT_LANES = 8
#: The most lanes an image can be packed for.
MAX_LANES = 256


class ImageError(ValueError):
    """A network cannot be packed for the requested core, or an image is corrupt."""


class FitError(ImageError):
    """A network does not fit a device's limits (or an FPGA's memories)."""


@dataclass(frozen=True)
class LayerEntry:
    """One row of the layer table."""

    n_in: int
    n_out: int
    recurrent: int
    blocks: int
    weight_base: int
    block_base: int
    acc_shift: int

    @property
    def fan_in(self):
        """Input rows of the layer's weights: ``n_in``, and ``n_out`` lateral ones when recurrent."""
        return self.n_in + (self.n_out if self.recurrent else 0)


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
    rate_table, latency_table : numpy.ndarray
        The device's image encoders (:mod:`quant.intencode`): the rate threshold (in draw units)
        and the latency spike step (``NEVER`` = 0xFFFF: none) of every pixel value.
    """

    lanes: int
    layers: list
    weights: np.ndarray
    biases: np.ndarray
    n_classes: int
    n_steps: int
    config: object
    rate_table: np.ndarray = None
    latency_table: np.ndarray = None

    def __post_init__(self):
        from quant import intencode

        if self.rate_table is None:
            self.rate_table = np.asarray(intencode.rate_thresholds(self.config), np.int64)
        if self.latency_table is None:
            self.latency_table = np.asarray(intencode.latency_table(self.config, self.n_steps), np.int64)

    @property
    def state_blocks(self):
        return len(self.biases)

    @property
    def max_blocks(self):
        return max(layer.blocks for layer in self.layers)

    @property
    def max_fan_in(self):
        return max(layer.fan_in for layer in self.layers)

    @property
    def recurrent(self):
        """Indices of the recurrent layers."""
        return tuple(k for k, e in enumerate(self.layers) if e.recurrent)


def pack(network, lanes):
    """Pack a :class:`quant.golden.QuantizedNetwork` for a core with ``lanes`` lanes."""
    if lanes < 1:
        raise ImageError(f"lanes must be at least 1, got {lanes}")
    cfg = network.config
    entries, weight_rows, bias_rows = [], [], []
    weight_base = block_base = 0
    for k, layer in enumerate(network.layers):
        blocks = -(-layer.n_out // lanes)
        padded = np.zeros((blocks * lanes, layer.fan_in), np.int64)
        padded[:layer.n_out, :layer.n_in] = layer.weight
        if layer.recurrent:
            padded[:layer.n_out, layer.n_in:] = layer.weight_rec
        # (fan_in, blocks, lanes): input-major, then output block, then lane.
        weight_rows.append(padded.T.reshape(layer.fan_in, blocks, lanes).reshape(-1, lanes))
        bias = np.full(blocks * lanes, cfg.bias_min, np.int64)
        bias[:layer.n_out] = layer.bias
        bias_rows.append(bias.reshape(blocks, lanes))
        acc_shift = layer.weight_frac + cfg.state_frac - cfg.i_frac
        entries.append(LayerEntry(layer.n_in, layer.n_out, int(layer.recurrent), blocks, weight_base, block_base,
                                  acc_shift))
        weight_base += layer.fan_in * blocks
        block_base += blocks
    return DeviceImage(lanes, entries, np.concatenate(weight_rows), np.concatenate(bias_rows),
                       network.n_classes, network.n_steps, cfg)


# -- the image file -------------------------------------------------------------------------------
#
#   offset  size  field
#   0       4     magic b"SRCI"
#   4       2     format version (3)
#   6       2     lanes
#   8       2     layers L
#   10      2     classes
#   12      2     steps T
#   14      2     config JSON length J
#   16      32    SHA-256 digest of the fixed-point configuration
#   48      4     weight words W
#   52      4     state blocks B
#   56      J     configuration JSON (canonical, UTF-8)
#   ...     28*L  layer table: n_in, n_out, recurrent, blocks, weight_base, block_base (u32), acc_shift (i32)
#   ...     2*W*lanes  weights, int16
#   ...     2*B*lanes  biases, int16
#   ...     2*X   x LUT, uint16 (X entries from the configuration)
#   ...     2*H   h LUT, uint16
#   ...     2*Q   rate thresholds, uint16 (Q = 2**pixel_bits values)
#   ...     2*Q   latency steps, uint16 (0xFFFF: never)
#   ...     4     CRC-32 of all the bytes before it
#
# All integers little-endian.

import json as _json
import struct as _struct
import zlib as _zlib

MAGIC = b"SRCI"
VERSION = 3
_HEADER = _struct.Struct("<4sHHHHHH32sII")
_ENTRY = _struct.Struct("<IIIIIIi")
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
        out += _ENTRY.pack(*(getattr(e, name) for name in TABLE_FIELDS))
    out += np.asarray(image.weights, "<i2").tobytes()
    out += np.asarray(image.biases, "<i2").tobytes()
    out += np.asarray(cfg.x_lut, "<u2").tobytes()
    out += np.asarray(cfg.h_lut, "<u2").tobytes()
    out += np.asarray(image.rate_table, "<u2").tobytes()
    out += np.asarray(image.latency_table, "<u2").tobytes()
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
                    + 2 * (config.x_lut_size + config.h_lut_size) + 4 * (1 << config.pixel_bits) + 4)
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
    pos += 2 * config.h_lut_size
    if not (np.array_equal(x_lut, config.x_lut) and np.array_equal(h_lut, config.h_lut)):
        raise ImageError("image LUTs differ from those of its configuration")
    q = 1 << config.pixel_bits
    rate_table = np.frombuffer(blob, "<u2", q, pos).astype(np.int64)
    latency_table = np.frombuffer(blob, "<u2", q, pos + 2 * q).astype(np.int64)
    _check_tables(rate_table, latency_table, config, n_steps)
    image = DeviceImage(lanes, layers, weights, biases, n_classes, n_steps, config, rate_table, latency_table)
    _check_table(image)
    return image


def _check_tables(rate_table, latency_table, config, n_steps):
    """Rule 5 of :class:`DeviceRules` on the encoder tables."""
    if rate_table.max(initial=0) > 1 << config.draw_bits:
        raise ImageError(f"a rate threshold above 2**{config.draw_bits} (draw_bits)")
    if ((latency_table >= n_steps) & (latency_table != 0xFFFF)).any():
        raise ImageError(f"a latency step at or past T = {n_steps} (0xFFFF is 'never')")


def _walk_table(layers, lanes):
    """The consistency rules every layer table obeys (the rows chain, each row's blocks and bases
    follow from the rows before it); returns the weight words and blocks the table covers."""
    weight_base = block_base = 0
    for k, e in enumerate(layers):
        if e.blocks != -(-e.n_out // lanes):
            raise ImageError(f"layer table row {k}: {e.blocks} blocks for {e.n_out} neurons at {lanes} lanes")
        if e.weight_base != weight_base or e.block_base != block_base:
            raise ImageError(f"layer table row {k}: bases ({e.weight_base}, {e.block_base}) should be "
                             f"({weight_base}, {block_base})")
        if e.recurrent not in (0, 1):
            raise ImageError(f"layer table row {k}: recurrent = {e.recurrent}, not 0 or 1")
        if k and e.n_in != layers[k - 1].n_out:
            raise ImageError(f"layer {k} takes {e.n_in} inputs but layer {k - 1} has {layers[k - 1].n_out} neurons")
        weight_base += e.fan_in * e.blocks
        block_base += e.blocks
    return weight_base, block_base


def _check_table(image):
    """An image's table against its own memories and configuration."""
    words, blocks = _walk_table(image.layers, image.lanes)
    if words != len(image.weights) or blocks != image.state_blocks:
        raise ImageError("layer table does not cover the weight and bias memories")
    if np.abs(image.weights).max(initial=0) > image.config.weight_max:
        raise ImageError(f"weights exceed the {image.config.weight_width}-bit range")
    if image.biases.size and (image.biases.min() < image.config.bias_min or image.biases.max() > image.config.bias_max):
        raise ImageError(f"biases exceed the {image.config.bias_width}-bit range")


class DeviceLimits:
    """The shapes a device is built to hold; a network must fit them.

    Parameters
    ----------
    max_layers, max_inputs, max_neurons : int
        Layers, inputs of layer 0, and neurons of any one layer.
    weight_words, state_blocks : int
        Depths of the weight memory and of the bias/state/spike memories.
    max_steps : int
        Longest sequence ``T``.
    recurrent : tuple of int
        The layers built recurrent (each has its own spike queue in the core): a network must have
        exactly these recurrent layers.
    """

    def __init__(self, max_layers, max_inputs, max_neurons, weight_words, state_blocks, max_steps=1024, recurrent=()):
        self.max_layers, self.max_inputs, self.max_neurons = max_layers, max_inputs, max_neurons
        self.weight_words, self.state_blocks, self.max_steps = weight_words, state_blocks, max_steps
        self.recurrent = tuple(sorted(set(int(k) for k in recurrent)))
        if any(not 0 <= k < max_layers for k in self.recurrent):
            raise ValueError(f"recurrent layers {self.recurrent} outside 0..{max_layers - 1}")

    def __repr__(self):
        return (f"DeviceLimits({self.max_layers}, {self.max_inputs}, {self.max_neurons}, {self.weight_words}, "
                f"{self.state_blocks}, {self.max_steps}, recurrent={self.recurrent})")

    @property
    def max_fan_in(self):
        """The most input rows of any layer: inputs or neurons, and a layer's own neurons when recurrent."""
        return max(self.max_inputs, self.max_neurons) + (self.max_neurons if self.recurrent else 0)

    @property
    def recurrent_mask(self):
        """The recurrent layers as a bit mask (bit ``k``: layer ``k``), as IDENTITY carries them."""
        if any(k >= 16 for k in self.recurrent):
            raise FitError(f"recurrent layers {list(self.recurrent)}: IDENTITY names recurrent layers among the first 16")
        return sum(1 << k for k in self.recurrent)

    def __eq__(self, other):
        return isinstance(other, DeviceLimits) and repr(self) == repr(other)

    @classmethod
    def exact(cls, image):
        """The smallest limits that hold ``image``."""
        return cls(len(image.layers), image.layers[0].n_in, max(e.n_out for e in image.layers),
                   len(image.weights), image.state_blocks, max(image.n_steps, 2), image.recurrent)

    def problems(self, image):
        """What of ``image`` does not fit, as a list of phrases (empty when it fits)."""
        problems = []
        if len(image.layers) > self.max_layers:
            problems.append(f"{len(image.layers)} layers > {self.max_layers}")
        if image.layers[0].n_in > self.max_inputs:
            problems.append(f"{image.layers[0].n_in} inputs > {self.max_inputs}")
        if max(e.n_out for e in image.layers) > self.max_neurons:
            problems.append(f"a layer of {max(e.n_out for e in image.layers)} neurons > {self.max_neurons}")
        if len(image.weights) > self.weight_words:
            problems.append(f"{len(image.weights)} weight words > {self.weight_words}")
        if image.state_blocks > self.state_blocks:
            problems.append(f"{image.state_blocks} neuron blocks > {self.state_blocks}")
        if image.n_steps > self.max_steps:
            problems.append(f"T = {image.n_steps} > {self.max_steps}")
        if image.recurrent != self.recurrent:
            problems.append(f"recurrent layers {list(image.recurrent)}, the core is built for {list(self.recurrent)}")
        return problems

    def check(self, image):
        """Raise :class:`FitError` naming everything of ``image`` that does not fit."""
        problems = self.problems(image)
        if problems:
            raise FitError("network does not fit the core: " + "; ".join(problems))


#: The fixed header's fields: name -> (offset, size). See the file layout above.
HEADER_FIELDS = {"magic": (0, 4), "version": (4, 2), "lanes": (6, 2), "layers": (8, 2), "classes": (10, 2),
                 "steps": (12, 2), "json_length": (14, 2), "digest": (16, 32), "weight_words": (48, 4),
                 "state_blocks": (52, 4)}
#: Fields of a layer-table row, in file order (and in the order of the core's table addresses).
TABLE_FIELDS = ("n_in", "n_out", "recurrent", "blocks", "weight_base", "block_base", "acc_shift")


class DeviceRules:
    """What a device accepts as an image: the one definition the gateware loader and the emulator follow.

    A device is built for one fixed-point configuration, one lane count, one number of layers and
    of classes (those of the network baked into it) and :class:`DeviceLimits`. An image is
    accepted when, besides the framing checks of the load (its length and CRC-32 as COMMIT
    names them, and its own trailing CRC-32):

    1. the header's constant fields equal the device's (:meth:`header_bytes`, all but ``steps``,
       ``weight_words`` and ``state_blocks``): magic, version, lanes, layers, classes, the length
       and digest of the configuration;
    2. ``steps``, ``weight_words`` and ``state_blocks`` lie in :meth:`header_ranges`;
    3. every layer-table field lies in :meth:`table_ranges` and the table is the one
       :func:`pack` writes: ``recurrent`` as the device's layer is built (``limits.recurrent``),
       ``blocks = ceil(n_out / lanes)``, ``weight_base`` and ``block_base`` the running sums of
       ``(n_in + recurrent * n_out) * blocks`` and ``blocks``, ``n_in`` of a layer equal to
       ``n_out`` of the one below, ``n_classes * group_size`` neurons in the output layer, and the
       sums equal to the header's ``weight_words`` and ``state_blocks``;
    4. every weight lies in ``[-weight_max, weight_max]`` and every bias in ``[bias_min, b_h_max]``
       (padding lanes included; the core never lets a padding lane spike, so their values do not
       matter otherwise);
    5. the configuration JSON and both LUTs, which a device cannot change, have together the CRC-32
       of the device's own (:attr:`fixed_sections_crc`): the gateware compares that one number
       instead of holding a copy of the bytes; the encoder tables hold rate thresholds of at
       most ``2**draw_bits`` and latency steps below ``T`` (or ``0xFFFF``, never);
    6. the file is exactly as long as its header says.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    lanes, layers, classes : int
    limits : DeviceLimits
    """

    def __init__(self, config, lanes, layers, classes, limits):
        self.config, self.lanes, self.layers, self.classes, self.limits = config, lanes, layers, classes, limits
        if config.draw_bits > 16:
            raise FitError(f"draw_bits = {config.draw_bits}: the image's rate thresholds are 16-bit")
        if limits.max_layers < layers:
            raise FitError(f"limits allow {limits.max_layers} layers, the device computes {layers}")

    @classmethod
    def for_image(cls, image, limits=None):
        """The rules of a device built with ``image`` baked in (and ``limits``, default exactly its shapes)."""
        limits = limits or DeviceLimits.exact(image)
        limits.check(image)
        return cls(image.config, image.lanes, len(image.layers), image.n_classes, limits)

    # -- the rules as data (the gateware loader is generated from these) ------------------------------
    def config_json(self):
        return _json.dumps(self.config.to_dict(), sort_keys=True).encode()

    def header_bytes(self, steps=0, weight_words=0, state_blocks=0):
        """The header a valid image starts with (the variable fields as given)."""
        return _HEADER.pack(MAGIC, VERSION, self.lanes, self.layers, self.classes, steps, len(self.config_json()),
                            bytes.fromhex(self.config.digest()), weight_words, state_blocks)

    def header_ranges(self):
        """The variable header fields: name -> ``(low, high)``, inclusive."""
        return {"steps": (1, self.limits.max_steps), "weight_words": (1, self.limits.weight_words),
                "state_blocks": (1, self.limits.state_blocks)}

    @property
    def max_blocks(self):
        return -(-self.limits.max_neurons // self.lanes)

    def table_ranges(self, row):
        """The fields of layer-table row ``row``: name -> ``(low, high)``, inclusive."""
        flag = int(row in self.limits.recurrent)
        return {"n_in": (1, self.limits.max_inputs if row == 0 else self.limits.max_neurons),
                "n_out": (1, self.limits.max_neurons), "recurrent": (flag, flag), "blocks": (1, self.max_blocks),
                "weight_base": (0, self.limits.weight_words - 1), "block_base": (0, self.limits.state_blocks - 1),
                "acc_shift": self.config.acc_shift_range}

    @property
    def weight_range(self):
        return -self.config.weight_max, self.config.weight_max

    @property
    def bias_range(self):
        return self.config.bias_min, self.config.b_h_max

    @property
    def output_neurons(self):
        """Neurons of the output layer: ``classes * group_size``."""
        return self.classes * self.config.params.group_size

    @property
    def fixed_sections_crc(self):
        """CRC-32 of the configuration JSON followed by the x and h LUTs, as a valid image holds them."""
        crc = _zlib.crc32(self.config_json())
        crc = _zlib.crc32(np.asarray(self.config.x_lut, "<u2").tobytes(), crc)
        return _zlib.crc32(np.asarray(self.config.h_lut, "<u2").tobytes(), crc)

    def image_size(self, weight_words, state_blocks):
        """Bytes of an image with these memory depths."""
        return (HEADER_SIZE + len(self.config_json()) + TABLE_ENTRY_SIZE * self.layers
                + 2 * self.lanes * (weight_words + state_blocks)
                + 2 * (self.config.x_lut_size + self.config.h_lut_size) + 4 * self.pixel_values + 4)

    @property
    def pixel_values(self):
        """Entries of each encoder table: ``2**pixel_bits``."""
        return 1 << self.config.pixel_bits

    @property
    def max_image_size(self):
        """The longest image the device can accept."""
        return self.image_size(self.limits.weight_words, self.limits.state_blocks)

    # -- checking a whole image -----------------------------------------------------------------------
    def validate(self, blob):
        """Check an image file against every rule; return its :class:`DeviceImage` or raise :class:`ImageError`."""
        blob = bytes(blob)
        if len(blob) < HEADER_SIZE + 4:
            raise ImageError(f"image is {len(blob)} bytes, shorter than its header")
        fields = dict(zip(HEADER_FIELDS, _HEADER.unpack_from(blob)))
        expected = dict(zip(HEADER_FIELDS, _HEADER.unpack(self.header_bytes())))
        for name in ("magic", "version", "lanes", "layers", "classes", "json_length", "digest"):
            if fields[name] != expected[name]:
                shown = (lambda v: v.hex()[:16]) if name == "digest" else repr
                raise ImageError(f"image header: {name} is {shown(fields[name])}, the device needs {shown(expected[name])}")
        for name, (low, high) in self.header_ranges().items():
            if not low <= fields[name] <= high:
                raise ImageError(f"image header: {name} = {fields[name]} outside {low}..{high}")
        words, blocks = fields["weight_words"], fields["state_blocks"]
        size = self.image_size(words, blocks)
        if len(blob) != size:
            raise ImageError(f"image is {len(blob)} bytes, its header says {size}")
        if _zlib.crc32(blob[:-4]) != checksum(blob):
            raise ImageError("image CRC-32 mismatch: the file is corrupt")
        pos = HEADER_SIZE + fields["json_length"]
        layers = [LayerEntry(*_ENTRY.unpack_from(blob, pos + _ENTRY.size * k)) for k in range(self.layers)]
        self._check_table(layers, words, blocks)
        table_end = pos + _ENTRY.size * self.layers
        weights = np.frombuffer(blob, "<i2", words * self.lanes, table_end).astype(np.int64).reshape(words, self.lanes)
        biases = np.frombuffer(blob, "<i2", blocks * self.lanes, table_end + 2 * words * self.lanes).astype(np.int64)
        for name, values, (low, high) in (("weight", weights, self.weight_range), ("bias", biases, self.bias_range)):
            if values.min() < low or values.max() > high:
                raise ImageError(f"a {name} outside {low}..{high}")
        tables_at = len(blob) - 4 - 4 * self.pixel_values
        luts = blob[table_end + 2 * self.lanes * (words + blocks):tables_at]
        crc = _zlib.crc32(luts, _zlib.crc32(blob[HEADER_SIZE:pos]))
        if crc != self.fixed_sections_crc:
            raise ImageError("image configuration or LUTs differ from the device's")
        q = self.pixel_values
        rate_table = np.frombuffer(blob, "<u2", q, tables_at).astype(np.int64)
        latency_table = np.frombuffer(blob, "<u2", q, tables_at + 2 * q).astype(np.int64)
        _check_tables(rate_table, latency_table, self.config, fields["steps"])
        return DeviceImage(self.lanes, layers, weights, biases.reshape(blocks, self.lanes), self.classes,
                           fields["steps"], self.config, rate_table, latency_table)

    def _check_table(self, layers, words, blocks):
        for k, e in enumerate(layers):
            for name, (low, high) in self.table_ranges(k).items():
                if not low <= getattr(e, name) <= high:
                    raise ImageError(f"layer table row {k}: {name} = {getattr(e, name)} outside {low}..{high}")
        weight_base, block_base = _walk_table(layers, self.lanes)
        if layers[-1].n_out != self.output_neurons:
            raise ImageError(f"output layer has {layers[-1].n_out} neurons, the readout needs {self.output_neurons}")
        if weight_base != words or block_base != blocks:
            raise ImageError(f"layer table covers {weight_base} weight words and {block_base} blocks, the header "
                             f"says {words} and {blocks}")


def to_network(image):
    """The :class:`quant.golden.QuantizedNetwork` an image holds (the inverse of :func:`pack`)."""
    from quant.golden import QuantizedLayer, QuantizedNetwork

    cfg, layers = image.config, []
    for e in image.layers:
        rows = image.weights[e.weight_base:e.weight_base + e.fan_in * e.blocks].reshape(e.fan_in, e.blocks * image.lanes)
        bias = image.biases[e.block_base:e.block_base + e.blocks].reshape(-1)[:e.n_out]
        weight = rows[:, :e.n_out].T.copy()
        layers.append(QuantizedLayer(weight[:, :e.n_in].copy(), e.acc_shift - cfg.state_frac + cfg.i_frac, bias.copy(),
                                     weight[:, e.n_in:].copy() if e.recurrent else None))
    return QuantizedNetwork(layers, image.n_classes, cfg, n_steps=image.n_steps)
