"""Selection speed and memory: our kernels against plain transcriptions of the reference code.

    python benchmarks/selection.py                 # BADGE, core-set and k-DPP cases
    python benchmarks/selection.py --quick         # small cases only
    python benchmarks/selection.py --scale         # also N = 1,000,000 memory-mapped (float16) BADGE, core-set
    python benchmarks/selection.py --json out.json

Every measurement runs in a fresh child process; "peak MiB" is the growth of that process's peak
resident memory during the selection, above the inputs already in memory (Linux: the peak is reset
through /proc/self/clear_refs just before the selection starts). References:

* plain BADGE: the BADGE authors' current selection loop, transcribed: factorised distances in
  numpy, one full pass over the pool per chosen centre, a new ``scipy.stats.rv_discrete`` per draw
  and Python's builtin ``sum`` over the distance array;
* plain core-set: the authors' ``furthest_first``: ``sklearn.metrics.pairwise_distances`` to the
  labeled set, then per step a pairwise distance to the new centre and a Python loop over the pool.
  It runs on float64 copies of the float32 inputs, so that both sides decide on float64 distances
  (our kernel reads the float32 inputs and takes every decision in float64).

A plain run longer than ``--plain-seconds`` is stopped and its time extrapolated from the steps it
completed (both references do the same work at every step); such rows say "extrapolated".
The bandwidth bound is one pass over the N x (K + d) float32 factors per chosen centre at the
streaming bandwidth measured at the start of the run.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

from _harness import in_child, reset_peak, set_threads, status_kib, write_json


def _rss_kib(field: str) -> int:
    return status_kib(field) or 0


def _reset_peak() -> int:
    """Reset this process's peak resident set and return the current RSS, KiB."""
    reset_peak()
    return _rss_kib("VmRSS")


def _badge_data(n: int, k: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k)).astype(np.float32)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    z = np.maximum(rng.normal(size=(n, d)), 0).astype(np.float32)
    return p, z


def plain_badge(p, z, b, seconds_cap):
    """The authors' loop (see the module docstring). Returns (picks, seconds, steps done)."""
    import numpy as np
    from scipy import stats

    t0 = time.perf_counter()
    y = p.argmax(1)
    u = p.copy()
    u[np.arange(len(p)), y] -= 1.0
    X1 = (u, (u * u).sum(1))
    X2 = (z, (z * z).sum(1))

    def distance(mu):
        dist = X1[1] * X2[1] + X1[1][mu] * X2[1][mu] - 2 * (X1[0] @ X1[0][mu]) * (X2[0] @ X2[0][mu])
        return np.sqrt(np.clip(dist, a_min=0, a_max=None))

    ind = int(np.argmax(X1[1] * X2[1]))
    mu, chosen, chosen_list = [ind], {ind}, [ind]
    D2 = distance(ind).ravel().astype(float)
    D2[ind] = 0
    while len(mu) < b:
        newD = distance(mu[-1]).ravel().astype(float)
        D2 = np.minimum(D2, newD)
        D2[chosen_list] = 0
        Ddist = (D2 ** 2) / sum(D2 ** 2)
        custom = stats.rv_discrete(name="custm", values=(np.arange(len(Ddist)), Ddist))
        ind = custom.rvs(size=1)[0]
        while ind in chosen:
            ind = custom.rvs(size=1)[0]
        mu.append(int(ind))
        chosen.add(ind)
        chosen_list.append(ind)
        if time.perf_counter() - t0 > seconds_cap:
            break
    return mu, time.perf_counter() - t0, len(mu)


def plain_coreset(x, lab, b, seconds_cap):
    """The authors' furthest_first (see the module docstring)."""
    import numpy as np
    from sklearn.metrics import pairwise_distances, pairwise_distances_chunked

    t0 = time.perf_counter()
    m = x.shape[0]
    if m * lab.shape[0] * 8 > 2 * 2 ** 30:
        # the authors form the full N x L matrix; beyond 2 GiB it is reduced in chunks (same work)
        min_dist = np.concatenate(list(pairwise_distances_chunked(x, lab, reduce_func=lambda D, s: D.min(1))))
    else:
        min_dist = np.amin(pairwise_distances(x, lab), axis=1)
    init_seconds = time.perf_counter() - t0
    idxs = []
    for _ in range(b):
        idx = int(min_dist.argmax())
        idxs.append(idx)
        dist_new = pairwise_distances(x, x[[idx], :])
        for j in range(m):
            min_dist[j] = min(min_dist[j], dist_new[j, 0])
        if time.perf_counter() - t0 > seconds_cap:
            break
    return idxs, time.perf_counter() - t0, len(idxs), init_seconds


