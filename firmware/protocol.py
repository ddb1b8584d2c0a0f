"""The link protocol between host and device: frames, messages and the spike-stream encoding.

Frame
-----
::

    0xA5 | type (1) | length (2, LE) | payload (length bytes) | CRC-16 (2, BE)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection) over
type, length and payload. ``length`` is at most :data:`MAX_PAYLOAD`. A receiver that sees a
bad CRC or an oversize length answers :data:`ERROR` and looks for the next ``0xA5``; a frame
cut short is dropped when the line has been idle for the receiver's timeout.

Messages (host request -> device reply)
---------------------------------------
=============  =====  ===============================  ==================================
request        type   request payload                  reply
=============  =====  ===============================  ==================================
IDENTIFY       0x01   -                                IDENTITY 0x81
LOAD           0x02   offset u32, image bytes          ACK 0x80: bytes held u32
COMMIT         0x03   length u32, CRC-32 u32           LOADED 0x83: CRC-32 u32
VERIFY         0x04   -                                CHECKSUM 0x84: loaded u8, CRC-32 u32
STEPS          0x05   flags u8, step records           after the sample's last step: RESULT 0x85
ABORT          0x06   -                                ACK 0x80: 0
=============  =====  ===============================  ==================================

Any request may instead get ERROR 0xFF: code u8, offending type u8, detail u16.

Reply payloads (integers little-endian)
---------------------------------------
* IDENTITY: protocol version u8 (:data:`PROTOCOL_VERSION`), lanes u16, max layers u8, max
  inputs u16, max neurons u16, weight words u32, state blocks u32, SHA-256 digest of the
  fixed-point configuration (32 bytes), loaded u8, CRC-32 of the loaded image u32.
* RESULT: classes ``C`` u8, ``C`` scores i32, prediction u8, input events u32, layers ``L``
  u8, ``L`` spike counts u32 (events each layer emitted), core cycles u32.
* ERROR codes: 1 BAD_CRC, 2 OVERSIZE, 3 UNKNOWN_TYPE, 4 BAD_PAYLOAD, 5 NO_MODEL, 6 BAD_IMAGE,
  7 SEQUENCE, 8 TIMEOUT.

Step records (in STEPS; bit 0 of flags marks the first frame of a sample)
--------------------------------------------------------------------------
=========  =================================================================
``0x00+n`` ``n+1`` silent steps (``n`` < 64)
``0x40``   index list: count u16, then ``count`` input indices u16, ascending
``0x41``   bitmap: ``ceil(n_inputs/8)`` bytes, input ``j`` is bit ``j % 8`` of byte ``j // 8``
``0x42``   graded list: count u16, then ``count`` pairs (index u16, amplitude u16)
``0x80+n`` gap list: ``n+1`` events (``n`` < 128), each a gap code, ascending
=========  =================================================================

A gap code is the distance ``g`` from the previous event's index plus one (from 0 for the
first event of the step): one byte ``g`` when ``g`` < 128, else two bytes ``0x80 | g >> 8``,
``g & 0xFF`` (``g`` < 32768). Heads ``0x43 .. 0x7F`` are reserved.

Binary steps use the shortest of the gap list, the index list and the bitmap (ties in that
order). A sample is exactly ``T`` steps, carried in one or more STEPS frames that each hold
whole records.
"""

import binascii
import enum
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SYNC", "RECORD_SILENT_LIMIT", "RECORD_INDEX_LIST", "RECORD_BITMAP", "RECORD_GRADED_LIST", "RECORD_GAP_LIST",
    "GAP_LIST_MAX_EVENTS", "GAP_SHORT_LIMIT", "GAP_MAX", "MAX_PAYLOAD", "PROTOCOL_VERSION", "Type", "ErrorCode",
    "ProtocolError", "Frame", "FrameError",
    "crc16", "encode_frame", "FrameDecoder", "encode_steps", "decode_steps", "split_records",
    "Identity", "Result",
]

