"""Discriminative active learning: region coverage on a 2-D toy pool, sub-batch retraining, the
sub-sample rule, the discriminator's training rules, the public checks and the array API."""
import numpy as np
import pytest
import torch

import activebatch as ab
import activebatch.strategies.discriminative as dal
from activebatch.strategies.discriminative import Discriminative
from activebatch.testing import check_strategy

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _toy(seed=0):
    """Labeled items at the origin; unlabeled: 40 more there (A), 10 far to the right (B) and 10 less far
    up (C)."""
    rng = np.random.default_rng(seed)
    labeled = rng.normal(0, 0.5, size=(10, 2))
    A = rng.normal(0, 0.5, size=(40, 2))
    B = rng.normal(0, 0.3, size=(10, 2)) + [6, 0]
    C = rng.normal(0, 0.3, size=(10, 2)) + [0, 3]
    return np.vstack([A, B, C]), labeled


def _region(idx):
    return ["A" if i < 40 else "B" if i < 50 else "C" for i in idx]


@pytest.mark.parametrize("device", DEVICES)
def test_picks_come_from_the_region_the_labeled_set_does_not_cover(device):
    Z, lab = _toy()
    sel = ab.select(Discriminative(), 4, seed=0, return_result=True,
                    embeddings=torch.tensor(Z, device=device), labeled_embeddings=torch.tensor(lab, device=device))
    assert "A" not in _region(sel.indices)
    assert sel.score_name.startswith("P(unlabeled)")
    assert np.all((sel.scores > 0.5) & (sel.scores <= 1.0))


def test_each_sub_batch_retrains_as_if_the_earlier_picks_were_labeled():
    Z, lab = _toy()
    # One discriminator ranks the farthest cluster first for every pick...
    one = ab.select("discriminative", 4, seed=0, sub_batches=1, embeddings=Z, labeled_embeddings=lab)
    assert _region(one) == ["B"] * 4
    # ...two sub-batches: once B's first picks count as labeled, the second turns to C.
    two = ab.select("discriminative", 4, seed=0, sub_batches=2, embeddings=Z, labeled_embeddings=lab)
    assert _region(two) == ["B", "B", "C", "C"]


def test_sub_batch_sizes_and_the_subsample_rule():
    assert dal.sub_batch_sizes(100, 20) == [5] * 20
    assert dal.sub_batch_sizes(50, 20) == [3] * 10 + [2] * 10
    assert dal.sub_batch_sizes(3, 20) == [1, 1, 1]
    assert dal.subsample_size(10, 1000, 10.0, 5) == 100        # ten times the labeled set
    assert dal.subsample_size(10, 60, 10.0, 5) == 60           # capped by the unlabeled items left
    assert dal.subsample_size(1, 1000, 10.0, 50) == 50         # raised to the sub-batch size
    assert dal.subsample_size(7, 1000, 2.5, 1) == 17           # floor(2.5 * 7)


def test_each_discriminator_sees_the_labeled_set_plus_earlier_picks_and_a_fresh_subsample(monkeypatch):
    rng = np.random.default_rng(1)
    Z, lab = rng.normal(size=(100, 3)), rng.normal(size=(3, 3))
    calls = []
    real = dal.train_discriminator

    def spy(labeled, unlabeled, **kw):
        calls.append((labeled.clone(), unlabeled.clone()))
        return real(labeled, unlabeled, **{**kw, "max_epochs": 2})

    monkeypatch.setattr(dal, "train_discriminator", spy)
    sel = ab.select("discriminative", 6, seed=4, sub_batches=3, return_result=True, embeddings=Z,
                    labeled_embeddings=lab)
    Zt = torch.tensor(Z, dtype=torch.float32)
    assert [(c[0].shape[0], c[1].shape[0]) for c in calls] == [(3, 30), (5, 50), (7, 70)]
    picks = sel.indices.reshape(3, 2)
    for j, (labeled, unlabeled) in enumerate(calls):
        torch.testing.assert_close(labeled[:3], torch.tensor(lab, dtype=torch.float32))
        torch.testing.assert_close(labeled[3:], Zt[picks[:j].reshape(-1)])     # earlier picks count as labeled
        rows = [int(np.flatnonzero((Zt == u).all(1))[0]) for u in unlabeled]
        assert len(set(rows)) == len(rows) and not set(rows) & set(picks[:j].reshape(-1))
        assert set(picks[j]) <= set(rows)                                         # picks come from the sub-sample


