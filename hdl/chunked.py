"""A deep memory built of block-RAM-deep chunks, each chunk's output registered before any logic.

A memory deeper than one block RAM is, as Yosys maps it, several block RAMs whose outputs a
multiplexer picks by the high address bits; a block RAM's output without its output register is
slow (5.8 ns on the ECP5 in nextpnr's model), and the multiplexer after it put the accumulate unit's
weight read on the critical path. Here each chunk of :data:`CHUNK` entries is its own memory (one
block RAM deep), its output is registered, and the choice among the chunks is made the next
cycle, from registers. The read address is registered in each chunk, a copy per chunk beside its
block RAMs (:mod:`hdl.fanout`): one address register reaching every chunk of a memory spread over
the chip spent 15.2 ns in routing (the accumulate unit's critical path, router2, at 8428823). A
last chunk of at most :data:`SHORT` entries is put in distributed RAM: a block RAM for it would
be mostly empty.

Each chunk has one address, the write's on a cycle with a write to it and the read's otherwise, so
that synthesis puts its reads and writes on one port of the block RAM. With a port each, a read and
a write of the same address on the same cycle may return anything on a block RAM (ECP5, Xilinx),
and Yosys made the memory's promise with logic: the address compared every cycle, and a multiplexer
between the block RAM and the register after it (the weights' registers after their block RAMs
were late in every ULX3S build, by up to 0.5 ns at 8785342). The memory's users write between
samples, never while reading.
"""

from amaranth import Array, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .fanout import register_copies
from .layouts import DISTRIBUTED, bits

__all__ = ["ChunkedMemory", "chunks", "CHUNK", "SHORT"]

#: Entries per chunk: the depth of a block RAM at its 18-bit-wide aspect (ECP5 DP16KD, Xilinx
#: RAMB18), the aspect Yosys picks for wide words.
CHUNK = 1024
#: A last chunk this shallow goes to distributed RAM.
SHORT = CHUNK // 8


def chunks(depth):
    """The chunks of a memory of ``depth`` words: ``(start, size, distributed)`` each."""
    depth = max(1, depth)
    return [(start, min(CHUNK, depth - start), bool(start) and depth - start <= SHORT)
            for start in range(0, depth, CHUNK)]


class ChunkedMemory(wiring.Component):
    """A memory of ``depth`` words of ``width`` bits with one read and one write port.

    A read's data is on ``read_data`` :attr:`LATENCY` cycles after its address (the address
    registered in each chunk, the chunks' reads, then their registered outputs, of which
    ``read_data`` picks one). A write is registered in each chunk and lands the cycle after it is
    given: a read sees the writes given in the cycles before its address's. A write given on the
    same cycle as a read's address takes the chunk's port, and that read's data is unspecified.

    Parameters
    ----------
    width, depth : int
    init : list of int
        Initial contents.

    Members
    -------
    read_addr : In
    read_data : Out
    write_addr, write_data, write_en : In
    """

    LATENCY = 3

    def __init__(self, width, depth, init=()):
        self.width, self.depth, self.init = width, max(1, depth), list(init)
        super().__init__({
            "read_addr": In(range(self.depth)),
            "read_data": Out(unsigned(width)),
            "write_addr": In(range(self.depth)),
            "write_data": In(unsigned(width)),
            "write_en": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        low = bits(CHUNK) if self.depth > CHUNK else len(self.read_addr)
        outputs, spans = [], chunks(self.depth)
        addresses = register_copies(m, self.read_addr[:low], len(spans), "chunk_addr")
        # The write too, registered per chunk beside its block RAMs: one write word reaching every
        # chunk, and its enable choosing each chunk's address, were late (-0.4 ns at 140f86a).
        write_addrs = register_copies(m, self.write_addr[:low], len(spans), "chunk_write_addr")
        write_datas = register_copies(m, self.write_data, len(spans), "chunk_write_data")
        for k, (start, size, distributed) in enumerate(spans):
            m.submodules[f"chunk{k}"] = mem = memory.Memory(shape=unsigned(self.width), depth=size,
                                                            init=self.init[start:start + size],
                                                            attrs=DISTRIBUTED if distributed else None)
            read, write = mem.read_port(), mem.write_port()
            held = Signal(self.width, name=f"held{k}")
            port, writing = Signal(low, name=f"port{k}"), Signal(name=f"chunk_writing{k}")
            m.d.sync += writing.eq(self.write_en & (self.write_addr[low:] == k))
            m.d.comb += [write.data.eq(write_datas[k]), write.en.eq(writing),
                         port.eq(Mux(writing, write_addrs[k], addresses[k])),
                         read.addr.eq(port), write.addr.eq(port)]
            m.d.sync += held.eq(read.data)
            outputs.append(held)
        if len(outputs) == 1:
            m.d.comb += self.read_data.eq(outputs[0])
            return m
        chosen = [Signal(len(self.read_addr) - low, name=f"chunk_chosen{s}") for s in range(self.LATENCY)]
        m.d.sync += [chosen[0].eq(self.read_addr[low:]), *(chosen[s].eq(chosen[s - 1]) for s in range(1, self.LATENCY))]
        m.d.comb += self.read_data.eq(Array(outputs)[chosen[-1]])
        return m
