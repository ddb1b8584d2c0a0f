"""Fixed-point helpers for Amaranth expressions, mirroring :mod:`quant.golden` exactly.

Shifts round half up (add half an LSB, then an arithmetic shift); saturation clips to the rails.
"""

from amaranth import Const, Mux, signed

__all__ = ["round_shift", "saturate", "magnitude"]


def round_shift(value, shift):
    """``floor(value / 2**shift + 1/2)`` for ``shift > 0``; an exact left shift for ``shift <= 0``."""
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    return value << -shift


def saturate(value, low, high):
    """``value`` clipped to ``[low, high]`` (Python ints)."""
    return Mux(value < low, Const(low, signed(max(low.bit_length(), high.bit_length()) + 1)),
               Mux(value > high, high, value))


def magnitude(value):
    """``|value|`` of a signed expression, one bit wider so that the most negative value fits."""
    return Mux(value < 0, -value, value)
