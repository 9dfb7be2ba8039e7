"""Selection over a sharded pool on a local Ray cluster: time, owners' memory, communication per pick.

Writes a synthetic pool as float32 ``.npy`` shards in a temporary folder (probabilities (n_i, K)
from softmaxed normal logits, embeddings (n_i, d) normal, MC samples (S, n_i, K)), one shard at a
time, so the driver never holds more than a shard. Then starts a local Ray cluster (``--cpus``
logical CPUs), opens the shards in ``--owners`` actors (:class:`activebatch.Shards`) and, per
strategy, measures on warm owners:

* ``seconds``: the wall time of ``Shards.select`` (the one-time start of the owners and the
  validation scan of each field are reported apart, under ``setup``);
* ``traffic``: calls, round trips and pickled bytes each way, per owner method, and per pick;
* the owners' memory: peak resident set (``VmHWM``) and its file-backed part (the pages of the
  memory-mapped shards that were read), against the bytes of the shards each owner holds and of
  the whole pool; and the driver's peak growth (``VmHWM`` after a reset) during the selections.

The scores (least confidence, margin, entropy) run on ``--rows`` rows, BALD on ``--bald-rows``,
core-set and BADGE on ``--diverse-rows`` (each defaults to ``--rows``):

    python benchmarks/sharded.py                                  # 10,000,000 rows
    python benchmarks/sharded.py --rows 10000000 --diverse-rows 2000000 --bald-rows 2000000 \\
        --json benchmarks/sharded.json
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _harness import in_child, reset_peak, set_threads, status_kib, write_json

SCORES = ("least_confidence", "margin", "entropy")


def write_shards(folder: Path, rows: int, shards: int, classes: int, dim: int, samples: int, seed: int,
                 fields: tuple[str, ...]) -> dict[str, list[str]]:
    """Shards of ``rows`` rows in total (sizes differ by up to 20%), one file per shard and field."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w = rng.uniform(0.8, 1.2, size=shards)
    cuts = np.round(np.cumsum(w) / w.sum() * rows).astype(int)
    sizes = np.diff(np.concatenate([[0], cuts]))
    out: dict[str, list[str]] = {f: [] for f in fields}
    folder.mkdir(parents=True, exist_ok=True)

    def softmax(logits):
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    for i, n_i in enumerate(sizes):
        if "probs" in fields:
            out["probs"].append(str(folder / f"p{i}.npy"))
            np.save(out["probs"][-1], softmax(rng.normal(scale=2.0, size=(n_i, classes)).astype(np.float32)))
        if "embeddings" in fields:
            out["embeddings"].append(str(folder / f"z{i}.npy"))
            np.save(out["embeddings"][-1], rng.standard_normal((n_i, dim), dtype=np.float32))
        if "mc_probs" in fields:
            out["mc_probs"].append(str(folder / f"m{i}.npy"))
            base = rng.normal(scale=2.0, size=(1, n_i, classes)).astype(np.float32)
            np.save(out["mc_probs"][-1], softmax(base + rng.normal(size=(samples, n_i, classes)).astype(np.float32)))
    return out


def concatenate(files: dict[str, list[str]], folder: Path) -> dict[str, str]:
    """The shards of each field written back to back into one .npy file (a shard at a time)."""
    import numpy as np

    out = {}
    for field, paths in files.items():
        parts = [np.load(p, mmap_mode="r") for p in paths]
        axis = 1 if field == "mc_probs" else 0
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        out[field] = str(folder / f"{field}_all.npy")
        whole = np.lib.format.open_memmap(out[field], mode="w+", dtype=parts[0].dtype, shape=tuple(shape))
        at = 0
        for p in parts:
            k = p.shape[axis]
            if axis:
                whole[:, at:at + k] = p
            else:
                whole[at:at + k] = p
            at += k
        whole.flush()
        del whole
    return out


