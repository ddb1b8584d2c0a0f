"""The SRC neuron lane: one neuron's update per cycle, pipelined, bit-exact with :mod:`quant.golden`."""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quant.fixedpoint import FixedPointConfig, round_shift_int

from .arith import add_all, add_pairwise, constant_terms, round_shift, saturate, table_index

__all__ = ["NeuronLane", "StandaloneLane"]


class NeuronLane(wiring.Component):
    """One SRC neuron update (eqs. 3a-3f in fixed point), in a pipeline of :attr:`LATENCY` cycles.

    Every cycle it takes a neuron's previous state, its step sum ``acc`` and its bias, and
    :attr:`LATENCY` cycles later gives the new state. The two lookup tables are outside the lane
    (:class:`hdl.tables.LaneTables`, shared by two lanes per block RAM): the lane gives an address
    and takes the entry the next cycle. The arithmetic is that of :mod:`quant.golden`, in the same
    order.

    Parameters
    ----------
    config : FixedPointConfig
        Formats and constants.
    acc_width : int
        Width of the step sum.
    min_shift, max_shift : int
        Range of the per-layer ``acc_shift`` this lane supports.

    Members
    -------
    i_prev, h_prev, hs_prev : In
        The neuron's state at step ``t-1``.
    acc : In
        Sum of weight x amplitude over the step's input events.
    bias : In
        ``b_h`` in the state format.
    acc_shift : In
        The layer's shift from ``acc`` to the ``i`` format (``weight_frac + state_frac - i_frac``).
    i, h, hs, s : Out
        The new state and output spike, :attr:`LATENCY` cycles after the inputs.
    s_next : Out
        What ``s`` holds from the next cycle (so that a block's spikes can be summarised into
        registers beside it).
    x_addr, h_addr : Out
        The lookup tables' read addresses (``|i|`` and ``|pre|``, rounded and clamped).
    x_data, h_data : In
        Their entries, the cycle after the address.
    """

    #: Inputs, products, shift and roundings, sums, saturation, x address (table read), x entry,
    #: pre, h address (table read), h entry, output: a register at the end of each.
    LATENCY = 11

    def __init__(self, config: FixedPointConfig, acc_width, min_shift, max_shift):
        self.config = config
        self.min_shift, self.max_shift = min_shift, max_shift
        c = config
        super().__init__({
            "i_prev": In(signed(c.i_width)),
            "h_prev": In(signed(c.h_width)),
            "hs_prev": In(signed(c.hs_width)),
            "acc": In(signed(acc_width)),
            "bias": In(signed(c.bias_width)),
            "acc_shift": In(signed(max(abs(min_shift), abs(max_shift)).bit_length() + 1)),
            "i": Out(signed(c.i_width)),
            "h": Out(signed(c.h_width)),
            "hs": Out(signed(c.hs_width)),
            "s": Out(unsigned(c.spike_width)),
            "s_next": Out(unsigned(c.spike_width)),
            "x_addr": Out(range(c.x_lut_size)),
            "x_data": In(unsigned(c.x_width - 1)),
            "h_addr": Out(range(c.h_lut_size)),
            "h_data": In(unsigned(c.h_width - 1)),
        })

    def elaborate(self, platform):
        m = Module()
        c, k = self.config, self.config.constants

        # Stage cuts follow nextpnr-ecp5's critical paths: a table's output (a block RAM's, slow) is
        # registered before any logic, and each table address is computed from registers.
        def delay(value, name):
            """``value`` one cycle later."""
            reg = Signal.like(value, name=name)
            m.d.sync += reg.eq(value)
            return reg

        # Stage 1: the inputs, straight from the core's memories, are registered, with the rounding
        # half of the step sum's shift (a one-hot constant per shift: the shift is the layer's).
        i_0, h_0, hs_0 = delay(self.i_prev, "i_0"), delay(self.h_prev, "h_0"), delay(self.hs_prev, "hs_0")
        acc_0, bias_0 = delay(self.acc, "acc_0"), delay(self.bias, "bias_0")
        half_0 = Signal(max(1, self.max_shift), name="half_0")
        with m.Switch(self.acc_shift):
            for shift in range(max(1, self.min_shift), self.max_shift + 1):
                with m.Case(shift):
                    m.d.sync += half_0.eq(1 << (shift - 1))
            with m.Default():
                m.d.sync += half_0.eq(0)
        # The shift as a right shift of the step sum pre-shifted left by the most the layer table allows:
        # one barrel shifter from registers (a case per shift made a chain of multiplexers).
        span = self.max_shift - min(0, self.min_shift)
        offset_0 = Signal(range(span + 1), name="offset_0")
        m.d.sync += offset_0.eq(self.acc_shift - min(0, self.min_shift))

        # Stage 2: the products (by constants: shift-and-add trees, hdl.arith.constant_terms; a DSP
        # block's routes in and out were the update unit's critical path), the step sum plus its
        # rounding half. z*hs + (1 - z)*h = z*(hs - h) + h with z one of two constants: the same
        # integer as the golden model's, from multiplications by constants only (1 = 2**coef_frac
        # is a shift).
        assert k["one_coef"] == 1 << c.coef_frac
        h_wide = h_0 << (c.hs_frac - c.state_frac)
        rounded_a = Signal(signed(len(self.acc) + 1), name="rounded_a")
        m.d.sync += rounded_a.eq(acc_0 + half_0)
        product = lambda value, constant: add_all(constant_terms(value, constant))
        offset_a, alpha_i_a = delay(offset_0, "offset_a"), delay(product(i_0, k["alpha"]), "alpha_i_a")
        r_h_a, r_hs_a = delay(product(h_0, k["r"]), "r_h_a"), delay(product(hs_0, k["r_s"]), "r_hs_a")
        gap_a, depressed_a = delay(hs_0 - h_wide, "gap_a"), delay(h_0 >= c.half, "depressed_a")
        h_wide_a, bias_a = delay(h_wide, "h_wide_a"), delay(bias_0, "bias_a")

        # Stage 3: the step sum shifted to the i format (round_shift: the half is in), alpha*i rounded,
        # the recurrent drive and z*(hs - h).
        scaled = Signal(signed(len(rounded_a) + max(0, -self.min_shift)))
        m.d.comb += scaled.eq((rounded_a << max(0, -self.min_shift)) >> offset_a)
        scaled_b, alpha_i_b = delay(scaled, "scaled_b"), delay(round_shift(alpha_i_a, c.coef_frac), "alpha_i_b")
        drive_b = delay(round_shift(r_h_a, c.coef_frac)
                        + round_shift(r_hs_a, c.coef_frac + c.hs_frac - c.state_frac), "drive_b")
        # z*(hs - h): the first level of its adder tree here (the two constants' terms side by side,
        # chosen by z), the rest in stage 4.
        z_terms = [add_pairwise(constant_terms(gap_a, k[z])) for z in ("z_dep", "z_hyp")]
        z_terms_b = []
        for n in range(max(map(len, z_terms))):
            dep, hyp = (terms[n] if n < len(terms) else 0 for terms in z_terms)
            term = Mux(depressed_a, dep, hyp)
            z_terms_b.append(delay(term, f"z_term{n}_b"))
        h_wide_b, bias_b = delay(h_wide_a, "h_wide_b"), delay(bias_a, "bias_b")

        # Stage 4: the synaptic sum, the new h_s, and b + drive (everything of pre but x).
        i_sum_c = delay(alpha_i_b + scaled_b, "i_sum_c")
        hs_c = Signal.like(self.hs, name="hs_c")
        # round_shift(z*(hs - h) + (h << coef_frac), coef_frac), the rounding half in the low bits of
        # the shifted h (which are zero): one adder tree.
        h_term = Cat(Const(1 << (c.coef_frac - 1), c.coef_frac), h_wide_b).as_signed()
        m.d.sync += hs_c.eq(add_all([*z_terms_b, h_term]) >> c.coef_frac)
        partial_c = Signal(signed(c.pre_width), name="partial_c")
        m.d.sync += partial_c.eq(bias_b + drive_b)

        # Stage 5: the synaptic state saturated, and beside it the x table's address, so that the
        # table's address is a register (from the table's inputs on, each table is its own block
        # RAM, placed apart from the lane: the route to it takes most of a cycle). Saturation
        # cannot move the address when both rails lie past the table's last entry (they do for the
        # shipped formats: the address is taken before saturating, one adder shorter).
        x_shift = c.i_frac - c.x_lut_frac
        rails_past_table = min(round_shift_int(-c.i_min, x_shift), round_shift_int(c.i_max, x_shift)) >= c.x_lut_size - 1
        saturated = saturate(i_sum_c, c.i_min, c.i_max)
        i_1 = delay(saturated, "i_1")
        x_index_1 = delay(table_index(i_sum_c if rails_past_table else saturated, x_shift, c.x_lut_size), "x_index_1")
        hs_1, partial_1 = delay(hs_c, "hs_1"), delay(partial_c, "partial_1")

        # Stage 6: the x table's address (the table registers it).
        m.d.comb += self.x_addr.eq(x_index_1)
        i_2, i_neg_2, hs_2, partial_2 = delay(i_1, "i_2"), delay(i_1 < 0, "i_neg_2"), delay(hs_1, "hs_2"), \
            delay(partial_1, "partial_2")

        # Stage 7: the x entry, registered as it leaves the table.
        x_3, i_neg_3 = delay(self.x_data, "x_3"), delay(i_neg_2, "i_neg_3")
        i_3, hs_3, partial_3 = delay(i_2, "i_3"), delay(hs_2, "hs_3"), delay(partial_2, "partial_3")

        # Stage 8: pre = x + b + drive, x signed by the sign of i, and from it the tanh table's
        # address (registered, as the x table's).
        pre = Signal(signed(c.pre_width))
        m.d.comb += pre.eq(Mux(i_neg_3, partial_3 - x_3, partial_3 + x_3))
        h_index_4 = delay(table_index(pre, c.state_frac - c.h_lut_frac, c.h_lut_size), "h_index_4")
        pre_neg_4 = delay(pre < 0, "pre_neg_4")
        i_4, hs_4 = delay(i_3, "i_4"), delay(hs_3, "hs_4")

        # Stage 9: the tanh table's address (the table registers it).
        m.d.comb += self.h_addr.eq(h_index_4)
        i_5, hs_5, pre_neg_5 = delay(i_4, "i_5"), delay(hs_4, "hs_5"), delay(pre_neg_4, "pre_neg_5")

        # Stage 10: the h entry, registered as it leaves the table.
        h_6, pre_neg_6 = delay(self.h_data, "h_6"), delay(pre_neg_5, "pre_neg_6")
        i_6, hs_6 = delay(i_5, "i_6"), delay(hs_5, "hs_6")

        # Stage 11: the signed tanh and the spike s = max(h, 0).
        m.d.sync += [
            self.i.eq(i_6),
            self.hs.eq(hs_6),
            self.h.eq(Mux(pre_neg_6, -h_6, h_6)),
            self.s.eq(self.s_next),
        ]
        m.d.comb += self.s_next.eq(Mux(pre_neg_6, 0, h_6))
        return m


