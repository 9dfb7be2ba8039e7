"""Experiment grids: a TOML file naming datasets x models x batch sizes x strategies x seeds.

Example (``benchmarks/specs/small.toml``)::

    name = "small"
    datasets = ["digits"]
    models = ["mlp"]
    batch_sizes = [10, 25]
    strategies = ["random", "entropy", "badge"]
    seeds = 3              # or an explicit list: [0, 1, 2]
    initial = 20           # M, the initial random labels
    budget = 170           # total labels; or `rounds = 15`; or per batch size: [budget] 10 = 170

    [training]             # Learner options; lr = "auto" picks the paper's value for the data kind
    max_epochs = 100
    # sklearn = "mypackage.models:make_classifier"   # a scikit-learn/skorch model instead (models = ["sklearn"])

    [strategy_options.badge]
    init = "norm"

    [loop.ceal]            # loop options, for every run of the grid: CEAL pseudo-labels ...
    threshold = 0.05
    [loop.proxy]           # ... and selection via a cheaper proxy model
    embedding_dim = 64
    max_epochs = 10

    [[exclude]]            # combinations to leave out
    model = "resnet18"
    dataset = "letter"

A data set is any name :func:`activebatch.datasets.load` accepts: a registered name, ``openml-<id>``,
the path of a data file or folder (relative to the spec file's folder, and recorded so: a store
moves with its repository), and any of these followed by ``@imbalance=R`` for its long-tailed
version (:func:`activebatch.datasets.imbalance.long_tailed`). ``imbalance = [1, 10, 100]`` at the
top level runs every listed data set at each ratio (1: as it is); ``[dataset_options.<name>]`` of a
data set applies to its long-tailed versions too.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.validation import check_scalar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["GridSpec", "RunKey", "load_spec", "MODEL_NAMES", "resolve_dataset"]

#: Models a grid may name (built by :func:`activebatch.experiments.runner.build_model`).
MODEL_NAMES = ("mlp", "cnn", "resnet18")

_TOP_KEYS = {"name", "base_dir", "imbalance", "datasets", "models", "batch_sizes", "strategies", "seeds", "initial",
             "rounds", "budget", "training", "strategy_options", "dataset_options", "exclude", "device", "loop"}
_TRAINING_KEYS = {"lr", "batch_size", "max_epochs", "target_accuracy", "weight_decay", "eval_batch_size",
                  "committee", "bootstrap", "dropout", "mc_samples", "ensemble", "members", "ensemble_options",
                  "bayesian", "sklearn", "sklearn_embed", "restart_stalled"}
#: Keys of ``[loop.proxy]``: the proxy's architecture and width, and Learner options overriding [training].
_PROXY_KEYS = {"model", "embedding_dim", "lr", "batch_size", "max_epochs", "target_accuracy", "weight_decay",
               "eval_batch_size"}


@dataclass(frozen=True, order=True)
class RunKey:
    """One run of the grid: (dataset, model, batch_size, strategy, seed)."""

    dataset: str
    model: str
    batch_size: int
    strategy: str
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.dataset}|{self.model}|{self.batch_size}|{self.strategy}|{self.seed}"

    @classmethod
    def from_id(cls, run_id: str) -> RunKey:
        d, m, b, s, seed = run_id.split("|")
        return cls(d, m, int(b), s, int(seed))


@dataclass
class GridSpec:
    """A validated experiment grid; see the module docstring for the TOML layout."""

    name: str
    datasets: list[str]
    models: list[str]
    batch_sizes: list[int]
    strategies: list[str]
    seeds: list[int]
    initial: int = 100
    rounds: int | None = None
    budget: int | dict[int, int] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    exclude: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    #: Loop options for every run: ``{"ceal": {"threshold", "decay"}, "proxy": {...}}`` (see
    #: :func:`activebatch.run`); ``[training] committee = M`` trains a committee of M members (each on
    #: a bootstrap resample of the labels with ``bootstrap = true``, as suggestive annotation does) and
    #: ``[training] dropout = p`` puts dropout before the head (MC-dropout ``mc_probs``) and
    #: ``[training] bayesian = true`` makes the head Bayes by Backprop's (weight samples as ``mc_probs``);
    #: ``[training] ensemble = "snapshot" | "diversity" | "split_head"`` trains a cheap ensemble of
    #: ``members`` members (default 5; options in ``[training.ensemble_options]``);
    #: ``[training] sklearn = "package.module:factory"`` makes the factory's scikit-learn classifier or
    #: skorch net the model (``models = ["sklearn"]``, embeddings from ``sklearn_embed``; see
    #: :func:`_check_sklearn`).
    loop: dict[str, Any] = field(default_factory=dict)
    #: The folder that relative data-file paths in ``datasets`` are taken from (the spec file's
    #: folder). It is not part of any run id, so a store records data files by the path the spec
    #: gives, and a clone of the repository elsewhere resumes the same runs.
    base_dir: str | None = None

    def rounds_for(self, batch_size: int) -> int:
        """Selection rounds after the initial set: ``rounds``, or enough to reach ``budget``."""
        if self.rounds is not None:
            return self.rounds
        assert self.budget is not None
        budget = self.budget[batch_size] if isinstance(self.budget, dict) else self.budget
        return max(0, math.ceil((budget - self.initial) / batch_size))

    def runs(self) -> list[RunKey]:
        """Every run of the grid, minus the excluded combinations, in a stable order."""
        keys = []
        for d in self.datasets:
            for m in self.models:
                for b in self.batch_sizes:
                    for s in self.strategies:
                        for seed in self.seeds:
                            key = RunKey(d, m, b, s, seed)
                            if not self._excluded(key):
                                keys.append(key)
        return keys

    def _excluded(self, key: RunKey) -> bool:
        for rule in self.exclude:
            if all(getattr(key, k) == v for k, v in rule.items()):
                return True
        return False

    def to_dict(self, *, portable: bool = False) -> dict[str, Any]:
        """Plain data (picklable, JSON-able) for worker processes; ``portable`` leaves out
        ``base_dir`` (a path of this machine), for what the results store records."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if not (portable and k == "base_dir")}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> GridSpec:
        """Validate a parsed TOML table; errors name the key and what is expected."""
        from .. import strategies as strat_registry

        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; known keys: {sorted(_TOP_KEYS)}")
        for key in ("datasets", "models", "batch_sizes", "strategies", "seeds"):
            if key not in data:
                raise ValueError(f"{source}: missing required key {key!r}")

        def str_list(key: str) -> list[str]:
            value = data[key]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{source}: {key} must be a non-empty list of strings, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{source}: {key} has duplicates: {value!r}")
            return list(value)

        def pos_int(key: str, value: Any, low: int = 1) -> int:
            return check_scalar(value, f"{source}: {key}", int, min_val=low)

        # a spec's own to_dict() carries the folder its relative data files were taken from
        base = Path(str(data["base_dir"])) if data.get("base_dir") is not None else _base_dir(source)
        datasets = _with_imbalance([_dataset_name(d, source, base) for d in str_list("datasets")],
                                   data.get("imbalance"), source)
        models = str_list("models")
        for m in models:
            if m not in MODEL_NAMES and m != "sklearn":
                raise ValueError(f"{source}: unknown model {m!r}; known: {', '.join(MODEL_NAMES)}, and sklearn "
                                 "(with [training] sklearn = 'package.module:factory')")
        strategies = str_list("strategies")
        for s in strategies:
            strat_registry.strategy_class(s)  # raises with the list of known names
        b = data["batch_sizes"]
        if not isinstance(b, list) or not b:
            raise ValueError(f"{source}: batch_sizes must be a non-empty list of integers")
        batch_sizes = [pos_int("batch_sizes", v) for v in b]
        seeds_raw = data["seeds"]
        if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
            seeds = list(range(pos_int("seeds", seeds_raw)))
        elif isinstance(seeds_raw, list) and seeds_raw:
            seeds = [pos_int("seeds", v, 0) for v in seeds_raw]
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{source}: seeds has duplicates: {seeds!r}")
        else:
            raise ValueError(f"{source}: seeds must be a count or a non-empty list of integers")
        initial = pos_int("initial", data.get("initial", 100), 0)
        rounds = data.get("rounds")
        budget = data.get("budget")
        if (rounds is None) == (budget is None):
            raise ValueError(f"{source}: give exactly one of rounds (selection rounds) or budget (total labels)")
        if rounds is not None:
            rounds = pos_int("rounds", rounds, 0)
        if isinstance(budget, dict):
            try:
                budget = {int(k): pos_int(f"budget.{k}", v) for k, v in budget.items()}
            except ValueError as exc:
                raise ValueError(f"{source}: [budget] maps batch sizes to label budgets: {exc}") from None
            missing_b = [b for b in batch_sizes if b not in budget]
            if missing_b:
                raise ValueError(f"{source}: [budget] has no entry for batch size(s) {missing_b}")
            budget = {b: budget[b] for b in batch_sizes}
        elif budget is not None:
            budget = pos_int("budget", budget)
        for value in (budget.values() if isinstance(budget, dict) else [budget] if budget is not None else []):
            if value <= initial:
                raise ValueError(f"{source}: budget ({value}) must exceed initial ({initial})")
        training = dict(data.get("training", {}))
        bad = set(training) - _TRAINING_KEYS
        if bad:
            raise ValueError(f"{source}: unknown [training] key(s) {sorted(bad)}; known: {sorted(_TRAINING_KEYS)}")
        lr = training.get("lr", "auto")
        if not (lr == "auto" or (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0)):
            raise ValueError(f"{source}: training.lr must be 'auto' or a positive number, got {lr!r}")
        if "committee" in training:
            pos_int("training.committee", training["committee"])
        if "bootstrap" in training:
            check_scalar(training["bootstrap"], f"{source}: training.bootstrap", bool)
            if int(training.get("committee", 1)) < 2:
                raise ValueError(f"{source}: training.bootstrap trains a committee's members on bootstrap resamples; "
                                 "set training.committee = M (M >= 2) too")
        if "mc_samples" in training:
            pos_int("training.mc_samples", training["mc_samples"])
        _check_ensemble(training, source)
        if "dropout" in training:
            check_scalar(training["dropout"], f"{source}: training.dropout", float, min_val=0, max_val=1,
                         include_max=False)
        if "bayesian" in training:
            check_scalar(training["bayesian"], f"{source}: training.bayesian", bool)
        if "restart_stalled" in training:
            from ..learning.callbacks import RestartIfStalled

            try:
                RestartIfStalled.coerce(training["restart_stalled"])
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{source}: training.restart_stalled: {exc}") from None
            if "sklearn" in training:
                raise ValueError(f"{source}: training.restart_stalled restarts a torch model's training; "
                                 "a training.sklearn model trains itself")
        loop = _check_loop(data.get("loop", {}), source)
        if not _check_sklearn(training, models, strategies, loop, source):
            _check_mc_probs(strategies, training, source)
        strategy_options = dict(data.get("strategy_options", {}))
        for s, opts in strategy_options.items():
            if s not in strategies:
                raise ValueError(f"{source}: strategy_options for {s!r}, which is not in strategies")
            try:
                strat_registry.get(s, **opts)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{source}: strategy_options.{s}: {exc}") from None
        dataset_options = {_dataset_name(d, source, base): dict(o)
                           for d, o in dict(data.get("dataset_options", {})).items()}
        for d, opts in dataset_options.items():
            if d not in datasets and d not in {base_dataset(x) for x in datasets}:
                raise ValueError(f"{source}: dataset_options.{d} must name a listed data set")
            _check_dataset_options(d, opts, source)
        exclude = [dict(rule) if isinstance(rule, dict) else rule for rule in data.get("exclude", [])]
        for rule in exclude:
            keys = {"dataset", "model", "batch_size", "strategy", "seed"}
            if not isinstance(rule, dict) or not rule or set(rule) - keys:
                raise ValueError(f"{source}: each [[exclude]] needs keys among dataset, model, batch_size, strategy, "
                                 "seed")
            if isinstance(rule.get("dataset"), str):
                # named as in `datasets`: a data file's path then matches the absolute path the runs carry
                rule["dataset"] = _dataset_name(rule["dataset"], source, base)
        device = data.get("device", "cpu")
        if device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"{source}: device must be 'cpu', 'cuda' or 'auto', got {device!r}")
        spec = cls(name=str(data.get("name", Path(source).stem)), datasets=datasets, models=models,
                   batch_sizes=batch_sizes, strategies=strategies, seeds=seeds, initial=initial,
                   rounds=rounds, budget=budget, training=training, strategy_options=strategy_options,
                   dataset_options=dataset_options, exclude=exclude, device=device, loop=loop, base_dir=str(base))
        if not spec.runs():
            raise ValueError(f"{source}: the grid is empty after the exclusions")
        return spec


