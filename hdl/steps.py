"""The step-record decoder: the records of a STEPS payload to the core's input events.

Records are those of :func:`firmware.protocol.encode_steps`: silent runs, index lists, bitmaps,
graded lists and gap lists. Every event is checked before it is issued (index below the layer's size,
indices ascending, amplitude in ``1..ONE``); the first bad record stops the decoder with an
error, and the device then abandons the sample.
"""

from amaranth import Cat, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from firmware.protocol import GAP_SHORT_LIMIT
from firmware.protocol import RECORD_BITMAP as BITMAP
from firmware.protocol import RECORD_GAP_LIST as GAP_LIST
from firmware.protocol import RECORD_GRADED_LIST as GRADED_LIST
from firmware.protocol import RECORD_INDEX_LIST as INDEX_LIST
from firmware.protocol import RECORD_SILENT_LIMIT as RUN_LIMIT

from .layouts import event_layout

__all__ = ["StepDecoder", "DECODE_OK", "DECODE_BAD_RECORD", "DECODE_TOO_MANY_STEPS"]

#: ``error`` values.
DECODE_OK, DECODE_BAD_RECORD, DECODE_TOO_MANY_STEPS = range(3)


class StepDecoder(wiring.Component):
    """Decodes step records into input events, one event per cycle at best.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    max_inputs : int
        Inputs of the core's first layer (the event index width).

    Members
    -------
    bytes : In(stream.Signature(8))
        The records.
    exhausted : In(1)
        No byte will follow; a record still waiting for one is truncated.
    events : Out(stream.Signature(event_layout))
        Input events, each step closed by an ``end`` word.
    n_inputs : In
        Inputs of the loaded network.
    full : In(1)
        The sample already has all its steps: another ``end`` is an error.
    clear : In(1)
        Forget any record in progress and any error (a new frame starts).
    idle : Out(1)
        Between records, nothing pending.
    error : Out(2)
        ``DECODE_*``; sticky until ``clear``.
    """

    def __init__(self, config, max_inputs):
        self.config, self.max_inputs = config, max_inputs
        super().__init__({
            "bytes": In(stream.Signature(unsigned(8))),
            "exhausted": In(1),
            "events": Out(stream.Signature(event_layout(config, max_inputs))),
            "n_inputs": In(range(max_inputs + 1)),
            "full": In(1),
            "clear": In(1),
            "idle": Out(1),
            "error": Out(2),
        })

    def elaborate(self, platform):
        m = Module()
        one = self.config.one
        byte = self.bytes.payload
        take = Signal()
        m.d.comb += take.eq(self.bytes.valid & self.bytes.ready)

        kind = Signal(8)
        low = Signal(8)
        count = Signal(16)      # events (or silent steps) left in the record
        index = Signal(18)      # wide enough for previous + the longest gap: no wrap into range
        previous = Signal(17)   # last index of the record, plus one (0: none yet)
        amplitude = Signal(16)
        bits = Signal(8)        # bitmap byte being expanded
        bitmap_byte = Signal(16)
        bitmap_bytes = Signal(16)
        # A register (``n_inputs`` changes at COMMIT, records come frames later): the add then the
        # comparison into the state machine was the ULX3S build's critical path (11.1 ns at 34ee0bb).
        m.d.sync += bitmap_bytes.eq((self.n_inputs + 7) >> 3)
        # Every index is checked before its event is offered, into ``index_bad``, a register, so
        # that ``events.valid`` waits on no comparison: the check in the event state, through the
        # valid, the inbox's push and into the core's input word, was the ULX3S build's critical
        # path (10.9 ns at 079f43d); made on the arriving byte into the state machine, it was
        # late there (0.7 ns at cfea7ff).
        index_bad = Signal()
        # Room above the record's last index (``previous <= n_inputs`` always: every index issued
        # was checked): a gap is in range if below it. A record starts with the whole layer; after
        # each event, ``previous`` and ``room`` follow from its index, registers, not from the
        # arriving gap (the gap's add into ``previous``, waiting on the byte's ``take``, was late:
        # 0.4 ns at 8cf1abb).
        room = Signal(17)
        # The bitmap's last byte, and its bits past the layer's inputs (which must be clear).
        last_byte = Signal(16)
        tail_forbidden = Signal(8)
        m.d.sync += [last_byte.eq(bitmap_bytes - 1),
                     tail_forbidden.eq(Mux(self.n_inputs[:3] == 0, 0, (0xFF << self.n_inputs[:3])[:8]))]

        ev = self.events.payload
        m.d.comb += [ev.index.eq(index), ev.amplitude.eq(amplitude)]

        def fail(code):
            m.d.sync += self.error.eq(code)
            m.next = "FAILED"

        def need_byte():
            """Wait for the next byte of the record; without one the record is truncated."""
            m.d.comb += self.bytes.ready.eq(1)
            with m.If(~self.bytes.valid & self.exhausted):
                fail(DECODE_BAD_RECORD)
            return m.If(take)

        with m.FSM(name="decoder"):
            with m.State("RECORD"):
                m.d.comb += [self.bytes.ready.eq(1), self.idle.eq(~self.bytes.valid)]
                with m.If(take):
                    m.d.sync += [kind.eq(byte), previous.eq(0), bitmap_byte.eq(0), room.eq(self.n_inputs)]
                    with m.If(byte < RUN_LIMIT):
                        m.d.sync += count.eq(byte + 1)
                        m.next = "SILENT"
                    with m.Elif((byte == INDEX_LIST) | (byte == GRADED_LIST)):
                        m.next = "COUNT_LOW"
                    with m.Elif(byte == BITMAP):
                        m.next = "BITMAP_BYTE"
                    with m.Elif(byte >= GAP_LIST):
                        m.d.sync += count.eq(byte - GAP_LIST + 1)
                        m.next = "GAP"
                    with m.Else():
                        fail(DECODE_BAD_RECORD)
            with m.State("SILENT"):
                with m.If(count == 0):
                    m.next = "RECORD"
                with m.Elif(self.full):
                    fail(DECODE_TOO_MANY_STEPS)
                with m.Else():
                    m.d.comb += [self.events.valid.eq(1), ev.end.eq(1)]
                    with m.If(self.events.ready):
                        m.d.sync += count.eq(count - 1)
            with m.State("COUNT_LOW"):
                with need_byte():
                    m.d.sync += low.eq(byte)
                    m.next = "COUNT_HIGH"
            with m.State("COUNT_HIGH"):
                # An empty list is seen in INDEX_LOW, from the register: the arriving byte's
                # comparison into the state machine was late (0.09 ns at f555d90, seed 4).
                with need_byte():
                    m.d.sync += count.eq(Cat(low, byte))
                    m.next = "INDEX_LOW"
            with m.State("INDEX_LOW"):
                with m.If(count == 0):
                    m.next = "END_STEP"
                with m.Else():
                    with need_byte():
                        m.d.sync += low.eq(byte)
                        m.next = "INDEX_HIGH"
            with m.State("INDEX_HIGH"):
                with need_byte():
                    value = Cat(low, byte)
                    # The index is checked into ``index_bad`` and the record fails in EVENT: the
                    # check's comparisons, on the arriving byte into the registers' enables and
                    # the state machine, were the ULX3S build's critical path (10.7 ns at 140f86a).
                    m.d.sync += [index.eq(value), amplitude.eq(one),
                                 index_bad.eq((value >= self.n_inputs) | (value < previous))]
                    with m.If(kind == GRADED_LIST):
                        m.next = "AMPLITUDE_LOW"
                    with m.Else():
                        m.next = "EVENT"
            with m.State("GAP"):
                with need_byte():
                    with m.If(byte >= GAP_SHORT_LIMIT):
                        m.d.sync += low.eq(byte - GAP_SHORT_LIMIT)
                        m.next = "GAP_LOW"
                    with m.Else():
                        m.d.sync += [index.eq(previous + byte), amplitude.eq(one), index_bad.eq(byte >= room)]
                        m.next = "EVENT"
            with m.State("GAP_LOW"):
                with need_byte():
                    gap = Cat(byte, low[:7])
                    m.d.sync += [index.eq(previous + gap), amplitude.eq(one), index_bad.eq(gap >= room)]
                    m.next = "EVENT"
            with m.State("AMPLITUDE_LOW"):
                with need_byte():
                    m.d.sync += low.eq(byte)
                    m.next = "AMPLITUDE_HIGH"
            with m.State("AMPLITUDE_HIGH"):
                with need_byte():
                    value = Cat(low, byte)
                    # Checked into ``index_bad`` with the index, the record failing in EVENT.
                    m.d.sync += [amplitude.eq(value), index_bad.eq(index_bad | (value == 0) | (value > one))]
                    m.next = "EVENT"
            with m.State("EVENT"):
                m.d.sync += [previous.eq(index + 1), room.eq(self.n_inputs - index - 1)]
                with m.If(index_bad):
                    fail(DECODE_BAD_RECORD)
                with m.Else():
                    m.d.comb += self.events.valid.eq(1)
                    with m.If(self.events.ready):
                        m.d.sync += count.eq(count - 1)
                        with m.If(count == 1):
                            m.next = "END_STEP"
                        with m.Elif(kind >= GAP_LIST):
                            m.next = "GAP"
                        with m.Else():
                            m.next = "INDEX_LOW"
            with m.State("BITMAP_BYTE"):
                with m.If(bitmap_byte == bitmap_bytes):
                    m.next = "END_STEP"
                with m.Else():
                    with need_byte():
                        m.d.sync += [bits.eq(byte), amplitude.eq(one),
                                     index.eq(bitmap_byte << 3), bitmap_byte.eq(bitmap_byte + 1)]
                        m.d.sync += index_bad.eq((bitmap_byte == last_byte) & (byte & tail_forbidden).any())
                        m.next = "BITMAP_BITS"
            with m.State("BITMAP_BITS"):
                # One cycle per bit up to the byte's highest set bit.
                with m.If(index_bad):
                    fail(DECODE_BAD_RECORD)
                with m.Elif(bits == 0):
                    m.next = "BITMAP_BYTE"
                with m.Elif(bits[0]):
                    m.d.comb += self.events.valid.eq(1)
                    with m.If(self.events.ready):
                        m.d.sync += [bits.eq(bits >> 1), index.eq(index + 1)]
                with m.Else():
                    m.d.sync += [bits.eq(bits >> 1), index.eq(index + 1)]
            with m.State("END_STEP"):
                with m.If(self.full):
                    fail(DECODE_TOO_MANY_STEPS)
                with m.Else():
                    m.d.comb += [self.events.valid.eq(1), ev.end.eq(1)]
                    with m.If(self.events.ready):
                        m.next = "RECORD"
            with m.State("FAILED"):
                pass
        # ``clear`` returns every register, the FSM and ``error`` included, to its reset value.
        return ResetInserter(self.clear)(m)
