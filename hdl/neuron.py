"""The SRC neuron lane: one neuron's update per cycle, pipelined, bit-exact with :mod:`quant.golden`."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from quant.fixedpoint import FixedPointConfig

from .arith import magnitude, round_shift, saturate
from .layouts import DISTRIBUTED

__all__ = ["NeuronLane"]


class NeuronLane(wiring.Component):
    """One SRC neuron update (eqs. 3a-3f in fixed point), in a pipeline of :attr:`LATENCY` cycles.

    Every cycle it takes a neuron's previous state, its step sum ``acc`` and its bias, and
    :attr:`LATENCY` cycles later gives the new state. The two lookup tables are synchronous
    ROMs inside the lane. The arithmetic is that of :mod:`quant.golden`, in the same order.

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
    lut_addr, lut_data, x_lut_we, h_lut_we : In
        A run-time write of one LUT entry.
    """

    LATENCY = 5

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
            "lut_addr": In(range(max(c.x_lut_size, c.h_lut_size))),
            "lut_data": In(unsigned(max(c.x_width, c.h_width))),
            "x_lut_we": In(1),
            "h_lut_we": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        c, k = self.config, self.config.constants
        m.submodules.x_lut = x_lut = memory.Memory(shape=unsigned(c.x_width - 1), depth=c.x_lut_size, init=c.x_lut,
                                                     attrs=DISTRIBUTED)
        m.submodules.h_lut = h_lut = memory.Memory(shape=unsigned(c.h_width - 1), depth=c.h_lut_size, init=c.h_lut,
                                                     attrs=DISTRIBUTED)
        x_port, h_port = x_lut.read_port(), h_lut.read_port()
        # The tables are initialised from the configuration and writable at run time.
        x_write, h_write = x_lut.write_port(), h_lut.write_port()
        m.d.comb += [x_write.addr.eq(self.lut_addr), x_write.data.eq(self.lut_data), x_write.en.eq(self.x_lut_we),
                     h_write.addr.eq(self.lut_addr), h_write.data.eq(self.lut_data), h_write.en.eq(self.h_lut_we)]

        # The stages are cut where the timing report of the open ECP5 flow put its critical path:
        # memory output -> multiplier -> adder -> saturation -> LUT address used to be one cycle.

        # Stage 1: the inputs, straight from the core's memories, are registered.
        i_0, h_0, hs_0 = Signal.like(self.i_prev), Signal.like(self.h_prev), Signal.like(self.hs_prev)
        acc_0, bias_0, shift_0 = Signal.like(self.acc), Signal.like(self.bias), Signal.like(self.acc_shift)
        m.d.sync += [i_0.eq(self.i_prev), h_0.eq(self.h_prev), hs_0.eq(self.hs_prev), acc_0.eq(self.acc),
                     bias_0.eq(self.bias), shift_0.eq(self.acc_shift)]

        # Stage 2: synaptic state, the h_s update and the recurrent drive.
        scaled = Signal(signed(self.acc.shape().width + max(0, -self.min_shift)))
        with m.Switch(shift_0):
            for shift in range(self.min_shift, self.max_shift + 1):
                with m.Case(shift):
                    m.d.comb += scaled.eq(round_shift(acc_0, shift))
        i_new = saturate(round_shift(k["alpha"] * i_0, c.coef_frac) + scaled, c.i_min, c.i_max)
        drive = (round_shift(k["r"] * h_0, c.coef_frac)
                 + round_shift(k["r_s"] * hs_0, c.coef_frac + c.hs_frac - c.state_frac))
        # z*hs + (1 - z)*h = z*(hs - h) + h with z one of two constants: the same integer as the golden
        # model's, from multiplications by constants only (1 = 2**coef_frac is a shift).
        assert k["one_coef"] == 1 << c.coef_frac
        h_wide = h_0 << (c.hs_frac - c.state_frac)
        gap = hs_0 - h_wide
        hs_new = round_shift(Mux(h_0 >= c.half, k["z_dep"] * gap, k["z_hyp"] * gap) + (h_wide << c.coef_frac),
                             c.coef_frac)
        i_1 = Signal.like(self.i)
        hs_1 = Signal.like(self.hs)
        partial_1 = Signal(signed(c.pre_width))  # b + drive: everything of pre but x
        m.d.sync += [i_1.eq(i_new), hs_1.eq(hs_new), partial_1.eq(bias_0 + drive)]

        # Stage 3: the x LUT address.
        x_index = round_shift(magnitude(i_1), c.i_frac - c.x_lut_frac)
        m.d.comb += x_port.addr.eq(Mux(x_index >= c.x_lut_size, c.x_lut_size - 1, x_index))
        i_2, i_neg_2, hs_2, partial_2 = Signal.like(i_1), Signal(), Signal.like(hs_1), Signal.like(partial_1)
        m.d.sync += [i_2.eq(i_1), i_neg_2.eq(i_1 < 0), hs_2.eq(hs_1), partial_2.eq(partial_1)]

        # Stage 4: x, signed (the LUT's output is slow: no logic of its own cycle after it).
        x_3 = Signal(signed(c.x_width))
        i_3, hs_3, partial_3 = Signal.like(i_2), Signal.like(hs_2), Signal.like(partial_2)
        m.d.sync += [x_3.eq(Mux(i_neg_2, -x_port.data, x_port.data)), i_3.eq(i_2), hs_3.eq(hs_2),
                     partial_3.eq(partial_2)]

        # Stage 5: pre = x + b + drive, then the tanh LUT address.
        pre = Signal(signed(c.pre_width))
        m.d.comb += pre.eq(x_3 + partial_3)
        h_index = round_shift(magnitude(pre), c.state_frac - c.h_lut_frac)
        m.d.comb += h_port.addr.eq(Mux(h_index >= c.h_lut_size, c.h_lut_size - 1, h_index))
        pre_neg_4 = Signal()
        m.d.sync += [
            self.i.eq(i_3),
            self.hs.eq(hs_3),
            pre_neg_4.eq(pre < 0),
        ]

        # Output: the signed tanh and the spike s = max(h, 0).
        m.d.comb += [
            self.h.eq(Mux(pre_neg_4, -h_port.data, h_port.data)),
            self.s.eq(Mux(pre_neg_4, 0, h_port.data)),
        ]
        return m
