"""The device's spike encoders: integer algorithms that turn one image into input spikes, the specification.

The device receives images and encodes them itself; training and evaluation use the very same
algorithms, so the accuracy quoted for the device is the accuracy of the encoder it runs. This
module is the specification (numpy, like the golden model); :func:`rate_torch` is the same
algorithm for training (through the C kernels where built), and :mod:`hdl.encoder` the gateware.

Pixels
------
A pixel is an unsigned integer of ``config.pixel_bits`` bits: an 8-bit image value ``v``
becomes ``v >> (8 - pixel_bits)``. Pixel 0 never spikes.

Rate coding
-----------
Pixel ``j`` of a sample with seed ``seed`` spikes at step ``t`` when

    draw(seed, t, j) < threshold[p]

where ``draw`` is a counter-based pseudo-random number: the top ``config.draw_bits`` bits of
``fmix32(fmix32(seed) ^ (t << 16 | j))``, ``fmix32`` MurmurHash3's 32-bit finaliser (two
multiplications by constants, three xor-shifts), and ``threshold[p] = round_half_up(gain * p /
(2**pixel_bits - 1) * 2**draw_bits)``: the spike probability is ``gain * p / p_max`` within half a
draw unit (2**-17 for 16-bit draws). Every (seed, step, pixel) has its own counter, so the
device can draw any pixel at any step in any order, and the host reproduces the device's
spikes from the seed alone.

Latency coding
--------------
Pixel value ``p`` spikes once, at ``latency_table[p]``, or never (:data:`NEVER`). The table is
made by the project's snnTorch-exact float encoder (:func:`quant.encode.latency`) on every
value ``p / p_max`` in float32, so it equals that encoder on every possible pixel value.
"""

import numpy as np

from .srcparams import LATENCY_THRESHOLD, RATE_GAIN

__all__ = ["NEVER", "FMIX_C1", "FMIX_C2", "fmix32", "to_pixels", "sample_seeds", "rate_thresholds", "latency_table", "draws",
           "rate", "latency", "encode", "encode_with_tables", "rate_torch"]

#: ``latency_table`` entry of a pixel value that never spikes.
NEVER = 0xFFFF
#: MurmurHash3 fmix32's multipliers.
FMIX_C1, FMIX_C2 = 0x85EBCA6B, 0xC2B2AE35
_MASK = 0xFFFFFFFF


def fmix32(x):
    """MurmurHash3's 32-bit finaliser on Python ints or numpy unsigned arrays (wrapping at 32 bits)."""
    if isinstance(x, (int, np.integer)):
        x = int(x) & _MASK
        x ^= x >> 16
        x = (x * FMIX_C1) & _MASK
        x ^= x >> 13
        x = (x * FMIX_C2) & _MASK
        return x ^ (x >> 16)
    x = np.asarray(x, dtype=np.uint64) & _MASK
    x ^= x >> 16
    x = (x * FMIX_C1) & _MASK
    x ^= x >> 13
    x = (x * FMIX_C2) & _MASK
    return (x ^ (x >> 16)).astype(np.uint32)


def to_pixels(images, config):
    """``images`` in ``[0, 1]`` (as the data sets load them, ``u8 / 255``) or ``uint8``: pixels of ``pixel_bits``."""
    images = np.asarray(images)
    values = images if images.dtype == np.uint8 else np.rint(np.clip(images, 0, 1) * 255).astype(np.int64)
    return (values.astype(np.int64) >> (8 - config.pixel_bits)).astype(np.int64)


def rate_thresholds(config, gain=RATE_GAIN):
    """``threshold[p]`` in draw units for every pixel value ``p``."""
    top = (1 << config.pixel_bits) - 1
    return [int(np.floor(gain * p / top * (1 << config.draw_bits) + 0.5)) for p in range(top + 1)]


def latency_table(config, n_steps, threshold=LATENCY_THRESHOLD):
    """The spike step of every pixel value (:data:`NEVER` for none): snnTorch's linear, normalised, clipped
    latency coding (:func:`quant.encode.latency`), its float32 arithmetic step for step in numpy."""
    top = (1 << config.pixel_bits) - 1
    data = np.arange(top + 1, dtype=np.float32) / np.float32(top)
    span = np.float32(n_steps - 1)
    one = np.float32(1)
    spike_time = np.minimum(-span * (data - one), -span * (np.float32(threshold) - one))
    step = np.rint(spike_time).astype(np.int64)                       # half to even, as torch.round
    fires = (step <= n_steps - 1) & (data >= np.float32(threshold))
    return [int(s) if f else NEVER for s, f in zip(np.minimum(step, n_steps - 1), fires)]


