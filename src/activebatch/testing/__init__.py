"""The public strategy check suite (scikit-learn's ``check_estimator`` pattern, for strategies).

:func:`check_strategy` runs every shared contract check on a strategy, built in or written by a
user; :func:`parametrize_with_checks` turns them into pytest cases::

    from activebatch.testing import parametrize_with_checks

    @parametrize_with_checks([MyStrategy(), ab.strategies.get("badge")])
    def test_strategy(strategy, check):
        check(strategy)

A failing check raises ``AssertionError`` naming the broken rule.
"""
from .checks import CHECKS, StrategyCheckError, check_strategy, parametrize_with_checks
from .data import make_evidence, make_model_evidence

__all__ = ["CHECKS", "StrategyCheckError", "check_strategy", "make_evidence", "make_model_evidence",
           "parametrize_with_checks"]
