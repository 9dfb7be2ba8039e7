"""BAIT: batch selection by the trace of the inverse Fisher information on last-layer embeddings.

Ash, Goel, Krishnamurthy & Kakade, "Gone Fishing: Neural Active Learning with Fisher
Embeddings", NeurIPS 2021, Algorithm 1, with the weights of the authors' reference code
(``query_strategies/bait_sampling.py`` in github.com/JordanAsh/badge).

The model's last layer is multinomial logistic regression on the penultimate embedding z (d
values) with softmax output p (K classes). The Fisher information of its D = K d weights at an
input x is the rank-(K - 1) matrix

    I(x) = V_x^T V_x = (diag p - p p^T) (kron) z z^T,    V_x = U_x (kron) z^T  (K x D),
    U_x = diag(sqrt p) (Id - 1 p^T)                      (K x K),

whose k-th row sqrt(p_k) (e_k - p) (kron) z is the loss gradient for label k weighted by the
square root of its probability (coordinates class-major: weight (k, j) is coordinate k d + j, as
in the authors' code). BAIT chooses the batch B that minimises

    f(M) = tr( M^{-1} F_U ),   M = lambda Id + w_L sum_{x in L} I(x) + w_B sum_{x in B} I(x),

where F_U is the mean Fisher over the whole pool (the candidates and the L labeled items; the
labeled items' Fisher uses the model's predictions on them, not their labels), by greedy
forward selection of 2n items followed by greedy backward removal down to n ("oversampling by
two, then pruning"). The weights are those of the reference code, where the labeled Fisher
enters as L / (L + n) times its mean and every candidate's V_x is scaled by sqrt(n / (L + n)):
w_L = 1 / (L + n) and w_B = n / (L + n). Every step is a rank-K Woodbury update of G = M^{-1}:

    adding x:    f(M) - f(M + w I(x)) = tr( A_x (Id + C_x)^{-1} )    (the decrease)
    removing x:  f(M - w I(x)) - f(M) = tr( A_x (Id - C_x)^{-1} )    (the increase)
    C_x = w V_x G V_x^T,   A_x = w V_x H V_x^T,   H = G F_U G         (K x K each).

How the factorised structure is used. With c_x = (Id (kron) z^T) G (Id (kron) z) (K x K, entries
z^T G_ab z over the d x d blocks G_ab of G) and h_x likewise from H, C_x = w U_x c_x U_x^T and
A_x = w U_x h_x U_x^T. After a step M' = M + s v^T v (v = sqrt(w) V_picked, s = +-1),

    G' = G - s P S P^T,   H' = H - s (P S R^T + R S P^T) + P S (v R) S P^T,
    P = G v^T,  R = H v^T  (D x K),  S = (Id + s v P)^{-1}  (K x K),

so each candidate's c_x and h_x change by K x K terms built from Q_x = (Id (kron) z^T) P and
Y_x = (Id (kron) z^T) R, i.e. from one (N x d) @ (d x K^2) product each: O(N K^2 d) per step for
the whole pool, where recomputing c_x and h_x would cost O(N K^2 d^2) and scoring explicit
V_x (as the reference code does) O(N K D^2) = O(N K^3 d^2). The Fisher sums are (K^2 x rows) @
(rows x d^2) products (O(N K^2 d^2), never forming a gradient embedding).

What cannot be avoided is the D x D state: G and H (F_U has rank up to K (N + L), so no smaller
exact form of tr(M^{-1} F_U) exists in general). See :func:`bait_memory_bytes` for the bound.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from .rowblocks import BLOCK_VALUES, is_row_source, rows_per_block

__all__ = ["BaitResult", "DEFAULT_MAX_BYTES", "bait_memory_bytes", "bait_select", "fisher_factors", "fisher_sum"]

#: Default bound on BAIT's working memory (:func:`bait_memory_bytes`): 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30


class BaitResult(NamedTuple):
    """Outcome of :func:`bait_select`.

    Attributes
    ----------
    indices : ndarray of int64, shape (n,)
        The batch: the items kept by backward pruning, in the order forward selection added them.
    decreases : ndarray of float64, shape (n,)
        The decrease of the objective as each pick is added, in that order, to the labeled set
        and the earlier picks, f(M_{t-1}) - f(M_t) (each >= 0); they sum to
        ``objective_start - objective_end``.
    forward : ndarray of int64, shape (m,)
        The m = min(ceil(oversample n), N) items of forward selection, in order.
    forward_gains : ndarray of float64, shape (m,)
        The objective's decrease at each forward step.
    removed : ndarray of int64, shape (m - n,)
        The items pruned by the backward steps, in order.
    removal_costs : ndarray of float64, shape (m - n,)
        The objective's increase at each backward step (the smallest among the items then held).
    objective_start, objective_end : float
        f before any pick, f(M_0) = tr((lambda Id + w_L sum_L I(x))^{-1} F_U), and at the batch.
    """

    indices: np.ndarray
    decreases: np.ndarray
    forward: np.ndarray
    forward_gains: np.ndarray
    removed: np.ndarray
    removal_costs: np.ndarray
    objective_start: float
    objective_end: float


def bait_memory_bytes(n_candidates: int, n_classes: int, dim: int) -> int:
    """Bytes of BAIT's float64 working state: at most three D x D matrices at once (D = K d: the
    Fisher sums, G = M^{-1}, H = G F_U G and one temporary) and three K x K matrices per candidate
    (c_x, h_x and the softmax factors), 8 (3 D^2 + 3 N K^2) bytes. Row blocks add at most a few
    times 8M values (64 MiB each) on top."""
    D = int(n_classes) * int(dim)
    return 8 * (3 * D * D + 3 * int(n_candidates) * int(n_classes) ** 2)


def fisher_factors(probs_N_K: torch.Tensor) -> torch.Tensor:
    """U_x = diag(sqrt p) (Id - 1 p^T) for each row, shape (N, K, K), float64.

    Row k of U_x is sqrt(p_k) (e_k - p), so that V_x = U_x (kron) z^T and U_x^T U_x = diag p - p p^T.
    """
    p = probs_N_K.to(torch.float64)
    eye = torch.eye(p.shape[1], dtype=torch.float64, device=p.device)
    return p.clamp_min(0.0).sqrt()[:, :, None] * (eye[None] - p[:, None, :])


def _blocks(x: Any, device: torch.device, rows: int):
    """(start, rows start:start+rows of x as float64 on ``device``) for tensors, arrays and memory maps."""
    n = int(x.shape[0])
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        part = x[start:stop]
        if isinstance(part, torch.Tensor):
            yield start, part.to(device=device, dtype=torch.float64)
        else:
            yield start, torch.from_numpy(np.array(part, dtype=np.float64)).to(device)   # a private copy


def _fisher_sum_blocked(probs: Any, z: Any, acc: torch.Tensor, device: torch.device) -> torch.Tensor:
    """acc[(a, b), (i, j)] += sum_x (diag p - p p^T)_ab z_i z_j, block by block (acc: (K^2, d^2))."""
    K, d = int(probs.shape[1]), int(z.shape[1])
    rows = rows_per_block(K * K + d * d)
    for (_, p), (_, zb) in zip(_blocks(probs, device, rows), _blocks(z, device, rows)):
        phi = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]            # (B, K, K)
        zz = zb[:, :, None] * zb[:, None, :]                                  # (B, d, d)
        acc.addmm_(phi.reshape(-1, K * K).T, zz.reshape(-1, d * d))
    return acc


def _class_major(acc: torch.Tensor, K: int, d: int) -> torch.Tensor:
    """(K^2, d^2) laid out [(a, b), (i, j)] -> the (K d, K d) matrix [(a, i), (b, j)] (a copy)."""
    return acc.view(K, K, d, d).permute(0, 2, 1, 3).reshape(K * d, K * d)


def fisher_sum(probs_N_K: Any, embeddings_N_d: Any, *, device: torch.device | str | None = None) -> torch.Tensor:
    """sum_x I(x) = sum_x (diag p_x - p_x p_x^T) (kron) z_x z_x^T, shape (K d, K d), float64.

    One (K^2 x B) @ (B x d^2) product per block of rows: O(N K^2 d^2) work, no gradient embedding
    formed; memory-mapped inputs are read in row blocks.
    """
    K, d = int(probs_N_K.shape[1]), int(embeddings_N_d.shape[1])
    if device is None:
        device = embeddings_N_d.device if isinstance(embeddings_N_d, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    acc = torch.zeros(K * K, d * d, dtype=torch.float64, device=device)
    return _class_major(_fisher_sum_blocked(probs_N_K, embeddings_N_d, acc, device), K, d)


def _inner(z: torch.Tensor, mats: tuple[torch.Tensor, ...], K: int, d: int) -> list[torch.Tensor]:
    """For each D x D matrix X of ``mats``: (Id (kron) z^T) X (Id (kron) z), i.e. [z^T X_ab z]_ab, (B, K, K)."""
    out = [torch.empty(z.shape[0], K, K, dtype=torch.float64, device=z.device) for _ in mats]
    step = max(1, BLOCK_VALUES // (K * K * d))
    for s in range(0, z.shape[0], step):
        zb = z[s:s + step]                                                    # (b, d)
        for o, X in zip(out, mats):
            w = torch.matmul(zb, X.view(K, d, K * d))                         # (K, b, K d): z^T X_a,:
            o[s:s + step] = torch.einsum("abcj,bj->bac", w.view(K, -1, K, d), zb)
    return out


def _project(z: torch.Tensor, X: torch.Tensor, K: int, d: int) -> torch.Tensor:
    """(Id (kron) z^T) X for a (K d, K) matrix X, for each row of z: (B, K, K), one (B x d) @ (d x K^2) product."""
    return (z @ X.view(K, d, K).permute(1, 0, 2).reshape(d, K * K)).view(-1, K, K)


def _trace_solve(C: torch.Tensor, A: torch.Tensor, sign: float) -> torch.Tensor:
    """tr( (Id + sign C)^{-1} A ) for each row (= tr(A (Id + sign C)^{-1})), float64."""
    eye = torch.eye(C.shape[-1], dtype=torch.float64, device=C.device)
    return torch.linalg.solve(eye + sign * C, A).diagonal(dim1=-2, dim2=-1).sum(-1)


class _Bait:
    """The D x D state G, H and every tracked item's c_x, h_x, kept in step with rank-K updates."""

    def __init__(self, G: torch.Tensor, H: torch.Tensor, K: int, d: int, weight: float) -> None:
        self.G, self.H, self.K, self.d, self.w = G, H, K, d, weight

    def scores(self, u: torch.Tensor, c: torch.Tensor, h: torch.Tensor, sign: float) -> torch.Tensor:
        """The objective's decrease (sign +1, adding) or increase (sign -1, removing) for each item."""
        ut = u.transpose(1, 2)
        C = (u @ c @ ut).mul_(self.w)
        A = (u @ h @ ut).mul_(self.w)
        return _trace_solve(C, A, sign)

    def step(self, u: torch.Tensor, z: torch.Tensor, sign: float) -> tuple[torch.Tensor, torch.Tensor,
                                                                           torch.Tensor, torch.Tensor]:
        """M <- M + sign w I(x) for one item (u (K, K), z (d,)); returns P, R, S and v R for the
        tracked items' updates (:meth:`track`)."""
        K = self.K
        v = (math.sqrt(self.w) * u[:, :, None] * z[None, None, :]).reshape(K, K * self.d)   # (K, D)
        P = self.G @ v.T                                                      # (D, K)
        R = self.H @ v.T
        S = torch.linalg.inv(torch.eye(K, dtype=torch.float64, device=v.device) + sign * (v @ P))
        S = 0.5 * (S + S.T)
        vR = v @ R
        PS = P @ S
        self.G.addmm_(PS, P.T, alpha=-sign)
        self.H.addmm_(PS, R.T, alpha=-sign).addmm_(R, PS.T, alpha=-sign).addmm_(PS @ vR, PS.T)
        return P, R, S, vR

    def track(self, z: torch.Tensor, c: torch.Tensor, h: torch.Tensor, P: torch.Tensor, R: torch.Tensor,
              S: torch.Tensor, vR: torch.Tensor, sign: float) -> None:
        """Update c_x, h_x (B, K, K) in place for items with embeddings z (B, d) after :meth:`step`."""
        K, d = self.K, self.d
        Q = _project(z, P, K, d)                                              # (B, K, K)
        Y = _project(z, R, K, d)
        QS = Q @ S
        c.sub_(sign * (QS @ Q.transpose(1, 2)))
        QSY = QS @ Y.transpose(1, 2)
        h.sub_(sign * (QSY + QSY.transpose(1, 2))).add_(QS @ vR @ QS.transpose(1, 2))


