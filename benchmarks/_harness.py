"""Measurement helpers shared by the benchmark scripts.

Each measurement runs in a fresh child process (``in_child``), so that one run's allocations,
caches and thread pools never reach the next; memory is the growth of that process's peak
resident set (``VmHWM``), reset through ``/proc/self/clear_refs`` on Linux just before the
measured work starts.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from typing import Any

__all__ = ["in_child", "reset_peak", "set_threads", "status_kib", "write_json"]


def status_kib(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``, ``RssFile``), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset this process's peak resident set to its current one (Linux >= 4.0).

    False where that is not allowed: the peak then includes everything before the call.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def set_threads(threads: int) -> None:
    """Use ``threads`` threads for torch and for BLAS/OpenMP in this (child) process."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def in_child(target: Callable[..., None], *args: Any) -> Any:
    """Run ``target(*args, queue)`` in a fresh spawned process and return what it puts on the queue."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=target, args=args + (q,))
    proc.start()
    while True:   # a child that dies before answering would otherwise leave us waiting forever
        try:
            res = q.get(timeout=1.0)
            break
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the measuring process {target.__name__} exited with code {proc.exitcode} "
                                   "before reporting (its traceback is above)") from None
    proc.join()
    return res


def write_json(path: str | None, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` (nothing when ``path`` is None)."""
    if path:
        with open(path, "w") as fh:
            json.dump(obj, fh, indent=2)
