"""Grid specs: the [loop] table (CEAL, proxy), committees, and the paper's baselines in one spec."""
import numpy as np
import pytest

import activebatch as ab
from activebatch.experiments import GridSpec
from activebatch.experiments.runner import execute_run
from activebatch.learning.models import MLP

BASE = dict(datasets=["digits"], models=["mlp"], batch_sizes=[10], seeds=1, initial=20, rounds=1,
            training={"lr": 1e-3, "max_epochs": 5})


def _spec(**kw):
    return GridSpec.from_dict({**BASE, "strategies": ["margin"], **kw})


def test_the_papers_comparison_runs_from_one_spec():
    paper = ["random", "least_confidence", "margin", "entropy", "coreset", "albl", "kdpp", "badge"]
    spec = GridSpec.from_dict({**BASE, "strategies": [s for s in paper if s in ab.strategies.names()],
                               "strategy_options": {"albl": {"members": ["least_confidence", "coreset"]}}})
    assert "albl" in spec.strategies
    out = execute_run(spec.to_dict(), "digits|mlp|10|albl|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]


def test_loop_table_reaches_the_run():
    spec = _spec(strategies=["albl"], loop={"ceal": {"threshold": 0.4, "decay": 0.1},
                                            "proxy": {"embedding_dim": 8, "max_epochs": 3}})
    assert spec.loop == {"ceal": {"threshold": 0.4, "decay": 0.1},
                         "proxy": {"embedding_dim": 8, "max_epochs": 3, "model": "mlp"}}
    out = execute_run(spec.to_dict(), "digits|mlp|10|albl|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]
    assert _spec(loop={"ceal": True}).loop == {"ceal": {"threshold": 0.05, "decay": 0.0033}}
    assert _spec(loop={"ceal": False}).loop == {}


def test_committee_grid_runs_query_by_committee():
    spec = _spec(strategies=["vote_entropy", "kl_divergence"], training={"lr": 1e-3, "max_epochs": 5, "committee": 3})
    out = execute_run(spec.to_dict(), "digits|mlp|10|vote_entropy|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]


def test_a_bootstrap_committee_grid_runs_suggestive_annotation_and_the_new_evidence_strategies():
    spec = _spec(strategies=["suggestive_annotation", "cal", "epig", "bait", "typiclust"],
                 training={"lr": 1e-3, "max_epochs": 5, "committee": 3, "bootstrap": True})
    for strategy in spec.strategies:
        out = execute_run(spec.to_dict(), f"digits|mlp|10|{strategy}|0")
        assert [r["n_labeled"] for r in out["rows"]] == [20, 30], strategy


@pytest.mark.parametrize("change, message", [
    (dict(training={"bootstrap": True}), "set training.committee"),
    (dict(training={"committee": 3, "bootstrap": "yes"}), "training.bootstrap must be True or False"),
    (dict(loop={"cealx": {}}), "unknown \\[loop\\] key"),
    (dict(loop={"ceal": {"threshold": -1}}), "loop.ceal"),
    (dict(loop={"ceal": {"rate": 1}}), "unknown CEAL option"),
    (dict(loop={"ceal": 0.1}), "loop.ceal must be"),
    (dict(loop={"proxy": {"width": 3}}), "unknown loop.proxy key"),
    (dict(loop={"proxy": {"model": "vgg"}}), "loop.proxy.model"),
    (dict(loop={"proxy": {"model": "cnn", "embedding_dim": 8}}), "mlp proxy only"),
    (dict(loop={"proxy": {"max_epochs": 0}}), "loop.proxy.max_epochs"),
    (dict(loop={"proxy": {"lr": -1}}), "loop.proxy.lr"),
    (dict(loop={"proxy": 3}), "must be a table"),
    (dict(loop=[1]), "\\[loop\\] must be a table"),
    (dict(training={"committee": 0}), "training.committee"),
    (dict(strategies=["albl"], strategy_options={"albl": {"members": ["margin", "nope"]}}), "unknown strategy"),
    (dict(strategies=["albl"], strategy_options={"albl": {"p_min": 0.9}}), "p_min"),
])
def test_loop_errors(change, message):
    with pytest.raises(ValueError, match=message):
        _spec(**change)


def test_restart_stalled_reaches_every_learner_a_run_trains(monkeypatch):
    from activebatch.learning.callbacks import RestartIfStalled

    seen = []
    original = RestartIfStalled.on_epoch_end

    def spy(self, fit):
        seen.append((self.every, self.below, fit.epoch, type(fit.model).__name__))
        original(self, fit)

    monkeypatch.setattr(RestartIfStalled, "on_epoch_end", spy)
    training = {"lr": 1e-3, "max_epochs": 2, "target_accuracy": 1.0,
                "restart_stalled": {"every": 2, "below": 0.5}}
    spec = _spec(training=training, loop={"proxy": {"embedding_dim": 8, "max_epochs": 3}})
    assert spec.training["restart_stalled"] == {"every": 2, "below": 0.5}
    out = execute_run(spec.to_dict(), "digits|mlp|10|margin|0")
    assert [r["n_labeled"] for r in out["rows"]] == [20, 30]
    # two fits of the model (2 epochs) and of the proxy (3 epochs): every epoch is checked
    assert len(seen) == 2 * 2 + 2 * 3 and {s[:2] for s in seen} == {(2, 0.5)}
    seen.clear()
    execute_run(_spec(training={**training, "restart_stalled": False}).to_dict(), "digits|mlp|10|margin|0")
    assert seen == []
    committee = {**training, "restart_stalled": True, "committee": 2}
    execute_run(_spec(strategies=["vote_entropy"], training=committee).to_dict(), "digits|mlp|10|vote_entropy|0")
    assert len(seen) == 2 * 2 * 2 and {s[:2] for s in seen} == {(50, 0.2)}   # 2 fits x 2 members x 2 epochs


@pytest.mark.parametrize("value, message", [
    ({"every": 0}, "training.restart_stalled: every must be an integer >= 1, got 0"),
    ({"below": 2}, r"training.restart_stalled: below must be a number in \(0, 1\], got 2"),
    ({"epochs": 50}, "training.restart_stalled: unknown restart_stalled option"),
    ("always", "training.restart_stalled: restart_stalled must be true/false or a table"),
])
def test_restart_stalled_errors(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        _spec(training={"restart_stalled": value})


def test_qbc_without_members_is_refused_when_the_learner_has_no_mc_probs():
    learner = ab.Learner(MLP(1, 2, embedding_dim=1), device="cpu")
    if learner.evidence(ab.Pool(np.zeros((1, 1)), n_classes=2)).has("mc_probs"):
        pytest.skip("this Learner supplies mc_probs itself")
    with pytest.raises(ValueError, match="committee"):
        _spec(strategies=["vote_entropy"])
