import math

import pytest
import torch

from quant.model import LIFNet, Readout, SRCLayer, SRCNet, build_model, leaky_integrate, relu_bypass
from quant.srcparams import PAPER, PAPER_LATENCY
from quant.train import train_step


def naive_src(s_in, weight, bias, p=PAPER, detach=True, bypass=True):
    """Eqs. 3a-3f written step by step, independently of quant.model."""
    n_steps, batch, _ = s_in.shape
    n = weight.shape[0]
    i = torch.zeros(batch, n, dtype=weight.dtype)
    h = torch.zeros(batch, n, dtype=weight.dtype)
    hs = torch.zeros(batch, n, dtype=weight.dtype)
    out = {"i": [], "h": [], "h_s": [], "s": []}
    for t in range(n_steps):
        i = p.alpha * i + s_in[t] @ weight.T
        x = p.rho * torch.tanh(i / p.rho)
        h_prev, hs_prev = (h.detach(), hs.detach()) if detach else (h, hs)
        z_s = torch.where(h_prev >= 0.5, torch.tensor(p.z_dep, dtype=weight.dtype), torch.tensor(p.z_hyp, dtype=weight.dtype))
        h = torch.tanh(x + p.r * h_prev + p.r_s * hs_prev + bias)
        hs = z_s * hs_prev + (1 - z_s) * h_prev
        s = relu_bypass(h) if bypass else torch.relu(h)
        for k, v in (("i", i), ("h", h), ("h_s", hs), ("s", s)):
            out[k].append(v)
    return {k: torch.stack(v) for k, v in out.items()}


def test_hand_computed_trace_of_one_neuron():
    # One input spiking at steps 0 and 1 into a weight of 2, bias -4 (the clamp).
    layer = SRCLayer(1, 1)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(-4.0)
    s_in = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(4, 1, 1)
    _, st = layer(s_in, return_states=True)
    i0, i1, i2 = 2.0, 0.9 * 2 + 2, 0.9 * (0.9 * 2 + 2)
    x = [3 * math.tanh(v / 3) for v in (i0, i1, i2)]
    h0 = math.tanh(x[0] + 0 + 0 - 4)            # h[-1] = h_s[-1] = 0
    hs0 = 0.9 * 0 + 0.1 * 0                      # z_s = z_hyp since h[-1] = 0 < 0.5
    h1 = math.tanh(x[1] + 2 * h0 - 7 * hs0 - 4)
    hs1 = 0.9 * hs0 + 0.1 * h0                   # h0 < 0.5: z_s = 0.9
    h2 = math.tanh(x[2] + 2 * h1 - 7 * hs1 - 4)
    hs2 = (0.9 * hs1 + 0.1 * h1) if h1 < 0.5 else h1
    assert st["i"][:3, 0, 0].tolist() == pytest.approx([i0, i1, i2], abs=1e-6)
    assert st["h"][:3, 0, 0].tolist() == pytest.approx([h0, h1, h2], abs=1e-6)
    assert st["h_s"][:3, 0, 0].tolist() == pytest.approx([hs0, hs1, hs2], abs=1e-6)
    assert st["s"][:3, 0, 0].tolist() == pytest.approx([max(h0, 0), max(h1, 0), max(h2, 0)], abs=1e-6)


def test_layer_matches_the_naive_recurrence_including_spikes():
    torch.manual_seed(0)
    layer = SRCLayer(20, 7).double()
    with torch.no_grad():
        layer.weight.mul_(8)
        layer.bias.uniform_(-6, -4)
    s_in = (torch.rand(120, 3, 20) < 0.3).double()
    _, st = layer(s_in, return_states=True)
    ref = naive_src(s_in, layer.weight.detach(), layer.bias.detach())
    assert (st["s"] > 0.5).any(), "the test should exercise the depolarised branch of z_s"
    for k in ("i", "h", "h_s", "s"):
        torch.testing.assert_close(st[k], ref[k], rtol=0, atol=1e-9)


def test_z_s_switches_on_the_previous_h():
    layer = SRCLayer(1, 1).double()
    with torch.no_grad():
        layer.weight.fill_(20.0)
        layer.bias.fill_(-4.0)
    with torch.no_grad():
        _, st = layer(torch.ones(60, 1, 1, dtype=torch.float64), return_states=True)
    h, hs = st["h"][:, 0, 0], st["h_s"][:, 0, 0]
    for t in range(1, 60):
        if h[t - 1] >= 0.5:   # depolarised: h_s jumps to h[t-1]
            assert hs[t] == pytest.approx(float(h[t - 1]))
        else:
            assert hs[t] == pytest.approx(0.9 * float(hs[t - 1]) + 0.1 * float(h[t - 1]))
    assert (h >= 0.5).any()


