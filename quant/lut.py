"""Lookup tables for the two nonlinearities of the SRC, generated from the fixed-point configuration.

Both tables are odd-symmetric and hold only non-negative inputs:

* the **x table** (eq. 3b): entry ``k`` is ``rho*tanh(u/rho)`` at ``u = k * 2**-x_lut_frac``,
  in the state format; the input ``|i|`` is reduced to ``x_lut_frac`` fractional bits by a
  round-half-up shift and clamped to the last entry, so it covers
  ``|i| < (x_lut_size - 0.5) * 2**-x_lut_frac``.
* the **h table** (eq. 3d): entry ``k`` is ``tanh(u)`` at ``u = k * 2**-h_lut_frac``, in the
  state format, over ``|pre|`` likewise.

A lookup returns ``sign(v) * table[min(round_half_up(|v| / step), size - 1)]``. Its error
against the float function is at most ``slope * step/2 + 2**-(state_frac+1)`` inside the
covered range, plus the clamp error past it (:func:`error_bound`); the tests check it.

Pure Python: entries are computed with :mod:`math` and rounded half up.
"""

import functools
import math

__all__ = ["x_table", "h_table", "lookup", "error_bound"]


def _table(function, in_frac, size, out_frac):
    scale = 1 << out_frac
    return tuple(math.floor(function(k / (1 << in_frac)) * scale + 0.5) for k in range(size))


@functools.lru_cache(maxsize=64)
def x_table(cfg):
    rho = cfg.params.rho
    return _table(lambda u: rho * math.tanh(u / rho), cfg.x_lut_frac, cfg.x_lut_size, cfg.state_frac)


@functools.lru_cache(maxsize=64)
def h_table(cfg):
    return _table(math.tanh, cfg.h_lut_frac, cfg.h_lut_size, cfg.state_frac)


def lookup(table, value, shift):
    """Look ``value`` (integer, any sign) up in an odd-symmetric ``table`` after a round-half-up right shift.

    Works on Python ints and on numpy integer arrays alike.
    """
    import numpy as np

    table = np.asarray(table, dtype=np.int64)
    magnitude = np.abs(value)
    index = (magnitude + (1 << (shift - 1))) >> shift if shift > 0 else magnitude
    out = table[np.minimum(index, len(table) - 1)]
    return np.where(np.asarray(value) < 0, -out, out)


def error_bound(cfg, which):
    """The largest error (in real units) of a lookup against the float function, over all inputs.

    Inside the table: half an input step times the largest slope (1 for both functions)
    plus half an output LSB. Past the last entry: the distance from the last entry to the
    function's limit (rho or 1), plus half an output LSB.
    """
    out_lsb = 2.0 ** -cfg.state_frac
    if which == "x":
        step, size, limit, f = 2.0 ** -cfg.x_lut_frac, cfg.x_lut_size, cfg.params.rho, x_table(cfg)
    elif which == "h":
        step, size, limit, f = 2.0 ** -cfg.h_lut_frac, cfg.h_lut_size, 1.0, h_table(cfg)
    else:
        raise ValueError(f"unknown table {which!r}; expected 'x' or 'h'")
    inside = step / 2 + out_lsb / 2
    clamp = abs(limit - f[-1] * out_lsb) + out_lsb / 2
    return max(inside, clamp)
