"""The device driver: identify, load a model, and run inference over any transport."""

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from firmware import image as fw_image
from firmware.protocol import (FRAME_OVERHEAD, MAX_PAYLOAD, PROTOCOL_VERSION, ErrorCode, FrameDecoder, FrameError,
                               Identity, Result, Type, encode_frame, encode_image, encode_steps, split_records)

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

    Every request frame gets the next sequence number, and a reply counts only if it carries the
    number of the request in flight (an error reply: of any of its frames). Anything else in the
    byte stream is a stale reply to an earlier request, left behind by a damaged frame or by
    someone else's bytes on the line, and is skipped (counted in :attr:`stale_replies`). A reply
    that does belong to the request but is damaged, of the wrong type, or a link error from the
    device, makes the driver resynchronise (ABORT, then everything up to that ABORT's ACK is
    stale) and repeat the request, up to ``retries`` times.

    Parameters
    ----------
    transport : str or transport object
        A URL for :func:`host.transport.open_transport`, or an opened transport.
    retries : int
        How often a request is repeated after a link error or an out-of-step reply.
    baudrate : int
        Line rate of a serial port.
    timeout : float
        Seconds to wait for a reply.
    """

    def __init__(self, transport, retries=3, baudrate=12_000_000, timeout=2.0):
        self.transport = open_transport(transport, baudrate, timeout) if isinstance(transport, str) else transport
        self.retries = retries
        self._decoder = FrameDecoder()
        self._pending = []
        self._seq = 0
        self.stale_replies = 0
        self.identity = None
        self.image = None

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- frames ------------------------------------------------------------------------------
    def _frames(self, requests):
        """Frame ``(type, payload)`` requests with the next sequence numbers; returns ``(bytes, seqs)``."""
        frames, seqs = [], []
        for type_, payload in requests:
            self._seq = (self._seq + 1) & 0xFF
            frames.append(encode_frame(type_, payload, self._seq))
            seqs.append(self._seq)
        return b"".join(frames), seqs

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

    def _request(self, requests, expect):
        """Send ``requests`` (``(type, payload)`` pairs); return the payload of the reply of type ``expect``."""
        return self._retrying(lambda: self._exchange(requests, expect))

    def _retrying(self, action):
        """``action()``, repeated after :meth:`_resync` (up to ``retries`` times) while a frame
        of it was damaged on the link or the device's answer was out of step."""
        for attempt in range(self.retries + 1):
            if attempt:
                try:
                    self._resync()
                except DeviceError as failure:
                    failure.args = (f"{failure.args[0]} (after: {last})",)
                    raise
            try:
                return action()
            except DeviceError as error:
                if not error.link or attempt == self.retries:
                    if attempt:
                        error.args = (f"{error.args[0]} (after {attempt} retries)",)
                    raise
                last = error.args[0]
        raise AssertionError("unreachable")

    def _exchange(self, requests, expect):
        data, seqs = self._frames(requests)
        self.transport.write(data)
        while True:
            event = self._receive()
            if isinstance(event, FrameError):
                raise DeviceError(f"corrupt reply ({event.code.name})", event.code, link=True)
            if event.type == Type.ERROR:
                code, kind, detail = struct.unpack("<BBH", event.payload[:4].ljust(4, b"\0"))
                code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
                name = code.name if isinstance(code, ErrorCode) else f"code {code}"
                if code in LINK_ERRORS:
                    # Some frame was damaged on the way: whether ours or not, resync and repeat.
                    raise DeviceError(f"device error {name} for request 0x{kind:02x}", code, link=True)
                if event.seq not in seqs:
                    self.stale_replies += 1
                    continue
                # SEQUENCE: the device was in another state than the request assumes (a sample of
                # someone else's in progress, a load elsewhere): out of step, so resync and repeat.
                raise DeviceError(f"device error {name} for request 0x{kind:02x} (detail {detail})", code,
                                  link=code == ErrorCode.SEQUENCE)
            if event.seq != seqs[-1]:
                self.stale_replies += 1
                continue
            if event.type != expect:
                raise DeviceError(f"expected reply 0x{int(expect):02x} to request {seqs[-1]}, got 0x{event.type:02x}",
                                  link=True)
            return event.payload

    def _resync(self):
        """Bring the link back to a known state: ABORT, and everything before its ACK is stale.

        A lost ABORT (swallowed by a partial frame) is repeated once the device's receive timeout
        has dropped that frame.
        """
        heard = False
        for _ in range(self.retries + 1):
            data, (seq,) = self._frames([(Type.ABORT, b"")])
            self.transport.write(data)
            try:
                while True:
                    event = self._receive()
                    heard = True
                    if (not isinstance(event, FrameError) and event.type == Type.ACK and event.seq == seq
                            and event.payload == struct.pack("<I", 0)):
                        return
                    self.stale_replies += 1
            except DeviceTimeout:
                continue
        if not heard:
            raise DeviceTimeout(f"no reply from the device within {self.transport.timeout} s, "
                                f"nor to {self.retries + 1} ABORTs")
        raise DeviceError(f"the link did not resynchronise after {self.retries + 1} ABORTs", link=True)

    # -- requests ------------------------------------------------------------------------------
    def identify(self):
        """Ask the device what it is; refuses a device that speaks another protocol version."""
        identity = Identity.from_bytes(self._request([(Type.IDENTIFY, b"")], Type.IDENTITY))
        if identity.protocol != PROTOCOL_VERSION:
            raise DeviceError(f"the device speaks protocol version {identity.protocol}, this host "
                              f"{PROTOCOL_VERSION}: rebuild the gateware or update the host")
        self.identity = identity
        return self.identity

    def rules(self, config):
        """The :class:`firmware.image.DeviceRules` of the identified device, for networks in ``config``."""
        i = self.identity or self.identify()
        limits = fw_image.DeviceLimits(i.layers, i.max_inputs, i.max_neurons, i.weight_words, i.state_blocks,
                                       i.max_steps, i.recurrent_layers)
        return fw_image.DeviceRules(config, i.lanes, i.layers, i.classes, limits)

    def load_model(self, network, force=False):
        """Pack ``network`` for the device's lanes, check that it fits, send it, and check the device's checksum.

        A device that already holds exactly this image (the same CRC-32, e.g. the one baked into
        its bitstream) is left as it is, unless ``force``. Returns the image checksum.
        """
        identity = self.identify()
        if network.config.digest() != identity.config_digest:
            raise DeviceError(f"network uses fixed-point configuration {network.config.digest()[:16]}, "
                              f"the device was built for {identity.config_digest[:16]}")
        image = fw_image.pack(network, identity.lanes)
        blob = fw_image.to_bytes(image)
        rules = self.rules(network.config)
        problems = rules.limits.problems(image)
        if len(image.layers) != identity.layers:
            problems.insert(0, f"{len(image.layers)} layers, the device computes {identity.layers}")
        if image.n_classes != identity.classes:
            problems.insert(0, f"{image.n_classes} classes, the device has {identity.classes}")
        if problems:
            raise DeviceError("the model does not fit the device: " + "; ".join(problems))
        try:
            rules.validate(blob)
        except fw_image.ImageError as error:
            raise DeviceError(f"the device would refuse this model: {error}") from None
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
                [(Type.LOAD, struct.pack("<I", offset) + blob[offset:offset + chunk])], Type.ACK))
            if held != min(len(blob), offset + chunk):
                raise DeviceError(f"device holds {held} image bytes, expected {min(len(blob), offset + chunk)}")
        checksum, = struct.unpack("<I", self._exchange(
            [(Type.COMMIT, struct.pack("<II", len(blob), zlib.crc32(blob)))], Type.LOADED))
        return checksum

    def verify(self):
        """``(loaded, checksum)`` of the model the device holds."""
        loaded, checksum = struct.unpack("<BI", self._request([(Type.VERIFY, b"")], Type.CHECKSUM))
        return bool(loaded), checksum

    def abort(self):
        """Abandon any sample in progress on the device."""
        self._request([(Type.ABORT, b"")], Type.ACK)

    def infer(self, spikes):
        """Run one sample: ``spikes`` is ``(T, n_inputs)`` bool (binary) or integer amplitudes."""
        if self.image is None:
            raise DeviceError("no model loaded: call load_model first")
        spikes = np.asarray(spikes)
        expected = (self.image.n_steps, self.image.layers[0].n_in)
        if spikes.shape != expected:
            raise ValueError(f"a sample must have shape {expected} (T, inputs), got {spikes.shape}")
        requests = [(Type.STEPS, p) for p in split_records(encode_steps(spikes, self.image.config.one))]
        try:
            payload = self._request(requests, Type.RESULT)
        except DeviceError as error:
            if error.code is not None:
                self.abort()  # the device may hold part of the sample
            raise
        result = Result.from_bytes(payload)
        return Inference(np.array(result.scores), result.prediction, result.input_events, result.spike_counts,
                         result.cycles, sum(len(p) + FRAME_OVERHEAD for _, p in requests))

    def infer_image(self, pixels, encoding, seed=0):
        """Run one image, encoded on the device: ``pixels`` ``(n_inputs,)`` of ``pixel_bits`` bits,
        ``encoding`` ``rate`` (drawn from ``seed``) or ``latency``."""
        if self.image is None:
            raise DeviceError("no model loaded: call load_model first")
        pixels = np.asarray(pixels)
        if pixels.shape != (self.image.layers[0].n_in,):
            raise ValueError(f"an image must have shape ({self.image.layers[0].n_in},), got {pixels.shape}")
        payload = encode_image(pixels, encoding, seed, self.image.config.pixel_bits)
        result = Result.from_bytes(self._request([(Type.IMAGE, payload)], Type.RESULT))
        return Inference(np.array(result.scores), result.prediction, result.input_events, result.spike_counts,
                         result.cycles, len(payload) + FRAME_OVERHEAD)