SYNC = 0xA5
#: Step-record heads: silent runs are ``0x00 .. RECORD_SILENT_LIMIT - 1``.
RECORD_SILENT_LIMIT, RECORD_INDEX_LIST, RECORD_BITMAP, RECORD_GRADED_LIST = 0x40, 0x40, 0x41, 0x42
#: Gap-list heads are ``RECORD_GAP_LIST + n`` for ``n + 1`` events, up to ``GAP_LIST_MAX_EVENTS``.
RECORD_GAP_LIST, GAP_LIST_MAX_EVENTS = 0x80, 128
#: Gaps below ``GAP_SHORT_LIMIT`` take one byte, the rest (up to ``GAP_MAX``) two.
GAP_SHORT_LIMIT, GAP_MAX = 0x80, 0x7FFF
MAX_PAYLOAD = 4096
PROTOCOL_VERSION = 2


class Type(enum.IntEnum):
    IDENTIFY = 0x01
    LOAD = 0x02
    COMMIT = 0x03
    VERIFY = 0x04
    STEPS = 0x05
    ABORT = 0x06
    ACK = 0x80
    IDENTITY = 0x81
    LOADED = 0x83
    CHECKSUM = 0x84
    RESULT = 0x85
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    BAD_CRC = 1
    OVERSIZE = 2
    UNKNOWN_TYPE = 3
    BAD_PAYLOAD = 4
    NO_MODEL = 5
    BAD_IMAGE = 6
    SEQUENCE = 7
    TIMEOUT = 8


class ProtocolError(ValueError):
    """A malformed payload or an error reply."""


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes


@dataclass(frozen=True)
class FrameError:
    """What a receiver reports instead of a frame: ``code`` and the frame type if known."""

    code: ErrorCode
    type: int = 0
    detail: int = 0


def crc16(data):
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def encode_frame(type_, payload=b""):
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = struct.pack("<BH", int(type_), len(payload)) + payload
    return bytes([SYNC]) + body + struct.pack(">H", crc16(body))


class FrameDecoder:
    """A byte-stream receiver: :meth:`feed` bytes, get :class:`Frame` and :class:`FrameError` events.

    It resynchronises on the next ``0xA5`` after a bad CRC or an oversize length; :meth:`timeout`
    (called by the owner when the line has been idle) drops a frame cut short.
    """

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buffer = bytearray()

    @property
    def idle(self):
        return not self._buffer

    def timeout(self):
        """The line went idle mid-frame: drop that frame's start and rescan what followed it.

        Returns the events: a TIMEOUT error for the dropped frame (none if nothing was pending),
        then any frames found in the bytes after it (a corrupt header may have swallowed them).
        """
        if not self._buffer:
            return []
        kind = self._buffer[1] if len(self._buffer) > 1 else 0
        rest = bytes(self._buffer[1:])
        self._buffer.clear()
        return [FrameError(ErrorCode.TIMEOUT, kind)] + self.feed(rest)

    def feed(self, data):
        self._buffer += data
        events = []
        while True:
            start = self._buffer.find(SYNC)
            if start < 0:
                self._buffer.clear()
                return events
            del self._buffer[:start]
            if len(self._buffer) < 4:
                return events
            kind, length = self._buffer[1], int.from_bytes(self._buffer[2:4], "little")
            if length > self.max_payload:
                events.append(FrameError(ErrorCode.OVERSIZE, kind, min(length, 0xFFFF)))
                del self._buffer[:1]
                continue
            end = 4 + length + 2
            if len(self._buffer) < end:
                return events
            body, crc = bytes(self._buffer[1:4 + length]), int.from_bytes(self._buffer[4 + length:end], "big")
            if crc16(body) != crc:
                events.append(FrameError(ErrorCode.BAD_CRC, kind))
                del self._buffer[:1]
                continue
            events.append(Frame(kind, body[3:]))
            del self._buffer[:end]


# -- step records --------------------------------------------------------------------------------

