import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.protocol import (FRAME_OVERHEAD, MAX_PAYLOAD, ErrorCode, Frame, FrameDecoder, FrameError, Identity, ProtocolError,
                               PROTOCOL_VERSION, Result, Type, crc16, decode_steps, encode_frame, encode_steps, split_records)


def test_crc16_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1   # the standard check value of CRC-16/CCITT-FALSE


def test_frame_layout_by_hand():
    frame = encode_frame(Type.VERIFY, b"\x01\x02", seq=0x3C)
    assert frame[:5] == bytes([0xA5, 0x04, 0x3C, 0x02, 0x00]) and frame[5:7] == b"\x01\x02"
    assert int.from_bytes(frame[7:], "big") == crc16(frame[1:7])
    assert len(frame) == 2 + FRAME_OVERHEAD
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_frame(Type.LOAD, bytes(MAX_PAYLOAD + 1))


def test_frames_carry_their_sequence_number():
    events = FrameDecoder().feed(encode_frame(Type.IDENTIFY, seq=200) + encode_frame(Type.VERIFY, b"", seq=201))
    assert events == [Frame(Type.IDENTIFY, b"", 200), Frame(Type.VERIFY, b"", 201)]


def test_bad_crc_is_reported_and_the_next_frame_decodes():
    good = encode_frame(Type.IDENTIFY, seq=2)
    bad = bytearray(encode_frame(Type.VERIFY, b"xyz", seq=1))
    bad[6] ^= 0x40
    events = FrameDecoder().feed(bytes(bad) + good)
    assert events == [FrameError(ErrorCode.BAD_CRC, Type.VERIFY, seq=1), Frame(Type.IDENTIFY, b"", 2)]


def test_a_bad_frame_is_skipped_whole_even_if_it_hides_a_sync_byte():
    # The hunt resumes after the bad frame's CRC, as in the gateware: a 0xA5 inside it is not a start.
    inner = encode_frame(Type.ABORT, seq=9)
    bad = bytearray(encode_frame(Type.LOAD, b"\0\0\0\0" + inner, seq=8))
    bad[-1] ^= 1
    assert FrameDecoder().feed(bytes(bad)) == [FrameError(ErrorCode.BAD_CRC, Type.LOAD, seq=8)]


def test_oversize_length_is_reported_and_resynchronised():
    events = FrameDecoder().feed(bytes([0xA5, 0x05, 0x07, 0xFF, 0xFF]) + encode_frame(Type.ABORT))
    assert events == [FrameError(ErrorCode.OVERSIZE, Type.STEPS, 0xFFFF, 7), Frame(Type.ABORT, b"")]


def test_a_truncated_frame_is_dropped_at_the_timeout_with_what_it_swallowed():
    decoder = FrameDecoder()
    truncated = encode_frame(Type.LOAD, bytes(100), seq=4)[:50]
    assert decoder.feed(truncated + encode_frame(Type.IDENTIFY)) == []   # swallowed by the long header
    assert decoder.timeout() == [FrameError(ErrorCode.TIMEOUT, Type.LOAD, seq=4)]
    assert decoder.idle and decoder.timeout() == []
    assert decoder.feed(encode_frame(Type.IDENTIFY, seq=5)) == [Frame(Type.IDENTIFY, b"", 5)]


def test_a_lone_sync_byte_times_out_with_no_type():
    decoder = FrameDecoder()
    decoder.feed(encode_frame(Type.VERIFY, seq=3) + b"\xa5")
    assert decoder.timeout() == [FrameError(ErrorCode.TIMEOUT, 0, seq=0)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=40), st.integers(0, 255))
def test_after_garbage_and_a_pause_the_next_frame_decodes(garbage, payload, seq):
    decoder = FrameDecoder()
    decoder.feed(garbage)
    decoder.timeout()   # the line falls idle
    assert decoder.feed(encode_frame(Type.VERIFY, payload, seq)) == [Frame(Type.VERIFY, payload, seq)]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 300), st.floats(0, 1), st.booleans(), st.integers(0, 2**32 - 1))
def test_step_records_round_trip(n_steps, n_inputs, density, graded, seed):
    rng = np.random.default_rng(seed)
    amplitudes = (rng.random((n_steps, n_inputs)) < density).astype(np.int64) * 256
    if graded:
        amplitudes = amplitudes * rng.integers(1, 257, amplitudes.shape) // 256
    payloads = split_records(encode_steps(amplitudes, 256), limit=64 + n_inputs * 4)
    steps = [s for p in payloads for s in decode_steps(p[1:], n_inputs, 256)]
    assert payloads[0][0] == 1 and all(p[0] == 0 for p in payloads[1:])
    assert len(steps) == n_steps
    for t, events in enumerate(steps):
        assert events == [(j, int(amplitudes[t, j])) for j in np.flatnonzero(amplitudes[t])]


