"""The update unit: each block of ``P`` neurons through the :class:`~hdl.neuron.NeuronLane` pipeline, one per cycle.

The cycle after its issue a block's step sums are read from the accumulate unit (and marked
consumed), its state and bias from their memories; :data:`LATENCY` cycles later the block leaves on ``exit`` with its
new state and spikes (lanes past the layer's ``n_out`` never spike), and its state is written back.
A block's state may be read again (for the next step) from the cycle after it was written:
:data:`STATE_SPACING` cycles after its previous issue.
"""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .layouts import DISTRIBUTED, DISTRIBUTED_DEPTH, LOAD_BIASES, LOAD_H_LUT, LOAD_X_LUT, bits, lane_state_layout, pack_lanes
from .neuron import NeuronLane
from .tables import LaneTables

__all__ = ["UpdateUnit", "exit_layout"]


def exit_layout(config, lanes, limits, layers):
    """A block leaving the update pipeline."""
    return data.StructLayout({
        "valid": 1, "layer": bits(layers), "block": unsigned(bits(-(-limits.max_neurons // lanes))),
        "t": unsigned(bits(limits.max_steps)), "parity": 1, "last": 1,
        "lanes": data.ArrayLayout(lane_state_layout(config), lanes)})


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
        Its ``P`` step sums.
    exit : Out(exit_layout)
        The updated block.
    load : In(data.StructLayout)
        ``valid``, ``memory``, ``address``, ``word``: bias words and LUT entries written at run time.
    """

    #: The issue registered (the scheduler's choice stays off the memories' address path), the
    #: memory reads, then the lane.
    LATENCY = 2 + NeuronLane.LATENCY
    #: A block's state, written at its exit, is read from the next cycle on, and a block's read is
    #: one cycle after its issue: a layer's next step may issue ``LATENCY`` cycles after its last.
    STATE_SPACING = LATENCY

    def __init__(self, image, limits, acc_width, row):
        self.image, self.limits, self.acc_width = image, limits, acc_width
        cfg, P = image.config, image.lanes
        layers = len(image.layers)
        max_blocks = -(-limits.max_neurons // P)
        self.min_shift, self.max_shift = cfg.acc_shift_range
        super().__init__({
            "issue": In(data.StructLayout({"valid": 1, "layer": bits(layers), "block": unsigned(bits(max_blocks)),
                                           "t": unsigned(bits(limits.max_steps)), "parity": 1, "first": 1})),
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

        m.submodules.biases = biases = memory.Memory(shape=unsigned(P * BW), depth=self.limits.state_blocks,
                                                     init=pack_lanes(self.image.biases, BW), attrs=self._style())
        state_layout = data.StructLayout({"i": signed(cfg.i_width), "h": signed(cfg.h_width),
                                          "hs": signed(cfg.hs_width)})
        m.submodules.state = state = memory.Memory(shape=data.ArrayLayout(state_layout, P),
                                                   depth=self.limits.state_blocks, init=[], attrs=self._style())
        b_read, b_write = biases.read_port(), biases.write_port()
        s_read, s_write = state.read_port(), state.write_port()
        m.d.comb += [b_write.addr.eq(load.address), b_write.data.eq(load.word),
                     b_write.en.eq(load.valid & (load.memory == LOAD_BIASES))]

        # -- the issue, registered; the reads -------------------------------------------------------------
        issued = Signal.like(issue)
        m.d.sync += issued.eq(issue)
        row = self.rows[issued.layer]
        m.d.comb += [s_read.addr.eq(row.block_base + issued.block), b_read.addr.eq(row.block_base + issued.block),
                     self.acc_read.consume.eq(issued.valid), self.acc_read.layer.eq(issued.layer),
                     self.acc_read.parity.eq(issued.parity), self.acc_read.block.eq(issued.block)]
        read = Signal.like(issue)
        acc = Signal.like(self.acc_data)
        m.d.sync += [read.eq(issued), acc.eq(self.acc_data)]

        # -- the lanes ----------------------------------------------------------------------------------
        lanes = [NeuronLane(cfg, AW, self.min_shift, self.max_shift) for _ in range(P)]
        m.submodules.tables = tables = LaneTables(cfg, P)
        m.d.comb += [tables.lut_addr.eq(load.address), tables.lut_data.eq(load.word),
                     tables.x_lut_we.eq(load.valid & (load.memory == LOAD_X_LUT)),
                     tables.h_lut_we.eq(load.valid & (load.memory == LOAD_H_LUT))]
        for p, ln in enumerate(lanes):
            m.submodules[f"lane{p}"] = ln
            m.d.comb += [
                ln.i_prev.eq(Mux(read.first, 0, s_read.data[p].i)),
                ln.h_prev.eq(Mux(read.first, 0, s_read.data[p].h)),
                ln.hs_prev.eq(Mux(read.first, 0, s_read.data[p].hs)),
                ln.acc.eq(lane(acc, p, AW).as_signed()),
                ln.bias.eq(lane(b_read.data, p, BW).as_signed()),
                ln.acc_shift.eq(self.rows[read.layer].acc_shift),
                tables.x_addr[p].eq(ln.x_addr), ln.x_data.eq(tables.x_data[p]),
                tables.h_addr[p].eq(ln.h_addr), ln.h_data.eq(tables.h_data[p]),
            ]
        # The block's identity travels beside the lanes.
        delayed = [read]
        for n in range(NeuronLane.LATENCY):
            stage = Signal.like(issue, name=f"in_flight{n}")
            m.d.sync += stage.eq(delayed[-1])
            delayed.append(stage)
        out = delayed[-1]

        # -- exit: the new state, written back; spikes past n_out masked ----------------------------------
        out_row = self.rows[out.layer]
        exit_ = self.exit
        m.d.comb += [exit_.valid.eq(out.valid), exit_.layer.eq(out.layer), exit_.block.eq(out.block),
                     exit_.t.eq(out.t), exit_.parity.eq(out.parity), exit_.last.eq(out.block == out_row.blocks - 1)]
        for p, ln in enumerate(lanes):
            m.d.comb += [exit_.lanes[p].i.eq(ln.i), exit_.lanes[p].h.eq(ln.h), exit_.lanes[p].hs.eq(ln.hs),
                         exit_.lanes[p].s.eq(Mux(out.block * P + p < out_row.n_out, ln.s, 0)),
                         s_write.data[p].i.eq(ln.i), s_write.data[p].h.eq(ln.h), s_write.data[p].hs.eq(ln.hs)]
        m.d.comb += [s_write.addr.eq(out_row.block_base + out.block), s_write.en.eq(out.valid)]
        return m