def encode_steps(amplitudes, one):
    """Encode one sample's ``(T, n_inputs)`` amplitudes (binary spikes are ``one``, or bool) as step records.

    Returns a list of ``bytes`` records, one per step or silent run.
    """
    amplitudes = np.asarray(amplitudes)
    if amplitudes.dtype == bool:
        amplitudes = amplitudes.astype(np.int64) * one
    if amplitudes.ndim != 2:
        raise ProtocolError(f"a sample is (T, n_inputs), got shape {amplitudes.shape}")
    if amplitudes.min(initial=0) < 0 or amplitudes.max(initial=0) > one:
        raise ProtocolError(f"amplitudes must lie in [0, {one}]")
    n_inputs = amplitudes.shape[1]
    if n_inputs > 0xFFFF:
        raise ProtocolError(f"{n_inputs} inputs do not fit 16-bit indices")
    records, silent = [], 0
    for step in amplitudes:
        active = np.flatnonzero(step)
        if active.size == 0:
            silent += 1
            if silent == 64:
                records.append(bytes([63]))
                silent = 0
            continue
        if silent:
            records.append(bytes([silent - 1]))
            silent = 0
        if (step[active] != one).any():
            pairs = np.stack([active, step[active]], axis=1).astype("<u2")
            records.append(struct.pack("<BH", RECORD_GRADED_LIST, active.size) + pairs.tobytes())
        else:
            candidates = [struct.pack("<BH", RECORD_INDEX_LIST, active.size) + active.astype("<u2").tobytes(),
                          bytes([RECORD_BITMAP]) + np.packbits(step != 0, bitorder="little").tobytes()]
            gaps = _gap_list(active)
            if gaps is not None:
                candidates.insert(0, gaps)
            records.append(min(candidates, key=len))
    if silent:
        records.append(bytes([silent - 1]))
    return records


def _gap_list(active):
    """The gap-list record of ascending indices ``active``, or None when they cannot be one."""
    if active.size > GAP_LIST_MAX_EVENTS:
        return None
    gaps = np.diff(active, prepend=-1) - 1
    if gaps.max() > GAP_MAX:
        return None
    record = bytearray([RECORD_GAP_LIST + active.size - 1])
    for gap in gaps.tolist():
        record += bytes([gap]) if gap < GAP_SHORT_LIMIT else bytes([GAP_SHORT_LIMIT | gap >> 8, gap & 0xFF])
    return bytes(record)


def split_records(records, limit=MAX_PAYLOAD - 1):
    """Group records into STEPS payloads of at most ``limit + 1`` bytes (flags byte first)."""
    payloads, current = [], bytearray()
    for record in records:
        if len(record) > limit:
            raise ProtocolError(f"a step record of {len(record)} bytes exceeds a frame")
        if len(current) + len(record) > limit:
            payloads.append(current)
            current = bytearray()
        current += record
    payloads.append(current)
    return [bytes([1 if k == 0 else 0]) + bytes(p) for k, p in enumerate(payloads)]


