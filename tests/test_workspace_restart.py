"""The BADGE authors' restart of stalled fits in workspaces (ModelConfig.restart_stalled)."""
import numpy as np
import pytest

from activebatch.cli import main
from activebatch.learning import RestartIfStalled
from activebatch.workspace import ModelConfig, Workspace, WorkspaceError
from activebatch.workspace.model import build_learner
from workspace_fixtures import make_table


def test_config_stores_the_rule_and_builds_learners_that_restart():
    off = ModelConfig()
    assert off.restart_stalled is False and off.restart_callback() is None
    assert build_learner(off, kind="tabular", n_features=4, n_classes=3, meta={}, device="cpu").callbacks == []
    on = ModelConfig(restart_stalled=True, hidden=8)
    assert on.restart_stalled is True and "every 50 epochs" in on.describe("tabular")
    custom = ModelConfig(restart_stalled={"every": 2, "below": 1.0}, hidden=8, max_epochs=6, lr=1e-6)
    assert ModelConfig.from_dict(custom.to_dict()) == custom
    assert ModelConfig.from_dict({"model": "mlp"}).restart_stalled is False   # a workspace made before the option
    learner = build_learner(custom, kind="tabular", n_features=4, n_classes=3, meta={}, device="cpu")
    (cb,) = learner.callbacks
    assert isinstance(cb, RestartIfStalled) and (cb.every, cb.below) == (2, 1.0)
    # a learning rate this small never fits 3 random classes: every 2nd of 6 epochs restarts
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)).astype(np.float32), rng.integers(0, 3, size=30)
    fit = learner.fit(X, y, seed=0)
    assert fit.train_accuracy < 1.0 and cb.restarts == 3


@pytest.mark.parametrize("value, message", [
    ({"every": 0}, "every must be"),
    ({"evry": 3}, "unknown restart_stalled option"),
    ("yes", "restart_stalled must be true/false"),
    ({"below": 1.5}, "below must be"),
])
def test_bad_rules_are_refused_alike_by_the_api_and_the_command_line(tmp_path, capsys, value, message):
    with pytest.raises(WorkspaceError, match=message):
        ModelConfig(restart_stalled=value)
    if isinstance(value, dict) and set(value) <= {"every", "below"}:
        items, _ = make_table(tmp_path, n=30)
        argv = ["init", str(tmp_path / "ws"), "--items", str(items), "--classes", "a,b,c", "--restart-stalled"]
        for k, v in value.items():
            argv += [f"--restart-{k}", str(v)]
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0 and message.split()[0] in err
        assert not (tmp_path / "ws").exists()


def test_a_scikit_learn_model_takes_no_restart_rule():
    with pytest.raises(WorkspaceError, match="restart_stalled restarts a torch model"):
        ModelConfig(model="sklearn", sklearn="sklearn.linear_model:LogisticRegression", restart_stalled=True)


def test_command_line_init_records_the_rule_and_queries_with_it(tmp_path, capsys):
    items, _ = make_table(tmp_path, n=40)
    ws = tmp_path / "ws"
    code = main(["init", str(ws), "--items", str(items), "--classes", "a,b,c", "--max-epochs", "4",
                 "--restart-stalled", "--restart-every", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "restarts a fit below 20% training accuracy every 2 epochs" in out
    assert Workspace(ws).config.restart_stalled == {"every": 2}
    assert main(["query", str(ws), "-n", "5"]) == 0
    # the options alone are refused: they set the rule of --restart-stalled
    code = main(["init", str(tmp_path / "ws2"), "--items", str(items), "--classes", "a,b,c",
                 "--restart-below", "0.5"])
    assert code != 0 and "add it" in capsys.readouterr().err