def _timed(run) -> tuple[dict, int]:
    """(result of ``run()`` with ``seconds`` added, RSS in KiB before it started)."""
    base = _reset_peak()
    t0 = time.perf_counter()
    res = run()
    res.setdefault("seconds", time.perf_counter() - t0)
    return res, base


def _run_badge(impl, case, seconds_cap):
    import numpy as np
    import torch

    from activebatch.kernels.kmeanspp import badge_kmeanspp

    p, z = _badge_data(case["N"], case["K"], case["d"])
    if impl == "ours":
        def run():
            sel = badge_kmeanspp(torch.from_numpy(p), torch.from_numpy(z), case["B"], np.random.default_rng(0))
            return dict(steps=case["B"], picks=sel[:50].tolist())
    else:
        def run():
            sel, secs, steps = plain_badge(p, z, case["B"], seconds_cap)
            return dict(seconds=secs, steps=steps, picks=[int(i) for i in sel[:50]])
    return _timed(run)


def _run_coreset(impl, case, seconds_cap):
    import numpy as np
    import torch

    from activebatch.kernels import kcenter_greedy

    rng = np.random.default_rng(1)
    x = rng.normal(size=(case["N"], case["d"])).astype(np.float32)
    lab = rng.normal(size=(case["L"], case["d"])).astype(np.float32)
    if impl == "ours":
        def run(x=x, lab=lab):
            sel = kcenter_greedy(torch.from_numpy(x), case["B"], centers=torch.from_numpy(lab))
            return dict(steps=case["B"], picks=sel.tolist())
        return _timed(run)
    # float64 copies: on float32 input sklearn returns float32 distances, whose rounding turns
    # near-ties into ties broken by index; both sides then decide on float64 values
    x64, lab64 = x.astype(np.float64), lab.astype(np.float64)
    del x, lab

    def run():
        sel, secs, steps, init = plain_coreset(x64, lab64, case["B"], seconds_cap)
        return dict(seconds=secs, steps=steps, init_seconds=init, picks=[int(i) for i in sel])
    return _timed(run)


def _run_kdpp(impl, case, seconds_cap):
    import numpy as np
    import torch

    from activebatch.kernels import gradient_embedding_factors
    from activebatch.kernels.kdpp import kdpp_mcmc
    from activebatch.kernels.kmeanspp import badge_kmeanspp

    p, z = _badge_data(case["N"], case["K"], case["d"])

    def run():
        if impl == "ours":
            kdpp_mcmc(gradient_embedding_factors(torch.from_numpy(p)), torch.from_numpy(z), case["B"],
                      np.random.default_rng(0))
        else:  # BADGE on the same pool, for the paper's Appendix F comparison
            badge_kmeanspp(torch.from_numpy(p), torch.from_numpy(z), case["B"], np.random.default_rng(0))
        return dict(steps=case["B"], picks=[])
    return _timed(run)


def _run_scale(impl, case, seconds_cap):
    import numpy as np

    from activebatch.kernels.kmeanspp import badge_kmeanspp

    pm = np.load(case["p_path"], mmap_mode="r")
    zm = np.load(case["z_path"], mmap_mode="r")

    def run():
        sel = badge_kmeanspp(pm, zm, case["B"], np.random.default_rng(0))
        return dict(steps=case["B"], picks=sel[:20].tolist(), distinct=int(np.unique(sel).size))
    return _timed(run)


def _run_scale_coreset(impl, case, seconds_cap):
    import numpy as np
    import torch

    from activebatch.kernels import kcenter_greedy

    zm = np.load(case["z_path"], mmap_mode="r")
    lab = np.maximum(np.random.default_rng(5).normal(size=(case["L"], zm.shape[1])), 0).astype(np.float32)

    def run():
        sel = kcenter_greedy(zm, case["B"], centers=torch.from_numpy(lab))
        return dict(steps=case["B"], picks=sel[:20].tolist(), distinct=int(np.unique(sel).size))
    return _timed(run)


