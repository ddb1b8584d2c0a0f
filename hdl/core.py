"""The SRC core: one bank of ``P`` neuron lanes, time-multiplexed over every neuron of every layer.

For each step the sequencer runs, layer by layer:

1. **accumulate** — for each input event ``(j, a)`` (from the ``events`` stream for layer 0,
   from a scan of the layer below's spike memory otherwise) and each block ``b`` of ``P``
   output neurons, ``acc[b] += W[b, j] * a`` in all lanes at once: one cycle per block, so an
   event costs ``ceil(n_out / P)`` cycles and silent inputs cost nothing;
2. **update** — each block of ``P`` neurons goes through the :class:`~hdl.neuron.NeuronLane`
   pipeline, which reads the step sum and the state and writes back ``i``, ``h``, ``h_s`` and
   the spikes ``s``, clearing the step sum;

then the readout integrators update from the output layer's spikes (one output neuron per
cycle), and after the last step the class scores and the prediction leave on ``result``.
All numbers are those of :mod:`quant.golden`.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from firmware.image import TABLE_FIELDS, DeviceImage, DeviceLimits, FitError

from .arith import round_shift, saturate
from .cycles import READOUT_FLUSH
from .neuron import NeuronLane

__all__ = ["event_layout", "result_layout", "trace_layout", "load_layout", "SRCCore",
           "LOAD_WEIGHTS", "LOAD_BIASES", "LOAD_TABLE", "LOAD_X_LUT", "LOAD_H_LUT", "LOAD_RATE_TABLE",
           "LOAD_LATENCY_TABLE", "STEPS_ADDRESS",
           "accumulator_width", "load_writes"]


def accumulator_width(config, limits):
    """Signed bits of a step sum: the largest fan-in of any layer within ``limits``, exactly."""
    return config.acc_width(max(limits.max_inputs, limits.max_neurons))


def _bits(n):
    return max(1, (n - 1).bit_length())


def event_layout(config, max_inputs):
    """An input event: neuron ``index`` fires with ``amplitude``; ``end`` words close a step (and carry no event)."""
    return data.StructLayout({"index": unsigned(_bits(max_inputs)), "amplitude": unsigned(config.spike_width),
                              "end": 1})


def result_layout(config, n_classes):
    """One class score per word; the word of the last class has ``last`` set. ``prediction`` is valid in every word."""
    return data.StructLayout({"cls": unsigned(_bits(n_classes)), "score": signed(config.readout_width),
                              "prediction": unsigned(_bits(n_classes)), "last": 1})


def lane_state_layout(config):
    return data.StructLayout({"i": signed(config.i_width), "h": signed(config.h_width), "hs": signed(config.hs_width),
                              "s": unsigned(config.spike_width)})


def trace_layout(config, lanes, limits):
    """A monitor word: the new state of one block of ``lanes`` neurons of one layer at step ``t``."""
    return data.StructLayout({"t": unsigned(_bits(limits.max_steps)), "layer": unsigned(_bits(limits.max_layers)),
                              "block": unsigned(_bits(limits.state_blocks)),
                              "lanes": data.ArrayLayout(lane_state_layout(config), lanes)})


#: Targets of a run-time write through the core's ``load`` port (the last two are the device's image
#: encoder's tables: the core ignores them).
LOAD_WEIGHTS, LOAD_BIASES, LOAD_TABLE, LOAD_X_LUT, LOAD_H_LUT, LOAD_RATE_TABLE, LOAD_LATENCY_TABLE = range(7)
# Fields of a layer-table row (firmware.image.TABLE_FIELDS) are at addresses ``layer * 8 + field``.
#: The ``LOAD_TABLE`` address of ``T`` (field 6 of layer 0).
STEPS_ADDRESS = 6


def load_layout(config, lanes, limits):
    """A run-time write: ``memory`` is one of ``LOAD_*``; a whole word of ``lanes`` values for weights and
    biases, one value for a layer-table field (address ``layer*8 + field``, T at address 6) or a LUT entry."""
    depth = max(limits.weight_words, limits.state_blocks, config.x_lut_size, config.h_lut_size, 8 * limits.max_layers,
                1 << config.pixel_bits)
    return data.StructLayout({"memory": 3, "address": unsigned(_bits(depth)),
                              "word": unsigned(lanes * max(config.weight_width, config.bias_width))})


def load_writes(image):
    """Every ``load`` word that puts ``image`` into a core: ``(memory, address, word)`` tuples."""
    cfg = image.config
    writes = [(LOAD_WEIGHTS, a, w) for a, w in enumerate(_pack(image.weights, cfg.weight_width))]
    writes += [(LOAD_BIASES, a, w) for a, w in enumerate(_pack(image.biases, cfg.bias_width))]
    for k, e in enumerate(image.layers):
        writes += [(LOAD_TABLE, 8 * k + f, getattr(e, name) & ((1 << cfg.acc_shift_width) - 1) if name == "acc_shift" else getattr(e, name))
                   for f, name in enumerate(TABLE_FIELDS)]
    writes.append((LOAD_TABLE, STEPS_ADDRESS, image.n_steps))
    writes += [(LOAD_X_LUT, a, v) for a, v in enumerate(cfg.x_lut)]
    writes += [(LOAD_H_LUT, a, v) for a, v in enumerate(cfg.h_lut)]
    writes += [(LOAD_RATE_TABLE, a, int(v)) for a, v in enumerate(image.rate_table)]
    writes += [(LOAD_LATENCY_TABLE, a, int(v)) for a, v in enumerate(image.latency_table)]
    return writes


def _pack(rows, width):
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (width * p) for p, v in enumerate(row)) for row in rows]


class SRCCore(wiring.Component):
    """The time-multiplexed SRC accelerator core.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The packed network baked into the memories (``lanes`` is taken from it).
    limits : DeviceLimits, optional
        Shape limits; default: exactly the image's shapes.
    trace : bool
        Drive the ``trace`` monitor port (for verification).

    Members
    -------
    events : In(stream.Signature(event_layout))
        Input events, each step closed by an ``end`` word; ``T`` steps make a sample.
    result : Out(stream.Signature(result_layout))
        ``n_classes`` words after the last step of each sample.
    load : In(stream.Signature(load_layout))
        Run-time writes (between samples) of weight and bias words, layer-table fields, T and
        LUT entries: a network of the same number of layers and classes and any sizes within
        ``limits`` can replace the baked one.
    trace : Out(stream.Signature(trace_layout))
        A monitor: one word per updated block, when ``trace`` is set. The core never waits
        on its ``ready``.
    error : Out(1)
        Sticky: an event named an input past the layer's size and was dropped.
    step : Out
        The current step ``t``.
    """

    def __init__(self, image: DeviceImage, limits=None, trace=False):
        try:
            self._configure(image, limits, trace)
        except FitError:
            self._MustUse__silence = True  # refused at construction: never to be elaborated, no warning
            raise

    def _configure(self, image, limits, trace):
        self.image = image
        self.limits = limits or DeviceLimits.exact(image)
        self.limits.check(image)
        self.config = cfg = image.config
        self.lanes = image.lanes
        self.trace_enabled = trace
        shifts = [e.acc_shift for e in image.layers]
        lo, hi = cfg.acc_shift_range
        if min(shifts) < lo or max(shifts) > hi:
            raise FitError(f"weight binary points {shifts} outside the supported shifts [{lo}, {hi}]")
        self.min_shift, self.max_shift = lo, hi
        self.acc_width = accumulator_width(cfg, self.limits)
        super().__init__({
            "events": In(stream.Signature(event_layout(cfg, self.limits.max_inputs))),
            "result": Out(stream.Signature(result_layout(cfg, image.n_classes))),
            "load": In(stream.Signature(load_layout(cfg, self.lanes, self.limits))),
            "trace": Out(stream.Signature(trace_layout(cfg, self.lanes, self.limits))),
            "error": Out(1),
            "step": Out(unsigned(_bits(self.limits.max_steps))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, k, P, image, limits = self.config, self.config.constants, self.lanes, self.image, self.limits
        WB, BW, AW, SW = cfg.weight_width, cfg.bias_width, self.acc_width, cfg.spike_width
        n_layers, n_classes, group = len(image.layers), image.n_classes, cfg.params.group_size

        # -- memories --------------------------------------------------------------------------
        m.submodules.weights = wmem = memory.Memory(shape=unsigned(P * WB), depth=limits.weight_words,
                                                    init=_pack(image.weights, WB))
        m.submodules.biases = bmem = memory.Memory(shape=unsigned(P * BW), depth=limits.state_blocks,
                                                   init=_pack(image.biases, BW))
        state_layout = data.StructLayout({"i": signed(cfg.i_width), "h": signed(cfg.h_width), "hs": signed(cfg.hs_width)})
        m.submodules.state = smem = memory.Memory(shape=data.ArrayLayout(state_layout, P), depth=limits.state_blocks,
                                                  init=[])
        m.submodules.spikes = kmem = memory.Memory(shape=unsigned(P * SW), depth=limits.state_blocks, init=[])
        m.submodules.acc = amem = memory.Memory(shape=unsigned(P * AW), depth=-(-limits.max_neurons // P), init=[])
        w_rp, b_rp, s_rp, k_rp = wmem.read_port(), bmem.read_port(), smem.read_port(), kmem.read_port()
        w_wp, b_wp, s_wp, k_wp = wmem.write_port(), bmem.write_port(), smem.write_port(), kmem.write_port()
        a_wp = amem.write_port()
        a_rp = amem.read_port(transparent_for=(a_wp,))
        lane = lambda word, p, width: word[p * width:(p + 1) * width]

        # -- the layer table and T: registers, initialised from the image, writable at run time -----
        max_blocks = -(-limits.max_neurons // P)
        widths = {"n_in": max(limits.max_inputs, limits.max_neurons), "n_out": limits.max_neurons,
                  "blocks": max_blocks, "weight_base": limits.weight_words, "block_base": limits.state_blocks}
        table = {name: Array(Signal(range(widths[name] + 1), init=getattr(e, name), name=f"{name}{row}")
                             for row, e in enumerate(image.layers))
                 for name in widths}
        acc_shifts = Array(Signal(signed(cfg.acc_shift_width), init=e.acc_shift, name=f"acc_shift{row}")
                           for row, e in enumerate(image.layers))
        n_steps = Signal(range(limits.max_steps + 1), init=image.n_steps)

        # -- run-time loading ----------------------------------------------------------------------
        load = self.load.payload
        m.d.comb += self.load.ready.eq(1)
        with m.If(self.load.valid):
            with m.Switch(load.memory):
                with m.Case(LOAD_WEIGHTS):
                    m.d.comb += [w_wp.addr.eq(load.address), w_wp.data.eq(load.word), w_wp.en.eq(1)]
                with m.Case(LOAD_BIASES):
                    m.d.comb += [b_wp.addr.eq(load.address), b_wp.data.eq(load.word), b_wp.en.eq(1)]
                with m.Case(LOAD_TABLE):
                    for row in range(n_layers):
                        for f, name in enumerate(TABLE_FIELDS):
                            target = acc_shifts[row] if name == "acc_shift" else table[name][row]
                            with m.If(load.address == 8 * row + f):
                                m.d.sync += target.eq(load.word)
                    with m.If(load.address == STEPS_ADDRESS):
                        m.d.sync += n_steps.eq(load.word)
        layer = Signal(range(max(2, n_layers)))
        t = Signal.like(self.step)
        first = Signal()
        m.d.comb += [self.step.eq(t), first.eq(t == 0)]

        # -- neuron lanes ------------------------------------------------------------------------
        lanes = [NeuronLane(cfg, AW, self.min_shift, self.max_shift) for _ in range(P)]
        for p, ln in enumerate(lanes):
            m.submodules[f"lane{p}"] = ln
            m.d.comb += [ln.lut_addr.eq(load.address), ln.lut_data.eq(load.word),
                         ln.x_lut_we.eq(self.load.valid & (load.memory == LOAD_X_LUT)),
                         ln.h_lut_we.eq(self.load.valid & (load.memory == LOAD_H_LUT))]

        # -- accumulate: the event pipeline --------------------------------------------------------
        ev_j = Signal(range(max(2, limits.max_inputs, limits.max_neurons)))
        ev_a = Signal(unsigned(SW))
        ev_row = Signal(range(max(2, limits.weight_words)))   # weight_base + j * blocks
        ob = Signal(range(max(2, -(-limits.max_neurons // P) + 1)))
        issue = Signal()
        wr_valid, wr_ob, wr_a = Signal(), Signal.like(ob), Signal.like(ev_a)
        m.d.comb += [w_rp.addr.eq(ev_row + ob), a_rp.addr.eq(ob)]
        m.d.sync += [wr_valid.eq(issue), wr_ob.eq(ob), wr_a.eq(ev_a)]
        acc_sum = Cat(*(
            (lane(a_rp.data, p, AW).as_signed() + lane(w_rp.data, p, WB).as_signed() * wr_a)[:AW]
            for p in range(P)))

        # -- update: the block pipeline (memory read, then the lanes) ------------------------------
        blk = Signal.like(ob)
        up_issue = Signal()
        up_valid = Signal(1 + NeuronLane.LATENCY)
        up_blk = [Signal.like(ob, name=f"up_blk{n}") for n in range(1 + NeuronLane.LATENCY)]
        m.d.sync += [up_valid.eq(Cat(up_issue, up_valid[:-1])), up_blk[0].eq(blk)]
        m.d.sync += [up_blk[n + 1].eq(up_blk[n]) for n in range(NeuronLane.LATENCY)]
        base = table["block_base"][layer]
        with m.If(up_issue):
            m.d.comb += [s_rp.addr.eq(base + blk), b_rp.addr.eq(base + blk), a_rp.addr.eq(blk)]
        for p, ln in enumerate(lanes):
            m.d.comb += [
                ln.i_prev.eq(Mux(first, 0, s_rp.data[p].i)),
                ln.h_prev.eq(Mux(first, 0, s_rp.data[p].h)),
                ln.hs_prev.eq(Mux(first, 0, s_rp.data[p].hs)),
                ln.acc.eq(lane(a_rp.data, p, AW).as_signed()),
                ln.bias.eq(lane(b_rp.data, p, BW).as_signed()),
                ln.acc_shift.eq(acc_shifts[layer]),
            ]
        out_valid, out_blk = up_valid[-1], up_blk[-1]
        spikes_out = [Mux((out_blk * P + p) < table["n_out"][layer], ln.s, 0) for p, ln in enumerate(lanes)]
        total = Signal(unsigned(SW + _bits(n_classes * group + 1) + 1))
        with m.If(out_valid):
            m.d.comb += [
                s_wp.addr.eq(base + out_blk), s_wp.en.eq(1),
                k_wp.addr.eq(base + out_blk), k_wp.data.eq(Cat(*spikes_out)), k_wp.en.eq(1),
            ]
            m.d.comb += [s_wp.data[p].i.eq(ln.i) for p, ln in enumerate(lanes)]
            m.d.comb += [s_wp.data[p].h.eq(ln.h) for p, ln in enumerate(lanes)]
            m.d.comb += [s_wp.data[p].hs.eq(ln.hs) for p, ln in enumerate(lanes)]
            with m.If(layer == n_layers - 1):
                m.d.sync += total.eq(total + sum(spikes_out))
        # The accumulator's write port: accumulate in the event pipeline, clear in the update pipeline.
        with m.If(out_valid):
            m.d.comb += [a_wp.addr.eq(out_blk), a_wp.data.eq(0), a_wp.en.eq(1)]
        with m.Elif(wr_valid):
            m.d.comb += [a_wp.addr.eq(wr_ob), a_wp.data.eq(acc_sum), a_wp.en.eq(1)]

        if self.trace_enabled:
            m.d.comb += [self.trace.valid.eq(out_valid), self.trace.payload.t.eq(t),
                         self.trace.payload.layer.eq(layer), self.trace.payload.block.eq(out_blk)]
            for p, ln in enumerate(lanes):
                entry = self.trace.payload.lanes[p]
                m.d.comb += [entry.i.eq(ln.i), entry.h.eq(ln.h), entry.hs.eq(ln.hs), entry.s.eq(spikes_out[p])]

        # -- which blocks of the layer just updated have spikes (the scan skips the others) -------
        nonzero = Signal(max_blocks)
        with m.If(up_issue & (blk == 0)):
            m.d.sync += nonzero.eq(0)
        with m.Elif(out_valid):
            m.d.sync += nonzero.bit_select(out_blk, 1).eq(Cat(*spikes_out).any())
        next_block = Signal(range(max(2, max_blocks)))
        for b in reversed(range(max_blocks)):
            with m.If(nonzero[b]):
                m.d.comb += next_block.eq(b)

        # -- the event being accumulated, and the next lane of the scanned spike word ----------------
        ev_busy = Signal()
        last_issue = Signal()
        sb = Signal(range(max(2, max_blocks)))
        word = Signal(unsigned(P * SW))
        mask = Signal(P)

        def lowest(bits):
            chosen = Signal(range(max(2, P)))
            for p in reversed(range(P)):
                with m.If(bits[p]):
                    m.d.comb += chosen.eq(p)
            return chosen

        def start_event(j, amplitude, entry):
            m.d.sync += [ev_j.eq(j), ev_a.eq(amplitude), ob.eq(0), ev_busy.eq(1),
                         ev_row.eq(table["weight_base"][entry] + j * table["blocks"][entry])]

        with m.If(issue):
            m.d.sync += ob.eq(ob + 1)
            with m.If(last_issue):
                m.d.sync += ev_busy.eq(0)

        # -- readout, concurrent with the next step -------------------------------------------------
        # It reads the output layer's spikes through a port of its own, and the sequencer does not
        # update the output layer again before it has finished.
        k2_rp = kmem.read_port()
        v = Array(Signal(signed(cfg.readout_width), name=f"v{c}") for c in range(n_classes))
        ro_start, ro_busy = Signal(), Signal()
        ro_n = Signal(range(n_classes * group + 1))
        ro_valid, ro_lane, ro_end, ro_cls = Signal(), Signal(range(max(2, P))), Signal(), Signal(range(max(2, n_classes)))
        ro_total, ro_first = Signal.like(total), Signal()
        g_acc = Signal(unsigned(SW + _bits(group) + 1))
        best, pred = Signal(signed(cfg.readout_width)), Signal(range(max(2, n_classes)))
        g = Signal.like(g_acc)
        m.d.comb += g.eq(g_acc + Array(lane(k2_rp.data, p, SW) for p in range(P))[ro_lane])
        drive = round_shift(k["readout_pos"] * g + k["readout_neg"] * (ro_total - g),
                            cfg.coef_frac + cfg.state_frac - cfg.readout_frac)
        with m.If(ro_valid & ~ro_end):
            m.d.sync += g_acc.eq(g)
        # A class's integrator update takes three stages (drive; leak and sum; the running
        # argmax): each class is updated once every ``group`` cycles, so they never overlap.
        r1_valid, r1_cls, r1_drive = Signal(), Signal.like(ro_cls), Signal(drive.shape())
        m.d.sync += r1_valid.eq(ro_valid & ro_end)
        with m.If(ro_valid & ro_end):
            m.d.sync += [r1_cls.eq(ro_cls), r1_drive.eq(drive), g_acc.eq(0)]
        v_new = Signal(signed(cfg.readout_width))
        m.d.comb += v_new.eq(saturate(round_shift(k["readout_alpha"] * Mux(ro_first, 0, v[r1_cls]), cfg.coef_frac)
                                      + r1_drive, cfg.readout_min, cfg.readout_max))
        r2_valid, r2_cls, r2_v = Signal(), Signal.like(ro_cls), Signal.like(v_new)
        m.d.sync += [r2_valid.eq(r1_valid), r2_cls.eq(r1_cls), r2_v.eq(v_new)]
        with m.If(r1_valid):
            m.d.sync += v[r1_cls].eq(v_new)
        with m.If(r2_valid & ((r2_cls == 0) | (r2_v > best))):
            m.d.sync += [best.eq(r2_v), pred.eq(r2_cls)]
        m.d.sync += ro_valid.eq(0)
        last_base = table["block_base"][n_layers - 1]
        with m.FSM(name="readout"):
            with m.State("IDLE"):
                with m.If(ro_start):
                    m.d.sync += [ro_n.eq(0), g_acc.eq(0), ro_total.eq(total), ro_first.eq(first)]
                    m.next = "RUN"
            with m.State("RUN"):
                # One output neuron per cycle: its spike word is read now and used next cycle.
                m.d.comb += [ro_busy.eq(1), k2_rp.addr.eq(last_base + ro_n // P)]
                m.d.sync += [ro_valid.eq(1), ro_lane.eq(ro_n % P), ro_end.eq(ro_n % group == group - 1),
                             ro_cls.eq(ro_n // group), ro_n.eq(ro_n + 1)]
                with m.If(ro_n == n_classes * group - 1):
                    m.next = "FLUSH0"
            for n in range(READOUT_FLUSH):
                with m.State(f"FLUSH{n}"):
                    m.d.comb += ro_busy.eq(1)
                    m.next = f"FLUSH{n + 1}" if n + 1 < READOUT_FLUSH else "IDLE"

        out_cls = Signal(range(max(2, n_classes)))
        m.d.comb += [self.result.payload.cls.eq(out_cls), self.result.payload.score.eq(v[out_cls]),
                     self.result.payload.prediction.eq(pred), self.result.payload.last.eq(out_cls == n_classes - 1)]

        # -- the sequencer -------------------------------------------------------------------------
        def start_update(next_layer):
            # The output layer is not updated again before the readout has read its spikes.
            with m.If((next_layer == n_layers - 1) & ro_busy):
                pass
            with m.Else():
                with m.If(next_layer == n_layers - 1):
                    m.d.sync += total.eq(0)
                m.d.sync += blk.eq(0)
                m.next = "UPDATE"

        with m.FSM(name="sequencer"):
            with m.State("INPUT"):
                # Layer 0 takes events from the stream, back to back, until the end of the step.
                m.d.comb += [issue.eq(ev_busy), last_issue.eq(ev_busy & (ob == table["blocks"][0] - 1)),
                             self.events.ready.eq(~ev_busy | last_issue)]
                with m.If(self.events.valid & self.events.ready):
                    with m.If(self.events.payload.end):
                        m.d.sync += layer.eq(0)
                        m.next = "DRAIN_INPUT"
                    with m.Elif(self.events.payload.index < table["n_in"][0]):
                        start_event(self.events.payload.index, self.events.payload.amplitude, 0)
                    with m.Else():
                        m.d.sync += self.error.eq(1)
            with m.State("DRAIN_INPUT"):
                # The last accumulation is written this cycle.
                start_update(layer)
            with m.State("UPDATE"):
                m.d.comb += up_issue.eq(1)
                m.d.sync += blk.eq(blk + 1)
                with m.If(blk == table["blocks"][layer] - 1):
                    m.next = "DRAIN_UPDATE"
            with m.State("DRAIN_UPDATE"):
                with m.If(up_valid == 0):
                    with m.If(layer == n_layers - 1):
                        m.d.comb += ro_start.eq(1)
                        with m.If(t == n_steps - 1):
                            m.next = "WAIT_READOUT"
                        with m.Else():
                            m.d.sync += t.eq(t + 1)
                            m.next = "INPUT"
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                        m.next = "SCAN_NEXT"
            with m.State("SCAN_NEXT"):
                # The next block of the layer below that has spikes, or the end of the scan.
                with m.If(nonzero == 0):
                    start_update(layer)
                with m.Else():
                    m.d.comb += k_rp.addr.eq(table["block_base"][layer - 1] + next_block)
                    m.d.sync += [sb.eq(next_block), nonzero.bit_select(next_block, 1).eq(0)]
                    m.next = "SCAN_LOAD"
            with m.State("SCAN_LOAD"):
                loaded = Cat(*(lane(k_rp.data, p, SW) != 0 for p in range(P)))
                pick = lowest(loaded)
                m.d.sync += [word.eq(k_rp.data), mask.eq(loaded & ~(1 << pick))]
                start_event(sb * P + pick, Array(lane(k_rp.data, p, SW) for p in range(P))[pick], layer)
                m.next = "SCAN_EVENTS"
            with m.State("SCAN_EVENTS"):
                m.d.comb += [issue.eq(1), last_issue.eq(ob == table["blocks"][layer] - 1)]
                with m.If(last_issue):
                    with m.If(mask == 0):
                        m.next = "SCAN_NEXT"
                    with m.Else():
                        pick = lowest(mask)
                        m.d.sync += mask.eq(mask & ~(1 << pick))
                        start_event(sb * P + pick, Array(lane(word, p, SW) for p in range(P))[pick], layer)
            with m.State("WAIT_READOUT"):
                with m.If(~ro_busy & ~ro_start):
                    m.d.sync += out_cls.eq(0)
                    m.next = "RESULT"
            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.d.sync += out_cls.eq(out_cls + 1)
                    with m.If(out_cls == n_classes - 1):
                        m.d.sync += t.eq(0)
                        m.next = "INPUT"
        return m
