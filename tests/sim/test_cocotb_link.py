"""cocotb benches of the device's Verilog at its UART pins: replies, link errors, garbage (hypothesis).

Frames go in bit by bit on ``rx`` of :class:`hdl.top.UARTDevice` and the replies are read off
``tx``. The reference for every reply is the emulator's :class:`sim.emulator.DeviceModel`.
"""


import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from firmware import image as fw_image
from firmware.protocol import (ErrorCode, Frame, FrameDecoder, Result, Type, encode_frame, encode_steps,
                               split_records)
from quant import golden
from sim.emulator import DeviceModel
from tests.helpers import random_network, require_simulator

require_simulator(module_level=True)  # CI installs Icarus and sets SRC_REQUIRE_SIM

from sim.link_runner import run_uart_script  # noqa: E402

LANES, TIMEOUT, GAP = 4, 2000, 2600


def _divisor(baud):
    """Cycles per bit of the Arty build at ``baud`` (its clock: 96 MHz)."""
    from hdl.build import ARTY_CLOCK_HZ
    from hdl.uart import divisor

    return divisor(ARTY_CLOCK_HZ, baud, 0.0)


#: The pins run at the Arty's 12 Mbaud (8 cycles per bit) unless a case says otherwise.
DIVISOR = _divisor(12_000_000)


@pytest.fixture(scope="module")
def network():
    return random_network([24, 12, 100], seed=31, n_steps=12)


def reference(network, exchanges):
    """The emulator's replies, exchange by exchange (a device built with the same network)."""
    device, decoder = DeviceModel(fw_image.pack(network, LANES)), FrameDecoder()
    replies = []
    for exchange in exchanges:
        events = decoder.feed(exchange["send"])
        if exchange.get("gap", 0) >= TIMEOUT:
            events += decoder.timeout()
        replies.append(b"".join(r for e in events for r in device.handle(e)))
    return replies


def test_frames_through_the_pins(tmp_path, network):
    one = network.config.one
    spikes = np.random.default_rng(4).random((12, 24)) < 0.3
    verify = encode_frame(Type.VERIFY)
    exchanges = [
        {"send": encode_frame(Type.IDENTIFY)[:0] + verify},
        {"send": verify[:-1] + bytes([verify[-1] ^ 0x40])},                       # corrupted CRC
        {"send": verify},
        {"send": b"\xa5\x04\x00\x20\x00\x01\x02", "gap": GAP},                      # truncated frame
        {"send": verify},
        {"send": encode_frame(0x5A, b"\x01\x02")},                                 # unknown type
        {"send": b"\xa5\x05\x00\xff\x7f" + verify},                                # oversize length, then a frame
        {"send": b"".join(encode_frame(Type.STEPS, p) for p in split_records(encode_steps(spikes, one), limit=30))},
        {"send": encode_frame(Type.STEPS, b"\x01\x40\x01\x00\xff\x00")},            # index past the inputs
        {"send": verify},
    ]
    # A sample's last frame is followed by its last steps and the readout: allow for them.
    report = run_uart_script(fw_image.pack(network, LANES), exchanges, tmp_path, divisor=DIVISOR, timeout=TIMEOUT,
                             quiet=4000)
    assert report["overrun"] == 0
    assert report["replies"] == reference(network, exchanges)
    kinds = [[(f.type, f.payload[0]) if f.type == Type.ERROR else f.type for f in FrameDecoder().feed(r)]
             for r in report["replies"]]
    assert kinds == [[Type.CHECKSUM], [(Type.ERROR, ErrorCode.BAD_CRC)], [Type.CHECKSUM],
                     [(Type.ERROR, ErrorCode.TIMEOUT)], [Type.CHECKSUM], [(Type.ERROR, ErrorCode.UNKNOWN_TYPE)],
                     [(Type.ERROR, ErrorCode.OVERSIZE), Type.CHECKSUM], [Type.RESULT],
                     [(Type.ERROR, ErrorCode.BAD_PAYLOAD)], [Type.CHECKSUM]]
    result = Result.from_bytes(FrameDecoder().feed(report["replies"][7])[0].payload)
    expected = golden.run(network, spikes.astype(np.int64)[:, None, :] * one)
    assert list(result.scores) == expected.scores[0].tolist() and result.prediction == expected.prediction[0]


def garbage_examples(n=30):
    """Byte strings from hypothesis, rich in sync bytes and short lengths; none holds a whole valid frame."""
    found = []
    noise = st.lists(st.sampled_from([0xA5, 0x00, 0x01, 0x05, 0xFF]) | st.integers(0, 255), min_size=1, max_size=40)

    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None)
    @given(noise.map(bytes))
    def collect(blob):
        if not any(isinstance(e, Frame) for e in FrameDecoder().feed(blob) + FrameDecoder().timeout()):
            found.append(blob)

    collect()
    return found


def test_garbage_gets_the_emulators_replies_and_the_next_frame_works(tmp_path, network):
    verify = encode_frame(Type.VERIFY)
    blobs = garbage_examples()
    exchanges = [e for blob in blobs for e in ({"send": blob, "gap": GAP}, {"send": verify})]
    report = run_uart_script(fw_image.pack(network, LANES), exchanges, tmp_path, divisor=DIVISOR, timeout=TIMEOUT,
                             quiet=800)
    assert report["replies"] == reference(network, exchanges)   # the same receiver: the same errors
    checksum = fw_image.checksum(fw_image.to_bytes(fw_image.pack(network, LANES)))
    for k, blob in enumerate(blobs):
        after_garbage = FrameDecoder().feed(report["replies"][2 * k])
        assert all(isinstance(f, Frame) and f.type == Type.ERROR for f in after_garbage), (blob.hex(), after_garbage)
        reply = FrameDecoder().feed(report["replies"][2 * k + 1])
        assert reply == [Frame(Type.CHECKSUM, b"\x01" + checksum.to_bytes(4, "little"))], (blob.hex(), reply)


def test_3_mbaud_stays_selectable(tmp_path, network):
    """The same device at 3 Mbaud (32 cycles per bit of 96 MHz): an image and a VERIFY."""
    from firmware.protocol import encode_image

    pixels = (np.random.default_rng(9).random(24) < 0.5) * 200
    exchanges = [{"send": encode_frame(Type.IMAGE, encode_image(pixels, "rate", 5, network.config.pixel_bits))}, {"send": encode_frame(Type.VERIFY)}]
    report = run_uart_script(fw_image.pack(network, LANES), exchanges, tmp_path, divisor=_divisor(3_000_000),
                             timeout=TIMEOUT * 4, quiet=4000)
    assert report["replies"] == reference(network, exchanges) and report["overrun"] == 0
    assert FrameDecoder().feed(report["replies"][0])[0].type == Type.RESULT
