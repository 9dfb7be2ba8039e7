"""EPIG: the expected predictive information gain of each candidate, from parameter samples.

Bickford Smith, Kirsch, Farquhar, Gal, Foster & Rainforth, "Prediction-Oriented Bayesian Active
Learning", AISTATS 2023. EPIG scores a candidate x by how much its label y tells about the labels
y* of target inputs x* drawn from the distribution the model will be used on:

    EPIG(x) = E_{x*} [ I(y; y* | x, x*) ].

With S parameter samples w_s (MC-dropout masks or committee members) the labels are independent
given w_s, so the joint predictive of (y, y*) is the mixture

    p(y, y*) = (1/S) sum_s p_s(y | x) p_s(y* | x*),

with marginals p(y) = (1/S) sum_s p_s(y | x) and p(y*) = (1/S) sum_s p_s(y* | x*), and the
estimator (the paper's estimator from samples, section 3.3) is the average over T target inputs

    EPIG(x) = (1/T) sum_t sum_{y, y*} p(y, y*) log[ p(y, y*) / (p(y) p(y*)) ].

It is a mutual information: non-negative, zero when the S samples agree, at most the candidate's
BALD score I(y; w | x) (y* depends on y only through w) and at most the entropies of the
predictives of y and y*.

For a block of B candidates the joints of every (candidate, target) pair are one matrix product,
(B K x S) @ (S x T K), so the block holds B T K^2 values; blocks are sized by the row-block rule
(:data:`~activebatch.kernels.rowblocks.BLOCK_VALUES` values), and sums run in float64.
"""
from __future__ import annotations

import torch

from .rowblocks import BLOCK_VALUES

__all__ = ["epig_scores", "epig_block_candidates"]


def epig_block_candidates(n_targets: int, n_classes: int, block_values: int = BLOCK_VALUES) -> int:
    """Candidates per block: the joint of a block, B x T x K x K values, stays within ``block_values``
    (at least one candidate)."""
    return max(1, int(block_values) // max(1, int(n_targets) * int(n_classes) ** 2))


def epig_scores(mc_probs_S_N_K: torch.Tensor, target_mc_probs_S_T_K: torch.Tensor, *,
                block_values: int = BLOCK_VALUES) -> torch.Tensor:
    """EPIG(x) in nats for each of N candidates, shape (N,), float64.

    Parameters
    ----------
    mc_probs_S_N_K : tensor of shape (S, N, K)
        p_s(y | x_n): S stochastic passes (or committee members) on the N candidates.
    target_mc_probs_S_T_K : tensor of shape (S, T, K)
        p_s(y* | x*_t): the *same* S passes on T target inputs (sample s must be the same
        parameters in both, otherwise the joint is that of independent models and EPIG is 0).
    block_values : int
        Values of the (B, K, T, K) joint held at once; the block size B follows from it.

    Returns
    -------
    tensor of shape (N,), float64, on the device of ``mc_probs_S_N_K``

    Notes
    -----
    Work: O(S N T K^2) for the joints (one matrix product per block) and O(N T K^2) for the
    logarithms. Memory: the inputs in float64, plus about three arrays of ``block_values``
    float64 values (the joint, its x log x and a product). 0 log 0 is taken as 0.
    """
    if mc_probs_S_N_K.ndim != 3 or target_mc_probs_S_T_K.ndim != 3:
        raise ValueError(f"expected mc_probs (S, N, K) and target_mc_probs (S, T, K), got shapes "
                         f"{tuple(mc_probs_S_N_K.shape)} and {tuple(target_mc_probs_S_T_K.shape)}")
    S, N, K = mc_probs_S_N_K.shape
    S_t, T, K_t = target_mc_probs_S_T_K.shape
    if S_t != S or K_t != K:
        raise ValueError(f"target_mc_probs has shape {tuple(target_mc_probs_S_T_K.shape)}: it must have the "
                         f"same {S} samples and {K} classes as mc_probs {tuple(mc_probs_S_N_K.shape)}")
    dev = mc_probs_S_N_K.device
    out = torch.empty(N, dtype=torch.float64, device=dev)
    if N == 0:
        return out
    if T == 0:
        raise ValueError("target_mc_probs has no target inputs (T = 0): EPIG averages over target inputs")
    targ = target_mc_probs_S_T_K.to(device=dev, dtype=torch.float64)
    targ_flat = targ.reshape(S, T * K)                                         # (S, T K)
    # log p(y*) for each (target, class), floored: where p(y*) = 0 every joint in its column is 0.
    tiny = torch.finfo(torch.float64).tiny
    log_targ_marg = targ.mean(dim=0).clamp_min(tiny).log().reshape(T * K)    # (T K,)
    block = epig_block_candidates(T, K, block_values)
    for start in range(0, N, block):
        stop = min(start + block, N)
        B = stop - start
        pool = mc_probs_S_N_K[:, start:stop].to(torch.float64)                 # (S, B, K)
        log_pool_marg = pool.mean(dim=0).clamp_min(tiny).log()                # (B, K)
        joint = pool.reshape(S, B * K).T @ targ_flat                           # (B K, T K)
        joint.div_(S)
        # sum J log J - sum J log p(y) - sum J log p(y*), each summed exactly as written
        j_log_j = torch.special.xlogy(joint, joint).view(B, K * T * K).sum(dim=1)
        mass_y = joint.sum(dim=1).view(B, K)                                   # sum over (t, y*)
        j_log_py = (mass_y * log_pool_marg).sum(dim=1)
        j_log_pt = (joint @ log_targ_marg).view(B, K).sum(dim=1)
        out[start:stop] = (j_log_j - j_log_py - j_log_pt) / T
    return out
