"""A labelling project on disk: items, the classes, the labels so far, and the rounds of queries.

>>> from activebatch.workspace import Workspace
>>> ws = Workspace.create("proj", items="items.csv", classes=["cat", "dog"])  # doctest: +SKIP
>>> ws.query(100, strategy="badge")                                          # doctest: +SKIP
>>> ws.export("batch.json", round=1)                                         # doctest: +SKIP
>>> ws.import_labels("labelstudio-export.json")                              # doctest: +SKIP

Everything lives in ``proj/workspace.sqlite`` (see :mod:`activebatch.workspace.store`); each
write is one transaction.
"""
from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..learning.callbacks import TimedCallback
from ..plotting.workspace import plot_workspace_curve
from ..utils.validation import check_scalar
from .errors import NotInBatchError, WorkspaceError
from .files import InputFileError, check_unique_ids, write_table
from .formats import LabelRows, image_data_uri, label_config, label_studio_tasks, read_label_file
from .items import ItemSet, read_items
from .model import ModelConfig, build_learner, feature_stats
from .store import SPLITS, LabelResult, WorkspaceStore
from .votes import check_policy

__all__ = ["Workspace", "QueryResult", "ImportResult", "WorkspaceStatus", "parse_classes", "default_annotator"]

Progress = Callable[[str], None] | None
LEARNING_CURVE = "learning_curve.png"


