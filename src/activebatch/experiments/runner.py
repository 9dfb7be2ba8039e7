"""Executes one run of a grid: build data, model and learner, then :func:`activebatch.run`."""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["execute_run", "build_model", "init_worker", "checkpoint_path"]


def checkpoint_path(folder: str | Path, run_id: str) -> Path:
    """The file in ``folder`` that holds run ``run_id``'s round-level checkpoint."""
    return Path(folder) / (run_id.replace("|", "__") + ".ckpt")


def init_worker() -> None:
    """Give each worker process one thread: torch on 2 threads stalls under any other load."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def _load(name: str, options: dict[str, Any]):
    # a worker runs many runs of the same data set: load it once (options as a hashable key)
    return _load_cached(name, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, options: tuple[tuple[str, Any], ...]):
    from .. import datasets

    opts = dict(options)
    root, download = opts.pop("root", None), bool(opts.pop("download", False))
    return datasets.load(name, root=root, download=download, **opts)


def build_model(name: str, data: Any, dropout: float = 0.0, bayesian: bool = False):
    """The grid's model ``name`` for data set ``data``: the paper's widths, inputs standardised
    with the data set's mean and std, ``dropout`` before the head, a Bayes-by-Backprop head when
    ``bayesian`` (see :func:`activebatch.learning.models.for_dataset`)."""
    from ..learning import models

    return models.for_dataset(data, name, dropout=dropout, bayesian=bayesian)


def _build_proxy(options: dict[str, Any], data: Any, spec: dict[str, Any]):
    """The selection-via-proxy learner of ``[loop.proxy]``: its architecture (an MLP a quarter of
    the paper's width unless ``embedding_dim`` says otherwise) and [training] overridden by its keys."""
    from ..learning import models
    from ..learning.learner import Learner

    opts = dict(options)
    arch = opts.pop("model", "mlp")
    kwargs = {}
    if arch == "mlp":
        kwargs["embedding_dim"] = int(opts.pop("embedding_dim", max(1, models.embedding_width(data.kind) // 4)))
    training = {k: v for k, v in spec.get("training", {}).items()
                if k not in ("committee", "bootstrap", "dropout", "ensemble", "members", "ensemble_options",
                             "bayesian")}
    # the proxy selects, so it needs the same evidence as the model would give (MC samples)
    kwargs["dropout"] = float(spec.get("training", {}).get("dropout", 0.0))
    kwargs["bayesian"] = bool(spec.get("training", {}).get("bayesian", False))
    training.update(opts)
    _restart_callbacks(training)
    lr = training.pop("lr", "auto")
    if lr == "auto":
        lr = 1e-3 if data.kind == "image" else 1e-4
    return Learner(models.for_dataset(data, arch, **kwargs), lr=lr, device=spec.get("device", "cpu"), **training)


def _restart_callbacks(training: dict[str, Any]) -> None:
    """``[training] restart_stalled`` -> the learner's ``callbacks`` (in place): a
    :class:`~activebatch.learning.RestartIfStalled` for every model the run trains (the proxy's
    and a committee's members included)."""
    from ..learning.callbacks import RestartIfStalled

    restart = RestartIfStalled.coerce(training.pop("restart_stalled", None))
    if restart is not None:
        training["callbacks"] = [restart]


def execute_run(spec: dict[str, Any], run_id: str, checkpoints: str | Path | None = None) -> dict[str, Any]:
    """Run one (dataset, model, batch size, strategy, seed) of ``spec`` (a ``GridSpec.to_dict()``).

    With ``checkpoints`` (a folder) the run saves its state after every round and, when a
    checkpoint of it is there, continues after its last saved round (``activebatch.run``'s
    ``checkpoint``); the result is the same as an uninterrupted run's.

    Returns ``{"run_id", "rows", "seconds"}`` with one results row per round; ``seconds`` counts
    every execution of a resumed run.
    """
    from ..datasets.pool import Pool
    from ..learning.learner import Learner
    from ..loop import run
    from .spec import RunKey, base_dataset, resolve_dataset

    key = RunKey.from_id(run_id)
    start = time.perf_counter()
    all_opts = spec.get("dataset_options", {})
    opts = all_opts.get(key.dataset, all_opts.get(base_dataset(key.dataset), {}))
    data = _load(resolve_dataset(key.dataset, spec.get("base_dir")), opts)
    training = dict(spec.get("training", {}))
    factory = training.pop("sklearn", None)   # a scikit-learn classifier or skorch net instead of a torch model
    model = None if factory else build_model(key.model, data, float(training.pop("dropout", 0.0)),
                                             bool(training.pop("bayesian", False)))
    committee = int(training.pop("committee", 1))
    bootstrap = bool(training.pop("bootstrap", False))
    ensemble, members = training.pop("ensemble", None), int(training.pop("members", 5))
    ensemble_options = dict(training.pop("ensemble_options", {}))
    _restart_callbacks(training)
    lr = training.pop("lr", "auto")
    if lr == "auto":
        lr = 1e-3 if data.kind == "image" else 1e-4
    if factory is not None:
        from ..learning.sklearn import as_learner, estimator_from_factory

        learner = as_learner(estimator_from_factory(factory), n_classes=data.n_classes,
                             embed=training.pop("sklearn_embed", None), device=spec.get("device", "cpu"))
    elif ensemble is not None:
        from ..learning.ensembles import ENSEMBLES

        learner = ENSEMBLES[ensemble](model, members, lr=lr, device=spec.get("device", "cpu"), **ensemble_options,
                                      **training)
    elif committee >= 2:
        from ..learning.committee import Committee

        learner = Committee(model, committee, bootstrap=bootstrap, lr=lr, device=spec.get("device", "cpu"),
                            **training)
    else:
        learner = Learner(model, lr=lr, device=spec.get("device", "cpu"), **training)
    loop = spec.get("loop") or {}
    proxy = _build_proxy(loop["proxy"], data, spec) if "proxy" in loop else None
    pool = Pool(data.X_train, data.y_train, n_classes=data.n_classes, name=data.name)
    from .spec import GridSpec

    rounds = GridSpec(**spec).rounds_for(key.batch_size)
    setup = time.perf_counter() - start
    hist = run(pool, learner, key.strategy, initial=spec["initial"], batch_size=key.batch_size, rounds=rounds,
               test=(data.X_test, data.y_test), seed=key.seed,
               strategy_options=spec.get("strategy_options", {}).get(key.strategy),
               ceal=loop.get("ceal"), proxy=proxy,
               checkpoint=None if checkpoints is None else checkpoint_path(checkpoints, run_id))
    frame = hist.to_frame()
    frame["model"] = key.model
    frame["dataset"] = key.dataset
    return {"run_id": run_id, "rows": frame.to_dict("records"), "seconds": setup + float(hist.seconds or 0.0)}
