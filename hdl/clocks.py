"""Board clocks: the ``sync`` domain at the frequency the design wants, from the board's oscillator.

The Arty's FT2232H runs its UART at up to 12 Mbaud, which the board's 100 MHz cannot divide to
within 1 % (8 cycles per bit are 4 % off); 96 MHz divides it exactly. :class:`XilinxMMCM` makes it
with the Artix-7's MMCM (VCO 1200 MHz, output divider 12.5), and :func:`mmcm_settings` finds the
settings for other frequencies.
"""

from amaranth import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["mmcm_settings", "XilinxMMCM"]

#: Artix-7 (speed grade -1) MMCM limits: VCO range, multiplier, input divider, output divider (steps of 1/8).
VCO_HZ = (600e6, 1200e6)


def mmcm_settings(input_hz, output_hz, tolerance=1e-6):
    """``(multiplier, divider, output_divide)`` giving ``output_hz`` from ``input_hz`` exactly (within
    ``tolerance``), the highest VCO first (lowest jitter). Raises ``ValueError`` when none does.

    The multiplier (2..64) and the output divider (1..128) go in steps of 1/8, the input divider
    is an integer; the VCO must stay in :data:`VCO_HZ`.
    """
    best = None
    for divider in range(1, 107):
        for eighths in range(2 * 8, 64 * 8 + 1):
            vco = input_hz * eighths / 8 / divider
            out_eighths = round(vco * 8 / output_hz)
            if not (VCO_HZ[0] <= vco <= VCO_HZ[1] and 8 <= out_eighths <= 128 * 8):
                continue
            if abs(vco * 8 / out_eighths - output_hz) <= tolerance * output_hz and (best is None or vco > best[3]):
                best = (eighths / 8, divider, out_eighths / 8, vco)
    if best is None:
        raise ValueError(f"no MMCM setting makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz")
    return best[:3]


class XilinxMMCM(Elaboratable):
    """Drives the ``sync`` domain (defined by the parent) at ``output_hz`` from the platform's default clock,
    through an MMCME2_BASE; ``sync`` is held in reset until the MMCM has locked.
    """

    def __init__(self, output_hz):
        self.output_hz = output_hz

    def elaborate(self, platform):
        m = Module()
        input_hz = platform.default_clk_frequency
        multiplier, divider, output_divide = mmcm_settings(input_hz, self.output_hz)
        m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
        feedback, raw, locked = Signal(), Signal(), Signal()
        m.submodules.mmcm = Instance(
            "MMCME2_BASE", p_CLKIN1_PERIOD=1e9 / input_hz, p_CLKFBOUT_MULT_F=multiplier, p_DIVCLK_DIVIDE=divider,
            p_CLKOUT0_DIVIDE_F=output_divide, i_CLKIN1=clk_in.i, i_CLKFBIN=feedback, o_CLKFBOUT=feedback,
            o_CLKOUT0=raw, o_LOCKED=locked, i_RST=0, i_PWRDWN=0)
        m.submodules.bufg = Instance("BUFG", i_I=raw, o_O=ClockSignal("sync"))
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        return m