#: Case kind -> runner(impl, case, seconds_cap) returning (result, RSS before the timed part).
RUNNERS = {"badge": _run_badge, "coreset": _run_coreset, "kdpp": _run_kdpp, "scale": _run_scale,
           "scale_coreset": _run_scale_coreset}


def plain_coreset_seconds(plain: dict, b: int) -> float:
    """Seconds of a whole plain core-set run: the initial distances once, then the per-step loop
    extrapolated from the steps done when the run was stopped early."""
    if plain["steps"] >= b:
        return plain["seconds"]
    init = plain["init_seconds"]
    return init + (plain["seconds"] - init) * b / plain["steps"]


def _child(kind: str, impl: str, case: dict, threads: int, seconds_cap: float, out) -> None:
    set_threads(threads)
    res, base = RUNNERS[kind](impl, case, seconds_cap)
    res["peak_mib"] = max(_rss_kib("VmHWM") - base, 0) / 1024
    out.put(res)


def _measure(kind, impl, case, threads, cap):
    return in_child(_child, kind, impl, case, threads, cap)


def _bandwidth(threads: int) -> float:
    set_threads(threads)
    import torch

    x = torch.ones(256 * 2 ** 20)  # 1 GiB of float32
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        float(x.sum())
        best = min(best, time.perf_counter() - t0)
    return x.numel() * 4 / best


