"""The emulated device's side of the protocol: replies, errors and recovery."""

import struct
import zlib

import numpy as np
import pytest

from firmware import image as fw_image
from firmware.protocol import ErrorCode, FrameDecoder, Identity, Result, Type, encode_frame, encode_steps, split_records
from quant import golden
from tests.helpers import random_network
from sim.emulator import DeviceModel, GoldenBackend


@pytest.fixture
def network():
    return random_network([20, 12, 100], seed=1, bias=(-6.0, -6.0))


def talk(device, frame_bytes):
    events = FrameDecoder().feed(frame_bytes)
    replies = b"".join(r for e in events for r in device.handle(e))
    return FrameDecoder().feed(replies)


def error_of(reply):
    assert reply.type == Type.ERROR
    return ErrorCode(reply.payload[0]), reply.payload[1]


def load(device, network, lanes=4):
    blob = fw_image.to_bytes(fw_image.pack(network, lanes))
    for offset in range(0, len(blob), 1000):
        talk(device, encode_frame(Type.LOAD, struct.pack("<I", offset) + blob[offset:offset + 1000]))
    return talk(device, encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob))))[0], blob


def test_identify_load_verify_and_infer(network):
    device = DeviceModel(GoldenBackend(lanes=4))
    assert not Identity.from_bytes(talk(device, encode_frame(Type.IDENTIFY))[0].payload).loaded
    reply, blob = load(device, network)
    assert reply.type == Type.LOADED and struct.unpack("<I", reply.payload)[0] == fw_image.checksum(blob)
    assert talk(device, encode_frame(Type.VERIFY))[0].payload == struct.pack("<BI", 1, fw_image.checksum(blob))
    spikes = np.random.default_rng(0).random((30, 20)) < 0.3
    frames = b"".join(encode_frame(Type.STEPS, p) for p in split_records(encode_steps(spikes, 256), limit=40))
    replies = talk(device, frames)
    assert len(replies) == 1 and replies[0].type == Type.RESULT
    result, expected = Result.from_bytes(replies[0].payload), golden.run(network, spikes[:, None, :])
    assert list(result.scores) == expected.scores[0].tolist() and result.prediction == expected.prediction[0]


def test_errors_are_answered_and_the_device_recovers(network):
    device = DeviceModel(GoldenBackend(lanes=4))
    steps = encode_frame(Type.STEPS, split_records(encode_steps(np.zeros((30, 20), bool), 256))[0])
    assert error_of(talk(device, steps)[0]) == (ErrorCode.NO_MODEL, Type.STEPS)
    assert error_of(talk(device, encode_frame(0x42, b"?"))[0]) == (ErrorCode.UNKNOWN_TYPE, 0x42)
    corrupt = bytearray(encode_frame(Type.IDENTIFY))
    corrupt[-1] ^= 1
    assert error_of(talk(device, bytes(corrupt))[0]) == (ErrorCode.BAD_CRC, Type.IDENTIFY)
    assert talk(device, encode_frame(Type.COMMIT, struct.pack("<II", 5, 0)))[0].payload[0] == ErrorCode.BAD_IMAGE
    wrong_lanes, _ = load(device, network, lanes=3)
    assert error_of(wrong_lanes) == (ErrorCode.BAD_IMAGE, Type.COMMIT)
    assert load(device, network)[0].type == Type.LOADED
    # A continuation frame without a first frame, too many steps, and a malformed record.
    cont = encode_frame(Type.STEPS, b"\x00" + bytes([0]))
    assert error_of(talk(device, cont)[0]) == (ErrorCode.SEQUENCE, Type.STEPS)
    too_long = encode_frame(Type.STEPS, b"\x01" + bytes([63]))
    assert error_of(talk(device, too_long)[0]) == (ErrorCode.SEQUENCE, Type.STEPS)
    bad_record = encode_frame(Type.STEPS, b"\x01" + bytes([0x40, 1, 0, 99, 0]))
    assert error_of(talk(device, bad_record)[0]) == (ErrorCode.BAD_PAYLOAD, Type.STEPS)
    # After all that, a whole sample still works.
    replies = talk(device, b"".join(encode_frame(Type.STEPS, p)
                                    for p in split_records(encode_steps(np.ones((30, 20), bool), 256))))
    assert replies[0].type == Type.RESULT
