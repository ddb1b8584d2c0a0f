"""Every command line: bad arguments and bad files give one ``error:`` line and exit 2, a lost link exit 3,
Ctrl-C exit 130, never a traceback (the exit codes of :mod:`quant.cli`)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quant import assets

ROOT = Path(__file__).resolve().parents[1]


def run(module, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg"})


def assert_clean_error(result, code, message):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "cut.npz"
    path.write_bytes(assets.QUANTIZED_MODEL.read_bytes()[:500])
    return path


@pytest.mark.parametrize("module, args, message", [
    ("host.infer", ["--emulate", "--lanes", "100000"], "--lanes must be in 1..256"),
    ("host.infer", ["--emulate", "--limit", "0"], "--limit must be at least 1"),
    ("host.infer", ["--emulate", "--limit", "-5"], "--limit must be at least 1"),
    ("hdl.build", ["--samples", "0", "--no-synth"], "--samples must be in 1..10000"),
    ("hdl.build", ["--no-synth", "--program"], "--program needs a bitstream"),
    ("sim.emulator", ["--lanes", "0"], "--lanes must be in 1..256"),
    ("sim.bench_cycles", ["--samples", "0"], "--samples must be in 1..10000"),
    ("host.bench_link", ["--lanes", "0"], "--lanes must be in 1..256"),
    ("quant.make_assets", ["--model", assets.FLOAT_MODEL, "--samples", "0"], "--samples must be in 1..10000"),
    ("quant.make_assets", ["--model", assets.FLOAT_MODEL, "--pixel-bits", "9"], "--pixel-bits must be in 1..8"),
    ("quant.train", ["--pixel-bits", "0"], "--pixel-bits must lie in [1, 8]"),
    ("quant.train", ["--neuron", "lif", "--no-relu-bypass"], "--no-relu-bypass applies to SRC networks only"),
    ("quant.train", ["--layers", "3", "--recurrent", "4"], "--recurrent 4: layers are numbered 1..3"),
    ("quant.train", ["--neuron", "lif", "--recurrent", "1"], "--recurrent applies to SRC networks and the rlif"),
    ("quant.reproduce", ["table1", "--epochs", "0"], "--epochs must be at least 1"),
    ("quant.reproduce", ["table1", "--cells", "nothing-*"], "no cell of table1 matches"),
])
def test_out_of_range_arguments_exit_2(module, args, message):
    assert_clean_error(run(module, *args), 2, message)


FLOAT_WHERE_QUANTIZED = "this is a float model, not a quantized network; quantize it first: python -m quant.quantize"


@pytest.mark.parametrize("module, args", [
    ("host.infer", ["--emulate", "--model", "{file}"]),
    ("hdl.build", ["--no-synth", "--model", "{file}"]),
    ("sim.emulator", ["--model", "{file}"]),
    ("sim.emulator", ["--backend", "rtl", "--model", "{file}"]),
    ("sim.bench_cycles", ["--network", "{file}", "--samples", "1"]),
    ("host.bench_link", ["--model", "{file}", "--samples", "1"]),
])
@pytest.mark.parametrize("kind", ["float", "truncated"])
def test_a_wrong_or_truncated_file_is_named_and_exits_2(module, args, kind, truncated):
    path = assets.FLOAT_MODEL if kind == "float" else truncated
    message = FLOAT_WHERE_QUANTIZED if kind == "float" else "not a valid quantized network"
    assert_clean_error(run(module, *[a.format(file=path) for a in args]), 2, message)


def test_a_quantized_network_where_a_float_model_is_expected(truncated):
    assert_clean_error(run("quant.make_assets", "--model", assets.QUANTIZED_MODEL), 2,
                       "this is a quantized network, not a float model; it is already quantized")
    assert_clean_error(run("quant.make_assets", "--model", truncated), 2, "not a valid float model")


def test_a_sample_pack_where_a_network_is_expected():
    assert_clean_error(run("host.infer", "--emulate", "--model", assets.SAMPLES), 2,
                       "this is a sample pack, not a quantized network")


def _start_emulator(*args):
    process = subprocess.Popen([sys.executable, "-m", "sim.emulator", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    return process, process.stdout.readline().strip()


def _infer_until_killed(url, victim, sig=signal.SIGKILL, after=1.5):
    """Run host.infer against ``url`` and send ``sig`` to ``victim`` (a process, or 'self') mid-run."""
    infer = subprocess.Popen([sys.executable, "-m", "host.infer", "--port", url, "--timeout", "1", "--json",
                              os.devnull], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(after)
    (infer if victim == "self" else victim).send_signal(sig)
    out, err = infer.communicate(timeout=60)
    return infer.returncode, err


@pytest.mark.parametrize("transport", ["socket", "pty"])
def test_a_dropped_link_is_an_error_with_its_own_exit_code(transport):
    emulator, url = _start_emulator(*(["--pty"] if transport == "pty" else []))
    try:
        code, err = _infer_until_killed(url, emulator)
    finally:
        emulator.kill()
        emulator.wait()
    assert code == 3, err[-2000:]
    assert "error: " in err and "Traceback" not in err


def test_ctrl_c_exits_130_without_a_traceback():
    emulator, url = _start_emulator()
    try:
        code, err = _infer_until_killed(url, "self", signal.SIGINT)
    finally:
        emulator.kill()
        emulator.wait()
    assert code == 130 and "Traceback" not in err


def test_ctrl_c_stops_the_emulator_with_130():
    emulator, url = _start_emulator()
    time.sleep(0.5)
    emulator.send_signal(signal.SIGINT)
    _, err = emulator.communicate(timeout=30)
    assert emulator.returncode == 130 and "Traceback" not in err


def test_infer_warns_when_the_encoding_is_not_the_models():
    result = run("host.infer", "--emulate", "--limit", "2", "--encoding", "rate", "--json", os.devnull)
    assert "warning: " in result.stderr and "trained with latency coding" in result.stderr
