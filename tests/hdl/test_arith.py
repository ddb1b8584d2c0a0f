"""The gateware's fixed-point helpers against quant's (the golden model's) arithmetic, exhaustively."""

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.sim import Simulator

from hdl.arith import add_pairwise, nudged, partial_products, table_index


@pytest.mark.parametrize("shift", [0, 1, 3])
@pytest.mark.parametrize("size", [16, 20])      # a power of two (the high-bit clamp) and not
def test_table_index_is_the_lookup_index_of_quant_lut(shift, size):
    value = Signal(signed(9))
    index = Signal(range(size))
    got = {}

    async def bench(ctx):
        for v in range(-256, 256):
            ctx.set(value, v)
            got[v] = ctx.get(index)

    m = Module()
    m.d.comb += index.eq(table_index(value, shift, size))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    # quant.lut.lookup's index: |v| rounded half up at the table's step, clamped to the last entry.
    magnitude = np.abs(np.arange(-256, 256))
    expected = np.minimum((magnitude + (1 << (shift - 1))) >> shift if shift else magnitude, size - 1)
    assert [got[v] for v in range(-256, 256)] == expected.tolist()


@pytest.mark.parametrize("weight_width,amplitude_width", [(6, 9), (5, 4), (8, 3)])
def test_shift_and_add_product_is_the_product(weight_width, amplitude_width):
    """Every signed weight by every unsigned amplitude, summed a level at a time as the accumulate unit
    registers them: the exact product, in the width the unit keeps."""
    weight, amplitude = Signal(signed(weight_width)), Signal(amplitude_width)
    product = Signal(signed(weight_width + amplitude_width + 1))
    terms = partial_products(weight, amplitude)
    while len(terms) > 1:
        terms = add_pairwise(terms)
    m = Module()
    m.d.comb += product.eq(terms[0])
    wrong = []

    async def bench(ctx):
        for w in range(-(1 << (weight_width - 1)), 1 << (weight_width - 1)):
            for a in range(1 << amplitude_width):
                ctx.set(weight, w)
                ctx.set(amplitude, a)
                if ctx.get(product) != w * a:
                    wrong.append((w, a, ctx.get(product)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not wrong


@pytest.mark.parametrize("low,high", [(-1, 1), (-2, 2), (0, 3)])
def test_nudged_is_the_sum(low, high):
    """Every value of a 5-bit count and every change in the range: the sum, as the count's register
    (the same width, so the ends wrap exactly as ``value + change`` assigned to it would)."""
    value, change, out = Signal(5), Signal(range(low, high + 1)), Signal(5)
    got = {}

    async def bench(ctx):
        for v in range(32):
            for d in range(low, high + 1):
                ctx.set(value, v)
                ctx.set(change, d)
                got[v, d] = ctx.get(out)

    m = Module()
    m.d.comb += out.eq(nudged(value, change, low, high))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == {(v, d): (v + d) % 32 for v in range(32) for d in range(low, high + 1)}
