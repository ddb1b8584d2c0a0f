"""Amaranth-simulator tests of :class:`hdl.device.SRCDevice`: the link protocol in gateware.

The reference is the emulator's :class:`sim.emulator.DeviceModel` over the golden model: for the
same bytes in, the device must send the same reply frames, byte for byte.
"""

import re
import struct
import zlib

import numpy as np
import pytest

from firmware import image as fw_image
from firmware.protocol import (ErrorCode, FrameDecoder, Identity, Result, Type, encode_frame,
                               encode_steps, split_records)
from firmware.image import DeviceLimits
from hdl.device import SRCDevice
from quant import golden
from sim.emulator import DeviceModel
from tests.hdl.device_bench import exchange
from tests.helpers import random_network
from tests.image_corpus import sections

LANES, TIMEOUT = 4, 300


LIMITS = DeviceLimits(2, 24, 100, 800, 60, 32)


def emulate(script, baked, lanes=LANES, limits=LIMITS):
    """The reference: the emulator's replies to the same script (idle gaps of ``TIMEOUT`` or more time out)."""
    device, decoder, replies = DeviceModel(fw_image.pack(baked, lanes), limits), FrameDecoder(), []
    for item in script:
        events = decoder.timeout() if isinstance(item, int) and item >= TIMEOUT else (
            [] if isinstance(item, int) else decoder.feed(item))
        for event in events:
            replies += [e for reply in device.handle(event) for e in FrameDecoder().feed(reply)]
    return replies


def load_frames(network, lanes=LANES, chunk=700):
    blob = fw_image.to_bytes(fw_image.pack(network, lanes))
    frames = [encode_frame(Type.LOAD, struct.pack("<I", k) + blob[k:k + chunk]) for k in range(0, len(blob), chunk)]
    return frames + [encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)))]


def sample_frames(spikes, one, limit=40):
    return [encode_frame(Type.STEPS, p) for p in split_records(encode_steps(spikes, one), limit=limit)]


@pytest.fixture(scope="module")
def networks():
    baked = random_network([24, 12, 100], seed=21, n_steps=20)
    other = random_network([20, 16, 100], seed=22, n_steps=16)
    return baked, other


def make_device(baked):
    return SRCDevice(fw_image.pack(baked, LANES), limits=LIMITS, timeout=TIMEOUT)


def test_session_replies_equal_the_emulator(networks):
    """Load another network, run samples split over many frames, and every kind of request error."""
    baked, other = networks
    one = other.config.one
    rng = np.random.default_rng(5)
    samples = [rng.random((16, 20)) < p for p in (0.3, 0.05)]
    samples.append(np.zeros((16, 20), bool))
    graded = (rng.random((16, 20)) < 0.3) * rng.integers(1, one + 1, (16, 20))
    script = load_frames(other) + [encode_frame(Type.VERIFY)]
    for spikes in samples:
        script += sample_frames(spikes, one)
    script += sample_frames(graded, one)
    script += [
        encode_frame(Type.STEPS, b"\x00\x00"),                                  # not the first frame of a sample
        sample_frames(samples[0], one)[0], encode_frame(Type.ABORT),            # abandoned sample
        encode_frame(Type.STEPS, b"\x01\x40\x02\x00\x05\x00\x03\x00"),          # indices not ascending
        encode_frame(Type.STEPS, b"\x01\x40\x01\x00\x14\x00"),                  # index past the inputs
        encode_frame(Type.STEPS, b"\x01\x42\x01\x00\x02\x00" + struct.pack("<H", one + 1)),  # amplitude > 1
        encode_frame(Type.STEPS, b"\x01\x40\x03\x00\x01\x00"),                  # truncated list
        encode_frame(Type.STEPS, b"\x01\x3f\x3f"),                               # 128 steps > T
        encode_frame(Type.STEPS, b"\x01\x77"),                                   # unknown record
        encode_frame(0x42), encode_frame(Type.COMMIT, b"\x00"), encode_frame(Type.LOAD, b"\x01"),
        encode_frame(Type.LOAD, struct.pack("<I", 99) + b"\x00"),               # offset out of sequence
        encode_frame(Type.ABORT),
    ]
    script += sample_frames(samples[1], one)
    expected = emulate(script, baked)
    replies = exchange(make_device(baked), script, len(expected))
    assert replies == expected
    results = [Result.from_bytes(r.payload) for r in replies if r.type == Type.RESULT]
    assert len(results) == 5
    for spikes, result in zip(samples + [graded], results):
        amplitudes = spikes.astype(np.int64) * (one if spikes.dtype == bool else 1)
        reference = golden.run(other, amplitudes[:, None, :])
        assert list(result.scores) == reference.scores[0].tolist()
        assert result.prediction == reference.prediction[0]
    assert sum(sum(r.spike_counts) for r in results) > 0, "the case never makes the network spike"


