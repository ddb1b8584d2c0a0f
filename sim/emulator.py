"""A device emulator: the link protocol of :mod:`firmware.protocol` served on a loopback socket or a pty.

Usage::

    python -m sim.emulator --port 0            # prints socket://127.0.0.1:PORT, serves until killed
    python -m sim.emulator --pty               # prints /dev/pts/N: a serial port for any serial tool

:class:`DeviceModel` is the device's side of the protocol (load, verify, stream samples) over
:class:`GoldenBackend`, which runs each sample on the golden model; its replies are
byte-identical to the gateware's (tests/hdl/test_device.py holds them to that). The ``rtl``
back end is the gateware itself: :class:`sim.link_runner.RTLDeviceServer` serves the Verilog of
:class:`hdl.device.SRCDevice`, simulated under cocotb, on the same kind of socket.
"""

import argparse
import os
import select
import socket
import socketserver
import struct
import sys
import threading
import tty
import zlib

import numpy as np

from firmware import image as fw_image
from firmware.protocol import (PROTOCOL_VERSION, ErrorCode, Frame, FrameDecoder, FrameError, Identity,
                               ProtocolError, Result, Type, decode_steps, encode_frame)
from hdl.cycles import sample_cycles
from quant import golden
from quant.fixedpoint import DEFAULT

__all__ = ["GoldenBackend", "DeviceModel", "EmulatorServer", "PtyServer", "serve", "main"]

#: Largest image the emulated device accepts (bytes).
MAX_IMAGE = 16 << 20


class GoldenBackend:
    """Runs a sample on the golden model of the loaded image."""

    name = "golden"

    def __init__(self, lanes=8):
        self.lanes = lanes
        self.network = self.image = None

    def install(self, image):
        self.image, self.network = image, fw_image.to_network(image)

    def run(self, steps):
        """``steps``: per step a list of ``(index, amplitude)``; returns a :class:`Result`.

        ``cycles`` is what the core of ``lanes`` lanes takes for the sample (the exact cycle model).
        """
        image = self.image
        amplitudes = np.zeros((len(steps), image.layers[0].n_in), np.int64)
        for t, events in enumerate(steps):
            for j, a in events:
                amplitudes[t, j] = a
        result = golden.run(self.network, amplitudes[:, None, :], record=True)
        cycles, _ = sample_cycles(image, amplitudes, [{"s": st["s"][:, 0]} for st in result.states])
        return Result(tuple(int(v) for v in result.scores[0]), int(result.prediction[0]),
                      int(np.count_nonzero(amplitudes)), tuple(int(c[0]) for c in result.spike_counts), cycles)


