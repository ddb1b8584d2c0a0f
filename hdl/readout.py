"""The readout: class sums of the output layer's spikes, then the leaky integrators and, after a sample, the result.

Output blocks are summed by class as they leave the update unit (neuron ``n`` belongs to class
``n // group_size``; a block of ``P`` lanes spans a few classes, found from the running offset of
its first neuron). A step's sums wait in one of two buffers; a job then updates the ``C``
integrators, one class per cycle through a pipeline of :attr:`Readout.STAGES` (the products by
the constants as adder trees, a level per stage; their sum; the saturation; the running argmax),
exactly as :mod:`quant.golden` does. After a sample's last step the ``C`` scores
leave on ``result``, with the prediction.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import add_all, add_pairwise, constant_terms, saturate
from .layouts import bits, result_layout

__all__ = ["Readout"]


class Readout(wiring.Component):
    """Class sums, integrators and results.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    lanes : int
    n_classes : int
    max_blocks : int

    Members
    -------
    block : In(data.StructLayout)
        An output-layer block leaving the update unit: ``valid``, ``block``, ``spikes``, ``last``;
        ``buffer`` names the sums it adds to, ``first`` and ``final`` the sample's first and last step.
    done : Out(data.StructLayout)
        ``valid`` and ``buffer``: a step's class sums are all read, its buffer free again.
    result : Out(stream.Signature(result_layout))
        ``n_classes`` words after the last step of a sample.
    """

    #: Cycles an output block takes from ``block`` to the class sums: registered on entry, its class
    #: parts registered, then added. A step's job can start the cycle after its last block's sums.
    ENTRY = 2
    #: Levels of the integrators' adder trees after their first (the products by the readout
    #: constants, a term per signed digit, and the rounding half): trees of up to 16 terms.
    TREE_LEVELS = 3
    #: Cycles the integrators' pipeline runs after a job's last class is issued (its flush, before a
    #: sample's result): the reads, the trees' first level, their other levels, the sum, the
    #: saturation, the argmax. A class's integrator is written ``STAGES - 1`` cycles after its read.
    STAGES = 5 + TREE_LEVELS

    def __init__(self, config, lanes, n_classes, max_blocks):
        from firmware.image import FitError

        self.config, self.lanes, self.n_classes, self.max_blocks = config, lanes, n_classes, max_blocks
        k = config.constants
        drive = 1 + len(constant_terms(0, k["readout_pos"])) + len(constant_terms(0, k["readout_neg"]))
        leak = 1 + len(constant_terms(0, k["readout_alpha"]))
        if _levels(drive) > self.TREE_LEVELS or _levels(leak) > 1 + self.TREE_LEVELS:
            raise FitError(f"the readout constants need adder trees of {drive} and {leak} terms; the readout's "
                           f"pipeline sums at most {1 << self.TREE_LEVELS} and {2 << self.TREE_LEVELS}")
        super().__init__({
            "block": In(data.StructLayout({"valid": 1, "block": unsigned(bits(max_blocks)), "last": 1,
                                           "buffer": 1, "first": 1, "final": 1,
                                           "spikes": unsigned(lanes * config.spike_width)})),
            "done": Out(data.StructLayout({"valid": 1, "buffer": 1})),
            "result": Out(stream.Signature(result_layout(config, n_classes))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, k, P, C = self.config, self.config.constants, self.lanes, self.n_classes
        G, SW = cfg.params.group_size, cfg.spike_width

        # -- class sums: the block registered, its parts per class registered, then added -----------------
        entry = Signal.like(self.block)
        m.d.sync += entry.eq(self.block)
        spikes = [entry.spikes[p * SW:(p + 1) * SW] for p in range(P)]
        g_width = SW + bits(G + 1)
        tot_width = SW + bits(C * G + 1)
        sums = Array(Array(Signal(g_width, name=f"g{b}_{c}") for c in range(C)) for b in range(2))
        totals = Array(Signal(tot_width, name=f"tot{b}") for b in range(2))
        # The block's first neuron is class base + (offset .. offset + P - 1) // G.
        base, offset = Signal(range(C + P + 1)), Signal(range(G))
        reach = (G - 1 + P - 1) // G + 1                # classes a block can touch
        step_of = Array(Const((o + P) // G, bits(P // G + 2)) for o in range(G))
        wrap_of = Array(Const((o + P) % G, bits(G)) for o in range(G))
        # Whether the entry is a block 0, registered with it; and each class's lane mask for the
        # block after this one, worked out as ``offset`` is (looking the masks up by the offset on
        # the way into the parts' adders put the parts among the device's late paths at 3a78b80).
        first = Signal()
        m.d.sync += first.eq(self.block.block == 0)
        block_base = Mux(first, 0, base)
        block_offset = Mux(first, 0, offset)
        parts = data.StructLayout({"valid": 1, "last": 1, "buffer": 1, "first": 1, "final": 1,
                                   "base": range(C + P + 1), "total": unsigned(SW + bits(P + 1)),
                                   "part": data.ArrayLayout(unsigned(SW + bits(P + 1)), reach)})
        part = Signal(parts)
        m.d.sync += [part.valid.eq(entry.valid), part.last.eq(entry.last), part.buffer.eq(entry.buffer),
                     part.first.eq(entry.first), part.final.eq(entry.final), part.base.eq(block_base),
                     part.total.eq(add_all(spikes))]
        for d in range(reach):
            masks = [sum(1 << p for p in range(P) if (o + p) // G == d) for o in range(G)]
            following = Signal(P, name=f"mask{d}", init=masks[0])     # for the next block, at ``offset``
            with m.If(entry.valid):
                m.d.sync += following.eq(Array(Const(k, P) for k in masks)[wrap_of[block_offset]])
            mask = Mux(first, masks[0], following)
            m.d.sync += part.part[d].eq(add_all([Mux(mask[p], spikes[p], 0) for p in range(P)]))
        with m.If(entry.valid):
            m.d.sync += [base.eq(block_base + step_of[block_offset]), offset.eq(wrap_of[block_offset])]
        with m.If(part.valid):
            m.d.sync += totals[part.buffer].eq(totals[part.buffer] + part.total)
            for c in range(C):
                # At most one part is class c's (base + d == c for one d at most): a multiplexer by
                # comparisons of ``base`` with constants, not a sum of the parts (adders, then the
                # class's own: late, -0.5 ns at 8785342, router1).
                add = Const(0)
                for d in reversed(range(min(reach, c + 1))):
                    add = Mux(part.base == c - d, part.part[d], add)
                m.d.sync += sums[part.buffer][c].eq(sums[part.buffer][c] + add)

        # -- jobs: one per completed step, in order ---------------------------------------------------
        job_layout = data.StructLayout({"buffer": 1, "first": 1, "final": 1})
        jobs = Array(Signal(job_layout, name=f"job{n}") for n in range(2))
        queued, head = Signal(range(3)), Signal()
        enqueue, dequeue = Signal(), Signal()
        m.d.comb += enqueue.eq(part.valid & part.last)
        with m.If(enqueue):
            m.d.sync += [jobs[head ^ queued[0]].buffer.eq(part.buffer), jobs[head ^ queued[0]].first.eq(part.first),
                         jobs[head ^ queued[0]].final.eq(part.final)]
        m.d.sync += queued.eq(queued + enqueue - dequeue)
        with m.If(dequeue):
            m.d.sync += head.eq(~head)
        job = Signal(job_layout)

        # -- the integrators, one class per cycle through a pipeline ---------------------------------
        # v = sat(round_shift(alpha * v, coef_frac) + round_shift(pos * g + neg * (tot - g), shift)),
        # as quant.golden; each product by a constant is a tree of additions (hdl.arith.constant_terms),
        # a level per stage, the rounding half one more term of its tree. A class's v is read and
        # written once per job, so the pipeline carries no dependence from one class to the next.
        v = Array(Signal(signed(cfg.readout_width), name=f"v{c}") for c in range(C))
        cls = Signal(range(C + 1))
        issuing = Signal()
        drive_shift = cfg.coef_frac + cfg.state_frac - cfg.readout_frac
        tag = data.StructLayout({"valid": 1, "cls": range(C + 1)})

        def stage(previous, name):
            here = Signal(tag, name=name)
            m.d.sync += here.eq(previous)
            return here

        def held(values, name):
            out = [Signal(value.shape(), name=f"{name}{n}") for n, value in enumerate(values)]
            m.d.sync += [o.eq(value) for o, value in zip(out, values)]
            return out

        t0 = Signal(tag)
        m.d.comb += [t0.valid.eq(issuing), t0.cls.eq(cls)]
        tags = [stage(t0, "read_tag")]
        g, tot, v_old = held([sums[job.buffer][cls], totals[job.buffer], Mux(job.first, 0, v[cls])], "read")
        tags.append(stage(tags[-1], "tree_tag0"))
        leak = held(add_pairwise([*constant_terms(v_old, k["readout_alpha"]), Const(_half(cfg.coef_frac))]),
                    "leak0_")
        g_1, diff = held([g, tot - g], "difference")
        drive = [*constant_terms(g_1, k["readout_pos"]), *constant_terms(diff, k["readout_neg"]),
                 Const(_half(drive_shift))]
        for n in range(1, self.TREE_LEVELS + 1):
            tags.append(stage(tags[-1], f"tree_tag{n}"))
            leak, drive = held(add_pairwise(leak), f"leak{n}_"), held(add_pairwise(drive), f"drive{n}_")
        tags.append(stage(tags[-1], "sum_tag"))
        total, = held([(leak[0] >> cfg.coef_frac) + _shift_right(drive[0], drive_shift)], "sum")
        tags.append(stage(tags[-1], "saturated_tag"))
        v_new, = held([saturate(total, cfg.readout_min, cfg.readout_max)], "saturated")
        last_tag = tags[-1]
        with m.If(last_tag.valid):
            m.d.sync += v[last_tag.cls].eq(v_new)
        best, prediction = Signal(signed(cfg.readout_width)), Signal(range(max(2, C)))
        with m.If(last_tag.valid & ((last_tag.cls == 0) | (v_new > best))):
            m.d.sync += [best.eq(v_new), prediction.eq(last_tag.cls)]
        in_flight = Cat(*(t.valid for t in tags)).any()

        out = Signal(range(max(2, C)))
        m.d.comb += [self.result.payload.cls.eq(out), self.result.payload.score.eq(v[out]),
                     self.result.payload.prediction.eq(prediction), self.result.payload.last.eq(out == C - 1)]
        # A job's buffer is free once its last class is read (each sum is cleared as it is read): the
        # job reports done then, not after its pipeline drains. The next job may start at once, so
        # long as a class is read no sooner than its integrator's last write has landed (the
        # pipeline's STAGES - 1 cycles after its read): with fewer classes than that, it waits.
        wait = max(0, self.STAGES - 1 - C)
        hold = Signal(range(wait + 1))
        with m.If(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        with m.FSM(name="readout"):
            with m.State("IDLE"):
                with m.If((queued != 0) & (hold == 0)):
                    m.d.sync += [job.eq(jobs[head]), cls.eq(0)]
                    m.d.comb += dequeue.eq(1)
                    m.next = "CLASSES"
            with m.State("CLASSES"):
                m.d.comb += issuing.eq(1)
                m.d.sync += [cls.eq(cls + 1), sums[job.buffer][cls].eq(0)]   # each sum is read once, then cleared
                with m.If(cls == C - 1):
                    m.d.sync += totals[job.buffer].eq(0)
                    m.d.comb += [self.done.valid.eq(1), self.done.buffer.eq(job.buffer)]
                    with m.If(job.final):
                        m.next = "FLUSH"
                    with m.Else():
                        m.d.sync += hold.eq(wait)
                        m.next = "IDLE"
            with m.State("FLUSH"):
                # A sample's last step: its last class through the leak and the argmax.
                with m.If(~in_flight):
                    m.d.sync += out.eq(0)
                    m.next = "RESULT"
            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.d.sync += out.eq(out + 1)
                    with m.If(out == C - 1):
                        m.next = "IDLE"
        return m


def _levels(terms):
    """Levels of a pairwise adder tree over ``terms`` terms."""
    return max(0, (terms - 1).bit_length())


def _half(shift):
    """The rounding half of a right shift by ``shift`` (0 for a left shift)."""
    return 1 << (shift - 1) if shift > 0 else 0


def _shift_right(value, shift):
    """``value >> shift``, a left shift for a negative ``shift`` (its half is then 0: exact)."""
    return value >> shift if shift >= 0 else value << -shift
