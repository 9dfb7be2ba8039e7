"""CAL (contrastive active learning): exactly the brute-force k-NN + KL of the paper's Algorithm 1."""
import math

import numpy as np
import pytest

import activebatch as ab
from activebatch.kernels import rowblocks
from activebatch.kernels.cal import cal_scores, knn_labeled
from activebatch.strategies.cal import CAL
from activebatch.testing import check_strategy, make_evidence


def plain_cal(probs, z, z_lab, q_lab=None, labels=None, k=10, normalize=False):
    """Margatina et al.'s Algorithm 1 with explicit loops: neighbours by sorted distance (ties to
    the lowest labeled index), then the mean KL(q_l || p(x)) over them."""
    if normalize:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        z_lab = z_lab / np.linalg.norm(z_lab, axis=1, keepdims=True)
    out = []
    for i in range(len(z)):
        dist = [math.dist(z[i], z_lab[j]) for j in range(len(z_lab))]
        nbrs = sorted(range(len(z_lab)), key=lambda j: (dist[j], j))[:k]
        kls = []
        for j in nbrs:
            if labels is not None:
                kls.append(-math.log(probs[i][labels[j]]))
            else:
                kls.append(sum(q * (math.log(q) - math.log(p)) for q, p in zip(q_lab[j], probs[i]) if q > 0))
        out.append(sum(kls) / len(kls))
    return np.array(out)


def kl(q, p):
    return sum(a * math.log(a / b) for a, b in zip(q, p))