class DeviceModel:
    """The device's side of the protocol, independent of the transport.

    Parameters
    ----------
    backend : object
        ``install(image)`` and ``run(steps) -> Result``, with a ``lanes`` attribute.
    config_digest : str
        Digest of the fixed-point configuration the device was built for.
    """

    def __init__(self, backend, config_digest=DEFAULT.digest(), max_image=MAX_IMAGE):
        self.backend, self.config_digest, self.max_image = backend, config_digest, max_image
        self.buffer = bytearray()
        self.loaded = None
        self.steps = None

    def identity(self):
        image = self.loaded
        return Identity(PROTOCOL_VERSION, self.backend.lanes, 16, 0xFFFF, 0xFFFF, self.max_image // 2,
                        self.max_image // 2, self.config_digest, image is not None,
                        fw_image.checksum(image[1]) if image else 0)

    def handle(self, event):
        """Reply frames (bytes) to one decoder event."""
        if isinstance(event, FrameError):
            if event.code == ErrorCode.TIMEOUT and self.steps is not None:
                self.steps = None
            return [self._error(event.code, event.type, event.detail)]
        try:
            return self._dispatch(event)
        except ProtocolError as error:
            self.steps = None if event.type == Type.STEPS else self.steps
            return [self._error(ErrorCode.BAD_PAYLOAD, event.type, 0, str(error))]

    def respond(self, events):
        """The reply bytes to a batch of decoder events (empty when none needs a reply)."""
        return b"".join(reply for event in events for reply in self.handle(event))

    @staticmethod
    def _error(code, type_, detail=0, message=None):
        return encode_frame(Type.ERROR, struct.pack("<BBH", code, type_, detail))

    def _dispatch(self, frame: Frame):
        kind, payload = frame.type, frame.payload
        if kind == Type.IDENTIFY:
            return [encode_frame(Type.IDENTITY, self.identity().to_bytes())]
        if kind == Type.LOAD:
            if len(payload) < 4:
                raise ProtocolError("LOAD needs an offset")
            (offset,) = struct.unpack_from("<I", payload)
            if offset != len(self.buffer) and offset != 0:
                return [self._error(ErrorCode.SEQUENCE, kind, 0)]
            # Like the hardware, which writes the image into its memories as it arrives, the
            # device gives up its model at offset 0 and any sample in progress with any LOAD.
            self.steps = None
            if offset == 0:
                self.buffer = bytearray()
                self.loaded = None
            if offset + len(payload) - 4 > self.max_image:
                return [self._error(ErrorCode.BAD_IMAGE, kind, 0)]
            self.buffer += payload[4:]
            return [encode_frame(Type.ACK, struct.pack("<I", len(self.buffer)))]
        if kind == Type.COMMIT:
            if len(payload) != 8:
                raise ProtocolError("COMMIT needs a length and a CRC-32")
            length, crc = struct.unpack("<II", payload)
            blob = bytes(self.buffer)
            if length != len(blob) or zlib.crc32(blob) != crc:
                return [self._error(ErrorCode.BAD_IMAGE, kind, 1)]
            try:
                image = fw_image.from_bytes(blob, self.config_digest)
                if image.lanes != self.backend.lanes:
                    raise fw_image.ImageError(f"image packed for {image.lanes} lanes, device has {self.backend.lanes}")
                self.backend.install(image)
            except fw_image.ImageError:
                return [self._error(ErrorCode.BAD_IMAGE, kind, 2)]
            self.loaded, self.steps = (image, blob), None
            return [encode_frame(Type.LOADED, struct.pack("<I", fw_image.checksum(blob)))]
        if kind == Type.VERIFY:
            checksum = fw_image.checksum(self.loaded[1]) if self.loaded else 0
            return [encode_frame(Type.CHECKSUM, struct.pack("<BI", self.loaded is not None, checksum))]
        if kind == Type.ABORT:
            self.steps = None
            return [encode_frame(Type.ACK, struct.pack("<I", 0))]
        if kind == Type.STEPS:
            return self._steps(payload)
        return [self._error(ErrorCode.UNKNOWN_TYPE, kind, 0)]

    def _steps(self, payload):
        if self.loaded is None:
            return [self._error(ErrorCode.NO_MODEL, Type.STEPS, 0)]
        if not payload:
            raise ProtocolError("STEPS needs a flags byte")
        image = self.loaded[0]
        first = payload[0] & 1
        if first != (self.steps is None):
            self.steps = None
            return [self._error(ErrorCode.SEQUENCE, Type.STEPS, 1)]
        steps = decode_steps(payload[1:], image.layers[0].n_in, image.config.one)
        self.steps = (self.steps or []) + steps
        if len(self.steps) > image.n_steps:
            self.steps = None
            return [self._error(ErrorCode.SEQUENCE, Type.STEPS, 2)]
        if len(self.steps) < image.n_steps:
            return []
        steps, self.steps = self.steps, None
        return [encode_frame(Type.RESULT, self.backend.run(steps).to_bytes())]


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        device, decoder = self.server.device, FrameDecoder()
        self.request.settimeout(self.server.idle_timeout)
        while True:
            try:
                data = self.request.recv(65536)
            except socket.timeout:
                replies = device.respond(decoder.timeout())
                if replies:
                    self.request.sendall(replies)
                continue
            except OSError:
                return
            if not data:
                return
            replies = device.respond(decoder.feed(data))
            if replies:
                self.request.sendall(replies)


