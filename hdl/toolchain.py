"""What the open tools share across the board flows: the Verilog Yosys reads, and nextpnr's Fmax."""

import re
from pathlib import Path

__all__ = ["yosys_verilog", "nextpnr_fmax", "nextpnr_critical_path", "repo_path", "ROUTERS", "PLACER_OPTIONS"]

#: nextpnr's routers: ``router1`` (the default) is timing-driven and gives the Fmax a design can
#: have; ``router2`` converges far faster on a congested design (the accumulate unit in 84 s where
#: router1 had not finished in ten minutes) but does not chase timing: the encoder measured
#: 74.7 MHz with it, 95.8 MHz with router1, from the same placement. Reports name the router.
ROUTERS = ("router1", "router2")

#: nextpnr-ecp5's placer (HeAP) weighted towards timing: the timing weight (default 10) and the
#: criticality exponent (default 2) raised, so that the placer keeps the cells of critical paths
#: together rather than spreading control logic across the chip. The same routed netlist (the
#: device at 8ede911, router1, seed 1) measured 77.2 MHz with the defaults, 88.1 MHz with a weight
#: of 30 and an exponent of 4, 79.5 MHz with the electrostatic placer (``--placer static``).
PLACER_OPTIONS = ("--placer-heap-timingweight", "30", "--placer-heap-critexp", "4")


def yosys_verilog(build_dir, name):
    """Write ``NAME_yosys.v``, Amaranth's ``NAME.v`` as Yosys reads it; returns its file name.

    Yosys's BUFGCTRL model lacks the simulation-only SIM_DEVICE parameter Amaranth sets.
    """
    build_dir = Path(build_dir)
    text = re.sub(r"BUFGCTRL\s*#\(\s*\.SIM_DEVICE\(\"[^\"]*\"\)\s*\)", "BUFGCTRL", (build_dir / f"{name}.v").read_text())
    (build_dir / f"{name}_yosys.v").write_text(text)
    return f"{name}_yosys.v"


def repo_path(where):
    """A source location as the repository names it: ``/any/checkout/hdl/accumulate.py:94`` ->
    ``hdl/accumulate.py:94`` (other paths unchanged)."""
    return re.sub(r"^.*?/((?:hdl|sim|firmware|quant)/)", r"\1", where)


def nextpnr_critical_path(text):
    """The last clock's critical path in a nextpnr log: ``{"delay_ns", "logic_ns", "from", "to", "sources"}``.

    ``from`` and ``to`` are the first source and the last sink cell; ``sources`` the design's own
    source lines the path passes, in order and without repeats (``hdl/accumulate.py:94``). None
    when the log has no critical path report.
    """
    reports = re.split(r"Info: Critical path report for clock '[^']*' \(posedge -> posedge\):\n", text)
    if len(reports) < 2:
        return None
    body = re.split(r"Info: Critical path report for cross-domain|Info: Max frequency", reports[-1])[0]
    steps = re.findall(r"Info:\s+(clk-to-q|setup|logic|routing)\s+([\d.]+)\s+([\d.]+)", body)
    cells = re.findall(r"(?:Source|Sink) (\S+)", body)
    sources = []
    for where in re.findall(r"Info:\s+(\S+\.py:\d+)", body):
        short = repo_path(where)
        if "site-packages" not in short and short not in sources:
            sources.append(short)
    if not steps or not cells:
        return None
    # nextpnr prints hundredths of a ns; the sum is rounded back to them so that a report reads
    # 3.11, not 3.1100000000000003
    logic = round(sum(float(d) for kind, d, _ in steps if kind != "routing"), 2)
    return {"delay_ns": float(steps[-1][2]), "logic_ns": logic,
            "from": cells[0], "to": cells[-1], "sources": sources}


def nextpnr_fmax(text):
    """The Fmax (MHz) of the last clock a nextpnr log or timing report names, or None."""
    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s*([\d.]+) MHz", text)
    return float(fmax[-1]) if fmax else None
