"""k-DPP sampling on the gradient-embedding kernel L_ij = <g_i, g_j> = (u_i . u_j)(z_i . z_j).

Two samplers:

* :func:`kdpp_mcmc` — the exchange Markov chain of Kang, "Fast Determinantal Point Process
  Sampling with Application to Clustering" (NeurIPS 2013, Algorithm 2 for k-DPPs), run for
  tau = floor(5 k ln k) steps as in the BADGE paper's k-DPP baseline (Ash et al., ICLR 2020,
  Appendix F). Kernel entries are formed from the factors on demand, never the N x N matrix nor
  the K*d embeddings; each step costs O(k (K + d) + k^2) with L_Y^{-1} kept up to date.
* :func:`kdpp_exact` — the spectral sampler of Kulesza & Taskar, "Determinantal Point Processes
  for Machine Learning" (2012, Algorithms 1 and 8), for small N: eigendecompose L, choose k
  eigenvectors through elementary symmetric polynomials, then sample the elementary DPP.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = ["kdpp_mcmc", "kdpp_exact", "default_steps", "gradient_kernel"]


class KernelRankWarning(UserWarning):
    """A k-DPP batch larger than the kernel's rank was padded with uniform picks."""


def default_steps(k: int) -> int:
    """tau = floor(5 k ln k), the chain length of the BADGE paper (at least 1)."""
    return max(1, int(math.floor(5 * k * math.log(k)))) if k > 1 else 1


def gradient_kernel(u: torch.Tensor, z: torch.Tensor, u2: torch.Tensor | None = None,
                    z2: torch.Tensor | None = None) -> torch.Tensor:
    """L = (U U2^T) * (Z Z2^T), float64: inner products of gradient embeddings."""
    u2 = u if u2 is None else u2
    z2 = z if z2 is None else z2
    return (u.to(torch.float64) @ u2.to(torch.float64).T) * (z.to(torch.float64) @ z2.to(torch.float64).T)


def _init_subset(u: torch.Tensor, z: torch.Tensor, k: int, rng: np.random.Generator, tol: float) -> list[int]:
    """A random k-subset with det(L_Y) > 0: each next point is uniform among the points whose
    residual (squared distance to the span of the chosen ones, in embedding space) is positive.
    Returns fewer than k points when the kernel's rank is below k."""
    N = u.shape[0]
    diag = (u.to(torch.float64) ** 2).sum(1) * (z.to(torch.float64) ** 2).sum(1)
    resid = diag.clone()
    basis: list[torch.Tensor] = []  # rows of L for the chosen points, orthogonalised (Cholesky)
    chosen: list[int] = []
    scale = float(diag.max()) if N else 0.0
    while len(chosen) < k:
        ok = torch.nonzero(resid > tol * max(scale, 1e-300))[:, 0]
        if ok.numel() == 0:
            break
        i = int(ok[int(rng.integers(ok.numel()))])
        # incremental pivoted Cholesky column of L at pivot i
        col = gradient_kernel(u, z, u[i:i + 1], z[i:i + 1])[:, 0]
        for b in basis:
            col = col - b * b[i]
        piv = math.sqrt(float(col[i]))
        b = col / piv
        basis.append(b)
        resid = (resid - b * b).clamp_min_(0.0)
        resid[i] = 0.0
        chosen.append(i)
    return chosen