def _check_loop(table: Any, source: str) -> dict[str, Any]:
    """Validate the ``[loop]`` table; returns it with CEAL's defaults filled in."""
    from ..loop import CEAL

    if not isinstance(table, dict):
        raise ValueError(f"{source}: [loop] must be a table with keys ceal and/or proxy")
    bad = set(table) - {"ceal", "proxy"}
    if bad:
        raise ValueError(f"{source}: unknown [loop] key(s) {sorted(bad)}; known: ceal, proxy")
    out: dict[str, Any] = {}
    if "ceal" in table:
        value = table["ceal"]
        if not isinstance(value, (bool, dict)):
            raise ValueError(f"{source}: loop.ceal must be true/false or a table with threshold and decay")
        try:
            ceal = CEAL.coerce(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: loop.ceal: {exc}") from None
        if ceal is not None:
            out["ceal"] = {"threshold": float(ceal.threshold), "decay": float(ceal.decay)}
    if "proxy" in table:
        proxy = table["proxy"]
        if not isinstance(proxy, dict):
            raise ValueError(f"{source}: loop.proxy must be a table, e.g. embedding_dim = 64 and max_epochs = 10")
        bad = set(proxy) - _PROXY_KEYS
        if bad:
            raise ValueError(f"{source}: unknown loop.proxy key(s) {sorted(bad)}; known: {sorted(_PROXY_KEYS)}")
        model = proxy.get("model", "mlp")
        if model not in MODEL_NAMES:
            raise ValueError(f"{source}: loop.proxy.model must be one of {', '.join(MODEL_NAMES)}, got {model!r}")
        if "embedding_dim" in proxy and model != "mlp":
            raise ValueError(f"{source}: loop.proxy.embedding_dim sets the width of an mlp proxy only")
        for key in ("embedding_dim", "batch_size", "max_epochs", "eval_batch_size"):
            check_scalar(proxy.get(key, 1), f"{source}: loop.proxy.{key}", int, min_val=1)
        lr = proxy.get("lr", "auto")
        if not (lr == "auto" or (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0)):
            raise ValueError(f"{source}: loop.proxy.lr must be 'auto' or a positive number, got {lr!r}")
        out["proxy"] = dict(proxy, model=model)
    return out


def _base_dir(source: str) -> Path:
    """The folder relative data-file paths are taken from: the spec file's, else the working directory."""
    base = Path(source).parent if source and Path(source).suffix == ".toml" else Path(".")
    return base.resolve()


def _dataset_name(name: str, source: str, base: Path) -> str:
    """A grid's data set: a registered name, openml-<id>, or a data file or folder. A relative path
    is taken from ``base`` (the spec file's folder; failing that, from the working directory) and
    recorded relative to ``base``, so that run ids do not depend on where the repository lies; an
    absolute path stays absolute."""
    import os

    from .. import datasets as ds_registry
    from ..datasets.files import is_data_file

    if "@imbalance=" in name:
        from ..datasets.imbalance import format_ratio, parse_name

        try:
            stem, ratio = parse_name(name)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        return f"{_dataset_name(stem, source, base)}@imbalance={format_ratio(ratio)}"
    if _is_named(name):
        return name
    path = Path(name)
    if path.is_absolute():
        if is_data_file(path):
            return str(path.resolve())
    elif is_data_file(base / path):
        return Path(os.path.normpath(path)).as_posix()
    elif is_data_file(path):
        return Path(os.path.relpath(path.resolve(), base)).as_posix()
    raise ValueError(f"{source}: unknown data set {name!r}; known: {', '.join(ds_registry.names())}, openml-<id>, "
                     "or the path of a .csv, .tsv, .parquet or .npz file or a folder of train and test files")


def resolve_dataset(name: str, base_dir: str | None) -> str:
    """``name`` with a relative data-file path joined to ``base_dir`` (registered names, openml ids
    and absolute paths unchanged; the ``@imbalance=R`` suffix kept)."""
    stem = base_dataset(name)
    if base_dir is None or _is_named(stem) or Path(stem).is_absolute():
        return name
    return str(Path(base_dir) / stem) + name[len(stem):]


def _is_named(name: str) -> bool:
    """A registered data set or ``openml-<id>``, as opposed to a data file."""
    import re

    from .. import datasets as ds_registry

    return name in ds_registry.names() or re.fullmatch(r"openml-\d+", name) is not None


def base_dataset(name: str) -> str:
    """The data set a grid's data-set key is built from: ``"letter"`` for ``"letter@imbalance=100"``."""
    return name.rpartition("@imbalance=")[0] or name


def _with_imbalance(datasets: list[str], ratios: Any, source: str) -> list[str]:
    """The data sets at each imbalance ratio of the top-level ``imbalance`` list (1: as they are)."""
    if ratios is None:
        return datasets
    from ..datasets.imbalance import format_ratio

    if not isinstance(ratios, list) or not ratios:
        raise ValueError(f"{source}: imbalance must be a non-empty list of imbalance ratios (numbers >= 1, "
                         f"1 for the data set as it is), got {ratios!r}")
    ratios = [check_scalar(r, f"{source}: imbalance", float, min_val=1.0) for r in ratios]
    if len(set(ratios)) != len(ratios):
        raise ValueError(f"{source}: imbalance has duplicates: {ratios!r}")
    out = []
    for d in datasets:
        if "@imbalance=" in d:
            raise ValueError(f"{source}: data set {d!r} already names an imbalance ratio; list it without "
                             "'@imbalance=' when the top-level imbalance list is given")
        out += [d if r == 1 else f"{d}@imbalance={format_ratio(r)}" for r in ratios]
    return out


def _check_dataset_options(name: str, options: dict[str, Any], source: str) -> None:
    """Options of one data set: root and download for every one, plus what its loader takes
    (e.g. pokerhand's n_train, a file's label_column)."""
    import inspect

    from ..datasets import files
    from ..datasets.registry import _LOADERS

    name = base_dataset(name)
    if name in _LOADERS:
        params = inspect.signature(_LOADERS[name].loader).parameters
        allowed = {k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    elif name.startswith("openml-"):
        allowed = set()
    else:
        allowed = {k for k, p in inspect.signature(files.load_file).parameters.items()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY}
    bad = set(options) - allowed - {"root", "download"}
    if bad:
        raise ValueError(f"{source}: dataset_options for {name!r} take root, download"
                         + (f" and {', '.join(sorted(allowed))}" if allowed else "") + f"; got {sorted(bad)}")


def _check_ensemble(training: dict[str, Any], source: str) -> None:
    """``[training] ensemble = "snapshot" | "diversity" | "split_head"`` trains a cheap ensemble
    (:mod:`activebatch.learning.ensembles`) of ``members`` members (default 5), with the class's
    own options in ``[training.ensemble_options]`` (e.g. ``cycle_epochs``, ``base_epochs``)."""
    from ..learning.ensembles import ENSEMBLES
    from ..learning.models import MLP
    from ..utils.validation import check_choice

    if "ensemble" not in training:
        for key in ("members", "ensemble_options"):
            if key in training:
                raise ValueError(f"{source}: training.{key} is an option of a cheap ensemble; set training.ensemble "
                                 f"to one of {', '.join(map(repr, ENSEMBLES))} too")
        return
    kind = check_choice(training["ensemble"], f"{source}: training.ensemble", ENSEMBLES)
    if int(training.get("committee", 1)) >= 2:
        raise ValueError(f"{source}: training.committee trains a naive ensemble and training.ensemble a cheap one; "
                         "give one of them (the member count of a cheap ensemble is training.members)")
    members = check_scalar(training.get("members", 5), f"{source}: training.members", int, min_val=2)
    options = training.get("ensemble_options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{source}: training.ensemble_options must be a table of {kind} ensemble options, "
                         f"got {options!r}")
    # the options (and the snapshot budget against max_epochs) are checked by building one on a tiny model
    try:
        ENSEMBLES[kind](MLP(1, 2, embedding_dim=1), members, device="cpu",
                        max_epochs=training.get("max_epochs", 200), **options)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{source}: training.ensemble = {kind!r}: {exc}") from None


def _check_sklearn(training: dict[str, Any], models: list[str], strategies: list[str], loop: dict[str, Any],
                   source: str) -> bool:
    """``[training] sklearn = "package.module:factory"``: the factory's scikit-learn classifier or
    skorch net is the model of every run (:func:`activebatch.learning.sklearn.as_learner`), named
    ``"sklearn"`` in ``models``, with ``[training] sklearn_embed`` as its ``embed`` ("transform", a
    pipeline step's name, "hidden"; for skorch "auto" or "module"). The factory is called with no
    arguments: once here, to check that it returns a classifier and that every strategy can run on
    it, and once per run (its module must be importable in the workers). Returns whether the grid
    uses one."""
    from .. import strategies as strat_registry
    from ..selection.round import check_evidence_available

    if "sklearn" not in training:
        if "sklearn" in models:
            raise ValueError(f"{source}: model 'sklearn' is the estimator of [training] sklearn = "
                             "'package.module:factory'; set that key")
        if "sklearn_embed" in training:
            raise ValueError(f"{source}: training.sklearn_embed is an option of [training] sklearn; set that key too")
        return False
    if models != ["sklearn"]:
        raise ValueError(f"{source}: with [training] sklearn the factory's estimator is the grid's model: set "
                         f"models = ['sklearn'], got {models!r}")
    torch_keys = sorted(set(training) - {"sklearn", "sklearn_embed"})
    if torch_keys:
        raise ValueError(f"{source}: [training] {torch_keys} are options of the torch Learner; with training.sklearn "
                         "the factory's estimator carries its own options")
    if "proxy" in loop:
        raise ValueError(f"{source}: loop.proxy builds a torch proxy from [training], which training.sklearn "
                         "replaces; leave one of them out")
    embed = training.get("sklearn_embed")
    if embed is not None and not isinstance(embed, str):
        raise ValueError(f"{source}: training.sklearn_embed must be a string ('transform', a pipeline step's name, "
                         f"'hidden', 'auto', 'module'), got {embed!r}")
    from ..learning.sklearn import as_learner, estimator_from_factory

    try:
        learner = as_learner(estimator_from_factory(training["sklearn"]), n_classes=2, embed=embed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: training.sklearn: {exc}") from None
    for s in strategies:
        try:
            check_evidence_available(strat_registry.get(s), learner.evidence_fields(),
                                     source=f"the model of training.sklearn ({learner.model_name})",
                                     field_hints=learner.missing_evidence_hints)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    return True


def _check_mc_probs(strategies: list[str], training: dict[str, Any], source: str) -> None:
    """Strategies reading ``mc_probs`` need a committee, or a model with dropout before its head
    (``[training] dropout > 0``: MC-dropout samples) or a Bayesian head (``[training] bayesian = true``)."""
    import numpy as np

    from .. import strategies as strat_registry
    from ..datasets.pool import Pool
    from ..learning.learner import Learner
    from ..learning.models import MLP

    need = [s for s in strategies if "mc_probs" in strat_registry.strategy_class(s).needs]
    if not need or int(training.get("committee", 1)) >= 2 or "ensemble" in training:
        return
    model = MLP(1, 2, embedding_dim=1, dropout=float(training.get("dropout", 0.0)),
                bayesian=bool(training.get("bayesian", False)))
    probe = Learner(model, device="cpu").evidence(Pool(np.zeros((1, 1)), n_classes=2))
    if not probe.has("mc_probs"):
        raise ValueError(f"{source}: strategies {need} read member probabilities (mc_probs); "
                         "set [training] dropout = p (0 < p < 1: MC-dropout samples, mc_samples of them) "
                         "or bayesian = true (a Bayes-by-Backprop head: mc_samples weight samples) "
                         "or committee = M (M >= 2 independently initialised models) "
                         "or ensemble = 'snapshot' | 'diversity' | 'split_head' (a cheap ensemble)")


def load_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid spec from a TOML file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"spec file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    return GridSpec.from_dict(data, source=str(path))
