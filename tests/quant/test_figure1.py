from quant.figure1 import main, traces


def test_paper_figure1_behaviour():
    silent, spontaneous = traces(-6.0, 0.3, 300, 50, 200), traces(-4.0, 0.3, 300, 50, 200)
    quiet = lambda tr: list(tr["s"][:50]) + list(tr["s"][220:])
    # Paper section 3: with b_h = -6 the neuron is silent without input, with b_h = -4 it spikes anyway.
    assert max(quiet(silent)) == 0.0 and max(silent["s"][50:200]) > 0.5
    assert max(quiet(spontaneous)) > 0.5


def test_figure1_command_writes_a_png(tmp_path):
    out = tmp_path / "fig.png"
    assert main(["--out", str(out), "--steps", "80", "--on", "10", "--off", "60"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