@pytest.mark.parametrize("request_type", [Type.STEPS, Type.IMAGE])
def test_the_cycle_count_leaves_out_every_wait_for_the_link(networks, request_type):
    """RESULT counts the core's cycles, not the link's: the same samples (spikes in STEPS, or
    images the device encodes) with idle cycles (1 to 199, under the frame timeout) after half of
    their bytes, drawn at random, give the emulator's counts (the exact cycle model, for
    back-to-back input) and its replies byte for byte."""
    from firmware.protocol import encode_image

    baked, other = networks
    rng = np.random.default_rng(100)
    if request_type == Type.STEPS:
        frames = [f for p in (0.3, 0.05) for f in sample_frames(rng.random((16, 20)) < p, other.config.one)]
    else:
        images = [(rng.random(20) < 0.4) * rng.integers(1, 256, 20) for _ in range(2)]
        frames = [encode_frame(Type.IMAGE, encode_image(px, encoding, 7, other.config.pixel_bits))
                  for px, encoding in zip(images, ("rate", "latency"))]
    script = load_frames(other)
    for byte in b"".join(frames):
        script.append(bytes([byte]))
        if rng.random() < 0.5:
            script.append(int(rng.integers(1, TIMEOUT - 100)))
    expected = emulate(load_frames(other) + frames, baked)
    replies = exchange(make_device(baked), script, len(expected))
    assert replies == expected
    assert sum(r.type == Type.RESULT for r in replies) == 2


def test_starts_with_the_baked_network_and_runs_it(networks):
    baked, _ = networks
    spikes = np.random.default_rng(1).random((20, 24)) < 0.3
    identify = exchange(make_device(baked), [encode_frame(Type.IDENTIFY)] + sample_frames(spikes, baked.config.one), 2)
    identity = Identity.from_bytes(identify[0].payload)
    blob = fw_image.to_bytes(fw_image.pack(baked, LANES))
    assert identity.loaded and identity.checksum == fw_image.checksum(blob) and identity.lanes == LANES
    assert identity.config_digest == baked.config.digest()
    result = Result.from_bytes(identify[1].payload)
    reference = golden.run(baked, spikes.astype(np.int64)[:, None, :] * baked.config.one)
    assert list(result.scores) == reference.scores[0].tolist()


def corrupt(blob, position, value):
    """``blob`` with bytes at ``position`` replaced and its CRC-32 trailer made right again."""
    body = bytearray(blob[:-4])
    body[position:position + len(value)] = value
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def commit_script(blob, chunk=900):
    frames = [encode_frame(Type.LOAD, struct.pack("<I", k) + blob[k:k + chunk]) for k in range(0, len(blob), chunk)]
    return frames + [encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob))),
                     encode_frame(Type.VERIFY), encode_frame(Type.STEPS, b"\x01\x00")]


@pytest.mark.parametrize("case", ["weight", "bias", "bias above b_h_max", "lanes", "digest", "T = 0", "acc_shift 40",
                                  "bases", "json", "long", "crc"])
def test_a_bad_image_is_refused_and_leaves_no_model(networks, case):
    baked, other = networks
    image = fw_image.pack(other, LANES)
    blob = fw_image.to_bytes(image)
    at = sections(blob, 2)
    row1 = at["table"] + fw_image.TABLE_ENTRY_SIZE
    blob = {
        "weight": lambda: corrupt(blob, at["weights"] + 2 * 5, struct.pack("<h", other.config.weight_max + 1)),
        "bias": lambda: corrupt(blob, at["biases"], struct.pack("<h", -(1 << 15))),
        "bias above b_h_max": lambda: corrupt(blob, at["biases"], struct.pack("<h", other.config.b_h_max + 1)),
        "lanes": lambda: corrupt(blob, 6, struct.pack("<H", LANES + 1)),
        "digest": lambda: corrupt(blob, 16, b"\x00"),
        "T = 0": lambda: corrupt(blob, 12, b"\x00\x00"),
        "acc_shift 40": lambda: corrupt(blob, row1 + 20, struct.pack("<i", 40)),
        "bases": lambda: corrupt(blob, row1 + 12, struct.pack("<I", 1)),
        "json": lambda: corrupt(blob, at["json"] + 2, b"X"),
        "long": lambda: corrupt(blob + b"\x00" * 4, len(blob) - 4, b"\x00\x00\x00\x00"),
        "crc": lambda: blob[:-1] + bytes([blob[-1] ^ 1]),
    }[case]()
    script = commit_script(blob)
    expected = emulate(script, baked)
    assert [r.type for r in expected[-3:]] == [Type.ERROR, Type.CHECKSUM, Type.ERROR]
    assert exchange(make_device(baked), script, len(expected)) == expected