def _grads(model_fn, weight, bias, s_in, target):
    weight = weight.clone().requires_grad_(True)
    bias = bias.clone().requires_grad_(True)
    s = model_fn(s_in, weight, bias)
    (s * target).sum().backward()
    return weight.grad, bias.grad


def test_gradients_flow_only_through_i_and_the_bypassed_relu():
    torch.manual_seed(1)
    layer = SRCLayer(10, 5).double()
    with torch.no_grad():
        layer.weight.mul_(6)
        layer.bias.fill_(-4.5)
    s_in = (torch.rand(60, 2, 10) < 0.4).double()
    target = torch.randn(60, 2, 5, dtype=torch.float64)
    (layer(s_in) * target).sum().backward()
    w, b = layer.weight.detach(), layer.bias.detach()
    detached = _grads(lambda s, w_, b_: naive_src(s, w_, b_)["s"], w, b, s_in, target)
    torch.testing.assert_close(layer.weight.grad, detached[0])
    torch.testing.assert_close(layer.bias.grad, detached[1])
    # The same recurrence with gradients through h and h_s gives other gradients: the check can fail.
    through = _grads(lambda s, w_, b_: naive_src(s, w_, b_, detach=False)["s"], w, b, s_in, target)
    assert not torch.allclose(layer.weight.grad, through[0], atol=1e-6)


def test_relu_bypass_gives_silent_neurons_a_gradient():
    layer = SRCLayer(4, 3)   # b_h = -6: silent
    s_in = torch.ones(10, 1, 4)
    s = layer(s_in)
    assert float(s.abs().sum()) == 0.0
    s.sum().backward()
    assert float(layer.weight.grad.abs().sum()) > 0
    plain = _grads(lambda x, w_, b_: naive_src(x, w_, b_, bypass=False)["s"], layer.weight.detach(),
                   layer.bias.detach(), s_in, torch.ones(10, 1, 3))
    assert float(plain[0].abs().sum()) == 0.0


@pytest.mark.parametrize("implementation", ["fused", "dense"])
def test_without_the_bypass_the_gradient_is_the_plain_relus(implementation):
    # Figure 2's ablation: the same layer trained with ReLU's own gradient (none through silent
    # steps) must equal the step-by-step recurrence written with torch.relu, and differ from the bypass.
    torch.manual_seed(3)
    layer = SRCLayer(10, 5, implementation=implementation, bypass=False).double()
    with torch.no_grad():
        layer.weight.mul_(6)
        layer.bias.fill_(-4.0)
    s_in = (torch.rand(60, 2, 10) < 0.4).double()
    target = torch.randn(60, 2, 5, dtype=torch.float64)
    s = layer(s_in)
    assert 0 < int((s > 0).sum()) < s.numel(), "the check needs both silent and spiking steps"
    (s * target).sum().backward()
    w, b = layer.weight.detach(), layer.bias.detach()
    plain = _grads(lambda x, w_, b_: naive_src(x, w_, b_, bypass=False)["s"], w, b, s_in, target)
    torch.testing.assert_close(layer.weight.grad, plain[0])
    torch.testing.assert_close(layer.bias.grad, plain[1])
    bypassed = _grads(lambda x, w_, b_: naive_src(x, w_, b_)["s"], w, b, s_in, target)
    assert not torch.allclose(layer.weight.grad, bypassed[0], atol=1e-6)


def test_only_the_src_network_has_a_bypass_to_turn_off():
    assert all(not layer.bypass for layer in build_model("src", 8, 3, 6, bypass=False).layers)
    with pytest.raises(ValueError, match="bypass"):
        build_model("lif", 8, 2, 6, bypass=False)


def test_bias_is_clamped_after_every_optimizer_step():
    torch.manual_seed(2)
    model = build_model("src", 16, 2, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=100.0)  # huge steps push b_h far up
    spikes = (torch.rand(30, 4, 16) < 0.5).float()
    for _ in range(3):
        train_step(model, optimizer, spikes, torch.tensor([0, 1, 2, 3]))
        for layer in model.layers:
            assert float(layer.bias.max()) <= PAPER.b_h_max
    assert any(float(layer.bias.max()) == PAPER.b_h_max for layer in model.layers)


