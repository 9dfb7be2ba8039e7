import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def make_evidence(seed: int = 0, n: int = 60, k: int = 4, d: int = 8, n_labeled: int = 10, s: int = 5):
    """Random but valid evidence of every kind, in float64."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mc_logits = logits[None] + rng.normal(scale=1.0, size=(s, n, k))
    mc = np.exp(mc_logits) / np.exp(mc_logits).sum(2, keepdims=True)
    return dict(probs=probs, embeddings=rng.normal(size=(n, d)),
                labeled_embeddings=rng.normal(size=(n_labeled, d)), mc_probs=mc)


@pytest.fixture
def evidence_arrays():
    return make_evidence()