def _write_scale_inputs(folder: str, n: int, k: int, d: int) -> tuple[str, str]:
    import numpy as np

    rng = np.random.default_rng(0)
    p_path, z_path = os.path.join(folder, "probs.npy"), os.path.join(folder, "emb.npy")
    P = np.lib.format.open_memmap(p_path, mode="w+", dtype=np.float16, shape=(n, k))
    Z = np.lib.format.open_memmap(z_path, mode="w+", dtype=np.float16, shape=(n, d))
    for s in range(0, n, 50_000):
        e = min(s + 50_000, n)
        logits = rng.normal(scale=3.0, size=(e - s, k)).astype(np.float32)
        q = np.exp(logits - logits.max(1, keepdims=True))
        P[s:e] = q / q.sum(1, keepdims=True)
        Z[s:e] = np.maximum(rng.normal(size=(e - s, d)), 0)
    P.flush()
    Z.flush()
    del P, Z
    return p_path, z_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument("--scale", action="store_true",
                        help="add the N = 1,000,000 memory-mapped BADGE and core-set cases")
    parser.add_argument("--only", default="badge,coreset,kdpp",
                        help="comma-separated families to run: badge, coreset, kdpp (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch/BLAS threads per measurement (default 2)")
    parser.add_argument("--plain-seconds", type=float, default=30.0,
                        help="stop a plain reference after this long and extrapolate (default 30)")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args()

    bw = _bandwidth(args.threads)
    print(f"streaming bandwidth ({args.threads} threads): {bw / 1e9:.1f} GB/s", flush=True)
    rows = []
    header = ("| case | ours s | plain s | speed-up | bandwidth bound s | ours peak MiB | plain peak MiB | note |\n"
              "|---|---|---|---|---|---|---|---|")
    print(header, flush=True)

    def emit(row):
        rows.append(row)
        fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
        print(f"| {row['case']} | {fmt(row['ours_s'], '.3f')} | {fmt(row['plain_s'], '.2f')} | "
              f"{fmt(row['speedup'], '.1f')}{'x' if row['speedup'] else ''} | {fmt(row['bound_s'], '.2f')} | "
              f"{fmt(row['ours_mib'], '.0f')} | {fmt(row['plain_mib'], '.0f')} | {row['note']} |", flush=True)

    badge_cases = [(40_000, 10, 300), (40_000, 10, 1000), (40_000, 100, 300), (40_000, 100, 1000),
                   (100_000, 10, 300), (100_000, 10, 1000), (100_000, 100, 300), (100_000, 100, 1000)]
    coreset_cases = [(10_000, 1000), (10_000, 10_000), (50_000, 1000), (100_000, 1000), (100_000, 10_000)]
    if args.quick:
        badge_cases = [(10_000, 10, 100), (20_000, 100, 300)]
        coreset_cases = [(5_000, 500), (10_000, 1000)]
    only = {f.strip() for f in args.only.split(",") if f.strip()}
    badge_cases = badge_cases if "badge" in only else []
    coreset_cases = coreset_cases if "coreset" in only else []
    for n, k, b in badge_cases:
        case = dict(N=n, K=k, d=512, B=b)
        ours = _measure("badge", "ours", case, args.threads, args.plain_seconds)
        plain = _measure("badge", "plain", case, args.threads, args.plain_seconds)
        plain_s = plain["seconds"] * (b - 1) / max(plain["steps"] - 1, 1)
        note = "exact law (chi-square tests)"
        if plain["steps"] < b:
            note += f"; plain extrapolated from {plain['steps']} of {b} centres"
        emit(dict(case=f"BADGE N={n:,} K={k} d=512 B={b}", ours_s=ours["seconds"], plain_s=plain_s,
                  speedup=plain_s / ours["seconds"], bound_s=b * n * (k + 512) * 4 / bw,
                  ours_mib=ours["peak_mib"], plain_mib=plain["peak_mib"], note=note))
    for n, L in coreset_cases:
        case = dict(N=n, L=L, d=512, B=1000 if not args.quick else 200)
        b = case["B"]
        ours = _measure("coreset", "ours", case, args.threads, args.plain_seconds)
        plain = _measure("coreset", "plain", case, args.threads, args.plain_seconds)
        same = ours["picks"][:plain["steps"]] == plain["picks"]
        plain_s = plain_coreset_seconds(plain, b)
        note = f"identical picks: {same}"
        if plain["steps"] < b:
            note += f"; plain extrapolated from {plain['steps']} of {b} steps"
        emit(dict(case=f"core-set N={n:,} L={L:,} d=512 B={b}", ours_s=ours["seconds"], plain_s=plain_s,
                  speedup=plain_s / ours["seconds"], bound_s=None, ours_mib=ours["peak_mib"],
                  plain_mib=plain["peak_mib"], note=note))
    kd = dict(N=10_000 if not args.quick else 2_000, K=10, d=512, B=100 if not args.quick else 50)
    ours = _measure("kdpp", "ours", kd, args.threads, args.plain_seconds) if "kdpp" in only else None
    badge = _measure("kdpp", "badge", kd, args.threads, args.plain_seconds) if "kdpp" in only else None
    if ours is not None:
        emit(dict(case=f"k-DPP N={kd['N']:,} K=10 d=512 B={kd['B']} (vs BADGE)", ours_s=ours["seconds"],
                  plain_s=badge["seconds"], speedup=None, bound_s=None, ours_mib=ours["peak_mib"],
                  plain_mib=badge["peak_mib"], note="tau = floor(5 k ln k) MCMC steps; 'plain' column is BADGE"))
    if args.scale:
        n, k, d, b = 1_000_000, 1000, 512, 10_000
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            p_path, z_path = _write_scale_inputs(tmp, n, k, d)
            print(f"(wrote {n:,} x ({k} + {d}) float16 inputs in {time.perf_counter() - t0:.0f} s)", flush=True)
            res = _measure("scale", "ours", dict(p_path=p_path, z_path=z_path, B=b), args.threads, 0)
            emit(dict(case=f"BADGE N={n:,} K={k} d={d} B={b:,}, memory-mapped float16", ours_s=res["seconds"],
                      plain_s=None, speedup=None, bound_s=b * n * (k + d) * 4 / bw, ours_mib=res["peak_mib"],
                      plain_mib=None, note=f"{res['distinct']:,} distinct picks"))
            L = 10_000
            res = _measure("scale_coreset", "ours", dict(z_path=z_path, L=L, B=b), args.threads, 0)
            emit(dict(case=f"core-set N={n:,} L={L:,} d={d} B={b:,}, memory-mapped float16", ours_s=res["seconds"],
                      plain_s=None, speedup=None, bound_s=None, ours_mib=res["peak_mib"], plain_mib=None,
                      note=f"{res['distinct']:,} distinct picks"))
    write_json(args.json, dict(bandwidth_gbs=bw / 1e9, threads=args.threads, rows=rows))


if __name__ == "__main__":
    sys.exit(main())
