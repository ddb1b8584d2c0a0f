import struct
import zlib

import numpy as np
import pytest
import torch

from firmware.image import FitError, ImageError, checksum, from_bytes, pack, to_bytes, to_network
from quant.fixedpoint import DEFAULT
from quant.model import SRCNet
from quant.quantize import quantize_model


@pytest.fixture
def network():
    torch.manual_seed(0)
    return quantize_model(SRCNet([30, 17, 100]), n_steps=50)


@pytest.mark.parametrize("lanes", [1, 4, 7])
def test_pack_layout_and_round_trip(network, lanes):
    image = pack(network, lanes)
    e = image.layers[1]
    assert e.blocks == -(-100 // lanes) and e.weight_base == 30 * -(-17 // lanes)
    # Lane p of word (j, b) of layer 1 is W[b*lanes + p, j].
    j, b, p = 5, 1, lanes - 1
    if b * lanes + p < 100:
        assert image.weights[e.weight_base + j * e.blocks + b, p] == network.layers[1].weight[b * lanes + p, j]
    back = to_network(from_bytes(to_bytes(image), DEFAULT.digest()))
    for a, c in zip(network.layers, back.layers):
        assert a.weight_frac == c.weight_frac and np.array_equal(a.weight, c.weight) and np.array_equal(a.bias, c.bias)


@pytest.mark.parametrize("lanes", [1, 4, 7])
def test_a_recurrent_layer_packs_its_lateral_rows_after_its_inputs(lanes):
    torch.manual_seed(0)
    model = SRCNet([30, 17, 100], recurrent=[0])
    with torch.no_grad():
        model.layers[0].weight_rec.uniform_(-0.5, 0.5)
    network = quantize_model(model, n_steps=50)
    image = pack(network, lanes)
    e0, e1 = image.layers
    assert (e0.recurrent, e0.fan_in, e1.recurrent) == (1, 47, 0)
    assert e1.weight_base == 47 * e0.blocks and image.recurrent == (0,)
    # Row n_in + m of layer 0 holds W_rec[:, m]: lane p of block b is neuron b*lanes + p.
    m, b, p = 3, 0, min(lanes, 17) - 1
    assert image.weights[(30 + m) * e0.blocks + b, p] == network.layers[0].weight_rec[b * lanes + p, m]
    back = to_network(from_bytes(to_bytes(image), DEFAULT.digest()))
    assert back.recurrent == [0]
    for a, c in zip(network.layers, back.layers):
        assert np.array_equal(a.weight, c.weight) and (a.weight_rec is None) == (c.weight_rec is None)
    assert np.array_equal(back.layers[0].weight_rec, network.layers[0].weight_rec)


def test_a_device_takes_only_its_own_recurrent_layers(network):
    from firmware.image import DeviceLimits, DeviceRules

    torch.manual_seed(0)
    recurrent = pack(quantize_model(SRCNet([30, 17, 100], recurrent=[0]), n_steps=50), 4)
    feed_forward = pack(network, 4)
    limits = DeviceLimits.exact(recurrent)
    assert limits.recurrent == (0,) and limits.max_fan_in == max(30, 100) + 100 and limits.recurrent_mask == 1
    rules = DeviceRules.for_image(recurrent)
    assert rules.validate(to_bytes(recurrent)).recurrent == (0,)
    with pytest.raises(ImageError, match=r"row 0: recurrent = 0 outside 1..1"):
        rules.validate(to_bytes(feed_forward))
    with pytest.raises(FitError, match=r"recurrent layers \[0\], the core is built for \[\]"):
        DeviceLimits.exact(feed_forward).check(recurrent)


def _recrc(blob):
    body = bytes(blob[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def test_corruptions_are_named(network):
    blob = to_bytes(pack(network, 4))
    assert checksum(blob) == zlib.crc32(blob[:-4])
    flipped = bytearray(blob)
    flipped[100] ^= 1
    with pytest.raises(ImageError, match="CRC-32 mismatch"):
        from_bytes(bytes(flipped))
    with pytest.raises(ImageError, match="magic"):
        from_bytes(_recrc(b"XXXX" + blob[4:]))
    with pytest.raises(ImageError, match="shorter than its header"):
        from_bytes(blob[:20])
    with pytest.raises(ImageError, match="header says"):
        from_bytes(_recrc(blob[:-6] + blob[-4:]))
    lut_tampered = bytearray(blob)
    lut_tampered[-4 - 4 * 256 - 8] ^= 1   # inside the h LUT (the two 256-entry encoder tables follow it)
    with pytest.raises(ImageError, match="LUTs differ"):
        from_bytes(_recrc(bytes(lut_tampered)))
    with pytest.raises(ImageError, match="built for configuration"):
        from_bytes(blob, expected_digest="00" * 32)


# -- the device's rules (firmware.image.DeviceRules) ----------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st

from firmware.image import HEADER_FIELDS, TABLE_ENTRY_SIZE, TABLE_FIELDS, DeviceLimits, DeviceRules
from tests.image_corpus import baked_and_other, corrupt_images, sections, set_field, with_crc

BAKED, OTHER = baked_and_other()
RULES = DeviceRules.for_image(pack(BAKED, 4), DeviceLimits(2, 16, 24, 200, 20, 16))


def test_a_packed_image_is_accepted_and_read_back():
    image = pack(OTHER, 4)
    got = RULES.validate(to_bytes(image))
    assert got.layers == image.layers and got.n_steps == image.n_steps and got.n_classes == image.n_classes
    assert np.array_equal(got.weights, image.weights) and np.array_equal(got.biases, image.biases)


def _table(body, row, field, value):
    at = sections(bytes(body) + b"\0" * 4, 2)
    return set_field(body, at["table"] + TABLE_ENTRY_SIZE * row + 4 * TABLE_FIELDS.index(field), 4, value)


def _header(body, name, value):
    offset, size = HEADER_FIELDS[name]
    return set_field(body, offset, size, value)


def _value(body, section, index, value):
    return set_field(body, sections(bytes(body) + b"\0" * 4, 2)[section] + 2 * index, 2, value)


CASES = {
    "lanes": (lambda b: _header(b, "lanes", 8), "lanes is 8, the device needs 4"),
    "layers": (lambda b: _header(b, "layers", 3), "layers is 3, the device needs 2"),
    "classes": (lambda b: _header(b, "classes", 3), "classes is 3"),
    "version": (lambda b: _header(b, "version", 1), "version is 1"),
    "T = 0": (lambda b: _header(b, "steps", 0), "steps = 0 outside 1..16"),
    "T too long": (lambda b: _header(b, "steps", 17), "steps = 17 outside 1..16"),
    "words 0": (lambda b: _header(b, "weight_words", 0), "weight_words = 0 outside"),
    "n_out too big": (lambda b: _table(b, 0, "n_out", 25), "row 0: n_out = 25 outside 1..24"),
    "acc_shift 40": (lambda b: _table(b, 1, "acc_shift", 40), "row 1: acc_shift = 40 outside -2..10"),
    "acc_shift -30": (lambda b: _table(b, 1, "acc_shift", -30), "row 1: acc_shift = -30 outside -2..10"),
    "blocks": (lambda b: _table(b, 0, "blocks", 3), "3 blocks for 14 neurons at 4 lanes"),
    "weight_base": (lambda b: _table(b, 1, "weight_base", 1), r"bases \(1, 4\) should be"),
    "chain": (lambda b: _table(b, 1, "n_in", 13), "layer 1 takes 13 inputs but layer 0 has 14"),
    "output layer": (lambda b: _table(_table(b, 1, "n_out", 17), 1, "blocks", 5), "output layer has 17 neurons"),
    "weight": (lambda b: _value(b, "weights", 7, 128), "a weight outside -127..127"),
    "bias above b_h_max": (lambda b: _value(b, "biases", 0, -1023), "a bias outside -2048..-1024"),
    "json": (lambda b: set_field(b, sections(bytes(b) + b"\0" * 4, 2)["json"] + 3, 1, ord("X")),
             "configuration or LUTs differ"),
    "lut": (lambda b: set_field(b, len(b) - 4 * 256 - 3, 1, 0x55), "configuration or LUTs differ"),
    "latency step": (lambda b: set_field(b, len(b) - 2 * 256 + 2 * 200, 2, 12), "a latency step at or past T = 12"),
    "shorter": (lambda b: b[:-2], "its header says"),
}


@pytest.mark.parametrize("case", CASES)
def test_each_broken_rule_is_named(case):
    mutate, message = CASES[case]
    body = bytearray(to_bytes(pack(OTHER, 4))[:-4])
    with pytest.raises(ImageError, match=message):
        RULES.validate(with_crc(mutate(body)))


def test_a_wrong_trailer_is_named():
    blob = bytearray(to_bytes(pack(OTHER, 4)))
    blob[-1] ^= 1
    with pytest.raises(ImageError, match="CRC-32 mismatch"):
        RULES.validate(bytes(blob))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupt_images(OTHER))
def test_whatever_the_rules_accept_the_golden_model_computes(case):
    """The rules are complete: an accepted image never makes the golden model (or the emulator) fail."""
    from quant import golden

    mutation, blob, accepted = case
    try:
        image = RULES.validate(blob)
    except ImageError:
        assert accepted is not True, mutation
        return
    assert accepted is not False, mutation
    network = to_network(image)
    spikes = np.random.default_rng(0).random((image.n_steps, 1, image.layers[0].n_in)) < 0.5
    golden.run(network, spikes)
