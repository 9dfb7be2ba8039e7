"""Our selection against the peer libraries on the strategies we share, on the same inputs.

    python benchmarks/peers.py                     # creates .venv-peers on first use
    python benchmarks/peers.py --repeats 5 --json benchmarks/peers.json    # the README's table
    python benchmarks/peers.py --quick             # small inputs

The peers (baal, batchbald_redux, scikit-activeml, modAL) live in their own virtual environment,
``.venv-peers`` beside the project's ``.venv`` (created here with ``pip``; torch 2.13.0 is installed
first and pinned, so that no CUDA build is pulled in, and torchvision, which no measured function
needs and whose PyPI build does not load with the CPU torch, is removed). Inputs are drawn once,
saved as ``.npy`` files in a temporary folder and read by two long-lived worker processes, ours
(this interpreter, the project's venv) and theirs (the peers' venv), each on one thread (torch,
OpenMP and BLAS).
Every measurement sends the same case to ours and then to theirs, ``--repeats`` times over, so
both sides see the same load on a shared machine; a worker warms each case up once and the table
gives the median of the timed calls (one per alternation by default). Each side is called through
its public entry point with its own checks: ``activebatch.select`` for ours; for the peers the
function their query strategy calls, fed from a stand-in model whose ``predict_proba`` returns
the saved probabilities (modAL), or the score function and batch rule of their query strategy (scikit-activeml), a
heuristic's ``get_ranks`` (baal) or ``get_bald_batch`` / ``get_batchbald_batch``
(batchbald_redux). Each peer gets its own input layout (baal: (N, K, S); batchbald_redux: log
probabilities (N, S, K)), converted outside the timing.

The "numpy" rows set ours against plain numpy transcriptions of each score's formula (least
confidence, margin by a row partition, entropy, EGL's closed form in float64 as ours, BALD, vote
and consensus entropy, mean KL), with no input checks and top-n by ``argpartition``, run in the
peers' interpreter: the floor a CPU implementation has to reach, ours checks included.

"same picks" compares the sets of the n picks (modAL returns them unordered); "overlap" counts
the shared ones; "equal up to ties" says whether their picks hold the same scores as ours under
our scores (a tie at the n-th score may be broken either way: scikit-activeml breaks ties at
random, and vote entropies take few distinct values). Known differences: scikit-activeml's KL
divergence clips probabilities at 1e-7 and renormalises; modAL's KL score is the *maximum* member
divergence (ours is the mean, as in McCallum & Nigam), so it is not compared. BatchBALD is
compared on a small pool with a batch of 5, where both sides compute the joint entropies
exactly (K^4 = 10,000 configurations <= 40,000 samples).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / ".venv-peers"
PEER_PACKAGES = ["baal", "batchbald_redux", "scikit-activeml", "modAL-python"]
TORCH_PIN = "torch==2.13.0"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "TQDM_DISABLE": "1"}  # batchbald_redux draws progress bars

#: (strategy, input, batch size key, peers)
CASES = [
    ("least_confidence", "probs", "n", ["modAL", "scikit-activeml", "baal", "numpy"]),
    ("margin", "probs", "n", ["modAL", "scikit-activeml", "baal", "numpy"]),
    ("entropy", "probs", "n", ["modAL", "scikit-activeml", "baal", "numpy"]),
    ("egl", "probs", "n", ["numpy"]),
    ("bald", "mc", "n", ["baal", "batchbald_redux", "numpy"]),
    ("vote_entropy", "mc", "n", ["modAL", "scikit-activeml", "numpy"]),
    ("consensus_entropy", "mc", "n", ["modAL", "numpy"]),
    ("kl_divergence", "mc", "n", ["scikit-activeml", "numpy"]),
    ("batchbald", "mc_small", "n_small", ["batchbald_redux"]),
]


# The peers' environment ---------------------------------------------------------------------------
def peers_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def ensure_peers() -> dict:
    """Create ``.venv-peers`` with the peer libraries if it is missing; return their versions."""
    py = peers_python()
    probe = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
             + repr(PEER_PACKAGES + ["torch", "numpy", "scipy"]) + "}))")
    if py.exists():
        done = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if done.returncode == 0:
            return json.loads(done.stdout)
    print(f"creating {PEERS_VENV} (torch first, pinned, then the peers)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run(pip + [TORCH_PIN], check=True)
    # the pin again, so that no peer's requirement upgrades torch to a CUDA build
    subprocess.run(pip + [TORCH_PIN] + PEER_PACKAGES, check=True)
    # torchvision (pulled in by batchbald_redux) comes from PyPI built against the CUDA torch and
    # fails to load with the CPU one; torchmetrics (imported by baal) then breaks on import. None
    # of the functions measured here uses it.
    subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "torchvision"], check=True)
    return json.loads(subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True).stdout)


# Inputs -------------------------------------------------------------------------------------------
def write_inputs(folder: Path, sizes: dict) -> None:
    import numpy as np

    rng = np.random.default_rng(0)

    def softmax(logits):
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    np.save(folder / "probs.npy", softmax(rng.normal(scale=2.0, size=(sizes["N"], sizes["K"]))))
    np.save(folder / "emb.npy", np.maximum(rng.normal(size=(sizes["N"], sizes["d"])), 0).astype(np.float32))
    # MC samples around a per-item predictive, so that the samples disagree to varying degrees
    for name, n in (("mc", sizes["N_mc"]), ("mc_small", sizes["N_small"])):
        centre = rng.normal(scale=2.0, size=(1, n, sizes["K_mc"]))
        spread = rng.uniform(0.2, 2.0, size=(1, n, 1))
        np.save(folder / f"{name}.npy", softmax(centre + spread * rng.normal(size=(sizes["S"], n, sizes["K_mc"]))))


# Workers ------------------------------------------------------------------------------------------
def _ours(folder: Path):
    import numpy as np

    import activebatch as ab

    cache: dict = {}

    def load(name):
        if name not in cache:
            cache[name] = np.load(folder / f"{name}.npy")
        return cache[name]

    def run(strategy, inp, n):
        if strategy == "egl":
            return ab.select(strategy, n, probs=load(inp), embeddings=load("emb"))
        if inp == "probs":
            return ab.select(strategy, n, probs=load(inp))
        return ab.select(strategy, n, mc_probs=load(inp))
    return run


def _numpy(load):
    """Plain numpy transcriptions of each score's formula, with no input checks, top-n by
    ``argpartition``: the floor any implementation on the CPU has to reach."""
    import numpy as np

    def top(u, n):
        return np.argpartition(-u, n - 1)[:n]

    def entropy(P, axis=-1):
        return -np.sum(P * np.log(np.where(P > 0, P, 1)), axis=axis)

    def run(strategy, inp, n):
        if inp == "probs":
            P = load(inp, "plain")
            if strategy == "least_confidence":
                return top(1 - P.max(axis=1), n)
            if strategy == "margin":
                part = np.partition(P, -2, axis=1)
                return top(part[:, -2] - part[:, -1], n)
            if strategy == "entropy":
                return top(entropy(P), n)
            # egl: sum_y p_y ||p - e_y|| ||z||, with ||p - e_y||^2 = ||p||^2 - 2 p_y + 1, in float64
            # as ours (that difference cancels where p_y is near 1: float32 loses ~1e-4 of it)
            P = P.astype(np.float64)
            z = load("emb", "plain").astype(np.float64)
            sq = np.einsum("ij,ij->i", P, P)[:, None]
            u = np.sum(P * np.sqrt(np.maximum(sq - 2 * P + 1, 0)), axis=1) * np.sqrt(np.einsum("ij,ij->i", z, z))
            return top(u, n)
        M = load(inp, "plain")                     # (S, N, K)
        mean = M.mean(axis=0)
        if strategy == "bald":
            return top(entropy(mean) - entropy(M).mean(axis=0), n)
        if strategy == "consensus_entropy":
            return top(entropy(mean), n)
        if strategy == "vote_entropy":
            votes = M.argmax(axis=2)               # (S, N)
            K = M.shape[2]
            counts = np.stack([(votes == k).sum(axis=0) for k in range(K)], axis=1) / M.shape[0]
            return top(entropy(counts), n)
        # kl_divergence: mean over members of KL(p_s || mean)
        logs = np.log(np.where(M > 0, M, 1))
        return top(np.mean(np.sum(M * (logs - np.log(mean)[None]), axis=2), axis=0), n)
    return run


def _theirs(folder: Path, peer: str):
    import numpy as np

    cache: dict = {}

    def load(name, layout):
        key = (name, layout)
        if key not in cache:
            a = np.load(folder / f"{name}.npy")
            if layout == "baal":                      # (S, N, K) -> (N, K, S)
                a = np.ascontiguousarray(a.transpose(1, 2, 0))
            elif layout == "bbr":                     # (S, N, K) -> log probabilities (N, S, K)
                import torch

                a = torch.from_numpy(np.log(np.ascontiguousarray(a.transpose(1, 0, 2))))
            elif layout == "modal":                   # (S, N, K) -> (N, S, K), modAL's vote_proba
                a = np.ascontiguousarray(a.transpose(1, 0, 2))
            cache[key] = a
        return cache[key]

    if peer == "numpy":
        return _numpy(load)
    if peer == "modAL":
        from modAL import disagreement, uncertainty

        class Model:
            """Stand-in estimator: predict_proba returns the saved probabilities."""

            def __init__(self, proba):
                self.proba = proba

            def predict_proba(self, X, **kw):
                return self.proba

        class Committee:
            """Stand-in committee with modAL's Committee methods on the saved member outputs."""

            def __init__(self, vote_proba):
                self._vp = vote_proba
                self.classes_ = np.arange(vote_proba.shape[2])

            def __len__(self):
                return self._vp.shape[1]

            def vote_proba(self, X, **kw):
                return self._vp

            def vote(self, X, **kw):
                return self._vp.argmax(axis=2)

            def predict_proba(self, X, **kw):
                return np.mean(self._vp, axis=1)

        fns = {"least_confidence": uncertainty.uncertainty_sampling, "margin": uncertainty.margin_sampling,
               "entropy": uncertainty.entropy_sampling}
        cfns = {"vote_entropy": disagreement.vote_entropy_sampling,
                "consensus_entropy": disagreement.consensus_entropy_sampling}

        def run(strategy, inp, n):
            if strategy in fns:
                P = load(inp, "plain")
                return fns[strategy](Model(P), P, n_instances=n)[0]
            V = load(inp, "modal")
            return cfns[strategy](Committee(V), V[:, 0], n_instances=n)[0]
        return run
    if peer == "scikit-activeml":
        from skactiveml.pool import uncertainty_scores
        from skactiveml.pool._query_by_committee import average_kl_divergence, vote_entropy
        from skactiveml.utils import simple_batch

        methods = {"least_confidence": "least_confident", "margin": "margin_sampling", "entropy": "entropy"}

        def run(strategy, inp, n):
            if strategy in methods:
                u = uncertainty_scores(load(inp, "plain"), method=methods[strategy])
            elif strategy == "vote_entropy":
                M = load(inp, "plain")
                u = vote_entropy(M.argmax(axis=2).T, np.arange(M.shape[2]))
            else:   # average_kl_divergence clips its input in place: give it a copy, as their strategy does
                u = average_kl_divergence(load(inp, "plain").copy())
            return simple_batch(u, random_state=0, batch_size=n)
        return run
    if peer == "baal":
        from baal.active.heuristics import BALD, Certainty, Entropy, Margin

        heuristics = {"least_confidence": Certainty(), "margin": Margin(), "entropy": Entropy(), "bald": BALD()}

        def run(strategy, inp, n):
            data = load(inp, "plain" if inp == "probs" else "baal")
            return heuristics[strategy].get_ranks(data)[0][:n]
        return run
    if peer == "batchbald_redux":
        from batchbald_redux.batchbald import get_bald_batch, get_batchbald_batch

        def run(strategy, inp, n):
            lp = load(inp, "bbr")
            if strategy == "bald":
                return get_bald_batch(lp, n).indices
            return get_batchbald_batch(lp, n, num_samples=40_000, dtype=torch_double()).indices
        return run
    raise ValueError(peer)


