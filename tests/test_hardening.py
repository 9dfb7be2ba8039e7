"""Bad input at the library's boundary: every case gets a clear error (or an explicit warning),
and the wrong result it used to give no longer happens. One table per entry point."""
import re
import warnings

import numpy as np
import pytest

import activebatch as ab
from activebatch.cli import main
from activebatch.kernels.kdpp import KernelRankWarning
from activebatch.learning.models import MLP
from activebatch.loop import PoolExhaustedWarning
from conftest import make_evidence


@pytest.fixture(scope="module")
def digits():
    data = ab.datasets.load("digits")
    return data.X_train[:150].astype(np.float32), data.y_train[:150], data.X_test[:60], data.y_test[:60]


def learner(n_features=64, **kw):
    return ab.Learner(MLP(n_features, 10, embedding_dim=16), device="cpu", max_epochs=3, **kw)


class CountingLearner(ab.Learner):
    """Records fits, to show that a refusal comes before any training."""

    fits = 0

    def fit(self, *args, **kwargs):
        type(self).fits += 1
        return super().fit(*args, **kwargs)


def with_nan(X, row=7, col=3):
    X = np.array(X, dtype=np.float32, copy=True)
    X[row, col] = np.nan
    return X


# The Python API ----------------------------------------------------------------------------------------
API_CASES = {
    "NaN features in a Pool": (lambda d: ab.Pool(with_nan(d[0]), d[1]),
                               ValueError,
                               "X contains NaN or infinite values in 1 row(s); the first is row 7, column 3"),
    "inf features in Learner.fit": (lambda d: learner().fit(np.where(np.arange(64) == 5, np.inf, d[0]), d[1]),
                                    ValueError, "the first is row 0, column 5"),
    "NaN test features": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "random", initial=20, batch_size=5,
                                           rounds=1, test=(with_nan(d[2], 2, 9), d[3])),
                          ValueError,
                          "test X contains NaN or infinite values in 1 row(s); the first is row 2, column 9"),
    "test labels outside the classes": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "random", initial=20,
                                                         batch_size=5, rounds=1, test=(d[2], d[3] + 7)),
                                        ValueError, "test labels hold class 16 but the pool has 10 classes"),
    "test=None": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "random", initial=20, batch_size=5, rounds=1,
                                   test=None), TypeError, "test must be a pair (X_test, y_test)"),
    "initial=0 on an unlabeled pool": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "random", initial=0,
                                                        batch_size=5, rounds=1, test=(d[2], d[3])),
                                       ValueError, "round 0 would train on nothing"),
    "fit on zero rows": (lambda d: learner().fit(d[0][:0], d[1][:0]), ValueError, "at least one labeled example"),
    "wrong feature width (pool)": (lambda d: ab.run(ab.Pool(d[0][:, :60], d[1]), learner(), "random", initial=20,
                                                    batch_size=5, rounds=1, test=(d[2], d[3])),
                                   ValueError,
                                   "the model cannot take the pool's items (the model): its rows have shape (60,)"),
    "wrong feature width (test)": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "random", initial=20,
                                                    batch_size=5, rounds=1, test=(d[2][:, :60], d[3])),
                                   ValueError, "the model cannot take the test data"),
    "device='gpu'": (lambda d: ab.Learner(MLP(64, 10), device="gpu"),
                     ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    "score with labels outside the classes": (lambda d: learner().score(d[2], d[3] + 10), ValueError,
                                              "y holds label 19 but the model has 10 classes"),
    "complex probabilities": (lambda d: ab.select("margin", 2, probs=make_evidence()["probs"].astype(complex)),
                              TypeError, "probs must hold real numbers"),
    "complex features": (lambda d: ab.Pool(d[0].astype(np.complex64), d[1]), TypeError, "X must hold real numbers"),
    "0/1 integer exclude": (lambda d: ab.select("margin", 2, probs=make_evidence()["probs"],
                                                exclude=np.arange(60) % 2), ValueError, "all 0 or 1"),
    "bald without dropout": (lambda d: ab.run(ab.Pool(d[0], d[1]), learner(), "bald", initial=20, batch_size=5,
                                              rounds=1, test=(d[2], d[3])), ValueError, "does not provide; MC-dropout"),
    "strategy option of the wrong type": (lambda d: ab.strategies.get("batchbald", num_samples=2.5), ValueError,
                                          "num_samples must be an integer >= 1, got float 2.5"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_refuses(case, digits):
    make, exc, message = API_CASES[case]
    CountingLearner.fits = 0
    with pytest.raises(exc, match=re.escape(message)):
        make(digits)


def test_refusals_come_before_any_training(digits):
    X, y, Xt, yt = digits
    for kwargs in (dict(test=(with_nan(Xt), yt)), dict(test=(Xt, yt + 7)), dict(test=(Xt[:, :60], yt))):
        CountingLearner.fits = 0
        pool = ab.Pool(X, y)
        with pytest.raises(ValueError):
            ab.run(pool, CountingLearner(MLP(64, 10), device="cpu", max_epochs=2), "random", initial=20,
                   batch_size=5, rounds=1, **kwargs)
        assert CountingLearner.fits == 0 and pool.n_labeled == 0


def test_nan_in_a_memory_mapped_pool_is_found_in_a_late_block(tmp_path, monkeypatch):
    from activebatch.kernels import rowblocks

    monkeypatch.setattr(rowblocks, "BLOCK_VALUES", 64 * 100)       # blocks of 100 rows
    X = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    X[731, 12] = np.inf
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=re.escape("in 1 row(s); the first is row 731, column 12")):
        ab.Pool(np.load(tmp_path / "X.npy", mmap_mode="r"), np.zeros(1000, dtype=int), n_classes=2)


def test_a_run_the_pool_cannot_fill_says_so(digits):
    X, y, Xt, yt = digits
    pool = ab.Pool(X[:40], y[:40], n_classes=10)
    with pytest.warns(PoolExhaustedWarning, match="the pool has 40 items: 20 initial labels and 5 rounds of 6 need 50"):
        hist = ab.run(pool, learner(), "random", initial=20, batch_size=6, rounds=5, test=(Xt, yt))
    assert [r.n_labeled for r in hist.rounds] == [20, 26, 32, 38, 40]      # the last batch takes what is left
    assert hist.stop_reason.startswith("the pool has 40 items")
    full = ab.run(ab.Pool(X, y), learner(), "random", initial=20, batch_size=5, rounds=1, test=(Xt, yt))
    assert full.stop_reason is None


def test_kdpp_beyond_the_kernel_rank_warns_and_notes_it():
    ev = make_evidence(n=30, d=2, k=2)          # u = p - e_y has rank 1 for K = 2: the kernel has rank <= d = 2
    with pytest.warns(KernelRankWarning, match="rank 2 < k=10"):
        res = ab.select("kdpp", 10, probs=ev["probs"], embeddings=ev["embeddings"], seed=0, return_result=True)
    assert len(res) == 10 and res.notes and "drawn uniformly at random" in res.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ab.select("kdpp", 2, probs=ev["probs"], embeddings=ev["embeddings"], seed=0)) == 2


