"""The readout: class sums of the output layer's spikes, then the leaky integrators and, after a sample, the result.

Output blocks are summed by class as they leave the update unit (neuron ``n`` belongs to class
``n // group_size``; a block of ``P`` lanes spans a few classes, found from the running offset of
its first neuron). A step's sums wait in one of two buffers; a job then updates the ``C``
integrators, one class per cycle through three stages (the drive; leak, sum and saturation; the
running argmax), exactly as :mod:`quant.golden` does. After a sample's last step the ``C`` scores
leave on ``result``, with the prediction.
"""

from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import round_shift, saturate
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
        ``valid`` and ``buffer``: a step's job is finished, its buffer free again.
    result : Out(stream.Signature(result_layout))
        ``n_classes`` words after the last step of a sample.
    """

    STAGES = 3   # drive; leak, sum and saturation; argmax

    def __init__(self, config, lanes, n_classes, max_blocks):
        self.config, self.lanes, self.n_classes, self.max_blocks = config, lanes, n_classes, max_blocks
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
        spikes = [self.block.spikes[p * SW:(p + 1) * SW] for p in range(P)]

        # -- class sums ---------------------------------------------------------------------------
        g_width = SW + bits(G + 1)
        tot_width = SW + bits(C * G + 1)
        sums = Array(Array(Signal(g_width, name=f"g{b}_{c}") for c in range(C)) for b in range(2))
        totals = Array(Signal(tot_width, name=f"tot{b}") for b in range(2))
        # The block's first neuron is class base + (offset .. offset + P - 1) // G.
        base, offset = Signal(range(C + P + 1)), Signal(range(G))
        reach = (G - 1 + P - 1) // G + 1                # classes a block can touch
        step_of = Array(Const((o + P) // G, bits(P // G + 2)) for o in range(G))
        wrap_of = Array(Const((o + P) % G, bits(G)) for o in range(G))
        block = self.block
        block_base = Mux(block.block == 0, 0, base)
        block_offset = Mux(block.block == 0, 0, offset)
        part = []
        for d in range(reach):
            masks = Array(Const(sum(1 << p for p in range(P) if (o + p) // G == d), P) for o in range(G))
            mask = masks[block_offset]
            part.append(sum(Mux(mask[p], spikes[p], 0) for p in range(P)))
        with m.If(block.valid):
            m.d.sync += [base.eq(block_base + step_of[block_offset]), offset.eq(wrap_of[block_offset]),
                         totals[block.buffer].eq(totals[block.buffer] + sum(spikes))]
            for c in range(C):
                add = sum(Mux(block_base + d == c, part[d], 0) for d in range(reach))
                m.d.sync += sums[block.buffer][c].eq(sums[block.buffer][c] + add)

        # -- jobs: one per completed step, in order ---------------------------------------------------
        job_layout = data.StructLayout({"buffer": 1, "first": 1, "final": 1})
        jobs = Array(Signal(job_layout, name=f"job{n}") for n in range(2))
        queued, head = Signal(range(3)), Signal()
        enqueue, dequeue = Signal(), Signal()
        m.d.comb += enqueue.eq(block.valid & block.last)
        with m.If(enqueue):
            m.d.sync += [jobs[head ^ queued[0]].buffer.eq(block.buffer), jobs[head ^ queued[0]].first.eq(block.first),
                         jobs[head ^ queued[0]].final.eq(block.final)]
        m.d.sync += queued.eq(queued + enqueue - dequeue)
        with m.If(dequeue):
            m.d.sync += head.eq(~head)
        job = Signal(job_layout)

        # -- the integrators, one class per cycle --------------------------------------------------
        v = Array(Signal(signed(cfg.readout_width), name=f"v{c}") for c in range(C))
        cls = Signal(range(C + 1))
        r0_valid = Signal()
        m.d.comb += r0_valid.eq(0)
        g_now = sums[job.buffer][cls]
        tot_now = totals[job.buffer]
        drive = round_shift(k["readout_pos"] * g_now + k["readout_neg"] * (tot_now - g_now),
                            cfg.coef_frac + cfg.state_frac - cfg.readout_frac)
        r1_valid, r1_cls, r1_drive = Signal(), Signal.like(cls), Signal(drive.shape())
        m.d.sync += [r1_valid.eq(r0_valid), r1_cls.eq(cls), r1_drive.eq(drive)]
        v_new = Signal(signed(cfg.readout_width))
        m.d.comb += v_new.eq(saturate(round_shift(k["readout_alpha"] * Mux(job.first, 0, v[r1_cls]), cfg.coef_frac)
                                      + r1_drive, cfg.readout_min, cfg.readout_max))
        r2_valid, r2_cls, r2_v = Signal(), Signal.like(cls), Signal.like(v_new)
        m.d.sync += [r2_valid.eq(r1_valid), r2_cls.eq(r1_cls), r2_v.eq(v_new)]
        with m.If(r1_valid):
            m.d.sync += v[r1_cls].eq(v_new)
        best, prediction = Signal(signed(cfg.readout_width)), Signal(range(max(2, C)))
        with m.If(r2_valid & ((r2_cls == 0) | (r2_v > best))):
            m.d.sync += [best.eq(r2_v), prediction.eq(r2_cls)]

        out = Signal(range(max(2, C)))
        m.d.comb += [self.result.payload.cls.eq(out), self.result.payload.score.eq(v[out]),
                     self.result.payload.prediction.eq(prediction), self.result.payload.last.eq(out == C - 1)]
        with m.FSM(name="readout"):
            with m.State("IDLE"):
                with m.If(queued != 0):
                    m.d.sync += [job.eq(jobs[head]), cls.eq(0)]
                    m.d.comb += dequeue.eq(1)
                    m.next = "CLASSES"
            with m.State("CLASSES"):
                m.d.comb += r0_valid.eq(1)
                m.d.sync += [cls.eq(cls + 1), sums[job.buffer][cls].eq(0)]   # each sum is read once, then cleared
                with m.If(cls == C - 1):
                    m.d.sync += totals[job.buffer].eq(0)
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # The last class through the leak and the argmax.
                with m.If(~r1_valid & ~r2_valid):
                    with m.If(job.final):
                        m.d.sync += out.eq(0)
                        m.next = "RESULT"
                    with m.Else():
                        m.d.comb += [self.done.valid.eq(1), self.done.buffer.eq(job.buffer)]
                        m.next = "IDLE"
            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.d.sync += out.eq(out + 1)
                    with m.If(out == C - 1):
                        m.d.comb += [self.done.valid.eq(1), self.done.buffer.eq(job.buffer)]
                        m.next = "IDLE"
        return m
