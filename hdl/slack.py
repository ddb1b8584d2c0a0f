"""Every timing endpoint that misses the clock, from nextpnr's JSON report, grouped by the signal it ends at.

nextpnr's log names one critical path per clock; a design that misses its clock by some hundreds
of endpoints then needs a build per path. Run with ``--report FILE --detailed-timing-report``,
nextpnr writes the arrival time of every timing endpoint (a flip-flop's data, enable or reset
input, a block RAM's address or data input) in ``detailed_net_timings``; this module reads them
back and groups the late ones by the register (or memory) they end at, so that one build shows
every path to work on.

The slack here is ``period - arrival``: the endpoint's setup time (0 ns for an ECP5 flip-flop's
data input, 0.4 ns for its reset) is not in the report, so a group within half a nanosecond of
zero may pass or fail by it; nextpnr's Fmax stays the design's figure.

``python -m hdl.slack REPORT.json`` prints the groups. Exit codes: 0 every endpoint meets the
period; 1 some are late; 2 the report is missing, unreadable or has no per-endpoint timing.
"""

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from .toolchain import repo_path

__all__ = ["ReportError", "arrivals", "late_groups", "signal_of", "summary", "main"]

#: What nextpnr and Yosys add to a register's or memory's name as they map and pack it.
_PACKED = re.compile(r"(\$(DPRAM|CCU2|TRELLIS|LUT|PFUMX)\w*|_(TRELLIS_FF_Q|TRELLIS_COMB|LUT4|CCU2C|DPRAM|PFUMX|L6MUX21)\w*)$")


class ReportError(Exception):
    """The file is not a nextpnr JSON report with per-endpoint timing."""


def arrivals(report):
    """``(arrival_ns, cell, port, sources)`` of every endpoint in a parsed report, latest first.

    ``sources`` are the design's source lines the net into the endpoint was made from (Amaranth's
    ``src`` attributes), without the tools' own library files.
    """
    nets = report.get("detailed_net_timings") if isinstance(report, dict) else None
    if not nets:
        raise ReportError("no detailed_net_timings: run nextpnr with --report FILE --detailed-timing-report")
    found = []
    for net in nets:
        sources = [s for s in net.get("sources", []) if "site-packages" not in s and "/share/" not in s]
        for end in net["endpoints"]:
            delay = end["delay"]
            arrival = float(max(delay) if isinstance(delay, list) else delay)
            found.append((arrival, end["cell"], end["port"], sources))
    found.sort(key=lambda e: -e[0])
    return found


def signal_of(cell):
    """The register or memory a packed cell comes from: its hierarchical name, less what the tools added.

    ``device.encoder.count_rp__data_TRELLIS_FF_Q_8`` -> ``device.encoder.count_rp__data``;
    ``device.accumulate.weights1.chunk2.0.0`` (a block RAM) -> ``device.accumulate.weights1.chunk2``.
    """
    cell = _PACKED.sub("", cell.lstrip("\\"))
    parts = cell.split(".")
    # A block RAM or LUT RAM is named memory.row.column (with a port after it): drop that tail.
    while len(parts) > 1 and re.fullmatch(r"\d+(_\w*)?", parts[-1]):
        parts.pop()
    return ".".join(parts)


def late_groups(found, period_ns):
    """The late endpoints of :func:`arrivals`, grouped by :func:`signal_of`: a list of
    ``{"signal", "endpoints", "worst_slack_ns", "sources"}``, worst first."""
    groups = defaultdict(lambda: {"endpoints": 0, "worst_slack_ns": None, "sources": []})
    for arrival, cell, _, sources in found:
        slack = period_ns - arrival
        if slack >= 0:
            break       # ``found`` is latest first
        group = groups[signal_of(cell)]
        group["endpoints"] += 1
        if group["worst_slack_ns"] is None:
            group["worst_slack_ns"] = round(slack, 3)
        group["sources"] += [s for s in sources if s not in group["sources"]]
    rows = [{"signal": signal, **g} for signal, g in groups.items()]
    rows.sort(key=lambda g: g["worst_slack_ns"])
    return rows


def summary(path, period_ns, shown):
    """The late endpoints of the report at ``path``: ``period_ns``, their ``count``, the ``signals``
    they end at and the ``worst`` ``shown`` groups of :func:`late_groups`; or ``{"error": ...}``
    when the report cannot be read (a build records it rather than failing)."""
    try:
        groups = late_groups(arrivals(load(path)), period_ns)
    except ReportError as error:
        return {"error": str(error)}
    return {"period_ns": period_ns, "count": sum(g["endpoints"] for g in groups), "signals": len(groups),
            "worst": groups[:shown]}


def load(path):
    """A nextpnr JSON report, or :class:`ReportError` naming what is wrong with it."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path} is not JSON: {error}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hdl.slack", description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 every endpoint meets the period; 1 some are late; 2 bad arguments or report.")
    parser.add_argument("report", help="nextpnr's --report JSON, written with --detailed-timing-report")
    parser.add_argument("--period", type=float, default=10.0, help="clock period in ns (default: 10, 100 MHz)")
    parser.add_argument("--top", type=int, default=30, help="groups to print, worst first (default: 30)")
    args = parser.parse_args(argv)
    if args.period <= 0 or args.top <= 0:
        parser.error("--period and --top must be positive")
    try:
        found = arrivals(load(args.report))
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    groups = late_groups(found, args.period)
    late = sum(g["endpoints"] for g in groups)
    print(f"{late} of {len(found)} endpoints late at {args.period:g} ns, in {len(groups)} signals")
    for g in groups[:args.top]:
        where = ", ".join(repo_path(s) for s in g["sources"][:3])
        print(f"{g['worst_slack_ns']:8.2f} ns {g['endpoints']:5d}  {g['signal']}  {where}")
    return 1 if late else 0


if __name__ == "__main__":
    sys.exit(main())
