"""The device driver: identify, load a model, and run inference over any transport."""

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from firmware import image as fw_image
from firmware.protocol import (MAX_PAYLOAD, PROTOCOL_VERSION, ErrorCode, Frame, FrameDecoder, FrameError, Identity,
                               ProtocolError, Result, Type, encode_frame, encode_steps, split_records)

from .transport import open_transport

__all__ = ["DeviceError", "DeviceTimeout", "Inference", "Device"]


#: Error codes that say a frame was damaged on the way: the request may be repeated.
LINK_ERRORS = frozenset({ErrorCode.BAD_CRC, ErrorCode.OVERSIZE, ErrorCode.TIMEOUT})


class DeviceError(RuntimeError):
    """The device answered with an error, or with something that is not a valid reply.

    Attributes
    ----------
    code : ErrorCode or int or None
        The device's error code, or the reply decoder's for a corrupt reply.
    link : bool
        A frame was damaged on the link (either way); repeating the request may succeed.
    """

    def __init__(self, message, code=None, link=False):
        super().__init__(message)
        self.code, self.link = code, link


class DeviceTimeout(DeviceError):
    """No complete reply within the timeout."""


@dataclass
class Inference:
    """The result of one sample, and what crossed the link for it."""

    scores: np.ndarray
    prediction: int
    input_events: int
    spike_counts: tuple
    cycles: int
    bytes_sent: int


