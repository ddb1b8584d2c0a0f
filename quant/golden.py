"""The bit-exact integer golden model of an SRC network: the specification of the hardware.

Everything here is integer arithmetic on ``int64`` numpy arrays, in the formats of
:class:`quant.fixedpoint.FixedPointConfig`. For one step ``t`` and one layer, each neuron does,
in this order (``>>`` is the round-half-up shift of :func:`round_shift`, ``sat`` clips to the rails
and is counted)::

    acc  = sum over this step's input events (j, a) of W[n, j] * a        exact, acc_width bits
    i    = sat_i( (ALPHA*i[t-1] >> coef_frac) + (acc >> (wfrac + state_frac - i_frac)) )
    x    = XLUT(i)                                                        odd, |i| >> (i_frac - x_lut_frac)
    pre  = x + b + (R*h[t-1] >> coef_frac) + (R_S*h_s[t-1] >> (coef_frac + hs_frac - state_frac))
    h    = HLUT(pre)                                                      odd, |pre| >> (state_frac - h_lut_frac)
    Z    = Z_DEP if h[t-1] >= HALF else Z_HYP                             (quant.srcparams.ZS_SWITCH)
    h_s  = (Z*h_s[t-1] + (ONE_C - Z)*(h[t-1] << (hs_frac - state_frac))) >> coef_frac
    s    = max(h, 0)                                                      an output event where s > 0

A **recurrent** layer also takes its own spikes of the previous step as input events (``s[-1] =
0``): its ``acc`` sums ``W[n, j]*a`` over the layer below's events of step t and ``W_rec[n, m]*s_m[t-1]``
over its own events of step t-1, exactly, in one accumulator (``W`` and ``W_rec`` share the
layer's ``weight_frac``), so the hardware can treat ``W_rec`` as ``n_out`` more input rows.

Layers run in order within a step, each consuming the events of the layer below at the same
step. At the end of the step the readout integrators update::

    g_c = sum of s over class c's group,  tot = sum of s over the output layer
    v_c = sat_v( (RA*v_c >> coef_frac) + ((POS*g_c + NEG*(tot - g_c)) >> (coef_frac + state_frac - readout_frac)) )

The prediction is ``argmax v`` at the last step, ties to the lowest class. All states start at 0.

Because no layer depends on a layer above it, the model evaluates one layer over all ``T`` steps
before the next, which gives the same numbers as the hardware's step-major order. The step's sum
``acc`` is exact integer arithmetic; it runs through a float64 matrix product only because
every partial sum is an integer below ``2**53`` (checked), where float64 is exact.
"""

from dataclasses import dataclass, field

import numpy as np

from .fixedpoint import ACC_BITS, MAX_CLASSES, FixedPointConfig
from .lut import lookup

__all__ = ["QuantizedLayer", "QuantizedNetwork", "GoldenResult", "shape_name", "round_shift", "saturate", "exact_matmul",
           "run", "to_amplitudes"]


def shape_name(sizes, recurrent=()):
    """A network's shape as ``784-400-R400-100``: ``sizes`` from the inputs on, ``R`` before each layer
    of ``recurrent`` (indices from 0, the first spiking layer)."""
    return "-".join([str(sizes[0])] + [("R" if k in recurrent else "") + str(n) for k, n in enumerate(sizes[1:])])


def round_shift(value, shift):
    """Round-half-up right shift by ``shift`` bits (left shift if negative), on integer arrays."""
    value = np.asarray(value, dtype=np.int64)
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    return value << -shift


def saturate(value, low, high, counts=None, key=None):
    """Clip to ``[low, high]``; add the number of clipped elements to ``counts[key]``."""
    if counts is not None:
        counts[key] = counts.get(key, 0) + int(np.count_nonzero((value < low) | (value > high)))
    return np.clip(value, low, high)


def exact_matmul(a, b):
    """``a @ b`` for integer arrays whose every partial sum is below ``2**53`` in magnitude: exact."""
    bound = int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * a.shape[-1]
    if bound >= 1 << ACC_BITS:
        raise OverflowError(f"integer product bound {bound} exceeds 2**{ACC_BITS}; cannot be computed exactly")
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


@dataclass
class QuantizedLayer:
    """One SRC layer in fixed point.

    Attributes
    ----------
    weight : numpy.ndarray
        ``int64`` ``(n_out, n_in)``, in ``[-weight_max, weight_max]``.
    weight_frac : int
        Fractional bits of this layer's weights.
    bias : numpy.ndarray
        ``int64`` ``(n_out,)``, state format, at most ``b_h_max``.
    weight_rec : numpy.ndarray or None
        A recurrent layer's lateral weights, ``int64`` ``(n_out, n_out)``, in ``weight_frac`` and
        ``[-weight_max, weight_max]`` as ``weight``; ``None`` for a feed-forward layer.
    """

    weight: np.ndarray
    weight_frac: int
    bias: np.ndarray
    weight_rec: np.ndarray = None

    @property
    def recurrent(self):
        return self.weight_rec is not None

    @property
    def n_in(self):
        return self.weight.shape[1]

    @property
    def fan_in(self):
        """Input rows of the layer's weights: ``n_in``, plus ``n_out`` lateral ones when recurrent."""
        return self.n_in + (self.n_out if self.recurrent else 0)

    @property
    def n_out(self):
        return self.weight.shape[0]


