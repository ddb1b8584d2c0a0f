"""The queue between two layers: blocks of spikes from the update unit, handed out as one input event at a time.

A block word enters when it holds a spike or closes its step (``last``). The head word's
lowest-numbered remaining spike is offered as ``event`` (index ``block * P + lane``); when none is
left and the word is ``last``, the step's end is offered. Taking the event moves to the next spike,
or to the next word, without a cycle in between.

A block arrives with its summary (:func:`summary_layout`: which lanes spike, and its first event),
worked out by the update unit a stage before the block leaves it (:func:`first_event`), so that
the queue stores what it is given: computed here from the arriving spikes, the summary was the
device's critical path (16.6 ns on ECP5, router2, at ``e3d0d09``).
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .arith import nudged
from .layouts import bits

__all__ = ["SpikeQueue", "summary_layout", "first_event"]


def summary_layout(config, lanes, max_blocks):
    """A block's spikes, summarised: ``spiking`` (a bit per lane whose spike is not 0) and the
    lowest such lane's event: ``first_lane``, ``first_index`` (``block * P + lane``) and
    ``first_amplitude`` (all 0 when no lane spikes)."""
    return data.StructLayout({"spiking": lanes, "first_lane": range(max(2, lanes)),
                              "first_index": unsigned(bits(max_blocks * lanes)),
                              "first_amplitude": unsigned(config.spike_width)})


def first_event(m, block, spikes, spiking):
    """The lowest lane set in ``spiking``, of a block's ``spikes`` (one value per lane):
    ``(index, amplitude, lane)``, as combinational values (0 when none is set).

    A balanced tree: each node passes on its left half's lane and amplitude if any of that half
    is set, else its right half's, so the amplitude is ``log2 P`` multiplexers after the spiking
    bits (a priority encoder then a ``P``-way multiplexer by the lane found was late on the update
    unit's exit, 0.3 ns at 8cf1abb).
    """
    P = len(spikes)
    width = max(1, (P - 1).bit_length())
    # Nodes: (any set, lane within the node, amplitude), leaves first.
    nodes = [(spiking[p], Const(0, 0), spikes[p]) for p in range(P)]
    while len(nodes) > 1:
        paired = []
        for k in range(0, len(nodes), 2):
            if k + 1 == len(nodes):
                left_any, left_lane, left_value = nodes[k]
                paired.append((left_any, Cat(left_lane, Const(0, 1)), left_value))
                continue
            (left_any, left_lane, left_value), (right_any, right_lane, right_value) = nodes[k], nodes[k + 1]
            paired.append((left_any | right_any, Cat(Mux(left_any, left_lane, right_lane), ~left_any & right_any),
                           Mux(left_any, left_value, Mux(right_any, right_value, 0))))
        nodes = paired
    found_any, found, value = nodes[0]
    if P == 1:
        value = Mux(found_any, value, 0)
    pick, amplitude = Signal(range(max(2, P))), Signal.like(spikes[0])
    m.d.comb += [pick.eq(found[:width]), amplitude.eq(value)]
    # With P a power of two the index is the block's bits above the lane's, no adder.
    index = Cat(pick[:P.bit_length() - 1], block) if P >= 2 and P & (P - 1) == 0 else block * P + pick
    return index, amplitude, pick


class SpikeQueue(wiring.Component):
    """A FIFO of spike blocks (its first two words in registers) with an event picker on its output.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    lanes : int
    max_blocks, depth : int
        Blocks of the layer below at most; words the FIFO holds.

    Members
    -------
    push : In(data.StructLayout)
        ``valid``, ``block``, ``spikes`` (``P`` amplitudes), ``last``, and the spikes' ``summary``
        (:func:`summary_layout`), and ``keep``: it has a spike or is ``last``, worked out by the
        producer a cycle ahead (a register there); stored only if kept.
    event : Out(data.StructLayout)
        ``valid``; ``end`` or an event ``index`` with ``amplitude``.
    take : In(1)
        The offered event (or end) is consumed.
    level : Out
        Words held (a register).
    stores, pops : Out(1)
        A word is stored this cycle; the head word leaves if taken this cycle (from registers).
        The level's change is ``stores - (take & pops)``: a register that follows it (the
        scheduler's room) works it out beside its own take, which then does not travel here and
        back (through this queue's pop, the room was late in every placement at 2cf52db: up to
        1.6 ns, 9 ns of routing).
    """

    def __init__(self, config, lanes, max_blocks, depth):
        self.config, self.lanes, self.max_blocks, self.depth = config, lanes, max_blocks, depth
        index = unsigned(bits(max_blocks * lanes))
        # A stored word: the block, its spikes and their summary, so that a new head word's event
        # is read, not computed.
        # ``pops``: its first take pops it (no spike, or one and not ``last``).
        self.word = data.StructLayout({"block": unsigned(bits(max_blocks)), "last": 1, "pops": 1, "quiet": 1,
                                       "spikes": unsigned(lanes * config.spike_width),
                                       "summary": summary_layout(config, lanes, max_blocks)})
        super().__init__({
            "push": In(data.StructLayout({"valid": 1, "block": unsigned(bits(max_blocks)), "last": 1, "keep": 1,
                                          "spikes": unsigned(lanes * config.spike_width),
                                          "summary": summary_layout(config, lanes, max_blocks)})),
            "event": Out(data.StructLayout({"valid": 1, "end": 1, "index": index,
                                            "amplitude": unsigned(config.spike_width)})),
            "take": In(1),
            "level": Out(range(depth + 1)),
            "stores": Out(1),
            "pops": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, SW = self.lanes, self.config.spike_width
        push = self.push

        def lanes_of(word):
            return [word[p * SW:(p + 1) * SW] for p in range(P)]

        def at_most_one(lanes):
            return (lanes & (lanes - 1)) == 0

        incoming = Signal(self.word)
        m.d.comb += [incoming.block.eq(push.block), incoming.last.eq(push.last), incoming.spikes.eq(push.spikes),
                     incoming.summary.eq(push.summary),
                     incoming.pops.eq(at_most_one(push.summary.spiking) & (~push.last | (push.summary.spiking == 0))),
                     incoming.quiet.eq(push.summary.spiking == 0)]
        # Whether the word is stored waits on no logic here: ``stored`` meets the scheduler's take
        # in the queue's pointers (worked out here from the summary, with the take, it ended the ULX3S
        # build's critical path at 8785342: 12.3 ns, 7 of it routing from the update unit and back).
        stored = push.valid & push.keep

        # The FIFO: a memory of words and, in front of it, two words in registers (``head``, offered,
        # and ``second``). Whatever the scheduler takes moves only those two registers and the level:
        # the memory's pointers, which reach every cell of a wide distributed RAM spread over many
        # slices, move on registers alone (``second`` empty, the memory not empty) and on ``stored``
        # (from the update unit's registers). With one head register, the take moved the pointers
        # too, and its path into them crossed the chip (the queue's pointers were late in every
        # placement from f555d90 to a1645ab: up to 2.2 ns, 10.5 ns of it routing).
        #
        # The registers are refilled whenever ``second`` is empty, from the memory, or from the word
        # pushed when the memory is empty; so a head that leaves has its follower in ``second`` or
        # arriving, and the head is offered on exactly the cycles it was with one register (whenever
        # the queue holds a word), which keeps the cycle model. The memory holds ``depth - 1`` words:
        # with a word stored as the head leaves, it can hold ``depth - 1`` while ``head`` holds the rest.
        head, head_valid, popped = Signal(self.word, name="head"), Signal(name="head_valid"), Signal(name="popped")
        second, second_valid = Signal(self.word, name="second"), Signal(name="second_valid")
        behind = self.depth - 1
        m.submodules.storage = storage = memory.Memory(shape=self.word, depth=max(1, behind), init=[])
        write, read = storage.write_port(), storage.read_port(domain="comb")
        produce, consume = Signal(range(max(1, behind)), name="produce"), Signal(range(max(1, behind)), name="consume")
        waiting = Signal(range(behind + 1), name="waiting")
        in_memory = Signal(name="in_memory")       # waiting != 0, a register
        m.d.comb += [read.addr.eq(consume), write.addr.eq(produce), write.data.eq(incoming)]
        # Every stored word is written to the memory, and one that goes straight to the registers is
        # skipped there (``consume`` passes it): the memory's write enable, which reaches every cell
        # of a wide word, waits on nothing but ``stored``.
        m.d.comb += write.en.eq(stored)
        refill = Signal(name="refill")          # a word enters the registers: from the memory, else pushed
        entering = Signal(self.word, name="entering")
        to_registers = stored & ~in_memory & ~second_valid
        m.d.comb += [refill.eq(~second_valid & (in_memory | stored)),
                     entering.eq(Mux(in_memory, read.data, incoming))]

        def after(pointer):
            return Mux(pointer == behind - 1, 0, pointer + 1)

        from_memory = in_memory & ~second_valid
        with m.If(stored):
            m.d.sync += produce.eq(after(produce))
        with m.If(refill):
            m.d.sync += consume.eq(after(consume))
        count = Signal(range(behind + 2))
        m.d.comb += count.eq(nudged(waiting, (stored & ~to_registers) - from_memory, -1, 1))
        m.d.sync += [waiting.eq(count), in_memory.eq(count != 0)]
        # The two registers: the head leaves (``popped``, the take) and the next moves up or enters.
        with m.If(popped):
            with m.If(second_valid):
                m.d.sync += [head.eq(second), second_valid.eq(0)]
            with m.Elif(refill):
                m.d.sync += head.eq(entering)
            with m.Else():
                m.d.sync += head_valid.eq(0)
        with m.Elif(refill):
            with m.If(head_valid):
                m.d.sync += [second.eq(entering), second_valid.eq(1)]
            with m.Else():
                m.d.sync += [head.eq(entering), head_valid.eq(1)]
        # The level (words in the registers and the memory) in a register of its own, kept by the
        # same events: the scheduler's room test starts from it (through the adder, it was on the
        # device's critical path, 12.2 ns router1 at 903b1c7).
        move = Signal(signed(2))
        m.d.comb += [move.eq(stored - popped), self.stores.eq(stored)]
        m.d.sync += self.level.eq(nudged(self.level, move, -1, 1))

        # The head word's events: a new word's first from the word itself; each later one worked
        # out the cycle before, as the one before it is taken, and held in registers.
        fresh = Signal(init=1)
        mask, next_index, next_amplitude = Signal(P), Signal.like(self.event.index), Signal(SW)
        next_lane = Signal.like(head.summary.first_lane)
        summary = head.summary
        remaining = Mux(fresh, summary.spiking, mask)
        event = self.event
        # Whether the step's end is offered (no spike left), from registers: the word's ``quiet``
        # when fresh, else ``mask_quiet``, set with the mask (tested on ``remaining``, the end was
        # three LUTs deep before the scheduler's choice, late at a1645ab into its issue registers).
        mask_quiet = Signal()
        m.d.comb += [event.valid.eq(head_valid), event.end.eq(Mux(fresh, head.quiet, mask_quiet)),
                     event.index.eq(Mux(fresh, summary.first_index, next_index)),
                     event.amplitude.eq(Mux(fresh, summary.first_amplitude, next_amplitude))]
        # The lane being handed out now, and what is left after it.
        now = Signal.like(next_lane)
        m.d.comb += now.eq(Mux(fresh, summary.first_lane, next_lane))
        left = Signal(P)
        m.d.comb += left.eq(remaining & ~(1 << now))
        after_index, after_amplitude, after_lane = first_event(m, head.block, lanes_of(head.spikes), left)
        # Whether this take pops the word (the end taken, or its last spike with no end to offer),
        # known from registers: the word's ``pops`` when fresh, else worked out as ``mask`` was.
        # Found from ``remaining`` at the take, the pop (through the pointers, the level and the
        # scheduler's room) waited on the mask's multiplexer and its tests.
        mask_pops = Signal()
        m.d.comb += self.pops.eq(head_valid & Mux(fresh, head.pops, mask_pops))
        with m.If(head_valid & self.take):
            with m.If(Mux(fresh, head.pops, mask_pops)):
                m.d.comb += popped.eq(1)
                m.d.sync += fresh.eq(1)
            with m.Else():
                m.d.sync += [mask.eq(left), fresh.eq(0), next_lane.eq(after_lane), next_index.eq(after_index),
                             next_amplitude.eq(after_amplitude),
                             mask_pops.eq(at_most_one(left) & (~head.last | (left == 0))), mask_quiet.eq(left == 0)]
        return m
