"""cocotb benches of the device's Verilog: the link protocol at the UART pins, and a live TCP bridge.

Run from Python through :mod:`sim.link_runner`. The case is a JSON file named in
``SRC_LINK_SPEC``.

* ``uart_script`` (top level :class:`hdl.top.UARTDevice`): each exchange's bytes are sent bit
  by bit on ``rx``, then the bench waits for ``gap`` cycles and for the ``tx`` line to fall
  quiet; the bytes that came back on ``tx`` are written to the report, exchange by exchange.
* ``serve_frames`` (top level :class:`hdl.device.SRCDevice`): the bench listens on
  ``127.0.0.1:port`` and moves bytes between one TCP client and the device's byte streams,
  one byte per cycle each way, until the client disconnects. This is the emulator's RTL back end.
"""

import json
import os
import socket
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge


async def _reset(dut, **idle):
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0


class _UARTLine:
    """The host's side of the device's UART: bit-level sender, and a receiver in the background."""

    def __init__(self, dut, divisor):
        self.dut, self.divisor = dut, divisor
        self.received = bytearray()
        self.last_activity = 0
        self.cycle = 0
        cocotb.start_soon(self._count())
        cocotb.start_soon(self._receive())

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def send(self, data):
        for byte in data:
            bits = [0] + [(byte >> k) & 1 for k in range(8)] + [1]
            for bit in bits:
                self.dut.rx.value = bit
                await ClockCycles(self.dut.clk, self.divisor)

    async def _receive(self):
        dut, d = self.dut, self.divisor
        while True:
            await FallingEdge(dut.clk)
            if dut.tx.value != 0:
                continue
            self.last_activity = self.cycle
            await ClockCycles(dut.clk, d + d // 2)   # the middle of bit 0
            byte = 0
            for k in range(8):
                byte |= int(dut.tx.value) << k
                await ClockCycles(dut.clk, d)
            assert int(dut.tx.value) == 1, "the device sent a bad stop bit"
            self.received.append(byte)
            self.last_activity = self.cycle

    async def quiet(self, cycles):
        """Wait until the ``tx`` line has been idle for ``cycles``."""
        while self.cycle - self.last_activity < cycles:
            await ClockCycles(self.dut.clk, cycles // 4 + 1)


@cocotb.test()
async def uart_script(dut):
    spec = json.loads(Path(os.environ["SRC_LINK_SPEC"]).read_text())
    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut, rx=1)
    line = _UARTLine(dut, spec["divisor"])
    report = []
    for exchange in spec["exchanges"]:
        start = len(line.received)
        await line.send(bytes.fromhex(exchange["send"]))
        await ClockCycles(dut.clk, exchange.get("gap", 0))
        line.last_activity = max(line.last_activity, line.cycle)
        await line.quiet(spec["quiet"])
        report.append(bytes(line.received[start:]).hex())
    report = {"replies": report, "overrun": int(dut.overrun.value)}
    with open(spec["report"], "w") as f:
        json.dump(report, f)


@cocotb.test()
async def serve_frames(dut):
    spec = json.loads(Path(os.environ["SRC_LINK_SPEC"]).read_text())
    Clock(dut.clk, 10, unit="ns").start()
    await _reset(dut, rx__valid=0, tx__ready=1)
    server = socket.create_server(("127.0.0.1", spec["port"]))
    server.setblocking(False)
    with open(spec["ready"], "w") as f:
        f.write(str(spec["port"]))
    client, outgoing, incoming = None, bytearray(), bytearray()
    cycle = 0
    while True:
        await FallingEdge(dut.clk)
        cycle += 1
        # The socket is polled every few hundred cycles: often enough to keep the device busy.
        if cycle % 256 == 0 or (client is not None and not incoming):
            if client is None:
                try:
                    client, _ = server.accept()
                    client.setblocking(False)
                except BlockingIOError:
                    continue
            if outgoing:
                client.sendall(bytes(outgoing))
                outgoing.clear()
            try:
                chunk = client.recv(65536)
                if not chunk:
                    break
                incoming += chunk
            except BlockingIOError:
                pass
        dut.rx__valid.value = int(bool(incoming))
        dut.rx__payload.value = incoming[0] if incoming else 0
        await ReadOnly()
        if incoming and dut.rx__ready.value == 1:
            del incoming[0]
        if dut.tx__valid.value == 1:
            outgoing.append(int(dut.tx__payload.value))
    client.close()
    server.close()
