"""The shared suite: every registered strategy must pass the public checks, and these API-level ones."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch import strategies
from activebatch.testing import parametrize_with_checks
from conftest import SMALL_OPTIONS, make_evidence

SMALL = SMALL_OPTIONS


def make(name):
    return strategies.get(name, **SMALL.get(name, {}))


@parametrize_with_checks([make(n) for n in strategies.names()])
def test_public_checks(strategy, check):
    check(strategy)


ALL = strategies.names()
#: Model-level strategies read the learner and pool handles, not arrays: ab.select cannot run them,
#: so the checks below run them on Evidence from a small trained Learner (see the end of the file).
MODEL_FIELDS = frozenset({"learner", "pool"})
MODEL_LEVEL = [n for n in ALL if strategies.strategy_class(n).needs & MODEL_FIELDS]
ARRAY_LEVEL = [n for n in ALL if n not in MODEL_LEVEL]


def _needed(name, arrays):
    cls = strategies.strategy_class(name)
    return {k: v for k, v in arrays.items() if k in cls.needs | cls.optional}


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_returns_n_distinct_positions_in_range(name, evidence_arrays):
    for n in (1, 7, 30):
        idx = ab.select(make(name), n, seed=1, **evidence_arrays)
        assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
        assert idx.shape == (n,)
        assert np.unique(idx).size == n
        assert idx.min() >= 0 and idx.max() < 60


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_n_equal_to_number_of_candidates(name, evidence_arrays):
    idx = ab.select(make(name), 60, seed=0, **evidence_arrays)
    assert sorted(idx.tolist()) == list(range(60))


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_same_seed_same_selection(name, evidence_arrays):
    a = ab.select(make(name), 12, seed=5, **evidence_arrays)
    b = ab.select(make(name), 12, seed=5, **evidence_arrays)
    np.testing.assert_array_equal(a, b)
    g1 = ab.select(make(name), 12, seed=np.random.default_rng(3), **evidence_arrays)
    g2 = ab.select(make(name), 12, seed=np.random.default_rng(3), **evidence_arrays)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_torch_and_numpy_inputs_agree(name, evidence_arrays):
    as_torch = {k: torch.from_numpy(v) for k, v in evidence_arrays.items()}
    np.testing.assert_array_equal(ab.select(make(name), 9, seed=2, **evidence_arrays),
                                  ab.select(make(name), 9, seed=2, **as_torch))


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_never_selects_an_excluded_item(name, evidence_arrays):
    rng = np.random.default_rng(0)
    excluded = rng.choice(60, size=25, replace=False)
    for seed in range(3):
        idx = ab.select(make(name), 35, exclude=excluded, seed=seed, **evidence_arrays)
        assert not set(idx.tolist()) & set(excluded.tolist())
        assert np.unique(idx).size == 35
    mask = np.zeros(60, dtype=bool)
    mask[excluded] = True
    np.testing.assert_array_equal(ab.select(make(name), 10, exclude=mask, seed=4, **evidence_arrays),
                                  ab.select(make(name), 10, exclude=excluded, seed=4, **evidence_arrays))
    with pytest.raises(ValueError, match="not excluded"):
        ab.select(make(name), 36, exclude=excluded, seed=0, **evidence_arrays)


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_bad_n_is_refused(name, evidence_arrays):
    with pytest.raises(ValueError, match="at least 1"):
        ab.select(make(name), 0, seed=0, **evidence_arrays)
    with pytest.raises(ValueError, match="larger than the number of candidates"):
        ab.select(make(name), 61, seed=0, **evidence_arrays)
    with pytest.raises(TypeError, match="integer"):
        ab.select(make(name), 2.5, seed=0, **evidence_arrays)


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_bad_evidence_is_refused(name, evidence_arrays):
    used = _needed(name, evidence_arrays)
    for field in sorted(set(used) - {"labeled_embeddings"}):
        bad = dict(evidence_arrays)
        arr = np.array(evidence_arrays[field], copy=True)
        arr.reshape(-1)[3] = np.nan
        bad[field] = arr
        with pytest.raises(ValueError, match="NaN"):
            ab.select(make(name), 3, seed=0, **bad)
        missing = {k: v for k, v in evidence_arrays.items() if k != field}
        if field in strategies.strategy_class(name).needs:
            with pytest.raises(ValueError, match=field):
                ab.select(make(name), 3, seed=0, **missing)
    if "probs" in used:
        bad = dict(evidence_arrays, probs=evidence_arrays["probs"] * 2)
        with pytest.raises(ValueError, match="sum to 1"):
            ab.select(make(name), 3, seed=0, **bad)
        neg = np.array(evidence_arrays["probs"])
        neg[0, :2] = [-0.1, neg[0, 0] + neg[0, 1] + 0.1]
        with pytest.raises(ValueError, match="negative"):
            ab.select(make(name), 3, seed=0, **dict(evidence_arrays, probs=neg))
    if {"probs", "embeddings"} <= set(used):
        short = dict(evidence_arrays, embeddings=evidence_arrays["embeddings"][:-1])
        with pytest.raises(ValueError, match="rows"):
            ab.select(make(name), 3, seed=0, **short)


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_refused(name, evidence_arrays):
    with pytest.raises(TypeError, match="unknown option"):
        ab.select(name, 3, seed=0, no_such_option=1, **evidence_arrays)


@pytest.mark.parametrize("name", ARRAY_LEVEL)
def test_other_seeds_still_valid(name):
    for seed in range(5):
        arrays = make_evidence(seed=seed, n=25, k=3, d=4, n_labeled=3)
        idx = ab.select(make(name), 25, seed=seed, **arrays)
        assert sorted(idx.tolist()) == list(range(25))


def test_unknown_strategy_lists_known_ones(evidence_arrays):
    with pytest.raises(ValueError) as err:
        ab.select("no-such-strategy", 3, **evidence_arrays)
    for name in ALL:
        assert name in str(err.value)


def test_registry_contents():
    assert {"random", "least_confidence", "margin", "entropy", "coreset", "badge"} <= set(ALL)
    assert ALL == sorted(ALL)
    with pytest.raises(ValueError, match="already registered"):
        @strategies.register
        class Fake(strategies.Strategy):
            name = "random"


def test_unused_evidence_values_are_ignored_but_shapes_are_checked(evidence_arrays):
    # entropy does not read embeddings, so their values do not matter ...
    n = evidence_arrays["probs"].shape[0]
    nan_emb = np.full((n, 2), np.nan)
    a = ab.select("entropy", 4, probs=evidence_arrays["probs"], embeddings=nan_emb)
    b = ab.select("entropy", 4, probs=evidence_arrays["probs"])
    np.testing.assert_array_equal(a, b)
    # ... but evidence that disagrees with the rest is refused whichever strategy runs
    with pytest.raises(ValueError, match="embeddings has 3 rows but 60 are expected"):
        ab.select("entropy", 4, probs=evidence_arrays["probs"], embeddings=np.zeros((3, 2)))
    # random only needs the number of rows
    assert ab.select("random", 60, embeddings=evidence_arrays["embeddings"], seed=0).size == 60
    with pytest.raises(ValueError, match="no candidate evidence"):
        ab.select("random", 1)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trips(name):
    import json

    strat = make(name)
    state = strat.state_dict()
    assert json.loads(json.dumps(state)) == state            # plain data, storable with a run
    make(name).load_state_dict(state)
    assert make(name).state_dict() == state
    if not strat.stateful:
        assert state == {}
        strat.begin(rounds=2, budget=10)                     # the hooks are no-ops
        strat.update(strategies.Feedback(ids=[1, 2], labels=[0, 1], predictions=[0, 0]))
        assert strat.state_dict() == {}
        with pytest.raises(ValueError, match="keeps no state"):
            strat.load_state_dict({"x": 1})


# Model-level strategies ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models():
    """A small MLP trained on 90 labeled digits (the other 60 pool items are the candidates), with
    a strategy's training callbacks where it has any, as the loop trains it."""
    from activebatch.learning.models import MLP

    cache = {}

    def trained_for(name):
        data = ab.datasets.load("digits")
        pool = ab.Pool(data.X_train[:150], data.y_train[:150], n_classes=10)
        pool.label(np.arange(90))
        callbacks = make(name).training_callbacks(pool)
        key = name if callbacks else None
        if key not in cache:
            learner = ab.Learner(MLP(64, 10, embedding_dim=16), lr=1e-2, device="cpu", max_epochs=30)
            learner.fit(*pool.labeled_data(), seed=0, callbacks=callbacks)
            cache[key] = learner, pool
        return cache[key]

    return trained_for


