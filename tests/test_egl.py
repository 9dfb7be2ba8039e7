"""EGL: the closed form equals per-label backward passes through a real model."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels.scores import egl_scores
from activebatch.learning.models import MLP


@pytest.mark.parametrize("bias", [False, True])
def test_egl_equals_brute_force_autograd(bias):
    torch.manual_seed(0)
    model = MLP(5, 4, embedding_dim=3).eval()
    x = torch.randn(12, 5)
    with torch.no_grad():
        z = model.embed(x)
        probs = torch.softmax(model.head(z), dim=1)
    brute = torch.zeros(12, dtype=torch.float64)
    for i in range(12):
        for y in range(4):
            model.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 1]), torch.tensor([y]))
            loss.backward()
            g = model.head.weight.grad.flatten()
            if bias:
                g = torch.cat([g, model.head.bias.grad])
            brute[i] += probs[i, y].double() * g.double().norm()
    torch.testing.assert_close(egl_scores(probs, z, bias=bias), brute, rtol=1e-5, atol=1e-7)


def test_egl_picks_the_largest_expected_gradient():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 3))
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    Z = rng.normal(size=(30, 4))
    scores = egl_scores(torch.from_numpy(P), torch.from_numpy(Z)).numpy()
    np.testing.assert_array_equal(ab.select("egl", 5, probs=P, embeddings=Z), np.argsort(-scores, kind="stable")[:5])
    # a confident item has a small expected gradient whatever its embedding norm
    P2 = np.array([[0.999, 0.0005, 0.0005], [0.4, 0.3, 0.3]])
    Z2 = np.array([[100.0, 0.0], [1.0, 0.0]])
    assert ab.select("egl", 1, probs=P2, embeddings=Z2)[0] == 1
    with pytest.raises(ValueError, match="bias"):
        ab.strategies.get("egl", bias="yes")
