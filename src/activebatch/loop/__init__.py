"""One active-learning run: initial random labels, then train -> evaluate -> select -> label."""
from .ceal import CEAL
from .history import DETAIL_COLUMNS, RESULT_COLUMNS, History, RoundRecord, class_entropy
from .runner import PoolExhaustedWarning, run

__all__ = ["CEAL", "DETAIL_COLUMNS", "RESULT_COLUMNS", "History", "PoolExhaustedWarning", "RoundRecord",
           "class_entropy", "run"]
