"""The core's port formats and run-time load targets: what the core, the link gateware and the benches share.

Every layout takes its widths from the fixed-point configuration and the device limits; nothing
here restates a width by hand.
"""

from amaranth import Signal, signed, unsigned
from amaranth.lib import data

from firmware.image import TABLE_FIELDS

__all__ = ["accumulator_width", "event_layout", "result_layout", "lane_state_layout", "trace_layout", "load_layout",
           "load_writes", "pack_lanes", "LOAD_WEIGHTS", "LOAD_BIASES", "LOAD_TABLE", "LOAD_X_LUT", "LOAD_H_LUT",
           "LOAD_RATE_TABLE", "LOAD_LATENCY_TABLE", "STEPS_ADDRESS", "bits"]


def accumulator_width(config, limits):
    """Signed bits of a step sum: the largest fan-in of any layer within ``limits``, exactly."""
    return config.acc_width(limits.max_fan_in)


def bits(n):
    """Bits of an unsigned index below ``n`` (at least 1)."""
    return max(1, (n - 1).bit_length())


def event_layout(config, max_inputs):
    """An input event: neuron ``index`` fires with ``amplitude``; ``end`` words close a step (and carry no event)."""
    return data.StructLayout({"index": unsigned(bits(max_inputs)), "amplitude": unsigned(config.spike_width),
                              "end": 1})


def result_layout(config, n_classes):
    """One class score per word; the word of the last class has ``last`` set. ``prediction`` is valid in every word."""
    return data.StructLayout({"cls": unsigned(bits(n_classes)), "score": signed(config.readout_width),
                              "prediction": unsigned(bits(n_classes)), "last": 1})


def lane_state_layout(config):
    return data.StructLayout({"i": signed(config.i_width), "h": signed(config.h_width), "hs": signed(config.hs_width),
                              "s": unsigned(config.spike_width)})


def trace_layout(config, lanes, limits):
    """A monitor word: the new state of one block of ``lanes`` neurons of one layer at step ``t``."""
    return data.StructLayout({"t": unsigned(bits(limits.max_steps)), "layer": unsigned(bits(limits.max_layers)),
                              "block": unsigned(bits(limits.state_blocks)),
                              "lanes": data.ArrayLayout(lane_state_layout(config), lanes)})


#: Targets of a run-time write through the core's ``load`` port (the last two are the device's image
#: encoder's tables: the core ignores them).
LOAD_WEIGHTS, LOAD_BIASES, LOAD_TABLE, LOAD_X_LUT, LOAD_H_LUT, LOAD_RATE_TABLE, LOAD_LATENCY_TABLE = range(7)
# Fields of a layer-table row (firmware.image.TABLE_FIELDS) are at addresses ``layer * 8 + field``.
#: The ``LOAD_TABLE`` address of ``T`` (field 7 of layer 0, after the row's seven).
STEPS_ADDRESS = 7


def load_layout(config, lanes, limits):
    """A run-time write: ``memory`` is one of ``LOAD_*``; a whole word of ``lanes`` values for weights and
    biases, one value for a layer-table field (address ``layer*8 + field``, T at :data:`STEPS_ADDRESS`) or a LUT entry."""
    depth = max(limits.weight_words, limits.state_blocks, config.x_lut_size, config.h_lut_size, 8 * limits.max_layers,
                1 << config.pixel_bits)
    return data.StructLayout({"memory": 3, "address": unsigned(bits(depth)),
                              "word": unsigned(lanes * max(config.weight_width, config.bias_width))})


def load_writes(image):
    """Every ``load`` word that puts ``image`` into a core: ``(memory, address, word)`` tuples."""
    cfg = image.config
    writes = [(LOAD_WEIGHTS, a, w) for a, w in enumerate(pack_lanes(image.weights, cfg.weight_width))]
    writes += [(LOAD_BIASES, a, w) for a, w in enumerate(pack_lanes(image.biases, cfg.bias_width))]
    for k, e in enumerate(image.layers):
        writes += [(LOAD_TABLE, 8 * k + f, getattr(e, name) & ((1 << cfg.acc_shift_width) - 1) if name == "acc_shift" else getattr(e, name))
                   for f, name in enumerate(TABLE_FIELDS)]
    writes.append((LOAD_TABLE, STEPS_ADDRESS, image.n_steps))
    writes += [(LOAD_X_LUT, a, v) for a, v in enumerate(cfg.x_lut)]
    writes += [(LOAD_H_LUT, a, v) for a, v in enumerate(cfg.h_lut)]
    writes += [(LOAD_RATE_TABLE, a, int(v)) for a, v in enumerate(image.rate_table)]
    writes += [(LOAD_LATENCY_TABLE, a, int(v)) for a, v in enumerate(image.latency_table)]
    return writes


def pack_lanes(rows, width):
    """Memory words of per-lane values: lane ``p`` at bits ``p*width``, two's complement."""
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (width * p) for p, v in enumerate(row)) for row in rows]




#: Memory attributes for a memory Yosys should put in distributed RAM (LUTs): the per-lane tables
#: and the shallow per-block memories, which would leave a block RAM mostly empty.
DISTRIBUTED = {"ram_style": "distributed"}
#: Memories at most this deep go to distributed RAM: a block RAM would be mostly empty.
DISTRIBUTED_DEPTH = 64
#: Memory attributes for a block RAM whose reads and writes never meet at one address in one cycle
#: (tables written by the loader between samples, lists written and read in separate phases),
#: read through :func:`registered_read`: Yosys then adds no read/write collision logic.
UNCHECKED = {"no_rw_check": 1}


def registered_read(m, mem, name):
    """A read of ``mem`` whose data is registered, as from a synchronous port (one cycle).

    An asynchronous port and a register, which Yosys (``memory_dff``) merges into the block RAM's
    synchronous port, honouring the memory's ``no_rw_check`` (:data:`UNCHECKED`) as it does: a
    synchronous Amaranth port promises the old data when a write to its address meets it, and
    against a write on the other port of a block RAM Yosys keeps that promise with an address
    comparison into a register and a multiplexer after the block RAM's output (late paths in the
    ULX3S builds: the encoder's pixel list at 079f43d and cfea7ff). Returns ``(port, data)``.
    """
    port = mem.read_port(domain="comb")
    data = Signal(mem.shape, name=f"{name}_data")
    m.d.sync += data.eq(port.data)
    return port, data
