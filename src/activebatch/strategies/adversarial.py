"""Adversarial margin: rank candidates by the smallest input perturbation that flips the prediction.

DFAL (Ducoffe & Precioso, "Adversarial Active Learning for Deep Networks: a Margin Based
Approach", arXiv:1802.09841, 2018) approximates each candidate's distance to the decision boundary
by the size of an adversarial perturbation and queries the closest candidates first. Two attacks
are provided: DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016), an L2 attack, and the
basic iterative method (Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world",
ICLR 2017 workshop), an L-infinity one.

These are model-level strategies: they read the ``learner`` and ``pool`` evidence handles
(:meth:`activebatch.Learner.evidence`), not arrays, so ``activebatch.select`` cannot run them.
Perturbations live in the space the trained model reads: the raw inputs, or the frozen
extractor's features when the learner has one. Candidates are attacked ``chunk_size`` at a time,
every chunk in one batched computation; a candidate leaves the batch as soon as it flips.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..kernels.scores import top_n
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import Selection, Strategy, register

__all__ = ["AdversarialDeepFool", "AdversarialBIM", "deepfool_distances", "bim_distances"]


def _flat_norm(x: torch.Tensor, norm: str) -> torch.Tensor:
    flat = x.flatten(1).to(torch.float64)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


def deepfool_distances(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, max_iter: int = 50,
                       overshoot: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-class DeepFool (Moosavi-Dezfooli et al., CVPR 2016, Algorithm 2) on a batch.

    From x_0 = x with predicted class k0, each iteration linearises the logits f at the current
    point x_i = x + (1 + overshoot) r and steps to the nearest linearised boundary:
    w_k = grad f_k - grad f_k0, f'_k = f_k - f_k0, l = argmin_{k != k0} |f'_l| / ||w_l||,
    r <- r + |f'_l| / ||w_l||^2 w_l, until the class at x + (1 + overshoot) r differs from k0 or
    ``max_iter`` steps were taken. For an affine classifier the first step is the exact minimal
    L2 perturbation, min_k |f_k - f_k0| / ||W_k - W_k0||.

    Parameters
    ----------
    model : callable
        Maps inputs (B, ...) to logits (B, K); rows must not interact (eval mode).
    x : tensor of shape (B, ...)
    max_iter : int, default 50
    overshoot : float, default 0.02

    Returns
    -------
    distance : tensor of shape (B,), float64
        ||r|| (L2, without the overshoot) for items that flipped; +inf for items that did not
        flip within ``max_iter`` steps or whose logit differences have zero gradient.
    flipped : tensor of bool, shape (B,)
        Items lying on a decision boundary count as flipped at distance ||r||.
    """
    x0 = x.detach()
    B, device = x0.shape[0], x0.device
    with torch.no_grad():
        k0 = model(x0).argmax(dim=1)
    r_tot = torch.zeros_like(x0)
    dist = torch.full((B,), float("inf"), dtype=torch.float64, device=device)
    flipped = torch.zeros(B, dtype=torch.bool, device=device)
    active = torch.arange(B, device=device)
    for it in range(max_iter + 1):
        if active.numel() == 0:
            break
        xa = (x0[active] + (1.0 + overshoot) * r_tot[active]).requires_grad_(True)
        with torch.enable_grad():
            logits = model(xa)
        ka = k0[active]
        done = logits.argmax(dim=1) != ka
        if done.any():
            rows = active[done]
            dist[rows] = _flat_norm(r_tot[rows], "l2")
            flipped[rows] = True
        if it == max_iter or bool(done.all()):
            break
        K = logits.shape[1]
        grads = []
        for k in range(K):
            (g,) = torch.autograd.grad(logits[:, k].sum(), xa, retain_graph=k < K - 1)
            grads.append(g.flatten(1))
        G = torch.stack(grads, dim=1)                                   # (A, K, D)
        keep = ~done
        G, f, ka, rows = G[keep], logits.detach()[keep], ka[keep], active[keep]
        ar = torch.arange(rows.numel(), device=device)
        w = G - G[ar, ka].unsqueeze(1)                                  # (A, K, D)
        fd = (f - f[ar, ka].unsqueeze(1)).abs()                         # (A, K)
        wn = w.norm(dim=2)
        ratio = torch.where(wn > 0, fd / wn.clamp_min(torch.finfo(wn.dtype).tiny), torch.full_like(fd, float("inf")))
        ratio[ar, ka] = float("inf")
        best, nearest = ratio.min(dim=1)
        on_boundary = best == 0
        if on_boundary.any():
            b_rows = rows[on_boundary]
            dist[b_rows] = _flat_norm(r_tot[b_rows], "l2")
            flipped[b_rows] = True
        move = torch.isfinite(best) & ~on_boundary                      # inf: no gradient, cannot move
        wl = w[ar, nearest]                                             # (A, D)
        step = (fd[ar, nearest] / wn[ar, nearest].clamp_min(torch.finfo(wn.dtype).tiny) ** 2).unsqueeze(1) * wl
        m_rows = rows[move]
        r_tot[m_rows] += step[move].view((-1,) + tuple(x0.shape[1:])).to(r_tot.dtype)
        active = m_rows
    return dist, flipped


