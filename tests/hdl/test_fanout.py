"""Register copies survive synthesis: Yosys would merge them back into one flip-flop without KEEP_MARKED."""

import re
import subprocess

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog

from hdl import yosys
from hdl.fanout import KEEP_MARKED, register_copies


def _flipflops(tmp_path, script_after_read):
    m = Module()
    value, out = Signal(4), Signal(16)
    copies = register_copies(m, (value + 1)[:4], 4, "copy")
    m.d.comb += out.eq(copies[0] | (copies[1] << 4) | (copies[2] << 8) | (copies[3] << 12))
    (tmp_path / "t.v").write_text(verilog.convert(m, name="top", ports=[value, out]))
    script = f"read_verilog t.v; {script_after_read}; synth_ecp5 -top top; tee -o stat.txt stat"
    subprocess.run([*yosys.command(), "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True,
                   env=yosys.environment())
    return int(re.search(r"(\d+)\s+TRELLIS_FF", (tmp_path / "stat.txt").read_text()).group(1))


def test_copies_are_kept_apart(tmp_path):
    try:
        yosys.command()
    except FileNotFoundError:
        pytest.skip("no Yosys")
    assert _flipflops(tmp_path, KEEP_MARKED) == 16          # four copies of four bits
    assert _flipflops(tmp_path, "proc") == 4                 # the control: merged back into one
