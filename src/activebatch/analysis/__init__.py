"""Analysis of results: learning curves, the pairwise penalty matrix, normalised-error CDFs,
selection times, and the report that puts them together."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..utils.extras import require
from .protocol import (
    PenaltyResult,
    budget_table,
    learning_curves,
    normalized_error_cdf,
    normalized_errors,
    penalty_matrices_by,
    penalty_matrix,
    selection_times,
)

__all__ = ["PenaltyResult", "budget_table", "export_results", "learning_curves", "load_results",
           "normalized_error_cdf", "normalized_errors", "penalty_matrices_by", "penalty_matrix",
           "selection_times"]


def load_results(path: str | Path) -> pd.DataFrame:
    """All recorded rounds of the results store in folder (or file) ``path``, as a DataFrame with
    the results-store columns."""
    from ..experiments.store import ResultsStore

    return ResultsStore(path, create=False).frame()


def export_results(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write results to ``.csv`` or ``.parquet`` (chosen by the suffix)."""
    path = Path(path)
    if path.suffix == ".csv":
        out = frame.copy()
        out["class_histogram"] = [" ".join(str(int(v)) for v in h) for h in out["class_histogram"]]
        if "selection_notes" in out:   # JSON text: a note may hold any character
            out["selection_notes"] = [None if n is None else json.dumps(list(n)) for n in out["selection_notes"]]
        out.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        require("pyarrow", "parquet", "exporting results as Parquet")
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"export format is chosen by the suffix: .csv or .parquet, got {path.name!r}")
    return path
