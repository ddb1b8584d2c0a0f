"""Float PyTorch models: the SRC network (paper eqs. 3a-3f), its fixed readout, and the LIF baseline.

Tensors are time-major: spikes are ``(T, batch, features)``.

How the SRC layer is computed
-----------------------------
Gradients flow only through the synaptic state ``i`` (the recurrences of ``h`` and ``h_s`` are
detached, paper section 4.4), and through the ReLU as identity. A layer is

1. the input projection ``u = s_in @ W_s.T`` for all ``T`` steps at once;
2. the elementwise part over time: ``i[t] = alpha*i[t-1] + u[t]``, ``x = rho*tanh(i/rho)``, the
   spike recurrence (``h``, ``h_s``, ``z_s``) and ``s = max(h, 0)``.

Two implementations give the same numbers (to float rounding; the tests hold them together):

* ``fused`` (the default): step 2 is one kernel per layer and direction, the time loop inside
  it, with the backward of the paper's gradient written out (``g_pre = g_s*(1-h^2)``,
  ``g_i = g_pre*(1-(x/rho)^2)``, ``g_u`` a reverse leaky scan): the C kernels of
  :mod:`quant.kernels` on the CPU, the Triton ones of :mod:`quant.triton_scan` on CUDA. On the
  CPU, a layer whose input needs no gradient (the first) projects its input from the events
  (cost ~ events x neurons): input spikes are 3 % non-zero for rate-coded MNIST, 0.1 % latency-coded.
* ``dense`` (the previous one, kept as the reference and the benchmark's baseline): a dense
  matrix product, the leaky integrator as one product with the ``T x T`` matrix of powers of
  ``alpha``, and an elementwise no-grad scan for the spike recurrence, after which ``h`` is
  recomputed with autograd from the detached recurrent drive.
"""

import functools
import math

import torch
from torch import nn

from .srcparams import PAPER, SRCParams

__all__ = [
    "relu_bypass", "leaky_integrate", "spike_scan", "SRCLayer", "Readout", "SRCNet", "LIFNet",
    "spike_activity", "build_model",
]


class _ReLUBypass(torch.autograd.Function):
    """ReLU forward, identity backward (paper section 4.4: ``ds/dh = 1`` everywhere)."""

    @staticmethod
    def forward(ctx, h):
        return torch.relu(h)

    @staticmethod
    def backward(ctx, grad):
        return grad


def relu_bypass(h):
    """``ReLU(h)`` whose gradient passes through as if it were the identity."""
    return _ReLUBypass.apply(h)


