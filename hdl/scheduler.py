"""The core's scheduler: each cycle, what the accumulate unit and the update unit do next.

Per step ``t`` and layer ``l`` there are two pieces of work: *accumulate* (the step sums of the
layer's input events, ``ceil(blocks / 4)`` cycles per event) and *update* (``blocks`` cycles
through the neuron lanes). The scheduler decides, one decision per unit per cycle:

* the accumulate unit takes, from the deepest layer that has one, the next input event (or the
  step's end), provided that layer has fewer than two steps of sums waiting to be updated (its
  sums are double-buffered by step parity); layer 0's events come from ``events``, the others'
  from the queue below them. A **recurrent** layer has a second source, its own queue: its spikes
  of step ``t - 1``, which are inputs ``n_in + m`` of step ``t``. It is served before the queue
  below (its spikes are the older), its step end issues nothing, and the layer's step ``t`` may
  close (the end from below be taken) only after its own end of step ``t - 1`` (``owed``); the
  spikes of a sample's last step are not queued, so step 0 owes nothing;
* the update unit starts, for the shallowest layer whose next step's sums are complete, that
  step's blocks, provided the layer's previous step started :attr:`~hdl.update.UpdateUnit.STATE_SPACING`
  cycles ago (its state is written back by then), the queue to the next layer (and a recurrent
  layer's own queue) has room for every block, and (for the output layer) the readout's buffer for
  the step is free.

So layer 0 accumulates step ``t + 1`` while upper layers finish step ``t``, samples follow each
other without a gap, and a unit waits only for data. :class:`hdl.cycles.CoreSchedule` replays
these decisions cycle by cycle.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import bits, event_layout
from .update import UpdateUnit

__all__ = ["Scheduler", "spikes_layout"]


def spikes_layout(max_index, spike_width):
    """What a queue between layers offers: an event (``index``, ``amplitude``) or its step's ``end``."""
    return data.StructLayout({"valid": 1, "end": 1, "index": unsigned(bits(max_index)),
                              "amplitude": unsigned(spike_width)})


