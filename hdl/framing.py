"""The frame layer of the link: bytes to checked frames and back (:mod:`firmware.protocol`'s framing).

A frame is ``0xA5 | type | seq | length (LE) | payload | CRC-16 (BE)``. The receiver keeps
payloads in a buffer of two slots, so one frame can arrive while the previous one is being
executed. It is, state for state, the receiver of :class:`firmware.protocol.FrameDecoder`, with
two cycles after a frame's last byte to check its CRC.
"""

from amaranth import Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from firmware.protocol import MAX_PAYLOAD, SYNC, ErrorCode

from .layouts import UNCHECKED, registered_read

__all__ = ["frame_layout", "FrameReceiver", "PayloadReader", "FrameSender"]


def frame_layout(max_payload):
    """What the receiver reports per frame: a good frame (``error`` 0, payload in buffer ``slot``)
    or an :class:`~firmware.protocol.ErrorCode` with the frame's ``type``, ``seq`` and a ``detail``."""
    return data.StructLayout({"type": 8, "seq": 8, "length": unsigned(16), "slot": 1, "error": 4, "detail": 16})


class FrameReceiver(wiring.Component):
    """Finds frames in a byte stream, checks their length and CRC, and buffers their payloads.

    After a bad CRC or an oversize length it reports the error and hunts for the next ``0xA5``
    in the bytes that follow; a frame cut short is dropped, with a ``TIMEOUT`` report, once the
    line has been silent for ``timeout`` cycles. Reports carry the type and seq read so far. While two frames wait to be executed it takes
    no more bytes (the link's flow control is one request, one reply; see docs/PROTOCOL.md).

    Parameters
    ----------
    max_payload : int
        Longest payload accepted; longer frames get ``OVERSIZE``.
    timeout : int
        Idle cycles after which a frame in progress is dropped.

    Members
    -------
    bytes : In(stream.Signature(8))
        The received bytes.
    frames : Out(stream.Signature(frame_layout))
        One word per frame or error; taking it (``ready``) frees the frame's buffer slot.
    read_addr : In
        Buffer address, ``slot * max_payload + offset``.
    read_data : Out(8)
        The byte at ``read_addr`` of the previous cycle.
    """

    def __init__(self, max_payload=MAX_PAYLOAD, timeout=1_000_000):
        self.max_payload, self.timeout = max_payload, timeout
        super().__init__({
            "bytes": In(stream.Signature(unsigned(8))),
            "frames": Out(stream.Signature(frame_layout(max_payload))),
            "read_addr": In(range(2 * max_payload)),
            "read_data": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        # A frame is read from its slot only once it is complete, while frames arrive into the other:
        # a read and a write never meet at one address (registered_read, no collision logic).
        m.submodules.buffer = buf = memory.Memory(shape=8, depth=2 * self.max_payload, init=[], attrs=UNCHECKED)
        wp, (rp, read_data) = buf.write_port(), registered_read(m, buf, "buffer")
        m.d.comb += [rp.addr.eq(self.read_addr), self.read_data.eq(read_data)]
        m.submodules.crc = crc = catalog.CRC16_CCITT_FALSE(data_width=8).create()
        # Two frames may wait: one being executed, one complete behind it.
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=len(self.frames.payload.as_value()), depth=2)
        m.d.comb += [self.frames.payload.eq(queue.r_data), self.frames.valid.eq(queue.r_rdy),
                     queue.r_en.eq(self.frames.ready)]
        report = Signal(frame_layout(self.max_payload))
        m.d.comb += queue.w_data.eq(report)

        slot = Signal()
        kind = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        offset = Signal(range(self.max_payload + 1))
        good = Signal()
        idle = Signal(range(self.timeout + 1))
        byte = self.bytes.payload
        take = Signal()
        m.d.comb += [self.bytes.ready.eq(queue.w_rdy), take.eq(self.bytes.valid & self.bytes.ready),
                     crc.data.eq(byte), wp.data.eq(byte), wp.addr.eq(slot * self.max_payload + offset)]

        def push(error=0, detail=0):
            m.d.comb += [queue.w_en.eq(1), report.type.eq(kind), report.seq.eq(seq), report.length.eq(length),
                         report.slot.eq(slot), report.error.eq(error), report.detail.eq(detail)]

        # A frame in progress that the line abandons (a stalled line is not an idle one).
        expired = Signal()
        m.d.comb += expired.eq(~take & queue.w_rdy & (idle == self.timeout - 1))
        with m.If(take | ~queue.w_rdy):
            m.d.sync += idle.eq(0)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)

        def next_byte():
            """The frame state waits for a byte; ``m.If(take)`` inside, the timeout beside it."""
            with m.If(expired):
                push(ErrorCode.TIMEOUT)
                m.next = "HUNT"
            return m.If(take)

        with m.FSM(name="receiver"):
            with m.State("HUNT"):
                with m.If(take & (byte == SYNC)):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += [kind.eq(0), seq.eq(0)]  # what a TIMEOUT reports before they arrive
                    m.next = "TYPE"
            with m.State("TYPE"):
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += kind.eq(byte)
                    m.next = "SEQ"
            with m.State("SEQ"):
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += seq.eq(byte)
                    m.next = "LENGTH_LOW"
            with m.State("LENGTH_LOW"):
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += length[:8].eq(byte)
                    m.next = "LENGTH_HIGH"
            with m.State("LENGTH_HIGH"):
                full = byte.as_unsigned() << 8 | length[:8]
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += [length[8:].eq(byte), offset.eq(0)]
                    with m.If(full > self.max_payload):
                        push(ErrorCode.OVERSIZE, full)
                        m.next = "HUNT"
                    with m.Elif(full == 0):
                        m.next = "CRC_HIGH"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                with next_byte():
                    m.d.comb += [crc.valid.eq(1), wp.en.eq(1)]
                    m.d.sync += offset.eq(offset + 1)
                    with m.If(offset == length - 1):
                        m.next = "CRC_HIGH"
            # The CRC's two bytes go through the CRC too: a good frame leaves the residue
            # (``match_detected``), a register's test, registered in turn, then reported (the
            # frame's CRC compared with the computed one, into the report's push, was the device's
            # critical path: 12.9 ns, router1, at 8ede911). Two cycles per frame, no byte taken.
            with m.State("CRC_HIGH"):
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                with next_byte():
                    m.d.comb += crc.valid.eq(1)
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.bytes.ready.eq(0)
                m.d.sync += good.eq(crc.match_detected)
                m.next = "REPORT"
            with m.State("REPORT"):
                m.d.comb += self.bytes.ready.eq(0)
                push(Mux(good, 0, ErrorCode.BAD_CRC))
                with m.If(good):
                    m.d.sync += slot.eq(~slot)
                m.next = "HUNT"
        return m


