"""scikit-learn and skorch classifiers as activebatch learners.

:class:`SklearnLearner` adapts any scikit-learn classifier with ``predict_proba`` (a
:class:`~sklearn.pipeline.Pipeline` included) and :class:`SkorchLearner` a skorch
``NeuralNetClassifier``, so that :func:`activebatch.run`, grid specs (``[training] sklearn =
"package.module:factory"``) and CEAL run with them. They follow the protocol of
:class:`~activebatch.learning.Learner`: every :meth:`~SklearnLearner.fit` clones the estimator
and fits the clone from scratch, its randomness seeded by the fit's seed.

What they give strategies is what a fitted classifier has: class probabilities on the candidates
and on the labeled items, and, where an embedding is named (``embed=``), feature vectors.
Strategies that work on a torch model itself (adversarial distances, DropQuery, loss prediction,
MAL, label dispersion) or on MC samples (BALD, BatchBALD, EPIG, ...) are refused before any
training, with a message saying what the model provides.
"""
from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..datasets.pool import Pool
from ..utils.extras import require
from ..utils.validation import check_features, check_labels, check_scalar
from .evidence import FIELDS, Evidence
from .learner import FitResult, _Rows, resolve_device
from .reinit import reinitialise

__all__ = ["SklearnLearner", "SkorchLearner", "as_learner", "estimator_from_factory", "load_factory", "seed_estimator"]

#: ``embed=`` keywords of :class:`SklearnLearner` (a pipeline step of the same name is shadowed).
_SKLEARN_EMBED = ("transform", "hidden")
#: ``embed=`` keywords of :class:`SkorchLearner`.
_SKORCH_EMBED = ("auto", "module")


def _sklearn(module: str = "sklearn.base"):
    return require(module, "sklearn", "SklearnLearner")


def _is_skorch_net(obj: Any) -> bool:
    """Whether ``obj`` is a skorch net (without importing skorch: an object can only be one when
    skorch is already imported)."""
    skorch = sys.modules.get("skorch")
    return skorch is not None and isinstance(obj, skorch.NeuralNet)


def _is_pipeline(obj: Any) -> bool:
    return isinstance(obj, _sklearn("sklearn.pipeline").Pipeline)


def _final_step(estimator: Any) -> Any:
    return estimator.steps[-1][1] if _is_pipeline(estimator) else estimator


def seed_estimator(estimator: Any, seed: int) -> dict[str, int]:
    """Set every ``random_state`` of ``estimator`` (its own and those of pipeline steps and nested
    estimators, as ``get_params(deep=True)`` lists them) from ``seed``, in place.

    The i-th such parameter in name order gets ``SeedSequence([seed, i])``'s first 32-bit word,
    so steps of one pipeline draw from distinct streams and the same seed always gives the same
    values. Returns the values set (parameter name -> int).
    """
    seed = check_scalar(seed, "seed", int, min_val=0)
    names = sorted(k for k in estimator.get_params(deep=True) if k == "random_state" or k.endswith("__random_state"))
    values = {k: int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i, k in enumerate(names)}
    if values:
        estimator.set_params(**values)
    return values


def _mlp_hidden(mlp: Any, X: np.ndarray) -> np.ndarray:
    """The last hidden layer of a fitted ``MLPClassifier`` on rows X: the input of its output layer.

    The same pass as scikit-learn's own forward pass (``coefs_``, ``intercepts_`` and the hidden
    ``activation``), stopped before the output layer.
    """
    acts: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "identity": lambda a: a, "logistic": lambda a: 1.0 / (1.0 + np.exp(-a)), "tanh": np.tanh,
        "relu": lambda a: np.maximum(a, 0.0),
    }
    act = acts[mlp.activation]
    h = np.asarray(X, dtype=mlp.coefs_[0].dtype)
    for W, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1]):
        h = act(h @ W + b)
    return h


