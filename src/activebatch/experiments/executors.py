"""Executors: where the runs of a grid execute (local worker processes, or a Ray cluster)."""
from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import Any

from ..utils.extras import require

__all__ = ["LocalExecutor", "RayExecutor", "make_executor", "Outcome"]

#: (run_id, result dict or None, error text or None)
Outcome = tuple[str, "dict[str, Any] | None", "str | None"]


def _safe_execute(spec: dict[str, Any], run_id: str, checkpoints: str | None = None) -> Outcome:
    from .runner import execute_run

    try:
        return run_id, execute_run(spec, run_id, checkpoints), None
    except Exception:  # a failing run is recorded and the grid goes on
        return run_id, None, traceback.format_exc()


class LocalExecutor:
    """Runs on this machine: ``workers`` spawned processes with one torch thread each
    (``workers=1`` runs in this process)."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, spec: dict[str, Any], run_ids: list[str], checkpoints: str | None = None) -> Iterator[Outcome]:
        """Execute ``run_ids`` of ``spec``; ``checkpoints`` is a folder for round-level checkpoints."""
        from .runner import init_worker

        if self.workers == 1:
            init_worker()
            for rid in run_ids:
                yield _safe_execute(spec, rid, checkpoints)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=init_worker) as pool:
            futures = [pool.submit(_safe_execute, spec, rid, checkpoints) for rid in run_ids]
            try:
                for fut in as_completed(futures):
                    yield fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


class RayExecutor:
    """Runs each run as a Ray task (one CPU each).

    With ``address`` the executor joins an existing cluster (every node needs activebatch
    installed); without one it starts a local Ray instance and shuts it down afterwards. Round-level
    checkpoints are written where the task runs: on a cluster, a run resumes from its checkpoint
    only when the folder is shared between the nodes (otherwise it starts over, as it would without one).
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        require("ray", "experiments", "the Ray executor")   # fail here, before any run starts
        self.address, self.workers = address, workers

    def run(self, spec: dict[str, Any], run_ids: list[str], checkpoints: str | None = None) -> Iterator[Outcome]:
        """Execute ``run_ids`` of ``spec``; ``checkpoints`` is a folder for round-level checkpoints."""
        import ray

        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
                started = True
        try:
            remote = ray.remote(num_cpus=1)(_ray_task)
            pending = [remote.remote(spec, rid, checkpoints) for rid in run_ids]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            if started:
                ray.shutdown()


def _ray_task(spec: dict[str, Any], run_id: str, checkpoints: str | None = None) -> Outcome:
    from .runner import init_worker

    init_worker()
    return _safe_execute(spec, run_id, checkpoints)


def make_executor(kind: str, *, workers: int | None = None, address: str | None = None):
    """``"local"`` or ``"ray"``."""
    if kind == "local":
        if address:
            raise ValueError("--address is only meaningful with --executor ray")
        return LocalExecutor(workers or 1)
    if kind == "ray":
        return RayExecutor(address=address, workers=workers)
    raise ValueError(f"unknown executor {kind!r}; use 'local' or 'ray'")