@functools.lru_cache(maxsize=32)
def _leak_matrix(n_steps, alpha, device, dtype):
    t = torch.arange(n_steps, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    matrix = torch.where(lag >= 0, torch.tensor(alpha, dtype=torch.float64) ** lag.clamp_min(0), 0.0)
    return matrix.to(device=device, dtype=dtype)


def leaky_integrate(u, alpha):
    """``y[t] = alpha*y[t-1] + u[t]`` with ``y[-1] = 0``, over the first axis, as one matrix product."""
    n_steps = u.shape[0]
    matrix = _leak_matrix(n_steps, float(alpha), u.device, u.dtype)
    return (matrix @ u.reshape(n_steps, -1)).reshape(u.shape)


def _scan_step(h, hs, xb_t, r: float, r_s: float, z_dep: float, z_hyp: float):
    """One step of the spike recurrence: the drive of step t, then h[t] and h_s[t] (z_s switched by h[t-1])."""
    d = r * h + r_s * hs
    # The two values as tensors of h's dtype: Python scalars would make z_s float32 in a float64 model.
    z_s = torch.where(h >= 0.5, h.new_tensor(z_dep), h.new_tensor(z_hyp))
    return d, torch.tanh(xb_t + d), z_s * hs + (1 - z_s) * h


@torch.no_grad()
def spike_scan(xb, params=PAPER, return_hs=False):
    """The SRC spike recurrence over ``T`` steps, without gradient (the ``dense`` implementation's).

    Parameters
    ----------
    xb : torch.Tensor
        ``x + b_h`` for every step, ``(T, ...)``.
    params : SRCParams
        ``r``, ``r_s``, ``z_hyp``, ``z_dep``.
    return_hs : bool
        Also return ``h_s`` for every step.

    Returns
    -------
    d : torch.Tensor
        The recurrent drive ``r*h[t-1] + r_s*h_s[t-1]`` for every step, so that
        ``h[t] = tanh(xb[t] + d[t])``.
    h_s : torch.Tensor
        Only with ``return_hs``.
    """
    xb = xb.detach()
    step = _scan_step
    h = torch.zeros_like(xb[0])
    hs = torch.zeros_like(xb[0])
    drive = torch.empty_like(xb)
    hs_all = torch.empty_like(xb) if return_hs else None
    constants = (float(params.r), float(params.r_s), float(params.z_dep), float(params.z_hyp))
    for t in range(xb.shape[0]):
        drive[t], h, hs = step(h, hs, xb[t], *constants)
        if return_hs:
            hs_all[t] = hs
    return (drive, hs_all) if return_hs else drive


def _fused_backend(device):
    """The module with ``layer_forward``/``layer_backward`` for ``device``, or None (use ``dense``)."""
    if device.type == "cuda":
        try:
            from . import triton_scan
        except ImportError:
            return None
        return triton_scan
    from . import kernels
    return kernels if device.type == "cpu" and kernels.available() else None


class _FusedLayer(torch.autograd.Function):
    """Step 2 of a layer (module docstring) as one kernel each way: ``u``, ``b`` -> ``s``."""

    @staticmethod
    def forward(ctx, u, bias, params, backend, bypass=True):
        s, h, x, _, _, active = backend.layer_forward(u.contiguous(), bias.contiguous(), params)
        ctx.save_for_backward(h, x)
        ctx.params, ctx.backend, ctx.bypass = params, backend, bypass
        ctx.active = active   # read by SRCLayer: the layer's activity without another pass over s
        return s

    @staticmethod
    def backward(ctx, g_s):
        h, x = ctx.saved_tensors
        if not ctx.bypass:
            # The plain ReLU's gradient: none where the neuron is silent (h <= 0); the kernels
            # apply the rest of the chain (tanh and the leaky scan) unchanged.
            g_s = g_s * (h > 0)
        g_u, g_b = ctx.backend.layer_backward(g_s, h, x, ctx.params)
        return g_u, g_b, None, None, None


class _EventProjection(torch.autograd.Function):
    """``spikes @ weight.T`` computed from the non-zero spikes, the weight's gradient likewise; the input's
    gradient (hidden layers) is the dense ``g_u @ weight``."""

    @staticmethod
    def forward(ctx, spikes, weight):
        from . import kernels

        flat = spikes.reshape(-1, spikes.shape[-1]).contiguous()
        ctx.save_for_backward(flat, weight)
        ctx.shape = spikes.shape
        u = kernels.events_forward(flat, weight.t().contiguous())
        return u.view(*spikes.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g_u):
        from . import kernels

        flat, weight = ctx.saved_tensors
        g_flat = g_u.reshape(-1, g_u.shape[-1]).contiguous()
        g_w_t = kernels.events_backward(flat, g_flat) if ctx.needs_input_grad[1] else None
        g_in = (g_flat @ weight).view(ctx.shape) if ctx.needs_input_grad[0] else None
        return g_in, None if g_w_t is None else g_w_t.t()


#: Above this fraction of non-zero inputs the dense product is faster than the event projection
#: (measured on the CPU: events cost ~ density x 380 ms per 12800 x 784 -> 512 product, dense ~60 ms).
EVENT_DENSITY_LIMIT = 0.15


class SRCLayer(nn.Module):
    """One layer of Spiking Recurrent Cells (paper eqs. 3a-3f).

    Parameters
    ----------
    in_features, out_features : int
        Input and neuron counts.
    params : SRCParams
        Fixed constants of the cell.
    implementation : str
        ``fused`` or ``dense`` (module docstring); ``fused`` runs ``dense`` where no kernel is
        available (another device, no C compiler).
    bypass : bool
        The ReLU bypass of the paper's section 4.4 (the default): the gradient passes through
        ``s = ReLU(h)`` as if it were the identity. ``False`` trains with the plain ReLU's gradient
        (the paper's Figure 2 ablation); the forward pass is the same either way.
    recurrent : bool
        Lateral weights ``W_rec`` from the layer's own spikes of the previous step into its
        synaptic input (:mod:`quant.recurrent`, trained through time in the synaptic path).

    Attributes
    ----------
    weight : nn.Parameter
        ``W_s``, ``(out_features, in_features)``, Xavier-uniform initialised.
    bias : nn.Parameter
        ``b_h``, ``(out_features,)``, initialised to ``params.b_h_init``; call
        :meth:`clamp_` after every optimizer step to keep it at most ``params.b_h_max``.
    weight_rec : nn.Parameter
        Recurrent layers only: ``W_rec``, ``(out_features, out_features)``, initialised to zero (the layer
        starts as the feed-forward one; Xavier-uniform lateral weights did not learn: 11 % against 57 %
        on 3,200 Fashion-MNIST samples, one epoch, 784-400-R400-100, an uncommitted experiment with
        ``python -m quant.train --dataset fashion-mnist --layers 3 --width 400 --recurrent 2 --epochs 1
        --limit-train 3200 --limit-val 500 --limit-test 500`` and the init changed).
    """

    def __init__(self, in_features, out_features, params=PAPER, implementation="fused", bypass=True,
                 recurrent=False):
        super().__init__()
        if implementation not in ("fused", "dense"):
            raise ValueError(f"unknown implementation {implementation!r}; expected 'fused' or 'dense'")
        self.params, self.implementation, self.bypass = params, implementation, bool(bypass)
        self.recurrent = bool(recurrent)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), params.b_h_init))
        nn.init.xavier_uniform_(self.weight)
        if self.recurrent:
            self.weight_rec = nn.Parameter(torch.empty(out_features, out_features))
            nn.init.zeros_(self.weight_rec)

    @torch.no_grad()
    def clamp_(self):
        self.bias.clamp_(max=self.params.b_h_max)

    def forward(self, s_in, return_states=False, density=None):
        """Run the layer over ``s_in`` ``(T, batch, in_features)``.

        Returns the output spikes ``s`` ``(T, batch, out_features)``, and with
        ``return_states`` also a dict of ``i``, ``x``, ``h`` and ``h_s`` per step. ``density``, the
        fraction of non-zero inputs if the caller knows it, picks the input projection.
        """
        if self.recurrent:
            return self._recurrent(s_in, return_states, density)
        backend = _fused_backend(s_in.device) if self.implementation == "fused" else None
        if backend is None:
            return self._dense(s_in, return_states)
        if backend.__name__.endswith("kernels") and density is None:
            # A tenth of the steps tells whether the input is sparse, at a tenth of the cost.
            density = float(spike_activity(s_in[::10]))
        sparse = backend.__name__.endswith("kernels") and density <= EVENT_DENSITY_LIMIT
        u = _EventProjection.apply(s_in, self.weight) if sparse else s_in @ self.weight.T
        s = _FusedLayer.apply(u, self.bias, self.params, backend, self.bypass)
        self.last_activity = (s.grad_fn.active if s.grad_fn is not None else None)
        if return_states:
            with torch.no_grad():
                _, h, x, i, hs, _ = backend.layer_forward(u.detach().contiguous(), self.bias.detach(), self.params,
                                                          record=True)
            return s, {"i": i, "x": x, "h": h, "h_s": hs, "s": s}
        return s

    def _recurrent(self, s_in, return_states, density):
        from .recurrent import recurrent_scan

        if density is None and s_in.device.type == "cpu":
            density = float(spike_activity(s_in[::10]))
        sparse = (self.implementation == "fused" and s_in.device.type == "cpu" and density <= EVENT_DENSITY_LIMIT
                  and _fused_backend(s_in.device) is not None)
        u = _EventProjection.apply(s_in, self.weight) if sparse else s_in @ self.weight.T
        s = recurrent_scan(u, self.bias, self.weight_rec, self.params, self.bypass)
        if return_states:
            _, states = recurrent_scan(u, self.bias, self.weight_rec, self.params, record=True)
            return s, {**states, "s": s}
        return s

    def _dense(self, s_in, return_states):
        p = self.params
        i = leaky_integrate(s_in @ self.weight.T, p.alpha)
        x = p.rho * torch.tanh(i / p.rho)
        xb = x + self.bias
        if return_states:
            drive, hs = spike_scan(xb, p, return_hs=True)
        else:
            drive = spike_scan(xb, p)
        h = torch.tanh(xb + drive)
        s = relu_bypass(h) if self.bypass else torch.relu(h)
        if return_states:
            return s, {"i": i, "x": x, "h": h, "h_s": hs, "s": s}
        return s