def test_link_errors_get_replies_and_the_next_frame_works(networks):
    baked, _ = networks
    good = encode_frame(Type.VERIFY)
    bad_crc = good[:-1] + bytes([good[-1] ^ 0xFF])
    load = load_frames(baked)
    script = load + [bad_crc, good, b"\xa5\x04\x00\x10\x00", TIMEOUT + 10, good,  # truncated, then silence
                     b"\xa5\x01\x00\xff\xff", good, b"\x00\x17\x99", good]        # oversize; noise between frames
    expected = emulate(script, baked)
    replies = exchange(make_device(baked), script, len(expected))
    assert replies == expected
    assert [(r.type, r.payload[:1]) for r in replies[len(load):]] == [
        (Type.ERROR, bytes([ErrorCode.BAD_CRC])), (Type.CHECKSUM, b"\x01"),
        (Type.ERROR, bytes([ErrorCode.TIMEOUT])), (Type.CHECKSUM, b"\x01"),
        (Type.ERROR, bytes([ErrorCode.OVERSIZE])), (Type.CHECKSUM, b"\x01"), (Type.CHECKSUM, b"\x01")]


def test_images_are_encoded_on_the_device_as_the_emulator_does(networks):
    """IMAGE messages in both encodings, and every way an IMAGE can be refused."""
    from firmware.protocol import encode_image

    baked, other = networks
    rng = np.random.default_rng(11)
    images = [(rng.random(20) < 0.4) * rng.integers(1, 256, 20) for _ in range(3)]
    image_frame = lambda px, enc, seed: encode_frame(Type.IMAGE, encode_image(px, enc, seed, baked.config.pixel_bits))
    script = load_frames(other) + [
        image_frame(images[0], "rate", 7), image_frame(images[1], "latency", 0), image_frame(images[2], "rate", 99),
        encode_frame(Type.IMAGE, b"\x02\x00\x00\x00\x00\x13"),                      # unknown flag bit
        encode_frame(Type.IMAGE, b"\x00\x00\x00\x00"),                              # no room for the seed
        encode_frame(Type.IMAGE, b"\x00\x01\x00\x00\x00\x0a\xc0"),                  # run 20: pixel 20 of 20
        encode_frame(Type.IMAGE, b"\x00\x01\x00\x00\x00\xa8"),                      # run 0, a value cut short
        encode_frame(Type.STEPS, b"\x01\x00"),                                       # a STEPS sample begins...
        image_frame(images[0], "rate", 7),                                          # ...and an IMAGE drops it
        encode_frame(Type.VERIFY),
        image_frame(images[1], "rate", 1),
    ]
    expected = emulate(script, baked)
    replies = exchange(make_device(baked), script, len(expected))
    assert replies == expected
    results = [r for r in replies if r.type == Type.RESULT]
    errors = [(ErrorCode(r.payload[0]), r.payload[3] << 8 | r.payload[2]) for r in replies if r.type == Type.ERROR]
    assert len(results) == 4 and errors == [(ErrorCode.BAD_PAYLOAD, 0)] * 4 + [(ErrorCode.SEQUENCE, 3)]
    assert sum(Result.from_bytes(r.payload).input_events for r in results) > 0


def test_the_baked_network_encodes_images_without_a_load(networks):
    """The encoder's tables start as those of the network in the bitstream (no LOAD has written them)."""
    from firmware.protocol import encode_image

    baked, _ = networks
    pixels = (np.random.default_rng(9).random(24) < 0.5) * 200
    script = [encode_frame(Type.IMAGE, encode_image(pixels, "rate", 5, baked.config.pixel_bits)),
              encode_frame(Type.IMAGE, encode_image(pixels, "latency", 0, baked.config.pixel_bits))]
    expected = emulate(script, baked)
    replies = exchange(make_device(baked), script, len(expected))
    assert replies == expected and all(Result.from_bytes(r.payload).input_events > 0 for r in replies)


