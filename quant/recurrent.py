"""The recurrent SRC layer's time loop: lateral weights from the layer's own spikes of the previous step.

A recurrent layer adds ``W_rec s[t-1]`` to its synaptic input (``s[-1] = 0``)::

    i[t] = alpha*i[t-1] + u[t] + W_rec s[t-1]        u = W s_in (the layer below, all steps at once)
    x[t] = rho*tanh(i[t]/rho)
    h[t] = tanh(x[t] + b + r*h[t-1] + r_s*h_s[t-1]),  s[t] = max(h[t], 0)

so ``u`` can no longer be scanned in one pass: step t needs ``s[t-1]``. Training is
backpropagation through time **through the synaptic path only**, the paper's choice for the
feed-forward cell carried over (section 4.4): the gradient reaches ``s[t-1]`` through
``i[t]`` (and so ``W_rec`` and everything below), while the recurrences of ``h`` and ``h_s``
stay detached. The gradient arriving from above passes the ReLU as the identity (the bypass,
unless the layer turns it off); the gradient going back in time through ``W_rec`` passes it as
the plain ReLU, only through neurons that spiked. With the bypass back in time as well, every
silent neuron (``1 - h^2`` far from 0 at ``h`` near -0.8) relays the gradient step after step and
it explodes: on one epoch of 784-128-R128-100 on Fashion-MNIST the gradient norm was infinite
and clipping stopped training at 35 % validation accuracy (``tests/quant/test_recurrent.py``
shows the growth, ~1e11 against ~1e3). The backward of one step, with ``g_s`` the gradient
arriving from above::

    g_h[t]   = g_s[t] (1, or [h[t] > 0] without the bypass) + (g_i[t+1] W_rec) [h[t] > 0]
    g_pre[t] = g_h[t] (1 - h[t]^2)                   -> g_b
    g_i[t]   = g_pre[t] (1 - (x[t]/rho)^2) + alpha g_i[t+1]   -> g_u[t]
    g_W_rec += g_i[t]^T s[t-1]

written out here as one reverse loop (no autograd graph of ``T`` steps to keep), and held
equal to the step-by-step autograd recurrence by ``tests/quant/test_recurrent.py``.
"""

import torch

__all__ = ["recurrent_scan"]


def _forward(u, bias, weight_rec, params, record):
    p = params
    n_steps = u.shape[0]
    i = torch.zeros_like(u[0])
    h, hs, s = torch.zeros_like(i), torch.zeros_like(i), torch.zeros_like(i)
    out = {name: torch.empty_like(u) for name in ("s", "h", "x")}
    if record:
        out.update(i=torch.empty_like(u), h_s=torch.empty_like(u))
    w_t = weight_rec.t()
    z_dep, z_hyp = u.new_tensor(p.z_dep), u.new_tensor(p.z_hyp)
    for t in range(n_steps):
        i = p.alpha * i + u[t] + s @ w_t
        x = p.rho * torch.tanh(i / p.rho)
        drive = p.r * h + p.r_s * hs
        z_s = torch.where(h >= 0.5, z_dep, z_hyp)
        hs = z_s * hs + (1 - z_s) * h
        h = torch.tanh(x + bias + drive)
        s = torch.relu(h)
        out["s"][t], out["h"][t], out["x"][t] = s, h, x
        if record:
            out["i"][t], out["h_s"][t] = i, hs
    return out


class _RecurrentScan(torch.autograd.Function):
    """``u``, ``b``, ``W_rec`` -> ``s`` of a recurrent layer (module docstring), backward written out."""

    @staticmethod
    def forward(ctx, u, bias, weight_rec, params, bypass):
        out = _forward(u, bias, weight_rec, params, record=False)
        ctx.save_for_backward(out["s"], out["h"], out["x"], weight_rec)
        ctx.params, ctx.bypass = params, bypass
        return out["s"]

    @staticmethod
    def backward(ctx, g_s):
        s, h, x, weight_rec = ctx.saved_tensors
        p = ctx.params
        g_u = torch.empty_like(g_s)
        g_i = torch.zeros_like(g_s[0])
        g_b = torch.zeros_like(g_s[0])
        g_w = torch.zeros_like(weight_rec)
        for t in range(g_s.shape[0] - 1, -1, -1):
            spiking = h[t] > 0
            # The lateral gradient (g_i is step t+1's here, zero after the last) passes only through
            # neurons that spiked: the bypass applies to the gradient from above, not back in time.
            g_h = (g_s[t] if ctx.bypass else g_s[t] * spiking) + (g_i @ weight_rec) * spiking
            g_pre = g_h * (1 - h[t] * h[t])
            g_b += g_pre
            g_i = g_pre * (1 - (x[t] / p.rho) ** 2) + p.alpha * g_i
            g_u[t] = g_i
            if t:
                g_w += g_i.reshape(-1, g_i.shape[-1]).t() @ s[t - 1].reshape(-1, s.shape[-1])
        return g_u, g_b.reshape(-1, g_b.shape[-1]).sum(0), g_w, None, None


def recurrent_scan(u, bias, weight_rec, params, bypass=True, record=False):
    """Run a recurrent SRC layer over ``u`` ``(T, batch, n)``, its input projection.

    Parameters
    ----------
    u : torch.Tensor
        ``W s_in`` for every step.
    bias : torch.Tensor
        ``b_h``, ``(n,)``.
    weight_rec : torch.Tensor
        ``W_rec``, ``(n, n)``: ``W_rec[a, b]`` weighs neuron ``b``'s spike of step t-1 into
        neuron ``a``'s synaptic input of step t.
    params : quant.srcparams.SRCParams
    bypass : bool
        The ReLU bypass (gradient as the identity through ``s = max(h, 0)``).
    record : bool
        Return ``(s, states)`` with ``i``, ``x``, ``h``, ``h_s``, ``s`` per step, without gradient.

    Returns
    -------
    torch.Tensor or (torch.Tensor, dict)
        The spikes ``s`` ``(T, batch, n)``, differentiable in ``u``, ``bias`` and ``weight_rec``.
    """
    if record:
        with torch.no_grad():
            out = _forward(u.detach(), bias.detach(), weight_rec.detach(), params, record=True)
        return out["s"], out
    return _RecurrentScan.apply(u, bias, weight_rec, params, bool(bypass))
