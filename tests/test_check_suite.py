"""The public check suite passes a user-defined strategy and names the rule a bad one breaks."""
import numpy as np
import pytest
import torch

import activebatch as ab
from activebatch import strategies
from activebatch.kernels.scores import top_n
from activebatch.strategies import ScoreStrategy, Selection, Strategy
from activebatch.strategies.base import _REGISTRY
from activebatch.testing import StrategyCheckError, check_strategy, parametrize_with_checks


class LongestEmbedding(ScoreStrategy):
    """A user's strategy: the candidates with the longest embeddings."""

    name = "user_longest_embedding"
    fields = ("embeddings",)
    score_name = "embedding norm (larger first)"

    def score(self, embeddings_N_d):
        return embeddings_N_d.to(torch.float64).norm(dim=1)


class WeightedDraw(Strategy):
    """A user's randomised strategy: draws without replacement, weights from the max probability."""

    name = "user_weighted_draw"
    needs = frozenset({"probs"})
    randomized = True

    def _select(self, evidence, n, rng):
        w = 1.0 - evidence.probs.max(dim=1).values.double().numpy() + 1e-3
        return rng.choice(evidence.n_candidates, size=n, replace=False, p=w / w.sum())


@parametrize_with_checks([LongestEmbedding(), WeightedDraw()])
def test_user_strategies_pass(strategy, check):
    check(strategy)


def test_a_registered_user_strategy_is_checked_by_name():
    strategies.register(LongestEmbedding)
    try:
        check_strategy("user_longest_embedding")
        idx = ab.select("user_longest_embedding", 3, embeddings=np.eye(5) * np.arange(1, 6)[:, None])
        assert idx.tolist() == [4, 3, 2]
    finally:
        _REGISTRY.pop("user_longest_embedding")


# Planted faults: each must be caught, with the rule named ----------------------------------------------
class Duplicates(Strategy):
    name = "bad_duplicates"
    needs = frozenset({"probs"})

    def _select(self, evidence, n, rng):
        return np.zeros(n, dtype=np.int64)


class IgnoresSeed(Strategy):
    name = "bad_ignores_seed"
    needs = frozenset({"probs"})
    randomized = True

    def _select(self, evidence, n, rng):
        return np.random.default_rng(0).choice(evidence.n_candidates, size=n, replace=False)


class GlobalRandom(Strategy):
    name = "bad_global_random"
    needs = frozenset({"probs"})
    randomized = True

    def _select(self, evidence, n, rng):
        return np.random.choice(evidence.n_candidates, size=n, replace=False)


class ModifiesInputs(ScoreStrategy):
    name = "bad_modifies_inputs"
    fields = ("probs",)
    rowwise = False
    score_name = "max probability"

    def score(self, probs):
        probs[:, 0] = 0.5   # writes into the caller's array (tensors from numpy share memory)
        return probs.max(dim=1).values


class ScansWholePool(Strategy):
    """Reads the model and pool itself but ranks every unlabeled item, not just the candidates it
    was shown, so excluded items steer its picks."""

    name = "bad_scans_whole_pool"
    needs = frozenset({"learner", "pool"})

    def _select(self, evidence, n, rng):
        pool = evidence.pool
        conf = evidence.learner.predict_proba(pool.features(pool.unlabeled_indices)).max(axis=1)
        order = top_n(conf, conf.size, largest=False)
        return order[order < evidence.n_candidates][:n]


class BadScores(ScoreStrategy):
    name = "bad_scores"
    fields = ("probs",)
    score_name = "max probability"

    def score(self, probs):
        return probs.max(dim=1).values

    def _select(self, evidence, n, rng):
        sel = super()._select(evidence, n, rng)
        return Selection(sel.indices[::-1].copy(), scores=sel.scores[::-1].copy(),
                         candidate_scores=sel.candidate_scores)


@pytest.mark.parametrize("strategy, rule", [
    (Duplicates(), "returns n distinct positions in range"),
    (IgnoresSeed(), "a randomised strategy uses its seed"),
    (GlobalRandom(), "the seed is the only source of randomness"),
    (ModifiesInputs(), "inputs are not modified"),
    (BadScores(), "scores consistent with the picks"),
])
def test_planted_faults_are_named(strategy, rule):
    with pytest.raises(StrategyCheckError, match=rule):
        check_strategy(strategy)


def test_a_strategy_that_sees_excluded_rows_is_caught():
    with pytest.raises(StrategyCheckError, match="the excluded rows do not influence the picks"):
        check_strategy(ScansWholePool())


def test_a_deterministic_strategy_that_varies_is_caught():
    class Varies(GlobalRandom):
        name = "bad_varies"
        randomized = False

        def _select(self, evidence, n, rng):
            return rng.choice(evidence.n_candidates, size=n, replace=False)

    with pytest.raises(StrategyCheckError, match="a deterministic strategy ignores the seed"):
        check_strategy(Varies())
