"""Training callbacks: how strategies and users plug into :meth:`Learner.fit` without growing it.

In the spirit of skorch's and Lightning's callbacks, a :class:`Callback` is told when a fit
starts and ends, when each epoch starts and ends, and after the forward pass of each mini-batch,
where it can add terms to the loss (``batch.add_loss``). It can create extra modules that share
the backbone's features (a loss-prediction head reads ``batch.embeddings`` or registers forward
hooks on intermediate layers in :meth:`Callback.on_fit_start`), and train them with the same
optimiser (``fit.add_parameters``). It can stop training (``fit.stop = True``), take
predictions at the end of each epoch (``fit.predict``), or change the learning rate
(:class:`LRScheduler`).

Callbacks run inside the fit's seeded random stream (the one that draws dropout masks): a
module initialised in ``on_fit_start`` is reproducible, but it moves the stream, and so the
backbone's dropout masks. Initialise it under ``torch.random.fork_rng()`` with its own seed to
leave the backbone's training exactly as without the callback.

The order of calls in one fit::

    on_fit_start(fit)
    for each epoch:  on_epoch_start(fit)
                     for each mini-batch:  forward; on_batch(fit, batch); backward; step; on_batch_end(fit, batch)
                     on_epoch_end(fit)        # after the built-in stopping rule is evaluated
    on_fit_end(fit)
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..utils.validation import check_scalar, coerce_options
from .reinit import reinitialise

__all__ = ["Callback", "FitState", "BatchState", "LRScheduler", "RestartIfStalled", "TimedCallback"]


@dataclass
class BatchState:
    """One mini-batch of a fit, after the forward pass.

    Attributes
    ----------
    index : tensor of int64, shape (B,)
        Rows of the training set in this mini-batch.
    x : tensor of shape (B, ...)
        The inputs (after the frozen extractor, if any), on the learner's device.
    y : tensor of int64, shape (B,)
        The labels.
    logits : tensor of shape (B, K)
        The model's outputs.
    loss : tensor (scalar)
        The classification loss (mean cross-entropy over the batch), before added terms.
    step : int
        Mini-batches trained so far in this fit (0 for the first).
    """

    index: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor
    step: int
    _embed: Callable[[], torch.Tensor] | None = None
    _embeddings: torch.Tensor | None = None
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def embeddings(self) -> torch.Tensor:
        """The penultimate-layer embeddings of ``x`` (B, d), from the same forward pass as the
        logits, with gradient (a module trained on them trains the backbone too unless it
        detaches them)."""
        if self._embeddings is None:
            if self._embed is None:  # pragma: no cover - the learner always sets one
                raise RuntimeError("this model's embeddings are not available during training")
            self._embeddings = self._embed()
        return self._embeddings

    def add_loss(self, name: str, value: torch.Tensor) -> None:
        """Add ``value`` (a scalar tensor) to this mini-batch's loss, under ``name``."""
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            raise ValueError(f"loss term {name!r} must be a scalar tensor, got {type(value).__name__}"
                             + (f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else ""))
        if name in self.extra_losses:
            raise ValueError(f"loss term {name!r} was added twice in one mini-batch")
        self.extra_losses[name] = value

    @property
    def total_loss(self) -> torch.Tensor:
        """The loss that is back-propagated: the classification loss plus every added term."""
        total = self.loss
        for value in self.extra_losses.values():
            total = total + value
        return total


@dataclass
class FitState:
    """The state of one :meth:`Learner.fit`, shared by its callbacks.

    Attributes
    ----------
    learner : Learner
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
    X : tensor of shape (n, ...)
        The training inputs on the learner's device (after the frozen extractor, if any).
    y : tensor of int64, shape (n,)
    seed : int
        The fit's seed.
    epoch : int
        The current epoch, from 1 (0 before the first).
    step : int
        Mini-batches trained so far.
    train_accuracy : float
        Training accuracy of the last finished epoch (measured on the mini-batches as trained).
    epoch_loss : float
        Mean total loss of the last finished epoch.
    stop : bool
        Set to True (in ``on_batch_end`` or ``on_epoch_end``) to end training after the current
        epoch; the built-in rule (target accuracy or epoch cap) still applies.
    history : list of dict
        One entry per finished epoch: ``epoch``, ``train_accuracy``, ``loss`` and the mean of
        every added loss term.
    """

    learner: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    X: torch.Tensor
    y: torch.Tensor
    seed: int
    epoch: int = 0
    step: int = 0
    train_accuracy: float = 0.0
    epoch_loss: float = 0.0
    stop: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def artifacts(self) -> dict[str, Any]:
        """The learner's :attr:`~activebatch.learning.Learner.fit_artifacts`: where a strategy's
        callback leaves what it trained or recorded (under the strategy's name) for the strategy
        to read at selection time through ``evidence.learner``. Emptied at the start of every fit."""
        return self.learner.fit_artifacts

    def add_parameters(self, params: Iterable[torch.nn.Parameter], **group_options: Any) -> None:
        """Train ``params`` (e.g. an extra head's) with the fit's optimiser, as a new parameter
        group (``group_options`` such as ``lr`` override the optimiser's defaults)."""
        self.optimizer.add_param_group({"params": list(params), **group_options})

    @torch.no_grad()
    def predict(self, X: Any) -> torch.Tensor:
        """Softmax outputs (n, K) of the model as it stands, in eval mode (training mode is
        restored afterwards); for per-epoch predictions."""
        was_training = self.model.training
        try:
            return self.learner.outputs(X, embeddings=False)[0]
        finally:
            self.model.train(was_training)


