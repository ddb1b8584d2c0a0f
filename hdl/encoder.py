"""The device's image encoder: an IMAGE message's pixels to the core's input events (:mod:`quant.intencode`).

Three phases per image:

1. **decode** the pixel tokens of :func:`firmware.protocol.encode_image` into a list of the
   non-zero pixels (index, value), checking the count and the values as the bytes pass;
2. **prepare**: rate coding computes the key ``fmix32(seed)`` (through the hash pipeline);
   latency coding sorts the list by spike step (a counting sort: count per step, prefix sums,
   scatter), so that the steps come out in order;
3. **generate** ``T`` steps of events, each step closed by an ``end`` word: rate coding draws
   every listed pixel at every step through a pipelined hash (one pixel per cycle), latency
   coding walks the sorted list once.

Events leave through a FIFO; the pipeline issues a pixel only when the FIFO has room for every
word in flight, so nothing is dropped when the core is busy.
"""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from firmware.protocol import ZERO_RUN_LIMIT
from quant.intencode import FMIX_C1, FMIX_C2, NEVER

from .layouts import event_layout

__all__ = ["ImageEncoder", "ENCODE_OK", "ENCODE_BAD_PIXELS"]

#: ``error`` values.
ENCODE_OK, ENCODE_BAD_PIXELS = range(2)
_MASK = 0xFFFFFFFF


def _bits(n):
    return max(1, (n - 1).bit_length())