# The command line --------------------------------------------------------------------------------------
CLI_CASES = {
    "complex probabilities": ("probs", lambda e: e["probs"].astype(np.complex128), "probs must hold real numbers"),
    "NaN probabilities": ("probs", lambda e: np.where(np.arange(4) == 1, np.nan, e["probs"]),
                          "probs contains NaN or infinite values (in 60 rows; the first is row 0)"),
    "mismatched rows": ("embeddings", lambda e: e["embeddings"][:10], "embeddings has 10 rows but 60 are expected"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_command_line_refuses_like_the_api(case, tmp_path, capsys):
    field, corrupt, message = CLI_CASES[case]
    ev = make_evidence()
    ev[field] = corrupt(ev)
    for name in ("probs", "embeddings"):
        np.save(tmp_path / f"{name}.npy", ev[name])
    code = main(["select", "--strategy", "badge", "-n", "3", "--probs", str(tmp_path / "probs.npy"),
                 "--embeddings", str(tmp_path / "embeddings.npy"), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        ab.select("badge", 3, probs=ev["probs"], embeddings=ev["embeddings"])
    assert not (tmp_path / "out.csv").exists()


# Workspaces ----------------------------------------------------------------------------------------------
def test_a_table_with_empty_numeric_cells_is_refused_unless_a_fill_is_chosen(tmp_path, capsys):
    import pandas as pd

    from activebatch.workspace import Workspace

    table = pd.DataFrame({"id": [f"r{i}" for i in range(6)], "a": [1.0, 2.0, None, 4.0, 5.0, 6.0],
                          "b": [0.5, 0.5, 0.5, 0.5, 0.5, 1.5], "colour": ["x", None, "y", "x", "y", "x"]})
    table.to_csv(tmp_path / "items.csv", index=False)
    code = main(["init", str(tmp_path / "ws"), "--items", str(tmp_path / "items.csv"), "--classes", "p,q"])
    err = capsys.readouterr().err
    assert code == 2 and "column 'a' has 1 empty cell(s), the first for item 'r2' (row 2)" in err
    assert "--missing mean|median|zero" in err and not (tmp_path / "ws" / "workspace.sqlite").exists()
    code = main(["init", str(tmp_path / "ws"), "--items", str(tmp_path / "items.csv"), "--classes", "p,q",
                 "--missing", "median"])
    out = capsys.readouterr().out
    assert code == 0 and "filled empty cells with the column median: a (1 cell(s) = 4)" in out
    X = Workspace(tmp_path / "ws").store.features()
    assert np.isfinite(X).all() and X[2, 0] == 4.0          # the median of 1, 2, 4, 5, 6
    ws = Workspace.create(tmp_path / "ws2", tmp_path / "items.csv", "p,q", missing="zero")
    assert ws.store.features()[2, 0] == 0.0
    assert ws.store.meta()["items_info"]["imputed"] == {"a": {"value": 0.0, "count": 1}}


# Workspaces, through the command line ------------------------------------------------------------------
@pytest.fixture
def workspace(tmp_path, capsys):
    from workspace_fixtures import TAB_CLASSES, make_table, write_labels

    items, truth = make_table(tmp_path, n=40)
    code = main(["init", str(tmp_path / "ws"), "--items", str(items), "--classes", ",".join(TAB_CLASSES),
                 "--max-epochs", "3"])
    assert code == 0
    ids = list(truth)
    write_labels(tmp_path / "seed.csv", ids[:9], truth)
    assert main(["import", str(tmp_path / "ws"), str(tmp_path / "seed.csv"), "--any-item"]) == 0
    capsys.readouterr()
    return tmp_path, ids, truth


def _ls_export(ids, labels_per_task):
    return [{"id": 10 + k, "data": {"activebatch_id": i},
             "annotations": [{"id": 100 + 10 * k + j, "completed_by": {"email": who}, "was_cancelled": False,
                              "created_at": "2026-01-02T10:00:00Z",
                              "result": [{"type": "choices", "from_name": "label", "to_name": "row",
                                          "value": {"choices": [lab]}}]}
                             for j, (who, lab) in enumerate(labels)]}
            for k, (i, labels) in enumerate(zip(ids, labels_per_task))]


WORKSPACE_CASES = {
    "bald on a model without dropout": (lambda t, ids: ["query", t / "ws", "-n", "3", "--strategy", "bald"],
                                        "which the workspace model does not provide"),
    "n larger than the candidates": (lambda t, ids: ["query", t / "ws", "-n", "999"], "n=999 is larger than"),
    "disagreeing Label Studio annotations": (
        lambda t, ids: ["import", t / "ws", _json(t / "ls.json", _ls_export(ids[9:10], [[("p@x", "a"), ("q@x", "b")]])),
                        "--any-item"], "q@x"),
    "Label Studio file of the wrong shape": (lambda t, ids: ["import", t / "ws", _json(t / "bad.json", {"tasks": []})],
                                             "expected"),
    "a NaN table": (lambda t, ids: ["init", t / "ws2", "--items", _nan_table(t), "--classes", "a,b"],
                    "empty cell(s)"),
}


def _json(path, data):
    import json

    path.write_text(json.dumps(data))
    return path


def _nan_table(tmp):
    import pandas as pd

    pd.DataFrame({"id": ["u", "v", "w"], "x": [1.0, None, 3.0]}).to_csv(tmp / "nan.csv", index=False)
    return tmp / "nan.csv"


@pytest.mark.parametrize("case", sorted(WORKSPACE_CASES))
def test_workspace_commands_refuse_and_change_nothing(case, workspace, capsys):
    from activebatch.workspace import Workspace

    tmp, ids, truth = workspace
    argv, message = WORKSPACE_CASES[case]
    before = Workspace(tmp / "ws")
    labels_before, rounds_before = before.labels(), before.store.last_round()
    code = main([str(a) for a in argv(tmp, ids)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    after = Workspace(tmp / "ws")
    assert after.store.last_round() == rounds_before
    assert after.labels()["item_id"].tolist() == labels_before["item_id"].tolist()


# The labelling page ------------------------------------------------------------------------------------
PAGE_CASES = {
    "body over the limit": ("POST", "/api/label", {"content": b"{" + b" " * 70_000 + b"}",
                                                    "headers": {"content-type": "application/json"}}, 413),
    "deeply nested JSON": ("POST", "/api/label", {"content": b"[" * 20_000 + b"]" * 20_000,
                                                   "headers": {"content-type": "application/json"}}, 400),
    "image id past SQLite's range": ("GET", "/api/image/99999999999999999999999", {}, 404),
    "batch size of zero": ("POST", "/api/query", {"json": {"n": 0, "strategy": "badge"}}, 400),
    "unknown strategy": ("POST", "/api/query", {"json": {"n": 2, "strategy": "bogus"}}, 400),
    "label for an unknown item": ("POST", "/api/label", {"json": {"id": "nope", "label": "a", "annotator": "x"}},
                                  400),
}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from activebatch.workspace import ModelConfig, Workspace
    from activebatch.workspace.server import LabelServer
    from workspace_fixtures import TAB_CLASSES, make_table

    tmp = tmp_path_factory.mktemp("page")
    items, _ = make_table(tmp, n=30)
    ws = Workspace.create(tmp / "ws", items, TAB_CLASSES, model=ModelConfig(max_epochs=2))
    ws.query(4)
    server = LabelServer(ws.folder, port=0, max_body=64 * 1024).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("case", sorted(PAGE_CASES))
def test_the_page_answers_bad_requests_with_4xx(case, page):
    import httpx

    method, path, kwargs, expected = PAGE_CASES[case]
    with httpx.Client(base_url=page.url, timeout=30) as c:
        r = c.request(method, path, **kwargs)
        assert r.status_code == expected, (case, r.status_code, r.text[:200])
        assert c.get("/api/state").status_code == 200          # still serving


def test_misspelt_names_get_a_suggestion():
    with pytest.raises(ValueError, match="unknown strategy 'marginn'; did you mean 'margin'"):
        ab.strategies.get("marginn")
    with pytest.raises(ValueError, match="unknown data set 'mnist5k'; did you mean 'mnist-5k'"):
        ab.datasets.load("mnist5k")


def test_the_select_command_streams_memory_maps_as_the_api_does(tmp_path, capsys, monkeypatch):
    """A map given to `activebatch select` reaches BADGE unread: reading it whole is not allowed here."""
    from activebatch.learning import evidence as evidence_module

    ev = make_evidence()
    for name in ("probs", "embeddings"):
        np.save(tmp_path / f"{name}.npy", ev[name])

    def refuse(value, name):
        raise AssertionError(f"{name} was read whole")

    monkeypatch.setattr(evidence_module, "_read_whole", refuse)
    code = main(["select", "--strategy", "badge", "-n", "4", "--probs", str(tmp_path / "probs.npy"),
                 "--embeddings", str(tmp_path / "embeddings.npy"), "--out", str(tmp_path / "out.csv")])
    assert code == 0, capsys.readouterr().err
    api = ab.select("badge", 4, probs=np.load(tmp_path / "probs.npy", mmap_mode="r"),
                    embeddings=np.load(tmp_path / "embeddings.npy", mmap_mode="r"), seed=0)
    import pandas as pd

    assert pd.read_csv(tmp_path / "out.csv")["position"].tolist() == api.tolist()
