"""hdl.slack: late endpoints of a nextpnr report, grouped by the register or memory they end at."""

import json

import pytest

from hdl.slack import ReportError, arrivals, late_groups, main, signal_of

# A report as nextpnr writes it with --detailed-timing-report (fields it has that are not read
# here left out): three nets, five endpoints, arrival times in ns.
REPORT = {
    "fmax": {"clk": {"achieved": 90.9, "constraint": 100.0}},
    "critical_paths": [],
    "detailed_net_timings": [
        {"net": "n1", "driver": "a", "port": "Q", "sources": ["/repo/hdl/encoder.py:371", "/x/site-packages/pyosys/share/lattice/cells_map_trellis.v:1"],
         "endpoints": [
             {"cell": "top.encoder.count_rp__data_TRELLIS_FF_Q_8", "port": "M", "delay": [2.0, 11.0]},
             {"cell": "top.encoder.count_rp__data_TRELLIS_FF_Q", "port": "M", "delay": [2.0, 10.25]},
             {"cell": "top.encoder.room_TRELLIS_FF_Q", "port": "DI", "delay": [1.0, 9.5]}]},
        {"net": "n2", "driver": "b", "port": "F", "sources": ["/repo/hdl/chunked.py:80"],
         "endpoints": [{"cell": "top.acc.weights1.chunk2.0.1", "port": "ADA7", "delay": [3.0, 10.5]}]},
        {"net": "n3", "driver": "c", "port": "F", "sources": [],
         "endpoints": [{"cell": "top.receiver.$signal$52_TRELLIS_FF_Q_3", "port": "CE", "delay": [0.5, 10.0]}]},
    ],
}


def test_packed_names_go_back_to_their_signal():
    assert signal_of("device.encoder.count_rp__data_TRELLIS_FF_Q_8") == "device.encoder.count_rp__data"
    assert signal_of("\\device.acc.weights1.chunk2.0.0") == "device.acc.weights1.chunk2"
    assert signal_of("dut.counts.0.28$DPRAM_COMB1") == "dut.counts"
    assert signal_of("dut.$signal$88_TRELLIS_FF_Q_6") == "dut.$signal$88"
    assert signal_of("dut.pixels.0.0_DOB5_TRELLIS_FF_Q_1") == "dut.pixels"


def test_late_endpoints_are_grouped_worst_first_with_their_sources():
    found = arrivals(REPORT)
    assert [a for a, *_ in found] == [11.0, 10.5, 10.25, 10.0, 9.5]
    groups = late_groups(found, 10.0)
    # 11.0 and 10.25 end at one register (-1.0 is its worst), 10.5 at a block RAM; 10.0 meets 10 ns.
    assert groups == [
        {"signal": "top.encoder.count_rp__data", "endpoints": 2, "worst_slack_ns": -1.0, "sources": ["/repo/hdl/encoder.py:371"]},
        {"signal": "top.acc.weights1.chunk2", "endpoints": 1, "worst_slack_ns": -0.5, "sources": ["/repo/hdl/chunked.py:80"]},
    ]
    assert late_groups(found, 11.0) == []


def test_the_command_line_exit_codes(tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("3 of 5 endpoints late at 10 ns, in 2 signals")
    assert "top.encoder.count_rp__data  hdl/encoder.py:371" in out
    assert main([str(path), "--period", "11"]) == 0
    # A report without per-endpoint timing, a file that is not JSON, one that is not there.
    path.write_text(json.dumps({"fmax": {}, "critical_paths": []}))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\xff not json")
    for argument in (path, bad, tmp_path / "missing.json"):
        assert main([str(argument)]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--period", "0"])
    assert exit_.value.code == 2


def test_a_report_without_endpoint_timing_is_an_error():
    with pytest.raises(ReportError, match="detailed-timing-report"):
        arrivals({"fmax": {}})