def test_readout_hand_computed():
    readout = Readout(2, PAPER)  # 20 neurons: 0-9 class 0, 10-19 class 1
    s = torch.zeros(3, 1, 20)
    s[0, 0, 0] = 1.0    # class 0 neuron at t=0
    s[2, 0, 15] = 0.5   # class 1 neuron at t=2
    v0 = 1.0 * 0.99 ** 2 + (-0.1) * 0.5
    v1 = -0.1 * 0.99 ** 2 + 1.0 * 0.5
    assert readout(s)[0].tolist() == pytest.approx([v0, v1])
    assert readout.trace(s)[-1, 0].tolist() == pytest.approx([v0, v1])
    assert readout.trace(s)[0, 0].tolist() == pytest.approx([1.0, -0.1])


def test_leaky_integrate_matches_a_loop():
    u = torch.randn(50, 3, 4, dtype=torch.float64)
    y, ref = leaky_integrate(u, 0.99), []
    acc = torch.zeros(3, 4, dtype=torch.float64)
    for t in range(50):
        acc = 0.99 * acc + u[t]
        ref.append(acc)
    torch.testing.assert_close(y, torch.stack(ref))


def test_network_shapes_activity_and_errors():
    model = SRCNet([30, 12, 100])
    logits, activity = model((torch.rand(20, 5, 30) < 0.5).float())
    assert logits.shape == (5, 10) and activity.shape == (2,)
    assert ((activity >= 0) & (activity <= 1)).all()
    with pytest.raises(ValueError, match=r"\(T, batch, 30\)"):
        model(torch.zeros(20, 5, 31))
    with pytest.raises(ValueError, match="readout needs"):
        SRCNet([30, 12, 90])
    assert build_model("src", 784, 1, 512).sizes == [784, 100]
    assert build_model("src", 784, 3, 64, params=PAPER_LATENCY).layers[0].params.alpha == 0.99


def test_lif_baseline_learns_beta_and_threshold():
    model = build_model("lif", 30, 2, 16)
    assert isinstance(model, LIFNet)
    names = {n for n, _ in model.named_parameters()}
    assert {"lifs.0.beta", "lifs.0.threshold"} <= names
    logits, activity = model((torch.rand(15, 3, 30) < 0.5).float())
    logits.sum().backward()
    assert model.lifs[0].beta.grad is not None and logits.shape == (3, 10) and activity.shape == (2,)


