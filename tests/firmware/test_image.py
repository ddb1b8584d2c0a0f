import struct
import zlib

import numpy as np
import pytest
import torch

from firmware.image import ImageError, checksum, from_bytes, pack, to_bytes, to_network
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
    lut_tampered[-8] ^= 1   # inside the h LUT
    with pytest.raises(ImageError, match="LUTs differ"):
        from_bytes(_recrc(bytes(lut_tampered)))
    with pytest.raises(ImageError, match="built for configuration"):
        from_bytes(blob, expected_digest="00" * 32)
