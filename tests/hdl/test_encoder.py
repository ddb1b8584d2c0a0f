"""The image encoder in gateware against quant.intencode: the same events, step by step, with back-pressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from firmware.protocol import encode_image
from hdl.encoder import ImageEncoder
from quant import intencode
from quant.fixedpoint import DEFAULT

N_INPUTS, T = 40, 12


def run(pixels, encoding, seed, tokens=None, ready_every=1, n_steps=T, config=DEFAULT):
    """Events (a list of steps, each a list of indices) the encoder makes of one image, and its error flag."""
    dut = ImageEncoder(config, N_INPUTS, 16, fifo_depth=8)
    rate_table = intencode.rate_thresholds(config)
    latency_table = intencode.latency_table(config, n_steps)
    tokens = encode_image(pixels, encoding, seed, config.pixel_bits)[5:] if tokens is None else tokens
    steps, current, outcome = [], [], {}

    async def bench(ctx):
        for which, values in ((0, rate_table), (1, latency_table)):
            for address, value in enumerate(values):
                ctx.set(dut.table, {"valid": 1, "which": which, "address": address, "value": value})
                await ctx.tick()
        ctx.set(dut.table.valid, 0)
        ctx.set(dut.latency, encoding == "latency")
        ctx.set(dut.seed, seed)
        ctx.set(dut.n_inputs, len(pixels))
        ctx.set(dut.n_steps, n_steps)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for byte in tokens:
            ctx.set(dut.bytes.payload, byte)
            ctx.set(dut.bytes.valid, 1)
            # A malformed stream fails mid-byte; the encoder then takes no more bytes.
            _, error = await ctx.tick().sample(dut.bytes.ready, dut.error).until(dut.bytes.ready | dut.error)
            if error:
                break
        ctx.set(dut.bytes.valid, 0)
        ctx.set(dut.exhausted, 1)
        cycle = 0
        while len(steps) < n_steps and cycle < 20_000:
            cycle += 1
            ready = cycle % ready_every == 0   # back-pressure from a busy core
            ctx.set(dut.events.ready, ready)
            if ctx.get(dut.error):
                break
            if ready and ctx.get(dut.events.valid):
                event = ctx.get(dut.events.payload)
                if event.end:
                    steps.append(current.copy())
                    current.clear()
                else:
                    assert event.amplitude == config.one
                    current.append(event.index)
            await ctx.tick()
        outcome["error"] = ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return steps, outcome["error"]


def expected(pixels, encoding, seed, n_steps=T, config=DEFAULT):
    spikes = intencode.encode_with_tables(pixels, encoding, seed, n_steps, intencode.rate_thresholds(config),
                                          intencode.latency_table(config, n_steps), config.draw_bits)
    return [np.flatnonzero(row).tolist() for row in spikes]


@pytest.mark.parametrize("encoding", ["rate", "latency"])
@pytest.mark.parametrize("ready_every", [1, 5, 25])   # 25: the FIFO fills, the pipeline waits for room
def test_events_equal_the_specification(encoding, ready_every):
    rng = np.random.default_rng(7)
    pixels = (rng.random(N_INPUTS) < 0.5) * rng.integers(1, 256, N_INPUTS)
    pixels[:3] = [255, 0, 200]
    seed = 0xC0FFEE
    got, error = run(pixels, encoding, seed, ready_every=ready_every)
    want = expected(pixels, encoding, seed)
    assert not error and got == want
    assert sum(map(len, want)) > 0


@pytest.mark.parametrize("encoding", ["rate", "latency"])
def test_a_blank_image_gives_empty_steps(encoding):
    got, error = run(np.zeros(N_INPUTS, np.int64), encoding, 1)
    assert not error and got == [[]] * T


def bits(text):
    """Bytes of a bit string (spaces for reading), most significant bit first, zero-padded."""
    text = text.replace(" ", "")
    text += "0" * (-len(text) % 8)
    return bytes(int(text[k:k + 8], 2) for k in range(0, len(text), 8))


# Malformed pixel streams of a 40-pixel image at 8-bit pixels, each breaking one rule of the format.
MALFORMED = {
    "pixel past the image": bits("00000 101001 1"),                # run 40 (r + 1 = 41): index 40 of 40
    "run past the image": bits("00000 111111 1"),                  # run 62: index 62
    "second pixel past the image": bits("00000 101000 1  1 1"),    # index 39, then run 0: index 40
    "value 0": bits("1 0 00000000"),                               # run 0, a long value of 0
    "16 leading zeros": bits("0000000000000000 1"),                 # more than IMAGE_PREFIX_LIMIT
    "ends in a run code": bits("0000000 1"),                       # 7 zeros, then 1 of the 8 bits
    "ends in a value": bits("1 0 10"),                             # run 0, flag 0, 6 of 8 value bits cut
    "ends in a value after a run": bits("001 01"),                 # run 4, flag 0 (padding), value cut
}


@pytest.mark.parametrize("stream", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_streams_are_an_error(stream):
    from firmware.protocol import ProtocolError, decode_image

    with pytest.raises(ProtocolError):
        decode_image(bytes(5) + stream, N_INPUTS, 8)
    steps, error = run(np.zeros(N_INPUTS, np.int64), "rate", 1, tokens=stream)
    assert error and steps == []


def test_padding_and_leading_zeros_at_the_end_are_accepted():
    """A stream may end between codes or inside a run code's leading zeros (up to 15)."""
    from firmware.protocol import decode_image

    pixels = np.zeros(N_INPUTS, np.int64)
    pixels[2] = 255                                   # run 2 (011), then the top value (1)
    for stream in (bits("011 1"), bits("011 1 0000 00000000")):      # 4 and 12 zero bits at the end
        assert (decode_image(bytes(5) + stream, N_INPUTS, 8)[2] == pixels).all()
        got, error = run(pixels, "latency", 1, tokens=stream)
        assert not error and got == expected(pixels, "latency", 1)


