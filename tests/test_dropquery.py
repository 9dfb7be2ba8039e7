"""DropQuery: dropout-inconsistency candidates on the head's inputs, then one per k-means cluster."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch.kernels.dropquery import candidate_threshold, dropout_disagreement
from activebatch.strategies.dropquery import DropQuery
from activebatch.testing import check_strategy


def _evidence(Z, W, b):
    head = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(W))
        head.bias.copy_(torch.as_tensor(b))
    learner = SimpleNamespace(model=SimpleNamespace(head=head))
    return ab.Evidence(len(Z), learner=learner, embeddings=torch.as_tensor(Z, dtype=torch.float32)), head


def plain_counts(Z, W, b, passes, p, rng):
    """M dropout passes written out: the masks drawn pass by pass for all rows (one block)."""
    masks = [rng.random(Z.shape) >= p for _ in range(passes)]
    out = []
    for i, z in enumerate(Z):
        logits0 = [sum(W[k][j] * z[j] for j in range(len(z))) + b[k] for k in range(len(W))]
        y0 = max(range(len(W)), key=lambda k: (logits0[k], -k))
        c = 0
        for m in masks:
            lg = [sum(W[k][j] * z[j] * m[i][j] / (1 - p) for j in range(len(z))) + b[k] for k in range(len(W))]
            c += max(range(len(W)), key=lambda k: (lg[k], -k)) != y0
        out.append(c)
    return np.array(out)


def test_disagreement_counts_equal_the_plain_loop():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(40, 6)).astype(np.float32)
    W, b = rng.normal(size=(3, 6)), rng.normal(size=3)
    got = dropout_disagreement(torch.from_numpy(Z), torch.from_numpy(W), torch.from_numpy(b), passes=5, p=0.75,
                               rng=np.random.default_rng(1))
    np.testing.assert_array_equal(got, plain_counts(Z.astype(np.float64), W, b, 5, 0.75, np.random.default_rng(1)))
    assert got.min() >= 0 and got.max() <= 5 and got.any()
    # p = 0 never changes a prediction
    zero = dropout_disagreement(Z, torch.from_numpy(W), None, passes=3, p=0.0, rng=np.random.default_rng(0))
    assert not zero.any()


def test_candidate_threshold():
    counts = np.array([3, 3, 2, 2, 1, 1, 1, 0, 0, 0])
    assert candidate_threshold(counts, 3, 0.5, n=1, min_candidates=0) == 1          # at least 2 of 3
    assert candidate_threshold(counts, 3, 0.5, n=1, min_candidates=5) == 0          # relaxed: any disagreement
    assert candidate_threshold(counts, 3, 0.5, n=1, min_candidates=4) == 1
    assert candidate_threshold(counts, 3, 0.5, n=10, min_candidates=25) == 0        # never below 0
    assert candidate_threshold(counts, 4, 0.5, n=1, min_candidates=0) == 2          # more than half of 4
    assert candidate_threshold(counts, 3, 0.0, n=1, min_candidates=0) == 0


def test_only_inconsistent_candidates_are_picked_one_per_cluster():
    # Identity head on 2 features: items near the diagonal flip under dropout, items on an axis never
    # do (dropping their one non-zero feature ties the logits, and ties go to class 0 as before).
    rng = np.random.default_rng(0)
    amb = np.concatenate([rng.normal([5, 5], 0.1, size=(10, 2)), rng.normal([-5, -5], 0.1, size=(10, 2))])
    amb = np.concatenate([amb, amb[:, ::-1] * [1, -1]])   # four groups of ambiguous items
    sure = np.abs(rng.normal(5, 1, size=(20, 1))) * [1, 0]
    Z = np.concatenate([sure, amb])
    ev, _ = _evidence(Z, np.eye(2), np.zeros(2))
    counts = dropout_disagreement(ev.embeddings, torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
                                  passes=3, p=0.75, rng=np.random.default_rng(3))
    assert not counts[:20].any()
    sel = DropQuery(min_candidates=0).query(ev, 4, np.random.default_rng(3))
    assert (sel.indices >= 20).all() and (sel.scores > 0.5).all()
    np.testing.assert_allclose(sel.scores, counts[sel.indices] / 3)
    assert np.all(np.diff(sel.scores) <= 0)


def plain_dropquery(Z, W, b, n, seed, passes=3, p=0.75, threshold=0.5, factor=25):
    """The whole query written out with the same random draws (masks, then k-means or the fill)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    counts = plain_counts(Z, W, b, passes, p, rng)
    t = max(c for c in range(passes + 1) if c / passes <= threshold)
    while t > 0 and (counts > t).sum() < factor * n:
        t -= 1
    cand = np.flatnonzero(counts > t)
    if cand.size < n:
        rest = np.setdiff1d(np.arange(len(Z)), cand)
        picks = np.concatenate([cand, rng.choice(rest, size=n - cand.size, replace=False)])
    else:
        X = Z[cand] / np.linalg.norm(Z[cand], axis=1, keepdims=True)
        km = KMeans(n, init="k-means++", n_init=1, max_iter=100, random_state=int(rng.integers(2**31 - 1))).fit(X)
        picks = []
        for c in range(n):
            members = np.flatnonzero(km.labels_ == c)
            d2 = ((X[members] - km.cluster_centers_[c]) ** 2).sum(1)
            picks.append(cand[members[np.argmin(d2)]])
        picks = np.array(picks)
    return sorted(picks.tolist(), key=lambda i: (-counts[i], i)), counts


