"""The queue between two layers: blocks of spikes from the update unit, handed out as one input event at a time.

A block word enters when it holds a spike or closes its step (``last``). The head word's
lowest-numbered remaining spike is offered as ``event`` (index ``block * P + lane``); when none is
left and the word is ``last``, the step's end is offered. Taking the event moves to the next spike,
or to the next word, without a cycle in between.
"""

from amaranth import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from .layouts import bits

__all__ = ["SpikeQueue"]


class SpikeQueue(wiring.Component):
    """A FIFO of spike blocks with an event picker on its output.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    lanes : int
    max_blocks, depth : int
        Blocks of the layer below at most; words the FIFO holds.

    Members
    -------
    push : In(data.StructLayout)
        ``valid``, ``block``, ``spikes`` (``P`` amplitudes), ``last``; pushed only if it has a spike or is ``last``.
    event : Out(data.StructLayout)
        ``valid``; ``end`` or an event ``index`` with ``amplitude``.
    take : In(1)
        The offered event (or end) is consumed.
    level : Out
        Words held.
    """

    def __init__(self, config, lanes, max_blocks, depth):
        self.config, self.lanes, self.max_blocks, self.depth = config, lanes, max_blocks, depth
        self.word = data.StructLayout({"block": unsigned(bits(max_blocks)), "last": 1,
                                       "spikes": unsigned(lanes * config.spike_width)})
        super().__init__({
            "push": In(data.StructLayout({"valid": 1, "block": unsigned(bits(max_blocks)), "last": 1,
                                          "spikes": unsigned(lanes * config.spike_width)})),
            "event": Out(data.StructLayout({"valid": 1, "end": 1, "index": unsigned(bits(max_blocks * lanes)),
                                            "amplitude": unsigned(config.spike_width)})),
            "take": In(1),
            "level": Out(range(depth + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        P, SW = self.lanes, self.config.spike_width
        m.submodules.fifo = queue = fifo.SyncFIFO(width=self.word.size, depth=self.depth)
        push = self.push
        nonzero = Cat(*(push.spikes[p * SW:(p + 1) * SW] != 0 for p in range(P)))
        incoming = Signal(self.word)
        m.d.comb += [incoming.block.eq(push.block), incoming.last.eq(push.last), incoming.spikes.eq(push.spikes),
                     queue.w_data.eq(incoming), queue.w_en.eq(push.valid & (nonzero.any() | push.last)),
                     self.level.eq(queue.level)]

        head = Signal(self.word)
        m.d.comb += head.eq(queue.r_data)
        spikes = Array(head.spikes[p * SW:(p + 1) * SW] for p in range(P))
        # Lanes of the head word still to hand out: all its spikes when the word is new.
        fresh, mask = Signal(init=1), Signal(P)
        remaining = Signal(P)
        m.d.comb += remaining.eq(Mux(fresh, Cat(*(spikes[p] != 0 for p in range(P))), mask))
        pick = Signal(range(max(2, P)))
        for p in reversed(range(P)):
            with m.If(remaining[p]):
                m.d.comb += pick.eq(p)
        event = self.event
        m.d.comb += [event.valid.eq(queue.r_rdy), event.end.eq(remaining == 0),
                     event.index.eq(head.block * P + pick), event.amplitude.eq(spikes[pick])]
        with m.If(queue.r_rdy & self.take):
            left = remaining & ~(1 << pick)
            with m.If(remaining == 0):                       # the end: the word is done
                m.d.comb += queue.r_en.eq(1)
                m.d.sync += fresh.eq(1)
            with m.Elif((left == 0) & ~head.last):           # its last spike, and no end to offer
                m.d.comb += queue.r_en.eq(1)
                m.d.sync += fresh.eq(1)
            with m.Else():
                m.d.sync += [mask.eq(left), fresh.eq(0)]
        return m
