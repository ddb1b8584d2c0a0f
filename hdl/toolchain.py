"""What the open tools share across the board flows: the Verilog Yosys reads, and nextpnr's Fmax."""

import re
from pathlib import Path

__all__ = ["yosys_verilog", "nextpnr_fmax"]


def yosys_verilog(build_dir, name):
    """Write ``NAME_yosys.v``, Amaranth's ``NAME.v`` as Yosys reads it; returns its file name.

    Yosys's BUFGCTRL model lacks the simulation-only SIM_DEVICE parameter Amaranth sets.
    """
    build_dir = Path(build_dir)
    text = re.sub(r"BUFGCTRL\s*#\(\s*\.SIM_DEVICE\(\"[^\"]*\"\)\s*\)", "BUFGCTRL", (build_dir / f"{name}.v").read_text())
    (build_dir / f"{name}_yosys.v").write_text(text)
    return f"{name}_yosys.v"


def nextpnr_fmax(text):
    """The Fmax (MHz) of the last clock a nextpnr log or timing report names, or None."""
    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s*([\d.]+) MHz", text)
    return float(fmax[-1]) if fmax else None
