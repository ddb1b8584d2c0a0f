"""The step-record decoder against the protocol module's encoder and decoder."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from firmware.protocol import decode_steps, encode_steps
from hdl.steps import DECODE_BAD_RECORD, DECODE_OK, DECODE_TOO_MANY_STEPS, StepDecoder
from quant.fixedpoint import DEFAULT

ONE = DEFAULT.one


def decode(payload, n_inputs, max_inputs=64, n_steps=1000):
    """Feed ``payload`` to the decoder; returns (steps as event lists, error).

    Every event issued, in a completed step or not, must name one of the ``n_inputs`` inputs.
    """
    dut = StepDecoder(DEFAULT, max_inputs)
    steps, state = [[]], {}

    async def feed(ctx):
        ctx.set(dut.n_inputs, n_inputs)
        for byte in payload:
            ctx.set(dut.bytes.payload, byte)
            ctx.set(dut.bytes.valid, 1)
            while True:        # until the byte is taken, or the record failed before it
                _, _, ready, error = await ctx.tick().sample(dut.bytes.ready, dut.error)
                if error:
                    return
                if ready:
                    break
        ctx.set(dut.bytes.valid, 0)
        ctx.set(dut.exhausted, 1)

    async def collect(ctx):
        ctx.set(dut.events.ready, 1)
        idle = 0
        async for _, _, valid, event, ready_idle, error in ctx.tick().sample(
                dut.events.valid, dut.events.payload, dut.idle, dut.error):
            if valid:
                if event.end:
                    steps.append([])
                else:
                    assert event.index < n_inputs, f"event for input {event.index} of {n_inputs} issued"
                    steps[-1].append((event.index, event.amplitude))
            ctx.set(dut.full, len(steps) - 1 >= n_steps)
            idle = idle + 1 if (ready_idle or error) else 0
            if idle > len(payload) + 20:
                state["error"] = error
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(feed)
    sim.add_testbench(collect)
    sim.run()
    return steps[:-1], state["error"]


@pytest.mark.parametrize("density", [0.0, 0.05, 0.6])
def test_decodes_what_the_host_encodes(density):
    """Every record kind: sparse steps become gap lists, dense ones bitmaps, graded ones graded lists."""
    rng = np.random.default_rng(int(density * 100))
    spikes = rng.random((70, 40)) < density
    spikes[3:5] = True                                       # some steps as bitmaps
    graded = np.where(rng.random((6, 40)) < 0.3, rng.integers(1, ONE + 1, (6, 40)), 0)
    amplitudes = np.concatenate([spikes.astype(np.int64) * ONE, graded])
    payload = b"".join(encode_steps(amplitudes, ONE))
    steps, error = decode(payload, 40)
    assert error == DECODE_OK
    assert steps == decode_steps(payload, 40, ONE)
    assert len(steps) == len(amplitudes)


@pytest.mark.parametrize("payload, error", [
    (b"\x40\x02\x00\x05\x00\x03\x00", DECODE_BAD_RECORD),    # indices not ascending
    (b"\x40\x01\x00\x28\x00", DECODE_BAD_RECORD),            # index 40 of 40 inputs
    (b"\x42\x01\x00\x02\x00" + (ONE + 1).to_bytes(2, "little"), DECODE_BAD_RECORD),  # amplitude > 1
    (b"\x42\x01\x00\x02\x00\x00\x00", DECODE_BAD_RECORD),    # amplitude 0
    (b"\x42\x01\x00\x28\x00" + ONE.to_bytes(2, "little"), DECODE_BAD_RECORD),  # graded: index 40 of 40
    (b"\x42\x02\x00\x05\x00\x80\x00\x03\x00\x80\x00", DECODE_BAD_RECORD),  # graded, not ascending
    (b"\x42\x01\x00\x28\x00", DECODE_BAD_RECORD),            # graded: index 40 of 40, truncated
    (b"\x40\x03\x00\x01\x00", DECODE_BAD_RECORD),            # truncated
    (b"\x41" + b"\x00" * 4 + b"\x80", DECODE_OK),           # bitmap sets input 39: the last one
    (b"\x41\x00\x00\x00\x00", DECODE_BAD_RECORD),         # bitmap one byte short
    (b"\x41\x00", DECODE_BAD_RECORD),                        # truncated bitmap
    (b"\x77", DECODE_BAD_RECORD),                            # reserved record head
    (b"\x82\x00\x05\x20", DECODE_OK),                        # gap list: inputs 0, 6, 39
    (b"\x82\x00\x05\x21", DECODE_BAD_RECORD),                # gap list: inputs 0, 6, 40 of 40
    (b"\x80\x80\x27", DECODE_OK),                            # a two-byte gap: input 39
    (b"\x80\xff\xff", DECODE_BAD_RECORD),                    # the longest gap: past the inputs, no wrap
    (b"\x80\x27", DECODE_OK),                                # a record's first gap: input 39
    (b"\x80\x28", DECODE_BAD_RECORD),                        # a record's first gap: input 40 of 40
    (b"\x81\x80\x26\x00", DECODE_OK),                        # a two-byte gap then a short one: 38, 39
    (b"\x81\x80\x26\x01", DECODE_BAD_RECORD),                # 38, then 40 of 40
    (b"\x80\x27\x80\x00", DECODE_OK),                        # a second record starts from input 0
    (b"\x81\x03", DECODE_BAD_RECORD),                         # gap list one gap short
    (b"\x80\x80", DECODE_BAD_RECORD),                         # truncated two-byte gap
    (b"\x05\x05", DECODE_TOO_MANY_STEPS),                    # 12 steps > 10
])
def test_rejects_what_the_protocol_rejects(payload, error):
    assert decode(payload, 40, n_steps=10)[1] == error


def test_rejects_a_bitmap_bit_past_the_inputs():
    # 36 inputs: 5 bitmap bytes, of which bits 4..7 of the last are padding.
    assert decode(b"\x41" + b"\x00" * 4 + b"\x08", 36)[1] == DECODE_OK
    assert decode(b"\x41" + b"\x00" * 4 + b"\x10", 36)[1] == DECODE_BAD_RECORD


def test_decodes_empty_lists():
    """A list of no events is a silent step, for each list kind, and the next record follows it."""
    payload = b"\x40\x00\x00\x42\x00\x00\x40\x01\x00\x03\x00"
    steps, error = decode(payload, 40)
    assert error == DECODE_OK
    assert steps == decode_steps(payload, 40, ONE) == [[], [], [(3, ONE)]]
