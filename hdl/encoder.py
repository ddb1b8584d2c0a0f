"""The device's image encoder: an IMAGE message's pixels to the core's input events (:mod:`quant.intencode`).

Three phases per image:

1. **decode** the pixel stream of :func:`firmware.protocol.encode_image` (exp-Golomb zero runs
   and value codes, one bit per cycle) into a list of the non-zero pixels (index, value),
   checking every rule of the format as the bits pass;
2. **prepare**: rate coding computes the key ``fmix32(seed)`` (through the hash pipeline, whose
   multiplications each take two stages: three 16 x 16 products, then their sum);
   latency coding sorts the list by spike step (a counting sort: count per step, prefix sums,
   scatter), so that the steps come out in order;
3. **generate** ``T`` steps of events, each step closed by an ``end`` word: rate coding draws
   every listed pixel at every step through a pipelined hash (one pixel per cycle), latency
   coding walks the sorted list once.

Events leave through a FIFO; the pipeline issues a pixel only when the FIFO has room for every
word in flight, so nothing is dropped when the core is busy.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from firmware.protocol import IMAGE_PREFIX_LIMIT
from quant.intencode import FMIX_C1, FMIX_C2, NEVER

from .arith import nudged
from .layouts import DISTRIBUTED, UNCHECKED, event_layout, registered_read

__all__ = ["ImageEncoder", "ENCODE_OK", "ENCODE_BAD_PIXELS"]

#: ``error`` values.
ENCODE_OK, ENCODE_BAD_PIXELS = range(2)
_MASK = 0xFFFFFFFF


def _bits(n):
    return max(1, (n - 1).bit_length())


def _times(m, x, constant, name, shift=None):
    """``x * constant`` modulo 2**32 in two register stages: three 16 x 16 products, then their sum
    (``x_lo c_lo + (x_lo c_hi + x_hi c_lo) 2**16``; ``x_hi c_hi`` lies past bit 31); with ``shift``,
    the sum's ``y ^ (y >> shift)`` is registered instead, so that the next multiplier's inputs
    come straight from a register (through the xor, the next stage's DSP products were late in
    every placement at a1645ab, up to 0.7 ns)."""
    low, high = constant & 0xFFFF, constant >> 16
    p0, p1, p2 = Signal(32, name=f"{name}_p0"), Signal(16, name=f"{name}_p1"), Signal(16, name=f"{name}_p2")
    m.d.sync += [p0.eq(x[:16] * low), p1.eq(x[:16] * high), p2.eq(x[16:32] * low)]
    product, total = Signal(32, name=f"{name}_product"), Signal(32, name=f"{name}_sum")
    m.d.comb += total.eq(p0 + Cat(Const(0, 16), p1 + p2))
    m.d.sync += product.eq(total if shift is None else total ^ (total >> shift))
    return product


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
        The pixel stream.
    exhausted : In(1)
        No byte of the pixel stream will follow.
    events : Out(stream.Signature(event_layout))
        Input events, each step closed by an ``end`` word.
    table : In(data.StructLayout)
        Writes of the encoder tables (``which`` 0 rate thresholds, 1 latency steps).
    error : Out(1)
        The pixel stream was malformed (sticky until ``start``); no event is generated then.
    decoding : Out(1)
        Decoding the pixel stream.
    busy : Out(1)
        An image is being encoded (from ``start`` to its last ``end`` word handed over).
    """

    #: Register stages from a pixel's issue to its event word's push (list read, 5 for fmix32, compare).
    PIPELINE = 7

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
        # The tables and the sorted list are read through registered_read: the tables are written by
        # the loader between images, the sorted list by the scatter before the walk reads it.
        m.submodules.rate_table = rate_mem = memory.Memory(shape=17, depth=self.pixel_values, init=self.rate_table,
                                                           attrs=UNCHECKED)
        m.submodules.latency_table = lat_mem = memory.Memory(shape=16, depth=self.pixel_values,
                                                             init=self.latency_table, attrs=UNCHECKED)
        m.submodules.pixels = list_mem = memory.Memory(shape=entry, depth=max(N, 2), init=[])
        # The per-step counts in distributed RAM, read synchronously: their read-add-write (a count
        # + 1, the prefix sum) starts at a flip-flop, not at a block RAM's slow output. Two read
        # ports, each with one address (a pixel's step, the prefix pass's ``k``) and no multiplexer
        # before it: the state decoding, an address multiplexer and the read on one path limited the
        # encoder alone to 95.3 MHz (router1; 64.7 MHz, router2, when the read was asynchronous).
        m.submodules.counts = count_mem = memory.Memory(shape=index_shape, depth=max(T, 2), init=[], attrs=DISTRIBUTED)
        m.submodules.sorted = sort_mem = memory.Memory(shape=sorted_entry, depth=max(N, 2), init=[], attrs=UNCHECKED)
        rate_wp, lat_wp = rate_mem.write_port(), lat_mem.write_port()
        (rate_rp, rate_data), (lat_rp, lat_data) = registered_read(m, rate_mem, "rate"), registered_read(m, lat_mem, "lat")
        list_wp, list_rp = list_mem.write_port(), list_mem.read_port()
        count_wp, count_at_step, count_at_k = count_mem.write_port(), count_mem.read_port(), count_mem.read_port()
        sort_wp, (sort_rp, sort_data) = sort_mem.write_port(), registered_read(m, sort_mem, "sorted")
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

        # -- the rate pipeline: list read, fmix32 in stages, compare with the threshold ----------------
        # Stage s holds the word issued s cycles ago. A multiplication by a constant is cut in two
        # stages (three 16 x 16 products, then their sum), so no stage holds more than one
        # multiplier or one adder: the ECP5 timing report put the unpipelined hash on the
        # critical path (pixel RAM -> xor-shift -> 32 x 32 multiply).
        P = self.PIPELINE
        key, t = Signal(32), Signal(step_shape)
        issue, issue_end, issue_key = Signal(), Signal(), Signal()
        counter_in = Signal(32)     # (t << 16 | j) for a pixel; the seed when computing the key
        valid = [Signal(name=f"hash_valid{s}") for s in range(P + 1)]
        end = [Signal(name=f"hash_end{s}") for s in range(P + 1)]
        is_key = [Signal(name=f"hash_key{s}") for s in range(P + 1)]
        j = [Signal(index_shape, name=f"hash_index{s}") for s in range(P + 1)]
        threshold = [Signal(17, name=f"hash_threshold{s}") for s in range(P + 1)]
        # The list is read a cycle ahead (see ``k_next``): the issued pixel's entry is at the list's
        # output as it is issued, and registered before it addresses the rate table (a block RAM's slow
        # output straight into a distributed RAM's address was the device's critical path).
        value1 = Signal(cfg.pixel_bits)
        m.d.sync += [j[1].eq(list_rp.data.index), value1.eq(list_rp.data.value)]
        m.d.comb += [valid[0].eq(issue), end[0].eq(issue_end), is_key[0].eq(issue_key),
                     rate_rp.addr.eq(value1), threshold[2].eq(rate_data)]
        for s in range(1, P + 1):
            m.d.sync += [valid[s].eq(valid[s - 1]), end[s].eq(end[s - 1]), is_key[s].eq(is_key[s - 1])]
            if s >= 2:
                m.d.sync += j[s].eq(j[s - 1])
            if s >= 3:
                m.d.sync += threshold[s].eq(threshold[s - 1])
        t1, seed1 = Signal.like(t), Signal(32)
        m.d.sync += t1.eq(t)
        with m.If(issue_key):
            m.d.sync += seed1.eq(counter_in)
        # 1: the list entry (and the threshold read); 2: x ^= x >> 16 of (key ^ counter), or of the seed
        x0 = Mux(is_key[1], seed1, key ^ Cat(j[1], Const(0, 16 - len(j[1])), t1)[:32])
        x2 = Signal(32)
        m.d.sync += x2.eq(x0 ^ (x0 >> 16))
        # 3, 4: times C1 and x ^= x >> 13; 5, 6: times C2; 7: x ^= x >> 16, the draw against the threshold
        x5 = _times(m, x2, FMIX_C1, "c1", shift=13)
        x6 = _times(m, x5, FMIX_C2, "c2")
        hashed = Signal(32)
        m.d.comb += hashed.eq(x6 ^ (x6 >> 16))
        spike = Signal()
        m.d.sync += spike.eq(hashed[32 - cfg.draw_bits:] < threshold[6])
        with m.If(valid[6] & is_key[6]):
            m.d.sync += key.eq(hashed)
        # room: the FIFO's words and the pipeline's, fewer than the FIFO holds. Counted in a register
        # (``held`` = FIFO level + words in stages 1..P), and the test registered: summing the stages'
        # valid bits and the level on the issue path put the encoder's critical path there. The test
        # is made for each change a cycle can bring (-2 .. +2) from ``held`` alone, then chosen by the
        # change (the count's adder then the comparison was a late path into ``room``, 11.9 ns
        # router1 at f22c0e3).
        held = Signal(range(self.fifo_depth + P + 2))
        change = Signal(range(-2, 3))
        room = Signal(init=1)
        m.d.comb += change.eq(issue - valid[P] + (queue.w_en & queue.w_rdy) - (queue.r_en & queue.r_rdy))
        room_after = Array(held + d < self.fifo_depth - 1 for d in range(-2, 3))
        m.d.sync += [held.eq(nudged(held, change, -2, 2)), room.eq(room_after[change + 2])]
        rate_push, rate_end, j_out = Signal(), Signal(), j[P]
        m.d.comb += [rate_push.eq(valid[P] & ~is_key[P] & (spike | end[P])), rate_end.eq(end[P])]

        # -- the sequencer -------------------------------------------------------------------------------
        latency = Signal()
        n_steps, seed = Signal.like(self.n_steps), Signal(32)
        count = Signal(range(N + 1))     # non-zero pixels listed
        # ``k`` walks the pixel list; the list is addressed with the value ``k`` takes next, so that
        # list[k] is at the list's output whenever a state uses it, a cycle before its use would
        # otherwise read it (block RAM's output is slow: it is registered before it addresses a table).
        k, k_next = Signal(range(N + 1)), Signal(range(N + 1))
        pixel = Signal(list_mem.shape)      # list[k], registered (latency coding's passes)
        m.d.comb += [k_next.eq(k), list_rp.addr.eq(k_next), count_at_step.addr.eq(lat_data), count_at_k.addr.eq(k)]
        m.d.sync += k.eq(k_next)
        # Whether ``k`` is at the list's end (``count``, fixed once the list is made) and at the
        # last step, registers worked out from ``k_next``: the walks' comparisons then the
        # choice of ``k_next``, into the list's address, were late (10.03 ns at f555d90, seed 1).
        at_count, at_last, last_step = Signal(), Signal(), Signal.like(self.n_steps)
        m.d.sync += [at_count.eq(k_next == count), at_last.eq(k_next == last_step)]
        acc = Signal(index_shape)
        ptr = Signal(range(N + 1))
        entry, listed_left = Signal(sorted_entry), Signal()    # the walk's registered sorted entry
        step_value = Signal(16)

        # The pixel stream, one bit per cycle: a byte is taken when the last one's bits are spent.
        shreg, have = Signal(8), Signal(range(9))
        # Whether a bit is there (``have != 0``), a register of its own: every decoding state's
        # choice starts from it, and through the comparison it was one LUT deeper (the states'
        # enables of ``limit`` and ``count`` were late at a1645ab, up to 0.5 ns).
        has_bit = Signal()
        decode, shift = Signal(), Signal()
        bit, at_end = shreg[7], Signal()
        # Every decoding state consumes the bit it is offered.
        m.d.comb += [self.bytes.ready.eq(decode & ~has_bit), self.decoding.eq(decode),
                     shift.eq(decode & has_bit),
                     at_end.eq(self.exhausted & ~self.bytes.valid & ~has_bit)]
        with m.If(self.bytes.valid & self.bytes.ready):
            m.d.sync += [shreg.eq(self.bytes.payload), have.eq(8), has_bit.eq(1)]
        with m.Elif(shift):
            m.d.sync += [shreg.eq(shreg << 1), have.eq(have - 1), has_bit.eq(have != 1)]
        with m.If(self.start):
            m.d.sync += [have.eq(0), has_bit.eq(0)]
        # A run code (zeros, then r + 1 in zeros + 1 bits) and a value code (1: the top value, else 0
        # and pixel_bits bits) per listed pixel; ``pos`` is the index after the last listed pixel.
        zeros, left = Signal(range(IMAGE_PREFIX_LIMIT + 1)), Signal(range(IMAGE_PREFIX_LIMIT + 1))
        run, value = Signal(IMAGE_PREFIX_LIMIT + 1), Signal(cfg.pixel_bits)
        pos, target = Signal(range(N + 1)), Signal(len(run) + 1 + _bits(N + 1))
        next_value, write_value, beyond = Signal(cfg.pixel_bits), Signal(cfg.pixel_bits), Signal()
        top = self.pixel_values - 1
        # ``limit`` = n_inputs - pos, kept beside ``pos``: a run goes beyond the image when it is
        # longer than ``limit`` (``pos + run - 1 >= n_inputs``, an adder then a comparison into the
        # state machine, was the encoder's critical path, 12.1 ns). ``beyond`` is a register, set
        # as the run's last bit arrives: the comparison into the state machine and the listing's
        # counters was late (-0.5 ns at 140f86a, router1).
        limit = Signal(range(N + 1))
        m.d.comb += [target.eq(pos + run - 1),
                     next_value.eq(Cat(bit, value[:-1]) if cfg.pixel_bits > 1 else bit)]
        # The list's reads and writes share one address, ``k_next``, so that Yosys puts both on one
        # block RAM port: with two, it adds read/write collision logic (an address comparison into
        # a register, a multiplexer after the block RAM's output), which was late (0.6 ns at
        # 079f43d and at cfea7ff, router1). While the bit stream is decoded ``k`` follows ``count``:
        # a listed pixel is written the cycle after its code's last bit (from registers) at ``k``,
        # and the walks that read the list start once the last write has landed.
        m.d.comb += list_wp.addr.eq(k_next)
        m.d.sync += [list_wp.data.index.eq(target), list_wp.data.value.eq(write_value), list_wp.en.eq(0)]

        def fail():
            m.d.sync += self.error.eq(1)
            m.next = "FAILED"

        def listed(v):
            # ``k`` takes ``count`` (not through ``k_next``, the list's address, which then waits on
            # no decoding): the write lands next cycle at ``k_next``, which is ``k`` there.
            m.d.comb += write_value.eq(v)
            m.d.sync += [list_wp.en.eq(1), k.eq(count), count.eq(count + 1), pos.eq(target + 1),
                         limit.eq(limit - run), zeros.eq(0)]
            m.next = "PREFIX"

        with m.FSM(name="encoder"):
            with m.State("IDLE"):
                # ``k`` is 0 while idle, whether or not an image starts (the start, from the
                # dispatcher, into the list's address was late: 0.05 ns at c97cfe8).
                m.d.comb += k_next.eq(0)
                with m.If(self.start):
                    m.d.sync += [latency.eq(self.latency), seed.eq(self.seed),
                                 n_steps.eq(self.n_steps), last_step.eq(self.n_steps - 1), count.eq(0), pos.eq(0), limit.eq(self.n_inputs), zeros.eq(0),
                                 self.error.eq(0), t.eq(0)]
                    m.next = "PREFIX"
            with m.State("PREFIX"):
                m.d.comb += [decode.eq(1), self.busy.eq(1)]
                with m.If(has_bit):
                    with m.If(~bit):
                        with m.If(zeros == IMAGE_PREFIX_LIMIT):
                            fail()
                        with m.Else():
                            m.d.sync += zeros.eq(zeros + 1)
                    with m.Else():
                        m.d.sync += [run.eq(1), left.eq(zeros), beyond.eq(limit == 0)]
                        m.next = "SUFFIX"
                        with m.If(zeros == 0):      # r = 0: the code is the single 1
                            m.next = "FLAG"
                with m.Elif(at_end):            # between codes, or in a run code's leading zeros
                    m.next = "LISTED"
            with m.State("LISTED"):
                # The last pixel is written; the walks start from the list's first entry (set here,
                # not as the stream ends: the reader's valid into the list's address was late, 1.4 ns
                # at 8cf1abb).
                m.d.comb += [self.busy.eq(1), k_next.eq(0)]
                m.next = "KEY"
                with m.If(latency):
                    m.next = "CLEAR"
            with m.State("SUFFIX"):
                m.d.comb += [decode.eq(1), self.busy.eq(1)]
                with m.If(has_bit):
                    longer = Cat(bit, run[:-1])
                    m.d.sync += [run.eq(longer), left.eq(left - 1), beyond.eq(longer > limit)]
                    with m.If(left == 1):
                        m.next = "FLAG"
                with m.Elif(at_end):
                    fail()
            with m.State("FLAG"):
                m.d.comb += [decode.eq(1), self.busy.eq(1)]
                with m.If(has_bit):
                    with m.If(beyond):
                        fail()
                    with m.Elif(bit):
                        listed(top)
                    with m.Else():
                        m.d.sync += [value.eq(0), left.eq(cfg.pixel_bits)]
                        m.next = "VALUE"
                with m.Elif(at_end):
                    fail()
            with m.State("VALUE"):
                m.d.comb += [decode.eq(1), self.busy.eq(1)]
                with m.If(has_bit):
                    m.d.sync += [value.eq(next_value), left.eq(left - 1)]
                    with m.If(left == 1):
                        with m.If(next_value == 0):
                            fail()
                        with m.Else():
                            listed(next_value)
                with m.Elif(at_end):
                    fail()

            # Rate coding: the key fmix32(seed), through the pipeline, then T x (pixels, end).
            with m.State("KEY"):
                m.d.comb += [self.busy.eq(1), issue.eq(1), issue_key.eq(1), counter_in.eq(seed)]
                m.next = "KEY_WAIT"
            with m.State("KEY_WAIT"):
                m.d.comb += self.busy.eq(1)
                with m.If(valid[P] & is_key[P]):
                    m.d.comb += k_next.eq(0)
                    m.d.sync += t.eq(0)
                    m.next = "RATE"
            with m.State("RATE"):
                m.d.comb += self.busy.eq(1)
                with m.If(room):
                    with m.If(at_count):
                        m.d.comb += [issue.eq(1), issue_end.eq(1)]
                        m.d.comb += k_next.eq(0)
                        m.d.sync += t.eq(t + 1)
                        with m.If(t == n_steps - 1):
                            m.next = "DRAIN"
                    with m.Else():
                        m.d.comb += [issue.eq(1), k_next.eq(k + 1)]
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(held == 0):     # nothing in the pipeline, nothing in the FIFO
                    m.next = "IDLE"

            # Latency coding: count the pixels per step, prefix sums, scatter by step, then walk.
            with m.State("CLEAR"):
                m.d.comb += [self.busy.eq(1), count_wp.addr.eq(k), count_wp.data.eq(0), count_wp.en.eq(1),
                             k_next.eq(k + 1)]
                with m.If(at_last):
                    m.d.comb += k_next.eq(0)
                    m.next = "COUNT_READ"
            for scatter in (False, True):
                prefix = "SCATTER" if scatter else "COUNT"
                with m.State(f"{prefix}_READ"):
                    m.d.comb += self.busy.eq(1)
                    m.d.sync += pixel.eq(list_rp.data)
                    with m.If(at_count):
                        # After the scatter, acc (the prefix pass's total) is where the sorted list ends.
                        m.d.comb += k_next.eq(0)
                        if not scatter:
                            m.d.sync += acc.eq(0)
                        m.next = "WALK_READ" if scatter else "PREFIX_READ"
                    with m.Else():
                        m.next = f"{prefix}_TABLE"
                with m.State(f"{prefix}_TABLE"):
                    m.d.comb += [self.busy.eq(1), lat_rp.addr.eq(pixel.value)]
                    m.next = f"{prefix}_STEP"
                with m.State(f"{prefix}_STEP"):
                    # ``k`` moves on here whatever the step (UPDATE uses no ``k``): the table's
                    # output compared into the list's address was late (10.03 ns at f555d90).
                    m.d.comb += [self.busy.eq(1), k_next.eq(k + 1)]
                    m.d.sync += step_value.eq(lat_data)
                    with m.If(lat_data == NEVER):
                        m.next = f"{prefix}_READ"
                    with m.Else():
                        m.next = f"{prefix}_UPDATE"
                with m.State(f"{prefix}_UPDATE"):
                    m.d.comb += [self.busy.eq(1),
                                 count_wp.addr.eq(step_value), count_wp.data.eq(count_at_step.data + 1), count_wp.en.eq(1)]
                    if scatter:
                        m.d.comb += [sort_wp.addr.eq(count_at_step.data), sort_wp.data.index.eq(pixel.index),
                                     sort_wp.data.step.eq(step_value), sort_wp.en.eq(1)]
                    m.next = f"{prefix}_READ"
            with m.State("PREFIX_READ"):
                m.d.comb += self.busy.eq(1)
                m.next = "PREFIX_WRITE"
            with m.State("PREFIX_WRITE"):
                # count[t] becomes where step t's pixels start in the sorted list.
                m.d.comb += [self.busy.eq(1), count_wp.addr.eq(k), count_wp.data.eq(acc), count_wp.en.eq(1)]
                m.d.comb += k_next.eq(k + 1)
                m.d.sync += acc.eq(acc + count_at_k.data)
                with m.If(at_last):
                    m.d.comb += k_next.eq(0)
                    m.next = "SCATTER_READ"
                with m.Else():
                    m.next = "PREFIX_READ"
            # The walk compares a registered copy of the sorted entry: block RAM's output is slow.
            with m.State("WALK_READ"):
                m.d.comb += [self.busy.eq(1), sort_rp.addr.eq(ptr)]
                m.next = "WALK_LATCH"
            with m.State("WALK_LATCH"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [entry.eq(sort_data), listed_left.eq(ptr != acc)]
                m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += self.busy.eq(1)
                with m.If(queue.w_rdy & listed_left & (entry.step == t)):
                    m.d.comb += [push.eq(1), push_index.eq(entry.index)]
                    m.d.sync += ptr.eq(ptr + 1)
                    m.next = "WALK_READ"
                with m.Elif(queue.w_rdy):
                    m.d.comb += [push.eq(1), push_end.eq(1)]
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
            m.d.comb += [push.eq(1), push_index.eq(j_out), push_end.eq(rate_end)]
        return m
