"""``activebatch bench``: run every pending run of a grid into the results store."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executors import make_executor
from .runner import checkpoint_path
from .spec import GridSpec, load_spec
from .store import ResultsStore

__all__ = ["BenchSummary", "run_bench", "CHECKPOINTS"]

#: The folder, inside a bench's output folder, of its runs' round-level checkpoints.
CHECKPOINTS = "checkpoints"


@dataclass
class BenchSummary:
    total: int
    skipped: int
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    store: Path | None = None
    resumed: int = 0     # pending runs that continued from a round-level checkpoint

    def __str__(self) -> str:
        text = (f"{self.total} runs in the grid: {self.skipped} already recorded, {self.completed} completed now"
                + (f" ({self.resumed} continued from checkpoints)" if self.resumed else "")
                + f", {len(self.failed)} failed")
        return text + (f"; results in {self.store}" if self.store else "")


def run_bench(spec: GridSpec | str | Path, out: str | Path, *, executor: str = "local",
              workers: int | None = None, address: str | None = None, progress: bool = True) -> BenchSummary:
    """Run the grid ``spec`` into ``out/results.sqlite``, skipping runs already recorded there.

    A run is recorded when it completes; until then it keeps a round-level checkpoint in
    ``out/checkpoints/`` (see ``activebatch.run``'s ``checkpoint``), so a bench stopped in the
    middle of a long run continues it after its last completed round, with the same result.
    The checkpoint is deleted once the run is recorded.

    Parameters
    ----------
    spec : GridSpec or path to a TOML file
    out : folder for the results store (created if needed)
    executor : {"local", "ray"}
    workers : int, optional
        Local worker processes (default 1), or the CPUs of a locally started Ray instance.
    address : str, optional
        Address of an existing Ray cluster to join.
    progress : bool
        Show a progress bar over runs.
    """
    if not isinstance(spec, GridSpec):
        spec = load_spec(spec)
    out = Path(out)
    store = ResultsStore(out)
    if "cluster_margin" in spec.strategies and store.legacy_cluster_margin:
        from ..strategies.cluster_margin import RENAMED

        raise ValueError(f"{store.path} holds runs named cluster_margin recorded before the rename ({RENAMED}): they "
                         "ran Zhdanov's method and reports name them diverse_minibatch; this grid's cluster_margin "
                         "runs would be skipped as recorded or mixed with them: write the grid to another folder")
    store.set_meta(f"spec:{spec.name}", spec.to_dict(portable=True))
    (out / f"{spec.name}.spec.json").write_text(json.dumps(spec.to_dict(portable=True), indent=2))
    all_runs = [k.run_id for k in spec.runs()]
    done = store.completed()
    pending = [r for r in all_runs if r not in done]
    summary = BenchSummary(total=len(all_runs), skipped=len(all_runs) - len(pending), store=store.path)
    ckpts = (out / CHECKPOINTS).resolve()
    for run_id in done:   # recorded runs need no checkpoint (one may survive a kill between the two writes)
        checkpoint_path(ckpts, run_id).unlink(missing_ok=True)
    if not pending:
        return summary
    summary.resumed = sum(checkpoint_path(ckpts, r).exists() for r in pending)
    ex = make_executor(executor, workers=workers, address=address)
    bar = _bar(progress, len(all_runs), summary.skipped)
    if summary.resumed:
        _write(bar, f"{summary.resumed} run(s) continue from the round-level checkpoints in {ckpts}")
    try:
        for run_id, result, error in ex.run(spec.to_dict(), pending, str(ckpts)):
            if error is not None:
                store.record_failure(run_id, error)
                summary.failed.append(run_id)
                _write(bar, f"run {run_id} failed:\n{error}")
            else:
                assert result is not None
                store.record_run(run_id, result["rows"], seconds=result["seconds"])
                checkpoint_path(ckpts, run_id).unlink(missing_ok=True)
                summary.completed += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(summary.failed))
    finally:
        if bar is not None:
            bar.close()
    return summary


def _bar(progress: bool, total: int, initial: int) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="bench", unit="run")


def _write(bar: Any, text: str) -> None:
    if bar is not None:
        bar.write(text)
    else:
        import sys

        print(text, file=sys.stderr)
