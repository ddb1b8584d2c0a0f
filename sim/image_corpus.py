"""CRC-valid corrupt device images: one rule of :class:`firmware.image.DeviceRules` broken (or none) at a time.

:func:`corrupt_image` takes a valid image and changes one header field, layer-table field,
weight, bias, configuration or LUT byte, or its length, then makes its trailing CRC-32 right
again (except for the ``trailer`` mutation, which breaks exactly that). What is drawn comes from
a *picker* (``integer(low, high)``, ``choice(options)``, ``binary(low, high)``), so the same
mutations serve a seeded corpus (:class:`RandomPicker`, :func:`random_corpus`) and hypothesis
(``tests/image_corpus.py``). Values are drawn near the rules' boundaries, where they are decided.
"""

import struct
import zlib

import numpy as np

from firmware.image import HEADER_FIELDS, HEADER_SIZE, TABLE_ENTRY_SIZE, TABLE_FIELDS, pack, to_bytes

__all__ = ["MUTATIONS", "sections", "set_field", "with_crc", "corrupt_image", "RandomPicker", "random_corpus",
           "small_config", "corpus_networks"]

MUTATIONS = ("none", "header", "table", "weight", "bias", "json", "lut", "encoders", "shorter", "longer", "trailer")


def small_config():
    """A fixed-point configuration with short LUTs, so that images (and their simulation) stay small."""
    from quant.fixedpoint import FixedPointConfig

    return FixedPointConfig(x_lut_size=24, h_lut_size=40)


def corpus_networks(config=None, n_steps=12):
    """Two quantized 2-layer networks of 2 classes: one a device is built with, one to load into it."""
    import torch

    from quant.model import SRCNet
    from quant.quantize import quantize_model

    nets = []
    for seed, sizes in ((31, [12, 10, 20]), (32, [10, 14, 20])):
        torch.manual_seed(seed)
        model = SRCNet(sizes, n_classes=2)
        with torch.no_grad():
            for layer in model.layers:
                layer.weight.mul_(4)
                layer.bias.uniform_(-6, -4)
        nets.append(quantize_model(model, config or small_config(), n_steps=n_steps))
    return nets


def sections(blob, layers):
    """Byte offsets of an image's sections: ``json``, ``table``, ``weights``, ``biases``, ``luts``, ``trailer``."""
    json_length = int.from_bytes(blob[14:16], "little")
    words = int.from_bytes(blob[48:52], "little")
    blocks = int.from_bytes(blob[52:56], "little")
    lanes = int.from_bytes(blob[6:8], "little")
    table = HEADER_SIZE + json_length
    weights = table + TABLE_ENTRY_SIZE * layers
    biases = weights + 2 * words * lanes
    luts = biases + 2 * blocks * lanes
    pixel_values = (len(blob) - 4 - luts - 2 * _lut_entries(blob)) // 4
    encoders = len(blob) - 4 - 4 * pixel_values
    return {"json": HEADER_SIZE, "table": table, "weights": weights, "biases": biases, "luts": luts,
            "encoders": encoders, "trailer": len(blob) - 4}


def _lut_entries(blob):
    import json

    config = json.loads(blob[HEADER_SIZE:HEADER_SIZE + int.from_bytes(blob[14:16], "little")])
    return config["x_lut_size"] + config["h_lut_size"]


def with_crc(body):
    """``body`` followed by its CRC-32 trailer."""
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def set_field(body, offset, size, value):
    """``body`` with the little-endian integer at ``offset`` replaced (wrapped to its size)."""
    body = bytearray(body)
    mask = (1 << (8 * size)) - 1
    body[offset:offset + size] = (value & mask).to_bytes(size, "little")
    return body


def _near(pick, value, low=None, high=None):
    """A value near ``value`` or a boundary, or any 32-bit value."""
    choices = [value, value - 1, value + 1, 0, 1, -1, 2 ** 15, 2 ** 31 - 1]
    choices += [b + d for b in (low, high) if b is not None for d in (-1, 0, 1)]
    return pick.choice(choices) if pick.integer(0, 3) else pick.integer(-2 ** 31, 2 ** 31 - 1)


