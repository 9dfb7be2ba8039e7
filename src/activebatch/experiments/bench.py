"""``activebatch bench``: run every pending run of a grid into the results store."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .executors import make_executor
from .spec import GridSpec, load_spec
from .store import ResultsStore

__all__ = ["BenchSummary", "run_bench"]


@dataclass
class BenchSummary:
    total: int
    skipped: int
    completed: int = 0
    failed: list[str] = field(default_factory=list)
    store: Path | None = None

    def __str__(self) -> str:
        text = (f"{self.total} runs in the grid: {self.skipped} already recorded, {self.completed} completed now, "
                f"{len(self.failed)} failed")
        return text + (f"; results in {self.store}" if self.store else "")


def run_bench(spec: GridSpec | str | Path, out: str | Path, *, executor: str = "local",
              workers: int | None = None, address: str | None = None, progress: bool = True) -> BenchSummary:
    """Run the grid ``spec`` into ``out/results.sqlite``, skipping runs already recorded there.

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
    if not pending:
        return summary
    ex = make_executor(executor, workers=workers, address=address)
    bar = _bar(progress, len(all_runs), summary.skipped)
    try:
        for run_id, result, error in ex.run(spec.to_dict(), pending):
            if error is not None:
                store.record_failure(run_id, error)
                summary.failed.append(run_id)
                _write(bar, f"run {run_id} failed:\n{error}")
            else:
                assert result is not None
                store.record_run(run_id, result["rows"], seconds=result["seconds"])
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
