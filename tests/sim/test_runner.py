"""sim.runner's Verilog for Icarus: the patches it needs, checked on text and by Icarus itself."""

import shutil
import subprocess

import pytest

from sim.runner import icarus_compatible, write_core_verilog
from tests.helpers import random_network


def test_a_block_that_only_assigns_a_constant_becomes_an_initial_assignment():
    text = ("  always @*\n    take[0] = 1'h0;\n"
            "  always @*\n    \\events.payload  = 9'h1ff;\n"
            "  always @*\n    x = y;\n")
    assert icarus_compatible(text) == ("  initial take[0] = 1'h0;\n"
                                       "  initial \\events.payload  = 9'h1ff;\n"
                                       "  always @*\n    x = y;\n")


def test_the_start_up_trigger_is_toggled_once():
    text = "  reg \\$auto$verilog_backend.cc:2355:dump_module$14  = 0;\n"
    assert icarus_compatible(text) == ("  reg \\$auto$verilog_backend.cc:2355:dump_module$14 = 0;\n"
                                       "  initial #1 \\$auto$verilog_backend.cc:2355:dump_module$14 = 1;\n")


@pytest.mark.skipif(not shutil.which("iverilog"), reason="needs Icarus Verilog")
def test_icarus_finds_every_combinational_block_of_the_core_sensitive(tmp_path):
    """Icarus 11 warns of an ``always @*`` that can never run (the scheduler's unused ``take[0]``,
    tied to 0, was one); the core's patched Verilog compiles without that warning."""
    source = tmp_path / "core.v"
    write_core_verilog(random_network([24, 12, 100], seed=21, n_steps=20), 4, source, simulator="icarus")
    compiled = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "core.vvp"), str(source)],
                              capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    assert "no sensitivities" not in compiled.stderr