class ImageEncoder(wiring.Component):
    """Encodes one image at a time into input events.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    max_inputs, max_steps : int
        Pixels per image and steps per sample the device holds at most.
    fifo_depth : int
        Event words buffered towards the core.
    rate_table, latency_table : list of int
        The tables' contents at start (those of the network baked into the device); writes on
        ``table`` replace them.

    Members
    -------
    start : In(1)
        A new image: ``latency`` (else rate), ``seed``, ``n_inputs`` and ``n_steps`` are taken now.
    latency : In(1)
    seed : In(32)
    n_inputs, n_steps : In
    bytes : In(stream.Signature(8))
        The pixel tokens.
    exhausted : In(1)
        No token byte will follow.
    events : Out(stream.Signature(event_layout))
        Input events, each step closed by an ``end`` word.
    table : In(data.StructLayout)
        Writes of the encoder tables (``which`` 0 rate thresholds, 1 latency steps).
    error : Out(1)
        The tokens were malformed (sticky until ``start``); no event is generated then.
    decoding : Out(1)
        Taking token bytes.
    busy : Out(1)
        An image is being encoded (from ``start`` to its last ``end`` word handed over).
    """

    PIPELINE = 4  # hash stages between the list read and the FIFO

    def __init__(self, config, max_inputs, max_steps, fifo_depth=16, rate_table=(), latency_table=()):
        self.config, self.max_inputs, self.max_steps, self.fifo_depth = config, max_inputs, max_steps, fifo_depth
        self.rate_table, self.latency_table = [int(v) for v in rate_table], [int(v) for v in latency_table]
        self.pixel_values = 1 << config.pixel_bits
        super().__init__({
            "start": In(1), "latency": In(1), "seed": In(32),
            "n_inputs": In(range(max_inputs + 1)), "n_steps": In(range(max_steps + 1)),
            "bytes": In(stream.Signature(unsigned(8))), "exhausted": In(1),
            "events": Out(stream.Signature(event_layout(config, max_inputs))),
            "table": In(data.StructLayout({"valid": 1, "which": 1, "address": _bits(self.pixel_values),
                                           "value": 17})),
            "error": Out(1), "decoding": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, N, T = self.config, self.max_inputs, self.max_steps
        index_shape, step_shape = unsigned(_bits(N + 1)), unsigned(_bits(T + 1))
        entry = data.StructLayout({"index": index_shape, "value": cfg.pixel_bits})
        sorted_entry = data.StructLayout({"index": index_shape, "step": step_shape})

        # -- memories: the tables (written by the loader), the pixel list, the latency sort ------------
        m.submodules.rate_table = rate_mem = memory.Memory(shape=17, depth=self.pixel_values, init=self.rate_table)
        m.submodules.latency_table = lat_mem = memory.Memory(shape=16, depth=self.pixel_values,
                                                             init=self.latency_table)
        m.submodules.pixels = list_mem = memory.Memory(shape=entry, depth=max(N, 2), init=[])
        m.submodules.counts = count_mem = memory.Memory(shape=index_shape, depth=max(T, 2), init=[])
        m.submodules.sorted = sort_mem = memory.Memory(shape=sorted_entry, depth=max(N, 2), init=[])
        rate_wp, lat_wp = rate_mem.write_port(), lat_mem.write_port()
        rate_rp, lat_rp = rate_mem.read_port(), lat_mem.read_port()
        list_wp, list_rp = list_mem.write_port(), list_mem.read_port()
        count_wp, count_rp = count_mem.write_port(), count_mem.read_port()
        sort_wp, sort_rp = sort_mem.write_port(), sort_mem.read_port()
        table = self.table
        m.d.comb += [rate_wp.addr.eq(table.address), rate_wp.data.eq(table.value),
                     rate_wp.en.eq(table.valid & (table.which == 0)),
                     lat_wp.addr.eq(table.address), lat_wp.data.eq(table.value),
                     lat_wp.en.eq(table.valid & (table.which == 1))]

        # -- the event FIFO and the words pushed into it -------------------------------------------------
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=len(self.events.payload.as_value()),
                                                           depth=self.fifo_depth)
        m.d.comb += [self.events.payload.eq(queue.r_data), self.events.valid.eq(queue.r_rdy),
                     queue.r_en.eq(self.events.ready)]
        push_index, push_end, push = Signal(index_shape), Signal(), Signal()
        word = Signal(event_layout(cfg, N))
        m.d.comb += [word.index.eq(push_index), word.amplitude.eq(cfg.one), word.end.eq(push_end),
                     queue.w_data.eq(word), queue.w_en.eq(push)]

        # -- the rate pipeline: list read, hash in stages, compare with the threshold ------------------
        key, t = Signal(32), Signal(step_shape)
        issue, issue_end, issue_key = Signal(), Signal(), Signal()
        counter_in = Signal(32)     # (t << 16 | j) for a pixel; the seed when computing the key
        v1, end1, key1, t1 = Signal(), Signal(), Signal(), Signal.like(t)
        m.d.sync += [v1.eq(issue), end1.eq(issue_end), key1.eq(issue_key), t1.eq(t)]
        seed1 = Signal(32)
        with m.If(issue_key):
            m.d.sync += seed1.eq(counter_in)
        # stage 1: the list entry is read; the table read starts; x ^= x >> 16 of (key ^ counter)
        j1 = list_rp.data.index
        x0 = Mux(key1, seed1, key ^ Cat(j1, Const(0, 16 - len(j1)), t1)[:32])
        m.d.comb += rate_rp.addr.eq(list_rp.data.value)
        v2, end2, key2, j2, x2 = Signal(), Signal(), Signal(), Signal.like(j1), Signal(32)
        m.d.sync += [v2.eq(v1), end2.eq(end1), key2.eq(key1), j2.eq(j1), x2.eq((x0 ^ (x0 >> 16)) * FMIX_C1)]
        # stage 2: x ^= x >> 13, times C2; the threshold arrives
        v3, end3, key3, j3, x3, threshold = Signal(), Signal(), Signal(), Signal.like(j1), Signal(32), Signal(17)
        m.d.sync += [v3.eq(v2), end3.eq(end2), key3.eq(key2), j3.eq(j2), threshold.eq(rate_rp.data),
                     x3.eq((x2 ^ (x2 >> 13)) * FMIX_C2)]
        # stage 3: the draw
        hashed = Signal(32)
        m.d.comb += hashed.eq(x3 ^ (x3 >> 16))
        draw = hashed[32 - cfg.draw_bits:]
        v4, end4, key4, j4, spike = Signal(), Signal(), Signal(), Signal.like(j1), Signal()
        m.d.sync += [v4.eq(v3), end4.eq(end3), key4.eq(key3), j4.eq(j3), spike.eq(draw < threshold)]
        with m.If(v3 & key3):
            m.d.sync += key.eq(hashed)
        in_flight = Signal(range(self.PIPELINE + 2))
        m.d.comb += in_flight.eq(v1 + v2 + v3 + v4)
        room = Signal()
        m.d.comb += room.eq(queue.level + in_flight < self.fifo_depth - 1)
        rate_push, rate_end = Signal(), Signal()
        m.d.comb += [rate_push.eq(v4 & ~key4 & (spike | end4)), rate_end.eq(end4)]

        # -- the sequencer -------------------------------------------------------------------------------
        latency = Signal()
        n_inputs, n_steps, seed = Signal.like(self.n_inputs), Signal.like(self.n_steps), Signal(32)
        index = Signal(range(N + 2))     # pixels decoded so far
        count = Signal(range(N + 1))     # non-zero pixels listed
        literal = Signal(8)               # literal values still to come in this run
        k = Signal(range(N + 1))
        acc = Signal(index_shape)
        ptr = Signal(range(N + 1))
        step_value = Signal(16)

        byte = self.bytes.payload
        take = Signal()
        m.d.comb += take.eq(self.bytes.valid & self.bytes.ready)
        m.d.comb += [list_wp.addr.eq(count), list_wp.data.index.eq(index), list_wp.data.value.eq(byte)]

        def fail():
            m.d.sync += self.error.eq(1)
            m.next = "FAILED"

        with m.FSM(name="encoder"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [latency.eq(self.latency), seed.eq(self.seed), n_inputs.eq(self.n_inputs),
                                 n_steps.eq(self.n_steps), index.eq(0), count.eq(0), literal.eq(0),
                                 self.error.eq(0), t.eq(0), k.eq(0)]
                    m.next = "HEAD"
            with m.State("HEAD"):
                m.d.comb += [self.bytes.ready.eq(1), self.decoding.eq(1), self.busy.eq(1)]
                with m.If(take):
                    with m.If(byte < ZERO_RUN_LIMIT):
                        with m.If(index + byte + 1 > n_inputs):
                            fail()
                        with m.Else():
                            m.d.sync += index.eq(index + byte + 1)
                    with m.Else():
                        m.d.sync += literal.eq(byte - ZERO_RUN_LIMIT + 1)
                        m.next = "LITERAL"
                with m.Elif(self.exhausted & ~self.bytes.valid):
                    with m.If(index != n_inputs):
                        fail()
                    with m.Elif(latency):
                        m.d.sync += k.eq(0)
                        m.next = "CLEAR"
                    with m.Else():
                        m.next = "KEY"
            with m.State("LITERAL"):
                m.d.comb += [self.bytes.ready.eq(1), self.decoding.eq(1), self.busy.eq(1)]
                with m.If(take):
                    with m.If((index == n_inputs) | (byte >= self.pixel_values)):
                        fail()
                    with m.Else():
                        with m.If(byte != 0):
                            m.d.comb += list_wp.en.eq(1)
                            m.d.sync += count.eq(count + 1)
                        m.d.sync += [index.eq(index + 1), literal.eq(literal - 1)]
                        with m.If(literal == 1):
                            m.next = "HEAD"
                with m.Elif(self.exhausted & ~self.bytes.valid):
                    fail()   # a literal run cut short

            # Rate coding: the key fmix32(seed), through the pipeline, then T x (pixels, end).
            with m.State("KEY"):
                m.d.comb += [self.busy.eq(1), issue.eq(1), issue_key.eq(1), counter_in.eq(seed)]
                m.next = "KEY_WAIT"
            with m.State("KEY_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(v4 & key4):
                    m.d.sync += [k.eq(0), t.eq(0)]
                    m.next = "RATE"
            with m.State("RATE"):
                m.d.comb += self.busy.eq(1)
                with m.If(room):
                    with m.If(k == count):
                        m.d.comb += [issue.eq(1), issue_end.eq(1)]
                        m.d.sync += [k.eq(0), t.eq(t + 1)]
                        with m.If(t == n_steps - 1):
                            m.next = "DRAIN"
                    with m.Else():
                        m.d.comb += [issue.eq(1), list_rp.addr.eq(k)]
                        m.d.sync += k.eq(k + 1)
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If((in_flight == 0) & ~queue.r_rdy):
                    m.next = "IDLE"

            # Latency coding: count the pixels per step, prefix sums, scatter by step, then walk.
            with m.State("CLEAR"):
                m.d.comb += [self.busy.eq(1), count_wp.addr.eq(k), count_wp.data.eq(0), count_wp.en.eq(1)]
                m.d.sync += k.eq(k + 1)
                with m.If(k == n_steps - 1):
                    m.d.sync += k.eq(0)
                    m.next = "COUNT_READ"
            for scatter in (False, True):
                prefix = "SCATTER" if scatter else "COUNT"
                with m.State(f"{prefix}_READ"):
                    m.d.comb += [self.busy.eq(1), list_rp.addr.eq(k)]
                    with m.If(k == count):
                        # After the scatter, acc (the prefix pass's total) is where the sorted list ends.
                        m.d.sync += k.eq(0) if scatter else [k.eq(0), acc.eq(0)]
                        m.next = "WALK_READ" if scatter else "PREFIX_READ"
                    with m.Else():
                        m.next = f"{prefix}_TABLE"
                with m.State(f"{prefix}_TABLE"):
                    m.d.comb += [self.busy.eq(1), lat_rp.addr.eq(list_rp.data.value), list_rp.addr.eq(k)]
                    m.next = f"{prefix}_STEP"
                with m.State(f"{prefix}_STEP"):
                    m.d.comb += [self.busy.eq(1), list_rp.addr.eq(k)]
                    m.d.sync += step_value.eq(lat_rp.data)
                    with m.If(lat_rp.data == NEVER):
                        m.d.sync += k.eq(k + 1)
                        m.next = f"{prefix}_READ"
                    with m.Else():
                        m.d.comb += count_rp.addr.eq(lat_rp.data)
                        m.next = f"{prefix}_UPDATE"
                with m.State(f"{prefix}_UPDATE"):
                    m.d.comb += [self.busy.eq(1), list_rp.addr.eq(k),
                                 count_wp.addr.eq(step_value), count_wp.data.eq(count_rp.data + 1), count_wp.en.eq(1)]
                    if scatter:
                        m.d.comb += [sort_wp.addr.eq(count_rp.data), sort_wp.data.index.eq(list_rp.data.index),
                                     sort_wp.data.step.eq(step_value), sort_wp.en.eq(1)]
                    m.d.sync += k.eq(k + 1)
                    m.next = f"{prefix}_READ"
            with m.State("PREFIX_READ"):
                m.d.comb += [self.busy.eq(1), count_rp.addr.eq(k)]
                m.next = "PREFIX_WRITE"
            with m.State("PREFIX_WRITE"):
                # count[t] becomes where step t's pixels start in the sorted list.
                m.d.comb += [self.busy.eq(1), count_wp.addr.eq(k), count_wp.data.eq(acc), count_wp.en.eq(1)]
                m.d.sync += [acc.eq(acc + count_rp.data), k.eq(k + 1)]
                with m.If(k == n_steps - 1):
                    m.d.sync += k.eq(0)
                    m.next = "SCATTER_READ"
                with m.Else():
                    m.next = "PREFIX_READ"
            with m.State("WALK_READ"):
                m.d.comb += [self.busy.eq(1), sort_rp.addr.eq(ptr)]
                m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += self.busy.eq(1)
                with m.If(~queue.w_rdy):
                    m.d.comb += sort_rp.addr.eq(ptr)
                with m.Elif((ptr != acc) & (sort_rp.data.step == t)):
                    m.d.comb += [push.eq(1), push_index.eq(sort_rp.data.index)]
                    m.d.sync += ptr.eq(ptr + 1)
                    m.next = "WALK_READ"
                with m.Else():
                    m.d.comb += [push.eq(1), push_end.eq(1), sort_rp.addr.eq(ptr)]
                    m.d.sync += t.eq(t + 1)
                    with m.If(t == n_steps - 1):
                        m.next = "DRAIN"
            with m.State("FAILED"):
                # The rest of the payload is dropped by the dispatcher; nothing is generated.
                m.next = "IDLE"

        with m.If(self.start):
            m.d.sync += ptr.eq(0)
        # The rate pipeline's words go to the FIFO (the latency walk pushes its own).
        with m.If(rate_push):
            m.d.comb += [push.eq(1), push_index.eq(j4), push_end.eq(rate_end)]
        return m
