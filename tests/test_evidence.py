import numpy as np
import pytest
import torch

from activebatch import Evidence


def test_lazy_fields_are_computed_once_and_only_when_read():
    calls = []

    def probs():
        calls.append("probs")
        return torch.full((3, 2), 0.5)

    ev = Evidence(3, probs=probs, embeddings=lambda: calls.append("emb"))
    assert calls == []
    assert ev.probs.shape == (3, 2)
    ev.probs
    assert calls == ["probs"]
    assert ev.has("embeddings") and not ev.has("mc_probs")
    assert ev.missing(["probs", "mc_probs"]) == ["mc_probs"]
    with pytest.raises(KeyError, match="mc_probs"):
        ev.mc_probs


def test_from_arrays_validation_messages():
    p = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="2-D"):
        Evidence.from_arrays(probs=np.full(4, 0.5))
    with pytest.raises(ValueError, match="at least 2 columns"):
        Evidence.from_arrays(probs=np.ones((4, 1)))
    with pytest.raises(ValueError, match="rows"):
        Evidence.from_arrays(probs=p, embeddings=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="columns"):
        Evidence.from_arrays(probs=p, embeddings=np.zeros((4, 3)), labeled_embeddings=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="infinite"):
        Evidence.from_arrays(embeddings=np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="logits"):
        Evidence.from_arrays(probs=np.array([[2.0, 1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"\(S, N, K\)"):
        Evidence.from_arrays(mc_probs=p)
    with pytest.raises(ValueError, match="candidates"):
        Evidence.from_arrays(probs=p, mc_probs=np.full((3, 5, 2), 0.5))
    with pytest.raises(TypeError, match="numbers"):
        Evidence.from_arrays(embeddings=np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="unknown evidence"):
        Evidence(3, logits=np.zeros((3, 2)))


def test_subset_keeps_labeled_and_restricts_rows():
    p = np.random.default_rng(0).dirichlet([1, 1, 1], size=6)
    ev = Evidence.from_arrays(probs=p, embeddings=np.arange(12.0).reshape(6, 2),
                              labeled_embeddings=np.zeros((2, 2)))
    sub = ev.subset([1, 4])
    assert sub.n_candidates == 2
    np.testing.assert_allclose(sub.probs.numpy(), p[[1, 4]])
    np.testing.assert_allclose(sub.embeddings.numpy(), [[2, 3], [8, 9]])
    assert sub.labeled_embeddings.shape == (2, 2)
