"""SimCLR pretraining: the NT-Xent loss against a slow reference, the augmentations, a tiny run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from activebatch.learning import SimCLREncoder, nt_xent, pretrain_simclr, simclr_augment
from activebatch.learning.models import MLP, extract_features

torch.set_num_threads(1)


def nt_xent_reference(z1: list[list[float]], z2: list[list[float]], tau: float) -> float:
    """Equation (1) of Chen et al. (2020) pair by pair: views 0..N-1 are z1, N..2N-1 are z2."""
    z = z1 + z2
    n = len(z1)

    def sim(u, v):
        dot = sum(a * b for a, b in zip(u, v))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    total = 0.0
    for i in range(2 * n):
        j = i + n if i < n else i - n
        denom = sum(math.exp(sim(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / tau) / denom)
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
def test_nt_xent_matches_the_pairwise_definition(tau):
    z1 = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-2.0, 1.0, 1.0]]
    z2 = [[0.9, 0.2, 1.5], [3.0, 1.0, -1.0], [-1.0, 0.0, 0.5]]
    got = nt_xent(torch.tensor(z1, dtype=torch.float64), torch.tensor(z2, dtype=torch.float64), tau)
    assert float(got) == pytest.approx(nt_xent_reference(z1, z2, tau), rel=1e-10)


def test_nt_xent_rewards_agreeing_views_and_sharpens_with_a_lower_temperature():
    z = torch.eye(4, dtype=torch.float64)
    noise = 0.1 * torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=torch.float64)
    close = nt_xent(z, z + noise, 0.5)
    assert close < nt_xent(z, z.roll(1, 0), 0.5)          # views of other images as "positives"
    assert nt_xent(z, z + noise, 0.1) < close              # aligned pairs: a sharper softmax, a lower loss


def test_nt_xent_validates():
    z = torch.randn(3, 4)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z, z, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(z, z[:2], 0.5)
    with pytest.raises(ValueError, match="N >= 2"):
        nt_xent(z[:1], z[:1], 0.5)


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 3, 16, 16)])
def test_augment_keeps_shapes_and_range_is_seeded_and_views_differ(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    a = simclr_augment(x, torch.Generator().manual_seed(7))
    b = simclr_augment(x, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    v1, v2 = simclr_augment(x, gen), simclr_augment(x, gen)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(a, v1)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # every image's two views differ
    assert bool(((v1 - v2).abs().flatten(1).amax(1) > 1e-3).all())


def test_without_crop_and_colour_digits_are_never_flipped_and_colour_images_sometimes_are():
    # crop_scale (1, 1) leaves only the whole image (other aspect ratios do not fit), so what is left
    # is the flip
    gray = torch.rand(16, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    out = simclr_augment(gray, torch.Generator().manual_seed(2), crop_scale=(1.0, 1.0), color_strength=0.0)
    assert torch.allclose(out, gray, atol=1e-5)
    rgb = torch.rand(16, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    out = simclr_augment(rgb, torch.Generator().manual_seed(2), crop_scale=(1.0, 1.0), color_strength=0.0)
    same = (out - rgb).abs().flatten(1).amax(1) < 1e-5
    mirrored = (out - rgb.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 16
    forced = simclr_augment(gray, torch.Generator().manual_seed(2), crop_scale=(1.0, 1.0), color_strength=0.0,
                            flip=True)
    assert not torch.allclose(forced, gray, atol=1e-5)


def test_colour_distortion_turns_some_images_gray():
    rgb = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    out = simclr_augment(rgb, torch.Generator().manual_seed(4), crop_scale=(1.0, 1.0), flip=False)
    gray = (out.amax(1) - out.amin(1)).flatten(1).amax(1) < 1e-6
    assert 0 < int(gray.sum()) < 64                     # probability 0.2 per image
    assert not torch.allclose(out[~gray], rgb[~gray])   # the jitter changed the others


def blobs(n: int = 48, side: int = 16, seed: int = 0) -> np.ndarray:
    """Flat (n, side * side) float32 images in [0, 1]: a Gaussian blob of random place and width."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    cy, cx = rng.uniform(3, side - 3, (2, n, 1, 1))
    w = rng.uniform(1.0, 3.0, (n, 1, 1))
    img = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w ** 2))
    return img.reshape(n, -1).astype(np.float32)


