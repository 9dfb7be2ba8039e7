"""Command-line subcommands for workspaces: ``activebatch init | query | export | import | status
| serve | restore``. :func:`add_commands` adds them to the main parser; :func:`run` carries
one out. Handlers print one line per result to stdout and progress to stderr; errors are raised
as ``ValueError`` (the main program prints them and exits with status 2), and Ctrl-C exits with
status 130 after saying that nothing was recorded by the interrupted write.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .args import key_value, positive_int, seed_int

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = ("init", "query", "export", "import", "status", "serve", "restore", "ml-backend")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the workspace subcommands to ``sub``."""
    init = sub.add_parser("init", help="create a labelling workspace from a table, an image folder, features or texts")
    init.add_argument("dir", help="workspace folder (created; must not hold a workspace)")
    init.add_argument("--items", required=True,
                      help="a .csv/.parquet table (one item per row), a folder of images, a .npy/.npz "
                           "feature matrix, or a .csv/.parquet/.jsonl table of texts (with --text-column)")
    init.add_argument("--classes", required=True, help="class names, comma-separated, or @FILE with one per line")
    init.add_argument("--ids", default=None, help="ids of the rows of a .npy feature matrix (or of --features)")
    init.add_argument("--id-column", default=None, help="table column with the item ids (default: 'id' if present, "
                                                         "else the row number)")
    init.add_argument("--label-column", default=None, help="table column with labels already known (not a feature)")
    init.add_argument("--ignore-columns", default="",
                      help="comma-separated table columns shown but not used as features")
    init.add_argument("--features", default=None,
                      help="precomputed features (.npy/.npz/.csv/.parquet) the model trains on instead, matched by id")
    init.add_argument("--text-column", default=None,
                      help="the items are texts, held in this column; features: TF-IDF + SVD (needs "
                           "activebatch[text]), --text-model, or --features")
    init.add_argument("--text-model", default=None, metavar="NAME",
                      help="features of text items from this sentence-transformers model, already on this machine "
                           "(a cached name or a saved model's folder; never downloaded)")
    init.add_argument("--text-dim", type=positive_int, default=100,
                      help="dimension of the TF-IDF + SVD text features (default: 100, capped by the number of "
                           "texts and of distinct terms)")
    init.add_argument("--image-size", type=positive_int, default=None,
                      help="resize images to SIZE x SIZE (default: keep a common size up to 64, else 32)")
    init.add_argument("--image-mode", choices=["auto", "L", "RGB"], default="auto", help="grey levels or colour")
    init.add_argument("--model", default="mlp",
                      help="mlp (default), linear, cnn (images), or sklearn (with --sklearn)")
    init.add_argument("--sklearn", default=None, metavar="MODULE:FUNCTION",
                      help="with --model sklearn: the factory returning a scikit-learn classifier or skorch net")
    init.add_argument("--sklearn-embed", default="transform",
                      help="embeddings of the scikit-learn model: transform (default: a pipeline's output before "
                           "its last step), a step name, hidden (MLPClassifier), or none")
    init.add_argument("--hidden", type=positive_int, default=None, help="embedding width of the mlp/cnn")
    init.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3; 1e-4 for tables)")
    init.add_argument("--max-epochs", type=positive_int, default=200, help="epoch cap per training run (default: 200)")
    init.add_argument("--dropout", type=float, default=0.0, help="dropout before the head (MC-dropout strategies)")
    init.add_argument("--bayesian", action="store_true",
                      help="a Bayes-by-Backprop head: weight samples for the strategies reading mc_probs")
    init.add_argument("--restart-stalled", action="store_true",
                      help="restart a stalled fit from fresh weights, the BADGE authors' rule: every 50 epochs "
                           "below 20%% training accuracy (torch models)")
    init.add_argument("--restart-every", type=int, default=None, metavar="EPOCHS",
                      help="with --restart-stalled: check every EPOCHS epochs (default: 50)")
    init.add_argument("--restart-below", type=float, default=None, metavar="ACCURACY",
                      help="with --restart-stalled: restart below this training accuracy, in (0, 1] (default: 0.2)")
    init.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    init.add_argument("--seed", type=seed_int, default=0,
                      help="seed of every round's training and selection (default: 0)")
    init.add_argument("--labels", default=None, help="labels to record now (CSV/Parquet/Label Studio JSON)")
    init.add_argument("--eval-labels", default=None, help="labelled evaluation split (held out; gives accuracy)")
    init.add_argument("--annotator", default=None, help="name recorded with those labels (default: login name)")
    init.add_argument("--missing", choices=["refuse", "mean", "median", "zero"], default="refuse",
                      help="empty cells in a table's numeric columns: refuse (default), or fill with the column's "
                           "mean, median or 0 (the fill values are recorded and reported)")
    init.add_argument("--conflicts", choices=["refuse", "majority", "latest"], default="refuse",
                      help="--labels/--eval-labels giving one item different labels: refuse (default), majority "
                           "vote or the latest annotation (as for import)")

    q = sub.add_parser("query", help="train on the labels so far and record the next batch")
    q.add_argument("dir", help="workspace folder")
    q.add_argument("-n", type=positive_int, required=True, help="batch size")
    q.add_argument("--strategy", default="badge", help="strategy name (default: badge)")
    q.add_argument("--option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="strategy option (repeatable)")
    q.add_argument("--include-pending", action="store_true",
                   help="also offer items of earlier batches that are still unlabelled")
    q.add_argument("--device", default=None, help="override the workspace's device")
    q.add_argument("--max-epochs", type=positive_int, default=None, help="override the workspace's epoch cap")
    q.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")

    ex = sub.add_parser("export", help="write a batch for annotators (CSV, Parquet or Label Studio JSON)")
    ex.add_argument("dir", help="workspace folder")
    ex.add_argument("--round", type=positive_int, default=None, help="round (default: the latest)")
    ex.add_argument("--format", choices=["csv", "json", "parquet"], default=None,
                    help="csv, parquet, or json (Label Studio tasks); default: from --out, else csv")
    ex.add_argument("--out", default=None, help="output file (default: DIR/exports/round-N.FORMAT)")
    ex.add_argument("--image-url", default="/data/local-files/?d={relpath}",
                    help="Label Studio image URL template: {relpath}, {path}, {name}, {id} (default: %(default)s)")
    ex.add_argument("--embed-images", action="store_true", help="put the images into the JSON as data URIs")
    ex.add_argument("--unlabeled-only", action="store_true", help="leave out items that already have a label")

    im = sub.add_parser("import", help="record labels from a CSV/Parquet file or a Label Studio JSON export")
    im.add_argument("dir", help="workspace folder")
    im.add_argument("file", help="labels: a table with id,label[,annotator] columns, or a Label Studio export")
    im.add_argument("--split", choices=["train", "eval"], default="train",
                    help="train (default) or eval (held-out evaluation items)")
    im.add_argument("--annotator", default=None, help="name recorded when the file names none (default: login name)")
    im.add_argument("--overwrite", action="store_true", help="replace labels that differ from the recorded ones")
    im.add_argument("--round", type=positive_int, default=None, help="accept only items of this round's batch")
    im.add_argument("--any-item", action="store_true", help="accept items outside the batches (initial labels)")
    im.add_argument("--from-name", default=None, help="Label Studio Choices tag to read (default: the only one)")
    im.add_argument("--conflicts", choices=["refuse", "majority", "latest"], default="refuse",
                    help="when the file gives one item different labels (several annotators, tasks or rows): refuse "
                         "the file (default), take the most common label (ties are refused), or the latest "
                         "annotation by updated_at, else created_at (ties are refused; table rows: the last row)")

    stt = sub.add_parser("status", help="labels per class, rounds, held-out accuracy and the learning curve")
    stt.add_argument("dir", help="workspace folder")
    stt.add_argument("--json", action="store_true", help="print the summary as JSON")
    stt.add_argument("--plot", default=None, help="learning-curve PNG (default: DIR/learning_curve.png)")
    stt.add_argument("--no-plot", action="store_true", help="do not write the learning curve")
    stt.add_argument("--evaluate", action="store_true",
                     help="first train on the current labels and measure held-out accuracy (a new curve point)")

    rst = sub.add_parser("restore", help="put a backup of the workspace store in place of a damaged one")
    rst.add_argument("dir", help="workspace folder")
    rst.add_argument("--backup", default=None,
                     help="backup file or its name in DIR/backups (default: the newest); it is checked first")

    srv = sub.add_parser("serve", help="the labelling page: label the current batch in a browser")
    srv.add_argument("dir", help="workspace folder")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    srv.add_argument("--lease", type=float, default=120.0,
                     help="seconds an item shown to one annotator is held back from the others (default: 120)")
    srv.add_argument("--max-body", type=positive_int, default=1 << 20, metavar="BYTES",
                     help="largest request body accepted; larger ones get 413 (default: 1048576, 1 MiB)")

    mlb = sub.add_parser("ml-backend", help="a Label Studio ML backend: predictions, live labels, the next batch")
    mlb.add_argument("dir", help="workspace folder")
    mlb.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    mlb.add_argument("--port", type=int, default=9090, help="port (default: 9090; 0 picks a free one)")
    mlb.add_argument("--strategy", default=None,
                     help="strategy of the next batches (default: the last round's; badge after a random round)")
    mlb.add_argument("-n", "--batch-size", type=positive_int, default=None,
                     help="size of the next batches (default: the last round's, else 10)")
    mlb.add_argument("--option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="strategy option (repeatable; default: the last round's options for its strategy)")
    mlb.add_argument("--conflicts", choices=["refuse", "majority", "latest"], default="refuse",
                     help="annotations of one item that disagree: leave it unlabelled until they agree (refuse, "
                          "default), the most common class (majority), or the annotation updated last (latest)")
    mlb.add_argument("--score", choices=["confidence", "margin"], default="confidence",
                     help="prediction score, low = uncertain (Label Studio's uncertainty sampling shows the lowest "
                          "first): the predicted class's probability (default) or the top-two margin")
    mlb.add_argument("--from-name", default=None,
                     help="the labelling interface's Choices tag (default: the only one, else 'label')")
    mlb.add_argument("--no-push", action="store_true",
                     help="do not import each new batch into the connected Label Studio project")
    mlb.add_argument("--label-studio-url", default=os.environ.get("LABEL_STUDIO_URL"),
                     help="Label Studio's URL for importing new batches (default: $LABEL_STUDIO_URL, else the "
                          "hostname Label Studio sends when it connects)")
    mlb.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                     help="Label Studio API token for importing new batches (default: $LABEL_STUDIO_API_KEY, else the "
                          "project owner's legacy token that Label Studio sends when it connects)")
    mlb.add_argument("--image-url", default="/data/local-files/?d={relpath}",
                     help="image URL template of imported tasks, as for export (default: %(default)s)")
    mlb.add_argument("--embed-images", action="store_true", help="put the images into imported tasks as data URIs")
    mlb.add_argument("--device", default=None, help="override the workspace's training device")
    mlb.add_argument("--max-body", type=positive_int, default=100 << 20, metavar="BYTES",
                     help="largest request body accepted; larger ones get 413 (default: 104857600, 100 MiB)")


def run(args: argparse.Namespace) -> int:
    """Carry out one of :data:`COMMANDS`; returns the exit status."""
    handler = {"init": _init, "query": _query, "export": _export, "import": _import,
               "status": _status, "serve": _serve, "restore": _restore, "ml-backend": _ml_backend}[args.command]
    try:
        code = handler(args)
        sys.stdout.flush()   # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print(f"activebatch {args.command}: interrupted; the workspace is unchanged by this command "
              "(labels recorded before are kept)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`activebatch status DIR | head`): stop quietly, as tools killed by
        # SIGPIPE do. Output still buffered would fail again at exit, so it goes to /dev/null.
        stdout_to_devnull()
        return 141


def stdout_to_devnull() -> None:
    """Point stdout at /dev/null (after the reader of a pipe went away)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # stdout is no real file (captured in tests): nothing to flush later
        pass


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# select ---------------------------------------------------------------------------------------------
# Workspaces -----------------------------------------------------------------------------------------
def _init(args: argparse.Namespace) -> int:
    from ..workspace.model import ModelConfig
    from ..workspace.workspace import Workspace

    restart_opts = {k: v for k, v in (("every", args.restart_every), ("below", args.restart_below)) if v is not None}
    if restart_opts and not args.restart_stalled:
        raise ValueError("--restart-every and --restart-below set the rule of --restart-stalled: add it")
    config = ModelConfig(model=args.model, hidden=args.hidden, lr=args.lr, max_epochs=args.max_epochs,
                         dropout=args.dropout, bayesian=args.bayesian, device=args.device, seed=args.seed,
                         sklearn=args.sklearn, sklearn_embed=args.sklearn_embed,
                         restart_stalled=restart_opts or args.restart_stalled)
    ignore = [c.strip() for c in args.ignore_columns.split(",") if c.strip()]
    ws = Workspace.create(args.dir, args.items, args.classes, ids=args.ids, id_column=args.id_column,
                          label_column=args.label_column, ignore_columns=ignore, image_size=args.image_size,
                          image_mode=args.image_mode, features=args.features, model=config, labels=args.labels,
                          missing=args.missing, conflicts=args.conflicts,
                          eval_labels=args.eval_labels, annotator=args.annotator, text_column=args.text_column,
                          text_model=args.text_model, text_dim=args.text_dim)
    labels = ws.labels()
    n_train = int((labels["split"] == "train").sum())
    n_eval = int((labels["split"] == "eval").sum())
    print(f"created workspace {args.dir}: {len(ws)} {ws.kind} items, classes {', '.join(ws.classes)}; "
          f"{n_train} training and {n_eval} evaluation labels; model {ws.config.describe(ws.kind)}")
    how = (ws.store.meta().get("items_info") or {}).get("text_features") or {}
    if how.get("method") == "tfidf-svd":
        print(f"text features: TF-IDF + SVD, {how['n_components']} dimensions from {how['vocabulary']} terms "
              f"({100 * how['explained_variance']:.1f}% of the TF-IDF variance)")
    elif how.get("method") == "sentence-transformers":
        print(f"text features: {how['model']} embeddings, {how['dim']} dimensions")
    imputed = (ws.store.meta().get("items_info") or {}).get("imputed") or {}
    if imputed:
        print(f"filled empty cells with the column {args.missing}: " +
              ", ".join(f"{col} ({v['count']} cell(s) = {v['value']:.6g})" for col, v in imputed.items()))
    return 0


def _query(args: argparse.Namespace) -> int:
    from ..workspace.workspace import Workspace

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ws = Workspace(args.dir)
    res = ws.query(args.n, args.strategy, options=dict(args.option), include_pending=args.include_pending,
                   device=args.device, max_epochs=args.max_epochs, progress=_progress)
    print(res)
    print(f"next: activebatch export {args.dir} --round {res.round} (or activebatch serve {args.dir})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..workspace.workspace import Workspace

    ws = Workspace(args.dir)
    fmt = args.format
    if args.out is None:
        rnd = args.round or ws.store.last_round()
        fmt = fmt or "csv"
        out = Path(args.dir) / "exports" / f"round-{rnd}.{fmt}"
    else:
        out = Path(args.out)
    path = ws.export(out, round=args.round, format=fmt, image_url=args.image_url, embed_images=args.embed_images,
                     unlabeled_only=args.unlabeled_only)
    n = len(ws.batch(args.round))
    print(f"wrote {path} ({n} items of round {args.round or ws.store.last_round()})")
    if path.suffix.lower() == ".json":
        print(f"Label Studio labelling interface: {path.with_name(path.stem + '.label_config.xml')}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..workspace.workspace import Workspace

    ws = Workspace(args.dir)
    res = ws.import_labels(args.file, split=args.split, annotator=args.annotator, overwrite=args.overwrite,
                           round=args.round, any_item=args.any_item, from_name=args.from_name,
                           conflicts=args.conflicts)
    print(res)
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..workspace.workspace import Workspace

    ws = Workspace(args.dir)
    if args.evaluate:
        snap = ws.evaluate(progress=_progress)
        print(f"evaluated: held-out accuracy {snap['eval_accuracy']:.3f} with {snap['n_train']} training labels",
              file=sys.stderr)
    plot: Any = False if args.no_plot else (args.plot or True)
    st = ws.status(plot=plot)
    if args.json:
        print(json.dumps(st.to_dict(), indent=1))
    else:
        print(st.to_text())
    return 0


def _restore(args: argparse.Namespace) -> int:
    from ..workspace.health import restore_backup

    restored, aside = restore_backup(args.dir, args.backup)
    print(f"restored {restored.name}; the files it replaced are in {aside}")
    print("labels recorded after that backup are not in it: import their files again")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..workspace.server import serve

    try:
        serve(args.dir, host=args.host, port=args.port, lease_seconds=args.lease, max_body=args.max_body)
    except KeyboardInterrupt:   # Ctrl-C is how the server is meant to stop
        pass
    print("activebatch serve: stopped; every label given is in the workspace", file=sys.stderr)
    return 0


def _ml_backend(args: argparse.Namespace) -> int:
    from ..workspace.mlbackend import serve_ml_backend

    try:
        serve_ml_backend(args.dir, host=args.host, port=args.port, max_body=args.max_body, strategy=args.strategy,
                         batch_size=args.batch_size, options=dict(args.option), conflicts=args.conflicts,
                         score=args.score, from_name=args.from_name, push=not args.no_push,
                         label_studio_url=args.label_studio_url, api_key=args.api_key, image_url=args.image_url,
                         embed_images=args.embed_images, device=args.device)
    except KeyboardInterrupt:   # Ctrl-C is how the server is meant to stop
        pass
    print("activebatch ml-backend: stopped; every label received is in the workspace", file=sys.stderr)
    return 0
