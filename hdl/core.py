"""The SRC core: an accumulate unit and an update unit, shared by all layers and busy at the same time.

The parts, each its own module: the :class:`~hdl.layer_table.LayerTable` (per-layer registers and
``T``), the :class:`~hdl.accumulate.AccumulateUnit` (weights and step sums), the
:class:`~hdl.update.UpdateUnit` (biases, neuron state and the neuron lanes), a
:class:`~hdl.spike_queue.SpikeQueue` between consecutive layers (layer ``l``'s spikes are layer
``l + 1``'s input events), the :class:`~hdl.readout.Readout` (class sums, integrators, results) and
the :class:`~hdl.scheduler.Scheduler`, which decides each cycle what the two units do. A
recurrent layer has one more queue, its own: its spikes of step ``t`` are its own input events
of step ``t + 1`` (the lateral weights are more input rows). This module
only wires them: the run-time load port to the part each write is for, the units to the
scheduler, the update unit's exits to the next queue or the readout, and the trace port.
"""

from amaranth import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from firmware.image import DeviceImage, DeviceLimits, FitError

from .accumulate import AccumulateUnit
from .cycles import queue_depth
from .layer_table import LayerTable
from .layouts import (LOAD_BIASES, LOAD_H_LUT, LOAD_TABLE, LOAD_WEIGHTS, LOAD_X_LUT, accumulator_width,
                      event_layout, load_layout, result_layout, trace_layout)
from .readout import Readout
from .scheduler import Scheduler
from .spike_queue import SpikeQueue
from .update import UpdateUnit

