"""hdl.seeds: Amaranth's ECP5 script split into its steps, nextpnr once per seed, the best one packed.

The flow runs with stand-in tools (small shell scripts) that write what the real ones write, the
stand-in nextpnr an Fmax that depends on the seed, so the choice of seed is checked by hand.
"""

import stat

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from hdl.seeds import run, script_steps, seed_step

OPTIONS = "--seed 1 --timing-allow-fail --report top.timing.json --detailed-timing-report"


class _Blink(Elaboratable):
    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        m.d.sync += count.eq(count + 1)
        return m


def _tree(folder):
    """Amaranth's own ECP5 build tree of a small design, written but not run."""
    plan = ULX3S_85F_Platform().build(_Blink(), name="top", build_dir=str(folder), do_build=False,
                                      nextpnr_opts=OPTIONS)
    plan.extract(str(folder))
    return folder


def test_amaranths_script_gives_its_three_steps_and_a_line_per_seed(tmp_path):
    steps = script_steps((_tree(tmp_path) / "build_top.sh").read_text())
    assert steps["YOSYS"].startswith('"$YOSYS"') and steps["ECPPACK"].startswith('"$ECPPACK"')
    line = seed_step(steps["NEXTPNR_ECP5"], 7, "seed-7")
    assert "--seed 7 " in line and "--seed 1 " not in line
    assert "--report seed-7/top.timing.json" in line and "--log seed-7/top.tim" in line
    assert "--textcfg seed-7/top.config" in line
    assert "--json top.json" in line and "--detailed-timing-report" in line   # the netlist is shared


def test_a_script_without_a_step_is_refused():
    with pytest.raises(ValueError, match="ECPPACK"):
        script_steps('"$YOSYS" -q top.ys\n"$NEXTPNR_ECP5" --seed 1\n')


# The stand-in nextpnr: Fmax 90 + seed (seed 5: none at all); writes its log, report and config.
NEXTPNR = r'''
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=$2; shift;; --log) log=$2; shift;; --report) report=$2; shift;; --textcfg) cfg=$2; shift;;
  esac; shift
done
[ "$seed" = 5 ] && : > "$log" || echo "Info: Max frequency for clock 'clk': $((90 + seed)).00 MHz (PASS at 100.00 MHz)" > "$log"
echo "{\"seed\": $seed}" > "$report"; echo "seed $seed" > "$cfg"
'''


def _tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _stand_in_tools(tools, monkeypatch):
    """Yosys, nextpnr and ecppack stand-ins in ``tools``, named by the environment as a build names them."""
    tools.mkdir()
    monkeypatch.setenv("YOSYS", _tool(tools, "yosys", 'echo netlist > top.json\n'))
    monkeypatch.setenv("NEXTPNR_ECP5", _tool(tools, "nextpnr", NEXTPNR))
    monkeypatch.setenv("ECPPACK", _tool(tools, "ecppack", 'cp top.config top.bit\n'))
    return tools


def test_the_best_seed_is_packed_and_its_reports_copied_up(tmp_path, monkeypatch):
    tree = _tree(tmp_path / "tree")
    _stand_in_tools(tmp_path / "tools", monkeypatch)
    best, figures = run(tree, "top", [2, 8, 5, 3], jobs=2, log=lambda _: None)
    assert figures == {2: 92.0, 8: 98.0, 5: None, 3: 93.0}
    assert best == 8
    assert (tree / "top.bit").read_text() == "seed 8\n"
    assert (tree / "top.timing.json").read_text() == '{"seed": 8}\n'
    assert "98.00 MHz" in (tree / "top.tim").read_text()
    assert all((tree / f"seed-{s}" / "top.config").exists() for s in (2, 8, 5, 3))


