"""Input checks used at the public boundary (and nowhere else)."""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..kernels.rowblocks import is_row_source, row_blocks

__all__ = ["InvalidParameterError", "as_tensor", "check_choice", "check_features", "check_labels", "check_matrix",
           "check_n", "check_probs", "check_scalar", "check_seed", "coerce_options"]

# Row sums of a probability matrix may deviate from 1 by this much (float32 softmax outputs
# of wide heads routinely show ~1e-6 relative error).
PROB_SUM_TOL = 1e-3


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """Convert a numpy array, a torch tensor or a nested list to a floating tensor.

    Float64 and float32 inputs keep their dtype (exact tests rely on float64); anything else
    becomes float32. Tensors stay on their device.
    """
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a complex tensor ({t.dtype})")
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy gives a clear message itself
            raise TypeError(f"{name} must be an array or a tensor, got {type(value).__name__}") from exc
        _check_real_dtype(arr.dtype, name)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t


def _check_real_dtype(dtype: np.dtype, name: str) -> None:
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got an array of complex dtype {dtype}")
    if dtype == object or not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise TypeError(f"{name} must hold numbers, got an array of dtype {dtype}")


def check_matrix(value: Any, name: str, *, rows: int | None = None, cols: int | None = None,
                 rows_from: str | None = None, cols_from: str | None = None,
                 keep_row_source: bool = False, block_rows: int | None = None) -> Any:
    """Return ``value`` as a finite 2-D floating tensor, checking its shape.

    Parameters
    ----------
    value : array, tensor or nested list
        The matrix to check.
    name : str
        The argument's name, used in error messages.
    rows, cols : int, optional
        Expected number of rows / columns.
    rows_from, cols_from : str, optional
        Where the expected numbers come from (for the messages).
    keep_row_source : bool, default False
        When True, a numpy memory map (or a :class:`~activebatch.kernels.rowblocks.RowSelection` of one)
        is checked ``block_rows`` rows at a time and returned unconverted, so that a pool larger
        than memory is never read whole; the messages are the same as for in-memory input.
    block_rows : int, optional
        Rows per block for row sources (default: the row-block rule,
        :func:`~activebatch.kernels.rowblocks.rows_per_block`).

    Returns
    -------
    torch.Tensor, or ``value`` itself for a kept row source.
    """
    if keep_row_source and is_row_source(value):
        _check_shape(value, name, rows, cols, rows_from, cols_from)
        _raise_problems(_scan(_numpy_blocks(value, name, block_rows), probs=False), name, probs=False,
                        n_cols=int(value.shape[1]))
        return value
    t = as_tensor(value, name)
    _check_shape(t, name, rows, cols, rows_from, cols_from)
    if not _all_finite(t):
        _raise_problems(_scan([(0, t)], probs=False), name, probs=False, n_cols=int(t.shape[1]))
    return t


def check_probs(value: Any, name: str = "probs", *, rows: int | None = None,
                rows_from: str | None = None, keep_row_source: bool = False,
                block_rows: int | None = None) -> Any:
    """Return ``value`` as an (N, K) tensor of class probabilities, rows summing to 1.

    ``keep_row_source`` and ``block_rows`` are as in :func:`check_matrix`: a memory map is
    checked in row blocks (finite, non-negative, rows summing to 1) and returned as is.
    """
    if keep_row_source and is_row_source(value):
        _check_shape(value, name, rows, None, rows_from, None)
        stats = _scan(_numpy_blocks(value, name, block_rows), probs=True)
        _raise_problems(stats, name, probs=True, n_cols=int(value.shape[1]))
        return value
    t = as_tensor(value, name)
    _check_shape(t, name, rows, None, rows_from, None)
    # one pass (row sums and the minimum) settles valid input; the full scan only runs to
    # decide and name a problem, so every message is as before
    stats = _RowStats() if _probs_clearly_valid(t) else _scan([(0, t)], probs=True)
    _raise_problems(stats, name, probs=True, n_cols=int(t.shape[1]))
    return t


