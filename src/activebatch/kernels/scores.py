"""Per-candidate informativeness scores and top-n ranking: pure tensor functions.

Each score maps model outputs to one value per candidate. Shapes are in the argument names:
``probs_N_K`` (softmax outputs of N candidates over K classes), ``mc_probs_S_N_K`` (S stochastic
passes or committee members), ``embeddings_N_d``. Scores are float64 unless noted.

On CPU tensors the scores that need logarithms, partitions or float64 accumulation are computed
in row blocks with numpy (whose vectorised ``log`` is several times faster than torch's on CPU):
each block is converted while it is in cache, so no float64 copy of the whole input is made, and
the blocks are shared among ``torch.get_num_threads()`` threads (the result does not depend on
their number). Sums accumulate in float64; the logarithms of float32 probabilities are taken in
float32 (the entropies are then exact to ~1e-7 of their value, the precision of the input), except
for BALD and the KL divergence, small differences of entropies, which stay in float64 throughout.
Tensors on other devices take the torch path, which computes the same values up to rounding.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = ["entropy", "least_confidence_scores", "margin_scores", "entropy_scores", "mc_mean",
           "var_ratio_scores", "mean_std_scores", "vote_entropy_scores", "consensus_entropy_scores",
           "kl_divergence_scores", "egl_scores", "top_n", "SAMPLINGS", "sampling_log_weights",
           "sample_without_replacement", "mean_variance_scores"]


# CPU row blocks -------------------------------------------------------------------------------------
#: Elements (rows x values per row) of one block of the CPU scores: its float64 copy and
#: temporaries (1 MiB each) stay in cache and are recycled by the allocator rather than mapped
#: afresh, and the blocks are large enough that the Python work per block is negligible.
_BLOCK_ELEMENTS = 1 << 17
#: Below this many elements a score runs in the calling thread (no thread pool).
_THREADED_ELEMENTS = 1 << 21
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def _cpu_array(t: torch.Tensor) -> np.ndarray | None:
    """The numpy view of a CPU tensor of a numpy float dtype; None where the torch path must run."""
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu" or t.dtype not in _NUMPY_FLOATS:
        return None
    return t.detach().numpy()


def _map_rows(fn: Callable[[int, int], np.ndarray], n_rows: int, row_elements: int,
              dtype: type = np.float64) -> torch.Tensor:
    """``fn(start, stop)`` over blocks of rows, concatenated into a tensor of shape (n_rows,).

    Blocks are independent, so the result does not depend on the number of threads.
    """
    out = np.empty(n_rows, dtype=dtype)
    rows = max(1, _BLOCK_ELEMENTS // max(row_elements, 1))
    starts = range(0, n_rows, rows)

    def run(start: int) -> None:
        stop = min(start + rows, n_rows)
        out[start:stop] = fn(start, stop)

    workers = min(torch.get_num_threads(), len(starts))
    if workers > 1 and n_rows * row_elements >= _THREADED_ELEMENTS:
        # numpy releases the GIL inside its loops, so the blocks run in parallel
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    return torch.from_numpy(out)


def _plogp_sum(q: np.ndarray) -> np.ndarray:
    """sum p log p over the last axis, accumulated in float64 (0 log 0 = 0; NaN stays NaN).

    Float64 input takes float64 logarithms. Float16/float32 input takes them in float32 (about
    twice as fast): each term p log p is then off by a few float32 ulps of itself, so the sum by
    ~1e-7 of its value, the precision that float32 probabilities carry anyway.

    The terms are formed without masking zeros (a masked or clamped pass would cost as much as
    the logarithm); the rows where 0 log 0 made NaN, and only those, are done again with log p
    clamped at the smallest normal number, whose term at p = 0 is 0. (A negative entry is not
    flagged here: the public checks refuse such probabilities before any score is computed.)
    """
    work = q if q.dtype == np.float64 else q.astype(np.float32, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.log(work)
        terms *= work
    out = _last_axis_sum(terms)
    redo = np.isnan(out)
    if redo.any():
        rows = work[redo]
        out[redo] = _last_axis_sum(np.log(np.maximum(rows, np.finfo(rows.dtype).tiny)) * rows)
    return out


def _last_axis_sum(a: np.ndarray) -> np.ndarray:
    """Sums over the last axis in float64 (einsum's loop: 2-4x faster than ``sum`` over short rows)."""
    return np.einsum("...k->...", a, dtype=np.float64)


def _rows_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of an (B, K) block (see :func:`_plogp_sum` for the precision)."""
    return -_plogp_sum(p)


def _mutual_information(x: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """Per candidate block of an (S, N, K) array: H[mean_s p_s] - mean_s H[p_s], float64."""
    def block(start: int, stop: int) -> np.ndarray:
        # float64 throughout: the score is a small difference of two entropies
        q = x[:, start:stop].astype(np.float64)                       # (S, B, K)
        return _plogp_sum(q).mean(axis=0) - _plogp_sum(q.mean(axis=0))
    return block


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy -sum p log p in nats along ``dim`` (0 log 0 = 0), in float64."""
    p = p.to(torch.float64)
    return -torch.special.xlogy(p, p).sum(dim=dim)


# Scores on one predictive distribution -------------------------------------------------------------
def least_confidence_scores(probs_N_K: torch.Tensor) -> torch.Tensor:
    """max_k p_k (smaller = more uncertain), shape (N,), in the input's dtype.

    Settles, "Active Learning Literature Survey" (2009), section 3.1.
    """
    # amax: a plain reduction, several times faster on CPU than max(), which also finds the argmax
    return probs_N_K.amax(dim=1)


def margin_scores(probs_N_K: torch.Tensor) -> torch.Tensor:
    """p_(1) - p_(2), the gap between the two largest probabilities (smaller = more uncertain).

    Roth & Small (ECML 2006); shape (N,), in the input's dtype.
    """
    x = _cpu_array(probs_N_K)
    if x is None:
        top2 = probs_N_K.topk(2, dim=1).values
        return top2[:, 0] - top2[:, 1]
    K = x.shape[1]

    def block(start: int, stop: int) -> np.ndarray:
        # after the partition the last two columns hold p_(2) and p_(1) (a tie gives 0)
        part = np.partition(x[start:stop], K - 2, axis=1)
        return part[:, K - 1] - part[:, K - 2]
    return _map_rows(block, x.shape[0], K, x.dtype.type)


def entropy_scores(probs_N_K: torch.Tensor) -> torch.Tensor:
    """Predictive entropy -sum_k p_k log p_k in nats (larger = more uncertain), shape (N,), float64."""
    x = _cpu_array(probs_N_K)
    if x is None:
        return entropy(probs_N_K, dim=1)
    return _map_rows(lambda a, b: _rows_entropy(x[a:b]), x.shape[0], x.shape[1])


# Scores on S samples of the predictive (MC dropout or committee members) -----------------------
def mc_mean(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """The MC-averaged predictive (1/S) sum_s p_s, shape (N, K), float64."""
    return mc_probs_S_N_K.to(torch.float64).mean(dim=0)


def var_ratio_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Variation ratio 1 - max_k mean_s p_s(k) (larger = more uncertain), shape (N,).

    Freeman (1965), as used by Gal, Islam & Ghahramani (ICML 2017), section 3.
    """
    return 1.0 - mc_mean(mc_probs_S_N_K).max(dim=1).values


def mean_std_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Mean standard deviation (1/K) sum_k sqrt(E_s[p_s(k)^2] - E_s[p_s(k)]^2), shape (N,).

    The standard deviation is over the S samples (population form, 1/S), as in Kampffmeyer,
    Salberg & Jenssen (CVPR Workshops 2016).
    """
    p = mc_probs_S_N_K.to(torch.float64)
    mean = p.mean(dim=0)
    var = ((p * p).mean(dim=0) - mean * mean).clamp_min(0.0)
    return var.sqrt().mean(dim=1)


def mean_variance_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Mean variance (1/K) sum_k Var_s[p_s(k)] over the S samples (population form, 1/S), shape (N,).

    The disagreement of a bootstrap committee of Yang, Zhang, Chen, Zhang & Chen ("Suggestive
    Annotation", MICCAI 2017): the variance of the members' probabilities. For two classes it is
    the variance of p(class 1), the paper's per-pixel uncertainty.
    """
    p = mc_probs_S_N_K.to(torch.float64)
    mean = p.mean(dim=0)
    return (p - mean).square().mean(dim=0).mean(dim=1)


def vote_entropy_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Vote entropy -sum_y V(y)/C log(V(y)/C), shape (N,), float64 (nats).

    V(y) counts the members whose most probable class is y (ties in a member's probabilities go
    to the lowest class index). Dagan & Engelson, "Committee-Based Sampling for Training
    Probabilistic Classifiers", ICML 1995.
    """
    C, N, K = mc_probs_S_N_K.shape
    x = _cpu_array(mc_probs_S_N_K)
    if x is None:
        votes = torch.nn.functional.one_hot(mc_probs_S_N_K.argmax(dim=2), K).sum(dim=0).to(torch.float64)
        return entropy(votes / C, dim=1)

    def block(start: int, stop: int) -> np.ndarray:
        winner = x[:, start:stop].argmax(axis=2)                       # (C, B), ties to the lowest class
        B = stop - start
        votes = np.bincount((winner + K * np.arange(B)).ravel(), minlength=B * K).reshape(B, K)
        share = votes / C
        # classes without votes: log(1/C) is finite and their term 0 x log(1/C) is exactly 0
        return -(share * np.log(np.maximum(share, 1.0 / C))).sum(axis=1)
    return _map_rows(block, N, C * K)


def consensus_entropy_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Entropy of the consensus distribution P_C = mean over members, shape (N,), float64.

    The "soft" vote entropy of Settles (2009), eq. 3.2 with the consensus probability.
    """
    x = _cpu_array(mc_probs_S_N_K)
    if x is None:
        return entropy(mc_mean(mc_probs_S_N_K), dim=1)
    # the consensus of float32 members in float32 (a mean of S values is off by a few ulps)
    consensus = x.mean(axis=0)
    return _map_rows(lambda a, b: _rows_entropy(consensus[a:b]), x.shape[1], x.shape[2])


def kl_divergence_scores(mc_probs_S_N_K: torch.Tensor) -> torch.Tensor:
    """Mean KL divergence of each member from the consensus, 1/C sum_c KL(P_c || P_C), shape (N,).

    McCallum & Nigam, "Employing EM and Pool-Based Active Learning for Text Classification",
    ICML 1998. It equals H(P_C) - mean_c H(P_c), the mutual information that BALD estimates
    from dropout samples; on CPU it is computed in that form (the same value up to rounding).
    """
    x = _cpu_array(mc_probs_S_N_K)
    if x is not None:
        kl = _map_rows(_mutual_information(x), x.shape[1], x.shape[0] * x.shape[2])
        return kl.clamp_min_(0.0)
    p = mc_probs_S_N_K.to(torch.float64)
    consensus = p.mean(dim=0, keepdim=True)
    kl = (torch.special.xlogy(p, p) - torch.special.xlogy(p, consensus)).sum(dim=2)   # (C, N)
    return kl.mean(dim=0).clamp_min(0.0)


# Gradient length ----------------------------------------------------------------------------------
def egl_scores(probs_N_K: torch.Tensor, embeddings_N_d: torch.Tensor, *, bias: bool = False) -> torch.Tensor:
    """Expected final-layer gradient length sum_y p_y ||grad_W l(x, y)||, shape (N,), float64.

    For the cross-entropy loss of a final linear layer W (K x d) on the embedding z, the
    gradient for label y is (p - e_y) (outer) z, whose Frobenius norm is |p - e_y| |z|, and
    |p - e_y|^2 = |p|^2 - 2 p_y + 1. So the expectation over y ~ p costs O(N (K + d)), with no
    backward pass.

    Parameters
    ----------
    probs_N_K : tensor of shape (N, K)
    embeddings_N_d : tensor of shape (N, d)
    bias : bool, default False
        Include the bias of the final layer (its gradient is p - e_y), so |z| becomes
        sqrt(|z|^2 + 1).
    """
    xp, xz = _cpu_array(probs_N_K), _cpu_array(embeddings_N_d)
    if xp is not None and xz is not None:
        K, d = xp.shape[1], xz.shape[1]

        def block(start: int, stop: int) -> np.ndarray:
            q = xp[start:stop].astype(np.float64)
            u_sq = np.einsum("ik,ik->i", q, q)[:, None] - 2.0 * q + 1.0      # |p - e_y|^2
            u = np.sqrt(np.maximum(u_sq, 0.0, out=u_sq), out=u_sq)
            zb = xz[start:stop].astype(np.float64)
            z_sq = np.einsum("id,id->i", zb, zb)
            return np.einsum("ik,ik->i", q, u) * np.sqrt(z_sq + 1.0 if bias else z_sq)
        return _map_rows(block, xp.shape[0], K + d)
    p = probs_N_K.to(device=embeddings_N_d.device, dtype=torch.float64)
    z = embeddings_N_d.to(torch.float64)
    u_norm = ((p * p).sum(dim=1, keepdim=True) - 2.0 * p + 1.0).clamp_min(0.0).sqrt()   # (N, K): |p - e_y|
    z_sq = (z * z).sum(dim=1)
    z_norm = (z_sq + 1.0).sqrt() if bias else z_sq.sqrt()
    return (p * u_norm).sum(dim=1) * z_norm


# Ranking ------------------------------------------------------------------------------------------
def top_n(scores_N: torch.Tensor | np.ndarray, n: int, *, largest: bool) -> np.ndarray:
    """Positions of the n best scores, best first; ties go to the lowest position.

    A partition finds the n-th best value in O(N); only the candidates at least that good are
    sorted (O(n log n)), so a batch of 100 from a million scores never sorts the million.

    Parameters
    ----------
    scores_N : tensor or array of shape (N,)
    n : int
        1 <= n <= N.
    largest : bool
        Whether larger scores are better.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    s = scores_N.detach().cpu().numpy() if isinstance(scores_N, torch.Tensor) else np.asarray(scores_N)
    key = -s if largest else s          # smaller key = better
    N = key.shape[0]
    if n >= N:
        return np.argsort(key, kind="stable").astype(np.int64)
    kth = key[np.argpartition(key, n - 1)[n - 1]]
    better = np.flatnonzero(key < kth)
    tied = np.flatnonzero(key == kth)[: n - better.size]   # lowest positions among the ties
    chosen = np.concatenate([better, tied])
    return chosen[np.argsort(key[chosen], kind="stable")].astype(np.int64)


# Stochastic batch acquisition ---------------------------------------------------------------------
#: The batch-sampling rules of Kirsch et al. (TMLR 2023), and top-k.
SAMPLINGS = ("topk", "power", "softmax", "softrank")


def sampling_log_weights(acquisition_N: np.ndarray, sampling: str, beta: float) -> np.ndarray:
    """log w_i of the stochastic acquisition rules of Kirsch, Farquhar, Atighehchian, Jesson,
    Branchaud-Charron & Gal, "Stochastic Batch Acquisition: A Simple Baseline for Deep Active
    Learning", TMLR 2023 (section 3): larger acquisition scores a_i are better, and

    - ``"softmax"``: w_i = exp(beta a_i);
    - ``"power"``: w_i = a_i^beta (a_i >= 0; a zero weight is never drawn before every positive one);
    - ``"softrank"``: w_i = r_i^(-beta), r_i the rank of a_i (1 for the best; ties to the lowest position).

    Parameters
    ----------
    acquisition_N : array of shape (N,)
        The acquisition scores, larger = more informative.
    sampling : {"power", "softmax", "softrank"}
    beta : float
        The inverse temperature (the paper's default is 1).

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    a = np.asarray(acquisition_N, dtype=np.float64)
    if sampling == "softmax":
        return beta * a
    if sampling == "power":
        if (a < 0).any():
            raise ValueError(f"power sampling needs non-negative acquisition scores; the smallest is {a.min():.6g}")
        with np.errstate(divide="ignore"):
            return beta * np.log(a)
    if sampling == "softrank":
        ranks = np.empty(a.size)
        ranks[np.argsort(-a, kind="stable")] = np.arange(1, a.size + 1)
        return -beta * np.log(ranks)
    raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS[1:])}; got {sampling!r}")


def sample_without_replacement(log_weights_N: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n positions drawn without replacement with probabilities proportional to w = exp(log_weights).

    Gumbel-top-k (Kool, van Hoof & Welling, ICML 2019): the n largest keys log w_i + G_i with G_i
    i.i.d. standard Gumbel are, in order, an exact sample of successive sampling without
    replacement (the first pick has probability w_i / sum w, the next w_j / (sum w - w_i), ...).
    Items of zero weight (log w = -inf) come after every positive one, in uniform random order.

    Returns
    -------
    ndarray of int64, shape (n,)
        The picks in the order drawn.
    """
    lw = np.asarray(log_weights_N, dtype=np.float64)
    g = rng.gumbel(size=lw.shape)
    keys = lw + g                                  # -inf stays -inf for zero weights
    positive = np.isfinite(lw)
    # primary: positive weights by key; then zero weights by their Gumbel noise alone
    order = np.lexsort((-g, -np.where(positive, keys, -np.inf), ~positive))
    return order[:n].astype(np.int64)
