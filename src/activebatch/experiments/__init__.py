"""Experiment grids: spec -> runs -> executor (local processes | Ray) -> results store."""
from .bench import BenchSummary, run_bench
from .spec import GridSpec, RunKey, load_spec
from .store import ResultsStore

__all__ = ["BenchSummary", "GridSpec", "ResultsStore", "RunKey", "load_spec", "run_bench"]