def _check_shape(value: Any, name: str, rows: int | None, cols: int | None, rows_from: str | None,
                 cols_from: str | None) -> None:
    shape = tuple(value.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_rows, n_columns), got shape {shape}")
    if rows is not None and shape[0] != rows:
        src = f" (the number of rows of {rows_from})" if rows_from else ""
        raise ValueError(f"{name} has {shape[0]} rows but {rows} are expected{src}")
    if cols is not None and shape[1] != cols:
        src = f" (the number of columns of {cols_from})" if cols_from else ""
        raise ValueError(f"{name} has {shape[1]} columns but {cols} are expected{src}")


def _numpy_blocks(value: Any, name: str, block_rows: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """Row blocks of a row source, in its own dtype (read, never upcast as a whole)."""
    _check_real_dtype(np.dtype(value.dtype), name)
    yield from row_blocks(value, block_rows)


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite, from one reduction: a NaN or an infinity makes the
    sum NaN or infinite. A sum that overflows from finite values gives a false alarm, which the
    caller's exact scan clears."""
    return t.numel() == 0 or bool(torch.isfinite(t.sum()))


def _probs_clearly_valid(t: torch.Tensor) -> bool:
    """Whether ``t`` (N, K) is certainly finite, non-negative, with rows summing to 1 within
    :data:`PROB_SUM_TOL`, from the row sums in the input's dtype and the minimum.

    A NaN or infinity makes its row sum NaN or infinite, so no separate finiteness pass is
    needed. The sums of K non-negative values are off the float64 sums the exact scan uses by
    at most K eps (1 + tol) (the rounding of a K-term sum), so a row is accepted here only
    with that much to spare; every other input, valid or not, is decided by the exact scan.
    """
    if t.numel() == 0 or not t.is_floating_point():
        return False
    if not bool(t.min() >= 0):                       # False for NaN as well
        return False
    slack = t.shape[1] * torch.finfo(t.dtype).eps * (1.0 + PROB_SUM_TOL)
    low, high = torch.aminmax(_row_sums(t))        # NaN or inf if any value is
    limit = PROB_SUM_TOL - slack
    return bool(high - 1 <= limit) and bool(1 - low <= limit)


def _row_sums(t: torch.Tensor) -> torch.Tensor:
    """Row sums of a 2-D tensor. On the CPU, rows of a few values (MC samples of 10 classes) sum
    twice as fast as a product with a vector of ones (BLAS) than by ``sum(dim=1)``, whose inner
    loop is too short to vectorise; the rounding bound of a K-term sum holds either way."""
    if t.device.type == "cpu" and t.shape[1] <= 32 and t.dtype in (torch.float32, torch.float64) \
            and t.is_contiguous():
        return torch.mv(t, torch.ones(t.shape[1], dtype=t.dtype))
    return t.sum(dim=1)


@dataclass
class _RowStats:
    """What one pass over the rows found; raised afterwards in the order of the checks."""

    bad_rows: int = 0          # rows holding NaN or +-inf
    first_bad: int = -1
    negative: bool = False     # probabilities only
    worst: float = -1.0        # largest |row sum - 1| (probabilities only)
    worst_row: int = -1
    worst_sum: float = 1.0


def _scan(blocks: Iterable[tuple[int, Any]], *, probs: bool) -> _RowStats:
    """Accumulate the row checks over ``(first row, block)`` pairs.

    A block is a tensor (in-memory input: one block, on its own device) or a numpy array (a row
    block of a memory map, checked in its storage dtype so that no float32 copy of it is made;
    row sums accumulate in float64 either way). Once a non-finite value is seen only non-finite
    rows are counted further (that error is raised first).
    """
    st = _RowStats()
    for start, t in blocks:
        if (t.size if isinstance(t, np.ndarray) else t.numel()) == 0:
            continue
        if isinstance(t, np.ndarray):
            bad = ~np.isfinite(t).all(axis=1)
            n_bad = int(np.count_nonzero(bad))
            first = int(np.argmax(bad)) if n_bad else -1
        else:
            finite = torch.isfinite(t)
            n_bad, first = 0, -1
            if not bool(finite.all()):
                bad_t = (~finite).any(dim=1)
                n_bad, first = int(bad_t.sum()), int(torch.nonzero(bad_t)[0, 0])
        if n_bad:
            if st.first_bad < 0:
                st.first_bad = start + first
            st.bad_rows += n_bad
        if not probs or st.bad_rows:
            continue
        if isinstance(t, np.ndarray):
            st.negative |= bool(t.min() < 0)
            sums = t.sum(axis=1, dtype=np.float64)  # buffered cast: no float64 copy of the block
            dev = np.abs(sums - 1)
            row = int(np.argmax(dev))
        else:
            st.negative |= bool((t < 0).any())
            sums = t.sum(dim=1, dtype=torch.float64)
            dev = (sums - 1).abs()
            row = int(dev.argmax())
        worst = float(dev[row])
        if worst > st.worst:  # strict: the first of equal deviations wins, as argmax does
            st.worst, st.worst_row, st.worst_sum = worst, start + row, float(sums[row])
    return st


def _raise_problems(st: _RowStats, name: str, *, probs: bool, n_cols: int) -> None:
    if st.bad_rows:
        raise ValueError(f"{name} contains NaN or infinite values (in {st.bad_rows} rows; the first is "
                         f"row {st.first_bad})")
    if not probs:
        return
    if n_cols < 2:
        raise ValueError(f"{name} must have at least 2 columns (classes), got {n_cols}")
    if st.negative:
        raise ValueError(f"{name} contains negative values; expected softmax probabilities in [0, 1]")
    if st.worst > PROB_SUM_TOL:
        raise ValueError(
            f"{name} rows must sum to 1 (softmax probabilities, not logits); row {st.worst_row} sums to "
            f"{st.worst_sum:.6g}")


def check_n(n: Any, available: int, what: str = "candidates") -> int:
    """Check the batch size ``n`` against the number of selectable items."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > available:
        raise ValueError(f"n={n} is larger than the number of {what} ({available})")
    return n


def check_seed(seed: Any) -> np.random.Generator:
    """Turn ``seed`` (None, an int, a SeedSequence or a Generator) into a numpy Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(int(seed))


def check_labels(y: Any, name: str = "y", *, rows: int | None = None) -> np.ndarray:
    """Return integer class labels as an int64 numpy array."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {rows} are expected")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels 0..K-1, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold class labels 0..K-1; found {int(arr.min())}")
    return arr


class InvalidParameterError(ValueError, TypeError):
    """A bad argument value or type (both a ``ValueError`` and a ``TypeError``, as in scikit-learn,
    so that code catching either sees it)."""


def check_scalar(value: Any, name: str, kind: type | tuple[type, ...], *, min_val: float | None = None,
                 max_val: float | None = None, include_min: bool = True, include_max: bool = True,
                 allow_none: bool = False) -> Any:
    """Check a scalar argument's type and bounds; return it as ``int``/``float`` (or None).

    The one validator for scalar options (in the spirit of scikit-learn's ``check_scalar``).
    ``bool`` is never accepted as a number, numpy integers count as ``int``, and an integer is
    accepted where a ``float`` is expected. Floats must be finite.

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name, used in the message.
    kind : type or tuple of types
        ``int``, ``float``, ``bool``, ``str`` or a tuple of them.
    min_val, max_val : float, optional
        Bounds; ``include_min`` / ``include_max`` say whether they are allowed themselves.
    allow_none : bool, default False
        Whether None is accepted (and returned).

    Raises
    ------
    InvalidParameterError
        (a ``ValueError`` and a ``TypeError``) for a wrong type or a value out of bounds; the
        message says what is expected, e.g. ``"batch_size must be an integer >= 1, got 0"``.
    """
    if value is None and allow_none:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    what = " or ".join({int: "an integer", float: "a number", bool: "True or False", str: "a string"}.get(k, k.__name__)
                       for k in kinds)
    expected = what + _bounds(min_val, max_val, include_min, include_max) + (" or None" if allow_none else "")
    out: Any = None
    if isinstance(value, (bool, np.bool_)):
        if bool in kinds:
            return bool(value)
    elif isinstance(value, numbers.Integral) and (int in kinds or float in kinds):
        out = int(value) if int in kinds else float(value)
    elif isinstance(value, numbers.Real) and float in kinds:
        out = float(value)
        if not np.isfinite(out):
            raise InvalidParameterError(f"{name} must be {expected} (finite), got {value!r}")
    elif isinstance(value, str) and str in kinds:
        return value
    if out is None:
        raise InvalidParameterError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    if (min_val is not None and (out < min_val or (not include_min and out == min_val))) or \
            (max_val is not None and (out > max_val or (not include_max and out == max_val))):
        raise InvalidParameterError(f"{name} must be {expected}, got {value!r}")
    return out


def _bounds(low: float | None, high: float | None, include_low: bool, include_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
    if low is not None:
        return f" {'>=' if include_low else '>'} {low:g}"
    if high is not None:
        return f" {'<=' if include_high else '<'} {high:g}"
    return ""


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``choices``; the message lists them."""
    options = tuple(choices)
    if not isinstance(value, (str, int, float, bool, type(None))) or value not in options:
        raise InvalidParameterError(f"{name} must be one of {', '.join(repr(c) for c in options)}; got {value!r}")
    return value


def check_features(X: Any, name: str = "X") -> None:
    """Refuse NaN or infinite features, naming the first bad row and column.

    Floating arrays (memory maps included, read in row blocks) and tensors are scanned;
    integer and boolean features are finite by construction; other feature containers (a
    dataset object that only indexes rows) are left to the model.
    """
    if isinstance(X, torch.Tensor):
        if X.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a complex tensor ({X.dtype})")
        if not X.is_floating_point() or X.numel() == 0:
            return
        flat = X.detach().reshape(X.shape[0], -1)
        bad = ~torch.isfinite(flat)
        if bool(bad.any()):
            _raise_bad_feature(name, bad.cpu().numpy(), 0, int(bad.any(dim=1).sum()), tuple(X.shape[1:]))
        return
    if not isinstance(X, np.ndarray) and not is_row_source(X):
        return
    dtype = np.dtype(X.dtype)
    if np.issubdtype(dtype, np.complexfloating) or dtype == object:
        _check_real_dtype(dtype, name)
    if not np.issubdtype(dtype, np.floating):
        return
    first, count = None, 0
    for start, block in row_blocks(X):
        bad = ~np.isfinite(block.reshape(block.shape[0], -1))
        rows = bad.any(axis=1)
        n_bad = int(np.count_nonzero(rows))
        if n_bad and first is None:
            first = (start, bad)
        count += n_bad
    if first is not None:
        _raise_bad_feature(name, first[1], first[0], count, tuple(X.shape[1:]))


def _raise_bad_feature(name: str, bad: np.ndarray, start: int, n_rows: int, feature_shape: tuple) -> None:
    row = int(np.argmax(bad.any(axis=1)))
    col = int(np.argmax(bad[row]))
    where = col if len(feature_shape) <= 1 else tuple(int(i) for i in np.unravel_index(col, feature_shape))
    raise ValueError(f"{name} contains NaN or infinite values in {n_rows} row(s); the first is row {start + row}, "
                     f"column {where}: remove or impute them before training")


def coerce_options(cls: type, value: Any, *, known: Iterable[str], what: str, expected: str) -> Any:
    """An optional component given as an instance, a mapping of its options or a switch.

    ``None``/``False`` -> None (off), ``True`` -> ``cls()`` (the defaults), an instance of ``cls``
    -> itself, a mapping -> ``cls(**mapping)`` once its keys are checked against ``known``.
    ``what`` names the options in the error for an unknown key, ``expected`` says what is
    accepted in the error for any other value.
    """
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        bad = sorted(set(value) - set(known))
        if bad:
            raise ValueError(f"unknown {what} option(s) {bad}; known: {', '.join(sorted(known))}")
        return cls(**value)
    raise TypeError(f"{expected}, got {type(value).__name__}")