__all__ = ["SRCCore"]


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
        self.acc_width = accumulator_width(cfg, self.limits)
        # The parts, made here so that a bench can watch them.
        P, L = self.lanes, len(image.layers)
        max_blocks = -(-self.limits.max_neurons // P)
        self.table = LayerTable(image, self.limits)
        self.accumulate = AccumulateUnit(image, self.limits, self.acc_width)
        self.update = UpdateUnit(image, self.limits, self.acc_width, self.table.row)
        self.readout = Readout(cfg, P, image.n_classes, max_blocks)
        self.queues = [None] + [SpikeQueue(cfg, P, max_blocks, queue_depth(max_blocks)) for _ in range(1, L)]
        self.own_queues = {l: SpikeQueue(cfg, P, max_blocks, queue_depth(max_blocks)) for l in self.limits.recurrent}
        self.scheduler = Scheduler(cfg, self.limits, P, L, self.table.row,
                                   (self.accumulate.issue.shape(), self.update.issue.shape()), queue_depth(max_blocks),
                                   self.limits.recurrent)
        super().__init__({
            "events": In(stream.Signature(event_layout(cfg, self.limits.max_inputs))),
            "result": Out(stream.Signature(result_layout(cfg, image.n_classes))),
            "load": In(stream.Signature(load_layout(cfg, self.lanes, self.limits))),
            "trace": Out(stream.Signature(trace_layout(cfg, self.lanes, self.limits))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P, L = self.lanes, len(self.image.layers)
        m.submodules.table = table = self.table
        m.submodules.accumulate = acc = self.accumulate
        m.submodules.update = upd = self.update
        m.submodules.readout = readout = self.readout
        queues = self.queues
        for l in range(1, L):
            m.submodules[f"queue{l}"] = queues[l]
        for l, queue in self.own_queues.items():
            m.submodules[f"own_queue{l}"] = queue
        rows, n_steps = table.rows, table.n_steps
        m.d.comb += [upd.rows.eq(rows), acc.read.eq(upd.acc_read), upd.acc_data.eq(acc.read_data)]
        wiring.connect(m, wiring.flipped(self.result), readout.result)

        # -- run-time loading: each write, registered on arrival, to the part that holds it ----------
        # A register per part, placed beside its memories: the load port's fields would otherwise
        # run from the link's loader to every memory of the core, across the chip. Writes come
        # between samples, so landing a cycle later changes nothing a sample sees.
        load = self.load.payload
        m.d.comb += self.load.ready.eq(1)
        for part, memories in ((table.write, (LOAD_TABLE,)), (acc.load, (LOAD_WEIGHTS,)),
                               (upd.load, (LOAD_BIASES, LOAD_X_LUT, LOAD_H_LUT))):
            m.d.sync += part.valid.eq(self.load.valid & Cat(load.memory == k for k in memories).any())
            m.d.sync += [part.address.eq(load.address), part.word.eq(load.word)]
            if hasattr(part, "memory"):
                m.d.sync += part.memory.eq(load.memory)

        # -- the scheduler: the units' work, the queues' heads -------------------------------------------
        m.submodules.scheduler = sched = self.scheduler
        wiring.connect(m, wiring.flipped(self.events), sched.events)
        m.d.comb += [sched.rows.eq(rows), sched.n_steps.eq(n_steps), acc.issue.eq(sched.accumulate),
                     upd.issue.eq(sched.update), sched.accumulated.eq(acc.done),
                     sched.exit.valid.eq(upd.exit.valid), sched.exit.layer.eq(upd.exit.layer),
                     sched.readout_done.eq(readout.done), self.error.eq(sched.error)]
        for l in range(1, L):
            event = queues[l].event
            m.d.comb += [sched.spikes[l].valid.eq(event.valid), sched.spikes[l].end.eq(event.end),
                         sched.spikes[l].index.eq(event.index), sched.spikes[l].amplitude.eq(event.amplitude),
                         sched.levels[l].eq(queues[l].level), sched.stores[l].eq(queues[l].stores), sched.pops[l].eq(queues[l].pops),
                         queues[l].take.eq(sched.take[l])]
        for l, queue in self.own_queues.items():
            event = queue.event
            m.d.comb += [sched.own[l].valid.eq(event.valid), sched.own[l].end.eq(event.end),
                         sched.own[l].index.eq(event.index), sched.own[l].amplitude.eq(event.amplitude),
                         sched.own_levels[l].eq(queue.level), sched.own_stores[l].eq(queue.stores), sched.own_pops[l].eq(queue.pops),
                         queue.take.eq(sched.take_own[l])]

        # -- exits: to the next layer's queue, or to the readout; the trace --------------------------------
        out = upd.exit
        spikes = [out.lanes[p].s for p in range(P)]
        for l in range(L):
            is_here = out.valid & (out.layer == l)
            if l in self.own_queues:
                # Back into the layer itself for the next step; a sample's last step feeds nothing.
                q = self.own_queues[l]
                m.d.comb += [q.push.valid.eq(is_here & (out.t != n_steps - 1)), q.push.block.eq(out.block),
                             q.push.last.eq(out.last), q.push.keep.eq(out.keep), q.push.spikes.eq(Cat(*spikes)),
                             q.push.summary.eq(out.summary)]
            if l + 1 < L:
                q = queues[l + 1]
                m.d.comb += [q.push.valid.eq(is_here), q.push.block.eq(out.block), q.push.last.eq(out.last),
                             q.push.keep.eq(out.keep), q.push.spikes.eq(Cat(*spikes)), q.push.summary.eq(out.summary)]
            else:
                m.d.comb += [readout.block.valid.eq(is_here), readout.block.block.eq(out.block),
                             readout.block.last.eq(out.last), readout.block.buffer.eq(out.parity),
                             readout.block.first.eq(out.t == 0), readout.block.final.eq(out.t == n_steps - 1),
                             readout.block.spikes.eq(Cat(*spikes))]
        if self.trace_enabled:
            m.d.comb += [self.trace.valid.eq(out.valid), self.trace.payload.t.eq(out.t),
                         self.trace.payload.layer.eq(out.layer), self.trace.payload.block.eq(out.block)]
            for p in range(P):
                entry = self.trace.payload.lanes[p]
                m.d.comb += [entry.i.eq(out.lanes[p].i), entry.h.eq(out.lanes[p].h), entry.hs.eq(out.lanes[p].hs),
                             entry.s.eq(out.lanes[p].s)]
        return m

