"""The CUDA path next to the CPU path: the same kernels and the same loop, the inputs on each device.

    python benchmarks/gpu.py                    # full sizes; the CUDA column needs a CUDA device
    python benchmarks/gpu.py --scale 0.01       # every case at 1% of its rows (a quick check)
    python benchmarks/gpu.py --devices cpu      # the CPU column only

Cases (the issue's sizes at ``--scale 1``):

* BADGE, N = 1,000,000 candidates, K = 1,000 classes, d = 512, B = 10,000 (goal on CUDA: < 60 s);
* core-set, N = 1,000,000, L = 10,000 labeled, d = 512, B = 10,000;
* BatchBALD, N = 20,000, S = 20 MC samples, K = 10, B = 100;
* one round of the loop: mnist-5k, the CNN, 1,000 labels: fit until 99% training accuracy,
  evidence on the pool, BADGE picks 100.

The selection inputs are made on the device (seeded), so the transfers are not timed; every
timing is one fresh run in its own process with ``torch.cuda.synchronize()`` before the clock
stops. The CUDA and CPU code paths are the same functions: the device follows the inputs. CPU
runs use ``--threads`` threads (default 1, the grids' setting). Selections on the two devices are
compared where the algorithm is deterministic (core-set: identical picks expected except where
float rounding differs between devices decides a tie; the count of common picks is printed).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import in_child, set_threads, write_json  # noqa: E402

CASES: dict[str, dict[str, int]] = {
    "badge": {"N": 1_000_000, "K": 1000, "d": 512, "B": 10_000},
    "coreset": {"N": 1_000_000, "L": 10_000, "d": 512, "B": 10_000},
    "batchbald": {"N": 20_000, "S": 20, "K": 10, "B": 100},
    "loop_round": {"labels": 1000, "B": 100},
}


def _scaled(case: dict[str, int], scale: float) -> dict[str, int]:
    keep = {"K", "d", "S"}   # widths stay; row counts and batch sizes scale
    return {k: (v if k in keep else max(2, int(round(v * scale)))) for k, v in case.items()}


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _child(name: str, case: dict[str, int], device: str, threads: int, q) -> None:
    set_threads(threads)
    import numpy as np
    import torch

    import activebatch as ab

    gen = torch.Generator(device=device).manual_seed(0)
    out: dict[str, Any] = {"case": name, "device": device, **case}
    if name == "badge":
        probs = torch.softmax(2.0 * torch.randn(case["N"], case["K"], device=device, generator=gen), dim=1)
        z = torch.relu(torch.randn(case["N"], case["d"], device=device, generator=gen))
        _sync(torch, device)
        t0 = time.perf_counter()
        picks = ab.select("badge", case["B"], probs=probs, embeddings=z, seed=0)
        _sync(torch, device)
    elif name == "coreset":
        x = torch.randn(case["N"], case["d"], device=device, generator=gen)
        lab = torch.randn(case["L"], case["d"], device=device, generator=gen)
        _sync(torch, device)
        t0 = time.perf_counter()
        picks = ab.select("coreset", case["B"], embeddings=x, labeled_embeddings=lab, seed=0)
        _sync(torch, device)
    elif name == "batchbald":
        mc = torch.softmax(2.0 * torch.randn(case["S"], case["N"], case["K"], device=device, generator=gen), dim=2)
        _sync(torch, device)
        t0 = time.perf_counter()
        picks = ab.select("batchbald", case["B"], mc_probs=mc, seed=0)
        _sync(torch, device)
    else:   # one round of the loop
        from activebatch.learning import models

        data = ab.datasets.load("mnist-5k")
        pool = ab.Pool(data.X_train, data.y_train, n_classes=data.n_classes)
        pool.label(np.random.default_rng(0).choice(len(pool), min(case["labels"], len(pool) - case["B"]),
                                                   replace=False))
        learner = ab.Learner(models.for_dataset(data, "cnn"), lr=1e-3, device=device)
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])   # the optimisers' one-time import
        t0 = time.perf_counter()
        learner.fit(*pool.labeled_data(), seed=0)
        evidence = learner.evidence(pool)
        picks = ab.strategies.get("badge").select(evidence, case["B"], np.random.default_rng(0))
        _sync(torch, device)
        out["epochs"] = learner.last_fit.epochs
    out["seconds"] = time.perf_counter() - t0
    out["picks"] = np.asarray(picks).tolist()
    q.put(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of every case's rows and batch size")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--devices", default="cuda,cpu", help="comma-separated devices, e.g. cuda,cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the CPU runs")
    ap.add_argument("--json", default=str(Path(__file__).with_suffix(".json")), help="where to write the results")
    args = ap.parse_args(argv)
    import torch

    devices = args.devices.split(",")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        print("CUDA is not available on this machine: running the CPU column only", file=sys.stderr)
        devices = [d for d in devices if not d.startswith("cuda")]
    rows = []
    print(f"{'case':<11} {'sizes':<40} " + " ".join(f"{d + ' s':>10}" for d in devices) + "  cpu/cuda")
    for name in args.cases.split(","):
        if name not in CASES:
            ap.error(f"unknown case {name!r}; known: {', '.join(CASES)}")
        case = _scaled(CASES[name], args.scale)
        res = {d: in_child(_child, name, case, d, args.threads) for d in devices}
        row = {"case": name, **case, **{f"{d}_seconds": r["seconds"] for d, r in res.items()}}
        if "cuda" in res and "cpu" in res:
            row["speedup"] = res["cpu"]["seconds"] / res["cuda"]["seconds"]
            row["common_picks"] = len(set(res["cpu"]["picks"]) & set(res["cuda"]["picks"]))
        if "epochs" in next(iter(res.values())):
            row["epochs"] = {d: r["epochs"] for d, r in res.items()}
        rows.append(row)
        sizes = " ".join(f"{k}={v:,}" for k, v in case.items())
        speed = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
        print(f"{name:<11} {sizes:<40} " + " ".join(f"{res[d]['seconds']:>10.2f}" for d in devices) + f"  {speed}",
              flush=True)
    info = {"cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "threads": args.threads, "scale": args.scale, "rows": rows}
    write_json(args.json, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