def bim_distances(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, step: float = 0.01,
                  max_iter: int = 100, epsilon: float | None = None, refine: int = 10,
                  norm: str = "linf") -> tuple[torch.Tensor, torch.Tensor]:
    """Basic iterative method (Kurakin et al., 2017) until the predicted class changes.

    x_{t+1} = clip_{x, epsilon}(x_t + step * sign(grad_x CE(f(x_t), k0))), with k0 the class
    predicted at x, stopping per item at the first iterate whose class differs from k0. The flip
    point is then located on the last segment [x_{t-1}, x_t] by ``refine`` bisection steps, so
    the distance is not quantised to multiples of ``step``.

    Parameters
    ----------
    model : callable
        Maps inputs (B, ...) to logits (B, K); rows must not interact (eval mode).
    x : tensor of shape (B, ...)
    step : float, default 0.01
        alpha, in input units.
    max_iter : int, default 100
    epsilon : float, optional
        Radius of the L-infinity ball around x the iterates are clipped to (none by default:
        the attack runs until the class flips or ``max_iter``).
    refine : int, default 10
        Bisection steps on the flipping segment (0: report the iterate itself).
    norm : {"linf", "l2"}, default "linf"
        How the perturbation's size is measured.

    Returns
    -------
    distance : tensor of shape (B,), float64
        Size of the perturbation at the flip; +inf for items that never flipped (within
        ``max_iter`` steps, or because their gradient is zero).
    flipped : tensor of bool, shape (B,)
    """
    x0 = x.detach()
    B, device = x0.shape[0], x0.device
    with torch.no_grad():
        k0 = model(x0).argmax(dim=1)
    cur = x0.clone()
    prev = x0.clone()
    dist = torch.full((B,), float("inf"), dtype=torch.float64, device=device)
    flipped = torch.zeros(B, dtype=torch.bool, device=device)
    active = torch.arange(B, device=device)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    for it in range(max_iter + 1):
        if active.numel() == 0:
            break
        xa = cur[active].clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(xa)
        ka = k0[active]
        done = logits.argmax(dim=1) != ka
        if done.any():
            rows = active[done]
            lo, hi = prev[rows].clone(), cur[rows].clone()
            kr = k0[rows]
            with torch.no_grad():
                for _ in range(refine):
                    mid = (lo + hi) / 2
                    flip_mid = model(mid).argmax(dim=1) != kr
                    shape = (-1,) + (1,) * (x0.ndim - 1)
                    hi = torch.where(flip_mid.view(shape), mid, hi)
                    lo = torch.where(flip_mid.view(shape), lo, mid)
            dist[rows] = _flat_norm(hi - x0[rows], norm)
            flipped[rows] = True
        if it == max_iter or bool(done.all()):
            break
        with torch.enable_grad():
            (g,) = torch.autograd.grad(loss_fn(logits, ka), xa)
        keep = ~done & (g.flatten(1).abs().amax(dim=1) > 0)
        rows = active[keep]
        new = xa.detach()[keep] + step * g[keep].sign()
        if epsilon is not None:
            base = x0[rows]
            new = base + (new - base).clamp(-epsilon, epsilon)
        prev[rows] = cur[rows]
        cur[rows] = new
        active = rows
    return dist, flipped