@pytest.mark.parametrize("seed", [0, 1])
def test_the_query_equals_the_plain_pipeline(seed):
    rng = np.random.default_rng(10 + seed)
    Z = np.abs(rng.normal(size=(120, 5)))
    W, b = rng.normal(size=(4, 5)), rng.normal(scale=0.1, size=4)
    ev, _ = _evidence(Z.astype(np.float32), W.astype(np.float32), b.astype(np.float32))
    Z32, W32, b32 = (a.astype(np.float32).astype(np.float64) for a in (Z, W, b))
    for n, factor in ((3, 25), (6, 2)):
        expected, counts = plain_dropquery(Z32, W32, b32, n, seed, factor=factor)
        sel = DropQuery(min_candidates=factor).query(ev, n, np.random.default_rng(seed))
        assert sel.indices.tolist() == expected
        np.testing.assert_allclose(sel.scores, counts[expected] / 3)


def test_too_few_candidates_are_filled_at_random():
    Z = np.concatenate([np.full((10, 2), [5.0, 0.0]), [[0.98, 1.0]]])   # one ambiguous item, ten sure ones
    ev, _ = _evidence(Z, np.eye(2), np.zeros(2))
    picks = {tuple(DropQuery(min_candidates=0).select(ev, 3, np.random.default_rng(s)).tolist()) for s in range(20)}
    assert len(picks) > 1 and all(len(set(p)) == 3 for p in picks)
    flips = [p for p in picks if p[0] == 10]
    assert flips and all(10 not in p[1:] for p in flips)   # when it flips, the ambiguous item comes first


def test_on_a_learners_linear_probe():
    from activebatch.learning.models import LinearHead

    rng = np.random.default_rng(0)
    y = np.arange(150) % 3
    X = (rng.normal(scale=2.0, size=(3, 8))[y] + rng.normal(size=(150, 8))).astype(np.float32)
    pool = ab.Pool(X, y, n_classes=3)
    pool.label(np.arange(15))
    learner = ab.Learner(LinearHead(8, 3, dropout=0.75), lr=1e-2, device="cpu", max_epochs=20)
    learner.fit(*pool.labeled_data(), seed=0)
    ev = learner.evidence(pool)
    sel = DropQuery().query(ev, 5, np.random.default_rng(0))
    assert np.unique(sel.indices).size == 5 and sel.scores.min() >= 0
    np.testing.assert_array_equal(DropQuery().select(learner.evidence(pool), 5, np.random.default_rng(0)), sel.indices)


def test_options_are_checked_and_public_checks_pass():
    for bad in (dict(passes=0), dict(dropout=1.0), dict(dropout=-0.1), dict(threshold=1.0), dict(min_candidates=-1),
                dict(max_iter=0), dict(passes=2.5)):
        with pytest.raises(ValueError):
            ab.strategies.get("dropquery", **bad)
    P = np.full((5, 2), 0.5)
    with pytest.raises(ValueError, match="learner"):
        ab.select("dropquery", 2, probs=P, embeddings=np.eye(5, 2))
    check_strategy(DropQuery(passes=5, min_candidates=0))


def test_without_scikit_learn_the_extra_is_named():
    import subprocess
    import sys

    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from types import SimpleNamespace\n"
            "import numpy as np, torch, activebatch as ab\n"
            "from activebatch.strategies.dropquery import DropQuery\n"
            "ev = ab.Evidence(4, learner=SimpleNamespace(model=SimpleNamespace(head=torch.nn.Linear(2, 2))),\n"
            "                 embeddings=torch.zeros(4, 2))\n"
            "try:\n"
            "    DropQuery().select(ev, 2, np.random.default_rng(0))\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingExtraError") and "pip install 'activebatch[clustering]'" in out
    assert "the dropquery strategy" in out
