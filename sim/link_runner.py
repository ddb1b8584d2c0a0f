"""Build the device's Verilog and run the :mod:`sim.cocotb_link` benches on it, from Python.

* :func:`run_uart_script`: exchanges at the UART pins of :class:`hdl.top.UARTDevice`.
* :class:`RTLDeviceServer`: the device's Verilog (:class:`hdl.device.SRCDevice`) served on a
  loopback TCP port, the emulator's RTL back end: ``Device(server.url)`` talks to the gateware.
"""

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from firmware.image import pack

from .runner import ROOT, available_simulator, simulator_source

__all__ = ["build_device", "run_uart_script", "RTLDeviceServer"]


def build_device(image, workdir, uart_divisor=None, limits=None, timeout=1_000_000, simulator=None, long_run=False):
    """Generate and compile the device's Verilog; returns ``(runner, toplevel, build_dir)``.

    With ``uart_divisor`` the top level is :class:`hdl.top.UARTDevice` (pins ``rx``/``tx``),
    otherwise :class:`hdl.device.SRCDevice` (byte streams).
    """
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from hdl.device import SRCDevice
    from hdl.top import UARTDevice

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if uart_divisor:
        top, name = UARTDevice(image, uart_divisor, limits=limits, timeout=timeout), "src_uart_device"
    else:
        top, name = SRCDevice(image, limits=limits, timeout=timeout), "src_device"
    simulator = available_simulator(simulator, long_run)
    source = workdir / f"{name}.v"
    source.write_text(simulator_source(verilog.convert(top, name=name), simulator))
    runner = get_runner(simulator)
    runner.build(sources=[source], hdl_toplevel=name, build_dir=workdir / "build", timescale=("1ns", "1ps"),
                 build_args=["-Wno-fatal"] if simulator == "verilator" else [], always=True)
    return runner, name, workdir / "build"


def _test(runner, toplevel, build_dir, workdir, testcase, spec):
    spec_path = Path(workdir) / f"{testcase}.json"
    spec_path.write_text(json.dumps(spec))
    env = {"SRC_LINK_SPEC": str(spec_path), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return runner.test(hdl_toplevel=toplevel, test_module="sim.cocotb_link", testcase=testcase, build_dir=build_dir,
                       test_dir=workdir, extra_env=env)


def run_uart_script(image, exchanges, workdir, divisor=4, timeout=2000, quiet=600, simulator=None):
    """Send ``exchanges`` (dicts: ``send`` bytes, optional ``gap`` idle cycles) bit by bit on the pins.

    Returns the report: ``replies`` (the bytes received after each exchange) and ``overrun``.
    """
    from cocotb_tools.runner import get_results

    runner, top, build = build_device(image, workdir, uart_divisor=divisor, timeout=timeout, simulator=simulator)
    report_path = Path(workdir).resolve() / "uart_report.json"
    spec = {"divisor": divisor, "quiet": quiet, "report": str(report_path),
            "exchanges": [{"send": bytes(e["send"]).hex(), "gap": e.get("gap", 0)} for e in exchanges]}
    xml = _test(runner, top, build, Path(workdir).resolve(), "uart_script", spec)
    _, failed = get_results(xml)
    if failed or not report_path.exists():
        raise AssertionError("the UART bench failed; see the simulator log")
    report = json.loads(report_path.read_text())
    report["replies"] = [bytes.fromhex(r) for r in report["replies"]]
    return report


class RTLDeviceServer:
    """The device's Verilog, with ``network`` baked in, behind ``socket://127.0.0.1:PORT`` (one client).

    Parameters
    ----------
    network : quant.golden.QuantizedNetwork
        Baked into the memories (a client may load another within ``limits``).
    lanes : int
    limits : firmware.image.DeviceLimits, optional
        Default: exactly the network's shapes.
    workdir : path, optional
    startup_timeout : float
        Seconds to wait for the build and the simulator to listen.
    """

    def __init__(self, network, lanes=8, limits=None, workdir=None, startup_timeout=600.0, simulator=None):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="src-rtl-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A served device runs for as long as its client talks to it: a long run.
        runner, top, build = build_device(pack(network, lanes), self.workdir, limits=limits, simulator=simulator,
                                          long_run=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ready = self.workdir / "listening"
        ready.unlink(missing_ok=True)
        spec = {"port": self.port, "ready": str(ready)}
        self._thread = threading.Thread(target=_test, args=(runner, top, build, self.workdir, "serve_frames", spec),
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not ready.exists():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the RTL device did not start; see the simulator log in {self.workdir}")
            time.sleep(0.1)

    @property
    def url(self):
        return f"socket://127.0.0.1:{self.port}"

    def shutdown(self):
        """End the simulation: it stops when its client disconnects (a bare connection if none came)."""
        if self._thread.is_alive():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
            except OSError:
                pass
            self._thread.join(timeout=60)
        if self._own_workdir and not self._thread.is_alive():
            shutil.rmtree(self.workdir, ignore_errors=True)

    server_close = shutdown
