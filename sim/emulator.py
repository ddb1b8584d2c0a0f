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
from pathlib import Path

import numpy as np

from firmware import image as fw_image
from firmware.protocol import (PROTOCOL_VERSION, ErrorCode, Frame, FrameDecoder, FrameError, Identity,
                               ProtocolError, Result, Type, decode_image, encode_frame, iter_step_records)
from hdl.cycles import golden_cycles
from quant.intencode import encode_with_tables

__all__ = ["GoldenBackend", "DeviceModel", "EmulatorServer", "PtyServer", "serve", "main"]

#: Most lanes an emulated core may have.


class GoldenBackend:
    """Runs a sample on the golden model of the installed image."""

    name = "golden"

    def __init__(self):
        self.network = self.image = None

    def install(self, image):
        self.image, self.network = image, fw_image.to_network(image)

    def run(self, steps):
        """``steps``: per step a list of ``(index, amplitude)``; returns a :class:`Result`.

        ``cycles`` is what the core of the image's lanes takes for the sample (the exact cycle model).
        """
        image = self.image
        amplitudes = np.zeros((len(steps), image.layers[0].n_in), np.int64)
        for t, events in enumerate(steps):
            for j, a in events:
                amplitudes[t, j] = a
        cycles, _, result = golden_cycles(self.network, image, amplitudes)
        return Result(tuple(int(v) for v in result.scores[0]), int(result.prediction[0]),
                      int(np.count_nonzero(amplitudes)), tuple(int(c[0]) for c in result.spike_counts), cycles)


