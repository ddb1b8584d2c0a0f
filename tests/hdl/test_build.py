"""``python -m hdl.build``: the fit check, and the open flows on a small configuration."""

import hashlib
import json

import numpy as np

import pytest

from firmware.image import pack
from hdl.build import BOARDS, _bram18, estimate_memories, main
from firmware.image import DeviceLimits
from quant.quantize import load_network, save_network
from tests.helpers import random_network


def test_block_ram_halves_take_the_best_aspect_ratio():
    # 48 bits x 12544 words: 1K x 18 needs 3 x 13 = 39 halves; 2K x 9 would need 6 x 7 = 42.
    assert _bram18(48, 12544) == 39
    assert _bram18(8, 8192) == 4       # 2K x 9: one wide enough, 4 deep
    assert _bram18(36, 512) == 1


# (At P = 32 the lanes' tables, 32 block RAMs, take the 100T one over its 270.)
@pytest.mark.parametrize("lanes", [8, 16])
def test_784_512_100_weights_fill_block_ram_and_need_the_100t(lanes):
    network = random_network([784, 512, 100], seed=0, n_steps=4)
    image = pack(network, lanes)
    memories = estimate_memories(image, DeviceLimits.exact(image))
    # By hand: 784 x 512 + 512 x 100 weights, padded to whole blocks of P lanes, 8 bits each.
    blocks = [-(-512 // lanes), -(-100 // lanes)]
    bits = (784 * blocks[0] + 512 * blocks[1]) * lanes * 8
    weights = next(m for m in memories if m["name"] == "weights")
    assert bits / 18432 <= weights["bram18"] <= 1.15 * bits / 18432   # packed: within 15 % of the bit count
    need = sum(m["bram18"] for m in memories)
    assert BOARDS["arty_a7_35"].part.bram18 < need <= BOARDS["arty_a7_100"].part.bram18


def test_a_model_too_big_is_refused_before_synthesis(tmp_path, capsys):
    model = tmp_path / "big.npz"
    save_network(model, random_network([784, 512, 100], seed=0, n_steps=4))
    assert main(["--board", "arty_a7", "--model", str(model), "--out", str(tmp_path / "out")]) == 2
    assert "block-RAM halves" in capsys.readouterr().err


@pytest.fixture
def small_model(tmp_path):
    path = tmp_path / "small.npz"
    save_network(path, random_network([24, 12, 100], seed=1, n_steps=20))
    return path


def test_arty_build_writes_the_vivado_tree_and_reports_utilisation(tmp_path, small_model):
    out = tmp_path / "arty"
    assert main(["--board", "arty_a7", "--model", str(small_model), "--lanes", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["part"] == "XC7A35T"
    assert all(report["resources"][k] > 0 for k in ("luts", "ffs", "bram18", "dsps"))
    assert 0 < report["utilisation"]["luts"] < 1
    xdc = (out / "xc7" / "top.xdc").read_text()
    assert "A9" in xdc and "D10" in xdc            # the FTDI UART pins
    assert (out / "xc7" / "build_top.sh").exists() and (out / "report.md").exists()
    assert "set_property PACKAGE_PIN A9 [get_ports {uart_0__rx__io}]" in (out / "xc7" / "top_openxc7.xdc").read_text()
    assert "nextpnr-xilinx --chipdb" in (out / "xc7" / "build_openxc7.sh").read_text()
    assert any("build_openxc7.sh" in note for note in report["notes"])
    assert report["model_sha256"] == hashlib.sha256(small_model.read_bytes()).hexdigest()


@pytest.mark.slow  # nextpnr-ecp5 in WebAssembly: about 3 minutes
def test_ecp5_build_closes_timing_and_makes_a_bitstream(tmp_path, small_model):
    out = tmp_path / "ecp5"
    assert main(["--board", "ulx3s_85f", "--model", str(small_model), "--lanes", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["fmax_mhz"] > report["board_clock_mhz"] and report["timing_met"]
    assert (out / "ecp5" / "top.bit").stat().st_size > 0


def test_the_board_top_uses_no_deprecated_amaranth_api():
    """Pins are requested with dir="-" and wrapped in io.Buffer (platform.request without it goes in Amaranth 0.6)."""
    import warnings

    from amaranth_boards.arty_a7 import ArtyA7_35Platform

    from hdl.build import BoardTop

    image = pack(random_network([24, 12, 100], seed=1, n_steps=20), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ArtyA7_35Platform().prepare(BoardTop(image, 12_000_000, clock_hz=96e6), name="top")


def test_the_arty_runs_at_96_mhz_from_the_mmcm_for_12_mbaud():
    """12 Mbaud needs a clock it divides: 96 MHz = 100 MHz x 12 / 12.5 (VCO 1200 MHz), 8 cycles per bit."""
    import re

    from amaranth_boards.arty_a7 import ArtyA7_35Platform

    from hdl.build import ARTY_BAUD, ARTY_CLOCK_HZ, BOARDS, BoardTop
    from hdl.clocks import mmcm_settings
    from hdl.uart import divisor

    assert BOARDS["arty_a7_35"].baud == ARTY_BAUD == 12_000_000 and divisor(ARTY_CLOCK_HZ, ARTY_BAUD, 0.0) == 8
    assert mmcm_settings(100e6, 96e6) == (12.0, 1, 12.5)
    image = pack(random_network([24, 12, 100], seed=1, n_steps=20), 2)
    verilog = ArtyA7_35Platform().prepare(BoardTop(image, ARTY_BAUD, clock_hz=ARTY_CLOCK_HZ), name="top").files["top.v"]
    assert "MMCME2_BASE" in verilog and re.search(r"CLKOUT0_DIVIDE_F\(12\.5\)", verilog)
    with pytest.raises(ValueError, match="off by"):
        divisor(100e6, 12_000_000, 0.01)   # the board's own 100 MHz cannot: 4 % off


def test_the_ulx3s_runs_its_core_at_100_mhz_from_the_pll():
    """25 MHz x 4 = 100 MHz (VCO 800 MHz: CLKOP divided by 8, feedback divided by 4); 1 Mbaud divides it."""
    import re

    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from hdl.build import BOARDS, BoardTop
    from hdl.clocks import ecp5_pll_settings
    from hdl.uart import divisor

    spec = BOARDS["ulx3s_85f"]
    assert spec.clock_hz == 100e6 and divisor(spec.clock_hz, spec.baud, 0.0) == 100
    assert ecp5_pll_settings(25e6, 100e6) == (1, 4, 8)
    with pytest.raises(ValueError, match="no ECP5 PLL setting"):
        ecp5_pll_settings(25e6, 1000e6)          # past the VCO's 800 MHz
    image = pack(random_network([24, 12, 100], seed=1, n_steps=20), 2)
    rtlil = ULX3S_85F_Platform().prepare(BoardTop(image, spec.baud, clock_hz=spec.clock_hz), name="top").files["top.il"]
    assert "cell \\EHXPLLL" in rtlil and re.search(r"CLKFB_DIV 4\n", rtlil) and re.search(r"CLKOP_DIV 8\n", rtlil)


def test_a_line_rate_the_clock_cannot_make_is_refused(tmp_path, small_model, capsys):
    assert main(["--board", "arty_a7", "--model", str(small_model), "--baud", "7000000", "--no-synth",
                 "--out", str(tmp_path)]) == 2
    assert "7000000 baud at 96000000" in capsys.readouterr().err


def test_cycles_per_sample_use_the_samples_of_the_models_own_encoding():
    """Regression: a build of the rate model counted cycles on the latency model's samples."""
    from hdl.build import shipped_samples
    from quant import assets
    from quant.samples import load_samples

    for name in assets.NAMES:
        network = load_network(assets.model(name).quantized_model)
        assert network.encoding == name
        assert np.array_equal(shipped_samples(network), load_samples(assets.model(name).samples)[0])
    small = random_network([24, 12, 100], seed=1, n_steps=20)
    assert shipped_samples(small) is None
