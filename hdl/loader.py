"""The image loader: a device image file (:mod:`firmware.image`), byte by byte, to the core's memories.

The loader parses the image as it arrives and writes each weight word, bias word, layer-table
field and LUT entry through the core's ``load`` port, so no image buffer is needed. It checks
what the device can check alone: the header against its own build (magic, version, lanes,
layers, classes, configuration digest), every table field against the core's limits, every
weight, bias and LUT entry against its format, the length, and the trailing CRC-32. The first
violation stops the writes and leaves ``error`` set; the image is then refused at COMMIT.
"""

from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from firmware.image import HEADER_SIZE, to_bytes

from .core import (LOAD_BIASES, LOAD_H_LUT, LOAD_TABLE, LOAD_WEIGHTS, LOAD_X_LUT, TABLE_FIELDS, STEPS_ADDRESS,
                   load_layout)

__all__ = ["ImageLoader"]

# Header bytes the loader takes from the image rather than requiring them to equal its own.
_T, _WORDS, _BLOCKS = range(12, 14), range(48, 52), range(52, 56)


class ImageLoader(wiring.Component):
    """Parses a device image into core writes.

    Parameters
    ----------
    core : hdl.core.SRCCore
        The core the image is for (its baked image gives the expected header, its limits the
        checks).

    Members
    -------
    bytes : In(stream.Signature(8))
        Image bytes, in order.
    restart : In(1)
        A new image begins (offset 0).
    load : Out(stream.Signature(load_layout))
        Writes for the core.
    held : Out(32)
        Bytes taken since ``restart``.
    error : Out(1)
        The image broke a rule; sticky until ``restart``.
    complete : Out(1)
        The whole image, trailer included, has arrived, without error, and its CRC-32 matches.
    checksum : Out(32)
        The image's trailing CRC-32 (valid with ``complete``).
    crc : Out(32)
        CRC-32 of every byte taken, trailer included (what COMMIT names).
    n_inputs, n_steps : Out
        Inputs of layer 0 and ``T`` of the image being loaded.
    """

    def __init__(self, core):
        self.core = core
        image, limits, cfg = core.image, core.limits, core.config
        self.header = to_bytes(image)[:HEADER_SIZE]
        self.json_length = int.from_bytes(self.header[14:16], "little")
        super().__init__({
            "bytes": In(stream.Signature(unsigned(8))),
            "restart": In(1),
            "load": Out(stream.Signature(load_layout(cfg, core.lanes, limits))),
            "held": Out(32),
            "error": Out(1),
            "complete": Out(1),
            "checksum": Out(32),
            "crc": Out(32),
            "n_inputs": Out(range(limits.max_inputs + 1)),
            "n_steps": Out(range(limits.max_steps + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        core, cfg, limits, P = self.core, self.core.config, self.core.limits, self.core.lanes
        n_layers = len(core.image.layers)
        m.submodules.crc = crc = catalog.CRC32_ISO_HDLC(data_width=8).create()

        byte = self.bytes.payload
        take = Signal()
        write = self.load.payload
        m.d.comb += [self.bytes.ready.eq(~self.load.valid | self.load.ready),
                     take.eq(self.bytes.valid & self.bytes.ready),
                     crc.data.eq(byte), crc.valid.eq(take), self.crc.eq(crc.crc)]
        with m.If(self.load.ready):
            m.d.sync += self.load.valid.eq(0)
        with m.If(take):
            m.d.sync += self.held.eq(self.held + 1)

        position = Signal(16)      # byte within the current section (header, configuration)
        value = Signal(32)         # little-endian field being assembled
        low = Signal(8)
        high_byte = Signal()       # the next byte is the high byte of a 16-bit value
        row, field, field_byte = Signal(range(n_layers + 1)), Signal(3), Signal(2)
        counter = Signal(32)       # words or entries written in the current section
        lane = Signal(range(P + 1))
        words, blocks = Signal(32), Signal(32)
        weight_word = Signal(P * cfg.weight_width)
        bias_word = Signal(P * cfg.bias_width)
        steps = Signal(16)
        done = Signal()

        bad = Signal()  # a rule broken by this cycle's byte: no write for it either

        def emit(memory, address, word):
            with m.If(~self.error & ~bad):
                m.d.sync += [self.load.valid.eq(1), write.memory.eq(memory), write.address.eq(address),
                             write.word.eq(word)]

        def fail():
            m.d.comb += bad.eq(1)
            m.d.sync += self.error.eq(1)

        int16 = Cat(low, byte).as_signed()
        uint16 = Cat(low, byte)

        expected = Array(Const(b, 8) for b in self.header)
        variable = Const(sum(1 << k for k in (*_T, *_WORDS, *_BLOCKS)), len(self.header))

        # Limits of each layer-table field: (smallest, largest), both inclusive.
        max_blocks = -(-limits.max_neurons // P)
        field_limits = {"n_in": (1, limits.max_neurons), "n_out": (1, limits.max_neurons), "blocks": (1, max_blocks),
                        "weight_base": (0, limits.weight_words - 1), "block_base": (0, limits.state_blocks - 1),
                        "acc_shift": (core.min_shift, core.max_shift)}

        with m.FSM(name="loader"):
            with m.State("HEADER"):
                with m.If(take):
                    m.d.sync += position.eq(position + 1)
                    with m.If(~variable.bit_select(position, 1) & (byte != expected[position])):
                        fail()
                    for k in _T:
                        with m.If(position == k):
                            m.d.sync += steps.word_select(k - _T.start, 8).eq(byte)
                    for k in _WORDS:
                        with m.If(position == k):
                            m.d.sync += words.word_select(k - _WORDS.start, 8).eq(byte)
                    for k in _BLOCKS:
                        with m.If(position == k):
                            m.d.sync += blocks.word_select(k - _BLOCKS.start, 8).eq(byte)
                    with m.If(position == len(self.header) - 1):
                        m.d.sync += position.eq(0)
                        m.next = "CHECK_HEADER"
            with m.State("CHECK_HEADER"):
                m.d.comb += self.bytes.ready.eq(0)  # a cycle without a byte: none may be lost in it
                with m.If((steps == 0) | (steps > limits.max_steps) | (words == 0) | (words > limits.weight_words)
                          | (blocks == 0) | (blocks > limits.state_blocks)):
                    fail()
                with m.Else():
                    emit(LOAD_TABLE, STEPS_ADDRESS, steps)
                    m.d.sync += self.n_steps.eq(steps)
                m.next = "CONFIGURATION"
            with m.State("CONFIGURATION"):
                # Covered by the digest (checked in the header) and the CRC; nothing to write.
                with m.If(take):
                    m.d.sync += position.eq(position + 1)
                    with m.If(position == self.json_length - 1):
                        m.d.sync += [row.eq(0), field.eq(0), field_byte.eq(0)]
                        m.next = "TABLE"
            with m.State("TABLE"):
                with m.If(take):
                    full = Cat(value[8:], byte)
                    m.d.sync += [value.eq(full), field_byte.eq(field_byte + 1)]
                    with m.If(field_byte == 3):
                        m.d.sync += field.eq(field + 1)
                        for f, name in enumerate(TABLE_FIELDS):
                            lo, hi = field_limits[name]
                            if name == "n_in":
                                hi = Mux(row == 0, limits.max_inputs, limits.max_neurons)
                            number = full.as_signed() if lo < 0 else full
                            with m.If(field == f):
                                with m.If((number < lo) | (number > hi)):
                                    fail()
                                emit(LOAD_TABLE, row * 8 + f, full[:6] if name == "acc_shift" else full)
                                if name == "n_in":
                                    with m.If(row == 0):
                                        m.d.sync += self.n_inputs.eq(full)
                        with m.If(field == len(TABLE_FIELDS) - 1):
                            m.d.sync += [field.eq(0), row.eq(row + 1), counter.eq(0), lane.eq(0),
                                         high_byte.eq(0)]
                            with m.If(row == n_layers - 1):
                                m.next = "WEIGHTS"
            # Weight and bias words: P signed 16-bit lanes each, packed to the memory's lane width.
            for name, memory, width, lo, hi, word, count, after in (
                    ("WEIGHTS", LOAD_WEIGHTS, cfg.weight_width, -cfg.weight_max, cfg.weight_max, weight_word, words,
                     "BIASES"),
                    ("BIASES", LOAD_BIASES, cfg.bias_width, cfg.bias_min, cfg.bias_max, bias_word, blocks, "X_LUT")):
                with m.State(name):
                    with m.If(take):
                        m.d.sync += [low.eq(byte), high_byte.eq(~high_byte)]
                        with m.If(high_byte):
                            with m.If((int16 < lo) | (int16 > hi)):
                                fail()
                            shifted = Cat(word[width:], int16[:width])
                            m.d.sync += [word.eq(shifted), lane.eq(lane + 1)]
                            with m.If(lane == P - 1):
                                emit(memory, counter, shifted)
                                m.d.sync += [lane.eq(0), counter.eq(counter + 1)]
                                with m.If(counter == count - 1):
                                    m.d.sync += counter.eq(0)
                                    m.next = after
            for name, memory, size, width, after in (
                    ("X_LUT", LOAD_X_LUT, cfg.x_lut_size, cfg.x_width - 1, "H_LUT"),
                    ("H_LUT", LOAD_H_LUT, cfg.h_lut_size, cfg.h_width - 1, "TRAILER")):
                with m.State(name):
                    with m.If(take):
                        m.d.sync += [low.eq(byte), high_byte.eq(~high_byte)]
                        with m.If(high_byte):
                            with m.If(uint16 >= 1 << width):
                                fail()
                            emit(memory, counter, uint16)
                            m.d.sync += counter.eq(counter + 1)
                            with m.If(counter == size - 1):
                                m.d.sync += [counter.eq(0), position.eq(0)]
                                m.next = after
            with m.State("TRAILER"):
                with m.If(take):
                    m.d.sync += [self.checksum.eq(Cat(self.checksum[8:], byte)), position.eq(position + 1)]
                    with m.If(position == 3):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += done.eq(1)
                with m.If(take):
                    fail()  # longer than its header says

        m.d.comb += self.complete.eq(done & ~self.error & crc.match_detected)
        # ``restart`` returns every register (CRC, counts, FSM, ``error``) to its reset value.
        return ResetInserter(self.restart)(m)
