"""BAIT selection: activebatch's factorised kernel vs the plain materialised computation.

The plain implementation follows the structure of the authors' reference code
(``query_strategies/bait_sampling.py`` in github.com/JordanAsh/badge, Ash et al., NeurIPS 2021):
the Fisher embeddings V_x (K x K d) of every pool item are formed explicitly, the pool's mean
Fisher and the labeled Fisher are sums of V_x^T V_x, and every forward and backward step scores
all candidates through the chain V_x M^{-1} F M^{-1} V_x^T and a K x K inverse (three (K x D) @
(D x D) products per candidate and step, D = K d), then updates M^{-1} by Woodbury. It runs in
float64 with ties to the lowest position, so both implementations should choose the same batch.
Our kernel (:func:`activebatch.kernels.bait.bait_select`) forms no V_x: it keeps two K x K
matrices per candidate and updates them in O(K^2 d) per step.

Each (implementation, case) runs in a fresh child process with one torch thread; peak memory is
the rise of the peak resident set (``VmHWM``, reset through /proc/self/clear_refs) above the
process after it made the inputs. Linux only for the memory column.

    python benchmarks/bait.py --quick     # two small cases (about a minute on one core)
    python benchmarks/bait.py             # adds larger cases (several minutes)
    python benchmarks/bait.py --cases 2000x10x32 --batch 10
"""
from __future__ import annotations

import argparse
import math
import time

from _harness import in_child, reset_peak, set_threads, status_kib, write_json


def _data(n: int, k: int, d: int, n_labeled: int, seed: int = 0):
    """Softmax outputs of a random linear head on clustered ReLU embeddings, candidates and labeled items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2 * k, d))
    w = rng.normal(scale=2.0 / math.sqrt(d), size=(d, k))

    def draw(m):
        z = np.maximum(centres[rng.integers(2 * k, size=m)] + 0.7 * rng.normal(size=(m, d)), 0.0)
        logits = z @ w
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True), z

    p, z = draw(n)
    lp, lz = draw(n_labeled)
    return p, z, lp, lz


# -- the plain implementation ----------------------------------------------------------------------

def _fisher_embeddings(p, z):
    """V_x for every row: (N, K, K d), row k = sqrt(p_k) (e_k - p) (kron) z, float64 torch."""
    import torch

    p = torch.as_tensor(p, dtype=torch.float64)
    z = torch.as_tensor(z, dtype=torch.float64)
    K = p.shape[1]
    u = p.sqrt()[:, :, None] * (torch.eye(K, dtype=torch.float64)[None] - p[:, None, :])    # (N, K, K)
    return (u[:, :, :, None] * z[:, None, None, :]).reshape(p.shape[0], K, -1)


def plain_bait(p, z, lp, lz, n, lamb=1.0, chunk=1000):
    """BAIT with explicit Fisher embeddings and the reference code's chained products; returns the batch."""
    import torch

    V = _fisher_embeddings(p, z)                                                  # (N, K, D)
    Vl = _fisher_embeddings(lp, lz)
    N, L, K, D = V.shape[0], Vl.shape[0], V.shape[1], V.shape[2]
    fisher = torch.zeros(D, D, dtype=torch.float64)
    for part in (V, Vl):
        for s in range(0, part.shape[0], chunk):
            x = part[s:s + chunk]
            fisher += (x.transpose(1, 2) @ x).sum(0)
    fisher /= N + L
    init = (Vl.transpose(1, 2) @ Vl).sum(0) if L else torch.zeros(D, D, dtype=torch.float64)
    inv = torch.linalg.inv(lamb * torch.eye(D, dtype=torch.float64) + init / (L + n))
    X = V * math.sqrt(n / (L + n))
    eye = torch.eye(K, dtype=torch.float64)

    def trace_est(x, sign):
        xm = x @ inv                                                              # (B, K, D)
        inner = torch.linalg.inv(sign * eye + xm @ x.transpose(1, 2))
        return torch.diagonal(xm @ fisher @ inv @ x.transpose(1, 2) @ inner, dim1=-2, dim2=-1).sum(-1)

    def update(x, sign):
        nonlocal inv
        inner = torch.linalg.inv(sign * eye + x @ inv @ x.T)
        inv = inv - inv @ x.T @ inner @ x @ inv

    chosen: list[int] = []
    for _ in range(min(N, 2 * n)):
        est = torch.cat([trace_est(X[s:s + chunk], 1.0) for s in range(0, N, chunk)])
        est[chosen] = -math.inf
        i = int(torch.argmax(est))
        chosen.append(i)
        update(X[i], 1.0)
    while len(chosen) > n:
        est = trace_est(X[chosen], -1.0)
        j = int(torch.argmin(-est))
        update(X[chosen[j]], -1.0)
        del chosen[j]
    return chosen


