"""BatchBALD selection: activebatch's kernel vs a plain implementation of the published algorithm.

The plain implementation follows the structure of the authors' reference code for Kirsch, van
Amersfoort & Gal (NeurIPS 2019): greedy acquisition of the candidate with the largest
H(y_1..y_{t-1}, y_x) - H(y_x | w); exact joint entropies while the batch so far has at most
``num_samples`` label configurations (K^(t-1) <= 40,000), then Monte-Carlo joint entropies from
40,000 configurations resampled for the whole batch at every step; one (M x S) @ (S x K) product
per candidate and float64 throughout. Our kernel (:func:`activebatch.kernels.greedy_batchbald`) computes
the same quantities vectorised over blocks of candidates, extends its sampled configurations
incrementally and evaluates lazily (Minoux's accelerated greedy, exact by submodularity).

Each (implementation, N, S) runs in a fresh child process (one torch thread) so that peak memory
(max RSS above the process after loading the inputs) is measured per implementation. Greedy
selection of b = 100 begins with the selection of b = 10 and b = 50, so every child runs the
largest batch once and reports the elapsed time and peak memory when it reaches each b.
Plain runs that exceed ``--cap`` seconds stop there; their remaining steps are extrapolated at
the mean time of the Monte-Carlo steps measured so far (marked ``~`` in the table; a lower bound,
since later steps resample larger batches), and their memory is measured in another fresh process
that runs one Monte-Carlo step of the plain implementation at that batch size (also marked ``~``).
"exact picks" is the number of picks made with exact joint entropies (the same in both); "same
exact picks" compares them; "same picks" counts shared picks of the whole batch (the Monte-Carlo
steps draw different configurations in the two implementations). A line after the table names the
batches in which our kernel saturated (every sampled configuration identifying its MC sample; the
remaining picks are ties drawn at random, with no evaluation).

    python benchmarks/batchbald.py                # the full table (about an hour on 2 cores)
    python benchmarks/batchbald.py --quick        # N = 1,000, S = 20 only
    python benchmarks/batchbald.py --cases 10000x20,10000x100
"""
from __future__ import annotations

import argparse
import math
import resource
import time

from _harness import in_child, write_json

NUM_SAMPLES = 40_000


# -- inputs ------------------------------------------------------------------------------------

