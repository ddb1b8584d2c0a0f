"""The update unit: each block of ``P`` neurons through the :class:`~hdl.neuron.NeuronLane` pipeline, one per cycle.

The cycle after its issue a block's memory address (the layer's ``block_base`` plus the block),
its shift, whether it is the layer's last and which of its lanes are neurons are registered: from
then on the block carries everything it needs, and the layer table is never on a path to a memory.
The next cycle its step sums are read from the accumulate unit (and marked consumed), its state and
bias from their memories; :data:`LATENCY` cycles after its issue the block leaves on ``exit`` with its
new state and spikes (lanes past the layer's ``n_out`` never spike) and their summary for the next
layer's queue, and its state is written back.
A block's state may be read again (for the next step) from the cycle after it was written:
the layer's next step may issue :data:`STATE_SPACING` cycles after its previous one.
"""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .accumulate import AccumulateUnit
from .fanout import register_copies
from .layouts import DISTRIBUTED, DISTRIBUTED_DEPTH, LOAD_BIASES, LOAD_H_LUT, LOAD_X_LUT, bits, lane_state_layout
from .neuron import NeuronLane
from .spike_queue import first_event, summary_layout
from .tables import LaneTables

__all__ = ["UpdateUnit", "exit_layout"]


def exit_layout(config, lanes, limits, layers):
    """A block leaving the update pipeline: its new state, its spikes' summary for the next
    layer's queue (:func:`hdl.spike_queue.summary_layout`), and ``keep``: a queue stores it (it
    holds a spike or closes its step)."""
    max_blocks = -(-limits.max_neurons // lanes)
    return data.StructLayout({
        "valid": 1, "layer": bits(layers), "block": unsigned(bits(max_blocks)),
        "t": unsigned(bits(limits.max_steps)), "parity": 1, "last": 1, "keep": 1,
        "lanes": data.ArrayLayout(lane_state_layout(config), lanes),
        "summary": summary_layout(config, lanes, max_blocks)})


class UpdateUnit(wiring.Component):
    """Neuron updates, a block per cycle.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The baked network (biases are the memory's initial contents).
    limits : firmware.image.DeviceLimits
    acc_width : int
    row : data.StructLayout
        The layer table's row (:func:`hdl.layer_table.row_layout`).

    Members
    -------
    issue : In(data.StructLayout)
        ``valid``, ``layer``, ``block``, step ``t`` and its ``parity``, ``first`` (``t == 0``: the
        previous state is zero).
    rows : In(data.ArrayLayout(row, layers))
        The layer table.
    acc_read : Out(data.StructLayout)
        The step-sum read of the issued block (``consume`` with it).
    acc_data : In
        Its ``P`` step sums, :attr:`~hdl.accumulate.AccumulateUnit.READ_LATENCY` cycles after
        ``acc_read`` (with the memories' data).
    exit : Out(exit_layout)
        The updated block.
    load : In(data.StructLayout)
        ``valid``, ``memory``, ``address``, ``word``: bias words and LUT entries written at run time.
    """

    #: A block's sums and state are read (``acc_read``, the memories' addresses) this many cycles
    #: after its issue: the issue registered, then its address.
    READ_AFTER = 2
    #: The reads' cycle, the one that registers their data, then the lane.
    LATENCY = READ_AFTER + 1 + NeuronLane.LATENCY
    #: A block's state is written at its exit, ``LATENCY`` cycles after its issue, and read
    #: ``READ_AFTER`` cycles after its issue: the block's next issue may come once that read falls
    #: on the cycle after the write.
    STATE_SPACING = LATENCY + 1 - READ_AFTER

    def __init__(self, image, limits, acc_width, row):
        self.image, self.limits, self.acc_width = image, limits, acc_width
        cfg, P = image.config, image.lanes
        layers = len(image.layers)
        max_blocks = -(-limits.max_neurons // P)
        self.min_shift, self.max_shift = cfg.acc_shift_range
        issue = data.StructLayout({"valid": 1, "layer": bits(layers), "block": unsigned(bits(max_blocks)),
                                   "t": unsigned(bits(limits.max_steps)), "parity": 1, "first": 1})
        # A block in flight: its issue, and what the layer table says of it.
        self._block_layout = data.StructLayout({"issue": issue, "address": unsigned(bits(limits.state_blocks)),
                                                "shift": row["acc_shift"].shape,
                                                "last": 1, "live": P})
        super().__init__({
            "issue": In(issue),
            "rows": In(data.ArrayLayout(row, layers)),
            "acc_read": Out(data.StructLayout({"consume": 1, "layer": bits(layers), "parity": 1,
                                               "block": unsigned(bits(max_blocks))})),
            "acc_data": In(unsigned(P * acc_width)),
            "exit": Out(exit_layout(cfg, P, limits, layers)),
            "load": In(data.StructLayout({"valid": 1, "memory": 3,
                                          "address": unsigned(bits(max(limits.state_blocks, cfg.x_lut_size,
                                                                       cfg.h_lut_size))),
                                          "word": unsigned(P * max(cfg.bias_width, cfg.x_width, cfg.h_width))})),
        })

    def _style(self):
        # A few dozen blocks: distributed RAM; a large network's state: block RAM.
        return DISTRIBUTED if self.limits.state_blocks <= DISTRIBUTED_DEPTH else None

    def elaborate(self, platform):
        m = Module()
        cfg, P, AW, BW = self.image.config, self.image.lanes, self.acc_width, self.image.config.bias_width
        lane = lambda word, p, width: word[p * width:(p + 1) * width]
        issue, load = self.issue, self.load

        # Bias and state memories. In distributed RAM (shallow), one per lane (a lane's column is read
        # by that lane alone), each addressed by its own copy of the block's address registers: one
        # address driving every cell of all the lanes took 10 ns of routing. In block RAM, one for all
        # the lanes (a few block RAMs, and lanes apart would each fill a block RAM's depth poorly).
        state_layout = data.StructLayout({"i": signed(cfg.i_width), "h": signed(cfg.h_width),
                                          "hs": signed(cfg.hs_width)})
        groups = [[p] for p in range(P)] if self._style() == DISTRIBUTED else [list(range(P))]
        b_reads, s_reads, s_writes, where = [], [], [], {}
        for g, members in enumerate(groups):
            biases = memory.Memory(shape=data.ArrayLayout(signed(BW), len(members)), depth=self.limits.state_blocks,
                                   init=[[int(row[p]) for p in members] for row in self.image.biases],
                                   attrs=self._style())
            state = memory.Memory(shape=data.ArrayLayout(state_layout, len(members)), depth=self.limits.state_blocks,
                                  init=[], attrs=self._style())
            m.submodules[f"biases{g}"], m.submodules[f"state{g}"] = biases, state
            b_write = biases.write_port()
            m.d.comb += [b_write.addr.eq(load.address), b_write.data.eq(Cat(*(lane(load.word, p, BW) for p in members))),
                         b_write.en.eq(load.valid & (load.memory == LOAD_BIASES))]
            b_reads.append(biases.read_port())
            s_reads.append(state.read_port())
            s_writes.append(state.write_port())
            where.update({p: (g, n) for n, p in enumerate(members)})

        # -- the issue, registered; the block's address and what the layer table says of it, registered;
        # the reads ---------------------------------------------------------------------------------------
        issued = Signal.like(issue)
        m.d.sync += issued.eq(issue)
        row = self.rows[issued.layer]
        block = Signal(self._block_layout)
        address = (row.block_base + issued.block)[:len(block.address)]
        m.d.sync += [block.issue.eq(issued), block.address.eq(address),
                     block.shift.eq(row.acc_shift), block.last.eq(issued.block == row.blocks - 1),
                     block.live.eq(Cat(*(issued.block * P + p < row.n_out for p in range(P))))]
        # The step sums' read goes out a cycle before the memories' (it takes two cycles), so that all
        # the block's data arrive together.
        assert self.READ_AFTER + 1 - AccumulateUnit.READ_LATENCY == 1
        read_at = register_copies(m, address, len(groups), "read_at")
        for g, at in enumerate(read_at):
            m.d.comb += [s_reads[g].addr.eq(at), b_reads[g].addr.eq(at)]
        m.d.comb += [self.acc_read.consume.eq(issued.valid), self.acc_read.layer.eq(issued.layer),
                     self.acc_read.parity.eq(issued.parity), self.acc_read.block.eq(issued.block)]
        read = Signal.like(block)
        m.d.sync += read.eq(block)

        # -- the lanes ----------------------------------------------------------------------------------
        lanes = [NeuronLane(cfg, AW, self.min_shift, self.max_shift) for _ in range(P)]
        m.submodules.tables = tables = LaneTables(cfg, P)
        m.d.comb += [tables.lut_addr.eq(load.address), tables.lut_data.eq(load.word),
                     tables.x_lut_we.eq(load.valid & (load.memory == LOAD_X_LUT)),
                     tables.h_lut_we.eq(load.valid & (load.memory == LOAD_H_LUT))]
        for p, ln in enumerate(lanes):
            m.submodules[f"lane{p}"] = ln
            g, n = where[p]
            previous = s_reads[g].data[n]
            m.d.comb += [
                ln.i_prev.eq(Mux(read.issue.first, 0, previous.i)),
                ln.h_prev.eq(Mux(read.issue.first, 0, previous.h)),
                ln.hs_prev.eq(Mux(read.issue.first, 0, previous.hs)),
                ln.acc.eq(lane(self.acc_data, p, AW).as_signed()),
                ln.bias.eq(b_reads[g].data[n]),
                ln.acc_shift.eq(read.shift),
                tables.x_addr[p].eq(ln.x_addr), ln.x_data.eq(tables.x_data[p]),
                tables.h_addr[p].eq(ln.h_addr), ln.h_data.eq(tables.h_data[p]),
            ]
        # The block travels beside the lanes.
        delayed = [read]
        for n in range(NeuronLane.LATENCY):
            stage = Signal.like(read, name=f"in_flight{n}")
            m.d.sync += stage.eq(delayed[-1])
            delayed.append(stage)
        out = delayed[-1]

        # -- exit: the new state, written back; spikes past n_out masked ----------------------------------
        exit_ = self.exit
        m.d.comb += [exit_.valid.eq(out.issue.valid), exit_.layer.eq(out.issue.layer), exit_.block.eq(out.issue.block),
                     exit_.t.eq(out.issue.t), exit_.parity.eq(out.issue.parity), exit_.last.eq(out.last)]
        # The write address too, a copy per memory, registered beside the block's last stage.
        write_at = register_copies(m, delayed[-2].address, len(groups), "write_at")
        for write, at in zip(s_writes, write_at):
            m.d.comb += [write.addr.eq(at), write.en.eq(out.issue.valid)]
        # The spikes' summary, from the lanes' next outputs a cycle before the block leaves, and
        # registered as it leaves: the next layer's queue stores it as it comes.
        before = delayed[-2]
        nexts = [Mux(before.live[p], ln.s_next, 0) for p, ln in enumerate(lanes)]
        spiking = Cat(*(v != 0 for v in nexts))
        first_index, first_amplitude, first_lane = first_event(m, before.issue.block, nexts, spiking)
        m.d.sync += [exit_.summary.spiking.eq(spiking), exit_.summary.first_lane.eq(first_lane),
                     exit_.summary.first_index.eq(first_index), exit_.summary.first_amplitude.eq(first_amplitude),
                     exit_.keep.eq(spiking.any() | before.last)]
        for p, ln in enumerate(lanes):
            g, n = where[p]
            m.d.comb += [exit_.lanes[p].i.eq(ln.i), exit_.lanes[p].h.eq(ln.h), exit_.lanes[p].hs.eq(ln.hs),
                         exit_.lanes[p].s.eq(Mux(out.live[p], ln.s, 0)),
                         s_writes[g].data[n].i.eq(ln.i), s_writes[g].data[n].h.eq(ln.h),
                         s_writes[g].data[n].hs.eq(ln.hs)]
        return m
