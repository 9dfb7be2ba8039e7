"""One active-learning run: initial random labels, then train -> evaluate -> select -> label."""
from .ceal import CEAL
from .history import DETAIL_COLUMNS, RESULT_COLUMNS, History, RoundRecord, class_entropy
from .runner import PoolExhaustedWarning, run
from .stopping import RULES as STOPPING_RULES
from .stopping import StoppingReport, StoppingRules

__all__ = ["CEAL", "DETAIL_COLUMNS", "RESULT_COLUMNS", "STOPPING_RULES", "History", "PoolExhaustedWarning",
           "RoundRecord", "StoppingReport", "StoppingRules", "class_entropy", "run"]
