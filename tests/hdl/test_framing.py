"""The frame layer in gateware against :class:`firmware.protocol.FrameDecoder`: the same receiver, state for state."""

from amaranth import Module
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.protocol import SYNC, ErrorCode, Frame, FrameDecoder, FrameError, Type, encode_frame
from hdl.framing import FrameReceiver, FrameSender, PayloadReader
from sim.streams import random_pauses, stream_get

MAX_PAYLOAD, TIMEOUT = 48, 40


def reference(script):
    """What the software receiver reports for ``script`` (bytes, and ints for idle gaps)."""
    decoder, events = FrameDecoder(MAX_PAYLOAD), []
    for item in script:
        if isinstance(item, int):
            if item >= TIMEOUT:
                events += decoder.timeout()
        else:
            events += decoder.feed(item)
    return events + decoder.timeout()   # the bench ends with the line idle for 3 timeouts


def gateware(script):
    """What :class:`FrameReceiver` reports for ``script``, payloads read back from its buffer."""
    dut = FrameReceiver(MAX_PAYLOAD, TIMEOUT)
    events, finished = [], []

    async def feed(ctx):
        for item in script:
            if isinstance(item, int):
                await ctx.tick().repeat(item)
                continue
            for byte in item:
                ctx.set(dut.bytes.payload, byte)
                ctx.set(dut.bytes.valid, 1)
                await ctx.tick().until(dut.bytes.ready)
            ctx.set(dut.bytes.valid, 0)
        await ctx.tick().repeat(3 * TIMEOUT)
        finished.append(True)

    async def collect(ctx):
        while not finished:
            await ctx.tick()
            if not ctx.get(dut.frames.valid):
                continue
            report = ctx.get(dut.frames.payload)
            if report.error:
                events.append(FrameError(ErrorCode(report.error), report.type, report.detail, report.seq))
            else:
                payload = bytearray()
                for k in range(report.length):
                    ctx.set(dut.read_addr, report.slot * MAX_PAYLOAD + k)
                    await ctx.tick()
                    payload.append(ctx.get(dut.read_data))
                events.append(Frame(report.type, bytes(payload), report.seq))
            ctx.set(dut.frames.ready, 1)
            await ctx.tick()
            ctx.set(dut.frames.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(feed)
    sim.add_testbench(collect)
    sim.run()
    return events


def test_errors_of_every_kind_by_hand():
    good = encode_frame(Type.VERIFY, b"ok", seq=5)
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    script = [good, bad_crc, bytes([SYNC, 2, 9, 0xFF, 0x00]), good, bytes([SYNC, 4, 7, 10, 0, 1, 2]), 3 * TIMEOUT,
              bytes([SYNC]), 3 * TIMEOUT, good]
    expected = [Frame(Type.VERIFY, b"ok", 5), FrameError(ErrorCode.BAD_CRC, Type.VERIFY, 0, 5),
                FrameError(ErrorCode.OVERSIZE, Type.LOAD, 0xFF, 9), Frame(Type.VERIFY, b"ok", 5),
                FrameError(ErrorCode.TIMEOUT, Type.VERIFY, 0, 7), FrameError(ErrorCode.TIMEOUT, 0, 0, 0),
                Frame(Type.VERIFY, b"ok", 5)]
    assert reference(script) == expected
    assert gateware(script) == expected


_frames = st.builds(lambda kind, payload, seq: encode_frame(kind, payload, seq), st.integers(0, 255),
                    st.binary(max_size=MAX_PAYLOAD), st.integers(0, 255))
_damaged = st.builds(lambda frame, k, bit: frame[:k % len(frame)] + bytes([frame[k % len(frame)] ^ (1 << bit)])
                     + frame[k % len(frame) + 1:], _frames, st.integers(0, 200), st.integers(0, 7))
_items = st.one_of(_frames, _damaged, st.binary(min_size=1, max_size=20),
                   st.sampled_from([2, 5, 2 * TIMEOUT, 3 * TIMEOUT]))


@settings(max_examples=40, deadline=None)
@given(st.lists(_items, min_size=1, max_size=12))
def test_any_byte_stream_gives_the_same_reports(script):
    assert gateware(script) == reference(script)


def test_the_sender_frames_what_the_decoder_reads():
    dut = FrameSender()
    body = bytes([Type.RESULT, 77, 3, 0]) + b"abc"
    out = bytearray()

    async def bench(ctx):
        ctx.set(dut.bytes.ready, 1)
        sent = 0
        for _ in range(len(body) + 8):
            ctx.set(dut.body.valid, sent < len(body))
            ctx.set(dut.body.payload.data, body[sent] if sent < len(body) else 0)
            ctx.set(dut.body.payload.last, sent == len(body) - 1)
            # Both handshakes happen at the coming edge: record them before it.
            if ctx.get(dut.bytes.valid):
                out.append(ctx.get(dut.bytes.payload))
            if sent < len(body) and ctx.get(dut.body.ready):
                sent += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert bytes(out) == encode_frame(Type.RESULT, b"abc", 77)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_the_catalog_crc_is_the_protocols(data):
    from amaranth.lib.crc import catalog

    from firmware.protocol import crc16

    assert catalog.CRC16_CCITT_FALSE(data_width=8).compute(data) == crc16(data)


class ReaderHarness(wiring.Component):
    """A :class:`PayloadReader` on a buffer of known bytes (a synchronous read port, as the receiver's)."""

    def __init__(self, contents):
        self.contents = contents
        self.reader = PayloadReader(len(contents), len(contents))
        super().__init__({"start": In(1), "base": In(range(len(contents))), "length": In(range(len(contents) + 1)),
                          "bytes": Out(stream.Signature(8)), "exhausted": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=len(self.contents), init=self.contents)
        m.submodules.reader = reader = self.reader
        port = buffer.read_port()
        m.d.comb += [port.addr.eq(reader.read_addr), reader.read_data.eq(port.data), reader.start.eq(self.start),
                     reader.base.eq(self.base), reader.length.eq(self.length), self.exhausted.eq(reader.exhausted)]
        wiring.connect(m, wiring.flipped(self.bytes), reader.bytes)
        return m


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 40), st.integers(0, 45)), min_size=1, max_size=4),
       st.integers(0, 2**16), st.sampled_from([0.0, 0.3, 0.8]))
def test_the_reader_streams_each_request_under_back_pressure(requests, seed, stall):
    """Each (base, length, cut) request streams buffer[base:base + length]; a request cut after ``cut``
    bytes by the next ``start`` gives nothing more of itself."""
    contents = [(37 * k + 11) % 256 for k in range(100)]
    dut = ReaderHarness(contents)
    got, want = [], []

    async def bench(ctx):
        pauses = random_pauses(seed, stall)
        for base, length, cut in requests:
            taken = length if cut >= length else cut
            want.append(contents[base:base + length][:taken])
            ctx.set(dut.base, base)
            ctx.set(dut.length, length)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got.append([await stream_get(ctx, dut.bytes, pauses) for _ in range(taken)])
            if taken == length:
                for _ in range(4):
                    await ctx.tick()
                assert ctx.get(dut.exhausted) and not ctx.get(dut.bytes.valid)

    async def monitor(ctx):
        """``exhausted`` only once every byte of the request has been taken."""
        length = taken = 0
        async for _, _, start, n, valid, ready, exhausted in ctx.tick().sample(
                dut.start, dut.length, dut.bytes.valid, dut.bytes.ready, dut.exhausted):
            if start:
                length, taken = n, 0
                continue
            assert not exhausted or taken == length, f"exhausted with {length - taken} bytes to come"
            taken += valid and ready

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run()
    assert got == want
