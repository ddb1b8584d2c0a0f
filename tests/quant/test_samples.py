import numpy as np
import pytest

from quant.samples import SampleError, load_samples, save_samples


def test_round_trip_keeps_every_spike(tmp_path):
    rng = np.random.default_rng(0)
    spikes = rng.random((30, 5, 13)) < 0.2     # 13 features: packbits pads, unpack must cut
    images = rng.integers(0, 256, (5, 13)).astype(np.uint8)
    save_samples(tmp_path / "s.npz", images, np.arange(5), spikes, "rate", 7)
    got, labels, imgs, header = load_samples(tmp_path / "s.npz")
    assert np.array_equal(got, spikes) and labels.tolist() == [0, 1, 2, 3, 4] and np.array_equal(imgs, images)
    assert header["seed"] == 7 and header["encoding"] == "rate"


def test_mismatched_or_corrupt_packs_are_rejected(tmp_path):
    with pytest.raises(SampleError, match="do not match"):
        save_samples(tmp_path / "s.npz", np.zeros((4, 13)), np.zeros(5), np.zeros((3, 5, 13)), "rate", 0)
    save_samples(tmp_path / "s.npz", np.zeros((5, 13)), np.zeros(5), np.zeros((3, 5, 13)), "rate", 0)
    data = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(data[:100])
    with pytest.raises(SampleError, match="not a valid sample pack"):
        load_samples(tmp_path / "bad.npz")
