"""The image loader: a device image file (:mod:`firmware.image`), byte by byte, to the core's memories.

The loader parses the image as it arrives and writes each weight word, bias word, layer-table
field and LUT entry through the core's ``load`` port, so no image buffer is needed. It checks
the rules of :class:`firmware.image.DeviceRules` (the same ones the emulator applies to a whole
image): the header against the device's own fields and ranges, every table field against its
range and the table against the one :func:`firmware.image.pack` writes, every weight and bias
against its range, the configuration and LUT sections by their CRC-32, the encoder tables' values,
the length, and the
trailing CRC-32. The first violation stops the writes and leaves ``error`` set; the image is then
refused at COMMIT.
"""

from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from firmware.image import HEADER_FIELDS, HEADER_SIZE, DeviceRules
from quant.intencode import NEVER

from .layouts import (LOAD_BIASES, LOAD_H_LUT, LOAD_LATENCY_TABLE, LOAD_RATE_TABLE, LOAD_TABLE, LOAD_WEIGHTS, LOAD_X_LUT,
                   STEPS_ADDRESS, TABLE_FIELDS, load_layout)

__all__ = ["ImageLoader"]


def _field_bytes(name):
    offset, size = HEADER_FIELDS[name]
    return range(offset, offset + size)


class ImageLoader(wiring.Component):
    """Parses a device image into core writes.

    Parameters
    ----------
    rules : firmware.image.DeviceRules
        Those of the device the loader is part of.

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
    checking : Out(1)
        A table field's, weight's, bias's or table entry's checks and write are under way (the cycle
        after its last byte): the bytes taken are not all written yet, as while ``load.valid``.
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

    def __init__(self, rules: DeviceRules):
        self.rules = rules
        limits, cfg = rules.limits, rules.config
        self.header = rules.header_bytes()
        super().__init__({
            "bytes": In(stream.Signature(unsigned(8))),
            "restart": In(1),
            "load": Out(stream.Signature(load_layout(cfg, rules.lanes, limits))),
            "held": Out(32),
            "checking": Out(1),
            "error": Out(1),
            "complete": Out(1),
            "checksum": Out(32),
            "crc": Out(32),
            "n_inputs": Out(range(limits.max_inputs + 1)),
            "n_steps": Out(range(limits.max_steps + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        rules = self.rules
        cfg, P = rules.config, rules.lanes
        n_layers = rules.layers
        m.submodules.crc = crc = catalog.CRC32_ISO_HDLC(data_width=8).create()
        # The configuration and LUT sections, which must equal the device's, are compared by their CRC.
        m.submodules.fixed_crc = fixed_crc = catalog.CRC32_ISO_HDLC(data_width=8).create()

        byte = self.bytes.payload
        take = Signal()
        write = self.load.payload
        # ``pause``: the check states take no byte; a register set on the way into them, so that
        # the state decoding is not on ``take``'s path (``take`` reaches most of the loader, and
        # the device's dispatcher routes ``ready``: the device's critical path, 12.6 ns, with
        # nextpnr's static placer at 8ede911).
        pause = Signal()
        m.d.comb += [self.bytes.ready.eq(~pause & (~self.load.valid | self.load.ready)),
                     take.eq(self.bytes.valid & self.bytes.ready),
                     crc.data.eq(byte), crc.valid.eq(take), self.crc.eq(crc.crc), fixed_crc.data.eq(byte)]
        with m.If(self.load.ready):
            m.d.sync += self.load.valid.eq(0)
        with m.If(take):
            m.d.sync += self.held.eq(self.held + 1)

        position = Signal(16)      # byte within the current section (header, configuration, trailer)
        value = Signal(32)         # little-endian field being assembled
        low = Signal(8)
        high_byte = Signal()       # the next byte is the high byte of a 16-bit value
        row, field, field_byte = Signal(range(n_layers + 1)), Signal(3), Signal(2)
        field_value = Signal(32)   # a table field's value, checked the cycle after its last byte
        lane_value = Signal(signed(16))  # a weight's, bias's or table entry's value, likewise
        counter = Signal(32)       # words or entries written in the current section
        # The sections' last word numbers, registers set from the header (``count - 1`` worked out
        # beside the counter's comparison put an adder before it: the counter was late, -0.5 ns at
        # 140f86a, router1); 33 bits, as ``count - 1`` is.
        last_weight, last_block = Signal(33), Signal(33)
        lane = Signal(range(P + 1))
        header = {name: Signal(8 * HEADER_FIELDS[name][1], name=f"header_{name}")
                  for name in ("steps", "weight_words", "state_blocks")}
        weight_word = Signal(P * cfg.weight_width)
        bias_word = Signal(P * cfg.bias_width)
        done = Signal()
        header_bad = Signal()      # a header field out of its range, from CHECK_HEADER

        # The layer table, as it arrives: this row's fields and the running sums of the rows before.
        n_in, n_out, blocks = Signal(32), Signal(32), Signal(32)
        fan_in = Signal(33)        # n_in, plus n_out for a recurrent layer: its weight rows
        prev_n_out = Signal(32)
        span = Signal(64)          # fan_in * blocks: this row's weight words
        recurrent_rows = Array(Const(rules.table_ranges(k)["recurrent"][0], 1) for k in range(n_layers + 1))
        weight_sum, block_sum = Signal(64), Signal(32)

        bad = Signal()  # a rule broken by the value written this cycle: no write for it either

        def emit(memory, address, word):
            # The write's fields are taken whatever the checks say, only its ``valid`` waits on them:
            # ``bad`` (a 32-bit comparison's carry chain) enabling some hundred flip-flops was the
            # loader's critical path (77.2 MHz alone, router1, ``python -m hdl.unit_timing loader``;
            # 102.0 without).
            m.d.sync += [write.memory.eq(memory), write.address.eq(address), write.word.eq(word)]
            with m.If(~self.error & ~bad):
                m.d.sync += self.load.valid.eq(1)

        def fail(withhold=True):
            # ``withhold``: the cycle's write (if any) is withheld; a state that writes nothing says
            # False, so that its checks stay out of the write's ``valid``.
            if withhold:
                m.d.comb += bad.eq(1)
            m.d.sync += self.error.eq(1)

        def outside(number, bounds):
            lo, hi = bounds
            return (number < lo) | (number > hi)

        int16 = Cat(low, byte).as_signed()

        expected = Array(Const(b, 8) for b in self.header + b"\0")
        variable_bytes = [k for name in header for k in _field_bytes(name)]
        variable = Const(sum(1 << k for k in variable_bytes), len(self.header) + 1)
        # Header byte ``position``'s expected value and whether it is a field (any value).
        want, free = Signal(8, init=self.header[0]), Signal(init=0 in variable_bytes)
        json_length = len(rules.config_json())

        with m.FSM(name="loader"):
            with m.State("HEADER"):
                with m.If(take):
                    # The next byte's expected value and whether it is a field, registers looked up
                    # a byte ahead (the lookup by ``position`` then the comparison into ``error``
                    # was the ULX3S build's critical path at 7046e39, 10.6 ns).
                    m.d.sync += [position.eq(position + 1), want.eq(expected[position + 1]),
                                 free.eq(variable.bit_select(position + 1, 1))]
                    with m.If(~free & (byte != want)):
                        fail(withhold=False)
                    for name, target in header.items():
                        for index, k in enumerate(_field_bytes(name)):
                            with m.If(position == k):
                                m.d.sync += target.word_select(index, 8).eq(byte)
                    with m.If(position == HEADER_SIZE - 1):
                        m.d.sync += [position.eq(0), pause.eq(1)]
                        m.next = "CHECK_HEADER"
            with m.State("CHECK_HEADER"):
                # Two cycles without a byte (none may be lost in them): the fields' range checks
                # into a register, then the failure and the write from it (the comparisons' carry
                # chains straight into ``error`` were late at 2388912, seeds 1 and 4).
                m.d.sync += header_bad.eq(
                    Cat(outside(header[name], bounds) for name, bounds in rules.header_ranges().items()).any())
                m.next = "HEADER_CHECKED"
            with m.State("HEADER_CHECKED"):
                m.d.sync += pause.eq(0)
                with m.If(header_bad):
                    fail()
                # Emitted whatever the checks say (``fail`` withholds its valid; an image that failed
                # is never committed, so its T is never used).
                emit(LOAD_TABLE, STEPS_ADDRESS, header["steps"])
                m.d.sync += [self.n_steps.eq(header["steps"]), last_weight.eq(header["weight_words"] - 1),
                             last_block.eq(header["state_blocks"] - 1)]
                m.d.comb += fixed_crc.start.eq(1)
                m.next = "CONFIGURATION"
            with m.State("CONFIGURATION"):
                # Nothing to write: checked by the digest in the header and by the fixed-section CRC.
                m.d.comb += fixed_crc.valid.eq(take)
                with m.If(take):
                    m.d.sync += position.eq(position + 1)
                    with m.If(position == json_length - 1):
                        m.d.sync += [row.eq(0), field.eq(0), field_byte.eq(0), weight_sum.eq(0), block_sum.eq(0)]
                        m.next = "TABLE"
            with m.State("TABLE"):
                # A field's checks, its write and the row's bookkeeping run the cycle after its last
                # byte, from the registered value (``checking``): made as the byte arrived, the
                # field's 32-bit comparisons into ``error`` and the write's ``valid`` were late
                # (-0.6 ns at 140f86a, router1). Fields are four bytes apart; after the last row's
                # last byte the loader pauses until the table's own checks.
                with m.If(take):
                    full = Cat(value[8:], byte)
                    m.d.sync += [value.eq(full), field_byte.eq(field_byte + 1)]
                    with m.If(field_byte == 3):
                        m.d.sync += [field_value.eq(full), self.checking.eq(1)]
                        with m.If((field == len(TABLE_FIELDS) - 1) & (row == n_layers - 1)):
                            m.d.sync += pause.eq(1)
                with m.If(self.checking):
                    full = field_value
                    m.d.sync += [self.checking.eq(0), field.eq(field + 1)]
                    for f, name in enumerate(TABLE_FIELDS):
                        first_row, later_rows = rules.table_ranges(0)[name], rules.table_ranges(1)[name]
                        number = full.as_signed() if first_row[0] < 0 else full
                        with m.If(field == f):
                            if name == "recurrent":
                                # Each row's own: the layers the core is built recurrent.
                                with m.If(full != recurrent_rows[row]):
                                    fail()
                            else:
                                with m.If(outside(number, first_row) if first_row == later_rows else
                                          Mux(row == 0, outside(number, first_row), outside(number, later_rows))):
                                    fail()
                            self._table_rules(m, name, full, row, n_in, n_out, fan_in, blocks, prev_n_out, span,
                                              weight_sum, block_sum, fail)
                            emit(LOAD_TABLE, row * 8 + f,
                                 full[:cfg.acc_shift_width] if name == "acc_shift" else full)
                            if name == "n_in":
                                with m.If(row == 0):
                                    m.d.sync += self.n_inputs.eq(full)
                    with m.If(field == len(TABLE_FIELDS) - 1):
                        m.d.sync += [field.eq(0), row.eq(row + 1), counter.eq(0), lane.eq(0), high_byte.eq(0),
                                     weight_sum.eq(weight_sum + span), block_sum.eq(block_sum + blocks),
                                     prev_n_out.eq(n_out)]
                        with m.If(row == n_layers - 1):
                            m.next = "CHECK_TABLE"
            with m.State("CHECK_TABLE"):
                m.d.sync += pause.eq(0)
                with m.If((prev_n_out != rules.output_neurons) | (weight_sum != header["weight_words"])
                          | (block_sum != header["state_blocks"])):
                    fail(withhold=False)
                m.next = "WEIGHTS"
            # Weight and bias words: P signed 16-bit lanes each, packed to the memory's lane width.
            for name, memory, width, bounds, word, last, after in (
                    ("WEIGHTS", LOAD_WEIGHTS, cfg.weight_width, rules.weight_range, weight_word, last_weight, "BIASES"),
                    ("BIASES", LOAD_BIASES, cfg.bias_width, rules.bias_range, bias_word, last_block, "X_LUT")):
                with m.State(name):
                    # As a table field: a lane's value checked and packed the cycle after its high
                    # byte, from a register (the check on the arriving byte, into the write's
                    # ``valid``, was the ULX3S build's critical path at 7046e39 with seed 2,
                    # 11.2 ns); the loader pauses after the section's last byte.
                    with m.If(take):
                        m.d.sync += [low.eq(byte), high_byte.eq(~high_byte)]
                        with m.If(high_byte):
                            m.d.sync += [lane_value.eq(int16), self.checking.eq(1)]
                            with m.If((lane == P - 1) & (counter == last)):
                                m.d.sync += pause.eq(1)
                    with m.If(self.checking):
                        m.d.sync += self.checking.eq(0)
                        with m.If(outside(lane_value, bounds)):
                            fail()
                        shifted = Cat(word[width:], lane_value[:width])
                        m.d.sync += [word.eq(shifted), lane.eq(lane + 1)]
                        with m.If(lane == P - 1):
                            emit(memory, counter, shifted)
                            m.d.sync += [lane.eq(0), counter.eq(counter + 1)]
                            with m.If(counter == last):
                                m.d.sync += [counter.eq(0), pause.eq(0)]
                                m.next = after
            # The lookup and encoder tables: 16-bit entries, each checked (where a rule bounds it:
            # rate thresholds of at most 2**draw_bits, latency steps below T or NEVER) and written
            # the cycle after its high byte, from a register, as a weight: the rule's comparison on
            # the arriving byte into the write's ``valid`` was the ULX3S build's critical path at
            # b369720 (11.4 ns).
            for name, memory, size, bad_value, after in (
                    ("X_LUT", LOAD_X_LUT, cfg.x_lut_size, None, "H_LUT"),
                    ("H_LUT", LOAD_H_LUT, cfg.h_lut_size, None, "RATE_TABLE"),
                    ("RATE_TABLE", LOAD_RATE_TABLE, rules.pixel_values,
                     lambda v: v > (1 << cfg.draw_bits), "LATENCY_TABLE"),
                    ("LATENCY_TABLE", LOAD_LATENCY_TABLE, rules.pixel_values,
                     lambda v: (v >= header["steps"]) & (v != NEVER), "TRAILER")):
                with m.State(name):
                    if bad_value is None:        # the lookup tables are covered by the fixed sections' CRC
                        m.d.comb += fixed_crc.valid.eq(take)
                    entry = lane_value.as_unsigned()
                    with m.If(take):
                        m.d.sync += [low.eq(byte), high_byte.eq(~high_byte)]
                        with m.If(high_byte):
                            m.d.sync += [lane_value.eq(int16), self.checking.eq(1)]
                            with m.If(counter == size - 1):
                                m.d.sync += pause.eq(1)
                    with m.If(self.checking):
                        m.d.sync += [self.checking.eq(0), counter.eq(counter + 1)]
                        if bad_value is not None:
                            with m.If(bad_value(entry)):
                                fail()
                        emit(memory, counter, entry)
                        with m.If(counter == size - 1):
                            m.d.sync += [counter.eq(0), position.eq(0), pause.eq(0)]
                            m.next = after
            with m.State("TRAILER"):
                with m.If(take):
                    m.d.sync += [self.checksum.eq(Cat(self.checksum[8:], byte)), position.eq(position + 1)]
                    with m.If(position == 0):
                        with m.If(fixed_crc.crc != rules.fixed_sections_crc):
                            fail(withhold=False)
                    with m.If(position == 3):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += done.eq(1)
                with m.If(take):
                    fail(withhold=False)  # longer than its header says

        # Registered: the CRC's residue test then the dispatcher's COMMIT decision was a late path
        # (into T, at 46eda59); a COMMIT comes a frame after the image's last byte.
        m.d.sync += self.complete.eq(done & ~self.error & crc.match_detected)
        # ``restart`` returns every register (CRC, counts, FSM, ``error``) to its reset value.
        return ResetInserter(self.restart)(m)

    def _table_rules(self, m, name, full, row, n_in, n_out, fan_in, blocks, prev_n_out, span, weight_sum, block_sum,
                     fail):
        """Rule 3 of :class:`~firmware.image.DeviceRules` for one completed field: the table ``pack`` writes."""
        P = self.rules.lanes
        if name == "n_in":
            m.d.sync += n_in.eq(full)
            with m.If((row != 0) & (full != prev_n_out)):
                fail()
        elif name == "n_out":
            m.d.sync += n_out.eq(full)
        elif name == "recurrent":
            m.d.sync += fan_in.eq(n_in + Mux(full[0], n_out, 0))
        elif name == "blocks":
            # blocks = ceil(n_out / P), as two comparisons with constant multiples.
            m.d.sync += [blocks.eq(full), span.eq(fan_in[:17] * full[:16])]
            with m.If((full * P < n_out) | (full * P >= n_out + P)):
                fail()
        elif name == "weight_base":
            with m.If(full != weight_sum):
                fail()
        elif name == "block_base":
            with m.If(full != block_sum):
                fail()