def draws(seeds, n_steps, n_inputs, config):
    """``(T, B, n_inputs)`` draws for the seeds ``(B,)``: the rate coder's random numbers."""
    keys = fmix32(np.asarray(seeds, dtype=np.uint64))                     # (B,)
    t = np.arange(n_steps, dtype=np.uint64)[:, None, None]
    j = np.arange(n_inputs, dtype=np.uint64)[None, None, :]
    counters = (t << np.uint64(16)) | j
    return (fmix32(counters ^ keys[None, :, None]) >> np.uint32(32 - config.draw_bits)).astype(np.int64)


def rate(pixels, seeds, n_steps, config, gain=RATE_GAIN):
    """Rate-coded spikes ``(T, B, n)`` bool of ``pixels`` ``(B, n)`` with one seed per sample."""
    pixels = np.asarray(pixels)
    thresholds = np.asarray(rate_thresholds(config, gain))[pixels]        # (B, n)
    return draws(seeds, n_steps, pixels.shape[1], config) < thresholds[None]


def latency(pixels, n_steps, config, threshold=LATENCY_THRESHOLD):
    """Latency-coded spikes ``(T, B, n)`` bool of ``pixels`` ``(B, n)``."""
    steps = np.asarray(latency_table(config, n_steps, threshold))[np.asarray(pixels)]
    return np.arange(n_steps)[:, None, None] == steps[None]


def sample_seeds(seed, n, start=0):
    """The rate coder's seeds of samples ``start .. start + n - 1`` of a run seeded with ``seed``
    (what the host sends with each image; one formula for the host, the benchmarks and evaluation)."""
    return (seed * 1_000_003 + np.arange(start, start + n, dtype=np.int64)) % (1 << 32)


def encode(pixels, encoding, n_steps, config, seeds=None):
    """Spikes ``(T, B, n)`` bool of ``pixels`` ``(B, n)`` with ``encoding`` ``rate`` (needs ``seeds``) or ``latency``."""
    if encoding == "rate":
        if seeds is None:
            raise ValueError("rate coding needs one seed per sample")
        return rate(pixels, seeds, n_steps, config)
    if encoding == "latency":
        return latency(pixels, n_steps, config)
    raise ValueError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")


def encode_with_tables(pixels, encoding, seed, n_steps, rate_table, latency_table, draw_bits):
    """One image's spikes ``(T, n)`` bool from a device image's encoder tables (what the device computes)."""
    pixels = np.asarray(pixels, dtype=np.int64)
    if encoding == "rate":
        d = draws([seed], n_steps, len(pixels), _DrawBits(draw_bits))[:, 0]
        return d < np.asarray(rate_table, np.int64)[pixels][None]
    if encoding == "latency":
        return np.arange(n_steps)[:, None] == np.asarray(latency_table, np.int64)[pixels][None]
    raise ValueError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")


class _DrawBits:
    def __init__(self, draw_bits):
        self.draw_bits = draw_bits


def rate_torch(pixels, seeds, n_steps, config, gain=RATE_GAIN, dtype=None):
    """:func:`rate` for training: ``(T, B, n)`` spikes as a float tensor, from ``pixels`` and ``seeds`` tensors.

    Runs the C kernel of :mod:`quant.kernels` where built (about a millisecond per MNIST batch),
    else the same arithmetic in torch on the non-zero pixels. Equal to :func:`rate` bit for bit.
    """
    import torch

    from . import kernels

    dtype = dtype or torch.get_default_dtype()
    pixels = torch.as_tensor(pixels).to(torch.int64).contiguous()
    seeds = torch.as_tensor(seeds).to(torch.int64).contiguous()
    thresholds = torch.tensor(rate_thresholds(config, gain), dtype=torch.int64)
    batch, n = pixels.shape
    if kernels.available():
        return kernels.rate_encode(pixels, seeds, thresholds, n_steps, config.draw_bits, dtype)
    out = torch.zeros(n_steps, batch, n, dtype=dtype)
    b, j = torch.nonzero(pixels, as_tuple=True)
    mask = 0xFFFFFFFF

    def mix(x):
        x = x ^ (x >> 16)
        x = (x * FMIX_C1) & mask
        x = x ^ (x >> 13)
        x = (x * FMIX_C2) & mask
        return x ^ (x >> 16)

    keys = mix(seeds & mask)[b]
    limit = thresholds[pixels[b, j]]
    for t in range(n_steps):
        draw = mix(keys ^ ((t << 16) | j)) >> (32 - config.draw_bits)
        out[t, b, j] = (draw < limit).to(dtype)
    return out
