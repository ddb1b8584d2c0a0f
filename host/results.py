"""The tables of docs/RESULTS.md, generated from the committed reports so that they never drift from them.

Usage::

    python -m host.results            # rewrite the generated tables of docs/RESULTS.md
    python -m host.results --check    # exit 1 if any table differs from what the reports give

A generated table sits between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``;
everything else in the file is prose, kept as it is. Each NAME has a renderer here that reads
the JSON a documented command wrote (``make results`` reruns those commands, then this).

Exit codes: 0 written or up to date; 1 ``--check`` found a difference; 2 a report is missing
or unreadable.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from quant.cli import EXIT_DISAGREES, EXIT_OK, EXIT_USAGE, error

__all__ = ["RENDERERS", "render", "main"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "RESULTS.md"
_BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)",
                    re.S)


def _n(value, digits=0):
    """A number with thin groups of three (``1 050``), or a dash when unknown."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.replace(",", " ")


def _pct(value, digits=1):
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _commit(report):
    commit = report.get("git_commit")
    return f"`{commit[:10]}`" if commit else "—"


def _load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as problem:
        raise FileNotFoundError(f"{path}: {problem}") from None


def _fits(resources, capacity):
    """Whether every counted resource is within the part: ``yes``, or ``no:`` and those over it."""
    names = {"luts": "LUTs", "ffs": "FFs", "bram18": "block RAM", "dsps": "DSP"}
    over = [names[k] for k in names if k in resources and resources[k] > capacity[k]]
    return f"no: {', '.join(over)}" if over else "yes"


