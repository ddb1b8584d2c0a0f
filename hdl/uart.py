"""UART receiver and transmitter (8N1) with stream interfaces."""

from amaranth import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["divisor", "UARTTx", "UARTRx"]


def divisor(clk_freq, baud, tolerance=0.02):
    """Clock cycles per bit; fails when the nearest integer misses ``baud`` by more than ``tolerance``."""
    cycles = round(clk_freq / baud)
    if cycles < 4:
        raise ValueError(f"{baud} baud needs at least 4 clock cycles per bit at {clk_freq} Hz")
    error = abs(clk_freq / cycles - baud) / baud
    if error > tolerance:
        raise ValueError(f"{baud} baud at {clk_freq} Hz is off by {100 * error:.1f} % (more than {100 * tolerance} %)")
    return cycles


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        The line, idle high.
    """

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(unsigned(8))), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10)
        bits = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.comb += self.data.ready.eq(bits == 0)
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))), bits.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += self.tx.eq(shift[0])
            with m.If(timer == 0):
                m.d.sync += [shift.eq(shift >> 1), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        with m.If((bits == 0) & ~self.data.valid):
            m.d.sync += self.tx.eq(1)
        return m


class UARTRx(wiring.Component):
    """8N1 receiver: samples each bit in its middle; a bad stop bit drops the byte and flags ``error``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    rx : In(1)
        The line (synchronised inside).
    data : Out(stream.Signature(8))
        Received bytes; a byte not taken before the next one arrives is lost and counted in ``overrun``.
    error : Out(1)
        One-cycle pulse on a framing error.
    overrun : Out(1)
        One-cycle pulse when a byte was lost.
    """

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(unsigned(8))),
                          "error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        shift = Signal(8)
        bits = Signal(range(10))
        timer = Signal(range(self.divisor + self.divisor // 2 + 1))
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Wait half a bit to the middle of the start bit, then whole bits.
                    m.d.sync += [timer.eq(self.divisor // 2), bits.eq(0)]
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"   # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += timer.eq(self.divisor - 1)
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1), timer.eq(self.divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.comb += self.error.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m