def corrupt_image(network, lanes, pick):
    """``(mutation, blob, accepted)``: an image of ``network`` with one change drawn by ``pick``.

    ``accepted`` says whether the rules must accept it where the mutation alone decides that
    (``None`` where it depends on the value drawn).
    """
    cfg = network.config
    image = pack(network, lanes)
    blob = to_bytes(image)
    layers = len(image.layers)
    at = sections(blob, layers)
    body = bytearray(blob[:-4])
    kind = pick.choice(MUTATIONS)
    if kind == "none":
        return kind, blob, True
    if kind == "header":
        name = pick.choice(sorted(HEADER_FIELDS))
        offset, size = HEADER_FIELDS[name]
        if name in ("magic", "digest"):
            k = pick.integer(offset, offset + size - 1)
            body[k] ^= pick.integer(1, 255)
            return f"header {name}", with_crc(body), False
        current = int.from_bytes(body[offset:offset + size], "little")
        value = _near(pick, current, 0, 1 << (8 * size))
        return f"header {name}", with_crc(set_field(body, offset, size, value)), None
    if kind == "table":
        row = pick.integer(0, layers - 1)
        field = pick.choice(TABLE_FIELDS)
        offset = at["table"] + TABLE_ENTRY_SIZE * row + 4 * TABLE_FIELDS.index(field)
        current = getattr(image.layers[row], field)
        low, high = cfg.acc_shift_range if field == "acc_shift" else (0, None)
        return f"table {row}.{field}", with_crc(set_field(body, offset, 4, _near(pick, current, low, high))), None
    if kind in ("weight", "bias"):
        start, count = (at["weights"], image.weights.size) if kind == "weight" else (at["biases"], image.biases.size)
        k = pick.integer(0, count - 1)
        low, high = (-cfg.weight_max, cfg.weight_max) if kind == "weight" else (cfg.bias_min, cfg.b_h_max)
        value = pick.choice([low - 1, low, high, high + 1, -2 ** 15, 2 ** 15 - 1, cfg.bias_max])
        return kind, with_crc(set_field(body, start + 2 * k, 2, value)), bool(low <= value <= high)
    if kind == "encoders":
        q = (at["trailer"] - at["encoders"]) // 4
        which = pick.integer(0, 1)
        k = pick.integer(0, q - 1)
        current = int.from_bytes(body[at["encoders"] + 2 * (which * q + k):][:2], "little")
        value = pick.choice([current, current + 1, current - 1, 0, network.n_steps - 1, network.n_steps, 0xFFFF,
                             (1 << cfg.draw_bits), (1 << cfg.draw_bits) + 1])
        return "encoders", with_crc(set_field(body, at["encoders"] + 2 * (which * q + k), 2, value)), None
    if kind in ("json", "lut"):
        start, end = (at["json"], at["table"]) if kind == "json" else (at["luts"], at["encoders"])
        k = pick.integer(start, end - 1)
        body[k] ^= pick.integer(1, 255)
        return kind, with_crc(body), False
    if kind == "shorter":
        return kind, with_crc(body[:-pick.integer(1, 64)]), False
    if kind == "longer":
        return kind, with_crc(body + pick.binary(1, 64)), False
    wrong = bytearray(blob)   # "trailer": the CRC-32 itself is wrong
    wrong[-pick.integer(1, 4)] ^= pick.integer(1, 255)
    return kind, bytes(wrong), False


class RandomPicker:
    """A picker over a seeded numpy generator."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def integer(self, low, high):
        return int(self.rng.integers(low, high, endpoint=True))

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]

    def binary(self, low, high):
        return self.rng.integers(0, 256, self.integer(low, high), dtype=np.uint8).tobytes()


def random_corpus(network, lanes, n, seed=0):
    """``n`` corrupt images of ``network`` (see :func:`corrupt_image`), reproducible from ``seed``."""
    pick = RandomPicker(seed)
    return [corrupt_image(network, lanes, pick) for _ in range(n)]