class SklearnLearner:
    """A scikit-learn classifier as an activebatch learner.

    Every :meth:`fit` clones ``estimator`` (``sklearn.base.clone``: the parameters, never a
    previous fit), sets every ``random_state`` it has from the fit's seed (:func:`seed_estimator`:
    its own, each pipeline step's and each nested estimator's; a value given in the estimator is
    overridden, so that the run's seed decides) and fits the clone on the labeled items from
    scratch, as the BADGE protocol retrains its network every round (Ash et al., ICLR 2020,
    section 4). The fitted clone is :attr:`estimator_`.

    Probabilities are ``predict_proba``'s, with its columns (the estimator's ``classes_``) put at
    the class indices 0..K-1: a class absent from the labels so far gets probability 0 on every
    item (the estimator knows nothing of it), and labels of a single class give that class
    probability 1 (some estimators, LogisticRegression for one, refuse to fit on one class; the
    error then says so). Predictions are the argmax of these probabilities (the lowest class index
    on ties), so the reported accuracy is that of the model the strategies see.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Any estimator with ``fit`` and ``predict_proba`` (``SVC(probability=True)``, a
        ``Pipeline`` ending in a classifier, ...), not fitted: it is only cloned. For a skorch net
        use :class:`SkorchLearner`.
    n_classes : int
        K: the labels are 0..K-1 (the pool's ``n_classes``). Needed before the first fit, since
        the first labels need not hold every class.
    embed : None, str or callable, default None
        What the strategies get as ``embeddings`` (and ``labeled_embeddings``):

        - None: no embeddings; the evidence is ``probs``, ``labeled_probs``, ``labels`` and ``pool``.
        - ``"transform"``: a pipeline's output before its final step (e.g. the standardised
          features of ``make_pipeline(StandardScaler(), LogisticRegression())``, the input of the
          linear model, which makes BADGE's gradient embedding that of the logistic loss).
        - the name of a pipeline step (not the last): the pipeline's output after that step.
        - ``"hidden"``: the last hidden layer of an ``MLPClassifier`` (the estimator or a
          pipeline's final step, after the pipeline's transforms): the penultimate embedding, as
          a torch model's ``embed``.
        - a callable ``embed(X) -> (n, d)`` array: fixed features of the raw rows (e.g. a
          pretrained extractor); it does not see the fitted estimator.
    eval_batch_size : int, default 4096
        Rows per ``predict_proba`` call when computing probabilities and embeddings, so a
        memory-mapped pool is read a block at a time.
    device : str or torch.device, default "cpu"
        Where the evidence tensors go (the strategies' kernels run there): ``"cuda"`` runs
        selection on the GPU while the estimator stays on the CPU.

    Attributes
    ----------
    estimator_ : the fitted clone (after :meth:`fit`)
    last_fit : FitResult
        ``epochs``: the solver's iterations where the estimator reports ``n_iter_`` (the largest
        over classes for one-vs-rest solvers), else 1; ``train_accuracy``: accuracy on the
        training items; ``reached_target``: False when the fit raised a ``ConvergenceWarning``.
    fit_artifacts : dict
        Always empty: training callbacks need a torch training loop.
    """

    #: Who provides the evidence, in messages.
    _what = "a scikit-learn model"

    def __init__(self, estimator: Any, *, n_classes: int, embed: str | Callable[[Any], Any] | None = None,
                 eval_batch_size: int = 4096, device: str | torch.device = "cpu") -> None:
        self._check_estimator(estimator)
        self.estimator = estimator
        self.n_classes = check_scalar(n_classes, "n_classes", int, min_val=2)
        self.embed_from = self._check_embed(embed)
        self.eval_batch_size = check_scalar(eval_batch_size, "eval_batch_size", int, min_val=1)
        self.device = resolve_device(device)
        self.estimator_: Any = None
        self._classes: np.ndarray | None = None
        self.last_fit: FitResult | None = None
        self.fit_artifacts: dict[str, Any] = {}
        self._last_seed = 0

    # Checks -----------------------------------------------------------------------------------
    def _check_estimator(self, estimator: Any) -> None:
        if _is_skorch_net(estimator) or (_is_pipeline(estimator) and _is_skorch_net(_final_step(estimator))):
            raise TypeError("estimator is a skorch net: use activebatch.learning.sklearn.SkorchLearner, which seeds "
                            "torch and reads embeddings from the module")
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
            raise TypeError(f"estimator must be a scikit-learn classifier with fit and predict_proba (e.g. "
                            f"LogisticRegression(), SVC(probability=True), a Pipeline ending in one), got "
                            f"{type(estimator).__name__}")
        if not hasattr(estimator, "get_params"):
            raise TypeError(f"estimator must follow the scikit-learn API (get_params, so that it can be cloned), got "
                            f"{type(estimator).__name__}")

    def _check_embed(self, embed: Any) -> Any:
        if embed is None or callable(embed):
            return embed
        if not isinstance(embed, str):
            raise TypeError(f"embed must be None, 'transform', 'hidden', a pipeline step's name or a callable "
                            f"X -> (n, d), got {type(embed).__name__}")
        pipe = _is_pipeline(self.estimator)
        steps = [name for name, _ in self.estimator.steps] if pipe else []
        if embed == "transform":
            if len(steps) < 2:
                raise ValueError("embed='transform' takes a pipeline's output before its final step; the estimator "
                                 f"is {'a one-step pipeline' if pipe else 'not a Pipeline'}")
            return embed
        if embed == "hidden":
            mlp = _sklearn("sklearn.neural_network").MLPClassifier
            if not isinstance(_final_step(self.estimator), mlp):
                raise ValueError("embed='hidden' takes the last hidden layer of an MLPClassifier (the estimator or a "
                                 f"pipeline's final step), got {type(_final_step(self.estimator)).__name__}")
            return embed
        if embed not in steps[:-1]:
            raise ValueError(f"embed must be None, 'transform', 'hidden', a callable X -> (n, d) or the name of a "
                             f"pipeline step before the last ({', '.join(map(repr, steps[:-1])) or 'none here'}); "
                             f"got {embed!r}")
        return embed

    def check_inputs(self, X: Any, name: str = "X") -> None:
        """Refuse inputs a scikit-learn estimator cannot take (rows that are not feature vectors)
        before any training, naming the shape."""
        shape = tuple(getattr(X, "shape", np.shape(X)))
        if len(shape) != 2:
            raise ValueError(f"the model cannot take {name}: a scikit-learn estimator takes rows of features, shape "
                             f"(n, d), but its rows have shape {shape[1:]}; flatten them (X.reshape(len(X), -1)) "
                             "or give features")

    # Training ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Sequence[Any] | None = None) -> FitResult:
        """Clone the estimator, seed it and fit the clone from scratch on (X, y).

        Parameters
        ----------
        X : array of shape (n, d)
        y : array of int, shape (n,)
            Labels in 0..K-1.
        seed : int
            Seeds every ``random_state`` of the clone (:func:`seed_estimator`).
        callbacks : list of Callback, optional
            Must be empty: training callbacks run inside a torch training loop, which a
            scikit-learn estimator does not have.
        """
        if callbacks:
            raise ValueError(f"{self._what} has no torch training loop for training callbacks "
                             f"({', '.join(type(c).__name__ for c in callbacks)}); strategies that train alongside "
                             "the model need activebatch.Learner")
        check_features(X, "X")
        self._check_fit_inputs(X)
        y_np = check_labels(y, "y", rows=int(X.shape[0]))
        if y_np.size == 0:
            raise ValueError("fit needs at least one labeled example, got none")
        if y_np.max() >= self.n_classes:
            raise ValueError(f"y holds label {int(y_np.max())} but the learner has n_classes={self.n_classes}")
        seed = check_scalar(seed, "seed", int, min_val=0)
        start = time.perf_counter()
        self.fit_artifacts = {}
        est = _sklearn().clone(self.estimator)
        seed_estimator(est, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self._fit_estimator(est, X, y_np, seed)
            except ValueError as exc:
                present = np.unique(y_np)
                if present.size < 2:
                    raise ValueError(f"{type(_final_step(est)).__name__} could not be fitted on labels of the single "
                                     f"class {int(present[0])} ({exc}); label items of at least two classes first "
                                     "(e.g. a larger initial set)") from exc
                raise
        for w in caught:   # shown to the caller as they would have been, after noting convergence
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        converged = not any(issubclass(w.category, _sklearn("sklearn.exceptions").ConvergenceWarning)
                            for w in caught)
        self.estimator_ = est
        self._classes = self._fitted_classes(est)
        self._last_seed = seed
        acc = float((self.predict(X) == y_np).mean())
        self.last_fit = FitResult(self._iterations(est), acc, time.perf_counter() - start, converged)
        return self.last_fit

    def _check_fit_inputs(self, X: Any) -> None:
        self.check_inputs(X, "X")

    def _fit_estimator(self, est: Any, X: Any, y: np.ndarray, seed: int) -> None:
        est.fit(np.asarray(X), y)

    def _fitted_classes(self, est: Any) -> np.ndarray | None:
        """The fitted estimator's ``classes_`` as class indices (checked to lie in 0..K-1)."""
        classes = getattr(est, "classes_", None)
        if classes is None:
            raise TypeError(f"the fitted {type(_final_step(est)).__name__} has no classes_: its predict_proba columns "
                            "cannot be matched to classes")
        classes = np.asarray(classes)
        if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= self.n_classes:
            raise ValueError(f"the fitted estimator's classes_ {classes.tolist()} are not class indices in "
                             f"0..{self.n_classes - 1}")
        return classes.astype(np.int64)

    @staticmethod
    def _iterations(est: Any) -> int:
        n_iter = getattr(_final_step(est), "n_iter_", None)
        return 1 if n_iter is None else max(1, int(np.max(n_iter)))

    # Inference --------------------------------------------------------------------------------
    def _fitted(self) -> Any:
        if self.estimator_ is None:
            raise ValueError(f"{type(self).__name__} is not fitted yet: call fit(X, y, seed=...) first")
        return self.estimator_

    @property
    def has_embeddings(self) -> bool:
        """Whether the evidence has ``embeddings`` and ``labeled_embeddings``."""
        return self.embed_from is not None

    def _map_probs(self, proba: np.ndarray) -> np.ndarray:
        """``predict_proba``'s columns at the class indices 0..K-1 (zeros for the classes not fitted)."""
        proba = np.asarray(proba, dtype=np.float64)
        classes = self._classes
        out = np.zeros((proba.shape[0], self.n_classes))
        if classes.size == 1:
            # One class seen: it is the only prediction (scikit-learn's MLPClassifier still returns
            # two columns then, which name no class).
            out[:, classes[0]] = 1.0
            return out
        if proba.shape[1] != classes.size:
            raise ValueError(f"predict_proba returned {proba.shape[1]} columns for the {classes.size} classes_ of the "
                             "fitted estimator")
        out[:, classes] = proba
        return out

    def _chunk(self, X: np.ndarray, probs: bool, embeddings: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(probabilities (n, K) or None, embeddings (n, d) or None) of rows X, sharing their passes:
        with ``embed='transform'`` the final step's input is the embedding, with ``'hidden'`` the
        pipeline's transforms run once for both."""
        est = self._fitted()
        mode = self.embed_from if embeddings else None
        if mode is None:
            return (self._map_probs(est.predict_proba(X)) if probs else None), None
        if callable(mode):
            Z = np.asarray(mode(X))
            return (self._map_probs(est.predict_proba(X)) if probs else None), Z
        if mode == "hidden":
            pre = est[:-1].transform(X) if _is_pipeline(est) else X
            mlp = _final_step(est)
            return (self._map_probs(mlp.predict_proba(pre)) if probs else None), _mlp_hidden(mlp, pre)
        names = [name for name, _ in est.steps]
        stop = len(names) - 1 if mode == "transform" else names.index(mode) + 1
        Z = est[:stop].transform(X)
        if not probs:
            return None, Z
        rest = est[stop:]
        return self._map_probs(rest.predict_proba(Z)), Z

    def _numpy_rows(self, X: Any) -> np.ndarray:
        return X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)

    def outputs(self, X: Any, *, probs: bool = True, embeddings: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Probabilities (n, K) and embeddings (n, d) of rows ``X`` as float32 tensors on
        ``device`` (embeddings None without ``embed``), ``eval_batch_size`` rows at a time."""
        embeddings = embeddings and self.has_embeddings
        n = int(X.shape[0])
        P_parts, Z_parts = [], []
        for start in range(0, n, self.eval_batch_size):
            P, Z = self._chunk(self._numpy_rows(X[start:start + self.eval_batch_size]), probs, embeddings)
            if probs:
                P_parts.append(P)
            if embeddings:
                Z_parts.append(np.asarray(Z).reshape(len(Z), -1))
        P_out = Z_out = None
        if probs:
            P_all = np.concatenate(P_parts) if P_parts else np.zeros((0, self.n_classes))
            _check_probability_rows(P_all)
            P_out = self._tensor(P_all)
        if embeddings:
            Z_out = self._tensor(np.concatenate(Z_parts)) if Z_parts else self._tensor(np.zeros((0, 0)))
        return P_out, Z_out

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        # float32, as a torch model's outputs are
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities at the class indices 0..K-1, a numpy array of shape (n, K)."""
        return self.outputs(X, embeddings=False)[0].cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (lowest index on ties), shape (n,)."""
        return self.outputs(X, embeddings=False)[0].argmax(1).cpu().numpy()

    def embed(self, X: Any) -> np.ndarray:
        """The embeddings named by ``embed=``, a numpy array of shape (n, d)."""
        if not self.has_embeddings:
            raise ValueError(f"{type(self).__name__} was built without embed=, so it has no embeddings")
        return self.outputs(X, probs=False)[1].cpu().numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        y_np = check_labels(y, "y", rows=int(X.shape[0]))
        if y_np.size == 0:
            raise ValueError("score needs at least one example")
        if y_np.max() >= self.n_classes:
            raise ValueError(f"y holds label {int(y_np.max())} but the learner has {self.n_classes} classes "
                             f"(labels 0..{self.n_classes - 1})")
        return float((self.predict(X) == y_np).mean())

    # Evidence ---------------------------------------------------------------------------------
    def evidence_fields(self) -> frozenset[str]:
        """``probs``, ``labeled_probs``, ``labels`` and ``pool``, and with ``embed=`` also
        ``embeddings`` and ``labeled_embeddings``: never ``learner`` (no torch model to work
        on) nor ``mc_probs`` (no parameter samples)."""
        fields = {"probs", "labeled_probs", "labels", "pool"}
        if self.has_embeddings:
            fields |= {"embeddings", "labeled_embeddings"}
        return frozenset(fields)

    @property
    def missing_evidence_hints(self) -> dict[str, str]:
        """Advice by evidence field for a strategy this learner cannot serve (see
        :func:`activebatch.selection.round.check_evidence_available`)."""
        fields = [f for f in FIELDS if f in self.evidence_fields()]
        cls = "SkorchLearner" if isinstance(self, SkorchLearner) else "SklearnLearner"
        offers = f"{self._what} ({cls}) provides only {', '.join(fields)}"
        torch_model = (f"this strategy needs a torch model trained by activebatch.Learner (it works on the network "
                       f"itself), and {offers}")
        mc = ("this strategy needs MC samples (activebatch.Learner with dropout before the head or a Bayesian head, "
              f"or a Committee), and {offers}")
        emb = (f"for embeddings give {cls}(..., embed=...): "
               + ("'transform', a pipeline step's name, 'hidden' (an MLPClassifier's last hidden layer) or a callable "
                  "X -> (n, d)" if not isinstance(self, SkorchLearner)
                  else "'module' (a module with embed(x)) or a callable X -> (n, d)"))
        return {"learner": torch_model, "mc_probs": mc, "target_mc_probs": mc, "embeddings": emb,
                "labeled_embeddings": emb}

    def evidence(self, pool: Pool) -> Evidence:
        """Evidence on the pool's unlabeled items, computed when a strategy reads it: one pass
        over the candidates gives their probabilities and embeddings, one over the labeled items
        theirs."""
        self._fitted()
        cand, lab = pool.unlabeled_indices, pool.labeled_indices

        def shared(rows: np.ndarray, keys: tuple[str, str]):
            cache: dict[str, torch.Tensor | None] = {}

            def provider(key: str):
                def compute() -> torch.Tensor:
                    if not cache:
                        cache.update(zip(keys, self.outputs(_Rows(pool, rows))))
                    return cache.pop(key)
                return compute
            return provider

        cand_out = shared(cand, ("probs", "embeddings"))
        lab_out = shared(lab, ("labeled_probs", "labeled_embeddings"))
        fields: dict[str, Any] = {"probs": cand_out("probs"), "labeled_probs": lab_out("labeled_probs")}
        if self.has_embeddings:
            fields.update(embeddings=cand_out("embeddings"), labeled_embeddings=lab_out("labeled_embeddings"))
        return Evidence(len(cand), candidate_ids=cand, labels=lambda: torch.as_tensor(pool.labels[lab]), pool=pool,
                        **fields)

    # Names ------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        """Name recorded in results: the estimator's class, a pipeline's steps joined by ``+``."""
        if _is_pipeline(self.estimator):
            return "+".join(type(step).__name__ for _, step in self.estimator.steps)
        return type(self.estimator).__name__

    def __repr__(self) -> str:
        embed = getattr(self.embed_from, "__name__", self.embed_from)
        return f"{type(self).__name__}({self.model_name}, n_classes={self.n_classes}, embed={embed!r})"


def _check_probability_rows(P: np.ndarray) -> None:
    if P.size and (P.min() < -1e-6 or np.abs(P.sum(axis=1) - 1.0).max() > 1e-3):
        raise ValueError("predict_proba returned rows that are not probabilities (negative, or not summing to 1); "
                         "for a skorch module that returns logits, train it with criterion=torch.nn.CrossEntropyLoss "
                         "(skorch then applies the softmax)")


class SkorchLearner(SklearnLearner):
    """A skorch ``NeuralNetClassifier`` as an activebatch learner.

    As :class:`SklearnLearner`: every :meth:`fit` clones the net and trains the clone from scratch
    on the labeled items. The fit runs under ``torch.random.fork_rng`` with ``torch.manual_seed``
    set to the fit's seed, which seeds the module's initial weights (a module class is built
    then; a module instance given to the net is a copy of the original, whose parameters are
    re-initialised there, submodule by submodule, as :meth:`Learner.reset` does) and the
    mini-batch order; every ``random_state`` parameter is seeded as :func:`seed_estimator` says.

    The module's outputs are the classes 0..K-1 themselves (skorch trains with the labels as
    indices), so the net must output K columns; a class absent from the labels keeps whatever
    probability the network gives it. Train a module that returns logits with
    ``criterion=torch.nn.CrossEntropyLoss`` (skorch then applies the softmax in
    ``predict_proba``); skorch's default criterion, ``NLLLoss``, expects a module that returns
    probabilities.

    skorch holds out a fifth of the training data for validation by default
    (``train_split=ValidSplit(5, stratified=True)``), which also fails when a class has fewer than
    5 labels; pass ``train_split=None`` to train on every label, as the BADGE protocol does.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        Not fitted (only cloned).
    n_classes : int
        K, the number of the module's outputs.
    embed : "auto", "module", None or callable, default "auto"
        ``"module"``: ``net.module_.embed(x)``, the penultimate embedding of a module that has
        ``embed`` (every :mod:`activebatch.learning.models` model has); ``"auto"``: that when the
        module has ``embed``, else no embeddings; None: none; a callable ``embed(X) -> (n, d)``.
    eval_batch_size : int, default 4096
        Rows per forward pass for probabilities and embeddings.
    device : str or torch.device, optional
        Where the evidence tensors go; default: the net's ``device``.
    """

    _what = "a skorch model"

    def __init__(self, net: Any, *, n_classes: int, embed: str | Callable[[Any], Any] | None = "auto",
                 eval_batch_size: int = 4096, device: str | torch.device | None = None) -> None:
        super().__init__(net, n_classes=n_classes, embed=embed, eval_batch_size=eval_batch_size,
                         device=(getattr(net, "device", None) or "cpu") if device is None else device)

    def _check_estimator(self, estimator: Any) -> None:
        skorch = require("skorch", "skorch", "SkorchLearner")
        if not isinstance(estimator, skorch.NeuralNetClassifier):
            raise TypeError(f"net must be a skorch.NeuralNetClassifier, got {type(estimator).__name__} (for "
                            "scikit-learn estimators use SklearnLearner)")

    def _check_embed(self, embed: Any) -> Any:
        if embed is None or callable(embed):
            return embed
        if embed not in _SKORCH_EMBED:
            raise ValueError(f"embed must be 'auto', 'module', None or a callable X -> (n, d), got {embed!r}")
        has = hasattr(self._module_type(), "embed")
        if embed == "module" and not has:
            raise ValueError(f"embed='module' needs a module with embed(x) (the penultimate embedding); "
                             f"{self._module_type().__name__} has none: give a callable X -> (n, d) or embed=None")
        return "module" if has else None

    def _module_type(self) -> type:
        module = self.estimator.module
        return type(module) if isinstance(module, torch.nn.Module) else module

    @property
    def model_name(self) -> str:
        return f"{type(self.estimator).__name__}({self._module_type().__name__})"

    def _devices(self, net: Any) -> list[Any]:
        dev = torch.device(net.device or "cpu")
        return [dev] if dev.type == "cuda" else []

    def _reset_module(self, net: Any) -> None:
        module = net.module
        if not isinstance(module, torch.nn.Module):
            return   # a class: skorch builds it in fit, under the fit's seed
        reinitialise(module)

    def _check_fit_inputs(self, X: Any) -> None:
        pass   # the net's own fit reports a shape mismatch; check_inputs would build a module per fit

    def _fit_estimator(self, est: Any, X: Any, y: np.ndarray, seed: int) -> None:
        with torch.random.fork_rng(devices=self._devices(est)):
            torch.manual_seed(seed)
            self._reset_module(est)
            est.fit(np.asarray(X, dtype=np.float32), y.astype(np.int64))

    def _fitted_classes(self, est: Any) -> np.ndarray | None:
        return None   # the module's columns are the classes themselves

    @staticmethod
    def _iterations(est: Any) -> int:
        return max(1, len(est.history))

    def _map_probs(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != self.n_classes:
            raise ValueError(f"the module returned outputs of shape {proba.shape[1:]} but n_classes={self.n_classes}: "
                             "it must output one column per class")
        return proba

    def _chunk(self, X: np.ndarray, probs: bool, embeddings: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        net = self._fitted()
        X = np.asarray(X, dtype=np.float32)
        P = self._map_probs(net.predict_proba(X)) if probs else None
        if not embeddings:
            return P, None
        if callable(self.embed_from):
            return P, np.asarray(self.embed_from(X))
        module = net.module_
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                dev = next(module.parameters()).device
                Z = module.embed(torch.from_numpy(X).to(dev)).flatten(1).cpu().numpy()
        finally:
            module.train(was_training)
        return P, Z

    def check_inputs(self, X: Any, name: str = "X") -> None:
        """Build the module (on a clone, without touching the global random state) and run it on
        the first rows of ``X``, turning a shape mismatch into a ``ValueError`` before training."""
        net = _sklearn().clone(self.estimator)
        rows = torch.from_numpy(np.asarray(self._numpy_rows(X[:2]), dtype=np.float32))
        with torch.random.fork_rng(devices=self._devices(net)):
            net.initialize()
            module = net.module_.eval()
            try:
                with torch.no_grad():
                    module(rows.to(next(module.parameters()).device))
            except (RuntimeError, ValueError, IndexError) as exc:
                raise ValueError(f"the model cannot take {name}: its rows have shape {tuple(X.shape[1:])}, and the "
                                 f"module ({type(module).__name__}) failed on them: {exc}") from None


def as_learner(estimator: Any, *, n_classes: int, embed: Any = None, device: str | torch.device | None = None
               ) -> SklearnLearner:
    """The learner for ``estimator``: :class:`SkorchLearner` for a skorch net (``embed`` None
    means its default, ``"auto"``), :class:`SklearnLearner` for any other classifier."""
    if _is_skorch_net(estimator):
        return SkorchLearner(estimator, n_classes=n_classes, device=device,
                             **({"embed": embed} if embed is not None else {}))
    return SklearnLearner(estimator, n_classes=n_classes, embed=embed, device="cpu" if device is None else device)


def load_factory(path: str) -> Callable[[], Any]:
    """The callable named ``"package.module:function"`` (a dotted attribute path after the colon
    is followed, e.g. ``"pkg.mod:Factories.small"``); the error says what is wrong."""
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValueError(f"a model factory is named 'package.module:function', got {path!r}")
    module_name, attr = path.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import the module {module_name!r} of the model factory {path!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"the model factory {path!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"the model factory {path!r} is not callable ({type(obj).__name__})")
    return obj


def estimator_from_factory(path: str) -> Any:
    """Call the factory ``path`` (:func:`load_factory`) with no arguments and check that it returns
    a classifier with ``fit`` and ``predict_proba`` (a scikit-learn estimator or a skorch net)."""
    est = load_factory(path)()
    if not (hasattr(est, "fit") and hasattr(est, "predict_proba") and hasattr(est, "get_params")):
        raise ValueError(f"the model factory {path!r} returned {type(est).__name__}, not a scikit-learn classifier "
                         "or skorch net (fit, predict_proba, get_params)")
    return est