def test_class_weights_are_inverse_to_frequency():
    torch.testing.assert_close(dal.class_weights(10, 90), torch.tensor([10.0, 100 / 90]))
    w = dal.class_weights(3, 27)
    assert float(w[0] * 3) == pytest.approx(float(w[1] * 27))     # both classes weigh M in total


def test_training_stops_once_the_accuracy_passes_the_threshold():
    g = torch.Generator().manual_seed(0)
    lab = torch.randn(10, 2, generator=g) - 4.0
    unl = torch.randn(50, 2, generator=g) + 4.0                   # separable: passed in a few epochs
    net, epochs = dal.train_discriminator(lab, unl, seed=0, lr=1e-3, max_epochs=1000)
    assert epochs < 1000
    with torch.no_grad():
        p = torch.softmax(net(torch.cat([lab, unl])), 1).argmax(1)
    assert (p == torch.cat([torch.zeros(10), torch.ones(50)]).long()).float().mean() > 0.98
    # The same seed gives the same network.
    again, _ = dal.train_discriminator(lab, unl, seed=0, lr=1e-3, max_epochs=1000)
    for a, b in zip(net.parameters(), again.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # Labeled and unlabeled from one distribution: 98% is out of reach in 7 epochs, so the cap ends it;
    # a threshold of 0 ends it after the first epoch.
    same = torch.randn(60, 2, generator=g)
    assert dal.train_discriminator(same[:10], same[10:], seed=0, max_epochs=7)[1] == 7
    assert dal.train_discriminator(same[:10], same[10:], seed=0, max_epochs=7, stop_accuracy=0.0)[1] == 1


def test_same_seed_same_picks_and_the_seed_matters():
    Z, lab = _toy(3)
    a = ab.select("discriminative", 3, seed=5, sub_batches=3, lr=1e-3, embeddings=Z, labeled_embeddings=lab)
    b = ab.select("discriminative", 3, seed=5, sub_batches=3, lr=1e-3, embeddings=Z, labeled_embeddings=lab)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(2)
    Zr, labr = rng.normal(size=(300, 4)), rng.normal(size=(5, 4))   # sub-samples of 50 out of 300
    picks = {tuple(ab.select("discriminative", 2, seed=s, sub_batches=1, max_epochs=20, embeddings=Zr,
                             labeled_embeddings=labr).tolist()) for s in range(3)}
    assert len(picks) > 1


def test_select_on_arrays_numpy_torch_and_float16():
    Z, lab = _toy(1)
    a = ab.select("discriminative", 2, seed=0, sub_batches=2, lr=1e-3, embeddings=Z, labeled_embeddings=lab)
    b = ab.select("discriminative", 2, seed=0, sub_batches=2, lr=1e-3, embeddings=torch.from_numpy(Z),
                  labeled_embeddings=torch.from_numpy(lab))
    np.testing.assert_array_equal(a, b)
    c = ab.select("discriminative", 2, seed=0, sub_batches=2, lr=1e-3, embeddings=Z.astype(np.float16),
                  labeled_embeddings=lab.astype(np.float16))
    assert set(_region(c)) <= {"B", "C"}


def test_refusals():
    Z, _ = _toy()
    with pytest.raises(ValueError, match="at least one labeled item"):
        ab.select("discriminative", 2, seed=0, embeddings=Z, labeled_embeddings=np.empty((0, 2)))
    with pytest.raises(ValueError, match="labeled_embeddings"):
        ab.select("discriminative", 2, seed=0, embeddings=Z)
    with pytest.raises(ValueError, match="sub_batches"):
        Discriminative(sub_batches=0)
    with pytest.raises(ValueError, match="stop_accuracy"):
        Discriminative(stop_accuracy=1.0)


def test_public_checks():
    # The contract, with discriminators trained for one epoch (the law check alone runs the
    # strategy 400 times); the tests above check the paper's configuration.
    check_strategy(Discriminative(sub_batches=2, width=16, max_epochs=1))
