"""The neuron lanes' lookup tables (``x = f(|i|)`` and ``h = tanh(|pre|)``), two lanes per block RAM.

Each table is one memory per pair of lanes: a true-dual-port block RAM gives both lanes of the pair
a synchronous read per cycle, so ``P`` lanes need ``ceil(P / 2)`` block RAMs per table instead of
``P`` copies in distributed RAM (a 1,024-entry table in LUTs is a deep multiplexer: it was the
lane's critical path, and most of the device's LUTs). The run-time write of an entry shares the
first read port of every memory (tables are loaded between samples only, when no lane reads).
"""

from amaranth import Module, Mux, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .layouts import UNCHECKED, registered_read

__all__ = ["LaneTables"]


class LaneTables(wiring.Component):
    """The x and h lookup tables of ``lanes`` neuron lanes.

    A read's data is valid the cycle after its address (:attr:`LATENCY`).

    Parameters
    ----------
    config : FixedPointConfig
        Sizes, widths and initial contents of the tables.
    lanes : int
        Lanes served.

    Members
    -------
    x_addr, h_addr : In(data.ArrayLayout)
        Each lane's read address.
    x_data, h_data : Out(data.ArrayLayout)
        Each lane's entry (the tables hold magnitudes: unsigned, one bit narrower than ``x``, ``h``).
    lut_addr, lut_data, x_lut_we, h_lut_we : In
        A run-time write of one entry, to every copy of a table.
    """

    LATENCY = 1

    def __init__(self, config, lanes):
        self.config, self.lanes = config, lanes
        c = config
        super().__init__({
            "x_addr": In(data.ArrayLayout(range(c.x_lut_size), lanes)),
            "x_data": Out(data.ArrayLayout(unsigned(c.x_width - 1), lanes)),
            "h_addr": In(data.ArrayLayout(range(c.h_lut_size), lanes)),
            "h_data": Out(data.ArrayLayout(unsigned(c.h_width - 1), lanes)),
            "lut_addr": In(range(max(c.x_lut_size, c.h_lut_size))),
            "lut_data": In(unsigned(max(c.x_width, c.h_width))),
            "x_lut_we": In(1),
            "h_lut_we": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        for name, width, size, init, addr, out, we in (
                ("x", c.x_width - 1, c.x_lut_size, c.x_lut, self.x_addr, self.x_data, self.x_lut_we),
                ("h", c.h_width - 1, c.h_lut_size, c.h_lut, self.h_addr, self.h_data, self.h_lut_we)):
            for pair in range(0, self.lanes, 2):
                m.submodules[f"{name}_lut{pair // 2}"] = mem = memory.Memory(shape=unsigned(width), depth=size,
                                                                            init=init, attrs=UNCHECKED)
                write = mem.write_port()
                first, first_data = registered_read(m, mem, f"{name}_lut{pair // 2}_first")
                m.d.comb += [first.addr.eq(Mux(we, self.lut_addr, addr[pair])), write.addr.eq(first.addr),
                             write.data.eq(self.lut_data), write.en.eq(we), out[pair].eq(first_data)]
                if pair + 1 < self.lanes:
                    # No lane reads while a table is written: the second port needs no collision logic.
                    second, second_data = registered_read(m, mem, f"{name}_lut{pair // 2}_second")
                    m.d.comb += [second.addr.eq(addr[pair + 1]), out[pair + 1].eq(second_data)]
        return m
