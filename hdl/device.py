"""The device: the SRC core behind the link protocol of :mod:`firmware.protocol`, byte stream in, byte stream out.

It executes one request at a time, in the order they arrive, and answers as
:class:`sim.emulator.DeviceModel` does (docs/PROTOCOL.md lists where the hardware's answer to a
malformed request can differ: it reports the first problem it meets).
"""

from amaranth import Array, Cat, Const, EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from firmware import image as fw_image
from firmware.protocol import IMAGE_HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, ErrorCode, Identity, Type

from .core import SRCCore
from .layouts import LOAD_LATENCY_TABLE, LOAD_RATE_TABLE
from .encoder import ImageEncoder
from .fanout import global_net
from .inbox import Inbox
from .framing import FrameReceiver, FrameSender, PayloadReader
from .loader import ImageLoader
from .steps import DECODE_BAD_RECORD, DECODE_OK, StepDecoder

__all__ = ["SRCDevice"]


class SRCDevice(wiring.Component):
    """The SRC core with its link: frames in, replies out.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The network baked into the memories; the device starts with it loaded.
    limits : firmware.image.DeviceLimits, optional
        Shape limits of networks loaded later; default: exactly ``image``'s shapes.
    max_payload : int
        Longest frame payload accepted.
    timeout : int
        Idle cycles after which a frame cut short is dropped.

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host.
    tx : Out(stream.Signature(8))
        Bytes to the host.
    waiting : Out(1)
        Inside a sample the core stands still: its input (the link, or the image encoder) is behind
        (:class:`~hdl.inbox.Inbox`); RESULT's cycle count leaves these cycles out.
    """

    def __init__(self, image, limits=None, max_payload=MAX_PAYLOAD, timeout=1_000_000):
        self.image, self.max_payload, self.timeout = image, max_payload, timeout
        self.core = SRCCore(image, limits, trace=True)
        super().__init__({"rx": In(stream.Signature(unsigned(8))), "tx": Out(stream.Signature(unsigned(8))),
                          "waiting": Out(1)})

    def elaborate(self, platform):
        m = Module()
        core, image, cfg, limits = self.core, self.image, self.core.config, self.core.limits
        n_layers, n_classes = len(image.layers), image.n_classes
        # Within a sample the core stands still while its input is behind (hdl.inbox), so that it
        # runs exactly as with back-to-back input (the cycle model of hdl.cycles), waits aside.
        m.submodules.inbox = inbox = Inbox(cfg, limits.max_inputs, limits.max_steps)
        # The enable reaches every flip-flop of the core. On ECP5 it goes on a global network: as
        # a fabric net it spanned the core, and the inbox's register, whose next value depends on
        # its own, was either placed among the loads (its input then 13 ns from the inbox's logic,
        # 2b6a5ba) or beside the inbox (its feedback through the whole net: 12.4 ns, router1, the
        # device's critical path at f62c48a). The inbox keeps the register's own net.
        run = global_net(m, platform, inbox.run, "run_buffer")
        m.d.comb += self.waiting.eq(~run)
        m.submodules.core = EnableInserter(run)(core)
        connect(m, inbox.events, core.events)
        m.submodules.receiver = receiver = FrameReceiver(self.max_payload, self.timeout)
        m.submodules.reader = reader = PayloadReader(2 * self.max_payload, self.max_payload)
        m.submodules.decoder = decoder = StepDecoder(cfg, limits.max_inputs)
        m.submodules.loader = loader = ImageLoader(fw_image.DeviceRules.for_image(image, limits))
        m.submodules.encoder = encoder = ImageEncoder(cfg, limits.max_inputs, limits.max_steps,
                                                      rate_table=image.rate_table, latency_table=image.latency_table)
        m.submodules.sender = sender = FrameSender()
        connect(m, wiring.flipped(self.rx), receiver.bytes)
        connect(m, sender.bytes, wiring.flipped(self.tx))
        # The loader's writes: the encoder's tables to the encoder, the rest to the core.
        write = loader.load.payload
        to_encoder = (write.memory == LOAD_RATE_TABLE) | (write.memory == LOAD_LATENCY_TABLE)
        m.d.comb += [core.load.payload.eq(write), core.load.valid.eq(loader.load.valid & ~to_encoder),
                     loader.load.ready.eq(core.load.ready | to_encoder),
                     encoder.table.valid.eq(loader.load.valid & to_encoder),
                     encoder.table.which.eq(write.memory == LOAD_LATENCY_TABLE),
                     encoder.table.address.eq(write.address), encoder.table.value.eq(write.word)]
        m.d.comb += [receiver.read_addr.eq(reader.read_addr), reader.read_data.eq(receiver.read_data)]

        # -- what the device holds -------------------------------------------------------------
        blob = fw_image.to_bytes(image)
        loaded = Signal(init=1)
        checksum = Signal(32, init=fw_image.checksum(blob))
        n_inputs = Signal(range(limits.max_inputs + 1), init=image.layers[0].n_in)
        n_steps = Signal(range(limits.max_steps + 1), init=image.n_steps)
        m.d.comb += [decoder.n_inputs.eq(n_inputs), decoder.exhausted.eq(reader.exhausted),
                     encoder.n_inputs.eq(n_inputs), encoder.n_steps.eq(n_steps), encoder.exhausted.eq(reader.exhausted)]

        # -- the sample in progress: steps issued, activity counters, the result ---------------------
        in_sample = Signal()
        input_events = Signal(32)
        spike_counts = Array(Signal(32, name=f"spike_count{k}") for k in range(n_layers))
        cycles = Signal(32)
        scores = Array(Signal(signed(cfg.readout_width), name=f"score{k}") for k in range(n_classes))
        prediction = Signal(8)
        result_done = Signal()
        new_sample = Signal()
        m.d.comb += [decoder.full.eq(inbox.full), inbox.n_steps.eq(n_steps), inbox.clear.eq(new_sample),
                     inbox.finished.eq(core.result.valid & core.result.payload.last)]

        # The sample's words enter the inbox (step ends counted there); the core takes them.
        events = inbox.push
        taken = core.events.valid & core.events.ready & run
        with m.If(taken & ~core.events.payload.end):
            m.d.sync += input_events.eq(input_events + 1)
        # Core cycles of the sample; those it spends waiting for the link do not count.
        with m.If((inbox.counting | taken) & run):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += core.trace.ready.eq(1)
        # A block's spikes are counted, then added to its layer's count the next cycle: the count and
        # the 32-bit add after the update unit's exit were the device's critical path (11.6 ns,
        # router1, at 8b7600e). The counts are read at RESULT, many cycles after the sample's last block.
        fired, fired_layer, fired_valid = Signal(range(core.lanes + 1)), Signal.like(core.trace.payload.layer), Signal()
        m.d.sync += [fired_valid.eq(core.trace.valid & run), fired_layer.eq(core.trace.payload.layer),
                     fired.eq(sum(lane.s != 0 for lane in core.trace.payload.lanes))]
        with m.If(fired_valid):
            m.d.sync += spike_counts[fired_layer].eq(spike_counts[fired_layer] + fired)
        m.d.comb += core.result.ready.eq(1)
        with m.If(core.result.valid & run):
            m.d.sync += [scores[core.result.payload.cls].eq(core.result.payload.score),
                         prediction.eq(core.result.payload.prediction)]
            with m.If(core.result.payload.last):
                m.d.sync += result_done.eq(1)
        with m.If(new_sample):
            m.d.sync += [input_events.eq(0), cycles.eq(0), result_done.eq(0)]
            m.d.sync += [spike_counts[k].eq(0) for k in range(n_layers)]

        # -- replies ------------------------------------------------------------------------------
        kind = Signal(8)           # of the frame being answered; an ERROR reply names it
        error_code, error_detail = Signal(8, name="error_code"), Signal(16, name="error_detail")
        seq = Signal(8)            # of the frame being answered: every reply carries it
        ack_value = Signal(32)
        held_checksum = Signal(32)  # 0 while no model is held
        m.d.comb += held_checksum.eq(Mux(loaded, checksum, 0))
        identity = Identity(PROTOCOL_VERSION, core.lanes, n_layers, n_classes, limits.max_inputs, limits.max_neurons,
                            limits.max_steps, limits.weight_words, limits.state_blocks, limits.recurrent_mask, cfg.digest(),
                            False, 0)
        identity = identity.to_bytes()[:-5]  # loaded and the checksum follow from the registers
        signed_scores = [Signal(signed(32), name=f"score32_{k}") for k in range(n_classes)]
        m.d.comb += [s.eq(scores[k]) for k, s in enumerate(signed_scores)]
        word = lambda v, n: [v[8 * k:8 * k + 8] for k in range(n)]
        byte = lambda v: [Const(v, 8)]
        replies = {
            Type.ERROR: [error_code, kind, *word(error_detail, 2)],
            Type.IDENTITY: [*(Const(b, 8) for b in identity), loaded, *word(held_checksum, 4)],
            Type.ACK: word(ack_value, 4),
            Type.LOADED: word(checksum, 4),
            Type.CHECKSUM: [loaded, *word(held_checksum, 4)],
            Type.RESULT: [*byte(n_classes), *(b for s in signed_scores for b in word(s, 4)), prediction,
                          *word(input_events, 4), *byte(n_layers),
                          *(b for k in range(n_layers) for b in word(spike_counts[k], 4)), *word(cycles, 4)],
        }
        reply_kind = Signal(8)
        reply_index = Signal(range(max(map(len, replies.values())) + 3))
        # The reply's bytes pass a two-word FIFO with a registered output on their way to the
        # sender: the byte chosen among some sixty (a multiplexer by kind and index) then meets a
        # register, not the sender's CRC and the transmitter. The chosen byte is itself a register,
        # ``body``, chosen for ``reply_index`` and written the cycle after (``fresh``): the
        # multiplexer into the FIFO's storage was late (0.4 ns at 079f43d, router1). A byte every
        # other cycle is far faster than the line.
        m.submodules.reply_buffer = reply_buffer = fifo.SyncFIFOBuffered(width=len(sender.body.payload.as_value()),
                                                                         depth=2)
        queued = reply_buffer.r_stream
        m.d.comb += [sender.body.payload.eq(queued.payload), sender.body.valid.eq(queued.valid),
                     queued.ready.eq(sender.body.ready)]
        body = Signal(sender.body.payload.shape())
        fresh = Signal()           # ``body`` is the byte at ``reply_index``
        m.d.comb += reply_buffer.w_stream.payload.eq(body)
        with m.Switch(reply_kind):
            for reply_type, payload in replies.items():
                with m.Case(reply_type):
                    framed = [Const(reply_type, 8), seq, *byte(len(payload) & 0xFF), *byte(len(payload) >> 8), *payload]
                    m.d.sync += [body.data.eq(Array(framed)[reply_index]),
                                 body.last.eq(reply_index == len(framed) - 1)]

        # -- the dispatcher ---------------------------------------------------------------------------
        frame = receiver.frames.payload
        length, slot = Signal(16), Signal()
        fields = Signal(64)        # leading payload fields (offset, length and CRC, flags), little-endian
        field_bytes = Signal(4)
        wanted = Signal(4)         # how many of them the dispatcher reads itself
        reply_pending = Signal()
        resume = Signal()          # after a cancel: 0 back to DISPATCH, 1 on to POP
        mismatch = Signal()        # LOAD: the offset is not the loader's count; COMMIT: length or CRC is not its
        restart = Signal()         # LOAD: the offset is 0
        ROUTE_SELF, ROUTE_DECODER, ROUTE_LOADER, ROUTE_ENCODER = range(4)
        route = Signal(2)
        with m.Switch(route):
            with m.Case(ROUTE_SELF):
                m.d.comb += reader.bytes.ready.eq(field_bytes != wanted)
            with m.Case(ROUTE_DECODER):
                connect(m, reader.bytes, decoder.bytes)
            with m.Case(ROUTE_LOADER):
                connect(m, reader.bytes, loader.bytes)
            with m.Case(ROUTE_ENCODER):
                connect(m, reader.bytes, encoder.bytes)
        with m.If((route == ROUTE_SELF) & reader.bytes.valid & reader.bytes.ready):
            m.d.sync += [fields.eq(Cat(fields[8:], reader.bytes.payload)), field_bytes.eq(field_bytes + 1)]

        def reply(kind_, value=None):
            m.d.sync += [reply_kind.eq(kind_), reply_pending.eq(1)]
            if value is not None:
                m.d.sync += ack_value.eq(value)

        def error(code, detail=0):
            reply(Type.ERROR)
            m.d.sync += [error_code.eq(code), error_detail.eq(detail)]

        def read_payload(next_state, leading):
            m.d.comb += [reader.start.eq(1), reader.base.eq(slot * self.max_payload), reader.length.eq(length)]
            m.d.sync += [route.eq(ROUTE_SELF), field_bytes.eq(0), wanted.eq(leading)]
            m.next = next_state

        def cancel_then(pop):
            """Abandon the sample in progress (if any), then DISPATCH again or POP."""
            m.d.sync += resume.eq(pop)
            with m.If(in_sample):
                m.next = "CANCEL"
            with m.Else():
                m.next = "POP" if pop else "DISPATCH"

        # The decoder drives the core's events, but for the end words of a cancel.
        cancelling = Signal()
        from_image = Signal()      # the sample in progress comes from the encoder, not from step records
        with m.If(cancelling):
            m.d.comb += [events.valid.eq(~inbox.full), events.payload.end.eq(1)]
        with m.Elif(from_image):
            connect(m, encoder.events, events)
        with m.Else():
            connect(m, decoder.events, events)

        with m.FSM(name="dispatcher"):
            with m.State("IDLE"):
                with m.If(receiver.frames.valid):
                    m.d.sync += [kind.eq(frame.type), seq.eq(frame.seq), length.eq(frame.length), slot.eq(frame.slot),
                                 reply_pending.eq(0)]
                    with m.If(frame.error != 0):
                        m.d.sync += [reply_kind.eq(Type.ERROR), reply_pending.eq(1), error_code.eq(frame.error),
                                     error_detail.eq(frame.detail)]
                        with m.If(frame.error == ErrorCode.TIMEOUT):
                            m.d.sync += resume.eq(1)
                            m.next = "TIMED_OUT"
                        with m.Else():
                            m.next = "POP"
                    with m.Else():
                        m.next = "DISPATCH"
            with m.State("TIMED_OUT"):
                cancel_then(pop=True)
            with m.State("DISPATCH"):
                with m.Switch(kind):
                    with m.Case(Type.IDENTIFY):
                        reply(Type.IDENTITY)
                        m.next = "POP"
                    with m.Case(Type.VERIFY):
                        reply(Type.CHECKSUM)
                        m.next = "POP"
                    with m.Case(Type.ABORT):
                        reply(Type.ACK, 0)
                        cancel_then(pop=True)
                    with m.Case(Type.LOAD):
                        with m.If(length < 4):
                            error(ErrorCode.BAD_PAYLOAD)
                            m.next = "POP"
                        with m.Elif(in_sample):
                            cancel_then(pop=False)  # a sample does not survive a new model
                        with m.Else():
                            read_payload("LOAD_OFFSET", 4)
                    with m.Case(Type.COMMIT):
                        with m.If(length != 8):
                            error(ErrorCode.BAD_PAYLOAD)
                            m.next = "POP"
                        with m.Else():
                            read_payload("COMMIT", 8)
                    with m.Case(Type.STEPS):
                        with m.If(~loaded):
                            error(ErrorCode.NO_MODEL)
                            m.next = "POP"
                        with m.Elif(length == 0):
                            error(ErrorCode.BAD_PAYLOAD)
                            cancel_then(pop=True)
                        with m.Else():
                            read_payload("STEPS_FLAGS", 1)
                    with m.Case(Type.IMAGE):
                        with m.If(~loaded):
                            error(ErrorCode.NO_MODEL)
                            m.next = "POP"
                        with m.Elif(in_sample):
                            error(ErrorCode.SEQUENCE, 3)   # a STEPS sample in progress is dropped
                            cancel_then(pop=True)
                        with m.Elif(length < IMAGE_HEADER_SIZE):
                            error(ErrorCode.BAD_PAYLOAD)
                            m.next = "POP"
                        with m.Else():
                            read_payload("IMAGE_HEADER", IMAGE_HEADER_SIZE)
                    with m.Default():
                        error(ErrorCode.UNKNOWN_TYPE)
                        m.next = "POP"
            with m.State("LOAD_OFFSET"):
                # The offset compared in registers and decided the cycle after its last byte, as
                # COMMIT's fields: the 32-bit comparisons into the reply's registers were late
                # (-0.6 ns at b369720, router1, seed 2).
                offset = fields[32:]
                m.d.sync += [restart.eq(offset == 0), mismatch.eq(offset != loader.held)]
                with m.If(field_bytes == 4):
                    m.next = "LOAD_CHECK"
            with m.State("LOAD_CHECK"):
                with m.If(restart):
                    m.d.comb += loader.restart.eq(1)
                    m.d.sync += [loaded.eq(0), route.eq(ROUTE_LOADER)]
                    m.next = "LOAD_BYTES"
                with m.Elif(mismatch):
                    error(ErrorCode.SEQUENCE)
                    m.next = "POP"
                with m.Else():
                    m.d.sync += route.eq(ROUTE_LOADER)
                    m.next = "LOAD_BYTES"
            with m.State("LOAD_BYTES"):
                with m.If(reader.exhausted & ~loader.load.valid & ~loader.checking):
                    reply(Type.ACK, loader.held)
                    m.next = "POP"
            with m.State("COMMIT"):
                # The length and CRC named are compared with the loader's in registers, and decided
                # on the cycle after the last field byte: the two 32-bit comparisons enabling the
                # held image's registers were the ULX3S build's critical path (10.3 ns at ae60931).
                m.d.sync += mismatch.eq((fields[:32] != loader.held) | (fields[32:] != loader.crc))
                with m.If(field_bytes == 8):
                    m.next = "COMMIT_CHECK"
            with m.State("COMMIT_CHECK"):
                with m.If(mismatch):
                    error(ErrorCode.BAD_IMAGE, 1)
                with m.Elif(~loader.complete):
                    error(ErrorCode.BAD_IMAGE, 2)
                with m.Else():
                    reply(Type.LOADED)
                    m.d.sync += [loaded.eq(1), checksum.eq(loader.checksum), n_inputs.eq(loader.n_inputs),
                                 n_steps.eq(loader.n_steps)]
                m.next = "POP"
            with m.State("STEPS_FLAGS"):
                first = fields[56]
                with m.If(field_bytes == 1):
                    with m.If(first == in_sample):
                        error(ErrorCode.SEQUENCE, 1)
                        cancel_then(pop=True)
                    with m.Else():
                        with m.If(first):
                            m.d.comb += new_sample.eq(1)
                            m.d.sync += in_sample.eq(1)
                        m.d.comb += decoder.clear.eq(1)
                        m.d.sync += route.eq(ROUTE_DECODER)
                        m.next = "STEPS_RECORDS"
            with m.State("STEPS_RECORDS"):
                with m.If(decoder.error != DECODE_OK):
                    with m.If(decoder.error == DECODE_BAD_RECORD):
                        error(ErrorCode.BAD_PAYLOAD)
                    with m.Else():
                        error(ErrorCode.SEQUENCE, 2)
                    m.d.sync += [route.eq(ROUTE_SELF), wanted.eq(0)]  # the rest of the payload is dropped
                    cancel_then(pop=True)
                with m.Elif(reader.exhausted & decoder.idle):
                    with m.If(inbox.full):
                        m.next = "RESULT"
                    with m.Else():
                        m.next = "POP"
            with m.State("IMAGE_HEADER"):
                flags, seed = fields[24:32], fields[32:64]
                with m.If(field_bytes == IMAGE_HEADER_SIZE):
                    with m.If(flags[1:] != 0):
                        error(ErrorCode.BAD_PAYLOAD)
                        m.next = "POP"
                    with m.Else():
                        m.d.comb += [encoder.start.eq(1), encoder.latency.eq(flags[0]), encoder.seed.eq(seed),
                                     new_sample.eq(1)]
                        m.d.sync += [in_sample.eq(1), from_image.eq(1), route.eq(ROUTE_ENCODER)]
                        m.next = "IMAGE_DECODE"
            with m.State("IMAGE_DECODE"):
                with m.If(encoder.error):
                    error(ErrorCode.BAD_PAYLOAD)
                    m.d.sync += [in_sample.eq(0), from_image.eq(0), route.eq(ROUTE_SELF), wanted.eq(0)]
                    m.next = "POP"
                with m.Elif(~encoder.decoding):
                    m.next = "RESULT"
            with m.State("RESULT"):
                with m.If(result_done):
                    reply(Type.RESULT)
                    m.d.sync += [in_sample.eq(0), from_image.eq(0)]
                    m.next = "POP"
            with m.State("CANCEL"):
                # End words up to T, then the result is collected and dropped.
                m.d.comb += cancelling.eq(1)
                with m.If(inbox.full & result_done):
                    m.d.sync += [in_sample.eq(0), route.eq(ROUTE_SELF), wanted.eq(0)]
                    with m.If(resume):
                        m.next = "POP"
                    with m.Else():
                        m.next = "DISPATCH"
            with m.State("POP"):
                # The frame's buffer slot is free again: what is left of it is never read.
                m.d.comb += receiver.frames.ready.eq(1)
                m.d.sync += [reply_index.eq(0), route.eq(ROUTE_SELF), wanted.eq(0)]
                with m.If(reply_pending):
                    m.next = "REPLY"
                with m.Else():
                    m.next = "IDLE"
            with m.State("REPLY"):
                m.d.comb += reply_buffer.w_stream.valid.eq(fresh)
                m.d.sync += fresh.eq(1)
                with m.If(fresh & reply_buffer.w_stream.ready):
                    m.d.sync += [reply_index.eq(reply_index + 1), fresh.eq(0)]
                    with m.If(body.last):
                        m.d.sync += reply_pending.eq(0)
                        m.next = "IDLE"
        return m
