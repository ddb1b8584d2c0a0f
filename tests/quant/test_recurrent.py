"""The recurrent SRC layer: forward and backpropagation through time against an independent recurrence."""

import math

import pytest
import torch

from quant.model import SRCLayer, SRCNet, build_model, relu_bypass
from quant.srcparams import PAPER


def naive_recurrent(s_in, weight, weight_rec, bias, p=PAPER, bypass=True):
    """The recurrent layer written step by step with autograd (h and h_s detached): the spikes
    handed up pass their gradient through the ReLU as the identity (with ``bypass``), the spikes
    fed back through ``W_rec`` through the plain ReLU."""
    n_steps, batch, _ = s_in.shape
    n = weight.shape[0]
    i, h, hs, s = (torch.zeros(batch, n, dtype=weight.dtype) for _ in range(4))
    out = []
    for t in range(n_steps):
        i = p.alpha * i + s_in[t] @ weight.T + s @ weight_rec.T
        x = p.rho * torch.tanh(i / p.rho)
        h_prev, hs_prev = h.detach(), hs.detach()
        z_s = torch.where(h_prev >= 0.5, torch.tensor(p.z_dep, dtype=weight.dtype),
                          torch.tensor(p.z_hyp, dtype=weight.dtype))
        h = torch.tanh(x + p.r * h_prev + p.r_s * hs_prev + bias)
        hs = z_s * hs_prev + (1 - z_s) * h_prev
        s = torch.relu(h)                                      # fed back
        out.append(relu_bypass(h) if bypass else s)            # handed up
    return torch.stack(out)


def test_hand_computed_lateral_drive():
    # Neuron 0 is driven by the input; neuron 1 only by neuron 0's spike of the step before.
    layer = SRCLayer(1, 2, recurrent=True).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[20.0], [0.0]]))
        layer.weight_rec.copy_(torch.tensor([[0.0, 0.0], [30.0, 0.0]]))
        layer.bias.fill_(-1.0)
    s_in = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1).double()
    _, st = layer(s_in, return_states=True)
    h0 = math.tanh(3 * math.tanh(20 / 3) - 1)                    # neuron 0 at step 0
    assert h0 > 0 and float(st["i"][0, 0, 1]) == 0.0             # neuron 1 hears nothing at step 0
    assert float(st["i"][1, 0, 1]) == pytest.approx(30 * h0)     # ... and 30*s0[0] at step 1
    assert float(st["i"][2, 0, 1]) == pytest.approx(0.9 * 30 * h0 + 30 * max(float(st["h"][1, 0, 0]), 0))


@pytest.mark.parametrize("bypass", [True, False])
def test_forward_and_gradients_equal_the_step_by_step_recurrence(bypass):
    torch.manual_seed(5)
    layer = SRCLayer(12, 6, recurrent=True, bypass=bypass).double()
    with torch.no_grad():
        layer.weight.mul_(6)
        layer.weight_rec.mul_(6)
        layer.bias.uniform_(-5, -3)
    s_in = (torch.rand(50, 3, 12) < 0.4).double().requires_grad_(True)
    target = torch.randn(50, 3, 6, dtype=torch.float64)
    s = layer(s_in)
    assert 0 < int((s > 0).sum()) < s.numel()
    (s * target).sum().backward()
    w, w_rec, b = (t.detach().clone().requires_grad_(True) for t in (layer.weight, layer.weight_rec, layer.bias))
    x_in = s_in.detach().clone().requires_grad_(True)
    ref = naive_recurrent(x_in, w, w_rec, b, bypass=bypass)
    torch.testing.assert_close(s, ref, rtol=0, atol=1e-12)
    (ref * target).sum().backward()
    for mine, theirs in ((layer.weight.grad, w.grad), (layer.weight_rec.grad, w_rec.grad),
                         (layer.bias.grad, b.grad), (s_in.grad, x_in.grad)):
        torch.testing.assert_close(mine, theirs)
    assert float(layer.weight_rec.grad.abs().sum()) > 0


def test_without_lateral_weights_it_is_the_feed_forward_layer():
    torch.manual_seed(6)
    recurrent = SRCLayer(10, 5, recurrent=True).double()
    plain = SRCLayer(10, 5).double()
    with torch.no_grad():
        recurrent.weight_rec.zero_()
        recurrent.weight.mul_(6)
        plain.weight.copy_(recurrent.weight)
    s_in = (torch.rand(40, 2, 10) < 0.4).double()
    torch.testing.assert_close(recurrent(s_in), plain(s_in), rtol=0, atol=1e-12)


