"""The fused SRC layer as Triton kernels: one launch per layer and direction, the time loop inside the kernel.

The same computation as the CPU kernels of ``quant/csrc/src_scan.c`` (see there for the
equations): the grid covers the ``batch x neurons`` columns in blocks of ``BLOCK``, and each
program walks its block through all ``T`` steps with the states in registers, as SpikingJelly's
and FlexSN's neuron kernels do. One launch per layer forward and one backward, instead of a few
kernels per step.

``T`` is a compile-time constant of the kernels (one compilation per sequence length; Triton's
interpreter cannot take a run-time loop bound under NumPy 2). ``tanh`` is written as ``1 - 2 / (exp(2v) + 1)``, which Triton compiles on every backend and
its interpreter runs (``TRITON_INTERPRET=1``, how the tests run it without a GPU; its speed is
measured only where a GPU is lent: ``python -m quant.bench_train --device cuda``).
"""

import triton
import triton.language as tl

__all__ = ["BLOCK", "layer_forward", "layer_backward"]

BLOCK = 256


@triton.jit
def _tanh(v):
    return 1.0 - 2.0 / (tl.exp(2.0 * v) + 1.0)


@triton.jit
def _forward_kernel(u_ptr, b_ptr, p_ptr, s_ptr, h_ptr, x_ptr, i_ptr, hs_ptr, M, N, STEPS: tl.constexpr,
                    RECORD: tl.constexpr, BLOCK: tl.constexpr):
    alpha, rho, r = tl.load(p_ptr), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    r_s, z_hyp, z_dep = tl.load(p_ptr + 3), tl.load(p_ptr + 4), tl.load(p_ptr + 5)
    m = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = m < M
    bias = tl.load(b_ptr + m % N, mask=mask, other=0.0)
    i = tl.zeros([BLOCK], dtype=bias.dtype)
    h = tl.zeros([BLOCK], dtype=bias.dtype)
    hs = tl.zeros([BLOCK], dtype=bias.dtype)
    for t in range(0, STEPS):
        offset = t * M + m
        i = alpha * i + tl.load(u_ptr + offset, mask=mask, other=0.0)
        x = rho * _tanh(i / rho)
        d = r * h + r_s * hs
        z = tl.where(h >= 0.5, z_dep, z_hyp)
        h_new = _tanh(x + bias + d)
        hs = z * hs + (1.0 - z) * h
        h = h_new
        tl.store(s_ptr + offset, tl.maximum(h, 0.0), mask=mask)
        tl.store(h_ptr + offset, h, mask=mask)
        tl.store(x_ptr + offset, x, mask=mask)
        if RECORD:
            tl.store(i_ptr + offset, i, mask=mask)
            tl.store(hs_ptr + offset, hs, mask=mask)


@triton.jit
def _backward_kernel(gs_ptr, h_ptr, x_ptr, p_ptr, gu_ptr, gb_ptr, M, STEPS: tl.constexpr, BLOCK: tl.constexpr):
    alpha, rho = tl.load(p_ptr), tl.load(p_ptr + 1)
    m = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = m < M
    first = tl.load(h_ptr + m, mask=mask, other=0.0)
    acc = tl.zeros([BLOCK], dtype=first.dtype)
    gb = tl.zeros([BLOCK], dtype=first.dtype)
    for k in range(0, STEPS):
        offset = (STEPS - 1 - k) * M + m
        h = tl.load(h_ptr + offset, mask=mask, other=0.0)
        xr = tl.load(x_ptr + offset, mask=mask, other=0.0) / rho
        g_pre = tl.load(gs_ptr + offset, mask=mask, other=0.0) * (1.0 - h * h)
        gb += g_pre
        acc = g_pre * (1.0 - xr * xr) + alpha * acc
        tl.store(gu_ptr + offset, acc, mask=mask)
    tl.store(gb_ptr + m, gb, mask=mask)


def _constants(params, like):
    """The cell's constants as a tensor of the data's dtype: Triton would pass Python floats as float32."""
    import torch

    p = params
    return torch.tensor([p.alpha, p.rho, p.r, p.r_s, p.z_hyp, p.z_dep], dtype=like.dtype, device=like.device)


def layer_forward(u, bias, params, record=False):
    """As :func:`quant.kernels.layer_forward`, on the tensors' device."""
    import torch

    u, bias = u.contiguous(), bias.contiguous()
    steps, n, m = u.shape[0], u.shape[-1], u[0].numel()
    s, h, x = (torch.empty_like(u) for _ in range(3))
    i, hs = (torch.empty_like(u), torch.empty_like(u)) if record else (s, s)  # unused pointers without record
    _forward_kernel[(triton.cdiv(m, BLOCK),)](u, bias, _constants(params, u), s, h, x, i, hs, m, n, STEPS=steps,
                                              RECORD=record, BLOCK=BLOCK)
    return s, h, x, (i if record else None), (hs if record else None), int(torch.count_nonzero(s))


def layer_backward(g_s, h, x, params):
    """As :func:`quant.kernels.layer_backward`, on the tensors' device."""
    import torch

    g_s = g_s.contiguous()
    steps, n, m = g_s.shape[0], g_s.shape[-1], g_s[0].numel()
    g_u = torch.empty_like(g_s)
    g_b = torch.empty(m, dtype=g_s.dtype, device=g_s.device)
    _backward_kernel[(triton.cdiv(m, BLOCK),)](g_s, h, x, _constants(params, g_s), g_u, g_b, m, STEPS=steps,
                                               BLOCK=BLOCK)
    return g_u, g_b.view(-1, n).sum(0)
