"""The fixed-point configuration: every width, binary point and constant of the hardware.

This module is the one place where the formats live. The golden model, the LUT
generator, the gateware, the device image and the tests import them from here.
It needs only the standard library (so :mod:`firmware` can use it without numpy or torch).

Number formats
--------------
A quantity with ``frac`` fractional bits stores the integer ``round(value * 2**frac)``.
Widths count the sign bit of signed quantities.

==========  =======================================  ==========================
quantity    format                                   note
==========  =======================================  ==========================
W_s         signed ``weight_width``, per-layer frac   frac chosen per layer by the quantizer
b_h         signed ``bias_width``, ``state_frac``
a (spike)   unsigned, ``state_frac``                  input spikes are ``ONE``; hidden s = max(h, 0)
acc         signed ``acc_width(fan_in)``              exact sum of W*a products in a step
i           signed ``i_width``, ``i_frac``            saturates at its rails
x           signed, ``state_frac``                    from the x LUT: rho*tanh(i/rho)
pre         signed ``pre_width``, ``state_frac``      x + b + r*h + r_s*h_s, cannot overflow
h           signed, ``state_frac``                    from the tanh LUT, in [-ONE, ONE]
h_s         signed, ``hs_frac``                       convex mix of h values, in [-1, 1]
v           signed ``readout_width``, ``readout_frac`` readout integrators; saturate
coefficients signed, ``coef_frac``                    alpha, z_hyp, z_dep, r, r_s, readout
==========  =======================================  ==========================

Rounding
--------
Every right shift by ``k > 0`` bits rounds **half up**: ``floor(v / 2**k + 1/2)``, i.e.
add ``2**(k-1)`` and shift arithmetically (ties go towards +inf). Quantizing a real
constant uses the same rule: ``floor(value * 2**frac + 1/2)``. LUT indices round the
magnitude half up (the tables are odd-symmetric around 0).

Saturation
----------
Results are clipped to their format's rails and never wrap: ``i`` and ``v`` after each
update, weights and biases at quantization. The golden model counts every clip. ``pre``
and ``acc`` are made wide enough that they cannot overflow (checked here).
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .srcparams import PAPER, SRCParams

__all__ = ["FixedPointConfig", "DEFAULT", "INT64_SAFE", "ACC_BITS", "MAX_CLASSES", "quantize_constant",
           "round_shift_int"]

#: Every intermediate of the golden model stays below this magnitude (one bit of headroom below int64's).
INT64_SAFE = 1 << 62
#: A layer's exact step sum ``acc`` stays below ``2**ACC_BITS`` (float64 computes it exactly).
ACC_BITS = 53
#: Readout classes a network may have (the RESULT reply counts them in a byte).
MAX_CLASSES = 255


def quantize_constant(value, frac):
    """``floor(value * 2**frac + 1/2)``: a real constant in a format with ``frac`` fractional bits."""
    from fractions import Fraction
    scaled = Fraction(value).limit_denominator(1 << 40) * (1 << frac) + Fraction(1, 2)
    return scaled.numerator // scaled.denominator


def round_shift_int(value, shift):
    """A Python-int right shift by ``shift`` with round-half-up (a left shift when negative)."""
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    return value << -shift


@dataclass(frozen=True)
class FixedPointConfig:
    """Widths, binary points and quantized constants of the SRC hardware.

    Parameters
    ----------
    weight_width : int
        Bits of a synaptic weight (signed). The binary point is chosen per layer.
    max_weight_frac : int
        Upper bound on a layer's weight fractional bits.
    bias_width : int
        Bits of ``b_h`` (signed, ``state_frac`` fractional bits).
    state_frac : int
        Fractional bits of ``x``, ``b_h``, ``pre``, ``h`` and spike amplitudes.
    i_width, i_frac : int
        Synaptic state ``i``.
    hs_frac : int
        Fractional bits of ``h_s`` (more than ``state_frac`` so its slow decay is not lost to rounding).
    coef_frac : int
        Fractional bits of the constant coefficients.
    x_lut_frac, x_lut_size : int
        The x LUT takes ``|i|`` at ``x_lut_frac`` fractional bits (index rounded half up)
        and holds ``x_lut_size`` entries; larger magnitudes clamp to the last entry.
    h_lut_frac, h_lut_size : int
        The same for the tanh LUT over ``|pre|``.
    readout_width, readout_frac : int
        Readout integrators.
    pixel_bits : int
        Bits of an image pixel the device encodes (an 8-bit value ``v`` becomes ``v >> (8 - pixel_bits)``).
    draw_bits : int
        Bits of the rate coder's random draw (:mod:`quant.intencode`).
    params : SRCParams
        The float constants being quantized.
    """

    weight_width: int = 8
    max_weight_frac: int = 12
    bias_width: int = 12
    state_frac: int = 8
    i_width: int = 16
    i_frac: int = 10
    hs_frac: int = 12
    coef_frac: int = 12
    x_lut_frac: int = 5
    x_lut_size: int = 512
    h_lut_frac: int = 8
    h_lut_size: int = 1024
    readout_width: int = 24
    readout_frac: int = 8
    pixel_bits: int = 8
    draw_bits: int = 16
    params: SRCParams = field(default=PAPER)

    def __post_init__(self):
        for name, (low, high) in self.field_ranges().items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"invalid fixed-point configuration: {name} = {value!r} is outside {low}..{high}")
        self.params.check()
        if not self.bias_min <= self.b_h_max <= self.bias_max:
            raise ValueError(f"invalid fixed-point configuration: bias_width = {self.bias_width} cannot hold "
                             f"b_h_max = {self.params.b_h_max} ({self.b_h_max} at state_frac {self.state_frac})")
        for names, bound in self.worst_cases().items():
            if bound >= INT64_SAFE:
                raise ValueError(f"invalid fixed-point configuration: {' and '.join(names)} make the golden model's "
                                 f"worst case {bound.bit_length()} bits, over the {INT64_SAFE.bit_length() - 1} "
                                 f"bits int64 arithmetic holds")

    def field_ranges(self):
        """Each integer field's allowed range ``(low, high)``, inclusive; some depend on other fields."""
        return {
            "weight_width": (2, 24),
            "max_weight_frac": (0, 30),
            "bias_width": (2, 32),
            "state_frac": (1, 20),
            "i_width": (2, 40),
            "i_frac": (0, self.i_width - 1 if isinstance(self.i_width, int) else 0),
            "hs_frac": (self.state_frac if isinstance(self.state_frac, int) else 0, 40),
            "coef_frac": (1, 30),
            "x_lut_frac": (0, self.i_frac if isinstance(self.i_frac, int) else 0),
            "x_lut_size": (2, 1 << 20),
            "h_lut_frac": (0, self.state_frac if isinstance(self.state_frac, int) else 0),
            "h_lut_size": (2, 1 << 20),
            "readout_width": (2, 48),
            "readout_frac": (0, 40),
            "pixel_bits": (1, 8),
            "draw_bits": (8, 24),
        }

    def worst_cases(self):
        """The largest magnitude of each int64 intermediate of the golden model, as exact Python ints.

        Keys name the fields that set the bound. Every value must stay below :data:`INT64_SAFE`;
        the step sum ``acc`` is bounded separately per layer (below ``2**53``, see
        :func:`quant.golden.exact_matmul`).
        """
        c = self.constants
        coef = lambda name: abs(c[name])
        hs_one = 1 << self.hs_frac
        readout_in = (coef("readout_pos") + coef("readout_neg") * (MAX_CLASSES - 1)) * self.params.group_size * self.one
        readout_up = max(0, self.readout_frac - self.coef_frac - self.state_frac)
        return {
            ("coef_frac", "i_width"): coef("alpha") * (1 << (self.i_width - 1)) + (1 << self.coef_frac),
            ("i_frac", "state_frac"): (1 << ACC_BITS) << max(0, self.i_frac - self.state_frac),
            ("coef_frac", "state_frac"): coef("r") * self.one + (1 << self.coef_frac),
            ("coef_frac", "hs_frac"): (max(coef("z_hyp"), coef("z_dep"), coef("one_coef")) * 2 * hs_one
                                       + (abs(c["one_coef"] - c["z_hyp"]) + abs(c["one_coef"] - c["z_dep"])) * hs_one
                                       + coef("r_s") * hs_one),
            ("coef_frac", "state_frac", "readout_frac"): (readout_in << readout_up) + (1 << (self.coef_frac + self.state_frac)),
            ("coef_frac", "readout_width"): coef("readout_alpha") * (1 << (self.readout_width - 1)) + (1 << self.coef_frac),
        }

    # -- derived formats ---------------------------------------------------------------
    @property
    def one(self):
        """1.0 in the state format: the amplitude of a binary input spike."""
        return 1 << self.state_frac

    @property
    def half(self):
        """0.5 in the state format: the z_s threshold on h[t-1]."""
        return 1 << (self.state_frac - 1)

    @property
    def weight_max(self):
        """Weights are clipped symmetrically to ``[-weight_max, weight_max]``."""
        return (1 << (self.weight_width - 1)) - 1

    @property
    def bias_min(self):
        return -(1 << (self.bias_width - 1))

    @property
    def bias_max(self):
        return (1 << (self.bias_width - 1)) - 1

    @property
    def i_min(self):
        return -(1 << (self.i_width - 1))

    @property
    def i_max(self):
        return (1 << (self.i_width - 1)) - 1

    @property
    def readout_min(self):
        return -(1 << (self.readout_width - 1))

    @property
    def readout_max(self):
        return (1 << (self.readout_width - 1)) - 1

    @property
    def spike_width(self):
        """Unsigned bits of a spike amplitude (0..ONE)."""
        return self.state_frac + 1

    @property
    def h_width(self):
        """Signed bits of h (-ONE..ONE)."""
        return self.state_frac + 2

    @property
    def hs_width(self):
        return self.hs_frac + 2

    @property
    def x_width(self):
        return max(self.x_lut).bit_length() + 1

    def acc_width(self, fan_in):
        """Signed bits that hold any step's sum of ``fan_in`` products weight x amplitude exactly."""
        bound = fan_in * self.weight_max * self.one
        return bound.bit_length() + 1

    @property
    def acc_shift_range(self):
        """``(low, high)`` of a layer's ``acc_shift = weight_frac + state_frac - i_frac`` over ``weight_frac`` in
        ``0..max_weight_frac``: the shifts a device must support."""
        return self.state_frac - self.i_frac, self.max_weight_frac + self.state_frac - self.i_frac

    @property
    def acc_shift_width(self):
        """Signed bits of an ``acc_shift`` value."""
        low, high = self.acc_shift_range
        return max((-low - 1).bit_length() if low < 0 else 0, high.bit_length()) + 1

    @property
    def pre_width(self):
        """Signed bits of ``pre = x + b + r*h + r_s*h_s`` (state format): never overflows."""
        c = self.constants
        bound = (max(self.x_lut) - self.bias_min
                 + round_shift_int(abs(c["r"]) * self.one, self.coef_frac)
                 + round_shift_int(abs(c["r_s"]) * self.one, self.coef_frac))
        return bound.bit_length() + 1

    # -- quantized constants -----------------------------------------------------------
    @property
    def constants(self):
        """The cell and readout constants as integers with ``coef_frac`` fractional bits."""
        p, f = self.params, self.coef_frac
        return {
            "alpha": quantize_constant(p.alpha, f),
            "z_hyp": quantize_constant(p.z_hyp, f),
            "z_dep": quantize_constant(p.z_dep, f),
            "r": quantize_constant(p.r, f),
            "r_s": quantize_constant(p.r_s, f),
            "readout_alpha": quantize_constant(p.readout_alpha, f),
            "readout_pos": quantize_constant(p.readout_pos, f),
            "readout_neg": quantize_constant(p.readout_neg, f),
            "one_coef": 1 << f,
        }

    @property
    def b_h_max(self):
        """The bias clamp in the state format."""
        return quantize_constant(self.params.b_h_max, self.state_frac)

    # -- lookup tables -----------------------------------------------------------------
    @property
    def x_lut(self):
        """``round(rho*tanh(k*2**-x_lut_frac / rho) * 2**state_frac)`` for ``k`` in ``range(x_lut_size)``."""
        from .lut import x_table
        return x_table(self)

    @property
    def h_lut(self):
        """``round(tanh(k*2**-h_lut_frac) * 2**state_frac)`` for ``k`` in ``range(h_lut_size)``."""
        from .lut import h_table
        return h_table(self)

    # -- identity ----------------------------------------------------------------------
    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["params"] = SRCParams(**data["params"])
        return cls(**data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def digest(self):
        """SHA-256 (hex) of the canonical JSON of this configuration: the device image records it."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


#: The default configuration, chosen by measurement (see docs/ARCHITECTURE.md).
DEFAULT = FixedPointConfig()