def boards(root):
    lines = ["| board (part) | model, P | LUTs | FFs | block RAM (18 kbit) | DSP | fits | Fmax | samples/s | commit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    reports = [_load(path) for path in (root / "docs" / "builds").glob("*/report.json")]
    # By board, network and lane count (a folder name's "P8" would sort after its "P14").
    reports.sort(key=lambda r: (r["board"], r["model"], Path(r.get("model_file", "")).parent.name, r["lanes"]))
    for r in reports:
        res, cap, util = r.get("resources", {}), r["capacity"], r.get("utilisation", {})
        cell = lambda k: f"{_n(res.get(k))} / {_n(cap[k])} ({_pct(util.get(k), 0)})" if k in res else "—"
        fmax = f"**{r['fmax_mhz']:.1f} MHz**" if r.get("fmax_mhz") else "needs Vivado or openXC7"
        if len(r.get("seeds", [])) > 1:      # the best of several placements: name them all
            fmax += " (seeds " + ", ".join(f"{s['seed']}: {s['fmax_mhz']:.1f}" if s["fmax_mhz"] else f"{s['seed']}: -"
                                          for s in r["seeds"]) + ")"
        rate = r.get("samples_per_s_at_fmax") or r.get("samples_per_s_at_board_clock")
        where = "at Fmax" if r.get("samples_per_s_at_fmax") else f"at {r.get('board_clock_mhz', 0):g} MHz"
        shipped = Path(r.get("model_file", "")).parent.name     # quant/assets/<encoding>/model.npz
        model = f"{r['model']} {shipped}" if shipped in ("latency", "rate") else r["model"]
        lines.append(f"| {r['board']} ({r['part']}) | {model}, {r['lanes']} | {cell('luts')} | {_n(res.get('ffs'))} "
                     f"| {cell('bram18')} | {cell('dsps')} | {_fits(res, cap)} | {fmax} | {_n(rate)} {where} "
                     f"| {_commit(r)} |")
    return lines


def cycles(root):
    r = _load(root / "docs" / "benchmarks" / "cycles.json")
    lines = [f"`{r.get('command', 'python -m sim.bench_cycles')}` (commit {_commit(r)}), "
             f"{r['clock_mhz']:g} MHz.", "",
             "| network | encoding | P | samples | cycles/sample (streamed) | latency (cycles) | event-driven ideal "
             "| utilisation | samples/s | RTL-checked |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        name = f"**{row['network']}** (shipped)" if row.get("shipped") else row["network"]
        lines.append(f"| {name} | {row['encoding']} | {row['lanes']} | {row['samples']} "
                     f"| {_n(row['cycles_per_sample'])} | {_n(row['latency_cycles'])} | {_n(row['ideal_per_sample'])} "
                     f"| {_pct(row['utilisation'])} | {_n(row['samples_per_s'])} | {row['rtl_checked']} |")
    return lines


def link(root):
    r = _load(root / "docs" / "benchmarks" / "link.json")
    lines = [f"`{r.get('command', 'python -m host.bench_link')}` (commit {_commit(r)}): {r['model']}, "
             f"P = {r['lanes']}, {r['baud'] / 1e6:g} Mbaud, {r['clock_mhz']:g} MHz, {r['samples']} MNIST test images.",
             "", "| encoding | image bytes/sample | spike-record bytes/sample | input events/sample | link samples/s "
             "| core samples/s | link keeps up |", "|---|---|---|---|---|---|---|"]
    for encoding, row in r["encodings"].items():
        lines.append(f"| {encoding} | {_n(row['bytes_per_sample'])} (max {_n(row['bytes_max'])}) "
                     f"| {_n(row['spike_record_bytes_per_sample'])} | {_n(row['input_events_per_sample'])} "
                     f"| {_n(row['link_samples_per_s'])} | {_n(row['core_samples_per_s'])} "
                     f"| {'yes' if row['link_keeps_up'] else 'no'} |")
    return lines


def encoder(root):
    r = _load(root / "docs" / "results" / "encoder.json")
    lines = [f"`{r.get('command', 'python -m quant.bench_encoder')}` (commit {_commit(r)})", "",
             "| encoding | model | pixel bits | test images | fixed point, snnTorch encoder "
             "| fixed point, device encoder | change |",
             "|---|---|---|---|---|---|---|"]
    for encoding in ("rate", "latency"):
        if encoding in r:
            e = r[encoding]
            change = 100 * (e["device_encoder_accuracy"] - e["torch_encoder_accuracy"])
            lines.append(f"| {encoding} | `{e['model']}` | {e.get('pixel_bits', 8)} | {_n(e['test_samples'])} "
                         f"| {_pct(e['torch_encoder_accuracy'], 2)} | {_pct(e['device_encoder_accuracy'], 2)} "
                         f"| {change:+.2f} pp |")
    return lines


def training_speed(root):
    r = _load(root / "docs" / "benchmarks" / "train_speed_cpu.json")
    lines = [f"`{r.get('command', 'python -m quant.bench_train')}` (commit {_commit(r)}): "
             f"{'-'.join(map(str, r['sizes']))}, T = {r['steps']}, batch {r['batch_size']}, {r['threads']} threads, "
             f"torch {r['torch']}.", "", "| model | samples/s | s/step |", "|---|---|---|"]
    for row in r["results"]:
        lines.append(f"| {row.get('name', row['neuron'].upper())} | {_n(row['samples_per_s'], 1)} "
                     f"| {row['seconds_per_step']:.3f} |")
    lines += ["", f"SRC / LIF: **{r['src_over_lif']:.2f}x**"]
    if "src_over_dense_src" in r:
        lines[-1] += f"; new SRC / previous (dense) SRC: **{r['src_over_dense_src']:.2f}x**"
    return lines


def fuzz(root):
    r = _load(root / "docs" / "results" / "fuzz.json")
    keys = ("rounds", "malformed", "wrong_answers", "hangs", "crashes", "image_parity_cases",
            "image_parity_mismatches")
    return ([f"`{r.get('command', 'python -m host.fuzz')}` (commit {_commit(r)})", "",
             "| " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * len(keys),
             "| " + " | ".join(_n(r.get(k)) for k in keys) + " |"])


def defaults(root):
    r = _load(root / "docs" / "results" / "defaults.json")
    lines = [f"`{r.get('command', 'python -m host.defaults')}` (commit {_commit(r)}): full MNIST test set, the "
             "device's encoder; resources from Yosys `synth_xilinx` of the Arty A7-35T build.", "",
             "| model | encoding | sizes | weight bits | P | float % | fixed point % | block RAM (18 kbit) | LUTs "
             "| DSP | cycles/sample (one at a time) | fits |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in r["models"]:
        lines.append(f"| {m['name']} | {m['encoding']} | {'-'.join(map(str, m['sizes']))} | {m['weight_width']} "
                     f"| {m['lanes']} | {100 * m['float_test_accuracy']:.2f} | **{100 * m['fixed_test_accuracy']:.2f}** "
                     f"| {_n(m['bram18'])} | {_n(m['luts'])} | {_n(m.get('dsps'))} | {_n(m.get('cycles_per_sample'))} "
                     f"| {m['fits'] or 'no'} |")
    return lines


def quantize(root):
    """Every committed quantization report of a default-model candidate (``quantize-*-w*.json``)."""
    lines = ["| report | sizes | weight bits | pixel bits | encoder | test images | float % | fixed point % | drop (pp) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted((root / "docs" / "results").glob("quantize-*-w*.json")):
        r = _load(path)
        width = r.get("weight_width") or int(re.search(r"-w(\d+)", path.name).group(1))
        lines.append(f"| `{path.name}` | {'-'.join(map(str, r['sizes']))} | {width} | {r.get('pixel_bits', 8)} "
                     f"| {r.get('encoder', 'device')} "
                     f"| {_n(r['samples'])} | {100 * r['float_accuracy']:.2f} | {100 * r['fixed_accuracy']:.2f} "
                     f"| {r['accuracy_drop_pp']:+.2f} |")
    return lines


def table1(root):
    """The paper's Table 1 at this project's budget (docs/results/table1.json, quant.reproduce)."""
    r = _load(root / "docs" / "results" / "table1.json")
    budget = (f"{r['epochs']} epoch{'s' if r['epochs'] != 1 else ''}, "
              f"{_n(r['limit_train']) if r.get('limit_train') else 'all'} training images, hidden width {r['width']}, "
              f"T = {r['steps']}")
    lines = [f"`{r.get('command', 'python -m quant.reproduce table1')}` (commit {_commit(r)}): {budget}; "
             f"{len(r['cells'])} of {len(r['cells']) + len(r['missing'])} cells done. Each cell: this project's test "
             "accuracy (the paper's, gap in pp).", "",
             "| layers | neuron | MNIST rate | MNIST latency | Fashion rate | Fashion latency |",
             "|---|---|---|---|---|---|"]
    cells = {(c["dataset"], c["encoding"], c["layers"], c["neuron"]): c for c in r["cells"]}
    for layers in (1, 2, 3, 5):
        for neuron in ("src", "lif"):
            row = []
            for dataset in ("mnist", "fashion"):
                for encoding in ("rate", "latency"):
                    c = cells.get((dataset, encoding, layers, neuron))
                    row.append("—" if c is None else f"{100 * c['test_accuracy']:.2f} ({100 * c['paper']:.2f}, "
                               f"{100 * (c['test_accuracy'] - c['paper']):+.2f})")
            lines.append(f"| {layers} | {neuron.upper()} | " + " | ".join(row) + " |")
    return lines


def _curves(grid, describe):
    """A per-epoch grid (quant.reproduce ``bypass``, ``deep``, ``recurrent``): per cell, the validation
    accuracy of each epoch and the test accuracy; ``describe`` names a cell's network."""
    def render(root):
        r = _load(root / "docs" / "results" / f"{grid}.json")
        budget = (f"{r['epochs']} epoch{'s' if r['epochs'] != 1 else ''}, "
                  f"{_n(r['limit_train']) if r.get('limit_train') else 'all'} training images, hidden width "
                  f"{r['width']}, T = {r['steps']}")
        lines = [f"`{r.get('command', 'python -m quant.reproduce ' + grid)}` (commit {_commit(r)}): {budget}; "
                 f"{len(r['cells'])} of {len(r['cells']) + len(r['missing'])} cells done.", "",
                 "| network | seed | validation accuracy per epoch (%) | test accuracy (%) |", "|---|---|---|---|"]
        for c in r["cells"]:
            curve = ", ".join(f"{100 * v:.1f}" for v in c["val_accuracy"])
            lines.append(f"| {describe(c)} | {c['seed']} | {curve} | {100 * c['test_accuracy']:.2f} |")
        return lines
    return render


def _network(c):
    shape = {"src": "SRC", "lif": "LIF (snnTorch)", "rlif": "recurrent LIF baseline"}[c["neuron"]]
    recurrent = "".join(f", layer {k} recurrent" for k in c.get("recurrent", []))
    bypass = "" if c.get("bypass", True) else ", no ReLU bypass"
    return f"{shape}, {c['layers']} layers{recurrent}{bypass}"


#: Table name in docs/RESULTS.md -> function of the repository root giving its lines.
RENDERERS = {"boards": boards, "cycles": cycles, "link": link, "training-speed": training_speed, "fuzz": fuzz,
             "encoder": encoder, "defaults": defaults, "quantize": quantize, "table1": table1,
             "bypass": _curves("bypass", _network), "deep": _curves("deep", _network),
             "recurrent": _curves("recurrent", _network)}


def render(text, root=ROOT):
    """``text`` (RESULTS.md) with every generated table made from the reports under ``root``."""
    def block(match):
        name = match["name"]
        if name not in RENDERERS:
            raise KeyError(f"no renderer for the generated table {name!r}")
        return match.group(1) + "\n".join(RENDERERS[name](root)) + "\n" + match.group(4)
    return _BLOCK.sub(block, text)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host.results", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Exit codes: 0 written or up to date; 1 --check found a difference; "
                                       "2 a report is missing or unreadable.")
    p.add_argument("--check", action="store_true", help="compare only; change nothing")
    p.add_argument("--file", type=Path, default=RESULTS, help="the results document")
    args = p.parse_args(argv)
    text = args.file.read_text()
    try:
        new = render(text)
    except (FileNotFoundError, KeyError, ValueError) as problem:
        return error(problem, EXIT_USAGE)
    if args.check:
        if new != text:
            return error(f"{args.file} differs from the reports: run python -m host.results", EXIT_DISAGREES)
        return EXIT_OK
    args.file.write_text(new)
    print(f"{args.file}: {len(_BLOCK.findall(new))} generated tables")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
