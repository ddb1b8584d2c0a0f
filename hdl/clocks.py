"""Board clocks: the ``sync`` domain at the frequency the design wants, from the board's oscillator.

The Arty's FT2232H runs its UART at up to 12 Mbaud, which the board's 100 MHz cannot divide to
within 1 % (8 cycles per bit are 4 % off); 96 MHz divides it exactly. :class:`XilinxMMCM` makes it
with the Artix-7's MMCM (VCO 1200 MHz, output divider 12.5), and :func:`mmcm_settings` finds the
settings for other frequencies. The ULX3S's 25 MHz oscillator is multiplied to the core's 100 MHz
by the ECP5's PLL (:class:`ECP5PLL`, :func:`ecp5_pll_settings`), so that place and route times the
design at the clock it runs at.
"""

from amaranth import ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from .fanout import dcca

__all__ = ["mmcm_settings", "XilinxMMCM", "ecp5_pll_settings", "ECP5PLL"]

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


class _OscillatorClock(Elaboratable):
    """Drives the ``sync`` domain (defined by the parent) at ``output_hz`` from the platform's default
    clock, through the part's clock generator (:meth:`generator`); ``sync`` is held in reset until
    the generator has locked.

    The reset is the generator's ``~locked`` through two flip-flops of ``sync`` (set from
    configuration, so the design starts in reset), then through :meth:`distribute`: it reaches
    every flip-flop of the design that has a reset, and on ECP5 that net, routed through the
    fabric, was the whole device's critical path (20.1 ns from the synchroniser to a flip-flop
    across the chip, 0.9 ns of it logic; ``docs/builds/ulx3s_85f-*`` at ``f4f73be``).
    """

    def __init__(self, output_hz):
        self.output_hz = output_hz

    def generator(self, m, input_hz, clock_in):
        """Adds the generator to ``m``, fed by ``clock_in``; returns its ``locked`` signal."""
        raise NotImplementedError

    def distribute(self, m, reset):
        """The net that resets the design, from the synchronised ``reset``: the same net by default."""
        return reset

    def elaborate(self, platform):
        m = Module()
        m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
        locked = self.generator(m, platform.default_clk_frequency, clk_in.i)
        # Flip-flops without a reset of their own (``reset_less``): they drive the domain's reset.
        held = Signal(init=1)
        m.submodules.reset = FFSynchronizer(~locked, held, o_domain="sync", init=1)
        m.d.comb += ResetSignal("sync").eq(self.distribute(m, held))
        return m


class XilinxMMCM(_OscillatorClock):
    """The ``sync`` domain at ``output_hz`` through an MMCME2_BASE and a BUFG."""

    def generator(self, m, input_hz, clock_in):
        multiplier, divider, output_divide = mmcm_settings(input_hz, self.output_hz)
        feedback, raw, locked = Signal(), Signal(), Signal()
        m.submodules.mmcm = Instance(
            "MMCME2_BASE", p_CLKIN1_PERIOD=1e9 / input_hz, p_CLKFBOUT_MULT_F=multiplier, p_DIVCLK_DIVIDE=divider,
            p_CLKOUT0_DIVIDE_F=output_divide, i_CLKIN1=clock_in, i_CLKFBIN=feedback, o_CLKFBOUT=feedback,
            o_CLKOUT0=raw, o_LOCKED=locked, i_RST=0, i_PWRDWN=0)
        m.submodules.bufg = Instance("BUFG", i_I=raw, o_O=ClockSignal("sync"))
        return locked


#: ECP5 PLL (EHXPLLL) limits: VCO and phase-detector input ranges (LFE5U data sheet).
ECP5_VCO_HZ, ECP5_PFD_HZ = (400e6, 800e6), (3.125e6, 400e6)


def ecp5_pll_settings(input_hz, output_hz, tolerance=1e-6):
    """``(clki_div, clkfb_div, clkop_div)`` giving ``output_hz`` from ``input_hz`` exactly (within
    ``tolerance``), feedback from CLKOP: ``output = input / clki_div * clkfb_div`` and the VCO
    ``output * clkop_div``, the highest VCO first. Raises ``ValueError`` when none does.
    """
    best = None
    for clki_div in range(1, 129):
        pfd = input_hz / clki_div
        if not ECP5_PFD_HZ[0] <= pfd <= ECP5_PFD_HZ[1]:
            continue
        for clkfb_div in range(1, 129):
            out = pfd * clkfb_div
            if abs(out - output_hz) > tolerance * output_hz:
                continue
            for clkop_div in range(1, 129):
                vco = out * clkop_div
                if ECP5_VCO_HZ[0] <= vco <= ECP5_VCO_HZ[1] and (best is None or vco > best[3]):
                    best = (clki_div, clkfb_div, clkop_div, vco)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz")
    return best[:3]


class ECP5PLL(_OscillatorClock):
    """The ``sync`` domain at ``output_hz`` through an EHXPLLL, fed back from its CLKOP; its reset
    on a global clock network (a DCCA), which reaches every slice's reset input within a few
    nanoseconds where the fabric's routing took 20."""

    def distribute(self, m, reset):
        return dcca(m, reset, "reset_buffer")

    def generator(self, m, input_hz, clock_in):
        clki_div, clkfb_div, clkop_div = ecp5_pll_settings(input_hz, self.output_hz)
        out, locked = Signal(), Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            # The frequencies, for nextpnr's timing of the derived clock.
            a_FREQUENCY_PIN_CLKI=f"{input_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{self.output_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB", p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=clkop_div, p_CLKOP_CPHASE=clkop_div // 2 - 1,
            p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=clock_in, i_CLKFB=out, o_CLKOP=out, o_LOCK=locked,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0)
        m.d.comb += ClockSignal("sync").eq(out)
        return locked
