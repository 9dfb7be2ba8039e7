"""The workspace model: which network is trained on a workspace's features, and how.

The configuration is fixed when the workspace is created and stored with it, so every query
trains the same kind of model (from a fresh initialisation, as in the BADGE protocol). Training
uses :class:`~activebatch.Learner`; the inputs are the stored item features (pixels, table
columns, or precomputed embeddings).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..utils.validation import check_scalar
from .errors import WorkspaceError

__all__ = ["ModelConfig", "MODELS", "build_learner", "feature_stats"]

#: ``mlp``: the BADGE paper's two-layer perceptron; ``linear``: a linear classifier on the
#: features (the usual choice on pretrained embeddings); ``cnn``: a small convolutional network
#: (image workspaces only); ``sklearn``: a scikit-learn classifier or skorch net made by the
#: factory named in ``sklearn`` (:class:`~activebatch.learning.sklearn.SklearnLearner`).
MODELS = ("mlp", "linear", "cnn", "sklearn")


@dataclass
class ModelConfig:
    """How the workspace model is built and trained.

    Parameters
    ----------
    model : {"mlp", "linear", "cnn", "sklearn"}, default "mlp"
    hidden : int, optional
        Embedding width of the MLP / CNN (default: the paper's 256 for images, 1024 for tables;
        256 for precomputed features and text items, which are dense embeddings of at most a few
        hundred dimensions as images are; 128 for the CNN).
    lr : float, optional
        Adam learning rate (default: 1e-3 for images, precomputed features and text items, 1e-4
        for tables, as in the paper).
    max_epochs : int, default 200
        Epoch cap; training stops earlier when training accuracy reaches 99%.
    batch_size : int, default 64
    dropout : float, default 0.0
        Dropout before the head (needed by MC-dropout strategies).
    bayesian : bool, default False
        A Bayes-by-Backprop head (:class:`~activebatch.learning.models.BayesianLinear`), whose
        weight samples serve the strategies reading ``mc_probs``.
    device : str, default "auto"
        "auto" trains on CUDA when present.
    seed : int, default 0
        Seeds every round's initial weights, mini-batch order and selection (mixed with the
        round number): the same labels give the same batch.
    sklearn : str, optional
        With ``model="sklearn"``: the factory ``"package.module:function"`` that returns the
        scikit-learn classifier (pipelines included) or skorch net, called with no arguments. It
        sees the stored item features (not standardised: put a scaler in the pipeline); every
        query clones and refits it, its ``random_state`` seeded as the torch models are.
    sklearn_embed : str, default "transform"
        Where its embeddings come from (see :class:`~activebatch.learning.sklearn.SklearnLearner`):
        ``"transform"`` (a pipeline's output before its last step), a step's name, ``"hidden"``
        (an ``MLPClassifier``'s last hidden layer), or ``"none"`` (probabilities only).
    restart_stalled : bool or dict, default False
        Restart a stalled fit from fresh weights, the BADGE authors' rule
        (:class:`~activebatch.learning.RestartIfStalled`): ``True`` for their values (every 50
        epochs below 20% training accuracy) or ``{"every": ..., "below": ...}``. Torch models only.
    """

    model: str = "mlp"
    hidden: int | None = None
    lr: float | None = None
    max_epochs: int = 200
    batch_size: int = 64
    dropout: float = 0.0
    bayesian: bool = False
    device: str = "auto"
    seed: int = 0
    sklearn: str | None = None
    sklearn_embed: str = "transform"
    restart_stalled: bool | dict[str, Any] = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise WorkspaceError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.hidden is not None and self.hidden < 1:
            raise WorkspaceError(f"hidden width must be >= 1, got {self.hidden}")
        if self.lr is not None and not self.lr > 0:
            raise WorkspaceError(f"learning rate must be > 0, got {self.lr}")
        if self.max_epochs < 1 or self.batch_size < 1:
            raise WorkspaceError("max_epochs and batch_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise WorkspaceError(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.bayesian, bool):
            raise WorkspaceError(f"bayesian must be true or false, got {self.bayesian!r}")
        try:
            check_scalar(self.seed, "seed", int, min_val=0)
        except ValueError as exc:
            raise WorkspaceError(str(exc)) from None
        self.restart_stalled = _check_restart(self.restart_stalled)
        if self.restart_stalled and self.model == "sklearn":
            raise WorkspaceError("restart_stalled restarts a torch model's fit; a scikit-learn model trains itself: "
                                 "leave it off with --model sklearn")
        if (self.model == "sklearn") != (self.sklearn is not None):
            raise WorkspaceError("a scikit-learn model needs its factory and the factory needs model 'sklearn': "
                                 "give both (--model sklearn --sklearn package.module:function) or neither")
        if self.sklearn is not None:
            from ..learning.sklearn import load_factory

            try:
                load_factory(self.sklearn)
            except ValueError as exc:
                raise WorkspaceError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-friendly dict (stored in the workspace)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """The configuration stored by :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self, kind: str) -> str:
        """A one-line description for messages and the snapshots table."""
        if self.model == "sklearn":
            return f"sklearn ({self.sklearn}, embeddings: {self.sklearn_embed})"
        restart = self.restart_callback()
        return (f"{self.model} (lr {self.learning_rate(kind):g}, width {self.width(kind)}, max {self.max_epochs} epochs"
                + (f", restarts a fit below {restart.below:.0%} training accuracy every {restart.every} epochs"
                   if restart is not None else "") + ")")

    def restart_callback(self):
        """The :class:`~activebatch.learning.RestartIfStalled` of ``restart_stalled``, or None."""
        from ..learning.callbacks import RestartIfStalled

        return RestartIfStalled.coerce(self.restart_stalled if self.restart_stalled is not False else None)

    def learning_rate(self, kind: str) -> float:
        """The Adam learning rate used for items of ``kind``."""
        return self.lr if self.lr is not None else (1e-4 if kind == "tabular" else 1e-3)

    def width(self, kind: str) -> int:
        """The embedding width used for items of ``kind``."""
        if self.hidden is not None:
            return self.hidden
        if self.model == "cnn":
            return 128
        return 256 if kind in ("image", "features", "text") else 1024


def feature_stats(X: np.ndarray, *, common_scale: bool = False) -> tuple[list[float], list[float]]:
    """Per-feature mean and standard deviation (constant features get std 1).

    With ``common_scale`` every feature gets the same scale, the root of the features' mean
    variance: the inputs are centred and have unit variance on average, and features keep their
    relative spread. Latent semantic components (text items) are ordered by variance, the topic
    directions first; scaling each to unit variance would give the many faint trailing ones the
    weight of the leading ones.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    if common_scale:
        rms = float(np.sqrt(np.mean(np.square(std)))) if std.size else 0.0
        std = np.full_like(std, rms)
    std[~(std > 1e-12)] = 1.0
    return mean.tolist(), std.tolist()


def build_learner(config: ModelConfig, *, kind: str, n_features: int, n_classes: int,
                  meta: dict[str, Any], device: str | None = None, max_epochs: int | None = None):
    """A fresh :class:`~activebatch.Learner` for a workspace.

    Parameters
    ----------
    config : ModelConfig
    kind : {"tabular", "image", "features", "text"}
    n_features, n_classes : int
    meta : dict
        The workspace metadata: ``feature_mean``/``feature_std`` (standardisation of tables and
        precomputed features) and ``image_shape`` (C, H, W) for image workspaces.
    device, max_epochs : optional
        Override the configuration for this run.
    """
    from ..learning import models
    from ..learning.learner import Learner

    if config.model == "sklearn":
        from ..learning.sklearn import as_learner, estimator_from_factory

        embed = None if config.sklearn_embed == "none" else config.sklearn_embed
        try:
            return as_learner(estimator_from_factory(config.sklearn), n_classes=n_classes, embed=embed,
                              device=device or ("cpu" if config.device == "auto" else config.device))
        except (TypeError, ValueError) as exc:
            raise WorkspaceError(f"the workspace's scikit-learn model: {exc}") from None

    mean = meta.get("feature_mean") if kind != "image" else None
    std = meta.get("feature_std") if kind != "image" else None
    width = config.width(kind)
    if config.model == "mlp":
        net = models.MLP(n_features, n_classes, embedding_dim=width, dropout=config.dropout, mean=mean, std=std,
                         bayesian=config.bayesian)
    elif config.model == "linear":
        net = models.LinearHead(n_features, n_classes, dropout=config.dropout, mean=mean, std=std,
                                bayesian=config.bayesian)
    else:
        shape = meta.get("image_shape")
        if kind != "image" or shape is None:
            raise WorkspaceError("the cnn model needs an image workspace")
        net = models.CNN(in_channels=int(shape[0]), n_classes=n_classes, embedding_dim=width,
                         dropout=config.dropout, input_shape=tuple(int(s) for s in shape), bayesian=config.bayesian)
    restart = config.restart_callback()
    return Learner(net, lr=config.learning_rate(kind), batch_size=config.batch_size,
                   max_epochs=max_epochs or config.max_epochs, device=device or config.device,
                   callbacks=None if restart is None else [restart])


def _check_restart(value: Any) -> bool | dict[str, Any]:
    """``restart_stalled`` as stored (JSON): False, True, or the options given; refused as the
    grid specs refuse it."""
    from ..learning.callbacks import RestartIfStalled

    if value is None or value is False:
        return False
    try:
        RestartIfStalled.coerce(value)
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(str(exc)) from None
    return dict(value) if isinstance(value, dict) else True
