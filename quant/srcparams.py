"""The constants of the Spiking Recurrent Cell, as the paper defines them.

This is the one place where the float values of the SRC equations (3a-3f)
and of the fixed readout live. The float model reads them from here, and the
fixed-point configuration quantizes them from here.

The z_s switch
--------------
The paper writes ``z_s = z_hyp + (z_dep - z_hyp) * H(h - 0.5)`` and lists it
before the update of ``h``. This toolkit switches ``z_s`` on the **previous**
output, ``h[t-1]``::

    z_s[t]  = z_dep if h[t-1] >= 0.5 else z_hyp
    h[t]    = tanh(x[t] + r*h[t-1] + r_s*h_s[t-1] + b_h)
    h_s[t]  = z_s[t]*h_s[t-1] + (1 - z_s[t])*h[t-1]

so ``h[t]`` and ``h_s[t]`` depend only on step ``t-1`` and can be computed
side by side (in hardware: in the same cycle). The Heaviside step is taken
as ``H(0) = 1``, i.e. the comparison is ``>=``. :data:`ZS_SWITCH` names the
choice; the float model, the golden model and the RTL all follow it.
"""

from dataclasses import dataclass

__all__ = ["ZS_SWITCH", "SRCParams", "PAPER", "PAPER_LATENCY", "N_STEPS", "RATE_GAIN", "LATENCY_TAU",
           "LATENCY_THRESHOLD"]

#: Paper defaults of the input encoders: sequence length, rate gain, latency time constant and threshold.
N_STEPS = 200
RATE_GAIN = 0.25
LATENCY_TAU = 10.0
LATENCY_THRESHOLD = 0.01

#: Which output switches ``z_s`` (see the module docstring).
ZS_SWITCH = "h[t-1] >= 0.5"


@dataclass(frozen=True)
class SRCParams:
    """Float constants of one SRC network and its readout.

    Parameters
    ----------
    alpha : float
        Leak of the synaptic integrator, eq. 3a (0.9 rate coding, 0.99 latency coding).
    rho : float
        Compression range of eq. 3b.
    r, r_s : float
        Recurrent gains on ``h`` and ``h_s``, eq. 3d.
    z_hyp, z_dep : float
        The two values of the ``z_s`` switch, eq. 3c.
    b_h_init, b_h_max : float
        Initial value of the learnable bias and the clamp applied after each
        optimizer step.
    readout_alpha : float
        Leak of the readout integrators.
    readout_pos, readout_neg : float
        Frozen readout weights: from a class's own group, and from every other neuron.
    group_size : int
        Output neurons per class.
    """

    alpha: float = 0.9
    rho: float = 3.0
    r: float = 2.0
    r_s: float = -7.0
    z_hyp: float = 0.9
    z_dep: float = 0.0
    b_h_init: float = -6.0
    b_h_max: float = -4.0
    readout_alpha: float = 0.99
    readout_pos: float = 1.0
    readout_neg: float = -0.1
    group_size: int = 10

    def check(self):
        """Raise ``ValueError`` naming a constant outside the range the fixed-point formats are built for."""
        import math

        ranges = {"alpha": (0.0, 1.0), "z_hyp": (0.0, 1.0), "z_dep": (0.0, 1.0), "readout_alpha": (0.0, 1.0),
                  "rho": (1e-3, 64.0), "r": (-64.0, 64.0), "r_s": (-64.0, 64.0), "readout_pos": (-64.0, 64.0),
                  "readout_neg": (-64.0, 64.0), "b_h_init": (-1e6, 1e6), "b_h_max": (-1e6, 1e6)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise ValueError(f"invalid SRC constant: {name} = {value!r} is outside [{low}, {high}]")
        if not (isinstance(self.group_size, int) and 1 <= self.group_size <= 1024):
            raise ValueError(f"invalid SRC constant: group_size = {self.group_size!r} is outside 1..1024")

    @classmethod
    def for_encoding(cls, encoding):
        """The paper's constants for an input encoding (``rate``, ``latency`` or ``events``)."""
        if encoding == "latency":
            return PAPER_LATENCY
        if encoding in ("rate", "events"):
            return PAPER
        raise ValueError(f"unknown encoding {encoding!r}; expected 'rate', 'latency' or 'events'")


#: Paper defaults (rate coding and N-MNIST).
PAPER = SRCParams()
#: Paper defaults for latency coding (slower synapse).
PAPER_LATENCY = SRCParams(alpha=0.99)