def test_fewer_pixel_bits_take_their_own_top_and_value_codes():
    cfg = DEFAULT.replace(pixel_bits=3)
    pixels = np.zeros(N_INPUTS, np.int64)
    pixels[[0, 5, 6, 39]] = [7, 1, 4, 7]
    for encoding in ("rate", "latency"):
        got, error = run(pixels, encoding, 3, config=cfg)
        assert not error and got == expected(pixels, encoding, 3, config=cfg)
        assert sum(map(len, got)) > 0


def _lead(pixels, encoding, seed):
    """Cycles from ``start`` to the first event word, a token byte offered every cycle."""
    dut = ImageEncoder(DEFAULT, N_INPUTS, 16, fifo_depth=8, rate_table=intencode.rate_thresholds(DEFAULT),
                       latency_table=intencode.latency_table(DEFAULT, T))
    tokens = encode_image(pixels, encoding, seed, DEFAULT.pixel_bits)[5:]
    out = {}

    async def bench(ctx):
        ctx.set(dut.latency, encoding == "latency")
        ctx.set(dut.seed, seed)
        ctx.set(dut.n_inputs, N_INPUTS)
        ctx.set(dut.n_steps, T)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycle, taken = 1, 0
        while not ctx.get(dut.events.valid):
            ctx.set(dut.bytes.valid, taken < len(tokens))
            ctx.set(dut.bytes.payload, tokens[taken] if taken < len(tokens) else 0)
            ctx.set(dut.exhausted, taken >= len(tokens))
            taken += taken < len(tokens) and ctx.get(dut.bytes.ready)
            await ctx.tick()
            cycle += 1
        out["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["cycles"], len(tokens)


@pytest.mark.parametrize("listed", [0, 9, 17])
def test_the_lead_time_equals_the_cycle_model(listed):
    from hdl.cycles import ENCODER_PIPELINE, encoder_lead_cycles

    assert ENCODER_PIPELINE == ImageEncoder.PIPELINE
    rng = np.random.default_rng(listed)
    pixels = np.zeros(N_INPUTS, np.int64)
    pixels[rng.choice(N_INPUTS, listed, replace=False)] = rng.integers(1, 256, listed)
    if listed:
        pixels[np.flatnonzero(pixels)[:2]] = [1, 2]   # too dark to spike: 1/255 and 2/255 < 0.01
    table = intencode.latency_table(DEFAULT, T)
    never = int(sum(table[v] == intencode.NEVER for v in pixels if v))
    cycles, tokens = _lead(pixels, "latency", 1)
    assert cycles == encoder_lead_cycles("latency", tokens, listed, never, T)
    pixels[0] = 255   # rate: a first pixel that spikes at step 0, for a seed the specification picks
    seed = next(s for s in range(10_000) if intencode.encode_with_tables(
        pixels, "rate", s, T, intencode.rate_thresholds(DEFAULT), table, DEFAULT.draw_bits)[0, 0])
    cycles, tokens = _lead(pixels, "rate", seed)
    assert cycles == encoder_lead_cycles("rate", tokens, int((pixels > 0).sum()), 0, T)
