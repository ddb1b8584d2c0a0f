"""The device contract held to the gateware: the same requests to the emulator and to the device's Verilog.

:func:`image_parity` sends every image of a corpus (:mod:`sim.image_corpus`) to both, each as
LOAD frames, COMMIT, VERIFY, a sample (STEPS) and an IMAGE for whatever the device then holds, and
compares the reply bytes. The gateware is :class:`hdl.device.SRCDevice` simulated under cocotb
(:class:`sim.link_runner.RTLDeviceServer`), the reference is :class:`sim.emulator.DeviceModel`.
"""

import socket
import struct
import time
import zlib

import numpy as np

from firmware import image as fw_image
from firmware.protocol import FrameDecoder, Type, encode_frame, encode_image, encode_steps, split_records

from .emulator import DeviceModel

__all__ = ["image_script", "image_parity"]


def image_script(blob, chunk=700):
    """The requests for one image: LOAD chunks, COMMIT and VERIFY, as ``(type, payload)`` pairs."""
    frames = [(Type.LOAD, struct.pack("<I", k) + blob[k:k + chunk]) for k in range(0, len(blob), chunk)] or [
        (Type.LOAD, struct.pack("<I", 0))]
    frames.append((Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob))))
    frames.append((Type.VERIFY, b""))
    return frames


def _exchange(conn, decoder, data, count, deadline):
    conn.sendall(data)
    events = []
    conn.settimeout(1.0)
    while len(events) < count:
        if time.monotonic() > deadline:
            break
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        events += decoder.feed(chunk)
    return events


def image_parity(baked, corpus, lanes=4, limits=None, simulator=None, seed=0, timeout_per_image=120.0, log=None):
    """Feed ``corpus`` (``(mutation, blob, accepted)`` items) to the emulator and to the RTL device.

    Returns ``{"cases", "mismatches", "accepted", "examples"}``: ``examples`` lists up to ten
    mismatching cases (mutation, both replies).
    """
    from .link_runner import RTLDeviceServer

    image = fw_image.pack(baked, lanes)
    reference = DeviceModel(image, limits)
    server = RTLDeviceServer(baked, lanes, limits=limits, simulator=simulator)
    rng = np.random.default_rng(seed)
    mismatches, accepted, examples, seq = 0, 0, [], 0
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            decoder = FrameDecoder()
            for case, (mutation, blob, _) in enumerate(corpus):
                frames = image_script(blob)
                # The reference answers first: what it then holds decides the sample sent to both.
                data, expected = b"", b""
                for type_, payload in frames:
                    seq = (seq + 1) & 0xFF
                    frame = encode_frame(type_, payload, seq)
                    data += frame
                    expected += reference.respond(FrameDecoder().feed(frame))
                held = reference.loaded[0] if reference.loaded else image   # without a model: NO_MODEL
                spikes = rng.random((held.n_steps, held.layers[0].n_in)) < 0.3
                payloads = [(Type.STEPS, p) for p in split_records(encode_steps(spikes, held.config.one), limit=200)]
                # ...and an image, which the device encodes with the tables it now holds.
                pixels = (rng.random(held.layers[0].n_in) < 0.4) * rng.integers(1, 1 << held.config.pixel_bits,
                                                                                 held.layers[0].n_in)
                payloads.append((Type.IMAGE, encode_image(pixels, ("rate", "latency")[case % 2], case,
                                                          held.config.pixel_bits)))
                for type_, payload in payloads:
                    seq = (seq + 1) & 0xFF
                    frame = encode_frame(type_, payload, seq)
                    data += frame
                    expected += reference.respond(FrameDecoder().feed(frame))
                accepted += reference.loaded is not None
                want = FrameDecoder().feed(expected)
                got = _exchange(conn, decoder, data, len(want), time.monotonic() + timeout_per_image)
                if got != want:
                    mismatches += 1
                    if len(examples) < 10:
                        examples.append({"case": case, "mutation": mutation, "emulator": [repr(e) for e in want],
                                         "gateware": [repr(e) for e in got]})
                if log:
                    log(case, mutation, got == want)
    finally:
        server.shutdown()
    return {"cases": len(corpus), "mismatches": mismatches, "accepted": accepted, "examples": examples}
