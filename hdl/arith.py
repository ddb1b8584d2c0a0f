"""Fixed-point helpers for Amaranth expressions, mirroring :mod:`quant.golden` exactly.

Shifts round half up (add half an LSB, then an arithmetic shift); saturation clips to the rails.
"""

from amaranth import Array, Const, Mux, signed

__all__ = ["nudged", "round_shift", "saturate", "magnitude", "table_index", "partial_products", "constant_terms", "add_pairwise",
           "add_all"]


def nudged(value, change, low, high):
    """``value + change`` for a ``change`` in ``[low, high]`` that is known late (a count's moves,
    decided by the cycle's handshakes): every sum is made from ``value`` alone, while ``change`` is
    decided, and ``change`` chooses among them; after ``change``, a multiplexer, not an adder."""
    return Array(value + d for d in range(low, high + 1))[change - low]


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


def partial_products(weight, amplitude, signed_weight=True):
    """The terms of ``weight * amplitude`` (signed by unsigned) as shift-and-add: a multiply built of
    LUTs and carry chains instead of a DSP block.

    Yosys's ECP5 flow puts a ``$mul`` of any width in a DSP block, and a DSP block is slow to reach:
    in nextpnr-ecp5 the route into one from a register many of them share, plus its combinational
    multiply (3.9 ns), was the accumulate unit's critical path. A narrow weight is cheaper as the
    sum of its bits' terms: bit ``k`` adds ``amplitude << k``, the sign bit subtracts it (two's
    complement; an unsigned ``weight`` with ``signed_weight=False``). Sum them with
    :func:`add_pairwise` (a level per call, so that a pipeline can register between levels); the
    sum is exact.
    """
    top = len(weight) - 1
    terms = []
    for k in range(top + 1):
        term = Mux(weight[k], amplitude, 0) << k
        terms.append(-term if k == top and signed_weight else term)
    return terms


def add_pairwise(terms):
    """One level of an adder tree: neighbours summed, an odd last term passed on."""
    return [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]


def constant_terms(value, constant):
    """The terms of ``value * constant`` (a Python int) as shifts of ``value``, one per non-zero digit
    of the constant's canonical signed-digit form (no two adjacent: ``4055 = 2**12 - 2**5 - 2**3 - 1``).

    A multiplication by a constant with few such digits is a short adder tree in LUTs and carry
    chains (sum the terms with :func:`add_pairwise`), where Yosys would use a DSP block, whose
    routes in and out cost more than the adders in nextpnr-ecp5's model. ``[]`` for 0.
    """
    terms, position, rest = [], 0, constant
    while rest:
        if rest & 1:
            digit = 2 - (rest & 3)          # +1 or -1: the next digit is then zero
            terms.append(value << position if digit > 0 else -(value << position))
            rest -= digit
        rest >>= 1
        position += 1
    return terms


def add_all(terms):
    """The sum of ``terms`` as a balanced adder tree (0 for none)."""
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = add_pairwise(terms)
    return terms[0]
