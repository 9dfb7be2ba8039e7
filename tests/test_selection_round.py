"""The selection round: scores returned with the picks, the exclusion, and one answer per entry point."""
import numpy as np
import pandas as pd
import pytest
import torch

import activebatch as ab
from activebatch.cli import main
from activebatch.kernels.batchbald import bald_scores, joint_mutual_information
from activebatch.selection import MissingEvidenceError, excluded_mask, select_round
from conftest import make_evidence


@pytest.fixture
def ev():
    return make_evidence(seed=3, n=50, k=4, d=6, n_labeled=8, s=6)


def test_margin_scores_are_those_of_the_picks_and_excluded_rows_are_nan(ev):
    excluded = np.arange(0, 50, 4)
    res = ab.select("margin", 6, probs=ev["probs"], exclude=excluded, seed=0, return_result=True)
    top2 = np.sort(ev["probs"], axis=1)[:, -2:]
    plain = top2[:, 1] - top2[:, 0]
    np.testing.assert_allclose(res.scores, plain[res.indices], rtol=0, atol=1e-15)
    assert np.isnan(res.candidate_scores[excluded]).all()
    kept = np.setdiff1d(np.arange(50), excluded)
    np.testing.assert_allclose(res.candidate_scores[kept], plain[kept], atol=1e-15)
    # the picks are the 6 smallest margins among the kept rows, smallest first
    np.testing.assert_array_equal(res.indices, kept[np.argsort(plain[kept], kind="stable")[:6]])
    assert res.score_name.startswith("p_(1) - p_(2)") and res.strategy == "margin"
    np.testing.assert_array_equal(res.ids, res.indices)


def test_bald_scores_match_the_kernel(ev):
    res = ab.select("bald", 5, mc_probs=ev["mc_probs"], return_result=True)
    np.testing.assert_allclose(res.scores, bald_scores(torch.from_numpy(ev["mc_probs"])).numpy()[res.indices])


def test_badge_d2_is_the_plain_distance_to_the_earlier_picks(ev):
    res = ab.select("badge", 8, probs=ev["probs"], embeddings=ev["embeddings"], seed=4, return_result=True)
    p, z = ev["probs"], ev["embeddings"]
    u = p - np.eye(p.shape[1])[p.argmax(1)]
    g = (u[:, :, None] * z[:, None, :]).reshape(len(p), -1)        # the K*d gradient embeddings, formed
    assert np.isinf(res.scores[0])
    for t in range(1, 8):
        d2 = ((g[res.indices[:t]] - g[res.indices[t]]) ** 2).sum(axis=1).min()
        np.testing.assert_allclose(res.scores[t], d2, rtol=1e-9)


def test_coreset_distances_are_the_plain_max_min_distances(ev):
    res = ab.select("coreset", 6, embeddings=ev["embeddings"], labeled_embeddings=ev["labeled_embeddings"],
                    exclude=[0, 5], return_result=True)
    z, lab = ev["embeddings"], ev["labeled_embeddings"]
    for t, i in enumerate(res.indices):
        centres = np.concatenate([lab, z[res.indices[:t]]])
        np.testing.assert_allclose(res.scores[t], np.sqrt(((centres - z[i]) ** 2).sum(1)).min(), rtol=1e-12)
    assert np.all(np.diff(res.scores) <= 0)
    cold = ab.select("coreset", 3, embeddings=ev["embeddings"], seed=1, return_result=True)
    assert np.isinf(cold.scores[0]) and np.isfinite(cold.scores[1:]).all()


def test_batchbald_gains_add_up_to_the_joint_mutual_information(ev):
    res = ab.select("batchbald", 3, mc_probs=ev["mc_probs"], return_result=True)
    mc = torch.from_numpy(ev["mc_probs"])
    for t in range(1, 4):
        np.testing.assert_allclose(res.scores[:t].sum(), joint_mutual_information(mc[:, res.indices[:t]]),
                                   rtol=1e-9)


def test_strategies_without_scores_say_so(ev):
    res = ab.select("random", 4, probs=ev["probs"], seed=0, return_result=True)
    assert res.scores is None and res.score_name is None and res.candidate_scores is None
    frame = res.to_frame()
    assert frame.columns.tolist() == ["rank", "position", "id"]


def test_ids_name_the_picks(ev):
    ids = np.array([f"item-{i}" for i in range(50)])
    res = ab.select("entropy", 3, probs=ev["probs"], ids=ids, exclude=[0, 1], return_result=True)
    np.testing.assert_array_equal(res.ids, ids[res.indices])