@dataclass
class QuantizedNetwork:
    """A quantized SRC network: layers, readout size, and the fixed-point configuration.

    Attributes
    ----------
    layers : list of QuantizedLayer
    n_classes : int
    config : FixedPointConfig
    encoding : str
        Input encoding the network was trained with (``rate``, ``latency``, ``events``).
    n_steps : int
        Sequence length ``T``.
    """

    layers: list
    n_classes: int
    config: FixedPointConfig
    encoding: str = "rate"
    n_steps: int = 200

    def __post_init__(self):
        cfg = self.config
        for k, layer in enumerate(self.layers):
            if k and layer.n_in != self.layers[k - 1].n_out:
                raise ValueError(f"layer {k} takes {layer.n_in} inputs but layer {k - 1} has {self.layers[k - 1].n_out} neurons")
            if np.abs(layer.weight).max(initial=0) > cfg.weight_max:
                raise ValueError(f"layer {k}: weights exceed +-{cfg.weight_max} ({cfg.weight_width}-bit)")
            if layer.recurrent:
                if layer.weight_rec.shape != (layer.n_out, layer.n_out):
                    raise ValueError(f"layer {k}: recurrent weights of shape {layer.weight_rec.shape}, "
                                     f"expected ({layer.n_out}, {layer.n_out})")
                if np.abs(layer.weight_rec).max(initial=0) > cfg.weight_max:
                    raise ValueError(f"layer {k}: recurrent weights exceed +-{cfg.weight_max} "
                                     f"({cfg.weight_width}-bit)")
            if layer.bias.shape != (layer.n_out,):
                raise ValueError(f"layer {k}: bias shape {layer.bias.shape}, expected ({layer.n_out},)")
            if layer.bias.min(initial=0) < cfg.bias_min or layer.bias.max(initial=cfg.b_h_max) > cfg.b_h_max:
                raise ValueError(f"layer {k}: biases outside [{cfg.bias_min}, {cfg.b_h_max}]")
            if cfg.acc_width(layer.fan_in) > ACC_BITS:
                raise ValueError(f"layer {k}: fan-in {layer.fan_in} needs a {cfg.acc_width(layer.n_in)}-bit accumulator")
            if not (isinstance(layer.weight_frac, (int, np.integer)) and 0 <= layer.weight_frac <= cfg.max_weight_frac):
                raise ValueError(f"layer {k}: weight_frac {layer.weight_frac} outside 0..{cfg.max_weight_frac} "
                                 f"(max_weight_frac)")
        if not 1 <= self.n_classes <= MAX_CLASSES:
            raise ValueError(f"n_classes {self.n_classes} outside 1..{MAX_CLASSES}")
        if self.layers[-1].n_out != self.n_classes * cfg.params.group_size:
            raise ValueError(f"output layer has {self.layers[-1].n_out} neurons, readout needs "
                             f"{self.n_classes}*{cfg.params.group_size}")

    @property
    def sizes(self):
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def recurrent(self):
        """Indices of the recurrent layers."""
        return [k for k, layer in enumerate(self.layers) if layer.recurrent]

    def shape_name(self):
        """The network's shape as ``784-400-R400-100`` (``R``: a recurrent layer)."""
        return shape_name(self.sizes, self.recurrent)


@dataclass
class GoldenResult:
    """What a golden-model run returns.

    Attributes
    ----------
    scores : numpy.ndarray
        Readout integrators at the last step, ``(batch, n_classes)``.
    prediction : numpy.ndarray
        ``argmax`` of ``scores`` (lowest class on ties), ``(batch,)``.
    spike_counts : list of numpy.ndarray
        Per layer, the number of (step, neuron) pairs with ``s > 0``, per sample ``(batch,)``.
    activity : list of float
        Per layer, eq. 2 activity averaged over the batch.
    saturations : dict
        Clipped-element counts: ``i[k]`` per layer and ``v`` for the readout.
    states : list of dict or None
        With ``record``: per layer, ``i``, ``x``, ``h``, ``h_s``, ``s`` as ``(T, batch, n)`` arrays.
    readout : numpy.ndarray or None
        With ``record``: the readout integrators at every step, ``(T, batch, n_classes)``.
    """

    scores: np.ndarray
    prediction: np.ndarray
    spike_counts: list
    activity: list
    saturations: dict = field(default_factory=dict)
    states: list = None
    readout: np.ndarray = None


