"""Executes one run of a grid: build data, model and learner, then :func:`activebatch.run`."""
from __future__ import annotations

import functools
import os
import time
from typing import Any

__all__ = ["execute_run", "build_model", "init_worker"]


def init_worker() -> None:
    """Give each worker process one thread: torch on 2 threads stalls under any other load."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@functools.lru_cache(maxsize=4)
def _load(name: str, root: str | None, download: bool):
    from .. import datasets

    return datasets.load(name, root=root, download=download)


def build_model(name: str, data: Any):
    """The grid's model ``name`` for data set ``data``: the paper's widths, inputs standardised
    with the data set's mean and std (see :func:`activebatch.models.for_dataset`)."""
    from .. import models

    return models.for_dataset(data, name)


def execute_run(spec: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Run one (dataset, model, batch size, strategy, seed) of ``spec`` (a ``GridSpec.to_dict()``).

    Returns ``{"run_id", "rows", "seconds"}`` with one results row per round.
    """
    from ..data.pool import Pool
    from ..learner import Learner
    from ..loop import run
    from .spec import RunKey

    key = RunKey.from_id(run_id)
    start = time.perf_counter()
    opts = spec.get("dataset_options", {}).get(key.dataset, {})
    data = _load(key.dataset, opts.get("root"), bool(opts.get("download", False)))
    model = build_model(key.model, data)
    training = dict(spec.get("training", {}))
    lr = training.pop("lr", "auto")
    if lr == "auto":
        lr = 1e-3 if data.kind == "image" else 1e-4
    learner = Learner(model, lr=lr, device=spec.get("device", "cpu"), **training)
    pool = Pool(data.X_train, data.y_train, n_classes=data.n_classes, name=data.name)
    from .spec import GridSpec

    rounds = GridSpec(**spec).rounds_for(key.batch_size)
    hist = run(pool, learner, key.strategy, initial=spec["initial"], batch_size=key.batch_size, rounds=rounds,
               test=(data.X_test, data.y_test), seed=key.seed,
               strategy_options=spec.get("strategy_options", {}).get(key.strategy))
    frame = hist.to_frame()
    frame["model"] = key.model
    frame["dataset"] = key.dataset
    return {"run_id": run_id, "rows": frame.to_dict("records"), "seconds": time.perf_counter() - start}
