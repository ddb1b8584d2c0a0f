"""The emulated device's side of the protocol: replies, errors and recovery."""

import socket
import struct
import zlib

import numpy as np
import pytest

from firmware import image as fw_image
from firmware.image import DeviceLimits, HEADER_FIELDS, TABLE_ENTRY_SIZE, TABLE_FIELDS
from firmware.protocol import (ErrorCode, FrameDecoder, Identity, Result, Type, encode_frame, encode_steps,
                               split_records)
from quant import golden
from sim.emulator import DeviceModel, main as emulator_main, serve
from tests.helpers import random_network
from tests.image_corpus import sections, set_field, with_crc

LIMITS = DeviceLimits(2, 24, 100, 600, 60, 40)


@pytest.fixture(scope="module")
def baked():
    return random_network([24, 12, 100], seed=11, bias=(-6.0, -6.0))


@pytest.fixture(scope="module")
def network():
    return random_network([20, 12, 100], seed=1, bias=(-6.0, -6.0))


def make(baked, lanes=4):
    return DeviceModel(fw_image.pack(baked, lanes), LIMITS)


def talk(device, frame_bytes):
    events = FrameDecoder().feed(frame_bytes)
    replies = b"".join(r for e in events for r in device.handle(e))
    return FrameDecoder().feed(replies)


def error_of(reply):
    assert reply.type == Type.ERROR
    return ErrorCode(reply.payload[0]), reply.payload[1], int.from_bytes(reply.payload[2:4], "little")


def load_frames(blob, chunk=1000):
    frames = [encode_frame(Type.LOAD, struct.pack("<I", k) + blob[k:k + chunk]) for k in range(0, len(blob), chunk)]
    return b"".join(frames) + encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)))


def load(device, network, lanes=4):
    blob = fw_image.to_bytes(fw_image.pack(network, lanes))
    return talk(device, load_frames(blob))[-1], blob


def test_identify_load_verify_and_infer(baked, network):
    device = make(baked)
    identity = Identity.from_bytes(talk(device, encode_frame(Type.IDENTIFY))[0].payload)
    assert identity.loaded and (identity.layers, identity.classes, identity.max_inputs) == (2, 10, 24)
    reply, blob = load(device, network)
    assert reply.type == Type.LOADED and struct.unpack("<I", reply.payload)[0] == fw_image.checksum(blob)
    assert talk(device, encode_frame(Type.VERIFY))[0].payload == struct.pack("<BI", 1, fw_image.checksum(blob))
    spikes = np.random.default_rng(0).random((30, 20)) < 0.3
    frames = b"".join(encode_frame(Type.STEPS, p) for p in split_records(encode_steps(spikes, 256), limit=40))
    replies = talk(device, frames)
    assert len(replies) == 1 and replies[0].type == Type.RESULT
    result, expected = Result.from_bytes(replies[0].payload), golden.run(network, spikes[:, None, :])
    assert list(result.scores) == expected.scores[0].tolist() and result.prediction == expected.prediction[0]


def test_every_reply_carries_the_seq_of_the_frame_it_answers(baked):
    device = make(baked)
    assert [r.seq for r in talk(device, encode_frame(Type.IDENTIFY, seq=17) + encode_frame(0x42, seq=18))] == [17, 18]
    spikes = np.random.default_rng(2).random((30, 24)) < 0.2
    frames = [encode_frame(Type.STEPS, p, seq=30 + k) for k, p in enumerate(split_records(encode_steps(spikes, 256),
                                                                                          limit=40))]
    assert len(frames) > 1
    (result,) = talk(device, b"".join(frames))
    assert result.type == Type.RESULT and result.seq == 30 + len(frames) - 1   # the sample's last frame


def test_errors_are_answered_and_the_device_recovers(baked, network):
    device = make(baked)
    assert error_of(talk(device, encode_frame(0x42, b"?"))[0])[:2] == (ErrorCode.UNKNOWN_TYPE, 0x42)
    corrupt = bytearray(encode_frame(Type.IDENTIFY))
    corrupt[-1] ^= 1
    assert error_of(talk(device, bytes(corrupt))[0])[:2] == (ErrorCode.BAD_CRC, Type.IDENTIFY)
    assert error_of(talk(device, encode_frame(Type.COMMIT, struct.pack("<II", 5, 0)))[0]) == (
        ErrorCode.BAD_IMAGE, Type.COMMIT, 1)
    wrong_lanes, _ = load(device, network, lanes=3)   # a load at offset 0 gives up the model...
    assert error_of(wrong_lanes) == (ErrorCode.BAD_IMAGE, Type.COMMIT, 2)
    steps = encode_frame(Type.STEPS, split_records(encode_steps(np.zeros((30, 20), bool), 256))[0])
    assert error_of(talk(device, steps)[0])[:2] == (ErrorCode.NO_MODEL, Type.STEPS)   # ...and the bad one is refused
    assert load(device, network)[0].type == Type.LOADED
    # A continuation frame without a first frame, too many steps, and a malformed record.
    assert error_of(talk(device, encode_frame(Type.STEPS, b"\x00\x00"))[0]) == (ErrorCode.SEQUENCE, Type.STEPS, 1)
    assert error_of(talk(device, encode_frame(Type.STEPS, b"\x01\x3f"))[0]) == (ErrorCode.SEQUENCE, Type.STEPS, 2)
    bad_record = encode_frame(Type.STEPS, b"\x01" + bytes([0x40, 1, 0, 99, 0]))
    assert error_of(talk(device, bad_record)[0])[:2] == (ErrorCode.BAD_PAYLOAD, Type.STEPS)
    # After all that, a whole sample still works.
    replies = talk(device, b"".join(encode_frame(Type.STEPS, p)
                                    for p in split_records(encode_steps(np.ones((30, 20), bool), 256))))
    assert replies[0].type == Type.RESULT