def test_reseeding_places_the_same_netlist_again_and_packs_a_better_seed(tmp_path, monkeypatch, capsys):
    """``python -m hdl.build --reseed OUT --seeds ...`` on a build of seeds 2 and 3 (the stand-in
    nextpnr: Fmax 90 + seed, none for seed 5); the stand-in Yosys fails, so no synthesis may run."""
    import json

    from hdl.build import BOARDS, main

    out = tmp_path / "build"
    tree = _tree(out / "ecp5")
    tools = _stand_in_tools(tmp_path / "tools", monkeypatch)
    best, figures = run(tree, "top", [2, 3], log=lambda _: None)
    part = BOARDS["ulx3s_85f"].part
    (out / "report.json").write_text(json.dumps({
        "board": "ulx3s_85f", "part": part.name, "model": "784-4-10", "lanes": 2, "git_commit": "0123abc",
        "capacity": part.__dict__, "bram18_required": 3, "board_clock_mhz": 100.0, "cycles_per_sample": 1000.0,
        "samples_per_s_at_board_clock": 100e6 / 1000,
        "router": "router1", "nextpnr_options": f"--seed {best} --timing-allow-fail",
        "seeds": [{"seed": s, "fmax_mhz": f} for s, f in figures.items()], "fmax_mhz": figures[best],
        "resources": {}, "notes": [], "out": str(out)}))
    monkeypatch.setenv("YOSYS", _tool(tools, "yosys", 'exit 1\n'))

    assert main(["--reseed", str(out), "--seeds", "8", "5"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(s["seed"], s["fmax_mhz"]) for s in report["seeds"]] == [(2, 92.0), (3, 93.0), (8, 98.0), (5, None)]
    assert report["fmax_mhz"] == 98.0 and report["timing_met"] is False        # 98 MHz against 100
    assert report["samples_per_s_at_fmax"] == 98e6 / 1000
    assert report["nextpnr_options"] == "--seed 8 --timing-allow-fail"
    assert report["git_commit"] == "0123abc"                                 # the netlist's, not this run's
    assert report["reseeded"][0]["seeds"] == [8, 5]
    assert report["reseeded"][0]["command"].startswith("python -m hdl.build --reseed")
    assert (tree / "top.bit").read_text() == "seed 8\n"
    assert "Seeds 8, 5 placed later on the same netlist" in (out / "report.md").read_text()

    # a worse seed joins the list and leaves the packed placement as it was
    assert main(["--reseed", str(out), "--seeds", "4"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["fmax_mhz"] == 98.0 and [s["seed"] for s in report["seeds"]] == [2, 3, 8, 5, 4]
    assert (tree / "top.bit").read_text() == "seed 8\n" and len(report["reseeded"]) == 2
    capsys.readouterr()

    # a seed placed already is refused (nextpnr would place it the same way), as is a change to the build
    assert main(["--reseed", str(out), "--seeds", "9", "3"]) == 2
    assert "seeds 3 are already placed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["--reseed", str(out), "--lanes", "4", "--seeds", "9"])
    assert exit.value.code == 2 and "--lanes cannot change it" in capsys.readouterr().err


def test_reseeding_refuses_what_is_not_an_ecp5_build(tmp_path, capsys):
    import json

    from hdl.build import main

    assert main(["--reseed", str(tmp_path), "--seeds", "2"]) == 2
    assert "no build report" in capsys.readouterr().err
    (tmp_path / "report.json").write_text("{not json")
    assert main(["--reseed", str(tmp_path), "--seeds", "2"]) == 2
    assert "is not a build report" in capsys.readouterr().err
    (tmp_path / "report.json").write_text(json.dumps({"board": "arty_a7_35", "part": "XC7A35T"}))
    assert main(["--reseed", str(tmp_path), "--seeds", "2"]) == 2
    assert "not the report of an ECP5 build" in capsys.readouterr().err
    (tmp_path / "report.json").write_text(json.dumps({"board": "ulx3s_85f", "seeds": [{"seed": 1, "fmax_mhz": 90}]}))
    assert main(["--reseed", str(tmp_path), "--seeds", "2"]) == 2
    assert "no netlist" in capsys.readouterr().err


def test_a_critical_path_without_source_lines_reads_as_a_sentence():
    from hdl.build import _markdown

    report = {"board": "ulx3s_85f", "part": "LFE5U-85F", "model": "784-4-10", "lanes": 2, "resources": {},
              "bram18_required": 3, "fmax_mhz": 101.6, "board_clock_mhz": 100.0, "timing_met": True, "notes": [],
              "critical_path": {"delay_ns": 9.8, "logic_ns": 2.4, "from": "a.Q", "to": "b.LSR", "sources": []}}
    assert "Critical path (9.8 ns, 2.4 ns of it logic): `a.Q` to `b.LSR`." in _markdown(report)
    report["critical_path"]["sources"] = ["hdl/inbox.py:40", "hdl/device.py:90"]
    assert "`a.Q` to `b.LSR`, through `hdl/inbox.py:40`, `hdl/device.py:90`." in _markdown(report)
