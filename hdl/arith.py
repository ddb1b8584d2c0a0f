"""Fixed-point helpers for Amaranth expressions, mirroring :mod:`quant.golden` exactly.

Shifts round half up (add half an LSB, then an arithmetic shift); saturation clips to the rails.
"""

from amaranth import Const, Mux, signed

__all__ = ["round_shift", "saturate", "magnitude", "table_index"]


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


def table_index(value, shift, size):
    """``min(round_shift(|value|, shift), size - 1)``: a lookup table's address, as :mod:`quant.lut` computes it.

    Built for a short path from registers to a block RAM's address: ``|value|`` and the rounding
    are one addition (``half - value`` or ``value + half``, side by side, then chosen by the sign),
    and for a power-of-two ``size`` the clamp tests the high bits instead of comparing.
    """
    assert shift >= 0, "a table is never finer than its input"
    if shift > 0:
        half = 1 << (shift - 1)
        index = Mux(value < 0, half - value, value + half) >> shift
    else:
        index = magnitude(value)
    if size & (size - 1) == 0:
        over = index[(size - 1).bit_length():].any()
    else:
        over = index >= size
    return Mux(over, size - 1, index[:max(1, (size - 1).bit_length())])