class Readout(nn.Module):
    """Frozen readout: leaky integrators fed by groups of output neurons.

    Class ``c`` integrates ``+readout_pos`` times each neuron of group ``c``
    (neurons ``c*group_size .. (c+1)*group_size-1``) and ``readout_neg`` times
    every other neuron, with leak ``readout_alpha``. The constants are applied in the
    dtype of the spikes, so a float64 network reads ``-0.1`` as float64, not as a float32
    value widened.

    Attributes
    ----------
    n_classes : int
    weight : torch.Tensor
        ``(n_classes, n_classes*group_size)`` in the default dtype; not trained (the
        computation builds it in the spikes' dtype).
    """

    def __init__(self, n_classes, params=PAPER):
        super().__init__()
        self.params, self.n_classes = params, n_classes

    def weight_as(self, reference):
        """The readout matrix in ``reference``'s dtype and on its device."""
        p = self.params
        group = torch.arange(self.n_classes * p.group_size, device=reference.device) // p.group_size
        own = group[None, :] == torch.arange(self.n_classes, device=reference.device)[:, None]
        return torch.where(own, reference.new_tensor(p.readout_pos), reference.new_tensor(p.readout_neg))

    @property
    def weight(self):
        return self.weight_as(torch.empty(0))

    def trace(self, s):
        """The integrator values at every step, ``(T, batch, n_classes)``."""
        return leaky_integrate(s @ self.weight_as(s).T, self.params.readout_alpha)

    def forward(self, s):
        """The integrator values at the last step (the logits), ``(batch, n_classes)``."""
        n_steps = s.shape[0]
        decay = self.params.readout_alpha ** torch.arange(n_steps - 1, -1, -1, dtype=torch.float64)
        summed = torch.einsum("t,tbn->bn", decay.to(s), s)
        return summed @ self.weight_as(s).T