class Callback:
    """Base class of training callbacks; every hook does nothing by default."""

    def on_fit_start(self, fit: FitState) -> None:
        """After the model is re-initialised and the optimiser built, before the first epoch."""

    def on_epoch_start(self, fit: FitState) -> None:
        """Before each epoch (``fit.epoch`` already counts it)."""

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        """After the forward pass of a mini-batch, before the backward pass: add loss terms here."""

    def on_batch_end(self, fit: FitState, batch: BatchState) -> None:
        """After the optimiser step of a mini-batch."""

    def on_epoch_end(self, fit: FitState) -> None:
        """After each epoch (``fit.train_accuracy`` and ``fit.history`` are up to date)."""

    def on_fit_end(self, fit: FitState) -> None:
        """After the last epoch, with the model back in eval mode."""


class LRScheduler(Callback):
    """Drive a ``torch.optim.lr_scheduler`` during training (skorch's ``LRScheduler``).

    Parameters
    ----------
    factory : callable
        ``factory(optimizer) -> scheduler``, e.g.
        ``lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)`` for the
        cyclic schedule of snapshot ensembles.
    interval : {"epoch", "step"}, default "epoch"
        Step the scheduler after every epoch or after every mini-batch.
    """

    def __init__(self, factory: Callable[[torch.optim.Optimizer], Any], interval: str = "epoch") -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable (optimizer -> scheduler), got {type(factory).__name__}")
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step', got {interval!r}")
        self.factory, self.interval = factory, interval
        self.scheduler: Any = None

    def on_fit_start(self, fit: FitState) -> None:
        self.scheduler = self.factory(fit.optimizer)   # a new schedule for every fit from scratch

    def on_batch_end(self, fit: FitState, batch: BatchState) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, fit: FitState) -> None:
        if self.interval == "epoch":
            self.scheduler.step()


class RestartIfStalled(Callback):
    """Start training again from fresh weights when it stalls: the BADGE authors' rule.

    After every ``every``-th epoch whose training accuracy is below ``below``, the model's
    parameters are drawn afresh and the optimiser's state (Adam's moment estimates and step
    counts, SGD's momentum) is cleared, which is what building a new optimiser does; training then
    goes on under the learner's stopping rule (the epoch count is not reset, so ``max_epochs``
    still bounds the fit). The training loop of the code published with Ash et al., "Deep Batch
    Active Learning by Diverse, Uncertain Gradient Lower Bounds" (ICLR 2020), does this every 50
    epochs below 20% training accuracy, the defaults here.

    The new weights come from the fit's seeded random stream, so a restarted fit is reproducible
    and differs from the first start. Parameters added by other callbacks
    (``fit.add_parameters``) keep their values; a learning-rate scheduler keeps its schedule.

    Parameters
    ----------
    every : int, default 50
        Check after epochs ``every``, ``2 * every``, ...
    below : float, default 0.2
        Restart when the epoch's training accuracy is below this, in (0, 1].

    Attributes
    ----------
    restarts : int
        Restarts in the last fit.
    total_restarts : int
        Restarts over every fit this callback took part in.
    """

    def __init__(self, every: int = 50, below: float = 0.2) -> None:
        self.every = check_scalar(every, "every", int, min_val=1)
        self.below = check_scalar(below, "below", float, min_val=0, max_val=1, include_min=False)
        self.restarts = 0
        self.total_restarts = 0

    @classmethod
    def coerce(cls, value: RestartIfStalled | Mapping[str, Any] | bool | None) -> RestartIfStalled | None:
        """``None``/``False`` -> off, ``True`` -> the defaults, a mapping -> ``RestartIfStalled(**mapping)``."""
        return coerce_options(cls, value, known=("every", "below"), what="restart_stalled",
                              expected="restart_stalled must be true/false or a table with every and/or below")

    def on_fit_start(self, fit: FitState) -> None:
        self.restarts = 0

    def on_epoch_end(self, fit: FitState) -> None:
        if fit.epoch % self.every or fit.train_accuracy >= self.below:
            return
        reinitialise(fit.model)   # torch's initialisers run without gradient tracking
        fit.optimizer.state.clear()
        self.restarts += 1
        self.total_restarts += 1

    def __repr__(self) -> str:
        return f"RestartIfStalled(every={self.every}, below={self.below})"


class TimedCallback(Callback):
    """Wraps a callback and adds the wall time spent in its hooks to :attr:`seconds`.

    The loop wraps a strategy's training callbacks in it to charge their work (extra forward
    passes, per-epoch predictions, extra modules' steps) to the strategy's selection time. The
    backward pass through loss terms a callback adds is part of the model's own backward pass and
    is not counted here.
    """

    def __init__(self, inner: Callback) -> None:
        if not isinstance(inner, Callback):
            raise TypeError(f"TimedCallback wraps a Callback, got {type(inner).__name__}")
        self.inner = inner
        self.seconds = 0.0

    def _timed(self, hook: str, *args: Any) -> None:
        start = time.perf_counter()
        try:
            getattr(self.inner, hook)(*args)
        finally:
            self.seconds += time.perf_counter() - start

    def on_fit_start(self, fit: FitState) -> None:
        self._timed("on_fit_start", fit)

    def on_epoch_start(self, fit: FitState) -> None:
        self._timed("on_epoch_start", fit)

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        self._timed("on_batch", fit, batch)

    def on_batch_end(self, fit: FitState, batch: BatchState) -> None:
        self._timed("on_batch_end", fit, batch)

    def on_epoch_end(self, fit: FitState) -> None:
        self._timed("on_epoch_end", fit)

    def on_fit_end(self, fit: FitState) -> None:
        self._timed("on_fit_end", fit)