def default_annotator() -> str:
    """The name labels are recorded under when none is given (the login name)."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # pragma: no cover - no login name (some containers)
        return os.environ.get("USER", "unknown")


def parse_classes(classes: str | Sequence[str]) -> list[str]:
    """Class names from a list, a comma-separated string, or ``@file`` (one name per line)."""
    if isinstance(classes, str):
        if classes.startswith("@"):
            p = Path(classes[1:])
            if not p.is_file():
                raise InputFileError(f"classes file {str(p)!r} does not exist")
            names = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            names = [c.strip() for c in classes.split(",")]
    else:
        names = [str(c).strip() for c in classes]
    if any(not c for c in names):
        raise WorkspaceError("class names must not be empty")
    if len(names) < 2:
        raise WorkspaceError(f"a workspace needs at least 2 classes, got {names}")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise WorkspaceError(f"class names must be distinct; repeated: {', '.join(dup)}")
    return names


@dataclass
class QueryResult:
    """What one query did."""

    round: int
    strategy: str
    item_ids: list[str]
    positions: list[int]
    n_train_labels: int
    train_accuracy: float | None = None
    epochs: int | None = None
    eval_accuracy: float | None = None
    n_eval: int = 0
    fit_seconds: float = 0.0
    select_seconds: float = 0.0
    note: str = ""
    #: The model trained for this round (a :class:`~activebatch.Learner`; None when the round had
    #: no model), for callers that go on predicting with it (the Label Studio ML backend).
    learner: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        parts = [f"round {self.round}: {self.strategy} chose {len(self.item_ids)} item(s)"]
        if self.note:
            parts.append(f"({self.note})")
        if self.train_accuracy is not None:
            parts.append(f"- model trained on {self.n_train_labels} labels in {self.epochs} epochs "
                         f"({self.fit_seconds:.1f} s), training accuracy {self.train_accuracy:.3f}")
        if self.eval_accuracy is not None:
            parts.append(f", held-out accuracy {self.eval_accuracy:.3f} on {self.n_eval} items")
        return " ".join(parts).replace(" ,", ",")


@dataclass
class ImportResult:
    """What one label import did."""

    path: str
    labels: LabelResult
    rows: int
    unlabeled: int
    split: str
    settled: int = 0
    conflicts: str = "refuse"

    def __str__(self) -> str:
        extra = f"; {self.unlabeled} row(s)/task(s) without a label skipped" if self.unlabeled else ""
        if self.settled:
            extra += f"; {self.settled} item(s) with disagreeing labels settled by --conflicts {self.conflicts}"
        return f"{self.path}: {self.rows} label(s) read ({self.split} split): {self.labels}{extra}"


@dataclass
class WorkspaceStatus:
    """A summary of a workspace: labels per class, rounds, model metrics."""

    folder: str
    kind: str
    n_items: int
    classes: list[str]
    counts: pd.DataFrame
    annotators: dict[str, int]
    rounds: pd.DataFrame
    snapshots: pd.DataFrame
    n_train: int
    n_eval: int
    pending: int
    curve: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The stopping rules' values and verdicts (:func:`activebatch.workspace.stopping.stopping_status`).
    stopping: dict[str, Any] | None = None

    @property
    def eval_accuracy(self) -> float | None:
        """Held-out accuracy of the latest model evaluated on the labelled evaluation split."""
        s = self.snapshots.dropna(subset=["eval_accuracy"])
        return None if s.empty else float(s["eval_accuracy"].iloc[-1])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "folder": self.folder, "kind": self.kind, "n_items": self.n_items, "classes": self.classes,
            "labels": {"train": self.n_train, "eval": self.n_eval, "pending": self.pending,
                       "per_class": self.counts.to_dict("records"), "annotators": self.annotators},
            "rounds": json.loads(self.rounds.to_json(orient="records")),
            "eval_accuracy": self.eval_accuracy, "learning_curve": self.curve, "notes": self.notes,
            "stopping": self.stopping,
        }

    def to_text(self) -> str:
        """The summary as a few aligned tables."""
        lines = [f"workspace {self.folder}: {self.n_items} {self.kind} items, {len(self.classes)} classes",
                 f"labels: {self.n_train} train, {self.n_eval} eval; {self.pending} item(s) chosen and not yet "
                 f"labelled"]
        if self.annotators:
            lines.append("annotators: " + ", ".join(f"{k} ({v})" for k, v in self.annotators.items()))
        lines += ["", self.counts.to_string(index=False)]
        if not self.rounds.empty:
            shown = self.rounds.copy()
            for col in ("train_accuracy", "eval_accuracy"):
                shown[col] = [("-" if pd.isna(v) else f"{v:.3f}") for v in shown[col]]
            lines += ["", shown.to_string(index=False)]
        else:
            lines += ["", "no rounds yet: choose a batch with `activebatch query`"]
        acc = self.eval_accuracy
        if acc is not None:
            s = self.snapshots.dropna(subset=["eval_accuracy"]).iloc[-1]
            lines += ["", f"held-out accuracy: {acc:.3f} (model trained on {int(s['n_train'])} labels, "
                          f"{int(s['n_eval'])} evaluation items)"]
        if self.curve:
            lines.append(f"learning curve: {self.curve}")
        lines += self.notes
        if self.stopping:
            from .stopping import format_stopping

            lines += ["", *format_stopping(self.stopping)]
        return "\n".join(lines)


class Workspace:
    """An active-learning project backed by one SQLite file in ``folder``.

    Parameters
    ----------
    folder : str or Path
        A folder made by :meth:`create` (or ``activebatch init``).
    backups : int, optional
        Backups kept in ``folder/backups`` (default: ``$ACTIVEBATCH_BACKUPS``, else 5; 0: none);
        the store is copied there before this object's first write (see
        :mod:`activebatch.workspace.health`).

    Raises
    ------
    StoreDamagedError
        When the store fails its read-only check; the message names the newest backup and the
        line that restores it.
    """

    def __init__(self, folder: str | Path, *, backups: int | None = None) -> None:
        self.folder = Path(folder)
        self.store = WorkspaceStore(self.folder, backups=backups)
        meta = self.store.meta()
        self.kind: str = meta["kind"]
        self.config = ModelConfig.from_dict(meta.get("model", {}))

    # Creation ---------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, items: str | Path | ItemSet, classes: str | Sequence[str], *,
               ids: str | Path | None = None, id_column: str | None = None,
               label_column: str | None = None, ignore_columns: Sequence[str] = (),
               image_size: int | None = None, image_mode: str = "auto", features: str | Path | None = None,
               model: ModelConfig | None = None, labels: str | Path | None = None,
               eval_labels: str | Path | None = None, annotator: str | None = None,
               missing: str = "refuse", conflicts: str = "refuse", text_column: str | None = None,
               text_model: str | None = None, text_dim: int = 100) -> Workspace:
        """Create a workspace from items and a class list.

        Parameters
        ----------
        folder : str or Path
            Where the workspace goes (created if needed; must not hold one already).
        items : str, Path or ItemSet
            A CSV/Parquet table, a folder of images, or a ``.npy``/``.npz`` feature matrix
            (see :func:`activebatch.workspace.items.read_items` for ``ids``, ``id_column``,
            ``label_column``, ``ignore_columns``, ``image_size``, ``image_mode``, ``features``,
            ``missing``: empty numeric cells are refused unless ``"mean"``, ``"median"`` or
            ``"zero"`` says how to fill them).
        classes : str or sequence of str
            Class names (a list, ``"a,b,c"``, or ``"@classes.txt"``).
        model : ModelConfig, optional
            The model trained by queries (default: the paper's MLP).
        labels, eval_labels : str or Path, optional
            Label files recorded right away: training labels (any item) and the labelled
            evaluation split (never selected or trained on; gives held-out accuracy).
        annotator : str, optional
            Name recorded with those labels (default: the login name).
        conflicts : {"refuse", "majority", "latest"}, default "refuse"
            What to do when those files give one item different labels (as in :meth:`import_labels`).
        text_column, text_model, text_dim : optional
            Text items: the column of a ``.csv``/``.parquet``/``.jsonl`` table holding the texts,
            a local sentence-transformers model for their features (default: TF-IDF + SVD of
            ``text_dim`` dimensions, seeded by the model's seed); see :mod:`activebatch.workspace.text`.

        Every input is checked before anything is written: a bad file leaves no workspace.
        """
        names = parse_classes(classes)
        folder = Path(folder)
        if (folder / "workspace.sqlite").exists():
            raise WorkspaceError(f"{str(folder)!r} already holds a workspace; choose another folder")
        config = model or ModelConfig()
        item_set = items if isinstance(items, ItemSet) else read_items(
            items, ids=ids, id_column=id_column, label_column=label_column, ignore_columns=ignore_columns,
            image_size=image_size, image_mode=image_mode, features=features, missing=missing,
            text_column=text_column, text_model=text_model, text_dim=text_dim, seed=config.seed,
            device=config.device)
        check_unique_ids(item_set.ids, "items")
        if config.model == "cnn" and item_set.kind != "image":
            raise WorkspaceError("the cnn model needs image items")
        index = {str(i): k for k, i in enumerate(item_set.ids)}
        who = annotator or default_annotator()
        pending: list[tuple[str, list[int], list[int], list[str], str]] = []
        if item_set.labels:
            rows = LabelRows(format="items")
            for i, lab in item_set.labels.items():
                rows.add(i, lab, None, origin=f"item {i!r}")
            pending.append(("train", *_resolve(rows, index, names, f"label column {label_column!r}", who),
                            f"init:{label_column}"))
        for split, path in (("train", labels), ("eval", eval_labels)):
            if path is not None:
                rows = read_label_file(path).resolve(conflicts, where=f"labels file {str(path)!r}")
                pending.append((split, *_resolve(rows, index, names, f"labels file {str(path)!r}", who),
                                f"import:{Path(path).name}"))
        _check_split_overlap(pending, item_set.ids)
        meta: dict[str, Any] = {"kind": item_set.kind, "model": config.to_dict(), "items_info": item_set.info,
                                "feature_names": item_set.feature_names}
        if item_set.kind == "image":
            meta["image_shape"] = item_set.info.get("image_shape") if "features" not in item_set.info else None
            meta["image_root"] = item_set.info.get("items")
        if item_set.kind != "image" or "features" in item_set.info:
            meta["feature_mean"], meta["feature_std"] = feature_stats(
                item_set.features, common_scale=(item_set.info.get("text_features") or {}).get("common_scale", False))
        if config.model == "cnn" and meta.get("image_shape") is None:
            raise WorkspaceError("the cnn model trains on the pixels; it cannot be used with --features")
        store = WorkspaceStore.create(folder, classes=names, ids=[str(i) for i in item_set.ids],
                                      features=item_set.features, sources=item_set.sources,
                                      displays=item_set.displays, meta=meta)
        for split, pos, cls_, annot, source in pending:
            store.apply_labels(pos, cls_, split=split, annotators=annot, source=source)
        return cls(folder)

    # Basic reads ---------------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Class names, in class-index order."""
        return self.store.classes()

    def __len__(self) -> int:
        return self.store.n_items()

    def labels(self) -> pd.DataFrame:
        """Current labels (see :meth:`WorkspaceStore.labels`)."""
        return self.store.labels()

    def batch(self, round: int | None = None) -> pd.DataFrame:
        """The items of a round's batch (default: the latest), in selection order, with their
        current labels."""
        rnd = self._round(round)
        return self.store.selections(rnd)

    def _round(self, round: int | None) -> int:
        last = self.store.last_round()
        if last == 0:
            raise WorkspaceError("no batch has been chosen yet: run `activebatch query` first")
        if round is None:
            return last
        if isinstance(round, bool) or not isinstance(round, (int, np.integer)) or not 1 <= int(round) <= last:
            raise WorkspaceError(f"there is no round {round}; rounds are 1..{last}")
        return int(round)

    # Querying ---------------------------------------------------------------------------------------
    def query(self, n: int, strategy: str = "badge", *, options: dict[str, Any] | None = None,
              include_pending: bool = False, device: str | None = None, max_epochs: int | None = None,
              progress: Progress = None) -> QueryResult:
        """Train the workspace model on the labels so far and record a new batch of ``n`` items.

        Parameters
        ----------
        n : int
            Batch size.
        strategy : str, default "badge"
            A registered strategy (``activebatch.strategies.names()``).
        options : dict, optional
            Strategy options (e.g. ``{"init": "random"}`` for BADGE).
        include_pending : bool, default False
            Also offer items chosen in earlier rounds that are still unlabelled (by default they
            are out with annotators and not chosen again).
        device, max_epochs : optional
            Override the workspace's model configuration for this query.
        progress : callable, optional
            Receives one line of text per step (training, selecting).

        Returns
        -------
        QueryResult

        Until two classes have training labels there is no model to ask. A strategy that reads
        nothing but the candidates' ``embeddings`` (and optionally ``labeled_embeddings``), such
        as the cold-start strategies ``typiclust`` and ``probcover`` (or ``coreset``), then runs
        on the items' feature matrix: the candidates' features as ``embeddings``, the labelled
        training items' features as ``labeled_embeddings``, and an ``n_classes`` option left
        unset is the workspace's number of classes; the round records the strategy's own name
        and options, with a note. Any other strategy's batch is then drawn uniformly at random
        (recorded as strategy ``random`` with a note). Nothing is written until the batch is
        chosen; the round, its batch and the model's metrics are then recorded in one
        transaction.
        """
        from .. import strategies
        from ..datasets.pool import Pool
        from ..learning.evidence import Evidence
        from ..selection.round import MissingEvidenceError, check_evidence_available, select_round
        from ..utils.validation import check_n

        say = progress or (lambda _msg: None)
        strat = strategies.get(strategy, **(options or {}))
        try:
            n = check_scalar(n, "n", int, min_val=1)
        except ValueError as exc:
            raise WorkspaceError(str(exc)) from None
        store = self.store
        expected_last = store.last_round()
        rnd = expected_last + 1
        meta = store.meta()
        names = store.classes()
        X = store.features()
        labels = store.labels()
        train = labels[labels["split"] == "train"]
        eval_ = labels[labels["split"] == "eval"]
        in_pool = np.setdiff1d(np.arange(X.shape[0]), eval_["position"].to_numpy())
        local = {int(p): k for k, p in enumerate(in_pool)}
        pool = Pool(X[in_pool], n_classes=len(names), name=str(self.folder))
        if len(train):
            pool.label([local[int(p)] for p in train["position"]], np.array(train["class_index"], dtype=np.int64))
        cand = in_pool[pool.unlabeled_indices]
        pending = set() if include_pending else store.pending_positions()
        waiting = np.isin(cand, np.fromiter(pending, dtype=np.int64, count=len(pending)))
        what = "unlabelled items" + ("" if include_pending else " that are not waiting for a label in an earlier batch")
        if waiting.all():
            raise WorkspaceError(f"no {what} are left to choose from")
        check_n(int(n), int((~waiting).sum()), what)

        seq = np.random.SeedSequence([self.config.seed, rnd])
        train_seed = int(seq.generate_state(1)[0] % (2**31 - 1))
        rng = np.random.default_rng(seq)
        n_classes_seen = int(train["class_index"].nunique()) if len(train) else 0
        snapshot = None
        result = QueryResult(rnd, strat.name, [], [], len(train), n_eval=len(eval_))
        predicted = confidence = None
        stop_state = None   # the stopping rules' inputs from this round's model (workspace/stopping.py)
        features_only = "embeddings" in strat.needs and strat.needs <= {"embeddings", "labeled_embeddings"}
        if n_classes_seen < 2 and features_only:
            # No model, but the strategy reads only embeddings: the items' features serve (cold start).
            params = strat.get_params()
            if "n_classes" in params and params["n_classes"] is None:
                strat = type(strat)(**{**params, "n_classes": len(names)})
            result.strategy = strat.name
            result.note = (f"no model yet: {len(train)} training label(s) in {n_classes_seen} class(es); "
                           f"{strat.name} ran on the items' features")
            say(f"round {rnd}: {result.note}")
            lab_pos = train["position"].to_numpy(dtype=np.int64)
            evidence = Evidence.from_arrays(embeddings=X[cand], read=strat.needs | strat.optional,
                                            labeled_embeddings=X[lab_pos] if lab_pos.size else None)
            sel = select_round(strat, evidence, int(n), rng, exclude=waiting, what="unlabelled items")
            result.select_seconds = sel.seconds
            positions = cand[sel.indices]
            options_used: dict[str, Any] = strat.get_params()
        elif n_classes_seen < 2:
            result.strategy = "random"
            result.note = (f"no model yet: {len(train)} training label(s) in {n_classes_seen} class(es); "
                           f"the batch is drawn at random")
            say(f"round {rnd}: {result.note}")
            sel = select_round(strategies.get("random"), Evidence(cand.size), int(n), rng, exclude=waiting,
                               what="unlabelled items")
            result.select_seconds = sel.seconds
            positions = cand[sel.indices]
            options_used = {}
        else:
            learner = build_learner(self.config, kind=self.kind, n_features=X.shape[1], n_classes=len(names),
                                    meta=meta, device=device, max_epochs=max_epochs)
            try:   # before any training: what the strategy needs must be what this model gives
                check_evidence_available(strat, learner.evidence_fields(), source="the workspace model",
                                         hint=("create the workspace with --dropout 0.5 for MC-dropout samples "
                                               "or --bayesian for a Bayes-by-Backprop head's weight samples"
                                               if self.config.dropout == 0 and not self.config.bayesian else ""))
            except MissingEvidenceError as exc:
                raise WorkspaceError(f"{exc}; nothing was recorded") from None
            say(f"round {rnd}: training {self.config.model} on {len(train)} labels ({learner.device})")
            Xtr, ytr = pool.labeled_data()
            # the strategy's training work is charged to its selection, as in activebatch.run
            cbs = [TimedCallback(cb) for cb in strat.training_callbacks(pool)]
            fit = learner.fit(Xtr, ytr, seed=train_seed, **({"callbacks": cbs} if cbs else {}))
            result.train_accuracy, result.epochs, result.fit_seconds = fit.train_accuracy, fit.epochs, fit.seconds
            result.learner = learner
            if len(eval_):
                result.eval_accuracy = learner.score(X[eval_["position"].to_numpy()],
                                                     np.array(eval_["class_index"], dtype=np.int64))
            say(f"round {rnd}: trained in {fit.epochs} epochs ({fit.seconds:.1f} s); selecting {n} with {strat.name}")
            sel = select_round(strat, learner.evidence(pool), int(n), rng, exclude=waiting, what="unlabelled items")
            result.select_seconds = sel.seconds + sum(cb.seconds for cb in cbs)
            positions = cand[sel.indices]
            # one pass over every item: the stopping rules read them all, the batch its own rows
            P_all = learner.outputs(X, embeddings=False)[0]
            P = P_all.cpu().numpy()[positions]
            predicted, confidence = P.argmax(1).tolist(), P.max(1).tolist()
            from .stopping import META_KEY, observe_model

            stop_state = observe_model(meta.get(META_KEY), P_all, rnd, candidates=cand, batch=positions,
                                       seed=self.config.seed)
            snapshot = {"model": self.config.describe(self.kind), "n_train": len(train),
                        "train_accuracy": fit.train_accuracy, "epochs": fit.epochs, "fit_seconds": fit.seconds,
                        "n_eval": len(eval_), "eval_accuracy": result.eval_accuracy,
                        "class_counts": np.bincount(ytr, minlength=len(names)).tolist()}
            options_used = strat.get_params()
        result.positions = [int(p) for p in positions]
        rnd_written = store.record_round(
            expected_last=expected_last, strategy=result.strategy, options=_jsonable(options_used),
            seed=self.config.seed, positions=result.positions, predicted=predicted, confidence=confidence,
            n_train_labels=len(train), select_seconds=result.select_seconds, note=result.note, snapshot=snapshot)
        assert rnd_written == rnd
        if stop_state is not None:
            store.set_meta(META_KEY, stop_state)
        ids = store.items(result.positions)["item_id"].tolist()
        result.item_ids = ids
        return result

    def evaluate(self, *, device: str | None = None, progress: Progress = None) -> dict[str, Any]:
        """Train the model on the current training labels, measure it on the evaluation split and
        record the metrics (a point on the learning curve). Returns the recorded metrics."""
        labels = self.store.labels()
        train = labels[labels["split"] == "train"]
        eval_ = labels[labels["split"] == "eval"]
        if train["class_index"].nunique() < 2:
            raise WorkspaceError("training needs labels of at least two classes")
        if eval_.empty:
            raise WorkspaceError("there is no labelled evaluation split (import labels with --split eval)")
        names = self.store.classes()
        X = self.store.features()
        learner = build_learner(self.config, kind=self.kind, n_features=X.shape[1], n_classes=len(names),
                                meta=self.store.meta(), device=device)
        if progress:
            progress(f"training {self.config.model} on {len(train)} labels")
        seq = np.random.SeedSequence([self.config.seed, 0, len(train)])
        ytr = np.array(train["class_index"], dtype=np.int64)
        fit = learner.fit(X[train["position"].to_numpy()], ytr, seed=int(seq.generate_state(1)[0] % (2**31 - 1)))
        acc = learner.score(X[eval_["position"].to_numpy()], np.array(eval_["class_index"], dtype=np.int64))
        snap = {"model": self.config.describe(self.kind), "n_train": len(train), "train_accuracy": fit.train_accuracy,
                "epochs": fit.epochs, "fit_seconds": fit.seconds, "n_eval": len(eval_), "eval_accuracy": acc,
                "class_counts": np.bincount(ytr, minlength=len(names)).tolist()}
        self.store.record_snapshot(snap)
        return snap

    # Labels -------------------------------------------------------------------------------------------
    def import_labels(self, path: str | Path, *, split: str = "train", annotator: str | None = None,
                      overwrite: bool = False, round: int | None = None, any_item: bool = False,
                      from_name: str | None = None, conflicts: str = "refuse") -> ImportResult:
        """Record the labels in a CSV/Parquet table or a Label Studio JSON export.

        Parameters
        ----------
        path : str or Path
        split : {"train", "eval"}, default "train"
            ``eval`` puts the items in the evaluation split (held out from training and
            selection).
        annotator : str, optional
            Recorded for labels whose file names no annotator (default: the login name).
        overwrite : bool, default False
            Replace labels that differ from the ones recorded (otherwise the import is refused).
        round : int, optional
            Only accept items of this round's batch (default: items of any batch).
        any_item : bool, default False
            Accept any item of the workspace, chosen or not (initial labels). Always the case for
            the evaluation split.
        from_name : str, optional
            Label Studio ``Choices`` tag to read.
        conflicts : {"refuse", "majority", "latest"}, default "refuse"
            What to do when the file gives one item different labels (several annotations of a
            task, several tasks or rows of one item): refuse the file, take the most common
            label (a tie is refused), or take the latest annotation (``updated_at``, else
            ``created_at``; a tie is refused; table rows: the last row). See
            :mod:`activebatch.workspace.votes`.

        The whole file is checked first (unknown ids or classes, disagreeing labels, items
        outside the batch, conflicts with recorded labels); on any problem nothing is recorded.
        """
        if split not in SPLITS:
            raise WorkspaceError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        check_policy(conflicts)
        where = f"labels file {str(path)!r}"
        rows = read_label_file(path, from_name=from_name).resolve(conflicts, where=where)
        if len(rows) == 0:
            raise WorkspaceError(f"{str(path)!r} holds no labels ({rows.unlabeled} row(s)/task(s) without one)")
        index = self.store.positions_of(rows.ids)
        positions, classes, who = _resolve(rows, index, self.store.classes(), where, annotator or default_annotator())
        if split == "train" and not any_item:
            allowed = self.store.selected_positions(self._round(round) if round is not None else None)
            outside = [i for i, p in zip(rows.ids, positions) if p not in allowed]
            if outside:
                scope = f"the batch of round {round}" if round is not None else "any batch chosen so far"
                raise NotInBatchError(
                    f"{where}: {len(outside)} item(s) are not in {scope}: {_few(outside)}; nothing was recorded "
                    "(use --any-item to label items outside the batches, e.g. initial labels)")
        result = self.store.apply_labels(positions, classes, split=split, annotators=who,
                                         source=f"import:{Path(path).name}", overwrite=overwrite)
        return ImportResult(str(path), result, len(rows), rows.unlabeled, split, rows.settled, conflicts)

    def label(self, item_id: str, label: str, *, annotator: str, round: int | None = None,
              overwrite: bool = False, source: str = "api") -> LabelResult:
        """Record one training label for an item of a batch (of ``round``, default: any)."""
        rows = LabelRows()
        rows.add(item_id, label, annotator)
        index = self.store.positions_of(rows.ids)
        positions, classes, who = _resolve(rows, index, self.store.classes(), "label", annotator)
        allowed = self.store.selected_positions(round)
        if positions[0] not in allowed:
            scope = f"the batch of round {round}" if round is not None else "any batch"
            raise NotInBatchError(f"item {item_id!r} is not in {scope}")
        return self.store.apply_labels(positions, classes, split="train", annotators=who, source=source,
                                       overwrite=overwrite)

    def undo(self, item_id: str, *, annotator: str, source: str = "api") -> str | None:
        """Remove the label ``annotator`` gave ``item_id`` (kept in the label history). Returns
        the removed class, or None when the item had no label."""
        index = self.store.positions_of([item_id])
        if str(item_id) not in index:
            raise WorkspaceError(f"no item with id {item_id!r}")
        return self.store.remove_label(index[str(item_id)], annotator=annotator, source=source)

    # Export ------------------------------------------------------------------------------------------
    def export(self, path: str | Path, *, round: int | None = None, format: str | None = None,
               image_url: str = "/data/local-files/?d={relpath}", embed_images: bool = False,
               unlabeled_only: bool = False) -> Path:
        """Write a round's batch for annotators.

        Parameters
        ----------
        path : str or Path
            Output file; ``.json`` gives Label Studio tasks (and ``<name>.label_config.xml``,
            the labelling interface), ``.csv``/``.parquet`` a table with an empty ``label`` column
            (and the table row of tabular and text items).
        round : int, optional
            Default: the latest round.
        format : {"csv", "parquet", "json"}, optional
            Default: from the file name.
        image_url : str
            Label Studio image URL template with ``{relpath}`` (path relative to the image folder),
            ``{path}`` (absolute path), ``{name}`` (file name) or ``{id}``. The default suits Label
            Studio's local file serving with the image folder as document root.
        embed_images : bool, default False
            Put the images into the tasks as ``data:`` URIs instead (no file serving needed).
        unlabeled_only : bool, default False
            Leave out the batch items that already have a label.
        """
        p = Path(path)
        fmt = (format or p.suffix.lower().lstrip(".")).lower()
        fmt = {"pq": "parquet"}.get(fmt, fmt)
        if fmt not in ("csv", "parquet", "json"):
            raise WorkspaceError(f"export format must be csv, parquet or json, got {fmt or 'none'!r}")
        rnd = self._round(round)
        batch = self.store.selections(rnd)
        if unlabeled_only:
            batch = batch[batch["label"].isna()]
        root = Path(self.store.meta().get("image_root") or ".")
        if fmt == "json":
            def url(row: dict) -> str:
                src = Path(row["source"])
                if embed_images:
                    return image_data_uri(src)
                rel = src.relative_to(root).as_posix() if src.is_relative_to(root) else src.name
                return image_url.format(relpath=rel, path=src.as_posix(), name=src.name, id=row["item_id"])

            tasks = label_studio_tasks(batch, kind=self.kind, image_url=url,
                                       text_key=(self.store.meta().get("items_info") or {}).get("text_column"))
            _write_text(p, json.dumps(tasks, indent=1, ensure_ascii=False))
            _write_text(p.with_name(p.stem + ".label_config.xml"), label_config(self.kind, self.classes))
            return p
        frame = pd.DataFrame({"id": batch["item_id"], "round": batch["round"], "rank": batch["rank"],
                              "position": batch["position"]})
        if self.kind == "image":
            frame["path"] = batch["source"].to_numpy()
        elif self.kind in ("tabular", "text"):
            id_col = (self.store.meta().get("items_info") or {}).get("id_column")
            for col in (batch["display"].iloc[0] or {}) if len(batch) else {}:
                if col == id_col:
                    continue
                name = col if col not in frame.columns and col not in ("predicted", "confidence", "label",
                                                                        "annotator") else f"item.{col}"
                frame[name] = [(d or {}).get(col) for d in batch["display"]]
        frame["predicted"] = batch["predicted"].to_numpy()
        frame["confidence"] = batch["confidence"].to_numpy()
        frame["label"] = batch["label"].to_numpy()
        frame["annotator"] = batch["annotator"].to_numpy()
        if fmt == "parquet" and p.suffix.lower() not in (".parquet", ".pq"):
            raise WorkspaceError(f"a parquet export needs a .parquet file name, got {p.name!r}")
        if fmt == "csv" and p.suffix.lower() != ".csv":
            raise WorkspaceError(f"a csv export needs a .csv file name, got {p.name!r}")
        return write_table(frame, p)

    # Status ------------------------------------------------------------------------------------------
    def status(self, *, plot: str | Path | None | bool = True, stopping: Any = None) -> WorkspaceStatus:
        """Labels per class and split, rounds with their models' metrics, annotators, the stopping
        rules' values and verdicts, and (when a labelled evaluation split exists) the learning-curve PNG.

        Parameters
        ----------
        plot : str, Path or bool, default True
            Where to write the learning curve (True: ``<folder>/learning_curve.png``; False: no
            plot).
        stopping : StoppingRules or mapping, optional
            Thresholds of the stopping rules reported in ``stopping`` (default: the papers'
            defaults, :class:`activebatch.loop.StoppingRules`).
        """
        from ..strategies.cluster_margin import RENAMED, current_name

        store = self.store
        names = store.classes()
        labels = store.labels()
        counts = pd.DataFrame({"class": names})
        for split in SPLITS:
            c = labels[labels["split"] == split]["class_index"].value_counts()
            counts[split] = [int(c.get(i, 0)) for i in range(len(names))]
        rounds = store.rounds()
        snaps = store.snapshots()
        # Rounds recorded as cluster_margin before that name was given to Citovsky et al.'s method
        # are shown under the name their method has now (the store keeps what was recorded).
        shown = [current_name(s, o) for s, o in zip(rounds["strategy"], rounds["options"])]
        renamed = [int(r) for r, s, t in zip(rounds["round"], rounds["strategy"], shown) if s != t]
        table = pd.DataFrame({
            "round": rounds["round"], "strategy": pd.Series(shown, index=rounds.index, dtype=object),
            "n": rounds["n"],
            "labelled": rounds["n_done"], "trained_on": rounds["n_train_labels"]})
        by_round = snaps.dropna(subset=["round"]).set_index("round") if not snaps.empty else pd.DataFrame()
        table["train_accuracy"] = [by_round["train_accuracy"].get(r) if not by_round.empty and r in by_round.index
                                   else np.nan for r in table["round"]]
        table["eval_accuracy"] = [by_round["eval_accuracy"].get(r) if not by_round.empty and r in by_round.index
                                  else np.nan for r in table["round"]]
        table["created_at"] = rounds["created_at"].str.slice(0, 19)
        st = WorkspaceStatus(
            folder=str(self.folder), kind=self.kind, n_items=store.n_items(), classes=names, counts=counts,
            annotators={str(k): int(v) for k, v in labels["annotator"].value_counts().items()},
            rounds=table, snapshots=snaps, n_train=int((labels["split"] == "train").sum()),
            n_eval=int((labels["split"] == "eval").sum()), pending=len(store.pending_positions()))
        if renamed:
            st.notes.append(f"round(s) {', '.join(map(str, renamed))} were recorded as cluster_margin with the options "
                            f"beta/measure/n_init and are shown as diverse_minibatch: {RENAMED}")
        curve = snaps.dropna(subset=["eval_accuracy"])
        if st.n_eval == 0:
            st.notes.append("no labelled evaluation split: import labels with `--split eval` to measure held-out "
                            "accuracy and draw a learning curve")
        elif curve.empty:
            st.notes.append("no model has been evaluated yet: run `activebatch query` (or `status --evaluate`)")
        if plot and not curve.empty:
            target = self.folder / LEARNING_CURVE if plot is True else Path(plot)
            st.curve = str(plot_workspace_curve(curve, target, title=f"{self.folder.name}: held-out accuracy"))
        from .stopping import stopping_status

        st.stopping = stopping_status(store, stopping)
        return st


# Helpers --------------------------------------------------------------------------------------------
def _few(values: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:k])
    return shown + (f" and {len(values) - k} more" if len(values) > k else "")


def _resolve(rows: LabelRows, index: dict[str, int], names: list[str], where: str, annotator: str
             ) -> tuple[list[int], list[int], list[str]]:
    """Check the ids and class names of ``rows``; return positions, class indices, annotators."""
    dup = pd.Series(rows.ids)
    dup = dup[dup.duplicated()].unique().tolist()
    if dup:
        raise WorkspaceError(f"{where}: duplicate ids {_few(dup)}; each item may appear once; nothing was recorded")
    unknown = [i for i in rows.ids if i not in index]
    if unknown:
        raise WorkspaceError(f"{where}: {len(unknown)} id(s) are not items of this workspace: {_few(unknown)}; "
                             "nothing was recorded")
    cls_index = {c: k for k, c in enumerate(names)}
    bad = [(i, lab) for i, lab in zip(rows.ids, rows.labels) if lab not in cls_index]
    if bad:
        shown = ", ".join(f"{lab!r} (item {i!r})" for i, lab in bad[:5])
        raise WorkspaceError(f"{where}: unknown class(es) {shown}{' ...' if len(bad) > 5 else ''}; the classes are "
                             f"{', '.join(names)}; nothing was recorded")
    return ([index[i] for i in rows.ids], [cls_index[lab] for lab in rows.labels],
            [a or annotator for a in rows.annotators])


def _check_split_overlap(pending: list, ids: np.ndarray) -> None:
    seen: dict[int, str] = {}
    for split, positions, *_ in pending:
        for p in positions:
            if p in seen and seen[p] != split:
                raise WorkspaceError(f"item {str(ids[p])!r} is labelled both for training and for evaluation")
            if p in seen:
                raise WorkspaceError(f"item {str(ids[p])!r} is given a label twice")
            seen[p] = split


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v)
    return out


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
