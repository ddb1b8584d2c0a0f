"""The link protocol between host and device: frames, messages and the spike-stream encoding.

Frame
-----
::

    0xA5 | type (1) | seq (1) | length (2, LE) | payload (length bytes) | CRC-16 (2, BE)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection) over
type, seq, length and payload. ``length`` is at most :data:`MAX_PAYLOAD`. ``seq`` is the
host's number for a request frame; every reply carries the ``seq`` of the frame it answers
(RESULT: of the sample's last STEPS frame), so a host recognises a stale reply for what it is.

Receiving (device and host alike, :class:`FrameDecoder`): bytes are dropped until ``0xA5``;
then type, seq and length are read. A length above :data:`MAX_PAYLOAD` is reported as
OVERSIZE and the hunt for ``0xA5`` resumes with the next byte. Otherwise payload and CRC are
read, and a CRC mismatch is reported as BAD_CRC, the hunt resuming after the frame's last
byte. A frame cut short is dropped, with a TIMEOUT report, when the line has been idle for the
receiver's timeout. Each report carries the type and seq read so far (0 when not yet read).

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
IMAGE          0x07   flags u8, seed u32, pixels       RESULT 0x85
=============  =====  ===============================  ==================================

Any request may instead get ERROR 0xFF: code u8, offending type u8, detail u16.

Reply payloads (integers little-endian)
---------------------------------------
* IDENTITY: protocol version u8 (:data:`PROTOCOL_VERSION`), lanes u16, layers u8, classes u8,
  max inputs u16, max neurons u16, max steps u16, weight words u32, state blocks u32, recurrent
  layers u16 (bit ``k``: layer ``k`` is built recurrent; an image must have exactly these), SHA-256
  digest of the fixed-point configuration (32 bytes), loaded u8, CRC-32 of the loaded image u32.
  Layers and classes are those the device computes; the rest bound what it can load
  (:class:`firmware.image.DeviceRules`).
* RESULT: classes ``C`` u8, ``C`` scores i32, prediction u8, input events u32, layers ``L``
  u8, ``L`` spike counts u32 (events each layer emitted), core cycles u32.
* ERROR codes: 1 BAD_CRC, 2 OVERSIZE, 3 UNKNOWN_TYPE, 4 BAD_PAYLOAD, 5 NO_MODEL, 6 BAD_IMAGE,
  7 SEQUENCE, 8 TIMEOUT. (BAD_IMAGE is about the device image of LOAD/COMMIT; a malformed IMAGE
  message is BAD_PAYLOAD.)

Images (IMAGE)
--------------
One sample as an image, which the device encodes into input spikes itself with the encoders of
the loaded image (:mod:`quant.intencode`; the tables travel in the device image). ``flags`` bit
0 picks the encoding (0 rate, 1 latency), its other bits are 0; ``seed`` seeds the rate coder
(the host reproduces the device's spikes from it). The pixels, ``n_inputs`` values of
``pixel_bits`` bits, follow as a bit stream, the most significant bit of each byte first
(:func:`encode_image`). For each non-zero pixel in index order come two codes:

* the number ``r`` of zero pixels before it (since the previous coded pixel, or the first pixel)
  as an order-0 exp-Golomb code: ``z`` zero bits, then the ``z + 1`` bits of ``r + 1``, where
  ``z = floor(log2(r + 1))``;
* its value: a 1 bit for the top value ``2**pixel_bits - 1``, else a 0 bit and the value in
  ``pixel_bits`` bits.

Pixels after the last coded one are zero; the stream ends with zero bits to the end of its last
byte. The payload is malformed (BAD_PAYLOAD) when a coded pixel lies at or past ``n_inputs``, a
coded value is 0, a run code has more than :data:`IMAGE_PREFIX_LIMIT` leading zeros, or the
payload ends inside a code other than in a run code's leading zeros. (Latency-coded MNIST at the
shipped 4-bit pixels: about 93 bytes of pixels per image; rate-coded at 8 bits: about 195.)
An IMAGE while a STEPS sample is in progress drops that sample and is
answered SEQUENCE detail 3.

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
    "ProtocolError", "Frame", "FrameError", "FRAME_OVERHEAD",
    "crc16", "encode_frame", "FrameDecoder", "encode_image", "decode_image", "IMAGE_RATE", "IMAGE_LATENCY", "IMAGE_HEADER_SIZE",
    "IMAGE_PREFIX_LIMIT", "encode_steps", "decode_steps", "iter_step_records", "split_records",
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
PROTOCOL_VERSION = 6


class Type(enum.IntEnum):
    IDENTIFY = 0x01
    LOAD = 0x02
    COMMIT = 0x03
    VERIFY = 0x04
    STEPS = 0x05
    ABORT = 0x06
    IMAGE = 0x07
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
    """A received frame."""

    type: int
    payload: bytes
    seq: int = 0


@dataclass(frozen=True)
class FrameError:
    """What a receiver reports instead of a frame: ``code``, and the frame's type and seq as far as read."""

    code: ErrorCode
    type: int = 0
    detail: int = 0
    seq: int = 0