def _data(seed, n=70, n_lab=25, d=6, k=4):
    ev = make_evidence(seed=seed, n=n, n_labeled=n_lab, d=d, k=k)
    return ev["probs"], ev["embeddings"], ev["labeled_embeddings"], ev["labeled_probs"], ev["labels"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_and_picks_equal_the_plain_algorithm(seed):
    P, Z, ZL, QL, _ = _data(seed)
    expected = plain_cal(P, Z, ZL, QL, k=10)
    strat = CAL()
    ev = ab.Evidence.from_arrays(probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL)
    sel = strat.query(ev, 12, np.random.default_rng(0))
    np.testing.assert_allclose(sel.candidate_scores, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(sel.indices, np.argsort(-expected, kind="stable")[:12])
    np.testing.assert_allclose(sel.scores, expected[sel.indices], rtol=1e-10)
    idx = ab.select("cal", 12, probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL)
    np.testing.assert_array_equal(idx, sel.indices)


def test_gold_label_variant_and_normalised_neighbours():
    P, Z, ZL, QL, y = _data(3)
    lab = ab.select("cal", 10, probs=P, embeddings=Z, labeled_embeddings=ZL, labels=y, neighbour_probs="labels")
    np.testing.assert_array_equal(lab, np.argsort(-plain_cal(P, Z, ZL, labels=y), kind="stable")[:10])
    with pytest.raises(ValueError, match="labels"):   # the variant needs the labels, not labeled_probs
        ab.select("cal", 3, probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL, neighbour_probs="labels")
    got = cal_scores(P, Z, ZL, labeled_probs_L_K=QL, k=5, normalize=True).numpy()
    np.testing.assert_allclose(got, plain_cal(P, Z, ZL, QL, k=5, normalize=True), rtol=1e-10, atol=1e-12)
    norm = ab.select("cal", 10, probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL, normalize=True, k=5)
    np.testing.assert_array_equal(norm, np.argsort(-got, kind="stable")[:10])


def test_known_answer_and_distance_ties_go_to_the_lowest_labeled_index():
    # Candidates at 0 and 10 on a line; labeled items at -1, 1 (tied for the first candidate) and 9.
    Z = np.array([[0.0], [10.0]])
    ZL = np.array([[-1.0], [1.0], [9.0]])
    P = np.array([[0.5, 0.5], [0.9, 0.1]])
    QL = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    s = cal_scores(P, Z, ZL, labeled_probs_L_K=QL, k=1).numpy()
    np.testing.assert_allclose(s, [kl(QL[0], P[0]), kl(QL[2], P[1])], rtol=1e-12)   # -1 beats 1 (index 0)
    _, idx = knn_labeled(Z, ZL, 2)
    np.testing.assert_array_equal(idx.numpy(), [[0, 1], [2, 1]])
    # k larger than L: every labeled item is a neighbour
    s3 = cal_scores(P, Z, ZL, labeled_probs_L_K=QL, k=50).numpy()
    np.testing.assert_allclose(s3, [np.mean([kl(q, P[i]) for q in QL]) for i in range(2)], rtol=1e-12)


def test_tied_scores_go_to_the_lowest_position():
    rng = np.random.default_rng(0)
    ZL = rng.normal(size=(5, 3))
    QL = np.full((5, 2), 0.5)
    Z = rng.normal(size=(8, 3))
    P = np.tile([[0.8, 0.2]], (8, 1))     # every candidate scores the same
    assert ab.select("cal", 4, probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL).tolist() == [0, 1, 2, 3]


def test_zero_probability_gives_an_infinite_score_first():
    Z = np.array([[0.0], [1.0], [2.0]])
    ZL = np.array([[0.0], [2.0]])
    QL = np.array([[0.5, 0.5], [0.5, 0.5]])
    P = np.array([[0.6, 0.4], [1.0, 0.0], [0.7, 0.3]])
    sel = CAL(k=1).query(ab.Evidence.from_arrays(probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL),
                         3, np.random.default_rng(0))
    assert sel.indices[0] == 1 and np.isinf(sel.scores[0]) and not np.isnan(sel.scores).any()


def test_blocks_memory_maps_and_float32(tmp_path, monkeypatch):
    P, Z, ZL, QL, _ = _data(4, n=90, n_lab=30)
    whole = cal_scores(P, Z, ZL, labeled_probs_L_K=QL).numpy()
    # Tiny blocks: many candidate blocks (and the tie repair path per block) give the same scores.
    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 64)
    np.testing.assert_array_equal(cal_scores(P, Z, ZL, labeled_probs_L_K=QL).numpy(), whole)
    for name, arr in (("p", P), ("z", Z), ("zl", ZL)):
        np.save(tmp_path / f"{name}.npy", arr.astype(np.float32))
    Pm, Zm, ZLm = (np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in ("p", "z", "zl"))
    a = ab.select("cal", 15, probs=Pm, embeddings=Zm, labeled_embeddings=ZLm, labeled_probs=QL.astype(np.float32))
    b = ab.select("cal", 15, probs=P, embeddings=Z, labeled_embeddings=ZL, labeled_probs=QL)
    np.testing.assert_array_equal(a, b)
    ev = ab.Evidence.from_arrays(probs=Pm, embeddings=Zm, labeled_embeddings=ZLm, labeled_probs=QL)
    got = CAL().query(ev, 5, np.random.default_rng(0)).candidate_scores
    np.testing.assert_allclose(got, whole, rtol=1e-5)


def test_runs_on_a_learners_evidence():
    from activebatch.testing import make_model_evidence

    learner, pool = make_model_evidence(0)
    ev = learner.evidence(pool)
    sel = CAL().query(ev, 5, np.random.default_rng(0))
    expected = plain_cal(ev.probs.double().numpy(), ev.embeddings.double().numpy(),
                         ev.labeled_embeddings.double().numpy(), ev.labeled_probs.double().numpy())
    np.testing.assert_allclose(sel.candidate_scores, expected, rtol=1e-6, atol=1e-9)


def test_options_are_checked_and_public_checks_pass():
    for bad in (dict(k=0), dict(k=2.5), dict(neighbour_probs="gold"), dict(normalize=1)):
        with pytest.raises(ValueError):
            ab.strategies.get("cal", **bad)
    assert CAL().needs == {"probs", "embeddings", "labeled_embeddings", "labeled_probs"}
    assert CAL(neighbour_probs="labels").needs == {"probs", "embeddings", "labeled_embeddings", "labels"}
    check_strategy(CAL(neighbour_probs="labels"))
    check_strategy(CAL(normalize=True, k=3))


def test_no_labeled_items_is_refused():
    P, Z, _, _, _ = _data(0)
    with pytest.raises(ValueError):
        cal_scores(P, Z, np.zeros((0, Z.shape[1])), labeled_probs_L_K=np.zeros((0, P.shape[1])))