def _data(n: int, s: int, k: int, d: int = 64, seed: int = 0):
    """MC-dropout outputs of a random linear head on clustered ReLU embeddings.

    Returns mc_probs of shape (S, N, K), float64: p_s(y | x_n) = softmax(W (m_s * z_n) / (1 - q))
    with S consistent Bernoulli dropout masks m_s (q = 0.5) on d-dimensional embeddings z_n drawn
    around 2K cluster centres, so that candidates come in groups of correlated predictions.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2 * k, d))
    z = np.maximum(centres[rng.integers(2 * k, size=n)] + 0.7 * rng.normal(size=(n, d)), 0.0)
    w = rng.normal(scale=1.5 / math.sqrt(d), size=(k, d))
    masks = (rng.random(size=(s, d)) >= 0.5) / 0.5
    logits = np.einsum("sd,nd,kd->snk", masks, z, w)
    logits -= logits.max(axis=2, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=2, keepdims=True)


# -- the plain implementation --------------------------------------------------------------------

def _conditional_entropy_B(probs_B_K_C):
    """mean_k H[p(y | w_k)] per candidate, float64."""
    import torch

    return -torch.special.xlogy(probs_B_K_C, probs_B_K_C).sum(dim=(1, 2)) / probs_B_K_C.shape[1]


def _exact_joint_probs_M_K(probs_N_K_C, prev_joint_probs_M_K=None):
    """P(y^_m | w_k) for every configuration of the given items (appended to ``prev``)."""
    N, K, C = probs_N_K_C.shape
    prev = None if prev_joint_probs_M_K is None else prev_joint_probs_M_K.t()[:, :, None]
    for i in range(N):
        i_K_1_C = probs_N_K_C[i][:, None, :]
        joint_K_M_C = i_K_1_C if prev is None else prev * i_K_1_C
        prev = joint_K_M_C.reshape((K, -1, 1))
    return prev.squeeze(2).t()


def _exact_batch(probs_B_K_C, prev_joint_probs_M_K):
    """H(y_A, y_x) for each candidate x, from all configurations of y_A."""
    import torch

    B, K, C = probs_B_K_C.shape
    M = prev_joint_probs_M_K.shape[0]
    joint_B_M_C = torch.empty((B, M, C), dtype=torch.float64)
    for i in range(B):
        torch.matmul(prev_joint_probs_M_K, probs_B_K_C[i], out=joint_B_M_C[i])
    joint_B_M_C /= K
    out = torch.zeros(B, dtype=torch.float64)
    for start in range(0, B, 256):
        j = joint_B_M_C[start:start + 256]
        out[start:start + 256] = torch.sum(-j * torch.log(j), dim=(1, 2))
    return out


def _sample_M_K(probs_N_K_C, S_per_w):
    """P(y^_m | w_k) for M = K * S_per_w configurations, S_per_w drawn from each w_k."""
    import torch

    N, K, C = probs_N_K_C.shape
    choices_N_K_S = torch.multinomial(probs_N_K_C.reshape(-1, C), S_per_w, replacement=True)
    choices_N_K_S = choices_N_K_S.reshape(N, K, S_per_w)
    expanded_choices_N_1_K_S = choices_N_K_S[:, None, :, :].expand(N, K, K, S_per_w)
    expanded_probs_N_K_1_C = probs_N_K_C[:, :, None, :].expand(N, K, K, C)
    probs_N_K_K_S = torch.gather(expanded_probs_N_K_1_C, -1, expanded_choices_N_1_K_S)
    probs_K_K_S = torch.exp(torch.sum(torch.log(probs_N_K_K_S), dim=0))
    return probs_K_K_S.reshape(K, -1).t()


def _sampled_batch(probs_B_K_C, samples_M_K):
    """Monte-Carlo H(y_A, y_x): mean over sampled y^ of sum_c -P(y^, c) log P(y^, c) / P(y^)."""
    import torch

    B, K, C = probs_B_K_C.shape
    M = samples_M_K.shape[0]
    p_B_M_C = torch.empty((B, M, C), dtype=torch.float64)
    for i in range(B):
        torch.matmul(samples_M_K, probs_B_K_C[i], out=p_B_M_C[i])
    p_B_M_C /= K
    q_1_M_1 = samples_M_K.mean(dim=1, keepdim=True)[None]
    out = torch.zeros(B, dtype=torch.float64)
    for start in range(0, B, 256):
        p = p_B_M_C[start:start + 256]
        out[start:start + 256] = torch.sum(-torch.log(p) * p / q_1_M_1, dim=(1, 2)) / M
    return out


def plain_batchbald(probs_N_K_C, b, *, num_samples=NUM_SAMPLES, chunk=16, on_step=None, seed=0):
    """Greedy BatchBALD as published: returns the chosen indices in order.

    ``probs_N_K_C`` is (N, S, K) float64. ``on_step(t, indices)`` is called after each pick and
    may return True to stop early.
    """
    import torch

    torch.manual_seed(seed)
    N, K, C = probs_N_K_C.shape
    S_per_w = num_samples // K
    M = S_per_w * K
    cond_B = _conditional_entropy_B(probs_N_K_C)
    scores_B = -cond_B + _conditional_entropy_B(probs_N_K_C.mean(dim=1, keepdim=True))  # BALD
    bag: list[int] = []
    prev_joint = None
    for i in range(b):
        if i > 0:
            joint_B = torch.empty(N, dtype=torch.float64)
            if C ** i <= M:
                prev_joint = _exact_joint_probs_M_K(probs_N_K_C[bag[-1]][None], prev_joint)
                for start in range(0, N, chunk):
                    joint_B[start:start + chunk] = _exact_batch(probs_N_K_C[start:start + chunk], prev_joint)
            else:
                prev_joint = None
                samples_M_K = _sample_M_K(probs_N_K_C[bag], S_per_w)
                for start in range(0, N, chunk):
                    joint_B[start:start + chunk] = _sampled_batch(probs_N_K_C[start:start + chunk], samples_M_K)
            scores_B = joint_B - cond_B
        scores_B[bag] = -math.inf
        bag.append(int(scores_B.argmax()))
        if on_step is not None and on_step(i + 1, bag):
            break
    return bag


# -- measurement ---------------------------------------------------------------------------------

def _child(impl: str, n: int, s: int, k: int, bs: list[int], cap: float, out) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import warnings

    from activebatch.kernels import BatchBALDSaturationWarning, greedy_batchbald

    warnings.simplefilter("ignore", BatchBALDSaturationWarning)   # reported after the table instead

    mc = torch.from_numpy(_data(n, s, k))
    rows: dict[int, dict] = {}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if impl == "ours":
        for b in bs:
            t0 = time.perf_counter()
            res = greedy_batchbald(mc, b, np.random.default_rng(0), num_samples=NUM_SAMPLES)
            secs = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            rows[b] = {"seconds": secs, "mib": max(peak - base, 0) / 1024, "selection": res.indices.tolist(),
                       "n_exact": int(res.exact.sum()), "capped": False, "saturated_at": res.saturated_at}
    else:
        probs_N_K_C = mc.permute(1, 0, 2).contiguous()
        n_exact = sum(1 for i in range(max(bs)) if i == 0 or k ** i <= (NUM_SAMPLES // s) * s)
        t0 = time.perf_counter()
        stamps: list[float] = []

        def on_step(t, bag):
            now = time.perf_counter() - t0
            stamps.append(now)
            if t in bs:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                rows[t] = {"seconds": now, "mib": max(peak - base, 0) / 1024, "selection": list(bag),
                           "n_exact": min(n_exact, t), "capped": False}
            return now > cap and len(stamps) > n_exact + 1

        bag = plain_batchbald(probs_N_K_C, max(bs), on_step=on_step)
        done = len(stamps)
        if done < max(bs):
            sampled = np.diff(stamps[n_exact - 1:])  # durations of the Monte-Carlo steps
            per_step = float(sampled.mean())
            for b in bs:
                if b not in rows:
                    rows[b] = {"seconds": stamps[-1] + (b - done) * per_step, "mib": None,
                               "selection": None, "partial_selection": list(bag), "n_exact": min(n_exact, b),
                               "capped": True, "measured_steps": done, "seconds_per_mc_step": per_step}
    out.put(rows)


def _plain_step_memory(n: int, s: int, k: int, b: int, out) -> None:
    """Peak memory of one Monte-Carlo step of the plain implementation with b - 1 items in the
    batch: the configurations resampled for the whole batch and one chunk of candidates (the
    largest allocations of that step; the other chunks reuse the same sizes)."""
    import torch

    torch.set_num_threads(1)
    probs_N_K_C = torch.from_numpy(_data(n, s, k)).permute(1, 0, 2).contiguous()
    torch.manual_seed(0)
    bag = torch.randperm(n)[:b - 1]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    samples_M_K = _sample_M_K(probs_N_K_C[bag], NUM_SAMPLES // s)
    _sampled_batch(probs_N_K_C[:16], samples_M_K)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put(max(peak - base, 0) / 1024)


def _measure(impl, n, s, k, bs, cap):
    rows = in_child(_child, impl, n, s, k, bs, cap)
    for b, row in rows.items():
        if row["mib"] is None:   # capped plain run: measure one step at this batch size instead
            row["mib"] = in_child(_plain_step_memory, n, s, k, b)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1,000 and S = 20 only")
    parser.add_argument("--cap", type=float, default=240.0,
                        help="seconds after which a plain run stops and the rest is extrapolated")
    parser.add_argument("--cases", default=None, help="N x S pairs, e.g. 10000x20,10000x100 (default: all)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    k, bs = 10, [10, 50, 100]
    cases = [(1000, 20)] if args.quick else [(1000, 20), (1000, 100), (10000, 20), (10000, 100)]
    if args.cases:
        cases = [tuple(int(v) for v in c.lower().split("x")) for c in args.cases.split(",")]
    rows = []
    print("| N | S | b | ours s | plain s | speed-up | ours MiB | plain MiB | exact picks | same exact picks "
          "| same picks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, s in cases:
        ours = _measure("ours", n, s, k, bs, args.cap)
        plain = _measure("plain", n, s, k, bs, args.cap)
        for b in bs:
            o, p = ours[b], plain[b]
            ne = o["n_exact"]
            picks = p["selection"] if p["selection"] is not None else p["partial_selection"]
            same_exact = str(o["selection"][:ne] == picks[:ne]) if len(picks) >= ne else "—"
            same = "—" if p["selection"] is None else f"{len(set(o['selection']) & set(p['selection']))}/{b}"
            tilde = "~" if p["capped"] else ""
            geq = "~" if p["capped"] else ""
            row = dict(N=n, S=s, K=k, b=b, ours_s=o["seconds"], plain_s=p["seconds"], plain_extrapolated=p["capped"],
                       speedup=p["seconds"] / o["seconds"], ours_mib=o["mib"], plain_mib=p["mib"],
                       exact_picks=ne, same_exact_picks=same_exact, same_picks=same,
                       saturated_at=o["saturated_at"])
            rows.append(row)
            print(f"| {n:,} | {s} | {b} | {o['seconds']:.2f} | {tilde}{p['seconds']:.1f} | "
                  f"{tilde}{row['speedup']:.0f}x | {o['mib']:.0f} | {geq}{p['mib']:.0f} | {ne} | {same_exact} | "
                  f"{same} |", flush=True)
    saturated = [f"N = {r['N']:,}, S = {r['S']}, b = {r['b']}: after {r['saturated_at']} picks"
                 for r in rows if r["saturated_at"] is not None]
    if saturated:   # the rest of those batches were ties, drawn at random without evaluation
        print("\nsaturated (ours): " + "; ".join(saturated))
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
