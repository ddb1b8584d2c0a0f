"""Byte transports to a device: a serial port or any pyserial URL, and PCIe (XDMA-style character devices).

A transport has ``write(bytes)``, ``read(n) -> bytes`` (fewer on timeout), ``timeout`` and
``close()``. The driver in :mod:`host.device` speaks the same frames over any of them.
"""

import os
import select
import time

__all__ = ["TransportError", "SerialTransport", "PCIeTransport", "open_transport"]


class TransportError(OSError):
    """The link could not be opened or broke."""


class SerialTransport:
    """A pyserial port: a device path (``/dev/ttyUSB1``), ``socket://host:port``, ``loop://`` ...

    Parameters
    ----------
    url : str
        Anything :func:`serial.serial_for_url` opens.
    baudrate : int
        Line rate (the Arty's FTDI bridge runs the default 3 Mbaud).
    timeout : float
        Seconds a read waits for data.
    """

    def __init__(self, url, baudrate=3_000_000, timeout=2.0):
        import serial

        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (serial.SerialException, ValueError) as error:
            raise TransportError(f"cannot open {url}: {error}") from None
        self.url, self.baudrate = url, baudrate

    @property
    def timeout(self):
        return self.port.timeout

    def write(self, data):
        self.port.write(data)
        self.port.flush()

    def read(self, n):
        return self.port.read(n)

    def close(self):
        self.port.close()


class PCIeTransport:
    """Xilinx XDMA-style character devices: frames go to ``h2c`` and replies come from ``c2h``.

    The same byte stream as over UART, carried by DMA: ``/dev/xdma0_h2c_0`` and
    ``/dev/xdma0_c2h_0`` on a board with the XDMA driver; any pair of files or FIFOs in tests.
    """

    def __init__(self, h2c, c2h, timeout=2.0):
        try:
            self._out = os.open(h2c, os.O_WRONLY)
            self._in = os.open(c2h, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as error:
            raise TransportError(f"cannot open PCIe channels {h2c} / {c2h}: {error}") from None
        self.timeout, self.url = timeout, f"pcie://{h2c},{c2h}"

    def write(self, data):
        view = memoryview(data)
        while view:
            written = os.write(self._out, view)
            view = view[written:]

    def read(self, n):
        out, deadline = bytearray(), time.monotonic() + self.timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                break
            chunk = os.read(self._in, n - len(out))
            if not chunk:
                time.sleep(0.001)
                continue
            out += chunk
        return bytes(out)

    def close(self):
        os.close(self._out)
        os.close(self._in)


def open_transport(url, baudrate=3_000_000, timeout=2.0):
    """``pcie://H2C,C2H`` opens a :class:`PCIeTransport`; anything else a :class:`SerialTransport`."""
    if url.startswith("pcie://"):
        h2c, _, c2h = url[len("pcie://"):].partition(",")
        if not c2h:
            raise TransportError(f"{url}: expected pcie://H2C_DEVICE,C2H_DEVICE")
        return PCIeTransport(h2c, c2h, timeout)
    return SerialTransport(url, baudrate, timeout)