def spike_activity(s):
    """Eq. 2: the fraction of (step, neuron) pairs with ``s > 0``, averaged over the batch (spikes are never
    negative, so the non-zero ones are counted)."""
    s = s.detach()
    return torch.count_nonzero(s).to(s.dtype if s.is_floating_point() else torch.float32) / s.numel()


class SRCNet(nn.Module):
    """A feed-forward stack of SRC layers and the frozen readout.

    Parameters
    ----------
    sizes : list of int
        ``[inputs, hidden..., n_classes*group_size]``, e.g. ``[784, 512, 100]``.
    n_classes : int
        Readout integrators.
    params : SRCParams
        Cell constants shared by all layers.
    implementation : str
        ``fused`` (default) or ``dense``: see :class:`SRCLayer`.
    bypass : bool
        The ReLU bypass in every layer (default), or the plain ReLU gradient: see :class:`SRCLayer`.
    recurrent : sequence of int
        Indices (from 0, the first spiking layer) of the layers with lateral weights.
    """

    neuron = "src"

    def __init__(self, sizes, n_classes=10, params=PAPER, implementation="fused", bypass=True, recurrent=()):
        super().__init__()
        if sizes[-1] != n_classes * params.group_size:
            raise ValueError(f"last layer has {sizes[-1]} neurons; the readout needs "
                             f"{n_classes}*{params.group_size} = {n_classes * params.group_size}")
        self.sizes = list(sizes)
        self.params = params
        self.recurrent = sorted(set(int(k) for k in recurrent))
        if any(not 0 <= k < len(sizes) - 1 for k in self.recurrent):
            raise ValueError(f"recurrent layers {self.recurrent} outside 0..{len(sizes) - 2}")
        self.layers = nn.ModuleList(SRCLayer(a, b, params, implementation, bypass, k in self.recurrent)
                                    for k, (a, b) in enumerate(zip(sizes, sizes[1:])))
        self.readout = Readout(n_classes, params)

    def clamp_(self):
        """Apply the ``b_h <= b_h_max`` clamp to every layer (after each optimizer step)."""
        for layer in self.layers:
            layer.clamp_()

    def forward(self, spikes, return_states=False):
        """Return the logits ``(batch, n_classes)`` and the per-layer activity (eq. 2).

        With ``return_states``, also a list of per-layer state dicts (see
        :meth:`SRCLayer.forward`) with the readout trace under ``"readout"`` in the last.
        """
        if spikes.dim() != 3 or spikes.shape[2] != self.sizes[0]:
            raise ValueError(f"expected spikes of shape (T, batch, {self.sizes[0]}), got {tuple(spikes.shape)}")
        s, states, activity = spikes, [], []
        density = None
        for layer in self.layers:
            if return_states:
                s, state = layer(s, return_states=True, density=density)
                states.append(state)
            else:
                s = layer(s, density=density)
            active = getattr(layer, "last_activity", None)
            layer.last_activity = None
            activity.append(spike_activity(s) if active is None else torch.tensor(active / s.numel(), dtype=s.dtype))
            density = float(activity[-1])   # the next layer's input density
        logits = self.readout(s)
        if return_states:
            states[-1]["readout"] = self.readout.trace(s.detach())
            return logits, torch.stack(activity), states
        return logits, torch.stack(activity)