class DeviceModel:
    """The device's side of the protocol, independent of the transport: what the gateware
    (:class:`hdl.device.SRCDevice`) does, request by request.

    Like the gateware, it is built for one network (held from the start, as if baked into a
    bitstream) and :class:`firmware.image.DeviceLimits`, which together give the
    :class:`firmware.image.DeviceRules` a loaded image must meet.

    Parameters
    ----------
    image : firmware.image.DeviceImage
        The network the device starts with; its lanes, layers, classes and configuration are the
        device's.
    limits : firmware.image.DeviceLimits, optional
        Default: exactly ``image``'s shapes.
    backend : object, optional
        ``install(image)`` and ``run(steps) -> Result``; default :class:`GoldenBackend`.
    """

    def __init__(self, image, limits=None, backend=None):
        self.rules = fw_image.DeviceRules.for_image(image, limits)
        self.backend = backend or GoldenBackend()
        blob = fw_image.to_bytes(image)
        self.backend.install(image)
        self.loaded = (image, blob)
        self._restart_load()
        self.steps = None

    def _restart_load(self):
        self.buffer, self.held, self.crc = bytearray(), 0, 0

    @property
    def lanes(self):
        return self.rules.lanes

    def identity(self):
        r, limits = self.rules, self.rules.limits
        return Identity(PROTOCOL_VERSION, r.lanes, r.layers, r.classes, limits.max_inputs, limits.max_neurons,
                        limits.max_steps, limits.weight_words, limits.state_blocks, limits.recurrent_mask, r.config.digest(),
                        self.loaded is not None, fw_image.checksum(self.loaded[1]) if self.loaded else 0)

    def handle(self, event):
        """Reply frames (bytes) to one decoder event."""
        if isinstance(event, FrameError):
            if event.code == ErrorCode.TIMEOUT:
                self.steps = None
            return [self._error(event.code, event.type, event.seq, event.detail)]
        try:
            return self._dispatch(event)
        except ProtocolError:
            if event.type == Type.STEPS:
                self.steps = None
            return [self._error(ErrorCode.BAD_PAYLOAD, event.type, event.seq)]

    def respond(self, events):
        """The reply bytes to a batch of decoder events (empty when none needs a reply)."""
        return b"".join(reply for event in events for reply in self.handle(event))

    @staticmethod
    def _error(code, type_, seq, detail=0):
        return encode_frame(Type.ERROR, struct.pack("<BBH", code, type_, detail), seq)

    def _dispatch(self, frame: Frame):
        kind, payload, seq = frame.type, frame.payload, frame.seq
        reply = lambda type_, data=b"": [encode_frame(type_, data, seq)]
        if kind == Type.IDENTIFY:
            return reply(Type.IDENTITY, self.identity().to_bytes())
        if kind == Type.VERIFY:
            checksum = fw_image.checksum(self.loaded[1]) if self.loaded else 0
            return reply(Type.CHECKSUM, struct.pack("<BI", self.loaded is not None, checksum))
        if kind == Type.ABORT:
            self.steps = None
            return reply(Type.ACK, struct.pack("<I", 0))
        if kind == Type.LOAD:
            return self._load(payload, seq)
        if kind == Type.COMMIT:
            return self._commit(payload, seq)
        if kind == Type.STEPS:
            return self._steps(payload, seq)
        if kind == Type.IMAGE:
            return self._image(payload, seq)
        return [self._error(ErrorCode.UNKNOWN_TYPE, kind, seq)]

    def _load(self, payload, seq):
        if len(payload) < 4:
            raise ProtocolError("LOAD needs an offset")
        # The hardware writes an image into its memories as it arrives: any LOAD abandons a
        # sample in progress, and one at offset 0 gives up the model.
        self.steps = None
        (offset,) = struct.unpack_from("<I", payload)
        if offset == 0:
            self._restart_load()
            self.loaded = None
        elif offset != self.held:
            return [self._error(ErrorCode.SEQUENCE, Type.LOAD, seq)]
        data = payload[4:]
        # Bytes past the longest image the device could hold are counted, not kept: such an
        # image breaks the length rule whatever they are.
        room = self.rules.max_image_size + 1 - len(self.buffer)
        self.buffer += data[:max(room, 0)]
        self.held = (self.held + len(data)) & 0xFFFFFFFF
        self.crc = zlib.crc32(data, self.crc)
        return [encode_frame(Type.ACK, struct.pack("<I", self.held), seq)]

    def _commit(self, payload, seq):
        if len(payload) != 8:
            raise ProtocolError("COMMIT needs a length and a CRC-32")
        length, crc = struct.unpack("<II", payload)
        if length != self.held or crc != self.crc:
            return [self._error(ErrorCode.BAD_IMAGE, Type.COMMIT, seq, 1)]
        try:
            image = self.rules.validate(bytes(self.buffer))
        except fw_image.ImageError:
            return [self._error(ErrorCode.BAD_IMAGE, Type.COMMIT, seq, 2)]
        blob = bytes(self.buffer)
        self.backend.install(image)
        self.loaded = (image, blob)
        return [encode_frame(Type.LOADED, struct.pack("<I", fw_image.checksum(blob)), seq)]

    def _steps(self, payload, seq):
        if self.loaded is None:
            return [self._error(ErrorCode.NO_MODEL, Type.STEPS, seq)]
        if not payload:
            raise ProtocolError("STEPS needs a flags byte")
        image = self.loaded[0]
        first = payload[0] & 1
        if first != (self.steps is None):
            self.steps = None
            return [self._error(ErrorCode.SEQUENCE, Type.STEPS, seq, 1)]
        steps = self.steps or []
        self.steps = steps
        # Record by record, as the gateware decodes: whichever comes first, a malformed record
        # or a step past T, is the answer.
        for record in iter_step_records(payload[1:], image.layers[0].n_in, image.config.one):
            steps += record
            if len(steps) > image.n_steps:
                self.steps = None
                return [self._error(ErrorCode.SEQUENCE, Type.STEPS, seq, 2)]
        if len(steps) < image.n_steps:
            return []
        self.steps = None
        return [encode_frame(Type.RESULT, self.backend.run(steps).to_bytes(), seq)]


    def _image(self, payload, seq):
        if self.loaded is None:
            return [self._error(ErrorCode.NO_MODEL, Type.IMAGE, seq)]
        if self.steps is not None:
            self.steps = None
            return [self._error(ErrorCode.SEQUENCE, Type.IMAGE, seq, 3)]
        image = self.loaded[0]
        encoding, seed, pixels = decode_image(payload, image.layers[0].n_in, image.config.pixel_bits)
        spikes = encode_with_tables(pixels, encoding, seed, image.n_steps, image.rate_table, image.latency_table,
                                    image.config.draw_bits)
        steps = [[(int(j), image.config.one) for j in np.flatnonzero(row)] for row in spikes]
        return [encode_frame(Type.RESULT, self.backend.run(steps).to_bytes(), seq)]