def test_each_step_takes_the_shorter_encoding():
    sparse = np.zeros((1, 784), np.int64)
    sparse[0, [3, 500]] = 256
    dense = np.full((1, 784), 256)
    # Gap list: gaps 3 (one byte) and 496 (two bytes, 0x80 | 496 >> 8, 496 & 0xFF).
    assert encode_steps(sparse, 256)[0] == bytes([0x81, 3, 0x81, 0xF0])
    # Past 128 events a gap list cannot hold a step, and past 32767 no gap fits: index lists.
    many = np.zeros((1, 65535), np.int64)
    many[0, ::500] = 256
    assert encode_steps(many, 256)[0][:3] == struct.pack("<BH", 0x40, 132)
    far = np.zeros((1, 50000), np.int64)
    far[0, [0, 40000]] = 256
    assert encode_steps(far, 256)[0] == struct.pack("<BHHH", 0x40, 2, 0, 40000)
    assert len(encode_steps(dense, 256)[0]) == 1 + 98
    assert encode_steps(np.zeros((70, 784)), 256) == [bytes([63]), bytes([5])]


@pytest.mark.parametrize("records, message", [
    (bytes([0x40, 2, 0, 1, 0]), "truncated"),
    (struct.pack("<BHHH", 0x40, 2, 9, 3), "ascending"),
    (struct.pack("<BHH", 0x40, 1, 784), "below 784"),
    (struct.pack("<BHHH", 0x42, 1, 3, 300), "amplitudes"),
    (bytes([0x77]), "unknown step record"),
    (bytes([0x81, 3]), "truncated"),
    (bytes([0x80, 0x80]), "truncated"),
    (bytes([0x81, 0x83, 0x0F, 0]), "below 784"),
])
def test_malformed_step_records_are_rejected(records, message):
    with pytest.raises(ProtocolError, match=message):
        decode_steps(records, 784, 256)


def test_reply_payloads_round_trip():
    identity = Identity(PROTOCOL_VERSION, 8, 2, 10, 784, 512, 1024, 1000, 80, 0b10, "ab" * 32, True, 0xDEADBEEF)
    assert Identity.from_bytes(identity.to_bytes()) == identity and identity.recurrent_layers == (1,)
    assert Identity.from_bytes(bytes([2]) + bytes(20)).protocol == 2   # another version: only its number is read
    result = Result((1, -2, 3), 2, 77, (10, 20), 12345)
    assert Result.from_bytes(result.to_bytes()) == result
    with pytest.raises(ProtocolError):
        Result.from_bytes(result.to_bytes()[:-1])


def test_the_written_spec_reproduces_the_normative_docstring():
    from pathlib import Path

    import firmware.protocol

    spec = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    assert firmware.protocol.__doc__.strip() in spec


# -- IMAGE payloads ---------------------------------------------------------------------------------

def test_an_image_is_coded_as_hand_computed():
    """Pixels [0, 0, 7, 5] at 3 bits: run 2 (r + 1 = 3: ``0 11``), the top value (``1``), run 0
    (``1``), value 5 (``0 101``): the bits 011 1 1 0101, padded to 0x7A 0x80."""
    from firmware.protocol import decode_image, encode_image

    payload = encode_image([0, 0, 7, 5], "latency", 0x01020304, 3)
    assert payload == bytes([1, 4, 3, 2, 1, 0x7A, 0x80])
    encoding, seed, pixels = decode_image(payload, 4, 3)
    assert (encoding, seed, pixels.tolist()) == ("latency", 0x01020304, [0, 0, 7, 5])
    assert encode_image([0] * 9, "rate", 0, 8) == bytes(5)        # a blank image is the header alone


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda b: st.tuples(
    st.just(b), st.lists(st.integers(0, (1 << b) - 1), min_size=1, max_size=1200))))
def test_images_round_trip(case):
    from firmware.protocol import decode_image, encode_image

    pixel_bits, pixels = case
    payload = encode_image(pixels, "rate", 7, pixel_bits)
    assert decode_image(payload, len(pixels), pixel_bits)[2].tolist() == pixels


def test_images_with_bad_arguments_are_refused():
    from firmware.protocol import decode_image, encode_image

    with pytest.raises(ProtocolError, match="pixels must lie"):
        encode_image([0, 8], "rate", 0, 3)
    with pytest.raises(ProtocolError, match="unknown encoding"):
        encode_image([0, 1], "poisson", 0, 8)
    with pytest.raises(ProtocolError, match="flags"):
        decode_image(b"\x02" + bytes(4), 4, 8)