def test_a_network_names_its_recurrent_layers_and_trains_them():
    model = build_model("src", 16, 3, 8, recurrent=[1])
    assert [layer.recurrent for layer in model.layers] == [False, True, False]
    assert "layers.1.weight_rec" in model.state_dict() and "layers.0.weight_rec" not in model.state_dict()
    with pytest.raises(ValueError, match="recurrent layers"):
        SRCNet([16, 8, 100], recurrent=[2])
    with pytest.raises(ValueError, match="recurrent"):
        build_model("lif", 16, 3, 8, recurrent=[1])


def test_the_baseline_neuron_hand_computed():
    # One input into one neuron with weight 15: I = 15, 15*7/8 + 15, ...; V accumulates I with
    # leak 63/64 until it reaches 20, spikes, resets to 0 and stays silent for 2 steps.
    from quant.baseline import RecurrentLIFNet

    net = RecurrentLIFNet([1, 1], n_classes=1).double()
    with torch.no_grad():
        net.fcs[0].weight.fill_(15.0)
    spikes = torch.zeros(8, 1, 1, dtype=torch.float64)
    spikes[0] = 1.0
    counts, _ = net(spikes)
    syn, mem, quiet, fired = 0.0, 0.0, 0, []
    for t in range(8):
        syn = 7 / 8 * syn + (15.0 if t == 0 else 0.0)
        if quiet:
            mem, quiet = 0.0, quiet - 1
            fired.append(0)
            continue
        mem = 63 / 64 * mem + syn
        fired.append(int(mem >= 20))
        if mem >= 20:
            mem, quiet = 0.0, 2
    assert fired[:4] == [0, 1, 0, 0] and float(counts[0, 0]) == sum(fired)


def test_the_recurrent_baseline_learns_through_its_lateral_weights():
    from quant.baseline import RecurrentLIFNet

    torch.manual_seed(8)
    net = build_model("rlif", 12, 3, 16, recurrent=[1])
    assert isinstance(net, RecurrentLIFNet) and net.sizes == [12, 16, 16, 10]
    with torch.no_grad():
        net.recs["1"].weight.normal_(0, 1)
    spikes = (torch.rand(40, 4, 12) < 0.3).float()
    logits, activity = net(spikes)
    assert logits.shape == (4, 10) and activity.shape == (3,) and float(activity[0]) > 0
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert float(net.recs["1"].weight.grad.abs().sum()) > 0 and float(net.fcs[0].weight.grad.abs().sum()) > 0


def test_the_baseline_round_trips_through_a_model_file(tmp_path):
    from quant.checkpoint import load_model, save_model

    net = build_model("rlif", 12, 3, 16, recurrent=[1])
    save_model(tmp_path / "b.safetensors", net, "rate", 200)
    back, config = load_model(tmp_path / "b.safetensors")
    assert config["neuron"] == "rlif" and back.recurrent == [1] and back.params == net.params


def test_the_lateral_gradient_stays_finite_where_the_bypassed_one_explodes():
    """Why the lateral path takes the plain ReLU's gradient: with the bypass through time as well, a
    silent neuron (h near -1 has 1 - h^2 far from 0) passes the gradient back step after step, and
    over 200 steps it grows by orders of magnitude (and overflows float32 with stronger weights)."""
    torch.manual_seed(9)
    layer = SRCLayer(8, 64, recurrent=True)
    with torch.no_grad():
        layer.weight.mul_(4)
        layer.weight_rec.normal_(0, 1.0)
        layer.bias.fill_(-4.0)
    s_in = (torch.rand(200, 2, 8) < 0.3).float()
    layer(s_in).sum().backward()
    assert torch.isfinite(layer.weight_rec.grad).all() and torch.isfinite(layer.weight.grad).all()
    ours = float(layer.weight_rec.grad.norm())
    w, w_rec, b = (t.detach().clone().requires_grad_(True) for t in (layer.weight, layer.weight_rec, layer.bias))
    n_steps, n = 200, 64
    i, h, hs = (torch.zeros(2, n) for _ in range(3))
    s, total = torch.zeros(2, n), 0
    for t in range(n_steps):
        i = 0.9 * i + s_in[t] @ w.T + s @ w_rec.T
        x = 3 * torch.tanh(i / 3)
        h_prev, hs_prev = h.detach(), hs.detach()
        z_s = torch.where(h_prev >= 0.5, torch.tensor(0.0), torch.tensor(0.9))
        h = torch.tanh(x + 2 * h_prev - 7 * hs_prev + b)
        hs = z_s * hs_prev + (1 - z_s) * h_prev
        s = relu_bypass(h)                                    # the bypass through time too
        total = total + s.sum()
    total.backward()
    bypassed = float(w_rec.grad.norm())
    assert not bypassed < 1e6 * ours, (ours, bypassed)