class Device:
    """An SRC accelerator behind a transport.

    Parameters
    ----------
    transport : str or transport object
        A URL for :func:`host.transport.open_transport`, or an opened transport.
    retries : int
        How often a request is repeated after a CRC error on either side.
    """

    def __init__(self, transport, retries=3, baudrate=3_000_000, timeout=2.0):
        self.transport = open_transport(transport, baudrate, timeout) if isinstance(transport, str) else transport
        self.retries = retries
        self._decoder = FrameDecoder()
        self._pending = []
        self.identity = None
        self.image = None

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- frames ------------------------------------------------------------------------------
    def _receive(self):
        """The next frame or error event from the device."""
        while not self._pending:
            chunk = self.transport.read(1)
            if not chunk:
                self._decoder.timeout()
                raise DeviceTimeout(f"no reply from the device within {self.transport.timeout} s", link=True)
            waiting = getattr(getattr(self.transport, "port", None), "in_waiting", 0)
            if waiting:
                chunk += self.transport.read(waiting)
            self._pending += self._decoder.feed(chunk)
        return self._pending.pop(0)

    def _request(self, frames, expect):
        """Send ``frames``; return the payload of the reply of type ``expect`` (see :meth:`_retrying`)."""
        return self._retrying(lambda: self._exchange(frames, expect))

    def _retrying(self, action):
        """``action()``, repeated after :meth:`_resync` (up to ``retries`` times) while a frame
        of it was damaged on the link."""
        for attempt in range(self.retries + 1):
            if attempt:
                self._resync()
            try:
                return action()
            except DeviceError as error:
                if not error.link or attempt == self.retries:
                    if attempt:
                        error.args = (f"{error.args[0]} (after {attempt} retries)",)
                    raise
        raise AssertionError("unreachable")

    def _exchange(self, frames, expect):
        self.transport.write(b"".join(frames))
        event = self._receive()
        if isinstance(event, FrameError):
            raise DeviceError(f"corrupt reply ({event.code.name})", event.code, link=True)
        if event.type == Type.ERROR:
            code, kind, detail = struct.unpack("<BBH", event.payload[:4].ljust(4, b"\0"))
            code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
            name = code.name if isinstance(code, ErrorCode) else f"code {code}"
            raise DeviceError(f"device error {name} for request 0x{kind:02x} (detail {detail})", code,
                              link=code in LINK_ERRORS)
        if event.type != expect:
            raise DeviceError(f"expected reply 0x{int(expect):02x}, got 0x{event.type:02x}")
        return event.payload

    def _resync(self):
        """Bring the link back to a known state after a damaged frame.

        One damaged frame can leave several replies behind it (errors for what the device made
        of the rest of the bytes, a sample's later frames refused), or a frame the device is
        still waiting to complete. ABORT, and everything up to its ``ACK 0`` is stale: the device
        answers in order. A lost ABORT (swallowed by a partial frame) is repeated once the
        device's receive timeout has dropped that frame.
        """
        abort, heard = encode_frame(Type.ABORT), False
        for _ in range(self.retries + 1):
            self.transport.write(abort)
            try:
                while True:
                    event = self._receive()
                    heard = True
                    if (not isinstance(event, FrameError) and event.type == Type.ACK
                            and event.payload == struct.pack("<I", 0)):
                        return
            except DeviceTimeout:
                continue
        if not heard:
            raise DeviceTimeout(f"no reply from the device within {self.transport.timeout} s, "
                                f"nor to {self.retries + 1} ABORTs")
        raise DeviceError(f"the link did not resynchronise after {self.retries + 1} ABORTs", link=True)

    # -- requests ------------------------------------------------------------------------------
    def identify(self):
        """Ask the device what it is; refuses a device that speaks another protocol version."""
        identity = Identity.from_bytes(self._request([encode_frame(Type.IDENTIFY)], Type.IDENTITY))
        if identity.protocol != PROTOCOL_VERSION:
            raise DeviceError(f"the device speaks protocol version {identity.protocol}, this host "
                              f"{PROTOCOL_VERSION}: rebuild the gateware or update the host")
        self.identity = identity
        return self.identity

    def load_model(self, network, force=False):
        """Pack ``network`` for the device's lanes, send it, and check the device's checksum.

        A device that already holds exactly this image (the same CRC-32, e.g. the one baked into
        its bitstream) is left as it is, unless ``force``. Returns the image checksum.
        """
        identity = self.identify()
        if network.config.digest() != identity.config_digest:
            raise DeviceError(f"network uses fixed-point configuration {network.config.digest()[:16]}, "
                              f"the device was built for {identity.config_digest[:16]}")
        image = fw_image.pack(network, identity.lanes)
        blob = fw_image.to_bytes(image)
        if not force and identity.loaded and identity.checksum == fw_image.checksum(blob):
            self.image = image
            return identity.checksum
        # A LOAD cannot be repeated on its own (the device has moved on when only the reply was
        # damaged): a link error restarts the image from offset 0.
        checksum = self._retrying(lambda: self._send_image(blob))
        if checksum != fw_image.checksum(blob):
            raise DeviceError(f"device reports image checksum {checksum:08x}, expected {fw_image.checksum(blob):08x}")
        self.image = image
        return checksum

    def _send_image(self, blob):
        chunk = MAX_PAYLOAD - 4
        for offset in range(0, len(blob), chunk):
            held, = struct.unpack("<I", self._exchange(
                [encode_frame(Type.LOAD, struct.pack("<I", offset) + blob[offset:offset + chunk])], Type.ACK))
            if held != min(len(blob), offset + chunk):
                raise DeviceError(f"device holds {held} image bytes, expected {min(len(blob), offset + chunk)}")
        checksum, = struct.unpack("<I", self._exchange(
            [encode_frame(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)))], Type.LOADED))
        return checksum

    def verify(self):
        """``(loaded, checksum)`` of the model the device holds."""
        loaded, checksum = struct.unpack("<BI", self._request([encode_frame(Type.VERIFY)], Type.CHECKSUM))
        return bool(loaded), checksum

    def infer(self, spikes):
        """Run one sample: ``spikes`` is ``(T, n_inputs)`` bool (binary) or integer amplitudes."""
        if self.image is None:
            raise DeviceError("no model loaded: call load_model first")
        spikes = np.asarray(spikes)
        expected = (self.image.n_steps, self.image.layers[0].n_in)
        if spikes.shape != expected:
            raise ValueError(f"a sample must have shape {expected} (T, inputs), got {spikes.shape}")
        frames = [encode_frame(Type.STEPS, p) for p in split_records(encode_steps(spikes, self.image.config.one))]
        try:
            payload = self._request(frames, Type.RESULT)
        except DeviceError as error:
            if error.code is not None:
                self._request([encode_frame(Type.ABORT)], Type.ACK)
            raise
        result = Result.from_bytes(payload)
        return Inference(np.array(result.scores), result.prediction, result.input_events, result.spike_counts,
                         result.cycles, sum(map(len, frames)))
