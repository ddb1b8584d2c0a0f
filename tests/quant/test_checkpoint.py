import pickle

import pytest
import torch

from quant.checkpoint import (CheckpointError, load_model, load_training_state, read_model_config, save_model,
                              save_training_state)
from quant.model import build_model
from quant.srcparams import PAPER_LATENCY


def test_model_round_trip(tmp_path):
    model = build_model("src", 20, 2, 8, params=PAPER_LATENCY)
    save_model(tmp_path / "m.safetensors", model, "latency", 200)
    loaded, config = load_model(tmp_path / "m.safetensors")
    assert config["encoding"] == "latency" and config["params"] == PAPER_LATENCY and config["sizes"] == [20, 8, 100]
    for a, b in zip(model.parameters(), loaded.parameters()):
        assert torch.equal(a, b)


def test_a_recurrent_model_round_trips_with_its_recurrent_layers(tmp_path):
    model = build_model("src", 20, 3, 8, recurrent=[1])
    with torch.no_grad():
        model.layers[1].weight_rec.normal_()
    save_model(tmp_path / "r.safetensors", model, "rate", 200)
    loaded, config = load_model(tmp_path / "r.safetensors")
    assert config["recurrent"] == [1] and loaded.recurrent == [1]
    assert torch.equal(loaded.layers[1].weight_rec, model.layers[1].weight_rec)
    spikes = (torch.rand(20, 2, 20) < 0.3).float()
    with torch.no_grad():
        assert torch.equal(loaded(spikes)[0], model(spikes)[0])


def test_corrupt_model_file_is_rejected(tmp_path):
    model = build_model("src", 20, 1, 8)
    path = tmp_path / "m.safetensors"
    save_model(path, model, "rate", 200)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match="not a valid float model \\(a safetensors file that is truncated"):
        load_model(path)
    with pytest.raises(CheckpointError, match="no such file"):
        read_model_config(tmp_path / "missing.safetensors")


def test_model_file_of_another_format_is_rejected(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"), metadata={"format": "other"})
    with pytest.raises(CheckpointError, match="format 'other'"):
        load_model(tmp_path / "x.safetensors")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_training_state_refuses_arbitrary_pickles(tmp_path):
    save_training_state(tmp_path / "ok.pt", {"epoch": 3, "w": torch.ones(2)})
    assert load_training_state(tmp_path / "ok.pt")["epoch"] == 3
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Evil()}))
    torch.save({"x": Evil()}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError, match="not a valid training checkpoint"):
            load_training_state(tmp_path / name)