class StandaloneLane(wiring.Component):
    """A :class:`NeuronLane` with tables of its own: the unit as tests and timing runs see it.

    Members
    -------
    The lane's inputs and ``i``, ``h``, ``hs``, ``s``; the tables' ``lut_addr``, ``lut_data``,
    ``x_lut_we``, ``h_lut_we``.
    """

    LATENCY = NeuronLane.LATENCY

    def __init__(self, config: FixedPointConfig, acc_width, min_shift, max_shift):
        from .tables import LaneTables

        self._lane = NeuronLane(config, acc_width, min_shift, max_shift)
        self._tables = LaneTables(config, 1)
        lane, tables = self._lane.signature.members, self._tables.signature.members
        super().__init__({
            **{n: lane[n] for n in ("i_prev", "h_prev", "hs_prev", "acc", "bias", "acc_shift", "i", "h", "hs", "s")},
            **{n: tables[n] for n in ("lut_addr", "lut_data", "x_lut_we", "h_lut_we")},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.lane, m.submodules.tables = lane, tables = self._lane, self._tables
        for name in ("i_prev", "h_prev", "hs_prev", "acc", "bias", "acc_shift"):
            m.d.comb += getattr(lane, name).eq(getattr(self, name))
        for name in ("i", "h", "hs", "s"):
            m.d.comb += getattr(self, name).eq(getattr(lane, name))
        for name in ("lut_addr", "lut_data", "x_lut_we", "h_lut_we"):
            m.d.comb += getattr(tables, name).eq(getattr(self, name))
        m.d.comb += [tables.x_addr[0].eq(lane.x_addr), lane.x_data.eq(tables.x_data[0]),
                     tables.h_addr[0].eq(lane.h_addr), lane.h_data.eq(tables.h_data[0])]
        return m