@pytest.fixture
def trained(models, request):
    return models(request.node.callspec.params["name"])


def _model_select(name, trained, n, seed, exclude=None):
    learner, pool = trained
    evidence = learner.evidence(pool)
    strat = make(name)
    if exclude is None:
        return strat.select(evidence, n, np.random.default_rng(seed))
    allowed = np.setdiff1d(np.arange(evidence.n_candidates), exclude)
    return allowed[strat.select(evidence.subset(allowed), n, np.random.default_rng(seed))]


def test_every_strategy_is_covered():
    assert sorted(ARRAY_LEVEL + MODEL_LEVEL) == ALL
    for name in MODEL_LEVEL:
        assert strategies.strategy_class(name).needs <= MODEL_FIELDS | set(make_evidence())


@pytest.mark.parametrize("name", MODEL_LEVEL)
def test_model_level_returns_n_distinct_unlabeled_items(name, trained):
    learner, pool = trained
    for n in (1, 7, 30):
        idx = _model_select(name, trained, n, seed=1)
        assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (n,)
        assert np.unique(idx).size == n and idx.min() >= 0 and idx.max() < 60
        assert not pool.labeled_mask[pool.unlabeled_indices[idx]].any()
    assert sorted(_model_select(name, trained, 60, seed=0).tolist()) == list(range(60))


@pytest.mark.parametrize("name", MODEL_LEVEL)
def test_model_level_same_seed_same_selection(name, trained):
    np.testing.assert_array_equal(_model_select(name, trained, 12, seed=5), _model_select(name, trained, 12, seed=5))


@pytest.mark.parametrize("name", MODEL_LEVEL)
def test_model_level_never_selects_an_excluded_item(name, trained):
    excluded = np.random.default_rng(0).choice(60, size=25, replace=False)
    idx = _model_select(name, trained, 35, seed=0, exclude=excluded)
    assert not set(idx.tolist()) & set(excluded.tolist()) and np.unique(idx).size == 35


@pytest.mark.parametrize("name", MODEL_LEVEL)
def test_model_level_bad_requests_are_refused(name, trained, evidence_arrays):
    learner, pool = trained
    strat = make(name)
    for n in (0, 61):
        with pytest.raises(ValueError, match="n must be between 1"):
            strat.select(learner.evidence(pool), n, np.random.default_rng(0))
    with pytest.raises(ValueError, match="learner.evidence"):
        ab.select(make(name), 3, seed=0, **evidence_arrays)
    with pytest.raises(ValueError, match="needs evidence"):
        strat.select(ab.Evidence.from_arrays(**evidence_arrays), 3, np.random.default_rng(0))