class PayloadReader(wiring.Component):
    """Streams ``length`` bytes of a buffer, from ``base``, after a ``start`` pulse.

    Members
    -------
    start : In(1)
    base, length : In
    read_addr : Out
    read_data : In(8)
        The buffer's synchronous read port (data one cycle after the address).
    bytes : Out(stream.Signature(8))
    exhausted : Out(1)
        Every byte has been handed out.
    """

    def __init__(self, depth, max_payload=MAX_PAYLOAD):
        super().__init__({
            "start": In(1), "base": In(range(depth)), "length": In(range(max_payload + 1)),
            "read_addr": Out(range(depth)), "read_data": In(8),
            "bytes": Out(stream.Signature(unsigned(8))), "exhausted": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        left = Signal.like(self.length)
        addr = Signal.like(self.read_addr)
        fresh = Signal()            # a read was addressed last cycle: its byte is on read_data
        # The bytes wait in a three-word FIFO, and a read is addressed while the FIFO has room for it
        # and the one in flight: a test of registers alone. (Fetching when the consumer was ready
        # put the dispatcher's routing of ``ready`` on the read address's enable: the device's
        # critical path, 11.4 ns router1 at 8ede911.) The FIFO's output is a register (buffered):
        # the consumers check each byte as it is taken (the loader's checks after an unbuffered
        # FIFO's read multiplexer were the critical path, 11.7 ns at 3a78b80). ``start`` empties it.
        queue = fifo.SyncFIFOBuffered(width=8, depth=3)
        m.submodules.queue = ResetInserter(self.start)(queue)
        can_fetch = (left != 0) & (queue.level + fresh < queue.depth)
        m.d.comb += [queue.w_data.eq(self.read_data), queue.w_en.eq(fresh),
                     self.bytes.valid.eq(queue.r_rdy), self.bytes.payload.eq(queue.r_data),
                     queue.r_en.eq(self.bytes.ready), self.read_addr.eq(addr),
                     self.exhausted.eq((left == 0) & ~fresh & (queue.level == 0))]
        with m.If(self.start):
            m.d.sync += [addr.eq(self.base), left.eq(self.length), fresh.eq(0)]
        with m.Else():
            m.d.sync += fresh.eq(can_fetch)
            with m.If(can_fetch):
                m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
        return m


class FrameSender(wiring.Component):
    """Frames a body (type, seq, length LE, payload) with the sync byte and the CRC.

    Members
    -------
    body : In(stream.Signature(data.StructLayout({"data": 8, "last": 1})))
        ``type``, ``seq``, two length bytes, then the payload; ``last`` marks the final byte.
    bytes : Out(stream.Signature(8))
        The frame, to the transmitter.
    """

    def __init__(self):
        super().__init__({
            "body": In(stream.Signature(data.StructLayout({"data": 8, "last": 1}))),
            "bytes": Out(stream.Signature(unsigned(8))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = catalog.CRC16_CCITT_FALSE(data_width=8).create()
        m.d.comb += crc.data.eq(self.body.payload.data)
        with m.FSM(name="sender"):
            with m.State("IDLE"):
                m.d.comb += [self.bytes.valid.eq(self.body.valid), self.bytes.payload.eq(SYNC)]
                with m.If(self.bytes.valid & self.bytes.ready):
                    m.d.comb += crc.start.eq(1)
                    m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += [self.bytes.valid.eq(self.body.valid), self.bytes.payload.eq(self.body.payload.data),
                             self.body.ready.eq(self.bytes.ready)]
                with m.If(self.body.valid & self.body.ready):
                    m.d.comb += crc.valid.eq(1)
                    with m.If(self.body.payload.last):
                        m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                m.d.comb += [self.bytes.valid.eq(1), self.bytes.payload.eq(crc.crc[8:])]
                with m.If(self.bytes.ready):
                    m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                m.d.comb += [self.bytes.valid.eq(1), self.bytes.payload.eq(crc.crc[:8])]
                with m.If(self.bytes.ready):
                    m.next = "IDLE"
        return m
