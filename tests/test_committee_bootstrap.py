"""Committee(bootstrap=True): each member trains on its own seeded bootstrap resample of the labels."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.learning.callbacks import Callback
from activebatch.learning.committee import Committee
from activebatch.learning.models import MLP


class Seen(Callback):
    """Records the training inputs and labels of every fit."""

    def __init__(self):
        self.fits = []

    def on_fit_start(self, fit):
        self.fits.append((fit.X.detach().cpu().numpy().copy(), fit.y.detach().cpu().numpy().copy()))


@pytest.fixture(scope="module")
def data():
    d = ab.datasets.load("digits")
    return d.X_train[:120].astype(np.float32), d.y_train[:120]


def _committee(bootstrap, members=3):
    return Committee(MLP(64, 10, embedding_dim=8), n_members=members, bootstrap=bootstrap, lr=1e-2, device="cpu",
                     max_epochs=2)


def test_members_train_on_their_own_bootstrap_resamples(data):
    X, y = data
    com = _committee(True)
    seen = Seen()
    com.fit(X, y, seed=7, callbacks=[seen])
    assert len(seen.fits) == 3
    rows = [com.bootstrap_rows(7, i, len(y)) for i in range(3)]
    for (Xi, yi), r in zip(seen.fits, rows):
        assert Xi.shape == X.shape and yi.shape == y.shape                       # same size as the labeled set
        np.testing.assert_array_equal(Xi, X[r])
        np.testing.assert_array_equal(yi, y[r])
        assert np.unique(r).size < len(y)                                        # drawn with replacement
    assert not any(np.array_equal(rows[i], rows[j]) for i in range(3) for j in range(i))   # one per member
    # seeded: the same committee seed gives the same resamples, another seed others
    again = Seen()
    _committee(True).fit(X, y, seed=7, callbacks=[again])
    for (a, _), (b, _) in zip(seen.fits, again.fits):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(com.bootstrap_rows(8, 0, len(y)), rows[0])
    # the resample is uniform over the rows: each row is drawn about once per resample on average
    counts = np.bincount(np.concatenate([com.bootstrap_rows(s, 0, 50) for s in range(400)]), minlength=50)
    assert counts.min() > 300 and counts.max() < 500


def test_without_bootstrap_every_member_sees_all_labels(data):
    X, y = data
    seen = Seen()
    _committee(False).fit(X, y, seed=7, callbacks=[seen])
    for Xi, yi in seen.fits:
        np.testing.assert_array_equal(Xi, X)
        np.testing.assert_array_equal(yi, y)


def test_bootstrap_committee_gives_member_probabilities(data):
    X, y = data
    com = _committee(True, members=4)
    com.fit(X, y, seed=0)
    assert "bootstrap" in repr(com)
    mp = com.member_probs(X[:10])
    assert mp.shape == (4, 10, 10)
    torch.testing.assert_close(mp.sum(-1), torch.ones(4, 10))
    pool = ab.Pool(X, y, n_classes=10)
    pool.label(np.arange(60))
    com.fit(*pool.labeled_data(), seed=1)
    assert com.evidence(pool).mc_probs.shape == (4, 60, 10)


def test_bootstrap_option_is_checked():
    with pytest.raises(ValueError, match="bootstrap"):
        _committee("yes")