def _rows(x: Any, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows ``idx`` of a tensor, array or memory map as float64 on ``device`` (maps read in ascending order)."""
    if isinstance(x, torch.Tensor):
        return x.index_select(0, torch.as_tensor(idx, device=x.device)).to(device=device, dtype=torch.float64)
    order = np.argsort(idx, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    got = np.asarray(x[idx[order]] if is_row_source(x) else np.asarray(x)[idx[order]], dtype=np.float64)
    return torch.from_numpy(got[inv]).to(device)


def bait_select(probs_N_K: Any, embeddings_N_d: Any, labeled_probs_L_K: Any, labeled_embeddings_L_d: Any,
                n: int, *, lamb: float = 1.0, oversample: float = 2.0, max_bytes: int = DEFAULT_MAX_BYTES,
                device: torch.device | str | None = None) -> BaitResult:
    """BAIT's batch of n candidates (Ash et al., NeurIPS 2021, Algorithm 1, the reference code's weights).

    Parameters
    ----------
    probs_N_K, embeddings_N_d : tensors or arrays of shape (N, K) and (N, d)
        Softmax outputs and penultimate embeddings of the candidates (numpy memory maps are read
        in row blocks).
    labeled_probs_L_K, labeled_embeddings_L_d : tensors or arrays of shape (L, K) and (L, d)
        The model's outputs on the labeled items (its predictions: the Fisher is an expectation
        over the model's own label distribution). L may be 0.
    n : int
        Batch size, 1 <= n <= N.
    lamb : float, default 1
        The regulariser lambda > 0 of M = lambda Id + ... (the reference code's default).
    oversample : float, default 2
        Forward selection adds min(ceil(oversample n), N) items before pruning back to n; 1 is
        plain forward greedy.
    max_bytes : int
        Bound on :func:`bait_memory_bytes`; a larger problem is refused with a ``ValueError``
        naming the shapes.
    device : optional
        Where to compute; default the device of ``embeddings_N_d`` (CPU for arrays).

    Returns
    -------
    BaitResult

    Notes
    -----
    Cost, with D = K d and m forward steps: O((N + L) K^2 d^2) for the Fisher sums, O(D^3) for
    M_0^{-1} and H_0, O(N K^2 d^2) for every candidate's first c_x and h_x, then per forward step
    O(N (K^2 d + K^3)) for the candidates and O(K D^2) for G and H; each backward step and
    each per-pick decrease costs O(m (K^2 d + K^3) + K D^2). In all
    O((N + L) K^2 d^2 + D^3 + m (N K^2 d + N K^3 + K D^2)), against O(m N K D^2) for scoring
    explicit K x D embeddings at every step (the reference code). Memory: the inputs,
    :func:`bait_memory_bytes` (3 D^2 + 3 N K^2 float64 values) and row blocks of at most 8M
    values. float64 throughout; ties go to the lowest candidate position (forward) and to the
    earliest pick (backward).
    """
    N, K = int(probs_N_K.shape[0]), int(probs_N_K.shape[1])
    d = int(embeddings_N_d.shape[1])
    L = int(labeled_embeddings_L_d.shape[0])
    if not 1 <= n <= N:
        raise ValueError(f"n must be between 1 and the number of candidates ({N}), got {n}")
    if not lamb > 0:
        raise ValueError(f"lamb must be > 0, got {lamb}")
    D = K * d
    need = bait_memory_bytes(N, K, d)
    if need > max_bytes:
        raise ValueError(
            f"bait needs about {need / 2**30:.2f} GiB: three (K d) x (K d) = ({D} x {D}) float64 matrices for "
            f"K = {K} classes and d = {d} embedding dimensions, and 3 x {K} x {K} values for each of {N} "
            f"candidates; that is more than its memory bound of {max_bytes / 2**30:.2f} GiB (max_bytes = "
            f"{max_bytes}). Reduce d (project the embeddings to fewer dimensions), select from fewer candidates, "
            f"or raise the bound")
    if device is None:
        device = embeddings_N_d.device if isinstance(embeddings_N_d, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    m = min(N, int(math.ceil(oversample * n)))
    w_lab, w_pick = 1.0 / (L + n), n / (L + n)

    # Setup (at most three D x D matrices at once): M_0 = lambda Id + w_L sum_L I(x); F_U = the
    # mean over candidates and labeled items; G = M_0^{-1} (Cholesky); H = G F_U G.
    acc = torch.zeros(K * K, d * d, dtype=torch.float64, device=device)
    if L:
        _fisher_sum_blocked(labeled_probs_L_K, labeled_embeddings_L_d, acc, device)
    M0 = _class_major(acc, K, d).mul_(w_lab)
    M0.diagonal().add_(lamb)
    _fisher_sum_blocked(probs_N_K, embeddings_N_d, acc, device)
    F_U = _class_major(acc, K, d).div_(N + L)
    del acc
    chol = torch.linalg.cholesky(M0)
    del M0
    G = torch.cholesky_inverse(chol)
    del chol
    GF = G @ F_U
    objective_start = float(GF.diagonal().sum())
    del F_U
    H = GF @ G
    del GF
    state = _Bait(G, H, K, d, w_pick)

    # Every candidate's softmax factors U_x and inner matrices c_x, h_x (O(N K^2 d^2) once).
    u_all = torch.empty(N, K, K, dtype=torch.float64, device=device)
    c_all = torch.empty_like(u_all)
    h_all = torch.empty_like(u_all)
    rows = rows_per_block(K * K * d)
    for (start, p), (_, z) in zip(_blocks(probs_N_K, device, rows), _blocks(embeddings_N_d, device, rows)):
        stop = start + p.shape[0]
        u_all[start:stop] = fisher_factors(p)
        c_all[start:stop], h_all[start:stop] = _inner(z, (state.G, state.H), K, d)
    z_rows = rows_per_block(max(d, K * K))

    # Forward: m greedy additions, each the largest decrease (ties: lowest position).
    chosen: list[int] = []
    gains: list[float] = []
    taken = torch.zeros(N, dtype=torch.bool, device=device)
    for _ in range(m):
        g = state.scores(u_all, c_all, h_all, 1.0).masked_fill_(taken, -math.inf)
        i = int(torch.argmax(g))          # first occurrence of the maximum
        chosen.append(i)
        gains.append(float(g[i]))
        taken[i] = True
        z_i = _rows(embeddings_N_d, np.array([i]), device)[0]
        upd = state.step(u_all[i], z_i, 1.0)
        for start, z in _blocks(embeddings_N_d, device, z_rows):
            stop = start + z.shape[0]
            state.track(z, c_all[start:stop], h_all[start:stop], *upd, 1.0)

    # Backward: m - n removals, each the smallest increase (ties: the earliest pick).
    held = list(chosen)
    idx = torch.as_tensor(held, device=device)
    u_h, c_h, h_h = u_all[idx], c_all[idx], h_all[idx]
    del u_all, c_all, h_all
    z_h = _rows(embeddings_N_d, np.asarray(held, dtype=np.int64), device)
    removed: list[int] = []
    costs: list[float] = []

    def remove(j: int) -> float:
        nonlocal u_h, c_h, h_h, z_h
        cost = float(state.scores(u_h[j:j + 1], c_h[j:j + 1], h_h[j:j + 1], -1.0)[0])
        upd = state.step(u_h[j], z_h[j], -1.0)
        keep = torch.arange(u_h.shape[0], device=device) != j
        u_h, c_h, h_h, z_h = u_h[keep], c_h[keep], h_h[keep], z_h[keep]
        if u_h.shape[0]:
            state.track(z_h, c_h, h_h, *upd, -1.0)
        return cost

    while len(held) > n:
        j = int(torch.argmin(state.scores(u_h, c_h, h_h, -1.0)))
        removed.append(held.pop(j))
        costs.append(remove(j))
    objective_end = objective_start - math.fsum(gains) + math.fsum(costs)

    # Per-pick decreases in selection order: removing the picks from the last to the first, the
    # increase of removing pick t from M_t is the decrease f(M_{t-1}) - f(M_t) of adding it.
    decreases = np.empty(n, dtype=np.float64)
    for t in range(n - 1, -1, -1):
        decreases[t] = remove(t)
    return BaitResult(np.asarray(held, dtype=np.int64), decreases, np.asarray(chosen, dtype=np.int64),
                      np.asarray(gains, dtype=np.float64), np.asarray(removed, dtype=np.int64),
                      np.asarray(costs, dtype=np.float64), objective_start, objective_end)
