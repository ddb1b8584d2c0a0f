"""The image loader: the image file in, exactly the core writes of :func:`hdl.layouts.load_writes` out."""

import struct
import zlib

import pytest
from amaranth.sim import Simulator

from firmware.image import HEADER_SIZE, DeviceLimits, DeviceRules, pack, to_bytes
from hdl.layouts import (LOAD_BIASES, LOAD_H_LUT, LOAD_LATENCY_TABLE, LOAD_RATE_TABLE, LOAD_TABLE, LOAD_WEIGHTS, LOAD_X_LUT,
                      STEPS_ADDRESS,
                      load_writes)
from hdl.loader import ImageLoader
from tests.helpers import random_network


def load(core, blob):
    dut = ImageLoader(core)
    writes, state = [], {}

    async def monitor(ctx):
        async for _, _, valid, write in ctx.tick().sample(dut.load.valid, dut.load.payload):
            if valid:
                writes.append((write.memory, write.address, write.word))

    async def bench(ctx):
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        ctx.set(dut.load.ready, 1)
        for byte in blob:  # back to back, as fast as the loader takes them
            ctx.set(dut.bytes.payload, byte)
            ctx.set(dut.bytes.valid, 1)
            await ctx.tick().until(dut.bytes.ready)
        ctx.set(dut.bytes.valid, 0)
        await ctx.tick().repeat(3)
        state.update(held=ctx.get(dut.held), error=ctx.get(dut.error), complete=ctx.get(dut.complete),
                     checksum=ctx.get(dut.checksum), crc=ctx.get(dut.crc), n_inputs=ctx.get(dut.n_inputs),
                     n_steps=ctx.get(dut.n_steps))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(monitor)
    sim.add_testbench(bench)
    sim.run()
    return writes, state


@pytest.fixture(scope="module")
def core():
    """The rules of a device built for a 16-8-100 network (the loader needs no core)."""
    baked = random_network([16, 8, 100], seed=40, n_steps=12)
    return DeviceRules.for_image(pack(baked, 4), DeviceLimits(2, 16, 100, 400, 40, 16))


def test_writes_equal_load_writes(core):
    other = random_network([12, 10, 100], seed=41, n_steps=9)
    image = pack(other, 4)
    blob = to_bytes(image)
    writes, state = load(core, blob)
    # The loader writes T first (it is in the header), then in the order of the file: layer
    # table, weights, biases, x LUT, h LUT.
    expected = load_writes(image)
    steps = [(LOAD_TABLE, STEPS_ADDRESS, image.n_steps)]
    in_file_order = [w for memory in (LOAD_TABLE, LOAD_WEIGHTS, LOAD_BIASES, LOAD_X_LUT, LOAD_H_LUT, LOAD_RATE_TABLE,
                                      LOAD_LATENCY_TABLE)
                     for w in expected if w[0] == memory and w not in steps]
    assert sorted(steps + in_file_order) == sorted(expected)
    assert writes == steps + in_file_order
    assert state == {"held": len(blob), "error": 0, "complete": 1, "checksum": struct.unpack("<I", blob[-4:])[0],
                     "crc": zlib.crc32(blob), "n_inputs": 12, "n_steps": 9}


def test_a_wrong_crc_trailer_is_not_complete(core):
    blob = to_bytes(pack(random_network([12, 10, 100], seed=42, n_steps=9), 4))
    _, state = load(core, blob[:-1] + bytes([blob[-1] ^ 0x80]))
    assert state["error"] == 0 and state["complete"] == 0


def _with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("offset, value", [(0, ord("X")),      # magic
                                           (6, 8),             # lanes other than the build's
                                           (12, 17),           # T above the core's limit (16)
                                           (HEADER_SIZE, 0)],  # configuration: its CRC differs from the device's
                         ids=["magic", "lanes", "steps", "configuration"])
def test_header_rules(core, offset, value):
    blob = bytearray(to_bytes(pack(random_network([12, 10, 100], seed=43, n_steps=9), 4))[:-4])
    blob[offset] = value
    writes, state = load(core, _with_crc(bytes(blob)))
    if offset == HEADER_SIZE:
        # Found at the end of the LUTs, where the configuration and LUT sections' CRC is known.
        assert state["error"] == 1 and state["complete"] == 0
    else:
        assert state["error"] == 1 and state["complete"] == 0 and writes == []


def test_a_table_field_beyond_the_limits_stops_the_writes(core):
    image = pack(random_network([12, 10, 100], seed=44, n_steps=9), 4)
    blob = bytearray(to_bytes(image)[:-4])
    json_length = int.from_bytes(blob[14:16], "little")
    n_out = HEADER_SIZE + json_length + 4          # layer 0's n_out field
    blob[n_out:n_out + 4] = struct.pack("<I", 101)  # the core holds at most 100 neurons per layer
    writes, state = load(core, _with_crc(bytes(blob)))
    assert state["error"] == 1 and state["complete"] == 0
    # T and layer 0's n_in went out; nothing from the bad field on.
    assert writes == [(LOAD_TABLE, STEPS_ADDRESS, 9), (LOAD_TABLE, 0, 12)]


def test_a_recurrent_device_loads_a_recurrent_image_and_refuses_a_feed_forward_one():
    """The recurrent flag of each row is the device's; a recurrent layer's span counts its lateral rows."""
    baked = random_network([16, 8, 100], seed=43, n_steps=12, recurrent=[0])
    rules = DeviceRules.for_image(pack(baked, 4), DeviceLimits(2, 16, 100, 600, 40, 16, recurrent=[0]))
    other = pack(random_network([12, 10, 100], seed=44, n_steps=9, recurrent=[0]), 4)
    assert other.layers[1].weight_base == (12 + 10) * other.layers[0].blocks
    writes, state = load(rules, to_bytes(other))
    assert state["complete"] == 1 and state["error"] == 0
    assert sorted(writes) == sorted(load_writes(other))
    _, state = load(rules, to_bytes(pack(random_network([12, 10, 100], seed=44, n_steps=9), 4)))
    assert state["error"] == 1 and state["complete"] == 0


def test_a_latency_table_entry_out_of_range_stops_the_writes(core):
    """A latency step at T (not NEVER): the entry is not written, nor anything after it, and the
    image is refused. (The rate rule, at most 2**draw_bits, cannot be broken by a 16-bit entry
    while draw_bits is 16.)"""
    image = pack(random_network([12, 10, 100], seed=45, n_steps=9), 4)
    blob = bytearray(to_bytes(image)[:-4])
    entry = 3                                     # the fourth entry of the table, the file's last section
    at = len(blob) - 2 * core.pixel_values + 2 * entry
    blob[at:at + 2] = struct.pack("<H", image.n_steps)
    writes, state = load(core, _with_crc(bytes(blob)))
    assert state["error"] == 1 and state["complete"] == 0
    good, _ = load(core, to_bytes(image))
    first_bad = next(k for k, w in enumerate(good) if w[:2] == (LOAD_LATENCY_TABLE, entry))
    assert writes == good[:first_bad]