def torch_double():
    import torch

    return torch.double


def worker(side: str, folder: str, timed: int) -> None:
    """Serve cases read from stdin (JSON lines), answering with times and picks."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    runners: dict = {}
    warm: set = set()
    for line in sys.stdin:
        req = json.loads(line)
        if "check" in req:          # do their picks hold the same scores as ours, under our scores?
            print(json.dumps({"equal": _equal_up_to_ties(req, folder)}), flush=True)
            continue
        key = req.get("peer", "ours")
        if key not in runners:
            runners[key] = _ours(Path(folder)) if side == "ours" else _theirs(Path(folder), key)
        run = runners[key]
        case = (key, req["strategy"], req["input"], req["n"])
        if case not in warm:        # the first call of a case: loading, first touch, lazy imports
            run(req["strategy"], req["input"], req["n"])
            warm.add(case)
        secs, picks = [], None
        for _ in range(timed):
            t0 = time.perf_counter()
            picks = run(req["strategy"], req["input"], req["n"])
            secs.append(time.perf_counter() - t0)
        picks = [int(i) for i in np.asarray(picks).reshape(-1)]
        print(json.dumps({"seconds": secs, "picks": picks}), flush=True)


def _equal_up_to_ties(req: dict, folder: str) -> bool:
    import numpy as np

    import activebatch as ab

    data = np.load(Path(folder) / f"{req['input']}.npy")
    field = "probs" if req["input"] == "probs" else "mc_probs"
    if req["strategy"] == "batchbald":                # a joint choice: no per-item score to compare
        return sorted(req["ours"]) == sorted(req["check"])
    extra = {"embeddings": np.load(Path(folder) / "emb.npy")} if req["strategy"] == "egl" else {}
    sel = ab.select(req["strategy"], req["n"], return_result=True, **{field: data}, **extra)
    mine = np.sort(sel.scores)
    theirs = np.sort(sel.candidate_scores[np.asarray(req["check"])])
    return bool(np.allclose(mine, theirs, rtol=1e-12, atol=1e-12))


class Worker:
    def __init__(self, python: Path | str, side: str, folder: Path, timed: int):
        env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen([str(python), __file__, "--worker", side, "--folder", str(folder),
                                      "--timed", str(timed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died on {req}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="alternations of ours and theirs per case")
    parser.add_argument("--timed", type=int, default=1, help="timed calls per alternation (after one warm-up per case)")
    parser.add_argument("--quick", action="store_true", help="small inputs")
    parser.add_argument("--json", default=None, help="write the table to this JSON file")
    parser.add_argument("--note", default="", help="a remark stored in the JSON (e.g. the machine's load)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.timed)
        return
    sizes = dict(N=200_000, K=100, d=64, N_mc=100_000, S=20, K_mc=10, N_small=2_000, n=100, n_small=5)
    if args.quick:
        sizes.update(N=20_000, N_mc=10_000, N_small=500, n=20)
    versions = ensure_peers()
    print("peers:", ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, sizes)
        ours = Worker(sys.executable, "ours", folder, args.timed)
        theirs = Worker(peers_python(), "theirs", folder, args.timed)
        print("| strategy | shape | peer | ours s | theirs s | theirs / ours | same picks | overlap "
              "| equal up to ties |\n|---|---|---|---|---|---|---|---|---|", flush=True)
        try:
            for strategy, inp, nkey, peers in CASES:
                n = sizes[nkey]
                shape = (f"{sizes['N']:,} x {sizes['K']}" if inp == "probs" else
                         f"{sizes['S']} x {sizes['N_mc' if inp == 'mc' else 'N_small']:,} x {sizes['K_mc']}")
                for peer in peers:
                    a, b = [], []
                    for _ in range(args.repeats):
                        ra = ours.ask(strategy=strategy, input=inp, n=n)
                        rb = theirs.ask(strategy=strategy, input=inp, n=n, peer=peer)
                        a += ra["seconds"]
                        b += rb["seconds"]
                    ta, tb = statistics.median(a), statistics.median(b)
                    overlap = len(set(ra["picks"]) & set(rb["picks"]))
                    ties = ours.ask(check=rb["picks"], ours=ra["picks"], strategy=strategy, input=inp, n=n)
                    row = dict(strategy=strategy, shape=shape, n=n, peer=peer, ours_s=ta, theirs_s=tb,
                               ratio=tb / ta, same_picks=overlap == n, overlap=overlap,
                               same_order=ra["picks"] == rb["picks"], equal_up_to_ties=ties["equal"])
                    rows.append(row)
                    print(f"| {strategy} | {shape}, n={n} | {peer} | {ta:.4f} | {tb:.4f} | {tb / ta:.2f} | "
                          f"{row['same_picks']} | {overlap}/{n} | {ties['equal']} |", flush=True)
        finally:
            ours.close()
            theirs.close()
    print("\n" + markdown(rows))
    if args.json:
        import torch

        with open(args.json, "w") as fh:
            json.dump(dict(note=args.note, threads=1, repeats=args.repeats, timed=args.timed, sizes=sizes,
                           versions=versions, ours_versions={"torch": torch.__version__}, rows=rows), fh, indent=2)


def markdown(rows: list[dict]) -> str:
    """The README's table: one line a strategy, each peer's time and theirs / ours."""
    peers = ["modAL", "scikit-activeml", "baal", "batchbald_redux", "numpy"]
    lines = ["| strategy | input | ours s | " + " | ".join(p if p != "numpy" else "plain numpy" for p in peers)
             + " | same picks |", "|---|---|---|" + "---|" * len(peers) + "---|"]
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["strategy"], []).append(r)
    for strategy, rs in by.items():
        cell = {r["peer"]: f"{r['theirs_s']:.3f} ({r['ratio']:.2f}x)" for r in rs}
        same = ("yes" if all(r["same_picks"] for r in rs) else
                "up to ties" if all(r["equal_up_to_ties"] for r in rs) else "no")
        lines.append(f"| {strategy} | {rs[0]['shape']}, n = {rs[0]['n']} | {min(r['ours_s'] for r in rs):.3f} | "
                     + " | ".join(cell.get(p, "—") for p in peers) + f" | {same} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
