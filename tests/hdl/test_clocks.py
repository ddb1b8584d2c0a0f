"""hdl.clocks: the boards' clock generators and the reset they hold the design in."""

import re

from amaranth import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io


class _Counter(Elaboratable):
    """A register with a reset, clocked as a board design is."""

    def __init__(self, clock):
        self.clock = clock

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.clock = self.clock
        count = Signal(8)
        m.d.sync += count.eq(count + 1)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(count[7])
        return m


def _module(rtlil, name):
    start = rtlil.index(f"module \\{name}\n")
    return rtlil[start:rtlil.index("\nend\n", start)]


def test_the_ecp5_reset_reaches_the_design_on_a_global_network():
    """Regression: the reset, routed through the fabric from the synchroniser to every flip-flop
    with a reset, was the ULX3S build's critical path (20.1 ns). It must leave the clock module
    through a DCCA (a global buffer) fed by the synchroniser, and be the reset the design uses."""
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from hdl.clocks import ECP5PLL

    rtlil = ULX3S_85F_Platform().prepare(_Counter(ECP5PLL(100e6)), name="top").files["top.il"]
    clock = _module(rtlil, "top.clock")
    buffer = re.search(r"cell \\DCCA \\\S+\n((?:    connect .*\n)+)", clock)
    assert buffer, "no DCCA in the clock module"
    ports = dict(re.findall(r"connect \\(\w+) (.+)", buffer.group(1)))
    assert ports["CE"] == "1'1"
    assert ports["CLKO"] == "\\rst"                                # the domain's reset ...
    assert re.search(r"wire width 1 output \d+ +\\rst\n", clock)  # ... leaves the clock module
    held = ports["CLKI"].split()[0]                                # fed from the synchroniser's last stage,
    synchroniser = _module(rtlil, "top.clock.reset")
    assert re.search(rf"connect \\stage1 \{held}", clock)
    assert synchroniser.count("cell $dff") == 2
    assert "switch \\rst" not in synchroniser                    # whose two flip-flops have no reset,
    assert synchroniser.count("attribute \\init 1'1") >= 2       # and start set: the design starts in reset
    assert re.search(r"switch \\rst", _module(rtlil, "top"))      # and the counter is reset by it


def test_the_xilinx_reset_stays_in_the_fabric():
    """The Arty's flow (synthesis only: no Artix-7 place and route here) keeps a plain reset net."""
    from amaranth_boards.arty_a7 import ArtyA7_35Platform

    from hdl.clocks import XilinxMMCM

    rtlil = ArtyA7_35Platform().prepare(_Counter(XilinxMMCM(96e6)), name="top").files["top.v"]
    assert "MMCME2_BASE" in rtlil and "DCCA" not in rtlil and "BUFG" in rtlil