@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_the_encoder_keeps_the_shipped_core_fed(encoding):
    """The shipped model at its default lanes (P = 8), one MNIST image: from its first event to its
    result the core is stopped for the encoder (``waiting``) on at most one cycle in a thousand.

    The inbox stops the core whenever it runs empty mid-sample, whether or not the core would have
    asked for a word that cycle (hdl.inbox: the enable is decided a cycle ahead); with the shipped
    model that happens on a few cycles, as a new step's scan begins."""
    from amaranth.sim import Simulator

    from firmware.protocol import encode_image
    from quant import assets, intencode
    from quant.quantize import load_network
    from quant.samples import load_samples

    network = load_network(assets.QUANTIZED_MODEL)
    pixels = intencode.to_pixels(load_samples(assets.SAMPLES)[2][:1], network.config)[0]
    dut = SRCDevice(fw_image.pack(network, 8))
    frame = encode_frame(Type.IMAGE, encode_image(pixels, encoding, 5, network.config.pixel_bits))
    counts = {"waiting": 0, "cycles": 0}

    async def bench(ctx):
        ctx.set(dut.tx.ready, 1)
        for byte in frame:
            ctx.set(dut.rx.payload, byte)
            ctx.set(dut.rx.valid, 1)
            await ctx.tick().until(dut.rx.ready)
        ctx.set(dut.rx.valid, 0)
        decoder = FrameDecoder()
        while counts["cycles"] < 400_000:
            await ctx.tick()
            counts["cycles"] += 1
            counts["waiting"] += ctx.get(dut.waiting)
            if ctx.get(dut.tx.valid) and decoder.feed(bytes([ctx.get(dut.tx.payload)])):
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert counts["cycles"] < 400_000 and counts["waiting"] * 1000 <= counts["cycles"]


def test_a_recurrent_device_answers_as_the_emulator():
    """A device built with a recurrent layer: it loads another recurrent network and runs it, reply
    for reply equal to the emulator, results equal to the golden model."""
    baked = random_network([24, 12, 100], seed=23, n_steps=20, recurrent=[0])
    other = random_network([20, 16, 100], seed=24, n_steps=16, recurrent=[0])
    limits = DeviceLimits(2, 24, 100, 1000, 60, 32, recurrent=[0])
    one = other.config.one
    rng = np.random.default_rng(6)
    samples = [rng.random((16, 20)) < p for p in (0.3, 0.5)]
    script = [encode_frame(Type.IDENTIFY)] + load_frames(other)
    for spikes in samples:
        script += sample_frames(spikes, one)
    expected = emulate(script, baked, limits=limits)
    replies = exchange(SRCDevice(fw_image.pack(baked, LANES), limits=limits, timeout=TIMEOUT), script, len(expected))
    assert replies == expected
    assert Identity.from_bytes(replies[0].payload).recurrent_layers == (0,)
    results = [Result.from_bytes(r.payload) for r in replies if r.type == Type.RESULT]
    assert len(results) == 2
    for spikes, result in zip(samples, results):
        reference = golden.run(other, spikes.astype(np.int64)[:, None, :] * one)
        assert list(result.scores) == reference.scores[0].tolist()
    assert sum(sum(r.spike_counts) for r in results) > 0


class _Family:
    """What the device asks of a platform: its family."""

    def __init__(self, family):
        self.family = family


def _buffers(rtlil):
    return re.findall(r"cell \\DCCA \\(\S+)\n((?:    connect .*\n)+)", rtlil)


def test_the_core_enable_is_on_a_global_network_on_ecp5(networks):
    """Regression: the core's enable, a fabric net reaching every flip-flop of the core, was the
    ULX3S build's critical path (the inbox's register back into itself through the whole net,
    12.4 ns at f62c48a). On ECP5 the inbox's register feeds a DCCA whose output is the enable;
    elsewhere (simulation, Xilinx) there is no buffer."""
    from amaranth.back import rtlil

    text = rtlil.convert(make_device(networks[0]), platform=_Family("ecp5"), emit_src=False)
    (_, connections), = _buffers(text)
    ports = dict(re.findall(r"connect \\(\w+) (.+)", connections))
    assert ports["CE"] == "1'1"
    cells = dict(re.findall(r"  cell \\top\.(\w+) \\\w+\n((?:    connect .*\n)+)", text))
    inbox, core = (dict(re.findall(r"connect \\(\w+) (\S+)", cells[k])) for k in ("inbox", "core"))
    assert ports["CLKI"].split()[0] == inbox["run"]            # the inbox's register ...
    assert ports["CLKO"] in core.values()                       # ... drives the core through the buffer
    assert inbox["run"] not in core.values()                    # and only through it
    assert _buffers(rtlil.convert(make_device(networks[0]), platform=_Family("xc7"), emit_src=False)) == []
    assert _buffers(rtlil.convert(make_device(networks[0]), emit_src=False)) == []
