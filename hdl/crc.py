"""CRC-16/CCITT-FALSE over a byte stream, one byte per cycle (the link frames' check)."""

from amaranth import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from firmware.protocol import crc16

__all__ = ["CRC16"]

POLY, INIT = 0x1021, 0xFFFF
assert crc16(b"") == INIT  # the same CRC as the protocol module's


def _step(crc, byte):
    """One byte of the CRC as an Amaranth expression (8 unrolled shift-and-xor steps)."""
    crc = crc ^ (byte << 8)
    for _ in range(8):
        crc = ((crc << 1) ^ (POLY * crc[15]))[:16]
    return crc


class CRC16(wiring.Component):
    """Running CRC-16/CCITT-FALSE.

    Members
    -------
    clear : In(1)
        Restart at 0xFFFF (takes effect on the next byte).
    valid : In(1)
        ``data`` holds a byte to add this cycle.
    data : In(8)
    crc : Out(16)
        The CRC of the bytes added since the last ``clear``.
    """

    def __init__(self):
        super().__init__({"clear": In(1), "valid": In(1), "data": In(unsigned(8)), "crc": Out(16, init=INIT)})

    def elaborate(self, platform):
        m = Module()
        base = Signal(16)
        m.d.comb += base.eq(self.crc)
        with m.If(self.clear):
            m.d.comb += base.eq(INIT)
            m.d.sync += self.crc.eq(INIT)
        with m.If(self.valid):
            m.d.sync += self.crc.eq(_step(base, self.data))
        return m