def _single(files: dict[str, str], name: str, n: int, seed: int, q) -> None:
    """Child process: ab.select on the whole pool (memory maps; mc_probs is read into memory)."""
    set_threads(1)
    import numpy as np

    import activebatch as ab

    arrays = {k: np.load(v, mmap_mode="r") for k, v in files.items()}
    can_reset = reset_peak()
    hwm0 = status_kib("VmHWM")
    t0 = time.perf_counter()
    try:
        sel = ab.select(name, n, seed=seed, return_result=True, **arrays)
    except Exception as exc:   # a broken single-machine path is reported, not fatal to the comparison
        q.put({"error": f"{type(exc).__name__}: {exc}"})
        return
    seconds = time.perf_counter() - t0
    q.put({"seconds": round(seconds, 3), "picks": sel.indices.tolist(),
           "peak_growth_kib": status_kib("VmHWM") - hwm0 if can_reset else None})


def _bytes(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths)


def run_pool(ab, files: dict[str, list[str]], strategies: list[str], n: int, owners: int, seed: int,
             whole: dict[str, str] | None = None) -> dict:
    """Open the shards in owners, select with each strategy; times, traffic, memory.

    With ``whole`` (the pool as one file per field), each strategy also runs as the
    single-machine ``ab.select`` in a child process, for its time, memory and picks.
    """
    out: dict = {"setup": {}, "strategies": {}}
    with ab.Shards(**files, owners=owners) as sh:
        traffic = sh.traffic()
        t0 = time.perf_counter()
        pool = sh._open()
        pool.check_shapes({})
        out["setup"]["owners_start_s"] = round(time.perf_counter() - t0, 3)
        out["setup"]["owner_memory_after_start_kib"] = sh.memory()
        for field in files:
            t0 = time.perf_counter()
            pool.check_values(field)
            out["setup"][f"validate_{field}_s"] = round(time.perf_counter() - t0, 3)
        groups = pool.groups
        out["owners"] = [{"shards": g, "shard_bytes": sum(_bytes([files[f][i] for f in files]) for i in g)}
                         for g in groups]
        out["pool_bytes"] = sum(_bytes(v) for v in files.values())
        out["rows"] = int(pool.N)
        for name in strategies:
            traffic.clear()
            can_reset = reset_peak()
            rss0 = status_kib("VmRSS")
            t0 = time.perf_counter()
            sel = sh.select(name, n, seed=seed, return_result=True)
            seconds = time.perf_counter() - t0
            driver_peak = status_kib("VmHWM") - rss0 if can_reset else None
            per_pick = {m: {k: round(v / n, 1) for k, v in rec.items()} for m, rec in traffic.items()}
            total = {k: sum(rec[k] for rec in traffic.values()) for k in ("round_trips", "bytes_out", "bytes_in")}
            out["strategies"][name] = {
                "seconds": round(seconds, 3), "n": n, "first_picks": sel.indices[:5].tolist(),
                "traffic": {m: dict(rec) for m, rec in traffic.items()}, "traffic_per_pick": per_pick,
                "round_trips_per_pick": round(total["round_trips"] / n, 2),
                "bytes_per_pick": {"driver_to_owners": round(total["bytes_out"] / n), "owners_to_driver":
                                   round(total["bytes_in"] / n)},
                "driver_peak_growth_kib": driver_peak,
                # the owners right after: their per-row state is still held (anonymous memory)
                "owner_memory_after_kib": sh.memory()}
            print(f"  {name:17s} {seconds:8.2f} s  round trips/pick {total['round_trips'] / n:6.2f}  "
                  f"bytes/pick out {total['bytes_out'] / n:9.0f} in {total['bytes_in'] / n:9.0f}", flush=True)
            if whole is not None:
                reads = {"coreset": ("embeddings",), "badge": ("probs", "embeddings"), "bald": ("mc_probs",)}
                one = in_child(_single, {k: whole[k] for k in reads.get(name, ("probs",))}, name, n, seed)
                rec = out["strategies"][name]
                rec["single_machine"] = {k: v for k, v in one.items() if k != "picks"}
                if "picks" in one:
                    same = one["picks"] == sel.indices.tolist()
                    rec["single_machine"]["same_picks"] = same
                    rec["single_machine"]["same_first_pick"] = one["picks"][0] == int(sel.indices[0])
                    print(f"  {'':17s} {one['seconds']:8.2f} s  single machine (one process, memory maps); "
                          f"same picks: {same}", flush=True)
                else:
                    print(f"  {'':17s} single machine failed: {one['error']}", flush=True)
        out["owner_memory_end_kib"] = sh.memory()
    for o, mem, start in zip(out["owners"], out["owner_memory_end_kib"], out["setup"]["owner_memory_after_start_kib"]):
        o["peak_kib"] = mem.get("VmHWM")
        # above the process as started (Python, torch, Ray's worker): what the shards and the
        # strategies' per-row state cost
        o["peak_growth_kib"] = mem.get("VmHWM", 0) - start.get("VmHWM", 0)
        o["file_backed_kib"] = mem.get("RssFile")
        o["anon_kib"] = mem.get("RssAnon")
        o["growth_over_shard_bytes"] = round(1024 * o["peak_growth_kib"] / max(o["shard_bytes"], 1), 3)
        o["growth_over_pool_bytes"] = round(1024 * o["peak_growth_kib"] / max(out["pool_bytes"], 1), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the pool for the scores")
    ap.add_argument("--diverse-rows", type=int, help="rows for core-set and BADGE (default: --rows)")
    ap.add_argument("--bald-rows", type=int, help="rows for BALD (default: --rows)")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--owners", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="logical CPUs of the local Ray cluster")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--samples", type=int, default=4, help="MC samples S of the BALD pool")
    ap.add_argument("--n", type=int, default=100, help="batch size")
    ap.add_argument("--strategies", nargs="+", default=list(SCORES) + ["bald", "coreset", "badge"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", action="store_true",
                    help="also run the single-machine ab.select on the pool written as one file per field")
    ap.add_argument("--dir", help="folder for the shards (default: a temporary folder, removed)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    set_threads(1)
    import numpy as np
    import ray

    import activebatch as ab

    diverse_rows = args.diverse_rows or args.rows
    bald_rows = args.bald_rows or args.rows
    pools = []   # (rows, fields, strategies)
    scores = [s for s in args.strategies if s in SCORES]
    diverse = [s for s in args.strategies if s in ("coreset", "badge")]
    if scores and diverse and diverse_rows == args.rows:
        pools.append((args.rows, ("probs", "embeddings"), scores + diverse))
    else:
        if scores:
            pools.append((args.rows, ("probs",), scores))
        if diverse:
            pools.append((diverse_rows, ("probs", "embeddings"), diverse))
    if "bald" in args.strategies:
        pools.append((bald_rows, ("mc_probs",), ["bald"]))
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    result = {"config": {k: v for k, v in vars(args).items() if k not in ("json", "dir")}, "pools": []}
    result["config"].update(diverse_rows=diverse_rows, bald_rows=bald_rows, numpy=np.__version__,
                            ray=ray.__version__, cpu_count=os.cpu_count())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for k, (rows, fields, strategies) in enumerate(pools):
            t0 = time.perf_counter()
            files = write_shards(Path(tmp) / f"pool{k}", rows, args.shards, args.classes, args.dim, args.samples,
                                 args.seed + k, fields)
            print(f"pool {k}: {rows:,} rows, {args.shards} shards of {', '.join(fields)} "
                  f"({sum(_bytes(v) for v in files.values()) / 2**20:.0f} MiB, written in "
                  f"{time.perf_counter() - t0:.1f} s); {args.owners} owners", flush=True)
            whole = concatenate(files, Path(tmp) / f"pool{k}") if args.compare else None
            res = run_pool(ab, files, strategies, args.n, args.owners, args.seed, whole)
            res["fields"] = list(fields)
            for o in res["owners"]:
                mib = {k: (o[k] or 0) / 1024 for k in ("peak_kib", "peak_growth_kib", "file_backed_kib")}
                print(f"  owner shards {o['shards']}: peak {mib['peak_kib']:.0f} MiB, {mib['peak_growth_kib']:.0f} MiB "
                      f"above its start (file-backed now {mib['file_backed_kib']:.0f} MiB), for "
                      f"{o['shard_bytes'] / 2**20:.0f} MiB of shards; the pool is {res['pool_bytes'] / 2**20:.0f} MiB",
                      flush=True)
            print(f"  setup: {res['setup']}", flush=True)
            result["pools"].append(res)
            for p in [p for f in files.values() for p in f] + list((whole or {}).values()):
                os.remove(p)
    ray.shutdown()
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