def kdpp_mcmc(u: torch.Tensor, z: torch.Tensor, k: int, rng: np.random.Generator, *, steps: int | None = None,
              tol: float = 1e-10, recompute_every: int = 64) -> np.ndarray:
    """Approximate k-DPP sample by Kang's exchange chain.

    Parameters
    ----------
    u, z : tensors of shape (N, K) and (N, d)
        Gradient-embedding factors (u = p - e_y^, z the embeddings).
    k : int
        Subset size.
    rng : numpy.random.Generator
    steps : int, optional
        Chain length; default floor(5 k ln k).
    tol : float
        Relative threshold under which a residual counts as zero (rank deficiency).

    Returns
    -------
    ndarray of shape (k,)
        Distinct positions (the chain's final state, sorted).

    Notes
    -----
    Each step proposes swapping a uniformly chosen member of Y for a uniformly chosen non-member
    and accepts with probability (1/2) min(1, det L_Y' / det L_Y) (the lazy chain, which is
    aperiodic); its stationary law is P(Y) proportional to det L_Y over k-subsets. If the kernel
    has rank below k (for example when many gradient embeddings vanish), no k-subset has positive
    determinant; the points of a maximal independent set are then kept and the rest of the subset
    is filled uniformly at random from the remaining points, and no chain is run.
    """
    N = u.shape[0]
    u = u.to(torch.float64)
    z = z.to(torch.float64)
    Y = _init_subset(u, z, k, rng, tol)
    if len(Y) < k:
        warnings.warn(f"the gradient-embedding kernel has rank {len(Y)} < k={k}: no {k}-subset has positive "
                      f"probability, so {k - len(Y)} of the {k} points were drawn uniformly at random after a "
                      f"maximal independent set of {len(Y)}", KernelRankWarning, stacklevel=2)
        rest = np.setdiff1d(np.arange(N), np.asarray(Y, dtype=np.int64))
        Y += [int(i) for i in rng.choice(rest, size=k - len(Y), replace=False)]
        return np.sort(np.asarray(Y, dtype=np.int64))
    if k == N:
        return np.arange(N, dtype=np.int64)
    steps = default_steps(k) if steps is None else int(steps)
    inY = np.zeros(N, dtype=bool)
    inY[Y] = True
    Yt = torch.as_tensor(Y, device=u.device)
    uY, zY = u[Yt], z[Yt]
    A = torch.linalg.inv(gradient_kernel(uY, zY))
    accepted = 0
    # all randomness drawn up front: member position, non-member proposal, acceptance
    rs = rng.integers(k, size=steps)
    vs = rng.integers(N, size=steps)
    acc_u = rng.random(steps)
    # A swap whose new point lies (to the rank tolerance) in the span of the others leads to a
    # numerically singular L_Y: its probability is taken as zero, as _init_subset does, so the
    # chain never reaches a subset whose kernel cannot be inverted.
    floor = tol * max(float(((u ** 2).sum(1) * (z ** 2).sum(1)).max()), 1e-300)
    for t in range(steps):
        v = int(vs[t])
        while inY[v]:  # uniform over non-members
            v = int(rng.integers(N))
        r = int(rs[t])
        uv, zv = u[v], z[v]
        q = (uY @ uv) * (zY @ zv)               # L_{Y, v}, (k,); entry r is left out below
        q[r] = 0.0
        lvv = float((uv @ uv) * (zv @ zv))
        Aq = A @ q                               # with q_r = 0: A_{., Y-r} q
        Arr, arq = float(A[r, r]), float(Aq[r])
        # Schur complement of L_{Y-r} in L_{Y-r+v}, using inv(L_{Y-r}) = A_{-r,-r} - a_r a_r^T / A_rr
        s = lvv - float(q @ Aq) + arq * arq / Arr
        ratio = Arr * s if s > floor else 0.0      # det L_Y' / det L_Y
        if acc_u[t] < 0.5 * min(1.0, max(ratio, 0.0)):
            # in place, O(k^2): A - a a^T / A_rr is inv(L_{Y-r}) with row and column r zero;
            # bordering it with v (at position r) adds Bq Bq^T / s and fills row and column r
            a = A[:, r].clone()
            Bq = Aq - a * (arq / Arr)              # inv(L_{Y-r}) q, zero at r
            A.addr_(a, a, alpha=-1.0 / Arr)
            A.addr_(Bq, Bq, alpha=1.0 / s)
            A[r, :] = -Bq / s
            A[:, r] = -Bq / s
            A[r, r] = 1.0 / s
            inY[Y[r]] = False
            inY[v] = True
            Y[r] = v
            uY[r], zY[r] = uv, zv
            accepted += 1
            if accepted % recompute_every == 0:  # keep rounding errors from accumulating
                A = _refreshed_inverse(A, gradient_kernel(uY, zY))
    return np.sort(np.asarray(Y, dtype=np.int64))


def _refreshed_inverse(A: torch.Tensor, L_Y: torch.Tensor) -> torch.Tensor:
    """inv(L_Y) recomputed from scratch, or the running inverse ``A`` where L_Y is singular in
    float64. Near the kernel's rank a swap can pass the determinant-ratio test on rounding alone
    and leave L_Y exactly singular for LU; the chain then carries on with the inverse it has kept
    up to date (the next accepted swaps move it off that subset) instead of failing the round."""
    fresh, info = torch.linalg.inv_ex(L_Y)
    return fresh if int(info) == 0 and bool(torch.isfinite(fresh).all()) else A


def _elementary_symmetric(lam: np.ndarray, k: int) -> np.ndarray:
    """E[l, n] = e_l(lambda_1..lambda_n), l = 0..k, n = 0..N (Kulesza & Taskar, Algorithm 7)."""
    N = lam.size
    E = np.zeros((k + 1, N + 1))
    E[0, :] = 1.0
    for n in range(1, N + 1):  # all orders l at once; the recurrence runs along n
        E[1:, n] = E[1:, n - 1] + lam[n - 1] * E[:-1, n - 1]
    return E


def kdpp_exact(L: np.ndarray | torch.Tensor, k: int, rng: np.random.Generator) -> np.ndarray:
    """Exact k-DPP sample for a small PSD kernel L (N x N) by the spectral method.

    Kulesza & Taskar (2012), Algorithm 8 (choose k eigenvectors) then Algorithm 1 (sample the
    elementary DPP). O(N^3); meant for small pools and for checking :func:`kdpp_mcmc`.

    Returns
    -------
    ndarray of shape (k,), sorted distinct positions.
    """
    L = L.detach().cpu().numpy() if isinstance(L, torch.Tensor) else np.asarray(L, dtype=np.float64)
    lam, V = np.linalg.eigh((L + L.T) / 2)
    lam = np.clip(lam, 0.0, None)
    N = lam.size
    E = _elementary_symmetric(lam, k)
    if not E[k, N] > 0:
        raise ValueError(f"the kernel has rank below k={k}: no k-subset has positive probability")
    chosen = []
    left = k   # eigenvectors still to choose
    for n in range(N, 0, -1):
        if left == 0:
            break
        if n == left or rng.random() < lam[n - 1] * E[left - 1, n - 1] / E[left, n]:
            chosen.append(n - 1)
            left -= 1
    Vs = V[:, chosen]
    out = []
    while Vs.shape[1] > 0:
        p = (Vs ** 2).sum(1)
        p /= p.sum()
        i = int(rng.choice(N, p=p))
        out.append(i)
        # project the basis onto the subspace orthogonal to e_i and re-orthonormalise
        j = int(np.argmax(np.abs(Vs[i])))
        vj = Vs[:, j].copy()
        Vs = np.delete(Vs, j, axis=1)
        Vs = Vs - np.outer(vj, Vs[i] / vj[i])
        if Vs.shape[1]:
            Vs, _ = np.linalg.qr(Vs)
    return np.sort(np.asarray(out, dtype=np.int64))