def to_amplitudes(spikes, config):
    """Check input spikes and return integer amplitudes: binary (bool or 0/1 float) spikes become ``ONE``.

    Integer arrays are taken as amplitudes already and must lie in ``[0, ONE]``.
    """
    spikes = np.asarray(spikes)
    if spikes.dtype == bool:
        return spikes.astype(np.int64) * config.one
    if np.issubdtype(spikes.dtype, np.floating):
        if not np.isin(spikes, (0.0, 1.0)).all():
            raise ValueError("float input spikes must be binary (0 or 1); pass graded spikes as integer amplitudes")
        return spikes.astype(np.int64) * config.one
    if not np.issubdtype(spikes.dtype, np.integer):
        raise ValueError(f"input spikes must be bool, binary float or integer amplitudes, got {spikes.dtype}")
    if spikes.size and (spikes.min() < 0 or spikes.max() > config.one):
        raise ValueError(f"input amplitudes must lie in [0, {config.one}], got [{spikes.min()}, {spikes.max()}]")
    return spikes.astype(np.int64)


def _layer(layer, amplitudes, cfg, counts, key, record):
    """Run one layer over all steps. ``amplitudes`` is ``(T, B, n_in)``; returns ``(s, states)``."""
    c = cfg.constants
    n_steps, batch, _ = amplitudes.shape
    acc = exact_matmul(amplitudes.reshape(n_steps * batch, -1), layer.weight.T).reshape(n_steps, batch, -1)
    acc_shift = layer.weight_frac + cfg.state_frac - cfg.i_frac
    rs_shift = cfg.coef_frac + cfg.hs_frac - cfg.state_frac
    hs_up = cfg.hs_frac - cfg.state_frac
    shape = (batch, layer.n_out)
    i, h, hs = (np.zeros(shape, np.int64) for _ in range(3))
    x_lut, h_lut = np.asarray(cfg.x_lut, np.int64), np.asarray(cfg.h_lut, np.int64)
    out = np.empty((n_steps, batch, layer.n_out), np.int64)
    states = {k: np.empty_like(out) for k in ("i", "x", "h", "h_s")} if record else None
    for t in range(n_steps):
        if layer.recurrent and t:
            # The layer's own events of step t-1 are more inputs of step t, in the same exact sum.
            acc[t] += exact_matmul(out[t - 1], layer.weight_rec.T)
        i = saturate(round_shift(c["alpha"] * i, cfg.coef_frac) + round_shift(acc[t], acc_shift),
                     cfg.i_min, cfg.i_max, counts, key)
        x = lookup(x_lut, i, cfg.i_frac - cfg.x_lut_frac)
        pre = x + layer.bias + round_shift(c["r"] * h, cfg.coef_frac) + round_shift(c["r_s"] * hs, rs_shift)
        h_new = lookup(h_lut, pre, cfg.state_frac - cfg.h_lut_frac)
        z = np.where(h >= cfg.half, c["z_dep"], c["z_hyp"])
        hs = round_shift(z * hs + (c["one_coef"] - z) * (h << hs_up), cfg.coef_frac)
        h = h_new
        out[t] = np.maximum(h, 0)
        if record:
            states["i"][t], states["x"][t], states["h"][t], states["h_s"][t] = i, x, h, hs
    if record:
        states["s"] = out
    return out, states


def _readout(s, n_classes, cfg, counts):
    c = cfg.constants
    n_steps, batch, _ = s.shape
    group = s.reshape(n_steps, batch, n_classes, cfg.params.group_size).sum(-1)
    total = group.sum(-1, keepdims=True)
    drive = round_shift(c["readout_pos"] * group + c["readout_neg"] * (total - group),
                        cfg.coef_frac + cfg.state_frac - cfg.readout_frac)
    v = np.zeros((batch, n_classes), np.int64)
    trace = np.empty((n_steps, batch, n_classes), np.int64)
    for t in range(n_steps):
        v = saturate(round_shift(c["readout_alpha"] * v, cfg.coef_frac) + drive[t],
                     cfg.readout_min, cfg.readout_max, counts, "v")
        trace[t] = v
    return trace


def run(network, spikes, record=False):
    """Run ``network`` on input ``spikes`` ``(T, batch, n_in)`` (see :func:`to_amplitudes`).

    Returns a :class:`GoldenResult`; with ``record``, every state of every step too.
    """
    cfg = network.config
    amplitudes = to_amplitudes(spikes, cfg)
    if amplitudes.ndim != 3 or amplitudes.shape[2] != network.layers[0].n_in:
        raise ValueError(f"expected spikes of shape (T, batch, {network.layers[0].n_in}), got {amplitudes.shape}")
    counts, states, spike_counts = {}, [], []
    s = amplitudes
    for k, layer in enumerate(network.layers):
        s, st = _layer(layer, s, cfg, counts, f"i[{k}]", record)
        states.append(st)
        spike_counts.append(np.count_nonzero(s, axis=(0, 2)))
    trace = _readout(s, network.n_classes, cfg, counts)
    scores = trace[-1]
    n_steps = amplitudes.shape[0]
    activity = [float(c.mean()) / (n_steps * layer.n_out) for c, layer in zip(spike_counts, network.layers)]
    return GoldenResult(scores=scores, prediction=np.argmax(scores, axis=1), spike_counts=spike_counts,
                        activity=activity, saturations=counts, states=states if record else None,
                        readout=trace if record else None)