# -- measurement -----------------------------------------------------------------------------------

def _child(impl: str, n: int, k: int, d: int, n_labeled: int, b: int, out) -> None:
    set_threads(1)
    import torch

    from activebatch.kernels.bait import bait_select

    # warm-up on a tiny pool: libraries (LAPACK, thread pools) load before the peak is reset
    tiny = _data(20, 3, 2, 5, seed=1)
    if impl == "ours":
        bait_select(*[torch.from_numpy(a) for a in tiny], 2)
    else:
        plain_bait(*tiny, 2)
    p, z, lp, lz = _data(n, k, d, n_labeled)
    if impl == "ours":
        args = [torch.from_numpy(a) for a in (p, z, lp, lz)]
    can_reset = reset_peak()
    rss0 = status_kib("VmRSS")
    t0 = time.perf_counter()
    if impl == "ours":
        picks = bait_select(*args, b).indices.tolist()
    else:
        picks = plain_bait(p, z, lp, lz, b)
    secs = time.perf_counter() - t0
    hwm = status_kib("VmHWM")
    mib = (hwm - rss0) / 1024 if can_reset and hwm is not None and rss0 is not None else float("nan")
    out.put({"seconds": secs, "peak_mib": mib, "picks": picks})


def _case(text: str) -> tuple[int, int, int]:
    n, k, d = (int(v) for v in text.lower().split("x"))
    return n, k, d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the two small cases only")
    parser.add_argument("--cases", type=lambda s: [_case(c) for c in s.split(",")], default=None,
                        help="comma-separated NxKxd cases")
    parser.add_argument("--batch", type=int, default=10, help="batch size n (2n forward steps)")
    parser.add_argument("--labeled", type=int, default=100, help="labeled items L")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    cases = args.cases or [(1000, 10, 16), (1000, 20, 16)]
    if args.cases is None and not args.quick:
        cases += [(2000, 10, 32), (4000, 10, 32)]
    rows = []
    print(f"batch n = {args.batch} ({2 * args.batch} forward steps, {args.batch} removals), L = {args.labeled}, "
          "float64, one thread")
    print("| N | K | d | D = K d | factorised s | materialised s | speed-up | factorised peak MiB "
          "| materialised peak MiB | memory ratio | same batch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, k, d in cases:
        ours = in_child(_child, "ours", n, k, d, args.labeled, args.batch)
        plain = in_child(_child, "plain", n, k, d, args.labeled, args.batch)
        row = dict(N=n, K=k, d=d, D=k * d, batch=args.batch, labeled=args.labeled,
                   factorised_s=ours["seconds"], materialised_s=plain["seconds"],
                   speedup=plain["seconds"] / ours["seconds"], factorised_mib=ours["peak_mib"],
                   materialised_mib=plain["peak_mib"],
                   memory_ratio=plain["peak_mib"] / max(ours["peak_mib"], 1e-9),
                   same_batch=ours["picks"] == plain["picks"])
        rows.append(row)
        print(f"| {n} | {k} | {d} | {k * d} | {row['factorised_s']:.2f} | {row['materialised_s']:.2f} | "
              f"{row['speedup']:.1f}x | {row['factorised_mib']:.0f} | {row['materialised_mib']:.0f} | "
              f"{row['memory_ratio']:.1f}x | {row['same_batch']} |", flush=True)
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
