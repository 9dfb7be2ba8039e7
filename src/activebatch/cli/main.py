"""The ``activebatch`` command line."""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..utils.extras import MissingExtraError, require
from .args import positive_int

__all__ = ["main"]

DEMO_STRATEGIES = ["random", "entropy", "margin", "coreset", "badge"]
_WORKSPACE_COMMANDS = ("init", "query", "export", "import", "status", "serve", "restore", "ml-backend")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activebatch", description="Deep batch active learning: BADGE and friends.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="compare strategies on a bundled data set and plot learning curves")
    demo.add_argument("--dataset", default="mnist-5k", help="data set name (default: mnist-5k)")
    demo.add_argument("--strategies", default=",".join(DEMO_STRATEGIES),
                      help="comma-separated strategy names (default: %(default)s)")
    demo.add_argument("--initial", type=positive_int, default=100, help="initial random labels (default: 100)")
    demo.add_argument("--batch-size", type=positive_int, default=100, help="labels per round (default: 100)")
    demo.add_argument("--rounds", type=positive_int, default=10, help="selection rounds (default: 10)")
    demo.add_argument("--seed", type=int, default=0, help="first random seed (default: 0)")
    demo.add_argument("--repeats", type=positive_int, default=3,
                      help="runs per strategy, with seeds seed, seed+1, ... (default: 3)")
    demo.add_argument("--max-epochs", type=positive_int, default=200, help="epoch cap per training run")
    demo.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    demo.add_argument("--workers", type=int, default=None,
                      help="parallel worker processes, one run each (default: number of CPU cores)")
    demo.add_argument("--out", default="activebatch-demo", help="output folder (default: %(default)s)")

    bench = sub.add_parser("bench", help="run an experiment grid (TOML spec) into a results store")
    bench.add_argument("spec", help="grid spec, a TOML file (see benchmarks/specs/)")
    bench.add_argument("--out", required=True, help="output folder; holds results.sqlite (resumable)")
    bench.add_argument("--executor", choices=["local", "ray"], default="local",
                       help="local worker processes (default) or Ray tasks")
    bench.add_argument("--workers", type=positive_int, default=None,
                       help="local worker processes (default 1), or CPUs of a locally started Ray instance")
    bench.add_argument("--address", default=None, help="address of an existing Ray cluster to join")
    bench.add_argument("--dry-run", action="store_true", help="list the runs that would execute and stop")
    bench.add_argument("--report", action="store_true", help="write the report when the grid is done")

    report = sub.add_parser("report",
                            help="figures, a Markdown summary and a self-contained HTML page of a results store")
    report.add_argument("dir", help="folder holding results.sqlite, or a .sqlite results store")
    report.add_argument("--out", default=None, help="report folder (default: DIR/report)")
    report.add_argument("--markdown", default=None,
                        help="also write the Markdown to this file, its figure links pointing into the report folder")
    report.add_argument("--export", default="csv",
                        help="comma-separated formats of the full results table: csv, parquet (default: csv)")
    report.add_argument("--targets", default="0.9,0.95",
                        help="comma-separated test accuracies for the table of labels needed to reach them "
                             "(default: 0.9,0.95)")

    from .select import add_command as _add_select_command
    from .workspace import add_commands as _add_workspace_commands

    _add_select_command(sub)
    _add_workspace_commands(sub)   # init, query, export, import, status, serve, restore
    sub.add_parser("strategies", help="list the registered strategies")
    ds = sub.add_parser("datasets", help="list the data sets: source, size, classes, available offline now")
    ds.add_argument("--root", default=None,
                    help="data folder to check for files (default: $ACTIVEBATCH_DATA or ~/.cache/activebatch)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()   # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`activebatch strategies | head`): stop quietly, as tools killed by
        # SIGPIPE do; output still buffered would fail again at exit, so stdout goes to /dev/null.
        from .workspace import stdout_to_devnull

        stdout_to_devnull()
        return 141


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "report":
            return _report(args)
        if args.command == "select":
            from .select import run as _run_select

            return _run_select(args)
        if args.command in _WORKSPACE_COMMANDS:
            from .workspace import run as _run_workspace_command

            return _run_workspace_command(args)
        if args.command == "strategies":
            return _strategies()
        if args.command == "datasets":
            return _datasets(args)
    except (ValueError, TypeError, FileNotFoundError, MissingExtraError) as exc:
        print(f"activebatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover


def plain_text(doc: str) -> str:
    """The first paragraph of a docstring as plain text: reST roles and literals unwrapped."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    para = re.sub(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", lambda m: m.group(1).rsplit(".", 1)[-1]
                  if m.group(0).startswith((":class:`~", ":func:`~", ":meth:`~", ":mod:`~")) else m.group(1), para)
    return para.replace("``", "")


def _strategies() -> int:
    """Each strategy's name, what it needs, and its docstring's first paragraph, wrapped whole."""
    import shutil
    import textwrap

    from .. import strategies

    names = strategies.names()
    width = max(len(n) for n in names)
    cols = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    for name in names:
        cls = strategies.strategy_class(name)
        needs = ", ".join(sorted(cls.needs)) or "nothing"
        text = f"{plain_text(cls.__doc__ or '')} [needs: {needs}]"
        lines = textwrap.wrap(text, width=cols - width - 2) or [""]
        print(f"{name:{width}s}  {lines[0]}")
        for line in lines[1:]:
            print(" " * (width + 2) + line)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..experiments import load_spec, run_bench
    from ..experiments.store import ResultsStore

    if args.report and not args.dry_run:   # before the grid runs, not after
        require("matplotlib", "plot", "activebatch bench --report")
    spec = load_spec(args.spec)
    runs = spec.runs()
    if args.dry_run:
        try:   # a dry run only reads: it creates no store and changes none
            done = ResultsStore(args.out, create=False).completed()
        except FileNotFoundError:
            done = set()
        for key in runs:
            print(("done     " if key.run_id in done else "pending  ") + key.run_id
                  + ("" if key.run_id in done else _checkpoint_note(Path(args.out), key.run_id)))
        return 0
    print(f"activebatch bench: {spec.name}: {len(runs)} runs ({len(spec.datasets)} data sets x {len(spec.models)} "
          f"models x {len(spec.batch_sizes)} batch sizes x {len(spec.strategies)} strategies x {len(spec.seeds)} "
          f"seeds), executor {args.executor}")
    summary = run_bench(spec, args.out, executor=args.executor, workers=args.workers, address=args.address)
    print(summary)
    if args.report and summary.completed + summary.skipped > 0:
        from ..analysis.report import write_report

        print(f"report: {write_report(args.out)}")
    return 1 if summary.failed else 0


def _checkpoint_note(out: Path, run_id: str) -> str:
    """Where a pending run of a bench stands: after which round its checkpoint resumes it."""
    from ..experiments.bench import CHECKPOINTS
    from ..experiments.runner import checkpoint_path
    from ..loop.checkpoint import RunCheckpoint

    try:
        saved = RunCheckpoint.load(checkpoint_path(out / CHECKPOINTS, run_id))
    except ValueError as exc:
        return f"  (checkpoint unreadable: {exc})"
    if saved is None:
        return ""
    last = saved.history.rounds[-1]
    selected = f"; its last selection took {_duration(last.select_seconds)}" if last.round > 0 else ""
    return f"  (continues after round {last.round}, {_duration(saved.seconds)} spent until then{selected})"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _report(args: argparse.Namespace) -> int:
    from ..analysis.report import write_report

    formats = tuple(f.strip() for f in args.export.split(",") if f.strip())
    bad = [f for f in formats if f not in ("csv", "parquet")]
    if bad:
        raise ValueError(f"--export takes csv and/or parquet, got {bad}")
    try:
        targets = tuple(float(t) for t in args.targets.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--targets takes comma-separated accuracies in (0, 1], got {args.targets!r}") from None
    if not targets or not all(0 < t <= 1 for t in targets):
        raise ValueError(f"--targets takes comma-separated accuracies in (0, 1], got {args.targets!r}")
    path = write_report(args.dir, args.out, export=formats, targets=targets, markdown=args.markdown)
    print(f"wrote {path}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from .. import datasets

    rows = datasets.catalog(args.root)
    size = lambda n: "?" if n is None else f"{n:,}"  # noqa: E731
    print(f"{'name':14s} {'kind':8s} {'train':>8s} {'test':>7s} {'classes':>7s} {'offline':7s} source")
    for i in rows:
        print(f"{i.name:14s} {i.kind:8s} {size(i.n_train):>8s} {size(i.n_test):>7s} {size(i.n_classes):>7s} "
              f"{'yes' if i.offline else 'no':7s} {i.source}")
    print("openml-<id>: any OpenML data set by id (ARFF or Parquet under <root>/openml/<id>/)")
    return 0


def _demo_job(spec: dict[str, Any], queue: Any = None) -> list[dict]:
    """Run one strategy of the demo (in this process or a worker); returns result rows."""
    import torch

    torch.set_num_threads(1)  # one thread per process: torch on 2 threads stalls under load
    from .. import datasets
    from ..datasets.pool import Pool
    from ..learning import models
    from ..learning.learner import Learner
    from ..loop import run

    data = datasets.load(spec["dataset"])
    width = models.embedding_width(data.kind)
    lr = 1e-3 if data.kind == "image" else 1e-4
    model = models.for_dataset(data, "mlp", embedding_dim=width)   # standardises uint8 images
    learner = Learner(model, lr=lr, max_epochs=spec["max_epochs"], device=spec["device"])
    pool = Pool(data.X_train, data.y_train, n_classes=data.n_classes, name=data.name)

    class _Report:
        def update(self, k: int) -> None:
            if queue is not None:
                queue.put(k)

    hist = run(pool, learner, spec["strategy"], initial=spec["initial"], batch_size=spec["batch_size"],
               rounds=spec["rounds"], test=(data.X_test, data.y_test), seed=spec["seed"],
               progress=_Report() if queue is not None else spec.get("bar", False))
    return hist.to_frame().to_dict("records")


def _demo(args: argparse.Namespace) -> int:
    require("matplotlib", "plot", "activebatch demo (its learning-curve figure)")   # before the runs, not after
    import pandas as pd
    from tqdm.auto import tqdm

    from .. import datasets, strategies
    from ..plotting import learning_curve_table, plot_learning_curves

    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise ValueError("--strategies is empty")
    for name in names:
        strategies.strategy_class(name)  # unknown names fail before any work starts
    data = datasets.load(args.dataset)
    if args.initial + args.batch_size > len(data.y_train):
        raise ValueError(f"--initial + --batch-size exceeds the {len(data.y_train)} training items of {args.dataset}")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(names) * args.repeats))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    seeds = list(range(args.seed, args.seed + args.repeats))
    specs = [dict(dataset=args.dataset, strategy=s, initial=args.initial, batch_size=args.batch_size,
                  rounds=args.rounds, seed=seed, max_epochs=args.max_epochs, device=args.device)
             for s in names for seed in seeds]
    total = len(specs) * (args.rounds + 1)
    print(f"activebatch demo: {args.dataset} ({len(data.y_train)} train / {len(data.y_test)} test), "
          f"strategies {', '.join(names)}; {args.initial} initial labels + {args.rounds} rounds of "
          f"{args.batch_size}; seeds {seeds[0]}..{seeds[-1]}; {workers} worker process(es)")
    start = time.perf_counter()
    rows: list[dict] = []
    with tqdm(total=total, desc="demo", unit="round") as bar:
        if workers == 1:
            for spec in specs:
                bar.set_postfix(strategy=spec["strategy"])
                rows += _demo_job(dict(spec, bar=bar))
        else:
            rows += _run_parallel(specs, workers, bar)
    frame = pd.DataFrame(rows)
    elapsed = time.perf_counter() - start

    table = learning_curve_table(frame)[names]
    csv_path = out / "results.csv"
    frame.to_csv(csv_path, index=False)
    png = plot_learning_curves(frame, out / "learning_curves.png",
                               title=f"{args.dataset}: MLP, batch size {args.batch_size}, "
                                     f"{len(seeds)} seed(s), mean and standard error")
    print()
    print(f"Test accuracy by number of labels (mean over {len(seeds)} seed(s)):")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    sel = frame.groupby("strategy")["select_seconds"].sum().reindex(names) / len(seeds)
    print()
    print("Selection time per run (s): " + ", ".join(f"{k} {v:.2f}" for k, v in sel.items()))
    print(f"Wrote {csv_path} and {png} in {elapsed:.0f} s")
    return 0


def _run_parallel(specs: list[dict], workers: int, bar: Any) -> list[dict]:
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    rows: list[dict] = []
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_demo_job, spec, q) for spec in specs]
            pending = set(futures)
            while pending:
                try:
                    bar.update(q.get(timeout=0.2))
                except queue_mod.Empty:
                    pass
                pending = {f for f in pending if not f.done()}
            while True:
                try:
                    bar.update(q.get_nowait())
                except queue_mod.Empty:
                    break
            for f in futures:
                rows += f.result()
    return rows


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
