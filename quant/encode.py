"""Spike encoders with snnTorch's semantics, time-major ``(T, batch, features)``.

:func:`rate` draws the same spikes as ``snntorch.spikegen.rate(data, num_steps, gain)``
for the same random state; :func:`latency` gives exactly
``snntorch.spikegen.latency(data, num_steps, tau=tau, threshold=threshold,
normalize=True, linear=True, clip=True)``. Both are checked against snnTorch in
the tests, and neither needs snnTorch to run.
"""

import torch

__all__ = ["N_STEPS", "RATE_GAIN", "LATENCY_TAU", "LATENCY_THRESHOLD", "rate", "latency", "encode"]

from .srcparams import LATENCY_TAU, LATENCY_THRESHOLD, N_STEPS, RATE_GAIN  # the paper's, in one place


def _check_unit_range(data):
    if data.numel() and (data.min() < 0 or data.max() > 1):
        raise ValueError(f"encoder input must lie in [0, 1], got [{float(data.min())}, {float(data.max())}]")


def rate(data, n_steps=N_STEPS, gain=RATE_GAIN, generator=None):
    """Rate coding: at each step, a feature spikes with probability ``clamp(gain * data, 0, 1)``.

    Parameters
    ----------
    data : torch.Tensor
        Static input in ``[0, 1]``, any shape.
    n_steps : int
        Number of steps ``T``.
    gain : float
        Spike probability of a feature of value 1.
    generator : torch.Generator, optional
        Random source; the global one (as snnTorch uses) when omitted.

    Returns
    -------
    torch.Tensor
        ``(n_steps, *data.shape)`` spikes of 0 and 1, in ``data``'s dtype.
    """
    _check_unit_range(data)
    probability = torch.clamp(data.repeat((n_steps,) + (1,) * data.dim()) * gain, 0, 1)
    return torch.bernoulli(probability, generator=generator)


def latency(data, n_steps=N_STEPS, tau=LATENCY_TAU, threshold=LATENCY_THRESHOLD):
    """Linear, normalized, clipped latency coding: each feature spikes at most once.

    With ``normalize=True`` snnTorch replaces ``tau`` by ``n_steps - 1``, so the
    spike time is ``round(min((n_steps-1) * (1 - x), (n_steps-1) * (1 - threshold)))``:
    a feature of 1 fires at step 0, darker ones later. Features below
    ``threshold`` do not fire at all (``clip=True``). ``tau`` is accepted and
    ignored, as in snnTorch, and kept for the record of the paper's settings.
    """
    del tau  # overridden by normalize=True, exactly as snnTorch does
    _check_unit_range(data)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    span = n_steps - 1
    spike_time = torch.clamp_max(-span * (data - 1), -span * (threshold - 1))
    step = torch.round(spike_time).long()
    spikes = torch.zeros((n_steps,) + tuple(data.shape), dtype=data.dtype, device=data.device)
    spikes.scatter_(0, step.clamp_max(n_steps - 1).unsqueeze(0), 1)
    spikes *= (step <= n_steps - 1) & (data >= threshold)
    return spikes


def encode(images, encoding, n_steps=N_STEPS, generator=None):
    """Encode a batch of flat images ``(batch, features)`` with ``rate`` or ``latency`` coding."""
    if encoding == "rate":
        return rate(images, n_steps, generator=generator)
    if encoding == "latency":
        return latency(images, n_steps)
    raise ValueError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")
