import numpy as np
import pytest
import torch

from quant import golden
from quant.fixedpoint import DEFAULT
from quant.model import build_model
from quant.quantize import QuantizationError, load_network, quantize_layer, quantize_model, save_network


def test_weight_binary_point_and_rounding_by_hand():
    # max |w| = 0.3: 127 / 0.3 = 423 -> 8 fractional bits (0.3 * 256 = 76.8 -> 77).
    w = np.array([[0.3, -0.3, 0.001953125, -0.001953125, 0.0]])
    stats = {}
    layer = quantize_layer(w, np.array([-4.7]), DEFAULT, stats)
    assert layer.weight_frac == 8
    assert layer.weight.tolist() == [[77, -77, 1, 0, 0]]   # 0.5 -> 1 and -0.5 -> 0: half up
    assert layer.bias.tolist() == [-1203]                  # -4.7 * 256 = -1203.2
    assert stats == {"weights_clipped": 0, "biases_clipped": 0}


def test_bias_above_the_clamp_is_clipped_and_counted():
    stats = {}
    layer = quantize_layer(np.ones((2, 3)) * 0.1, np.array([-3.0, -5.0]), DEFAULT, stats)
    assert layer.bias.tolist() == [DEFAULT.b_h_max, -1280] and stats["biases_clipped"] == 1


def test_binary_point_is_capped_for_tiny_weights():
    layer = quantize_layer(np.full((1, 2), 1e-6), np.zeros(1) - 6, DEFAULT)
    assert layer.weight_frac == DEFAULT.max_weight_frac


def test_round_trip_through_npz(tmp_path):
    torch.manual_seed(0)
    net = quantize_model(build_model("src", 20, 2, 16), DEFAULT.replace(weight_width=6), "latency", 50)
    save_network(tmp_path / "q.npz", net)
    back = load_network(tmp_path / "q.npz")
    assert back.config == net.config and back.encoding == "latency" and back.n_steps == 50
    spikes = np.random.default_rng(0).random((50, 3, 20)) < 0.3
    assert np.array_equal(golden.run(back, spikes).scores, golden.run(net, spikes).scores)


def test_corrupt_or_foreign_files_are_rejected(tmp_path):
    torch.manual_seed(0)
    save_network(tmp_path / "q.npz", quantize_model(build_model("src", 20, 1, 8)))
    data = (tmp_path / "q.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(QuantizationError, match="not a valid quantized network"):
        load_network(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", header=np.array('{"format": "x"}'))
    with pytest.raises(QuantizationError, match="format 'x'"):
        load_network(tmp_path / "other.npz")
    with pytest.raises(QuantizationError, match="no such"):
        load_network(tmp_path / "missing.npz")


def test_lif_models_cannot_be_quantized():
    with pytest.raises(QuantizationError, match="only SRC"):
        quantize_model(build_model("lif", 20, 1, 8))


def test_a_recurrent_layer_shares_one_binary_point_and_round_trips(tmp_path):
    # The lateral weights are the larger here: they set the layer's binary point.
    layer = quantize_layer(np.array([[0.1, -0.2]]), np.array([-4.0]), DEFAULT, weight_rec=np.array([[0.9]]))
    assert layer.weight_frac == 7 and layer.weight.tolist() == [[13, -26]] and layer.weight_rec.tolist() == [[115]]
    torch.manual_seed(1)
    model = build_model("src", 20, 3, 16, recurrent=[1])
    with torch.no_grad():
        model.layers[1].weight_rec.uniform_(-0.5, 0.5)
    net = quantize_model(model)
    assert net.recurrent == [1] and net.shape_name() == "20-16-R16-100"
    save_network(tmp_path / "r.npz", net)
    back = load_network(tmp_path / "r.npz")
    assert back.recurrent == [1] and np.array_equal(back.layers[1].weight_rec, net.layers[1].weight_rec)
    spikes = np.random.default_rng(0).random((40, 2, 20)) < 0.3
    assert np.array_equal(golden.run(back, spikes).scores, golden.run(net, spikes).scores)


def test_the_cli_writes_the_network_into_a_folder_it_makes(tmp_path):
    """``--out`` into a folder that does not exist yet (as ``make results`` asks for) is made, and
    the network written there is the shipped model's quantization."""
    from pathlib import Path

    from quant.data import default_data_dir
    from quant.quantize import main

    if default_data_dir("mnist") is None:
        pytest.skip("no local MNIST")
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "not" / "yet" / "q.npz"
    assert main(["--model", str(root / "quant/assets/latency/model.safetensors"), "--weight-width", "6",
                 "--pixel-bits", "4", "--limit-test", "20", "--out", str(out)]) == 0
    shipped = load_network(root / "quant/assets/latency/model.npz")
    written = load_network(out)
    assert written.config == shipped.config
    assert all(np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
               for a, b in zip(written.layers, shipped.layers))
