"""The ECP5 flow of an Amaranth build tree, with nextpnr run once per placement seed.

Amaranth writes ``build_NAME.sh``: Yosys, then nextpnr-ecp5, then ecppack. Its steps are run here
instead, so that nextpnr can place and route the one netlist with several seeds at once. A
placement is a sample: one netlist's Fmax moves by about 5 MHz between seeds (RESULTS, "Board
builds"), so a report that names every seed's figure says more than one placement can. Each
seed runs in its own folder ``seed-S`` of the tree; the one with the highest Fmax is packed into
the bitstream, and its log, timing report and configuration are copied to the tree's top, where
Amaranth's own script leaves them.
"""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .toolchain import nextpnr_fmax

__all__ = ["script_steps", "seed_step", "run"]

TOOLS = ("YOSYS", "NEXTPNR_ECP5", "ECPPACK")


def script_steps(script):
    """The Yosys, nextpnr-ecp5 and ecppack command lines of an Amaranth ECP5 build script."""
    steps = {}
    for line in script.splitlines():
        found = re.match(r'"\$(\w+)"', line)
        if found and found.group(1) in TOOLS:
            steps[found.group(1)] = line
    missing = [tool for tool in TOOLS if tool not in steps]
    if missing:
        raise ValueError(f"the build script has no {', '.join(missing)} step")
    return steps


def seed_step(line, seed, folder):
    """nextpnr's command ``line`` placing with ``seed``, its log and outputs written in ``folder``."""
    replacements = [("--seed", lambda _: str(seed))] + [
        (option, lambda name: f"{folder}/{name}") for option in ("--log", "--report", "--textcfg")]
    for option, value in replacements:
        line, count = re.subn(rf"(?<=\s){option} (\S+)", lambda m: f"{option} {value(m.group(1))}", line)
        if count != 1:
            raise ValueError(f"nextpnr's command names {option} {count} times, not once: {line}")
    return line


def run(build_dir, name, seeds, jobs=1, log=print, synthesise=True, earlier=None):
    """Run the tree's flow, nextpnr once for each of ``seeds`` (``jobs`` at a time).

    With ``synthesise`` false Yosys is not run: the tree's netlist, from an earlier run, is placed
    again. ``earlier`` (``{seed: Fmax}``) names placements already in the tree (their ``seed-S``
    folders); the best is chosen among them too, so that more seeds never pack a worse one.

    Returns ``(best, figures)``: the seed packed into ``NAME.bit``, and for each seed, the earlier
    ones first, its Fmax (None where nextpnr reported none).
    """
    build_dir = Path(build_dir)
    steps = script_steps((build_dir / f"build_{name}.sh").read_text())
    if synthesise:
        subprocess.run(["sh", "-ec", steps["YOSYS"]], cwd=build_dir, check=True)

    def place(seed):
        folder = f"seed-{seed}"
        (build_dir / folder).mkdir(exist_ok=True)
        with open(build_dir / folder / "nextpnr.out", "w") as out:
            subprocess.run(["sh", "-ec", seed_step(steps["NEXTPNR_ECP5"], seed, folder)], cwd=build_dir,
                           check=True, stdout=out, stderr=subprocess.STDOUT)
        fmax = nextpnr_fmax((build_dir / folder / f"{name}.tim").read_text(errors="replace"))
        log(f"nextpnr, seed {seed}: " + (f"{fmax:.1f} MHz" if fmax else "no Fmax reported"))
        return fmax

    figures = dict(earlier or {})
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        figures.update(zip(seeds, pool.map(place, seeds)))
    best = max(figures, key=lambda seed: figures[seed] or 0.0)
    for suffix in (".tim", ".timing.json", ".config"):
        shutil.copyfile(build_dir / f"seed-{best}" / f"{name}{suffix}", build_dir / f"{name}{suffix}")
    subprocess.run(["sh", "-ec", steps["ECPPACK"]], cwd=build_dir, check=True)
    return best, figures
