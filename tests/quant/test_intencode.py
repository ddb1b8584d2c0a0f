"""The device's integer encoders (quant.intencode): hand values, statistics, and equality with every implementation."""

import numpy as np
import pytest
import torch

from quant import intencode as ie
from quant.encode import latency as float_latency
from quant.fixedpoint import DEFAULT


def test_fmix32_is_murmurhash3s_finaliser():
    # MurmurHash3's fmix32 reference values: 0 -> 0, 1 -> 0x514E28B7.
    assert ie.fmix32(0) == 0 and ie.fmix32(1) == 0x514E28B7
    xs = np.array([0, 1, 2, 0xFFFFFFFF, 0x12345678], np.uint64)
    assert ie.fmix32(xs).tolist() == [ie.fmix32(int(x)) for x in xs]


def test_thresholds_by_hand():
    thresholds = ie.rate_thresholds(DEFAULT)          # gain 0.25, 8-bit pixels, 16-bit draws
    assert thresholds[0] == 0 and thresholds[255] == 16384
    assert thresholds[1] == 64                         # 0.25 / 255 * 65536 = 64.25
    assert thresholds[128] == 8224                     # 8224.125


def _frequencies(pixel, seeds=400, steps=200, n=16):
    pixels = np.full((seeds, n), pixel)
    return ie.rate(pixels, np.arange(seeds) * 2654435761 % (1 << 32), steps, DEFAULT)


@pytest.mark.parametrize("pixel", [1, 17, 128, 200, 255])
def test_spike_frequency_per_pixel_value_within_binomial_bounds(pixel):
    spikes = _frequencies(pixel)
    p = ie.rate_thresholds(DEFAULT)[pixel] / 2 ** DEFAULT.draw_bits
    trials = spikes.size
    assert abs(spikes.mean() - p) <= 5 * np.sqrt(p * (1 - p) / trials)


def test_no_correlation_between_neighbouring_pixels_or_steps():
    """Stated bound: |correlation| below 0.02 between pixel j and j+1, and between step t and t+1
    (128 000 pairs each, one standard deviation is 0.003)."""
    spikes = _frequencies(200).astype(np.float64)     # (T, seeds, n), p = 0.196
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert abs(corr(spikes[:, :, :-1], spikes[:, :, 1:])) < 0.02
    assert abs(corr(spikes[:-1], spikes[1:])) < 0.02
    other_seed = ie.rate(np.full((400, 16), 200), np.arange(400) * 2654435761 % (1 << 32) + 1, 200, DEFAULT)
    assert abs(corr(spikes, other_seed.astype(np.float64))) < 0.02   # neighbouring seeds too


@pytest.mark.parametrize("n_steps", [50, 200])
def test_the_latency_table_equals_the_float_encoder_on_every_pixel_value(n_steps):
    values = torch.arange(256, dtype=torch.uint8).numpy()
    images = torch.from_numpy(values.astype(np.float32) / 255)     # as the data sets load them
    want = float_latency(images[None], n_steps)[:, 0].numpy().astype(bool)   # (T, 256)
    got = ie.latency(ie.to_pixels(images.numpy()[None], DEFAULT), n_steps, DEFAULT)[:, 0]
    assert np.array_equal(got, want)
    table = ie.latency_table(DEFAULT, n_steps)
    assert table[255] == 0 and table[0] == ie.NEVER and table[2] == ie.NEVER   # 2/255 < 0.01


def test_training_implementations_equal_the_specification():
    from quant import kernels

    rng = np.random.default_rng(0)
    images = (rng.random((9, 50)) < 0.4) * rng.integers(0, 256, (9, 50))
    pixels = ie.to_pixels(images.astype(np.uint8), DEFAULT)
    seeds = rng.integers(0, 1 << 32, 9)
    want = ie.rate(pixels, seeds, 30, DEFAULT)
    fast = ie.rate_torch(pixels, seeds, 30, DEFAULT)
    assert kernels.available() and np.array_equal(fast.numpy().astype(bool), want)
    original, kernels.available = kernels.available, lambda: False
    try:
        slow = ie.rate_torch(pixels, seeds, 30, DEFAULT, dtype=torch.float64)
    finally:
        kernels.available = original
    assert slow.dtype == torch.float64 and np.array_equal(slow.numpy().astype(bool), want)


def test_fewer_pixel_bits_drop_the_low_bits():
    cfg = DEFAULT.replace(pixel_bits=4)
    assert ie.to_pixels(np.array([[0, 15, 16, 255]], np.uint8), cfg).tolist() == [[0, 0, 1, 15]]
    assert len(ie.rate_thresholds(cfg)) == 16 and ie.rate_thresholds(cfg)[15] == 16384