def test_the_exclusion_rules():
    np.testing.assert_array_equal(excluded_mask(np.array([True, False, True]), 3), [True, False, True])
    np.testing.assert_array_equal(excluded_mask([2], 4), [False, False, True, False])
    assert excluded_mask(None, 4) is None
    with pytest.raises(ValueError, match="all 0 or 1"):
        excluded_mask(np.array([0, 1, 1, 0]), 4)          # a mask written as integers
    with pytest.raises(ValueError, match="outside 0..3"):
        excluded_mask([4], 4)
    with pytest.raises(ValueError, match="boolean exclude mask must have shape"):
        excluded_mask(np.ones(3, dtype=bool), 4)
    with pytest.raises(ValueError, match="integer positions"):
        excluded_mask(np.array([0.5]), 4)


def test_missing_evidence_names_the_remedy():
    strat = ab.strategies.get("bald")
    with pytest.raises(MissingEvidenceError, match="dropout"):
        select_round(strat, ab.Evidence(10), 2, np.random.default_rng(0))


def test_bald_without_dropout_fails_before_any_training(digits_pool):
    pool, X_test, y_test = digits_pool
    learner = ab.Learner(ab.models.MLP(64, 10, embedding_dim=8), device="cpu", max_epochs=2)
    trained = []
    fit = learner.fit
    learner.fit = lambda *a, **k: trained.append(1) or fit(*a, **k)
    with pytest.raises(MissingEvidenceError, match="mc_probs .* which the model does not provide; MC-dropout"):
        ab.run(pool, learner, "bald", initial=20, batch_size=5, rounds=1, test=(X_test, y_test))
    assert trained == [] and pool.n_labeled == 0


@pytest.fixture
def digits_pool():
    data = ab.datasets.load("digits")
    return ab.Pool(data.X_train[:200], data.y_train[:200], n_classes=10), data.X_test[:50], data.y_test[:50]


# One answer per entry point ----------------------------------------------------------------------------
def _cli(capsys, tmp_path, args):
    out = tmp_path / "out.csv"
    code = main(["select", *[str(a) for a in args], "--out", str(out)])
    err = capsys.readouterr().err
    return (pd.read_csv(out), None) if code == 0 else (None, err)


def _api(kwargs):
    try:
        return ab.select(return_result=True, **kwargs), None
    except (ValueError, TypeError) as exc:
        return None, str(exc)


@pytest.mark.parametrize("case", ["memmaps", "float16 maps", "mismatched rows", "nan probs", "exclusion",
                                  "mismatched unused field", "n too large", "mc_probs classes"])
def test_api_and_command_line_agree(case, tmp_path, capsys, ev):
    files = {}
    arrays = dict(ev)
    if case == "float16 maps":
        arrays = {k: v.astype(np.float16) for k, v in ev.items()}
        arrays["probs"] = (arrays["probs"] / arrays["probs"].astype(np.float64).sum(1, keepdims=True)
                           ).astype(np.float16)
    if case == "mismatched rows":
        arrays["embeddings"] = ev["embeddings"][:40]
    if case == "nan probs":
        arrays["probs"] = ev["probs"].copy()
        arrays["probs"][7, 1] = np.nan
    if case == "mismatched unused field":
        arrays["mc_probs"] = ev["mc_probs"][:, :30]
    if case == "mc_probs classes":
        arrays["mc_probs"] = np.concatenate([ev["mc_probs"], ev["mc_probs"][:, :, :1]], axis=2) / 2
    for name, value in arrays.items():
        np.save(tmp_path / f"{name}.npy", value)
        files[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    n = 60 if case == "n too large" else 5
    strategy = "entropy" if case in ("mismatched unused field", "mc_probs classes") else "badge"
    args = ["--strategy", strategy, "-n", n, "--seed", 2]
    kwargs = dict(strategy=strategy, n=n, seed=2)
    for name in files:
        args += [f"--{name.replace('_', '-')}", tmp_path / f"{name}.npy"]
        kwargs[name] = files[name]
    if case == "exclusion":
        pd.Series([3, 9, 27], name="id").to_csv(tmp_path / "ex.csv", index=False)
        args += ["--exclude", tmp_path / "ex.csv"]
        kwargs["exclude"] = np.array([3, 9, 27])
    table, cli_err = _cli(capsys, tmp_path, args)
    res, api_err = _api(kwargs)
    if api_err is not None:
        assert cli_err is not None and api_err in cli_err, (api_err, cli_err)
        return
    assert cli_err is None, cli_err
    np.testing.assert_array_equal(table["position"].to_numpy(), res.indices)
    np.testing.assert_allclose(table["score"].to_numpy(), res.scores, rtol=1e-12)
    if case == "exclusion":
        assert not set(res.indices.tolist()) & {3, 9, 27}