class _Adversarial(Strategy):
    needs = frozenset({"learner", "pool"})
    score_name = "norm of the adversarial perturbation found (smaller = closer to the decision boundary)"

    def _distances(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement _distances(model, x)")

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        learner, pool, ids = evidence.learner, evidence.pool, evidence.candidate_ids
        if ids is None:
            raise ValueError(f"strategy {self.name!r} needs the candidates' pool indices "
                             "(Evidence.candidate_ids, as Learner.evidence(pool) sets them)")
        ids = np.asarray(ids)
        model = learner.model
        model.eval()
        parts = []
        for start in range(0, ids.size, self.chunk_size):
            x = learner._to_tensor(pool.features(ids[start:start + self.chunk_size]))
            parts.append(self._distances(model, x)[0])
        dist = torch.cat(parts).to(torch.float64).cpu().numpy()
        idx = top_n(dist, n, largest=False)
        return Selection(idx, scores=dist[idx], candidate_scores=dist)


def _check_common(max_iter: int, chunk_size: int) -> tuple[int, int]:
    return check_scalar(max_iter, "max_iter", int, min_val=1), check_scalar(chunk_size, "chunk_size", int, min_val=1)


@register
class AdversarialDeepFool(_Adversarial):
    """DFAL: the candidates with the smallest DeepFool perturbation (:func:`deepfool_distances`)
    first (Ducoffe & Precioso, 2018).

    Candidates that do not flip within ``max_iter`` steps (or whose logits have zero input
    gradient) come after every candidate that flipped, in pool order. DFAL also adds the
    adversarial examples to training with the queried label; that is a training choice and not
    part of this selection rule.

    Parameters
    ----------
    max_iter : int, default 50
    overshoot : float, default 0.02
    chunk_size : int, default 256
        Candidates attacked together.
    """

    name = "adversarial_deepfool"

    def __init__(self, max_iter: int = 50, overshoot: float = 0.02, chunk_size: int = 256) -> None:
        self.max_iter, self.chunk_size = _check_common(max_iter, chunk_size)
        self.overshoot = check_scalar(overshoot, "overshoot", float, min_val=0)

    def _distances(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return deepfool_distances(model, x, max_iter=self.max_iter, overshoot=self.overshoot)


@register
class AdversarialBIM(_Adversarial):
    """The candidates whose prediction the basic iterative method flips with the smallest
    perturbation (:func:`bim_distances`) first, in the DFAL scheme.

    Candidates that never flip come after every candidate that flipped, in pool order.

    Parameters
    ----------
    step : float, default 0.01
        Step alpha in input units (for inputs scaled to [0, 1] the defaults reach an
        L-infinity perturbation of 1).
    max_iter : int, default 100
    epsilon : float, optional
        Clip the iterates to this L-infinity ball (no ball by default).
    refine : int, default 10
        Bisection steps locating the flip on the last segment.
    norm : {"linf", "l2"}, default "linf"
    chunk_size : int, default 256
    """

    name = "adversarial_bim"

    def __init__(self, step: float = 0.01, max_iter: int = 100, epsilon: float | None = None, refine: int = 10,
                 norm: str = "linf", chunk_size: int = 256) -> None:
        self.max_iter, self.chunk_size = _check_common(max_iter, chunk_size)
        self.step = check_scalar(step, "step", float, min_val=0, include_min=False)
        self.epsilon = check_scalar(epsilon, "epsilon", float, min_val=0, include_min=False, allow_none=True)
        self.refine = check_scalar(refine, "refine", int, min_val=0)
        self.norm = check_choice(norm, "norm", ("linf", "l2"))

    def _distances(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return bim_distances(model, x, step=self.step, max_iter=self.max_iter, epsilon=self.epsilon,
                             refine=self.refine, norm=self.norm)