def test_tiny_pretraining_lowers_the_loss_and_returns_a_frozen_seeded_encoder():
    X = blobs()
    enc = pretrain_simclr(X, epochs=8, batch_size=16, seed=3)
    assert isinstance(enc, SimCLREncoder) and not enc.training
    assert all(not p.requires_grad for p in enc.parameters())
    assert len(enc.losses) == 8 and enc.losses[-1] < enc.losses[0]
    feats = extract_features(enc, X)
    assert feats.shape == (48, enc.embedding_dim) == (48, 128) and feats.dtype == np.float32
    # images as (N, 1, H, W) and as uint8 in 0..255 give the same features as the flat floats in [0, 1]
    h4 = enc(torch.from_numpy(X).reshape(48, 1, 16, 16))
    assert torch.allclose(h4, torch.from_numpy(feats), atol=1e-5)
    again = pretrain_simclr(X, epochs=8, batch_size=16, seed=3)
    assert again.losses == enc.losses
    assert np.array_equal(extract_features(again, X), feats)
    other = pretrain_simclr(X, epochs=1, batch_size=16, seed=4)
    assert not np.allclose(extract_features(other, X), extract_features(pretrain_simclr(X, epochs=1, batch_size=16,
                                                                                         seed=3), X))


def test_uint8_images_are_scaled_to_the_unit_interval():
    X = blobs(24, seed=1)
    q = np.round(X * 255).astype(np.uint8)
    a = pretrain_simclr(q, epochs=1, batch_size=8, seed=0)
    b = pretrain_simclr(q.astype(np.float32) / 255, epochs=1, batch_size=8, seed=0)
    assert np.allclose(a.losses, b.losses, rtol=1e-5)
    assert np.allclose(extract_features(a, q), extract_features(b, q.astype(np.float32) / 255), atol=1e-4)


def test_any_embedding_model_can_be_the_encoder_and_is_not_modified():
    X = blobs(24, seed=2)
    mlp = MLP(256, 2, embedding_dim=8)
    before = [p.detach().clone() for p in mlp.parameters()]
    enc = pretrain_simclr(X, encoder=mlp, epochs=1, batch_size=8, seed=0)
    assert enc.embedding_dim == 8 and extract_features(enc, X).shape == (24, 8)
    assert all(torch.equal(p, q) for p, q in zip(before, mlp.parameters()))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"temperature": 0.0}, ValueError, "temperature"),
    ({"temperature": -0.5}, ValueError, "temperature"),
    ({"batch_size": 1}, ValueError, "batch_size"),
    ({"lr": 0}, ValueError, "lr"),
    ({"encoder": torch.nn.Linear(4, 4)}, TypeError, "EmbeddingModel"),
])
def test_pretraining_validates_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        pretrain_simclr(blobs(8), **kwargs)


@pytest.mark.parametrize("X, match", [
    (np.zeros((10, 30), np.float32), "square"),               # flat rows that are no image
    (np.zeros(10, np.float32), "must hold images"),
    (np.zeros((10, 2, 16, 16), np.float32), "1 or 3 channels"),
    (np.zeros((10, 1, 4, 4), np.float32), "8x8"),
    (np.zeros((1, 1, 16, 16), np.float32), "at least 2 images"),
    (np.full((4, 1, 16, 16), 255.0, np.float32), r"\[0, 1\]"),  # float pixels in 0..255
])
def test_pretraining_rejects_inputs_that_are_no_images_in_range(X, match):
    with pytest.raises(ValueError, match=match):
        pretrain_simclr(X, epochs=1)


def test_flat_rows_take_an_image_shape():
    X = np.random.default_rng(0).random((6, 3 * 8 * 8)).astype(np.float32)
    enc = pretrain_simclr(X, image_shape=(3, 8, 8), epochs=1, batch_size=3)
    assert extract_features(enc, X).shape == (6, 128)
    with pytest.raises(ValueError, match="does not match"):
        pretrain_simclr(X, image_shape=(1, 8, 8), epochs=1)
