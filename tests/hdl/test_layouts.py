"""hdl.layouts.registered_read: a read one cycle late, and a bare block RAM in Yosys's ECP5 mapping."""

import random
import subprocess

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.back import rtlil
from amaranth.lib import memory
from amaranth.sim import Simulator

from hdl import yosys
from hdl.layouts import UNCHECKED, registered_read


class _Ram(Elaboratable):
    """784 x 14 bits, a write port and a read port on their own addresses."""

    def __init__(self, registered, attrs):
        self.registered, self.attrs = registered, attrs
        self.write_addr, self.read_addr = Signal(10), Signal(10)
        self.write_data, self.write_en, self.read_data = Signal(14), Signal(), Signal(14)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=14, depth=784, init=[], attrs=self.attrs)
        write = mem.write_port()
        if self.registered:
            read, data = registered_read(m, mem, "read")
        else:
            read = mem.read_port()
            data = read.data
        m.d.comb += [write.addr.eq(self.write_addr), write.data.eq(self.write_data), write.en.eq(self.write_en),
                     read.addr.eq(self.read_addr), self.read_data.eq(data)]
        return m

    def ports(self):
        return [self.write_addr, self.read_addr, self.write_data, self.write_en, self.read_data]


def test_the_data_is_the_words_a_cycle_after_their_address():
    """Against a list kept by hand: the word at the address of the cycle before, as written before it."""
    dut, rng, seen = _Ram(True, UNCHECKED), random.Random(3), []

    async def bench(ctx):
        contents = [0] * 784
        for _ in range(300):
            # A few dozen addresses, so that words written are read back often.
            address, write = rng.randrange(40), rng.random() < 0.5
            target, value = rng.randrange(40), rng.randrange(1 << 14)
            if write and target == address:
                target = (target + 1) % 40        # reads and writes never meet (UNCHECKED's promise)
            ctx.set(dut.read_addr, address)
            ctx.set(dut.write_addr, target)
            ctx.set(dut.write_data, value)
            ctx.set(dut.write_en, write)
            await ctx.tick()
            seen.append((ctx.get(dut.read_data), contents[address]))
            if write:
                contents[target] = value

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(got == want for got, want in seen)
    assert sum(want != 0 for _, want in seen) > 200


def _ecp5_cells(tmp_path, ram):
    (tmp_path / "ram.il").write_text(rtlil.convert(ram, ports=ram.ports()))
    subprocess.run([*yosys.command(), "-q", "-p", "read_rtlil ram.il; synth_ecp5 -top top; tee -o stat.txt stat"],
                   cwd=tmp_path, env=yosys.environment(), check=True)
    return {line.split()[1]: int(line.split()[0]) for line in (tmp_path / "stat.txt").read_text().splitlines()
            if len(line.split()) == 2 and line.split()[0].isdigit()}


@pytest.mark.skipif(not yosys.native(), reason="native Yosys (pyosys) not installed")
def test_yosys_maps_it_to_a_bare_block_ram(tmp_path):
    """Regression: with a synchronous port Yosys adds read/write collision logic (flip-flops and
    LUTs after the block RAM's output); through registered_read with UNCHECKED, none."""
    plain = _ecp5_cells(tmp_path, _Ram(False, {}))
    assert plain.get("DP16KD") == 1 and plain.get("TRELLIS_FF", 0) > 0 and plain.get("LUT4", 0) > 0
    bare = _ecp5_cells(tmp_path, _Ram(True, UNCHECKED))
    assert bare.get("DP16KD") == 1 and "TRELLIS_FF" not in bare and "LUT4" not in bare