class EmulatorServer(socketserver.ThreadingTCPServer):
    """A TCP server on loopback holding one :class:`DeviceModel` (the device keeps its model across connections)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, device, port=0, idle_timeout=0.5):
        super().__init__(("127.0.0.1", port), _Handler)
        self.device, self.idle_timeout = device, idle_timeout

    @property
    def url(self):
        return f"socket://127.0.0.1:{self.server_address[1]}"


class PtyServer:
    """A :class:`DeviceModel` behind a pseudo-terminal: the device as a serial port.

    The slave side, in raw mode, is what a host opens (``url`` is its path, e.g.
    ``/dev/pts/3``); the server reads the master side in a thread.

    Parameters
    ----------
    device : DeviceModel
    idle_timeout : float
        Seconds of silence after which a frame cut short is dropped (the receiver's timeout).
    """

    def __init__(self, device, idle_timeout=0.5):
        self.device, self.idle_timeout = device, idle_timeout
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as they are
        self.url = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def serve_forever(self):
        decoder = FrameDecoder()
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], self.idle_timeout)
            if self._stop.is_set():
                return
            if readable:
                try:
                    data = os.read(self._master, 65536)
                except OSError:
                    return
                events = decoder.feed(data)
            else:
                events = decoder.timeout()
            replies = self.device.respond(events)
            if replies:
                os.write(self._master, replies)

    def shutdown(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.idle_timeout + 1)

    def server_close(self):
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


def serve(backend="golden", lanes=8, port=0, background=True, network=None, pty=False):
    """Start an emulator; returns the server (``.url``, ``.shutdown()``, ``.server_close()``).

    ``golden``: a :class:`DeviceModel` that starts without a model, on a TCP server or, with
    ``pty``, a pseudo-terminal (served in a thread when ``background``). ``rtl``: the device's
    Verilog with ``network`` (default: the shipped model) baked in, serving one client on a
    random port.
    """
    if backend == "rtl":
        from quant import assets
        from quant.quantize import load_network

        from .link_runner import RTLDeviceServer
        return RTLDeviceServer(network if network is not None else load_network(assets.QUANTIZED_MODEL), lanes)
    if backend != "golden":
        raise ValueError(f"unknown back end {backend!r}; expected 'golden' or 'rtl'")
    if pty:
        server = PtyServer(DeviceModel(GoldenBackend(lanes)))
        if background:
            server._thread.start()
        return server
    server = EmulatorServer(DeviceModel(GoldenBackend(lanes)), port)
    if background:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.emulator", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    p.add_argument("--pty", action="store_true",
                   help="golden back end: serve on a pseudo-terminal (prints its path, a serial port) instead of TCP")
    p.add_argument("--backend", choices=["golden", "rtl"], default="golden",
                   help="golden: the golden model; rtl: the device's Verilog under cocotb (one client, then it exits)")
    p.add_argument("--lanes", type=int, default=8, help="lanes of the emulated core (images must be packed for it)")
    p.add_argument("--model", help="quantized network baked into the rtl back end (default: the shipped model)")
    args = p.parse_args(argv)
    if args.backend == "rtl":
        from quant.quantize import load_network

        server = serve("rtl", args.lanes, network=load_network(args.model) if args.model else None)
        print(server.url, flush=True)
        try:
            server._thread.join()
        except KeyboardInterrupt:
            server.shutdown()
        return 0
    if args.pty and args.backend != "golden":
        p.error("--pty serves the golden back end only")
    server = serve(args.backend, args.lanes, args.port, background=False, pty=args.pty)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