class _Replier:
    """Feeds received bytes to a decoder and a :class:`DeviceModel`; a failure inside the model is
    logged and answered with nothing, so the connection and the replies batched with it survive."""

    def __init__(self, device):
        self.device, self.decoder = device, FrameDecoder()

    def _respond(self, events):
        out = bytearray()
        for event in events:
            try:
                out += b"".join(self.device.handle(event))
            except Exception as error:  # a defect of the emulator: report it, keep serving
                print(f"emulator: internal error on {event!r}: {type(error).__name__}: {error}", file=sys.stderr)
        return bytes(out)

    def feed(self, data):
        return self._respond(self.decoder.feed(data))

    def timeout(self):
        return self._respond(self.decoder.timeout())


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        replier = _Replier(self.server.device)
        self.request.settimeout(self.server.idle_timeout)
        while True:
            try:
                data = self.request.recv(65536)
                replies = replier.feed(data) if data else None
            except socket.timeout:
                replies = replier.timeout()
            except OSError:
                return
            if replies is None:
                return
            if replies:
                try:
                    self.request.sendall(replies)
                except OSError:
                    return


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
        replier = _Replier(self.device)
        while not self._stop.is_set():
            readable, _, _ = select.select([self._master], [], [], self.idle_timeout)
            if self._stop.is_set():
                return
            if readable:
                try:
                    data = os.read(self._master, 65536)
                except OSError:
                    return
                replies = replier.feed(data)
            else:
                replies = replier.timeout()
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


def serve(backend="golden", network=None, lanes=8, limits=None, port=0, background=True, pty=False, idle_timeout=0.5):
    """Start an emulated device; returns the server (``.url``, ``.shutdown()``, ``.server_close()``).

    Both back ends are a device built for ``network`` (default: the shipped model) packed for
    ``lanes`` lanes, within ``limits`` (default: exactly its shapes), holding it from the start.
    ``golden``: a :class:`DeviceModel` on a loopback TCP server or, with ``pty``, a
    pseudo-terminal (served in a thread when ``background``), dropping a frame cut short after
    ``idle_timeout`` seconds of silence. ``rtl``: the device's Verilog under cocotb, serving one
    client on a random port.
    """
    if backend not in ("golden", "rtl"):
        raise ValueError(f"unknown back end {backend!r}; expected 'golden' or 'rtl'")
    if network is None:
        from quant import assets
        from quant.quantize import load_network

        network = load_network(assets.QUANTIZED_MODEL)
    image = fw_image.pack(network, lanes)
    if backend == "rtl":
        if pty:
            raise ValueError("the rtl back end serves on a TCP port only (no --pty)")
        from .link_runner import RTLDeviceServer
        return RTLDeviceServer(network, lanes, limits=limits)
    device = DeviceModel(image, limits)
    server = PtyServer(device, idle_timeout) if pty else EmulatorServer(device, port, idle_timeout)
    if background:
        thread = server._thread if pty else threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
    return server


#: Exit codes of the command line.
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.emulator", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 served until the client left (rtl) or until interrupted; "
                                       "2 bad arguments, an unreadable model, or a port in use; 130 interrupted.")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    p.add_argument("--pty", action="store_true",
                   help="golden back end: serve on a pseudo-terminal (prints its path, a serial port) instead of TCP")
    p.add_argument("--backend", choices=["golden", "rtl"], default="golden",
                   help="golden: the golden model; rtl: the device's Verilog under cocotb (one client, then it exits)")
    p.add_argument("--lanes", type=int, default=fw_image.DEFAULT_LANES,
                   help="lanes of the emulated core (images must be packed for it)")
    p.add_argument("--model", type=Path, help="quantized network (.npz) the device is built with and starts holding "
                                               "(default: the shipped model)")
    p.add_argument("--idle-timeout", type=float, default=0.5,
                   help="golden back end: seconds of silence after which a frame cut short is dropped")
    args = p.parse_args(argv)
    if not 0.001 <= args.idle_timeout <= 60:
        p.error(f"--idle-timeout must be in 0.001..60 seconds, got {args.idle_timeout}")
    if not 1 <= args.lanes <= fw_image.MAX_LANES:
        p.error(f"--lanes must be in 1..{fw_image.MAX_LANES}, got {args.lanes}")
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be in 0..65535, got {args.port}")
    if args.pty and args.backend != "golden":
        p.error("--pty serves the golden back end only")
    from quant.files import FileError
    from quant.quantize import load_network

    try:
        network = load_network(args.model) if args.model else None
        server = serve(args.backend, network, args.lanes, port=args.port, background=False, pty=args.pty,
                       idle_timeout=args.idle_timeout)
    except (FileError, fw_image.ImageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"error: cannot serve on port {args.port}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    print(server.url, flush=True)
    try:
        if args.backend == "rtl":
            server._thread.join()
        else:
            server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
