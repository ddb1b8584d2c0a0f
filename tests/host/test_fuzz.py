"""The device path under fuzzing, and the device contract held to the gateware (issue: reliability)."""

import json
import os

import pytest
from hypothesis import Phase, given, seed, settings

from firmware.image import DeviceLimits
from host.fuzz import fuzz_link, main as fuzz_main
from tests.image_corpus import baked_and_other, corrupt_images

BAKED, OTHER = baked_and_other()
PARITY_LIMITS = DeviceLimits(2, 16, 24, 200, 20, 16)


def _clean(report):
    return {k: report[k] for k in ("wrong_answers", "hangs", "crashes")} == {"wrong_answers": 0, "hangs": 0,
                                                                            "crashes": 0}


def test_malformed_frames_and_corrupt_images_never_put_the_driver_out_of_step():
    report = fuzz_link(rounds=150, seed=11)
    assert report["rounds"] == 150 and report["malformed"] == 150
    assert _clean(report), report["problems"]
    assert report["stale_replies_skipped"] > 0                 # the case does leave replies behind
    assert set(report["injections"]) >= {"corrupt_image", "truncated", "partial_sample", "stray_request"}


@pytest.mark.slow
def test_a_long_fuzz_run_is_clean():
    report = fuzz_link(rounds=1500, seed=12)
    assert _clean(report), report["problems"]


def _simulator():
    """Verilator where it is installed (a long run), Icarus otherwise."""
    from sim.runner import SimulatorMissing, available_simulator

    try:
        return available_simulator(long_run=True)
    except SimulatorMissing as missing:
        if os.environ.get("SRC_REQUIRE_SIM"):
            raise AssertionError(f"CI installs the simulators: {missing}") from None
        pytest.skip(str(missing))


def hypothesis_corpus(n):
    """``n`` CRC-valid corrupt images drawn by hypothesis (a fixed seed, so the case is the same every run)."""
    found = []

    @seed(20261123)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None)
    @given(corrupt_images(OTHER))
    def collect(case):
        found.append(case)

    collect()
    return found[:n]


def test_the_emulator_and_the_gateware_take_the_same_images_the_same_way():
    """Every image of the corpus, as LOAD, COMMIT, VERIFY and a sample: identical reply bytes."""
    from sim.parity import image_parity

    simulator = _simulator()
    corpus = hypothesis_corpus(40)
    report = image_parity(BAKED, corpus, 4, PARITY_LIMITS, simulator=simulator)
    assert report["cases"] == len(corpus) >= 30 and report["mismatches"] == 0, report["examples"]
    assert 0 < report["accepted"] < report["cases"]   # both verdicts occur


def test_the_fuzz_command_writes_its_report(tmp_path):
    out = tmp_path / "fuzz.json"
    assert fuzz_main(["--rounds", "20", "--seed", "5", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["rounds"] == 20 and report["wrong_answers"] == 0 and report["git_commit"]


def test_the_fuzz_command_refuses_negative_counts(capsys):
    with pytest.raises(SystemExit) as exit_:
        fuzz_main(["--rounds", "-1"])
    assert exit_.value.code == 2 and "must not be negative" in capsys.readouterr().err
