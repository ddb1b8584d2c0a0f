import pytest
import torch
from snntorch import spikegen

from quant.encode import LATENCY_TAU, LATENCY_THRESHOLD, N_STEPS, RATE_GAIN, encode, latency, rate


def _images(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 784, generator=g)
    images[:, :100] = 0.0  # dark pixels, as MNIST borders
    images[:, 100:110] = 1.0
    images[:, 110:115] = LATENCY_THRESHOLD  # exactly at the threshold
    images[:, 115:120] = LATENCY_THRESHOLD / 2
    return images


@pytest.mark.parametrize("seed", [0, 7, 1234])
def test_rate_matches_snntorch_on_the_global_generator(seed):
    images = _images(seed)
    torch.manual_seed(seed)
    expected = spikegen.rate(images, num_steps=N_STEPS, gain=RATE_GAIN)
    torch.manual_seed(seed)
    assert torch.equal(rate(images), expected)


def test_rate_with_a_seeded_generator_is_reproducible_and_matches_snntorch():
    images = _images(3)
    a = rate(images, generator=torch.Generator().manual_seed(42))
    b = rate(images, generator=torch.Generator().manual_seed(42))
    torch.manual_seed(42)
    assert torch.equal(a, b) and torch.equal(a, spikegen.rate(images, num_steps=N_STEPS, gain=RATE_GAIN))
    assert a.shape == (N_STEPS, 8, 784)


def test_rate_statistics_follow_the_gain():
    images = torch.full((4, 1000), 0.8)
    spikes = rate(images, generator=torch.Generator().manual_seed(0))
    assert abs(float(spikes.mean()) - 0.8 * RATE_GAIN) < 0.005
    assert set(spikes.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("seed", [0, 5])
def test_latency_matches_snntorch(seed):
    images = _images(seed)
    expected = spikegen.latency(images, num_steps=N_STEPS, tau=LATENCY_TAU, threshold=LATENCY_THRESHOLD,
                                normalize=True, linear=True, clip=True)
    assert torch.equal(latency(images), expected)


def test_latency_hand_cases():
    # Spike step = round(199 * (1 - x)), no spike below the threshold.
    images = torch.tensor([[1.0, 0.5, 0.0, 0.005, 0.25]])
    spikes = latency(images)
    assert spikes.sum(0).tolist() == [[1, 1, 0, 0, 1]]
    assert spikes[:, 0, 0].nonzero().item() == 0
    assert spikes[:, 0, 1].nonzero().item() == round(199 * 0.5)
    assert spikes[:, 0, 4].nonzero().item() == round(199 * 0.75)


@pytest.mark.parametrize("encoder", [rate, latency])
def test_encoders_reject_out_of_range_input(encoder):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encoder(torch.tensor([[1.5, 0.2]]))


def test_encode_rejects_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding"):
        encode(torch.zeros(1, 4), "delta")