def crc16(data):
    """CRC-16/CCITT-FALSE."""
    return binascii.crc_hqx(bytes(data), 0xFFFF)


#: Bytes of a frame around its payload: sync, type, seq, length (2), CRC (2).
FRAME_OVERHEAD = 7


def encode_frame(type_, payload=b"", seq=0):
    """The bytes of one frame."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    body = struct.pack("<BBH", int(type_), seq & 0xFF, len(payload)) + payload
    return bytes([SYNC]) + body + struct.pack(">H", crc16(body))


class FrameDecoder:
    """A byte-stream receiver: :meth:`feed` bytes, get :class:`Frame` and :class:`FrameError` events.

    The receiver of the module docstring, state for state that of the gateware
    (:class:`hdl.framing.FrameReceiver`): both find the same frames and report the same errors
    in any byte stream. :meth:`timeout` is called by the owner when the line has been idle.
    """

    _HUNT, _TYPE, _SEQ, _LENGTH_LOW, _LENGTH_HIGH, _PAYLOAD, _CRC_HIGH, _CRC_LOW = range(8)

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self._state = self._HUNT
        self._type = self._seq = self._length = self._crc_high = 0
        self._payload = bytearray()

    @property
    def idle(self):
        """No frame is in progress."""
        return self._state == self._HUNT

    def timeout(self):
        """The line went idle: a frame in progress is dropped. Returns its TIMEOUT report (or nothing)."""
        if self._state == self._HUNT:
            return []
        self._state = self._HUNT
        return [FrameError(ErrorCode.TIMEOUT, self._type, 0, self._seq)]

    def feed(self, data):
        events, data, pos = [], bytes(data), 0
        while pos < len(data):
            state = self._state
            if state == self._PAYLOAD:
                # The bulk of the bytes: taken a slice at a time.
                take = min(self._length - len(self._payload), len(data) - pos)
                self._payload += data[pos:pos + take]
                pos += take
                if len(self._payload) == self._length:
                    self._state = self._CRC_HIGH
                continue
            byte = data[pos]
            pos += 1
            if state == self._HUNT:
                if byte == SYNC:
                    self._type = self._seq = 0
                    self._state = self._TYPE
            elif state == self._TYPE:
                self._type, self._state = byte, self._SEQ
            elif state == self._SEQ:
                self._seq, self._state = byte, self._LENGTH_LOW
            elif state == self._LENGTH_LOW:
                self._length, self._state = byte, self._LENGTH_HIGH
            elif state == self._LENGTH_HIGH:
                self._length |= byte << 8
                if self._length > self.max_payload:
                    events.append(FrameError(ErrorCode.OVERSIZE, self._type, self._length, self._seq))
                    self._state = self._HUNT
                else:
                    self._payload = bytearray()
                    self._state = self._PAYLOAD if self._length else self._CRC_HIGH
            elif state == self._CRC_HIGH:
                self._crc_high, self._state = byte, self._CRC_LOW
            else:  # _CRC_LOW
                body = struct.pack("<BBH", self._type, self._seq, self._length) + self._payload
                if crc16(body) == (self._crc_high << 8 | byte):
                    events.append(Frame(self._type, bytes(self._payload), self._seq))
                else:
                    events.append(FrameError(ErrorCode.BAD_CRC, self._type, 0, self._seq))
                self._state = self._HUNT
        return events


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
    return [step for steps in iter_step_records(payload, n_inputs, one) for step in steps]


def iter_step_records(payload, n_inputs, one):
    """The records of a STEPS payload, one at a time, in order: each as its list of steps.

    A malformed record raises :class:`ProtocolError` when it is reached, so a reader can act on
    the records before it first, as the gateware's decoder does (it reports whichever problem
    comes first in the byte stream: a bad record, or a step past ``T``).
    """
    pos, data = 0, bytes(payload)
    bitmap_len = (n_inputs + 7) // 8
    while pos < len(data):
        head = data[pos]
        pos += 1
        if head < RECORD_SILENT_LIMIT:
            yield [[] for _ in range(head + 1)]
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
            yield [list(zip(index.tolist(), amp.tolist()))]
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
            yield [events]
        elif head == RECORD_BITMAP:
            if pos + bitmap_len > len(data):
                raise ProtocolError("truncated step record")
            bits = np.unpackbits(np.frombuffer(data, np.uint8, bitmap_len, pos), bitorder="little")
            pos += bitmap_len
            if bits[n_inputs:].any():
                raise ProtocolError(f"bitmap sets inputs past {n_inputs}")
            yield [[(int(j), one) for j in np.flatnonzero(bits[:n_inputs])]]
        else:
            raise ProtocolError(f"unknown step record 0x{head:02x}")


# -- images ------------------------------------------------------------------------------------

#: IMAGE flag bit 0: the encoding.
IMAGE_RATE, IMAGE_LATENCY = 0, 1
#: Most leading zeros of a run code (runs up to ``2**16 - 2`` zero pixels).
IMAGE_PREFIX_LIMIT = 15
_IMAGE_HEADER = struct.Struct("<BI")
#: Bytes of flags and seed before the pixel stream.
IMAGE_HEADER_SIZE = _IMAGE_HEADER.size


def encode_image(pixels, encoding, seed, pixel_bits):
    """The IMAGE payload of one image: ``pixels`` ``(n_inputs,)`` integers of ``pixel_bits`` bits."""
    pixels = np.asarray(pixels, dtype=np.int64)
    if pixels.ndim != 1:
        raise ProtocolError(f"an image is (n_inputs,), got shape {pixels.shape}")
    if not 1 <= pixel_bits <= 8:
        raise ProtocolError(f"pixel_bits must lie in [1, 8], got {pixel_bits}")
    top = (1 << pixel_bits) - 1
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > top:
        raise ProtocolError(f"pixels must lie in [0, {top}]")
    if len(pixels) >= 1 << IMAGE_PREFIX_LIMIT + 1:
        raise ProtocolError(f"an image has fewer than {1 << IMAGE_PREFIX_LIMIT + 1} pixels")
    flags = {"rate": IMAGE_RATE, "latency": IMAGE_LATENCY}.get(encoding)
    if flags is None:
        raise ProtocolError(f"unknown encoding {encoding!r}; expected 'rate' or 'latency'")
    bits, previous = [], -1
    for j in np.flatnonzero(pixels):
        run = int(j) - previous                     # r + 1
        bits += [0] * (run.bit_length() - 1) + [int(b) for b in format(run, "b")]
        value = int(pixels[j])
        bits += [1] if value == top else [0] + [int(b) for b in format(value, f"0{pixel_bits}b")]
        previous = int(j)
    bits += [0] * (-len(bits) % 8)
    stream = bytes(int("".join(map(str, bits[k:k + 8])), 2) for k in range(0, len(bits), 8))
    return _IMAGE_HEADER.pack(flags, int(seed) & 0xFFFFFFFF) + stream


def decode_image(payload, n_inputs, pixel_bits):
    """``(encoding, seed, pixels)`` of an IMAGE payload; :class:`ProtocolError` when malformed."""
    data = bytes(payload)
    if len(data) < _IMAGE_HEADER.size:
        raise ProtocolError("IMAGE needs flags and a seed")
    flags, seed = _IMAGE_HEADER.unpack_from(data)
    if flags & ~1:
        raise ProtocolError(f"unknown IMAGE flags 0x{flags:02x}")
    bits = [byte >> (7 - k) & 1 for byte in data[_IMAGE_HEADER.size:] for k in range(8)]
    pixels = np.zeros(n_inputs, np.int64)
    top, pos, at = (1 << pixel_bits) - 1, 0, 0

    def take(count, what):
        nonlocal at
        if at + count > len(bits):
            raise ProtocolError(f"the pixel stream ends inside {what}")
        at += count
        return int("".join(map(str, bits[at - count:at])) or "0", 2)

    while True:
        zeros = 0
        while at < len(bits) and bits[at] == 0:
            zeros, at = zeros + 1, at + 1
            if zeros > IMAGE_PREFIX_LIMIT:
                raise ProtocolError(f"a run code with more than {IMAGE_PREFIX_LIMIT} leading zeros")
        if at == len(bits):
            break                                   # the end, or padding
        index = pos + take(zeros + 1, "a run code") - 1
        value = top if take(1, "a value code") else take(pixel_bits, "a pixel value")
        if index >= n_inputs:
            raise ProtocolError(f"a pixel at index {index}, the model takes {n_inputs}")
        if value == 0:
            raise ProtocolError(f"the pixel at index {index} is coded but 0")
        pixels[index], pos = value, index + 1
    return ("latency" if flags & 1 else "rate"), seed, pixels


# -- reply payloads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """The IDENTITY reply: what the device is, what it can hold, and what it holds."""

    protocol: int
    lanes: int
    layers: int
    classes: int
    max_inputs: int
    max_neurons: int
    max_steps: int
    weight_words: int
    state_blocks: int
    recurrent: int
    config_digest: str
    loaded: bool
    checksum: int
    _FORMAT = struct.Struct("<BHBBHHHIIH32sBI")

    def to_bytes(self):
        return self._FORMAT.pack(self.protocol, self.lanes, self.layers, self.classes, self.max_inputs,
                                 self.max_neurons, self.max_steps, self.weight_words, self.state_blocks,
                                 self.recurrent, bytes.fromhex(self.config_digest), int(self.loaded), self.checksum)

    @classmethod
    def from_bytes(cls, data):
        if len(data) < 1:
            raise ProtocolError("IDENTITY payload is empty")
        if data[0] != PROTOCOL_VERSION:
            # Read no further: another version's layout differs. The version is reported.
            return cls(data[0], 0, 0, 0, 0, 0, 0, 0, 0, 0, "00" * 32, False, 0)
        if len(data) != cls._FORMAT.size:
            raise ProtocolError(f"IDENTITY payload is {len(data)} bytes, expected {cls._FORMAT.size}")
        f = cls._FORMAT.unpack(data)
        return cls(*f[:10], f[10].hex(), bool(f[11]), f[12])

    @property
    def recurrent_layers(self):
        """The recurrent layers' indices, from the mask."""
        return tuple(k for k in range(16) if self.recurrent >> k & 1)


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