def test_the_first_problem_in_a_payload_is_the_answer(baked):
    """Record by record, as the gateware decodes: a step past T before a bad record is SEQUENCE, after it BAD_PAYLOAD."""
    device = make(baked)   # T = 30
    past_t_then_bad = encode_frame(Type.STEPS, b"\x01" + bytes([29, 1, 0x77]))   # 30 + 2 silent steps, then junk
    assert error_of(talk(device, past_t_then_bad)[0]) == (ErrorCode.SEQUENCE, Type.STEPS, 2)
    bad_then_past_t = encode_frame(Type.STEPS, b"\x01" + bytes([0x77, 63]))
    assert error_of(talk(device, bad_then_past_t)[0])[:2] == (ErrorCode.BAD_PAYLOAD, Type.STEPS)


def test_any_load_abandons_a_sample_even_out_of_sequence(baked):
    device = make(baked)
    first = encode_frame(Type.STEPS, b"\x01\x00")                       # one silent step of 30
    assert talk(device, first) == []
    assert error_of(talk(device, encode_frame(Type.LOAD, struct.pack("<I", 99)))[0])[:2] == (
        ErrorCode.SEQUENCE, Type.LOAD)
    assert error_of(talk(device, encode_frame(Type.STEPS, b"\x00\x00"))[0]) == (ErrorCode.SEQUENCE, Type.STEPS, 1)


def _bad_images(network, lanes=4):
    """CRC-valid images that once crashed the emulator at COMMIT or at the next STEPS."""
    cfg = network.config
    body = bytearray(fw_image.to_bytes(fw_image.pack(network, lanes))[:-4])
    at = sections(bytes(body) + b"\0" * 4, 2)
    table = lambda row, field: at["table"] + TABLE_ENTRY_SIZE * row + 4 * TABLE_FIELDS.index(field)
    return {
        "bias above b_h_max": set_field(body, at["biases"], 2, cfg.b_h_max + 1),
        "classes": set_field(body, HEADER_FIELDS["classes"][0], 2, 9),
        "T = 0": set_field(body, HEADER_FIELDS["steps"][0], 2, 0),
        "acc_shift 40": set_field(body, table(1, "acc_shift"), 4, 40),
        "acc_shift -30": set_field(body, table(0, "acc_shift"), 4, -30),
    }


@pytest.mark.parametrize("case", ["bias above b_h_max", "classes", "T = 0", "acc_shift 40", "acc_shift -30"])
def test_crc_valid_bad_images_are_refused_and_the_connection_survives(baked, network, case):
    """Every frame of a batch is answered: the image's refusal and the requests after it."""
    server = serve(network=baked, lanes=4, limits=LIMITS)
    try:
        blob = with_crc(_bad_images(network)[case])
        batch = (load_frames(blob) + encode_frame(Type.VERIFY, seq=200)
                 + encode_frame(Type.STEPS, b"\x01\x00", seq=201) + encode_frame(Type.IDENTIFY, seq=202))
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(batch)
            decoder, replies = FrameDecoder(), []
            while len(replies) < -(-len(blob) // 1000) + 4:
                replies += decoder.feed(conn.recv(65536))
        commit, verify, steps, identity = replies[-4:]
        assert error_of(commit) == (ErrorCode.BAD_IMAGE, Type.COMMIT, 2)
        assert verify.payload == struct.pack("<BI", 0, 0) and verify.seq == 200
        assert error_of(steps)[:2] == (ErrorCode.NO_MODEL, Type.STEPS) and steps.seq == 201
        assert identity.type == Type.IDENTITY and identity.seq == 202
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("argv, message", [
    (["--lanes", "0"], "--lanes must be in 1..256"),
    (["--lanes", "100000"], "--lanes must be in 1..256"),
    (["--pty", "--backend", "rtl"], "--pty serves the golden back end only"),
    (["--port", "70000"], "--port must be in 0..65535"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        emulator_main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_port_in_use_or_a_wrong_model_file_exits_2(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert emulator_main(["--port", str(taken.getsockname()[1])]) == 2
    assert "error: cannot serve on port" in capsys.readouterr().err
    from quant import assets
    assert emulator_main(["--model", str(assets.FLOAT_MODEL)]) == 2
    assert "float model, not a quantized network; quantize it first" in capsys.readouterr().err
    (tmp_path / "cut.npz").write_bytes(assets.QUANTIZED_MODEL.read_bytes()[:300])
    assert emulator_main(["--model", str(tmp_path / "cut.npz")]) == 2
    assert "not a valid quantized network" in capsys.readouterr().err