class LIFNet(nn.Module):
    """The LIF baseline: snnTorch ``Leaky`` layers (ATan surrogate, learnable beta and threshold).

    Each layer is ``nn.Linear`` (Xavier-uniform) into ``snntorch.Leaky`` with
    ``beta = alpha`` (0.9 rate, 0.99 latency), threshold 1.0, reset by
    subtraction, rest potential 0; the output spikes feed the same frozen
    readout as :class:`SRCNet`. The time loop is snnTorch's per-step loop.
    """

    neuron = "lif"

    def __init__(self, sizes, n_classes=10, params=PAPER):
        super().__init__()
        import snntorch
        from snntorch import surrogate

        if sizes[-1] != n_classes * params.group_size:
            raise ValueError(f"last layer has {sizes[-1]} neurons; the readout needs {n_classes * params.group_size}")
        self.sizes = list(sizes)
        self.params = params
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        for fc in self.fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.lifs = nn.ModuleList(
            snntorch.Leaky(beta=params.alpha, threshold=1.0, learn_beta=True, learn_threshold=True,
                           spike_grad=surrogate.atan())
            for _ in self.fcs)
        self.readout = Readout(n_classes, params)

    def clamp_(self):
        pass

    def forward(self, spikes):
        if spikes.dim() != 3 or spikes.shape[2] != self.sizes[0]:
            raise ValueError(f"expected spikes of shape (T, batch, {self.sizes[0]}), got {tuple(spikes.shape)}")
        mems = [lif.reset_mem() for lif in self.lifs]
        out = []
        for t in range(spikes.shape[0]):
            s = spikes[t]
            for k, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                s, mems[k] = lif(fc(s), mems[k])
                if k == 0:
                    first = s
            out.append((s, first) if len(self.fcs) > 1 else (s, s))
        s_last = torch.stack([o[0] for o in out])
        logits = self.readout(s_last)
        activity = [spike_activity(torch.stack([o[1] for o in out]))] if len(self.fcs) > 1 else []
        activity.append(spike_activity(s_last.detach()))
        return logits, torch.stack(activity)


def build_model(neuron, n_inputs, layers, width, n_classes=10, params=PAPER, implementation="fused", bypass=True,
                recurrent=()):
    """Build ``neuron`` (``src``, ``lif``, or ``rlif`` of :mod:`quant.baseline`) with ``layers`` layers:
    ``layers-1`` hidden of ``width``, then the output.

    ``layers`` counts the output layer, as the paper's Table 1 does (1 layer = 784 -> 100; the
    ``rlif`` baseline's output has one neuron per class). ``bypass`` (SRC only) is the ReLU bypass,
    see :class:`SRCLayer`; ``recurrent`` the indices of the layers with lateral weights (SRC and
    ``rlif``; :class:`SRCNet`).
    """
    if layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    sizes = [n_inputs] + [width] * (layers - 1) + [n_classes * params.group_size]
    if neuron == "src":
        return SRCNet(sizes, n_classes, params, implementation, bypass, recurrent)
    if not bypass:
        raise ValueError("the ReLU bypass is an SRC training choice; the LIF baseline has none to turn off")
    if neuron == "rlif":
        from .baseline import RecurrentLIFNet

        return RecurrentLIFNet([n_inputs] + [width] * (layers - 1) + [n_classes], n_classes, recurrent=recurrent)
    if recurrent:
        raise ValueError("recurrent layers are SRC layers or the rlif baseline's (quant.baseline), not snnTorch LIF's")
    if neuron == "lif":
        return LIFNet(sizes, n_classes, params)
    raise ValueError(f"unknown neuron {neuron!r}; expected 'src', 'lif' or 'rlif'")
