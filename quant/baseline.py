"""The recurrent LIF baseline: a network of ST-RSBP's class (Zhang & Li, NeurIPS 2019), trained with
surrogate gradients.

This is a baseline **of the network class**, not the ST-RSBP algorithm (whose code is CUDA/C++
only): the neuron and the shape are ST-RSBP's, the training is plain backpropagation through
time with a surrogate spike gradient. Each layer is, per step::

    I[t] = (1 - 1/tau_s) I[t-1] + W s_in[t] (+ W_rec s[t-1] in a recurrent layer)   synaptic current
    V[t] = (1 - 1/tau_m) V[t-1] + I[t]                 membrane, held at 0 while refractory
    s[t] = [V[t] >= theta],  then V <- 0 and the neuron is silent for ``refractory`` steps

with ST-RSBP's constants ``tau_m = 64``, ``tau_s = 8``, ``theta = 20`` and a refractory period
of 2 steps. The spike's gradient is snnTorch's arctangent surrogate of ``V - theta`` (scaled to
the threshold); the reset and the refractory mask carry no gradient. The output layer has one
neuron per class (784-400-R400-10 is ST-RSBP's Fashion-MNIST network) and the loss is the
cross-entropy of the output spike counts, as snnTorch's ``ce_count_loss``.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["STRSBP", "LIFSynapticParams", "RecurrentLIFNet"]


@dataclass(frozen=True)
class LIFSynapticParams:
    """ST-RSBP's neuron constants (steps)."""

    tau_m: float = 64.0
    tau_s: float = 8.0
    threshold: float = 20.0
    refractory: int = 2


STRSBP = LIFSynapticParams()


class _Spike(torch.autograd.Function):
    """Heaviside forward, arctangent surrogate backward (snnTorch's ``atan`` with ``alpha = 2``),
    on ``V/theta - 1`` so that the surrogate's width follows the threshold."""

    @staticmethod
    def forward(ctx, v_scaled):
        ctx.save_for_backward(v_scaled)
        return (v_scaled >= 0).to(v_scaled.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v_scaled,) = ctx.saved_tensors
        alpha = 2.0
        return grad * (alpha / 2) / (1 + (math.pi / 2 * alpha * v_scaled) ** 2)


class RecurrentLIFNet(nn.Module):
    """Layers of LIF neurons with synaptic currents and refractory periods, some recurrent.

    Parameters
    ----------
    sizes : list of int
        ``[inputs, hidden..., n_classes]``, e.g. ``[784, 400, 400, 10]``.
    n_classes : int
        Output neurons (one per class).
    params : LIFSynapticParams
    recurrent : sequence of int
        Indices (from 0) of the layers with all-to-all lateral weights of the previous step's spikes.
    """

    neuron = "rlif"

    def __init__(self, sizes, n_classes=10, params=STRSBP, recurrent=()):
        super().__init__()
        if sizes[-1] != n_classes:
            raise ValueError(f"the baseline's output layer has one neuron per class: {sizes[-1]} != {n_classes}")
        self.sizes, self.params = list(sizes), params
        self.recurrent = sorted(set(int(k) for k in recurrent))
        if any(not 0 <= k < len(sizes) - 1 for k in self.recurrent):
            raise ValueError(f"recurrent layers {self.recurrent} outside 0..{len(sizes) - 2}")
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:]))
        # Xavier weights scaled so that a layer's first spikes come within tens of steps at
        # threshold 20 (plain Xavier leaves every membrane far below it).
        for fc in self.fcs:
            nn.init.xavier_uniform_(fc.weight, gain=float(params.threshold) / 4)
        self.recs = nn.ModuleDict({str(k): nn.Linear(sizes[k + 1], sizes[k + 1], bias=False) for k in self.recurrent})
        for rec in self.recs.values():
            nn.init.zeros_(rec.weight)
        self.n_classes = n_classes

    def clamp_(self):
        pass

    def forward(self, spikes):
        """Return the logits (output spike counts, ``(batch, n_classes)``) and the per-layer activity."""
        if spikes.dim() != 3 or spikes.shape[2] != self.sizes[0]:
            raise ValueError(f"expected spikes of shape (T, batch, {self.sizes[0]}), got {tuple(spikes.shape)}")
        p = self.params
        decay_s, decay_m = 1 - 1 / p.tau_s, 1 - 1 / p.tau_m
        batch = spikes.shape[1]
        layers = len(self.fcs)
        syn = [spikes.new_zeros(batch, n) for n in self.sizes[1:]]
        mem = [spikes.new_zeros(batch, n) for n in self.sizes[1:]]
        quiet = [spikes.new_zeros(batch, n) for n in self.sizes[1:]]   # refractory steps left
        prev = [spikes.new_zeros(batch, n) for n in self.sizes[1:]]
        counts = [spikes.new_zeros(()) for _ in range(layers)]
        total = spikes.new_zeros(batch, self.n_classes)
        for t in range(spikes.shape[0]):
            s = spikes[t]
            for k, fc in enumerate(self.fcs):
                drive = fc(s)
                if str(k) in self.recs:
                    drive = drive + self.recs[str(k)](prev[k])
                syn[k] = decay_s * syn[k] + drive
                active = (quiet[k] == 0).to(s.dtype)
                mem[k] = (decay_m * mem[k] + syn[k]) * active
                s = _Spike.apply(mem[k] / p.threshold - 1) * active
                fired = s.detach()
                mem[k] = mem[k] * (1 - fired)
                quiet[k] = torch.where(fired > 0, quiet[k].new_tensor(float(p.refractory)),
                                       (quiet[k] - 1).clamp_min(0))
                prev[k] = s
                counts[k] = counts[k] + fired.sum()
            total = total + s
        steps = spikes.shape[0]
        activity = torch.stack([c / (steps * batch * n) for c, n in zip(counts, self.sizes[1:])])
        return total, activity