class Scheduler(wiring.Component):
    """The two units' decisions, and what each layer has in flight.

    Parameters
    ----------
    config : quant.fixedpoint.FixedPointConfig
    limits : firmware.image.DeviceLimits
    lanes, layers : int
    row : data.StructLayout
        A layer-table row (:func:`hdl.layer_table.row_layout`).
    issue_layouts : tuple of data.StructLayout
        The accumulate unit's and the update unit's ``issue`` layouts.
    queue_depth : int
        Words of each queue between layers.
    recurrent : tuple of int
        The recurrent layers (each with its own queue).

    Members
    -------
    events : In(stream.Signature(event_layout))
        Layer 0's input events and step ends.
    rows : In(data.ArrayLayout(row, layers))
    n_steps : In
        ``T``: a sample's last step is ``T - 1``.
    spikes : In(data.ArrayLayout(spikes_layout, layers))
        For each layer ``l >= 1``, the head of the queue from layer ``l - 1`` (entry 0 unused).
    levels : In(data.ArrayLayout, layers)
        Words in each of those queues.
    stores, pops : In(layers)
        Bit ``l``: a word is stored in that queue this cycle; its head word leaves if taken this
        cycle. The level's change (the level next cycle, less this cycle's) is worked out here,
        ``stores - (take & pops)``, beside the take.
    take : Out(layers)
        Bit ``l``: the head of layer ``l``'s queue is taken this cycle.
    own, own_levels, own_stores, own_pops, take_own :
        As ``spikes``, ``levels``, ``stores``, ``pops`` and ``take``, for each recurrent layer's own queue (other entries unused).
    accumulate, update : Out(data.StructLayout)
        The units' issue words.
    accumulated : In(data.StructLayout)
        The accumulate unit's ``done``: a layer's step sums are final.
    exit : In(data.StructLayout)
        ``valid`` and ``layer`` of a block leaving the update unit.
    readout_done : In(data.StructLayout)
        ``valid`` and ``buffer``: the readout finished a step.
    error : Out(1)
        Sticky: an input event named an input past layer 0's size (it was dropped).
    """

    def __init__(self, config, limits, lanes, layers, row, issue_layouts, queue_depth, recurrent=()):
        self.layers, self.depth, self.max_steps = layers, queue_depth, limits.max_steps
        self.recurrent = tuple(recurrent)
        self.max_blocks = -(-limits.max_neurons // lanes)
        accumulate, update = issue_layouts
        super().__init__({
            "events": In(stream.Signature(event_layout(config, limits.max_inputs))),
            "rows": In(data.ArrayLayout(row, layers)),
            "n_steps": In(unsigned(bits(limits.max_steps + 1))),
            "spikes": In(data.ArrayLayout(spikes_layout(self.max_blocks * lanes, config.spike_width), layers)),
            "levels": In(data.ArrayLayout(unsigned(bits(queue_depth + 1)), layers)),
            "stores": In(layers),
            "pops": In(layers),
            "take": Out(layers),
            "own": In(data.ArrayLayout(spikes_layout(self.max_blocks * lanes, config.spike_width), layers)),
            "own_levels": In(data.ArrayLayout(unsigned(bits(queue_depth + 1)), layers)),
            "own_stores": In(layers),
            "own_pops": In(layers),
            "take_own": Out(layers),
            "accumulate": Out(accumulate),
            "update": Out(update),
            "accumulated": In(data.StructLayout({"valid": 1, "layer": bits(layers)})),
            "exit": In(data.StructLayout({"valid": 1, "layer": bits(layers)})),
            "readout_done": In(data.StructLayout({"valid": 1, "buffer": 1})),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, depth, rows = self.layers, self.depth, self.rows
        # claimed: steps whose end the accumulate unit has taken and whose sums the update unit has
        # not finished reading (at most two: the sums are double-buffered); summed: of those, the ones
        # whose sums are final and whose update has not started; reserved: queue words promised to
        # blocks in the update pipeline.
        claimed = Array(Signal(range(3), name=f"claimed{l}") for l in range(L))
        summed = Array(Signal(range(3), name=f"summed{l}") for l in range(L))
        a_parity = Array(Signal(name=f"a_parity{l}") for l in range(L))
        u_parity = Array(Signal(name=f"u_parity{l}") for l in range(L))
        u_step = Array(Signal(range(self.max_steps), name=f"u_step{l}") for l in range(L))
        since = Array(Signal(range(UpdateUnit.STATE_SPACING + 1), name=f"since{l}", init=UpdateUnit.STATE_SPACING)
                      for l in range(L))
        reserved = Array(Signal(range(depth + 1), name=f"reserved{l}") for l in range(L))
        own_reserved = Array(Signal(range(depth + 1), name=f"own_reserved{l}") for l in range(L))
        # room: whether a queue's words, held and promised, leave room for another step of the
        # layer that fills it (level + promised <= depth - blocks), a register, so that the update
        # unit's decision starts from registers. Worked out from the level and the slack
        # (depth - blocks - promised) as they were, the test (a carry chain) then the decision then
        # the slack's multiplexer was the ULX3S build's critical path (11.2 ns at 46a33cd, router1);
        # here each outcome's test is made from registers and the outcomes choose among them.
        # ``blocks`` is at most ``top`` (its field's largest value, whatever the table holds).
        top = (1 << len(rows[0].blocks)) - 1
        bounds = range(depth - 2 * top - 1, depth + 3)
        room = Array(Signal(name=f"room{l}", init=1) for l in range(L))
        own_room = Array(Signal(name=f"own_room{l}", init=1) for l in range(L))
        readout_busy = Array(Signal(name=f"readout_busy{b}") for b in range(2))

        ended, finishing, started = self._accumulate(m, claimed, a_parity), Signal(L), Signal(L)
        self._update(m, claimed, summed, u_parity, u_step, since, room, own_room, readout_busy, finishing, started)

        # -- the bookkeeping --------------------------------------------------------------------------
        for l in range(L):
            with m.If(since[l] < UpdateUnit.STATE_SPACING):
                m.d.sync += since[l].eq(since[l] + 1)
            final = self.accumulated.valid & (self.accumulated.layer == l)
            m.d.sync += [claimed[l].eq(claimed[l] + ended[l] - finishing[l]),
                         summed[l].eq(summed[l] + final - started[l])]
            with m.If(finishing[l]):
                m.d.sync += [u_parity[l].eq(~u_parity[l]),
                             u_step[l].eq(Mux(u_step[l] == self.n_steps - 1, 0, u_step[l] + 1))]
            # Words promised (a step's blocks on its start, less a block gone), each outcome from
            # registers alone (started or not, a block leaving or not), then chosen by them (adders
            # after the decision, then after the update unit's exit, were the device's critical
            # path: 13.4 ns with router1 at 9b8565f, and at b46ced8).
            leaving = self.exit.valid & (self.exit.layer == l)
            moves = lambda stores, take, pops: stores - (take & pops)     # -1, 0 or 1
            queues = ([(reserved[l + 1], room[l], self.levels[l + 1],
                        moves(self.stores[l + 1], self.take[l + 1], self.pops[l + 1]))] if l + 1 < L else []) + \
                ([(own_reserved[l], own_room[l], self.own_levels[l],
                   moves(self.own_stores[l], self.take_own[l], self.own_pops[l]))] if l in self.recurrent else [])
            if not queues:
                continue
            blocks = rows[l].blocks
            more = Signal(range(top), name=f"more_blocks{l}")
            m.d.sync += more.eq(Mux(blocks != 0, blocks - 1, 0))     # no row has none
            # Next cycle the queue holds level + move words and promised + blocks * start - leave
            # more, so room next cycle is: level + promised <= depth - blocks * (1 + start) +
            # (leave - move). The right-hand sides, eight registers (start 0 or 1; leave - move in
            # -1..2), follow the table a cycle behind: a table write is followed two cycles later.
            limit = {(start, k): Signal(bounds, name=f"limit{l}_{start}_{k + 1}")
                     for start in (0, 1) for k in range(-1, 3)}
            m.d.sync += [v.eq(depth - blocks * (1 + start) + k) for (start, k), v in limit.items()]
            for promised, fits, level, move in queues:
                held = Signal(range(2 * depth + 1), name=f"held{l}")
                m.d.comb += held.eq(level + promised)
                tests = Array(held <= limit[start, k] for start in (0, 1) for k in range(-1, 3))
                m.d.sync += [
                    promised.eq(Mux(started[l], Mux(leaving, promised + more, promised + blocks),
                                    Mux(leaving, promised - 1, promised))),
                    fits.eq(tests[Cat((leaving - move + 1)[:2], started[l])]),
                ]
        with m.If(self.readout_done.valid):
            m.d.sync += readout_busy[self.readout_done.buffer].eq(0)
        return m

    def _accumulate(self, m, claimed, a_parity):
        """The accumulate unit's decision; returns ``ended`` (bit ``l``: layer ``l``'s step end issued)."""
        L, rows, issue = self.layers, self.rows, self.accumulate
        ended = Signal(L)
        left = Signal(range(self.max_blocks + 1))     # groups of four blocks of the current event still to issue
        a_layer, a_base, a_index = Signal(range(L)), Signal.like(issue.base), Signal.like(issue.index)
        a_amp, a_par = Signal.like(issue.amplitude), Signal()
        a_group, a_blocks = Signal.like(issue.group), Signal.like(issue.blocks)
        # A recurrent layer's step, and whether its own end of the previous step is still to come.
        a_step = Array(Signal(range(self.max_steps), name=f"a_step{l}") for l in range(L))
        owed = Array(Signal(name=f"owed{l}") for l in range(L))
        events = self.events
        # The sources, highest priority first: the deepest layer first (it finishes the oldest step),
        # and within a recurrent layer its own queue before the one below.
        sources = []   # (layer, own, valid, end, index, amplitude)
        for l in reversed(range(L)):
            if l in self.recurrent:
                own = self.own[l]
                sources.append((l, True, own.valid, own.end, rows[l].n_in + own.index, own.amplitude))
            if l:
                below = self.spikes[l]
                sources.append((l, False, below.valid, below.end, below.index, below.amplitude))
            else:
                sources.append((0, False, events.valid, events.payload.end, events.payload.index,
                                events.payload.amplitude))
        wants, may = [], []
        for l, own, valid, end, _, _ in sources:
            want = Signal(name=f"a_wants{l}{'_own' if own else ''}")
            gate = claimed[l] < 2
            if not own and l in self.recurrent:
                gate = gate & ~(end & owed[l])     # the step closes after the layer's own spikes of the last
            m.d.comb += want.eq(valid & gate)
            wants.append(want)
            may.append(gate)
        # Whether an event's groups are still being issued (``left != 0``), in a register of its own:
        # every decision of the cycle waits on it.
        a_busy = Signal()
        with m.If(a_busy):
            m.d.comb += [issue.valid.eq(1), issue.layer.eq(a_layer), issue.base.eq(a_base), issue.index.eq(a_index),
                         issue.amplitude.eq(a_amp),
                         issue.parity.eq(a_par), issue.group.eq(a_group + 1), issue.blocks.eq(a_blocks)]
            m.d.sync += [left.eq(left - 1), a_busy.eq(left != 1), a_group.eq(a_group + 1)]
        with m.Else():
            for k, (l, own, _, end, index, amplitude) in enumerate(sources):
                row = rows[l]
                chosen = wants[k] & ~any_of(wants[:k])
                if l == 0 and not own:
                    # Layer 0 is asked for input only when nothing before it has work and it may take it
                    # (whether or not a word is offered: ready does not wait for valid).
                    m.d.comb += events.ready.eq(may[k] & ~any_of(wants[:k]))
                elif own:
                    m.d.comb += self.take_own[l].eq(chosen)
                else:
                    m.d.comb += self.take[l].eq(chosen)
                with m.If(chosen):
                    with m.If(end):
                        if own:
                            m.d.sync += owed[l].eq(0)     # nothing to issue: the step may now close
                        else:
                            m.d.comb += [issue.valid.eq(1), issue.end.eq(1), issue.layer.eq(l),
                                         issue.parity.eq(a_parity[l]), ended[l].eq(1)]
                            m.d.sync += a_parity[l].eq(~a_parity[l])
                            if l in self.recurrent:
                                last = a_step[l] == self.n_steps - 1
                                m.d.sync += [a_step[l].eq(Mux(last, 0, a_step[l] + 1)), owed[l].eq(~last)]
                    with m.Elif(Const(l == 0 and not own) & (index >= row.n_in)):
                        m.d.sync += self.error.eq(1)     # an input past the layer: dropped
                    with m.Else():
                        m.d.comb += [issue.valid.eq(1), issue.layer.eq(l), issue.base.eq(row.weight_base),
                                     issue.index.eq(index), issue.amplitude.eq(amplitude),
                                     issue.parity.eq(a_parity[l]), issue.group.eq(0), issue.blocks.eq(row.blocks)]
                        m.d.sync += [left.eq(row.more_groups), a_busy.eq(row.several_groups),
                                     a_layer.eq(l),
                                     a_base.eq(row.weight_base), a_index.eq(index),
                                     a_amp.eq(amplitude), a_par.eq(a_parity[l]), a_group.eq(0), a_blocks.eq(row.blocks)]
        return ended

    def _update(self, m, claimed, summed, u_parity, u_step, since, room, own_room, readout_busy, finishing, started):
        """The update unit's decision: drives ``update``, ``finishing`` and ``started`` (bit per layer)."""
        L, rows, issue = self.layers, self.rows, self.update
        u_left, u_layer = Signal(range(self.max_blocks + 1)), Signal(range(L))
        u_block = Signal(range(self.max_blocks + 1))
        ready = []
        for l in range(L):
            # Room for the step's blocks: in the next layer's queue (or a free readout buffer), and
            # in the layer's own queue.
            fits = room[l] if l + 1 < L else ~readout_busy[u_parity[l]]
            if l in self.recurrent:
                fits = fits & own_room[l]
            ready.append((summed[l] != 0) & (since[l] >= UpdateUnit.STATE_SPACING) & fits)
        u_busy = Signal()           # u_left != 0, a register
        with m.If(u_busy):
            m.d.comb += [issue.valid.eq(1), issue.layer.eq(u_layer), issue.block.eq(u_block),
                         issue.t.eq(u_step[u_layer]), issue.parity.eq(u_parity[u_layer]),
                         issue.first.eq(u_step[u_layer] == 0)]
            m.d.sync += [u_left.eq(u_left - 1), u_busy.eq(u_left != 1), u_block.eq(u_block + 1)]
        with m.Else():
            for l in range(L):
                m.d.comb += started[l].eq(ready[l] & ~any_of(ready[:l]))   # shallowest first
                with m.If(started[l]):
                    blocks = rows[l].blocks
                    m.d.comb += [issue.valid.eq(1), issue.layer.eq(l), issue.block.eq(0), issue.t.eq(u_step[l]),
                                 issue.parity.eq(u_parity[l]), issue.first.eq(u_step[l] == 0)]
                    m.d.sync += [u_left.eq(blocks - 1), u_busy.eq(blocks != 1), u_layer.eq(l), u_block.eq(1),
                                 since[l].eq(1)]
                    if l + 1 == L:
                        m.d.sync += readout_busy[u_parity[l]].eq(1)
        # A step's last block issued: its sums are consumed, the layer moves on. Said per layer from
        # the registers and the layer's own start (not through the issue's multiplexers: the
        # bookkeeping waits on it).
        for l in range(L):
            single = rows[l].blocks == 1
            m.d.comb += finishing[l].eq(Mux(u_busy, (u_left == 1) & (u_layer == l), started[l] & single))


def any_of(signals):
    """The OR of ``signals`` (0 for none)."""
    result = Const(0, 1)
    for s in signals:
        result = result | s
    return result
