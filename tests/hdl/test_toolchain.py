"""Reading nextpnr's log: the Fmax and the critical path, on an excerpt of a real nextpnr-ecp5 log."""

from hdl.toolchain import nextpnr_critical_path, nextpnr_fmax

LOG = """\
Info: Max frequency for clock '$glbnet$cd_sync.clk': 21.25 MHz (FAIL at 25.00 MHz)
Info: Critical path report for clock '$glbnet$cd_sync.clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source device.core.queue1.fifo.r_port__addr_TRELLIS_FF_Q_4.Q
Info:    routing  1.40  1.92 Net device.core.queue1.fifo.r_port__addr[1] (41,64) -> (44,62)
Info:                          Sink device.core.queue1.fifo.storage.0.8$DPRAM_COMB3.B
Info:                          Defined in:
Info:                               /usr/lib/python3.11/site-packages/amaranth/lib/memory.py:240
Info:      logic  0.24  2.16 Source device.core.queue1.fifo.storage.0.8$DPRAM_COMB3.F
Info:    routing  2.27  4.43 Net device.core.scheduler.row (18,58) -> (22,44)
Info:                          Sink device.core.scheduler.row_CCU2C.A1
Info:                          Defined in:
Info:                               /home/user/src-fpga/hdl/scheduler.py:169
Info:                               /usr/lib/python3.11/site-packages/pyosys/share/lattice/arith_map_ccu2c.v:74.7-80.4
Info:      logic  0.45  4.88 Source device.core.scheduler.row_CCU2C.FCO
Info:    routing  0.40  5.28 Net device.core.accumulate.base (23,38) -> (23,38)
Info:                          Sink device.core.accumulate.weights_odd_FF.M
Info:                          Defined in:
Info:                               /home/user/src-fpga/hdl/accumulate.py:94
Info:                               /home/user/src-fpga/hdl/scheduler.py:169
Info:      setup  0.10  5.38 Sink device.core.accumulate.weights_odd_FF.M
Info: Critical path report for cross-domain path '<async>' -> '<async>':
Info:   clk-to-q  0.52  0.52 Source device.uart.rx_FF.Q
Info: Max frequency for clock '$glbnet$cd_sync.clk': 185.87 MHz (PASS at 25.00 MHz)
"""


def test_fmax_is_the_last_one_reported():
    assert nextpnr_fmax(LOG) == 185.87
    assert nextpnr_fmax("no timing here") is None


def test_the_critical_path_names_its_ends_and_our_source_lines_in_order():
    path = nextpnr_critical_path(LOG)
    assert path["delay_ns"] == 5.38
    assert path["logic_ns"] == 1.31             # 0.52 + 0.24 + 0.45 + 0.10, in nextpnr's hundredths
    assert path["from"] == "device.core.queue1.fifo.r_port__addr_TRELLIS_FF_Q_4.Q"
    assert path["to"] == "device.core.accumulate.weights_odd_FF.M"
    assert path["sources"] == ["hdl/scheduler.py:169", "hdl/accumulate.py:94"]    # no library lines, no repeats
    assert nextpnr_critical_path("Info: Max frequency for clock 'clk': 50.00 MHz") is None
