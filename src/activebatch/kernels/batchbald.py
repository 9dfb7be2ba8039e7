"""BALD and BatchBALD on MC-dropout samples: entropies, mutual information, greedy joint MI.

Notation (as in Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch Acquisition
for Deep Bayesian Active Learning", NeurIPS 2019): ``mc_probs[s, n, c] = p(y_n = c | x_n, w_s)`` for
S parameter samples w_s (MC-dropout masks, Gal, Islam & Ghahramani, ICML 2017), N candidates and
K classes. The posterior predictive is the mixture p(y_n | x_n) = (1/S) sum_s p(y_n | x_n, w_s).

* BALD (Houlsby, Huszar, Ghahramani & Lengyel, 2011): the mutual information between a label and
  the parameters, I(y; w | x) = H[mean_s p_s] - mean_s H[p_s].
* BatchBALD: the joint mutual information I(y_1, ..., y_b; w) of a batch, maximised greedily
  (Kirsch et al., Algorithm 1). By the chain rule the greedy gain of a candidate x given the
  batch A so far is the conditional mutual information

      I(y_x; w | y_A) = H(y_x | y_A) - mean_s H[p_s(y_x)],

  because the labels are independent given w. Its first term averages over configurations y^ of
  the batch labels:

      H(y_x | y_A) = sum_{y^} P(y^) H[ sum_s pi_s(y^) p_s(y_x) ],
      P(y^) = (1/S) sum_s P(y^ | w_s),   pi_s(y^) = P(y^ | w_s) / sum_s' P(y^ | w_s'),

  the entropy of the predictive of y_x under the posterior over the S samples given y^. The sum
  runs over all K^|A| configurations while there are at most ``max_exact_configs`` of them (exact
  joint entropies); beyond, over M sampled configurations with weights 1/M, M/S of them drawn
  from each P(. | w_s) (the Monte-Carlo estimator of the paper's section 3.3, stratified over the
  samples as in the authors' code). This is the paper's joint entropy H(y_A, y_x) minus the
  candidate-independent H(y_A), which cancels in the greedy argmax; working with the normalised
  posterior pi avoids the underflow of products of many probabilities.

Everything is vectorised over candidates and samples: for a block of candidates,
``pi @ P_block`` (M, K * block) is one matrix product, and the block size bounds memory. The joint
MI is submodular (Kirsch et al., section 3.2), so greedy selection is within 1 - 1/e of the
optimum, and an earlier gain of a candidate bounds its later gains; the *lazy* greedy of Minoux
(1978) uses these bounds to re-evaluate only the candidates that can still win, which selects
exactly what plain greedy selects when the entropies are exact.

The joint MI cannot exceed the entropy of the parameters, ln S for S equally weighted samples.
Once every sampled configuration's posterior sits on the sample it was drawn from, the batch
labels identify the sample, every candidate's gain estimate is exactly zero and the remaining
picks are ties: with S = 20 dropout samples this happened after 97 picks on letter (26 classes)
in the reproduction's first round. The authors' ``argmax`` then takes the lowest index, i.e. the pool's order (in a file
sorted by class, one class); here such ties are drawn uniformly at random by default, and a
:class:`BatchBALDSaturationWarning` says how many picks were informed.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from .scores import _cpu_array, _map_rows, _mutual_information, entropy

__all__ = [
    "BatchBALDResult",
    "BatchBALDSaturationWarning",
    "bald_scores",
    "conditional_entropies",
    "configuration_entropies",
    "entropy",
    "expected_entropy",
    "greedy_batchbald",
    "joint_mutual_information",
    "predictive_entropy",
]

#: Candidates evaluated together (full estimates, screening estimates).
_BLOCK = 64
_SCREEN_BLOCK = 256
#: Elements (configurations x classes x candidates) of one tile of a block; two buffers of this
#: size are kept (2 MiB each in float64), so the work per tile stays in cache.
_TILE_ELEMENTS = 1 << 18
#: Rows of the pool handled at once by the per-candidate scores.
_POOL_CHUNK = 4096
#: Lazy greedy in the sampled regime: an earlier Monte-Carlo estimate bounds the current gain only
#: up to sampling noise, so it is widened by this many of its standard errors.
_LAZY_SE_MARGIN = 4.0
#: Sampled regime: candidates are first screened on 1/_SCREEN_FRACTION of the configurations
#: (when that is at least _SCREEN_MIN of them).
_SCREEN_FRACTION = 16
_SCREEN_MIN = 1000
#: Slack on exact bounds, absorbing rounding (exact gains are non-increasing only up to it).
_EXACT_SLACK = 1e-10
#: Sampled configurations whose posterior puts at least 1 - delta on one parameter sample are
#: evaluated as that sample: by Fannes' inequality the entropy moves by at most
#: delta log(K - 1) + h(delta) < 3e-8 nats (K <= 1000), far below the Monte-Carlo error.
_POINT_MASS = 1e-9
#: Posterior weights below this are dropped before the float32 product (no subnormal arithmetic).
_FLOAT32_FLOOR = 1e-30
_LN2 = math.log(2.0)


def predictive_entropy(mc_probs: torch.Tensor) -> torch.Tensor:
    """H[mean_s p_s]: entropy of the MC-averaged predictive, shape (N,), float64.

    Parameters
    ----------
    mc_probs : tensor of shape (S, N, K)
    """
    parts = [entropy(mc_probs[:, i:i + _POOL_CHUNK].to(torch.float64).mean(dim=0))
             for i in range(0, mc_probs.shape[1], _POOL_CHUNK)]
    return torch.cat(parts) if parts else mc_probs.new_zeros(0, dtype=torch.float64)


def expected_entropy(mc_probs: torch.Tensor) -> torch.Tensor:
    """mean_s H[p_s]: expected entropy under the parameter samples (the aleatoric part), (N,).

    Parameters
    ----------
    mc_probs : tensor of shape (S, N, K)
    """
    parts = [entropy(mc_probs[:, i:i + _POOL_CHUNK]).mean(dim=0)
             for i in range(0, mc_probs.shape[1], _POOL_CHUNK)]
    return torch.cat(parts) if parts else mc_probs.new_zeros(0, dtype=torch.float64)


def bald_scores(mc_probs: torch.Tensor) -> torch.Tensor:
    """BALD: I(y; w | x) = H[mean_s p_s] - mean_s H[p_s] for each candidate, (N,), float64.

    Houlsby, Huszar, Ghahramani & Lengyel (2011), "Bayesian Active Learning for Classification
    and Preference Learning", eq. (3); estimated from MC-dropout samples as in Gal, Islam &
    Ghahramani, "Deep Bayesian Active Learning with Image Data" (ICML 2017), section 3.
    Non-negative up to rounding (Jensen), zero when all samples agree.

    Parameters
    ----------
    mc_probs : tensor of shape (S, N, K)
    """
    x = _cpu_array(mc_probs)
    if x is not None:   # CPU: both entropies from one float64 copy of each block of candidates
        return _map_rows(_mutual_information(x), x.shape[1], x.shape[0] * x.shape[2])
    return predictive_entropy(mc_probs) - expected_entropy(mc_probs)


def configuration_entropies(posterior: torch.Tensor, probs_block: torch.Tensor) -> torch.Tensor:
    """H[q_mx] with q_mx = sum_s pi_s(y^_m) p_s(y_x): the entropy of y_x given configuration m.

    Parameters
    ----------
    posterior : tensor of shape (M, S)
        pi_s(y^_m), the posterior over the S parameter samples given configuration m.
    probs_block : tensor of shape (S, B, K)
        p(y_x | w_s) for B candidates.

    Returns
    -------
    tensor of shape (M, B), float64, nats
    """
    p = _class_major(probs_block.to(posterior.dtype))
    return _entropies(posterior, p, probs_block.shape[2], _Workspace())


def _class_major(probs_block: torch.Tensor) -> torch.Tensor:
    """(S, B, K) -> (S, K B) with column c B + b, so that a sum over classes adds K contiguous
    slabs. Probabilities are floored at the smallest normal number: then every predictive q > 0
    and 0 log 0 = 0 holds without a special case."""
    S, B, K = probs_block.shape
    return probs_block.clamp_min(torch.finfo(probs_block.dtype).tiny).transpose(1, 2).reshape(S, K * B)


def _entropies(posterior: torch.Tensor, p: torch.Tensor, K: int, work: _Workspace) -> torch.Tensor:
    """-sum_c q log q for q = posterior @ p, (M, K B) -> (M, B) in float64 nats."""
    M, KB = posterior.shape[0], p.shape[1]
    q = torch.matmul(posterior, p, out=work.take(0, M * KB, p).view(M, KB))
    q_log2_q = torch.log2(q, out=work.take(1, M * KB, p).view(M, KB)).mul_(q)
    return q_log2_q.view(M, K, KB // K).sum(dim=1).to(torch.float64).mul_(-_LN2)


def conditional_entropies(posterior: torch.Tensor, weights: torch.Tensor, probs_block: torch.Tensor
                          ) -> torch.Tensor:
    """H(y_x | y_A) = sum_m weights_m H[sum_s pi_s(y^_m) p_s(y_x)] for a block of candidates.

    Parameters
    ----------
    posterior : tensor of shape (M, S)
        pi_s(y^_m) for each configuration m of the batch labels y_A (rows sum to 1).
    weights : tensor of shape (M,)
        P(y^_m) when all configurations are enumerated; 1/M for M sampled ones.
    probs_block : tensor of shape (S, B, K)
        p(y_x | w_s) for B candidates.

    Returns
    -------
    tensor of shape (B,), float64, nats
    """
    h = configuration_entropies(posterior, probs_block.to(posterior.dtype))
    return weights.to(torch.float64) @ h


def joint_mutual_information(mc_probs: torch.Tensor) -> float:
    """Exact I(y_1, ..., y_b; w) of b candidates by enumerating all K^b label configurations.

    I = H(y_1..y_b) - sum_i mean_s H[p_s(y_i)], with P(y^) = (1/S) sum_s prod_i p_s(y^_i).
    Memory grows as K^b: meant for small batches (checks and examples).

    Parameters
    ----------
    mc_probs : tensor of shape (S, b, K)
    """
    S, b, K = mc_probs.shape
    log_p = torch.log(mc_probs.to(torch.float64))
    log_lik = torch.zeros(1, S, dtype=torch.float64, device=mc_probs.device)
    for i in range(b):
        log_lik = _extend_exact(log_lik, log_p[:, i, :])
    log_joint = torch.logsumexp(log_lik, dim=1) - math.log(S)
    h_joint = float(-(log_joint.exp() * log_joint).sum())
    return h_joint - float(expected_entropy(mc_probs).sum())


class BatchBALDSaturationWarning(UserWarning):
    """Greedy BatchBALD ran out of information: the later picks of the batch were ties."""


class BatchBALDResult(NamedTuple):
    """Outcome of :func:`greedy_batchbald`.

    Attributes
    ----------
    indices : ndarray of int64, shape (n,)
        Chosen candidate positions, in selection order.
    gains : ndarray of float64, shape (n,)
        The conditional mutual information I(y_t; w | y_1..y_{t-1}) of each pick; their cumulative
        sum is the joint mutual information I(y_1..y_t; w) of the batch so far (the first gain
        is the BALD score of the first pick).
    exact : ndarray of bool, shape (n,)
        Whether each gain was computed from all label configurations (True) or estimated from
        sampled configurations (False).
    saturated_at : int or None
        The first pick made after saturation (every sampled configuration identifying its
        parameter sample, so that every gain estimate is exactly zero), or None. Picks from
        there on are ties broken as ``ties`` says.
    """

    indices: np.ndarray
    gains: np.ndarray
    exact: np.ndarray
    saturated_at: int | None = None


def greedy_batchbald(mc_probs: torch.Tensor, n: int, rng: np.random.Generator, *, num_samples: int = 40_000,
                     max_exact_configs: int | None = None, lazy: bool = True,
                     ties: str = "random") -> BatchBALDResult:
    """Greedy BatchBALD: choose n candidates maximising the joint mutual information with w.

    Kirsch, van Amersfoort & Gal, NeurIPS 2019, Algorithm 1. Step t adds to the batch A the
    candidate with the largest conditional mutual information I(y_x; w | y_A), which is the
    paper's a_BatchBALD(A + x) less a constant; the first step is BALD.

    Parameters
    ----------
    mc_probs : tensor of shape (S, N, K)
        Softmax outputs of S stochastic forward passes with consistent dropout masks (the same S
        masks for every candidate; otherwise the joint entropies are noise).
    n : int
        Batch size, 1 <= n <= N.
    rng : numpy.random.Generator
        Draws the sampled label configurations (used only beyond the exact regime).
    num_samples : int, default 40,000
        Number M of sampled configurations of the batch labels for the Monte-Carlo joint
        entropies, rounded down to a multiple of S (``num_samples // S`` drawn from each
        P(. | w_s)); 40,000 as in the authors' code.
    max_exact_configs : int, optional
        Joint entropies are exact while the batch so far has at most this many label
        configurations (K^|A|); default M, the authors' rule.
    lazy : bool, default True
        Lazy greedy evaluation (Minoux 1978): a candidate is re-evaluated only while its previous
        gain, an upper bound by submodularity, can still beat the best fresh gain. This chooses
        exactly what full evaluation chooses in the exact regime. In the sampled regime an
        earlier estimate serves as a bound once widened by four of its standard errors, and
        candidates are first screened on 1/16 of the configurations: only those whose screening
        estimate, plus four standard errors of its difference to the full estimate, can beat the
        best full estimate are evaluated in full. ``False`` evaluates every candidate on every
        configuration at every step, as the published algorithm does.
    ties : {"random", "lowest"}, default "random"
        How picks are made once the batch is saturated (every sampled configuration's posterior
        is a point mass on the sample it was drawn from, so that every candidate's gain estimate
        is exactly zero): a candidate drawn uniformly at random from ``rng``, or the lowest index
        (the authors' ``argmax``, which follows the pool's order). Either way a
        :class:`BatchBALDSaturationWarning` says after how many picks it happened.

    Returns
    -------
    BatchBALDResult
        ``indices`` (n,), ``gains`` (n,), ``exact`` (n,) and ``saturated_at``.

    Notes
    -----
    Memory: the inputs, O(M S) for the configurations and two buffers of 2^18 elements for one
    tile of a block of candidates. Work per evaluated candidate is O(M S K). Exact-regime sums run in float64;
    sampled ones in float32, whose rounding (about 1e-7 nats) is far below the Monte-Carlo error.
    In the sampled regime each configuration's entropy is taken relative to H[p_s(y_x)] of the
    sample s it was drawn from; this changes nothing in the estimate (every sample has M/S
    configurations) but makes its standard error reflect only the within-sample variation.
    Configurations whose posterior is a point mass on one sample (up to 1e-9) are pooled per
    sample. Ties go to the lowest index (after saturation, as ``ties`` says). The device follows
    ``mc_probs``; sampled configurations use uniforms from ``rng``, so a seed gives the same batch
    on any device up to rounding.
    """
    S, N, K = mc_probs.shape
    if not 1 <= n <= N:
        raise ValueError(f"n must be between 1 and the number of candidates ({N}), got {n}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if ties not in ("random", "lowest"):
        raise ValueError(f"ties must be 'random' or 'lowest', got {ties!r}")
    per_sample = max(1, num_samples // S)
    M = per_sample * S
    limit = M if max_exact_configs is None else int(max_exact_configs)
    dev = mc_probs.device
    aleatoric = expected_entropy(mc_probs)                                   # mean_s H[p_s], (N,)
    bound = torch.full((N,), math.inf, dtype=torch.float64, device=dev)      # upper bounds on gains
    work = _Workspace()
    # Screening subset: the first 1/16 of the configurations drawn from each sample.
    per_screen = per_sample // _SCREEN_FRACTION
    screen_rows = None
    if per_screen * S >= _SCREEN_MIN:
        screen_rows = torch.nonzero(torch.arange(M, device=dev) % per_sample < per_screen).flatten()

    chosen: list[int] = []
    gains: list[float] = []
    exact_flags: list[bool] = []
    # Configurations of the batch labels as log P(y^_m | w_s): one empty configuration to start.
    log_lik = torch.zeros(1, S, dtype=torch.float64, device=dev)
    strata: torch.Tensor | None = None                  # sampled regime: the w_s each y^_m came from
    saturated_at: int | None = None
    for t in range(n):
        if t > 0:
            last = chosen[-1]
            if strata is None and K ** len(chosen) <= limit:
                log_lik = _extend_exact(log_lik, torch.log(mc_probs[:, last, :].to(torch.float64)))
            elif strata is None:  # leave the exact regime: draw M configurations of the whole batch
                strata = torch.arange(S, device=dev).repeat_interleave(per_sample)
                log_lik = torch.zeros(M, S, dtype=torch.float64, device=dev)
                for i in chosen:
                    log_lik = _extend_sampled(log_lik, strata, mc_probs[:, i, :], rng)
            else:                 # extend each sampled configuration by a draw of the new label
                log_lik = _extend_sampled(log_lik, strata, mc_probs[:, last, :], rng)
        configs = _exact_configs(log_lik) if strata is None else _sampled_configs(log_lik, strata)
        if strata is not None and _saturated(configs):
            # Every gain estimate is exactly zero: a tie among all live candidates. Checked at
            # every step, since a drawn label could in principle move a posterior off its sample.
            saturated_at = t if saturated_at is None else saturated_at
            live = torch.nonzero(bound > -math.inf).flatten()
            idx = int(live[int(rng.integers(live.numel()))] if ties == "random" else live[0])
            gain = 0.0
        else:
            screen = None if strata is None or screen_rows is None else \
                _sampled_configs(log_lik[screen_rows], strata[screen_rows])
            idx, gain = _greedy_step(mc_probs, aleatoric, configs, bound, lazy, work, screen)
        chosen.append(idx)
        gains.append(gain)
        exact_flags.append(configs.exact)
        bound[idx] = -math.inf
    if saturated_at is not None:
        how = "drawn uniformly at random" if ties == "random" else "taken in index order"
        warnings.warn(f"BatchBALD saturated after {saturated_at} of {n} picks: every sampled label "
                      f"configuration identifies its parameter sample, so the joint mutual information "
                      f"(at most ln S = {math.log(S):.2f} nats for S = {S} samples) could grow no further "
                      f"and the remaining picks were ties, {how}; more MC samples or a smaller batch "
                      f"keep the whole batch informed", BatchBALDSaturationWarning, stacklevel=2)
    return BatchBALDResult(np.asarray(chosen, dtype=np.int64), np.asarray(gains, dtype=np.float64),
                           np.asarray(exact_flags, dtype=bool), saturated_at)


def _saturated(configs: _Configs) -> bool:
    """Whether every sampled configuration is a point mass on the sample it was drawn from: then
    H[q_mx] = H[p_{s_m}(y_x)] for every m and the gain estimate of every candidate is exactly 0."""
    if configs.posterior.shape[0] or configs.pooled is None:
        return False
    pooled = configs.pooled
    return bool(torch.count_nonzero(pooled) == torch.count_nonzero(torch.diagonal(pooled)))


class _Configs(NamedTuple):
    """Configurations of the batch labels, as a greedy step consumes them."""

    posterior: torch.Tensor   # (M', S) pi_s(y^_m) of the configurations evaluated one by one
    weights: torch.Tensor     # (M',) exact: P(y^_m); sampled: 1/M
    exact: bool
    strata: torch.Tensor | None = None   # (M',) sampled: the sample each configuration was drawn from
    pooled: torch.Tensor | None = None   # (S, S) sampled: weight of point-mass configurations, [on, from]
    n_sampled: int = 0                   # sampled: M


def _exact_configs(log_lik: torch.Tensor) -> _Configs:
    """All configurations, weighted by P(y^) = (1/S) sum_s P(y^ | w_s); float64."""
    S = log_lik.shape[1]
    weights = (torch.logsumexp(log_lik, dim=1) - math.log(S)).exp()
    return _Configs(torch.softmax(log_lik, dim=1), weights, True)


def _sampled_configs(log_lik: torch.Tensor, strata: torch.Tensor) -> _Configs:
    """M sampled configurations of weight 1/M; those whose posterior is a point mass (within
    1e-9) are pooled by (the sample they sit on, the sample they were drawn from)."""
    M, S = log_lik.shape
    post = torch.softmax(log_lik, dim=1)
    top, on = post.max(dim=1)
    pooled = top >= 1.0 - _POINT_MASS
    pairs = torch.bincount(on[pooled] * S + strata[pooled], minlength=S * S).reshape(S, S)
    rest = post[~pooled]
    rest = rest.masked_fill_(rest < _FLOAT32_FLOOR, 0.0).to(torch.float32)
    weights = torch.full((rest.shape[0],), 1.0 / M, dtype=torch.float64, device=log_lik.device)
    return _Configs(rest, weights, False, strata[~pooled], pairs.to(torch.float64) / M, M)


def _extend_exact(log_lik: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """All configurations of the batch extended by every label of one more item.

    ``log_lik`` (M, S) holds log P(y^_m | w_s); ``log_p`` (S, K) holds log p(y = c | w_s).
    Returns (M', S) with M' <= M K: configurations of probability zero are dropped.
    """
    M, S = log_lik.shape
    out = (log_lik[:, None, :] + log_p.T[None, :, :]).reshape(M * log_p.shape[1], S)
    keep = torch.isfinite(out).any(dim=1)
    return out if bool(keep.all()) else out[keep]


def _extend_sampled(log_lik: torch.Tensor, strata: torch.Tensor, p: torch.Tensor,
                    rng: np.random.Generator) -> torch.Tensor:
    """Extend each sampled configuration by a label drawn from its own parameter sample.

    Configuration m was drawn from P(. | w_{s_m}); its new label is drawn from p(y | w_{s_m}) by
    inverting the CDF at a uniform from ``rng`` (the same in distribution as resampling the whole
    configuration). Returns log P(y^_m, y_new | w_s) for every s, shape (M, S).
    """
    M = log_lik.shape[0]
    p64 = p.to(torch.float64)                                                 # (S, K)
    cdf = torch.cumsum(p64, dim=1)[strata]                                    # (M, K)
    u = torch.from_numpy(rng.random(M)).to(cdf.device) * cdf[:, -1]
    labels = torch.searchsorted(cdf, u[:, None], right=True)[:, 0].clamp_max_(p.shape[1] - 1)
    return log_lik + torch.log(p64.T[labels])                                 # (M, S)


def _block_gains(configs: _Configs, probs_block: torch.Tensor, aleatoric: torch.Tensor,
                 work: _Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """Gains I(y_x; w | y_A) of a block of candidates and their standard errors (0 when exact).

    The configurations are processed in tiles of about 2^18 (configuration, class, candidate)
    elements, so that the product, its logarithm and the class sums stay in cache.
    """
    S, B, K = probs_block.shape
    posterior, w = configs.posterior, configs.weights
    p = _class_major(probs_block.to(posterior.dtype))
    h_s = entropy(probs_block, dim=2)                                         # H[p_s(y_x)], (S, B)
    gain = torch.zeros(B, dtype=torch.float64, device=p.device)
    second = torch.zeros(B, dtype=torch.float64, device=p.device)
    tile = max(1, _TILE_ELEMENTS // (K * B))
    for start in range(0, posterior.shape[0], tile):
        h = _entropies(posterior[start:start + tile], p, K, work)            # (tile, B)
        w_t = w[start:start + tile]
        if configs.exact:
            gain += w_t @ h
            continue
        # Relative to the sample each configuration was drawn from: d_m = H[q_mx] - H[p_{s_m}(y_x)].
        d = h.sub_(h_s.index_select(0, configs.strata[start:start + tile]))
        gain += w_t @ d
        second += w_t @ d.mul_(d)
    if configs.exact:
        return gain - aleatoric, torch.zeros_like(gain)
    on, frm = torch.nonzero(configs.pooled, as_tuple=True)                    # point-mass configurations
    if on.numel():
        pw = configs.pooled[on, frm]
        d_pooled = h_s[on] - h_s[frm]                                         # (pairs, B)
        gain += pw @ d_pooled
        second += pw @ (d_pooled * d_pooled)
    se = ((second - gain * gain).clamp_min(0.0) / configs.n_sampled).sqrt()
    return gain, se


def _greedy_step(mc_probs: torch.Tensor, aleatoric: torch.Tensor, configs: _Configs, bound: torch.Tensor,
                 lazy: bool, work: _Workspace, screen: _Configs | None = None) -> tuple[int, float]:
    """One greedy step: the candidate of largest conditional MI (ties: lowest index).

    Every live candidate has a priority, an upper bound on its gain: its bound from earlier
    steps, tightened (sampled regime, with ``screen``) by an estimate on a subset of the
    configurations plus four standard errors of the difference to the full estimate. Blocks of
    the highest-priority candidates are screened or evaluated in full until, with ``lazy``, the
    best full gain beats every remaining priority. Updates ``bound`` in place.
    """
    K = mc_probs.shape[2]
    live = bound > -math.inf
    prio = bound.clone()
    level = torch.zeros_like(bound, dtype=torch.int8)        # 0: stale bound, 1: screened, 2: evaluated
    if screen is None or not lazy:
        level[:] = 1
    full_block = _block_size(configs.posterior.shape[0], K, _BLOCK)
    screen_block = full_block if screen is None else _block_size(screen.posterior.shape[0], K, _SCREEN_BLOCK)
    best_gain, best_idx = -math.inf, -1
    while True:
        open_ = live & (level < 2)
        if not bool(open_.any()):
            break
        head = int(torch.where(open_, prio, -math.inf).argmax())
        if lazy and best_gain > float(prio[head]):
            break
        lvl = int(level[head])
        same = torch.where(open_ & (level == lvl), prio, -math.inf)
        size = min(screen_block if lvl == 0 else full_block, int(open_.sum()))
        cand = torch.topk(same, size).indices
        cand = cand[same[cand] > -math.inf]
        if lvl == 0:  # screen: a cheap estimate bounds what the full estimate can be
            g, se = _block_gains(screen, mc_probs.index_select(1, cand), aleatoric[cand], work)
            shrink = math.sqrt(max(0.0, 1.0 - screen.n_sampled / configs.n_sampled))
            ucb = g + _LAZY_SE_MARGIN * se * shrink
            prio[cand] = torch.minimum(prio[cand], ucb)
            bound[cand] = prio[cand]
            level[cand] = 1
            continue
        g, se = _block_gains(configs, mc_probs.index_select(1, cand), aleatoric[cand], work)
        bound[cand] = g + (_EXACT_SLACK if configs.exact else _LAZY_SE_MARGIN * se)
        prio[cand] = g
        level[cand] = 2
        top = g.max()
        top_gain = float(top)
        if top_gain >= best_gain:
            top_idx = int(cand[g == top].min())
            if top_gain > best_gain or top_idx < best_idx:
                best_gain, best_idx = top_gain, top_idx
    return best_idx, best_gain


def _block_size(M: int, K: int, least: int) -> int:
    """Candidates per block: ``least``, or more while one tile holds all M configurations."""
    return max(least, _TILE_ELEMENTS // (max(M, 1) * K))


class _Workspace:
    """Flat buffers reused from block to block (no fresh allocation per block)."""

    def __init__(self) -> None:
        self._bufs: dict[int, torch.Tensor] = {}

    def take(self, slot: int, numel: int, like: torch.Tensor) -> torch.Tensor:
        buf = self._bufs.get(slot)
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(max(numel, _TILE_ELEMENTS), dtype=like.dtype, device=like.device)
            self._bufs[slot] = buf
        return buf[:numel]