def _train_pair(dtype, sizes=(300, 64, 100), density=0.1, seed=0):
    """The same network in both implementations, one forward and backward each on the same batch."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    fused = SRCNet(list(sizes), implementation="fused").to(dtype)
    dense = SRCNet(list(sizes), implementation="dense").to(dtype)
    dense.load_state_dict(fused.state_dict())
    spikes = (torch.rand(100, 16, sizes[0]) < density).to(dtype)
    labels = torch.randint(0, 10, (16,))
    out = []
    for model in (fused, dense):
        logits, _, states = model(spikes, return_states=True)
        F.cross_entropy(logits, labels).backward()
        out.append((logits.detach(), states, [p.grad for p in model.parameters()]))
    return out


def test_the_fused_layers_equal_the_dense_ones_in_float64_gradients_included():
    """The kernels' hand-written backward is the paper's gradient, as autograd derives it from the dense form."""
    from quant import kernels

    assert kernels.available()
    (l1, st1, g1), (l2, st2, g2) = _train_pair(torch.float64)
    torch.testing.assert_close(l1, l2, rtol=0, atol=1e-9)
    for a, b in zip(st1, st2):
        for k in ("i", "x", "h", "h_s", "s"):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-9)
    for a, b in zip(g1, g2):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-9


def test_the_fused_layers_are_within_the_stated_float32_tolerance():
    """float32 rounds differently in a sequential scan than in a T x T product: logits within 2e-3,
    spikes within 2e-3, gradients within 1e-3 of their largest element."""
    (l1, st1, g1), (l2, st2, g2) = _train_pair(torch.float32)
    torch.testing.assert_close(l1, l2, rtol=0, atol=2e-3)
    torch.testing.assert_close(st1[0]["s"], st2[0]["s"], rtol=0, atol=2e-3)
    for a, b in zip(g1, g2):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_event_projection_equals_the_matrix_product(dtype):
    from quant.model import _EventProjection

    torch.manual_seed(3)
    spikes = (torch.rand(40, 5, 70) < 0.05).to(dtype) * torch.randint(1, 4, (40, 5, 70)).to(dtype)  # graded too
    weight = torch.randn(33, 70, dtype=dtype, requires_grad=True)
    reference = torch.randn(33, 70, dtype=dtype)
    with torch.no_grad():
        reference.copy_(weight)
    reference.requires_grad_(True)
    g = torch.randn(40, 5, 33, dtype=dtype)
    got = _EventProjection.apply(spikes, weight)
    want = spikes @ reference.T
    (got * g).sum().backward()
    (want * g).sum().backward()
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(got, want, rtol=0, atol=tol)
    torch.testing.assert_close(weight.grad, reference.grad, rtol=0, atol=tol * 10)


def test_triton_kernels_in_the_interpreter_equal_the_cpu_kernels():
    """The GPU path, run by Triton's interpreter on the CPU (its speed is not measured here)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("triton")
    script = """
import torch
from quant import kernels, triton_scan
from quant.srcparams import PAPER, PAPER_LATENCY
torch.manual_seed(0)
for params in (PAPER, PAPER_LATENCY):
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        u = torch.randn(30, 3, 17, dtype=dtype) * 3
        b = torch.empty(17, dtype=dtype).uniform_(-6, -4)
        got, want = triton_scan.layer_forward(u, b, params, True), kernels.layer_forward(u, b, params, True)
        for a, c in zip(got[:5], want[:5]):
            assert (a - c).abs().max() <= tol, ("forward", dtype, (a - c).abs().max())
        assert got[5] == want[5] == int(torch.count_nonzero(want[0])), "the active count"
        g = torch.randn_like(u)
        for a, c in zip(triton_scan.layer_backward(g, got[1], got[2], params),
                        kernels.layer_backward(g, want[1], want[2], params)):
            assert (a - c).abs().max() <= tol * 10, ("backward", dtype, (a - c).abs().max())
print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root,
                            env={**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(root)}, timeout=600)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_without_the_kernels_the_fused_model_runs_the_dense_path(monkeypatch):
    from quant import kernels

    monkeypatch.setattr(kernels, "available", lambda: False)
    torch.manual_seed(5)
    fused, dense = SRCNet([30, 8, 100]).double(), SRCNet([30, 8, 100], implementation="dense").double()
    dense.load_state_dict(fused.state_dict())
    spikes = (torch.rand(20, 2, 30) < 0.3).double()
    assert torch.equal(fused(spikes)[0], dense(spikes)[0])   # the very same computation


def _naive_network_float64(spikes, model):
    """Eqs. 3a-3f and the readout in plain float64 arithmetic, every constant a float64 tensor."""
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)
    p = model.params
    s = spikes
    for layer in model.layers:
        w, b = layer.weight.detach(), layer.bias.detach()
        i = h = hs = torch.zeros(s.shape[1], w.shape[0], dtype=torch.float64)
        out = []
        for t in range(s.shape[0]):
            i = f64(p.alpha) * i + s[t] @ w.T
            x = f64(p.rho) * torch.tanh(i / f64(p.rho))
            z = torch.where(h >= 0.5, f64(p.z_dep), f64(p.z_hyp))
            h, hs = torch.tanh(x + f64(p.r) * h + f64(p.r_s) * hs + b), z * hs + (1 - z) * h
            out.append(torch.relu(h))
        s = torch.stack(out)
    n_classes = s.shape[2] // p.group_size
    group = s.reshape(s.shape[0], s.shape[1], n_classes, p.group_size).sum(-1)
    v = torch.zeros(s.shape[1], n_classes, dtype=torch.float64)
    for t in range(s.shape[0]):
        drive = f64(p.readout_pos) * group[t] + f64(p.readout_neg) * (group[t].sum(-1, keepdim=True) - group[t])
        v = f64(p.readout_alpha) * v + drive
    return s, v


def test_a_float64_network_computes_in_float64_throughout():
    torch.manual_seed(7)
    model = SRCNet([20, 12, 20], n_classes=2).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(8)
            layer.bias.uniform_(-6, -4)
    spikes = (torch.rand(80, 3, 20) < 0.3).double()
    logits, _, states = model(spikes, return_states=True)
    s_ref, v_ref = _naive_network_float64(spikes, model)
    assert (s_ref > 0.5).any(), "the depolarised branch of z_s must be exercised"
    assert logits.dtype == torch.float64 and states[-1]["h_s"].dtype == torch.float64
    torch.testing.assert_close(states[-1]["s"], s_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(logits, v_ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(states[-1]["readout"][-1], v_ref, rtol=0, atol=1e-9)


def test_the_readout_applies_its_constants_in_the_spikes_dtype():
    readout = Readout(2, PAPER)
    s = torch.zeros(1, 1, 20, dtype=torch.float64)
    s[0, 0, 15] = 1.0
    assert readout(s).dtype == torch.float64
    assert readout(s)[0].tolist() == [-0.1, 1.0]   # -0.1 exactly as a float64, not a widened float32
    assert readout(s.float())[0, 0].item() == torch.tensor(-0.1, dtype=torch.float32).item()