def decode_steps(payload, n_inputs, one):
    """Decode the records of one STEPS payload (after its flags byte) into per-step event lists.

    Each step is a list of ``(index, amplitude)``. Raises :class:`ProtocolError` on a truncated
    record, an index past ``n_inputs``, an amplitude past ``one`` or indices out of order.
    """
    steps, pos, data = [], 0, bytes(payload)
    bitmap_len = (n_inputs + 7) // 8
    while pos < len(data):
        head = data[pos]
        pos += 1
        if head < RECORD_SILENT_LIMIT:
            steps += [[] for _ in range(head + 1)]
        elif head in (RECORD_INDEX_LIST, RECORD_GRADED_LIST):
            if pos + 2 > len(data):
                raise ProtocolError("truncated step record")
            count = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
            width = 2 if head == RECORD_INDEX_LIST else 4
            if pos + width * count > len(data):
                raise ProtocolError("truncated step record")
            values = np.frombuffer(data, "<u2", count * width // 2, pos).astype(np.int64)
            pos += width * count
            index, amp = (values, np.full(count, one)) if head == RECORD_INDEX_LIST else (values[0::2], values[1::2])
            if count and (index.max() >= n_inputs or (np.diff(index) <= 0).any()):
                raise ProtocolError(f"step indices must be ascending and below {n_inputs}")
            if count and (amp.max() > one or amp.min() < 1):
                raise ProtocolError(f"amplitudes must lie in [1, {one}]")
            steps.append(list(zip(index.tolist(), amp.tolist())))
        elif head >= RECORD_GAP_LIST:
            index, events = 0, []
            for _ in range(head - RECORD_GAP_LIST + 1):
                if pos >= len(data):
                    raise ProtocolError("truncated step record")
                gap = data[pos]
                pos += 1
                if gap >= GAP_SHORT_LIMIT:
                    if pos >= len(data):
                        raise ProtocolError("truncated step record")
                    gap = (gap - GAP_SHORT_LIMIT) << 8 | data[pos]
                    pos += 1
                index += gap
                if index >= n_inputs:
                    raise ProtocolError(f"step indices must be ascending and below {n_inputs}")
                events.append((index, one))
                index += 1
            steps.append(events)
        elif head == RECORD_BITMAP:
            if pos + bitmap_len > len(data):
                raise ProtocolError("truncated step record")
            bits = np.unpackbits(np.frombuffer(data, np.uint8, bitmap_len, pos), bitorder="little")
            pos += bitmap_len
            if bits[n_inputs:].any():
                raise ProtocolError(f"bitmap sets inputs past {n_inputs}")
            steps.append([(int(j), one) for j in np.flatnonzero(bits[:n_inputs])])
        else:
            raise ProtocolError(f"unknown step record 0x{head:02x}")
    return steps


# -- reply payloads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """The IDENTITY reply: what the device is and what it holds."""

    protocol: int
    lanes: int
    max_layers: int
    max_inputs: int
    max_neurons: int
    weight_words: int
    state_blocks: int
    config_digest: str
    loaded: bool
    checksum: int
    _FORMAT = struct.Struct("<BHBHHII32sBI")

    def to_bytes(self):
        return self._FORMAT.pack(self.protocol, self.lanes, self.max_layers, self.max_inputs, self.max_neurons,
                                 self.weight_words, self.state_blocks, bytes.fromhex(self.config_digest),
                                 int(self.loaded), self.checksum)

    @classmethod
    def from_bytes(cls, data):
        if len(data) != cls._FORMAT.size:
            raise ProtocolError(f"IDENTITY payload is {len(data)} bytes, expected {cls._FORMAT.size}")
        f = cls._FORMAT.unpack(data)
        return cls(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7].hex(), bool(f[8]), f[9])


@dataclass(frozen=True)
class Result:
    """The RESULT reply: class scores, prediction and activity counters of one sample."""

    scores: tuple
    prediction: int
    input_events: int
    spike_counts: tuple
    cycles: int

    def to_bytes(self):
        return (struct.pack("<B", len(self.scores)) + struct.pack(f"<{len(self.scores)}i", *self.scores)
                + struct.pack("<BIB", self.prediction, self.input_events, len(self.spike_counts))
                + struct.pack(f"<{len(self.spike_counts)}I", *self.spike_counts) + struct.pack("<I", self.cycles))

    @classmethod
    def from_bytes(cls, data):
        try:
            n = data[0]
            scores = struct.unpack_from(f"<{n}i", data, 1)
            pos = 1 + 4 * n
            prediction, events, n_layers = struct.unpack_from("<BIB", data, pos)
            pos += 6
            counts = struct.unpack_from(f"<{n_layers}I", data, pos)
            pos += 4 * n_layers
            (cycles,) = struct.unpack_from("<I", data, pos)
            if pos + 4 != len(data):
                raise ProtocolError("RESULT payload has trailing bytes")
        except (IndexError, struct.error):
            raise ProtocolError(f"RESULT payload of {len(data)} bytes is malformed") from None
        return cls(scores, prediction, events, counts, cycles)
