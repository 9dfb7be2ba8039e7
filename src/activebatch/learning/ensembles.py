"""Cheap ensembles: several predictors from about one training budget.

Beluch, McCarthy, Lerch & Hentschel ("The power of ensembles for active learning in image
classification", CVPR 2018) find that the naive ensemble (:class:`~activebatch.learning.committee.Committee`:
M networks trained independently from M random initialisations) gives the best uncertainties for
active learning, and compare it with three cheaper ways of getting several predictors, all of which
they found to select worse than the naive ensemble:

- :class:`SnapshotEnsemble`: one training run with a cyclic cosine learning rate, a snapshot of the
  weights at the end of every cycle (Huang et al., ICLR 2017);
- :class:`DiversityEnsemble`: the "diversity encouraging ensemble" (DEE), a base network trained for
  a few epochs, then M copies of it each trained on with dropout;
- :class:`SplitHeadEnsemble`: one network whose shared body feeds M heads, trained jointly.

Each is a :class:`~activebatch.Learner`, so :func:`activebatch.run`, grid specs
(``[training] ensemble = "snapshot" | "diversity" | "split_head"``) and workspaces use them as they
use a single model. Their ``evidence()`` gives ``mc_probs`` of shape (M, N, K),
the members' softmax outputs, so every strategy that reads member or MC samples (``var_ratio``,
``bald``, ``batchbald``, ``mean_std``, ``vote_entropy``, ``consensus_entropy``, ``kl_divergence``,
...) runs on them unchanged; ``probs`` is the members' mean softmax output.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import check_labels, check_scalar
from .callbacks import BatchState, Callback, FitState
from .committee import Committee, Ensemble, MemberEnsemble, _modules_outputs
from .learner import FitResult, Learner
from .models.base import EmbeddingModel
from .reinit import reinitialise

__all__ = ["SnapshotEnsemble", "SnapshotCycles", "cyclic_cosine_lr", "DiversityEnsemble", "SplitHeadEnsemble",
           "SplitHeadNetwork", "ENSEMBLES"]


# Shared evidence -------------------------------------------------------------------------------------
class _MemberEnsemble(MemberEnsemble):
    """A cheap ensemble: the members' evidence of :class:`~activebatch.learning.committee.MemberEnsemble`,
    plus its kind and training cost."""

    #: The kind of ensemble, recorded in :attr:`model_name`.
    kind: str = ""
    #: Epochs trained in the last fit, summed over every network that was trained (the training
    #: cost: a committee of M trains M networks, a snapshot or split-head ensemble one).
    trained_epochs: int = 0

    def _base_name(self) -> str:
        return type(self.model).__name__

    @property
    def model_name(self) -> str:
        """Name recorded in results, e.g. ``"MLPx5-snapshot"``."""
        return f"{self._base_name()}x{self.n_members}-{self.kind}"

    def _split_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Options for the inner learners: the frozen extractor runs once, here, for all of them."""
        inner = {k: v for k, v in options.items() if k != "extractor"}
        inner["device"] = self.device
        return inner


class _Members(Ensemble):
    """Member networks as one module (log of the mean softmax as its forward); ``embed`` and
    ``head`` are those of member ``index``."""

    def __init__(self, members: list[nn.Module], index: int) -> None:
        super().__init__(members)
        self.index = int(index)
        self.head = members[self.index].head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[self.index].embed(x)


def _state_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# Snapshot ensemble ---------------------------------------------------------------------------------
def cyclic_cosine_lr(t: int | np.ndarray, alpha0: float, cycle: int) -> float | np.ndarray:
    """Huang et al.'s shifted cosine learning rate at iteration ``t`` (from 1):
    alpha(t) = alpha0 / 2 * (cos(pi * mod(t - 1, cycle) / cycle) + 1), with ``cycle`` = ceil(T / M)
    iterations; it restarts at alpha0 at the first iteration of every cycle."""
    t = np.asarray(t)
    out = alpha0 / 2.0 * (np.cos(np.pi * np.mod(t - 1, cycle) / cycle) + 1.0)
    return float(out) if out.ndim == 0 else out


class SnapshotCycles(Callback):
    """Huang et al.'s cyclic cosine annealing with a snapshot of the weights at every cycle's end.

    Cycles of ``cycle_epochs`` epochs, i.e. ``cycle = cycle_epochs * ceil(n / batch_size)``
    mini-batch iterations. Before iteration t (t = 1, 2, ...) of a fit, every parameter group's
    learning rate is set to :func:`cyclic_cosine_lr` ``(t, alpha0, cycle)``, alpha0 being the
    group's learning rate when first seen (so groups that strategies add with their own rate are
    annealed from that rate); the rate is updated at every iteration, not every epoch, as in the
    paper. After iteration k * cycle the model's state dict is copied into :attr:`snapshots`; its
    training accuracy (of the cycle's last epoch) into :attr:`accuracies`.

    Parameters
    ----------
    cycle_epochs : int
        Epochs per cycle.
    """

    def __init__(self, cycle_epochs: int) -> None:
        self.cycle_epochs = check_scalar(cycle_epochs, "cycle_epochs", int, min_val=1)
        self.cycle = 0
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.accuracies: list[float] = []

    def on_fit_start(self, fit: FitState) -> None:
        n = int(fit.X.shape[0])
        self.cycle = self.cycle_epochs * math.ceil(n / fit.learner.batch_size)
        self.snapshots, self.accuracies = [], []

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        factor = cyclic_cosine_lr(fit.step + 1, 1.0, self.cycle)
        for group in fit.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor

    def on_batch_end(self, fit: FitState, batch: BatchState) -> None:
        if fit.step % self.cycle == 0:   # fit.step counts the iterations trained, this one included
            self.snapshots.append(_state_copy(fit.model))

    def on_epoch_end(self, fit: FitState) -> None:
        if fit.epoch % self.cycle_epochs == 0:
            self.accuracies.append(fit.train_accuracy)


class SnapshotEnsemble(_MemberEnsemble):
    """Snapshot ensemble: M snapshots of one training run with a cyclic cosine learning rate.

    Huang, Li, Pleiss, Liu, Hopcroft & Weinberger, "Snapshot Ensembles: Train 1, get M for free",
    ICLR 2017 (one of the cheap ensembles Beluch et al., CVPR 2018, compare with the naive one).
    One network is trained from its seed's initialisation for M cycles; in every cycle the
    learning rate falls from alpha0 (the learner's ``lr``) along the shifted cosine
    alpha(t) = alpha0 / 2 (cos(pi mod(t - 1, ceil(T/M)) / ceil(T/M)) + 1), updated at every
    iteration t of the T iterations, and restarts at alpha0 (:class:`SnapshotCycles`). The weights
    at the end of cycle k are member k. The prediction is the mean of the M snapshots' softmax
    outputs (the paper's ensemble of all M snapshots).

    **The training budget.** The snapshot ensemble needs a fixed number of iterations: the schedule
    is defined by T, and a run stopped early would end mid-cycle with fewer snapshots. So it does
    not follow the protocol's rule "train until 99% training accuracy": every fit trains exactly
    ``n_members * cycle_epochs`` epochs (T = that many epochs of ceil(n / batch_size)
    iterations, so each cycle ends with an epoch). ``target_accuracy`` only decides
    ``FitResult.reached_target``: whether every snapshot's training accuracy (in its cycle's
    last epoch) reached it. ``max_epochs`` must be at least the budget.

    Choices where the paper does not fit this setting: Huang et al. train with SGD (Nesterov
    momentum 0.9) from alpha0 = 0.1 or 0.2, with M = 6 cycles of 50 epochs on CIFAR; here the
    optimiser and alpha0 are the learner's (Adam at the protocol's rate by default), M defaults
    to 5, the size of Beluch et al.'s ensembles, and a cycle to 10 epochs: 50 epochs in all,
    about what one MLP of the BADGE protocol trains to reach 99% training accuracy on the image
    data sets (15 to 75 epochs on mnist-5k and digits with 50 to 400 labels), so the ensemble
    costs about one model's training, the paper's premise.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture (``embed(x)`` and a final ``nn.Linear`` named ``head``).
    n_members : int, default 5
        M >= 2, the number of cycles and snapshots.
    cycle_epochs : int, default 10
        Epochs per cycle.
    **options
        :class:`~activebatch.Learner` options (lr = alpha0, batch_size, weight_decay, device,
        optimizer, ...). ``embeddings`` are those of the last snapshot (the network the run ends
        with).
    """

    kind = "snapshot"

    def __init__(self, model: nn.Module, n_members: int = 5, cycle_epochs: int = 10, **options: Any) -> None:
        self.n_members = check_scalar(n_members, "n_members", int, min_val=2)
        self.cycle_epochs = check_scalar(cycle_epochs, "cycle_epochs", int, min_val=1)
        super().__init__(model, **options)
        budget = self.n_members * self.cycle_epochs
        if budget > self.max_epochs:
            raise ValueError(f"a snapshot ensemble trains n_members * cycle_epochs = {budget} epochs, more than "
                             f"max_epochs={self.max_epochs}; raise max_epochs or shorten the cycles")
        inner = self._split_options(options)
        inner["max_epochs"] = budget
        self.trainer = Learner(model, **inner)
        # The fixed budget: the accuracy rule must not end the run before its last cycle.
        self.trainer.target_accuracy = math.inf
        self.model = _Members([copy.deepcopy(model) for _ in range(self.n_members)], index=self.n_members - 1)
        self.snapshot_accuracies: list[float] = []

    def _base_name(self) -> str:
        return type(self.trainer.model).__name__

    def reset(self, seed: int) -> None:
        """Re-initialise the network from ``seed``; every member becomes a copy of it."""
        self.trainer.reset(seed)
        for m in self.model.members:
            m.load_state_dict(self.trainer.model.state_dict())

    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Any = None) -> FitResult:
        """Train the network for ``n_members * cycle_epochs`` epochs from the initialisation of
        ``seed`` with the cyclic schedule; the snapshots at the cycles' ends become the members.
        ``callbacks`` are called in that one run."""
        start = time.perf_counter()
        X_t = self._to_tensor(X)
        y_np = check_labels(y, "y", rows=X_t.shape[0])
        cycles = SnapshotCycles(self.cycle_epochs)
        extra = [] if callbacks is None else [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        fit = self.trainer.fit(X_t, y_np, seed=seed, callbacks=[cycles, *extra])
        if len(cycles.snapshots) != self.n_members:  # pragma: no cover - the budget makes exactly M cycles
            raise RuntimeError(f"expected {self.n_members} snapshots, got {len(cycles.snapshots)}")
        for member, state in zip(self.model.members, cycles.snapshots):
            member.load_state_dict(state)
        self.model.eval()
        self.fit_artifacts = self.trainer.fit_artifacts
        self._last_seed = int(seed)
        self.snapshot_accuracies = list(cycles.accuracies)
        self.trained_epochs = fit.epochs
        acc = self.snapshot_accuracies
        self.last_fit = FitResult(fit.epochs, float(np.mean(acc)), time.perf_counter() - start,
                                  all(a >= self.target_accuracy for a in acc))
        return self.last_fit

    def _member_outputs(self, xb: torch.Tensor, embeddings: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        return _modules_outputs(self.model.members, self.model.index, xb, embeddings)

    def __repr__(self) -> str:
        return (f"SnapshotEnsemble({self._base_name()} x {self.n_members}, cycle_epochs={self.cycle_epochs}, "
                f"lr={self.lr}, batch_size={self.batch_size}, device={self.device})")


# Diversity-encouraging ensemble ----------------------------------------------------------------------
class _WarmStartLearner(Learner):
    """A Learner whose every fit starts from given weights (``start_state``) instead of a
    fresh initialisation; the seed still draws the mini-batch order and the dropout masks."""

    start_state: dict[str, torch.Tensor] | None = None

    def reset(self, seed: int) -> None:
        if self.start_state is None:
            super().reset(seed)
        else:
            self.model.load_state_dict(self.start_state)


class DiversityEnsemble(_MemberEnsemble):
    """Diversity-encouraging ensemble (DEE): M copies of a briefly trained base network, each
    trained on with dropout.

    The cheap ensemble of Beluch, McCarthy, Lerch & Hentschel ("The power of ensembles for active
    learning in image classification", CVPR 2018): a base network trained for a small number of
    epochs initialises n networks, each of which is trained with dropout to encourage diversity.
    Here the base network is trained from the seed's initialisation for
    ``base_epochs`` epochs (or until the target accuracy, if sooner) as a
    :class:`~activebatch.Learner` trains; then each member starts from the base's weights, with
    the dropout before the head (the model's ``dropout`` module) at rate ``dropout``, and is
    trained by the protocol's rule (fresh optimiser, until ``target_accuracy`` training accuracy or
    ``max_epochs``) with its own seed: its own mini-batch order and dropout masks, the only
    sources of the members' differences. The members predict without dropout (eval mode); the
    prediction is the mean of their softmax outputs.

    Choices the paper leaves open: how short the base training is (``base_epochs`` = 5, about a
    third of what one MLP trains on mnist-5k in the protocol), the dropout rate (0.5, the usual
    rate for hidden units, Srivastava et al., JMLR 2014) and where it acts (before the head,
    where every activebatch model has its dropout), and the members' training (the protocol's
    rule, as the naive ensemble's members are trained). The base is trained with the model's own
    dropout rate.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture, with an ``nn.Dropout`` named ``dropout`` before its head (every
        activebatch model has one, of rate 0 unless set).
    n_members : int, default 5
        M >= 2 (Beluch et al.'s ensembles have 5 members).
    base_epochs : int, default 5
        Epochs of the base network's training.
    dropout : float, default 0.5
        Dropout rate of the members' training, 0 < p < 1.
    **options
        :class:`~activebatch.Learner` options shared by the base and the members. ``embeddings``
        are the first member's.
    """

    kind = "diversity"

    def __init__(self, model: nn.Module, n_members: int = 5, base_epochs: int = 5, dropout: float = 0.5,
                 **options: Any) -> None:
        self.n_members = check_scalar(n_members, "n_members", int, min_val=2)
        self.base_epochs = check_scalar(base_epochs, "base_epochs", int, min_val=1)
        self.dropout = check_scalar(dropout, "dropout", float, min_val=0, max_val=1, include_min=False,
                                    include_max=False)
        if not isinstance(getattr(model, "dropout", None), nn.Dropout):
            raise TypeError("the diversity ensemble trains its members with dropout before the head: the model needs "
                            "an nn.Dropout named 'dropout' applied in embed(x) (every activebatch model has one)")
        super().__init__(model, **options)
        inner = self._split_options(options)
        self.base = Learner(model, **{**inner, "max_epochs": self.base_epochs})
        self.members: list[_WarmStartLearner] = []
        for _ in range(self.n_members):
            net = copy.deepcopy(model)
            net.dropout.p = self.dropout
            self.members.append(_WarmStartLearner(net, **inner))
        self.model = _Members([m.model for m in self.members], index=0)

    def _base_name(self) -> str:
        return type(self.base.model).__name__

    def reset(self, seed: int) -> None:
        """Re-initialise the base network from ``seed``; every member becomes a copy of it."""
        self.base.reset(seed)
        for m in self.members:
            m.model.load_state_dict(self.base.model.state_dict())

    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Any = None) -> FitResult:
        """Train the base network (seed ``seed``), then every member from its weights with
        dropout (seed :meth:`Committee.member_seed` ``(seed, i)``). ``callbacks`` are called in
        every member's fit (not the base's); the first member's ``fit_artifacts`` are the
        ensemble's.

        Returns the base's epochs plus the slowest member's, the members' mean training accuracy,
        the total time, and whether every member reached the target accuracy.
        """
        start = time.perf_counter()
        X_t = self._to_tensor(X)
        y_np = check_labels(y, "y", rows=X_t.shape[0])
        base_fit = self.base.fit(X_t, y_np, seed=seed)
        state = _state_copy(self.base.model)
        fits = []
        for i, m in enumerate(self.members):
            m.start_state = state
            fits.append(m.fit(X_t, y_np, seed=Committee.member_seed(seed, i), callbacks=callbacks))
        self.model.eval()
        self.fit_artifacts = self.members[0].fit_artifacts
        self._last_seed = int(seed)
        self.trained_epochs = base_fit.epochs + sum(f.epochs for f in fits)
        self.last_fit = FitResult(base_fit.epochs + max(f.epochs for f in fits),
                                  float(np.mean([f.train_accuracy for f in fits])), time.perf_counter() - start,
                                  all(f.reached_target for f in fits))
        return self.last_fit

    def _member_outputs(self, xb: torch.Tensor, embeddings: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        return _modules_outputs(self.model.members, 0, xb, embeddings)

    def __repr__(self) -> str:
        return (f"DiversityEnsemble({self._base_name()} x {self.n_members}, base_epochs={self.base_epochs}, "
                f"dropout={self.dropout}, lr={self.lr}, batch_size={self.batch_size}, device={self.device})")


# Split-head ensemble ---------------------------------------------------------------------------------
class SplitHeadNetwork(EmbeddingModel):
    """A network's body with M linear heads on its embedding.

    ``heads[0]`` is the backbone's own ``head`` (also ``self.head``); heads 1..M-1 are new
    ``nn.Linear`` layers of the same shape. ``embed`` is the backbone's; ``forward`` is the log
    of the heads' mean softmax output (the ensemble as one classifier); :meth:`head_logits` gives
    every head's logits at once.

    Parameters
    ----------
    backbone : torch.nn.Module
        ``embed(x)`` and a final ``nn.Linear`` named ``head``.
    n_heads : int
        M >= 2.
    """

    def __init__(self, backbone: nn.Module, n_heads: int) -> None:
        super().__init__()
        n_heads = check_scalar(n_heads, "n_heads", int, min_val=2)
        if not hasattr(backbone, "embed") or not isinstance(getattr(backbone, "head", None), nn.Linear):
            raise TypeError("the backbone must have an embed(x) method and a final nn.Linear named 'head' "
                            "(see activebatch.learning.models.EmbeddingModel)")
        first = backbone.head
        self.backbone = backbone
        self.embedding_dim, self.n_classes = int(first.in_features), int(first.out_features)
        self.heads = nn.ModuleList([first] + [nn.Linear(first.in_features, first.out_features,
                                                        bias=first.bias is not None)
                                              for _ in range(n_heads - 1)])
        self.head = first

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.embed(x)

    def head_logits(self, z: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Logits of heads ``first``..M-1 on embeddings z (B, d): shape (M - first, B, K)."""
        heads = self.heads[first:]
        W = torch.stack([h.weight for h in heads])                      # (M', K, d)
        out = torch.einsum("bd,mkd->mbk", z, W)
        if heads[0].bias is not None:
            out = out + torch.stack([h.bias for h in heads])[:, None, :]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.head_logits(self.embed(x)), dim=-1).mean(dim=0)
        return torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))

    def reset_parameters(self) -> None:
        """Re-initialise the backbone, then heads 1..M-1 in order (each its own initialisation)."""
        reinitialise(self.backbone)
        for h in self.heads[1:]:
            h.reset_parameters()


class _HeadLosses(Callback):
    """Adds the cross-entropy of heads 1..M-1 to the loss (head 0's is the learner's own), and
    makes the epoch's training accuracy the lowest of the heads' (so the protocol's rule trains
    until every head reaches the target accuracy)."""

    def __init__(self, network: SplitHeadNetwork) -> None:
        self.network = network
        self.correct: torch.Tensor | None = None

    def on_epoch_start(self, fit: FitState) -> None:
        self.correct = None

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        others = self.network.head_logits(batch.embeddings, first=1)      # (M - 1, B, K); same dropout mask
        M1, B, K = others.shape
        losses = F.cross_entropy(others.reshape(M1 * B, K), batch.y.repeat(M1), reduction="none").view(M1, B).mean(1)
        for m in range(M1):
            batch.add_loss(f"head_{m + 1}", losses[m])
        logits = torch.cat([batch.logits.detach()[None], others.detach()])
        hits = (logits.argmax(-1) == batch.y).sum(dim=1)
        self.correct = hits if self.correct is None else self.correct + hits

    def on_epoch_end(self, fit: FitState) -> None:
        acc = (self.correct.double() / int(fit.X.shape[0])).tolist()
        fit.train_accuracy = min(acc)
        fit.history[-1]["train_accuracy"] = fit.train_accuracy
        fit.history[-1].update({f"head_{m}_accuracy": a for m, a in enumerate(acc)})


class SplitHeadEnsemble(_MemberEnsemble):
    """Split-head ensemble: one network body shared by M heads trained jointly; members = heads.

    The split-head approach Beluch, McCarthy, Lerch & Hentschel ("The power of ensembles for
    active learning in image classification", CVPR 2018) compare with the naive ensemble: one
    base model with several heads, each head one classifier; the paper does not say how the
    heads' losses are combined. Following the multi-head ensembles of Lee, Purushwalkam,
    Cogswell, Crandall & Batra ("Why M Heads are Better than One: Training a
    Diverse Ensemble of Deep Networks", arXiv:1511.06314, 2015; TreeNets split at the last layer),
    each head is trained on its own cross-entropy and the loss is the sum of the M heads'
    losses, so the shared body receives the sum of their gradients (with Adam a mean would give
    almost the same steps: Adam's updates do not depend on a constant scale of the loss, up to
    its epsilon). Each head is a final linear layer on the shared embedding with its own
    initialisation (drawn in turn from the fit's seed). Every head sees the same mini-batches and
    the same dropout mask of the body; the heads differ by their initialisations.

    The protocol's rule "train until 99% training accuracy" applies to every head: a fit stops
    when the lowest of the heads' training accuracies reaches ``target_accuracy`` (or at
    ``max_epochs``). ``embeddings`` are the shared body's.

    Parameters
    ----------
    model : torch.nn.Module
        The backbone (``embed(x)`` and a final ``nn.Linear`` named ``head``, which becomes head 0).
    n_members : int, default 5
        M >= 2 heads (Beluch et al.'s ensembles have 5 members).
    **options
        :class:`~activebatch.Learner` options.
    """

    kind = "split_head"

    def __init__(self, model: nn.Module, n_members: int = 5, **options: Any) -> None:
        self.n_members = check_scalar(n_members, "n_members", int, min_val=2)
        super().__init__(SplitHeadNetwork(model, self.n_members), **options)

    def _base_name(self) -> str:
        return type(self.model.backbone).__name__

    def _training_forward(self):
        net = self.model

        def forward(xb: torch.Tensor):
            z = net.embed(xb)
            return net.heads[0](z), (lambda: z)
        return forward

    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Any = None) -> FitResult:
        """Re-initialise the body and the heads from ``seed`` and train them jointly on the sum
        of the heads' losses until every head reaches the target accuracy."""
        extra = [] if callbacks is None else [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
        result = super().fit(X, y, seed=seed, callbacks=[_HeadLosses(self.model), *extra])
        self.trained_epochs = result.epochs
        return result

    def _member_outputs(self, xb: torch.Tensor, embeddings: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        z = self.model.embed(xb)
        return (z if embeddings else None), torch.softmax(self.model.head_logits(z), dim=-1)

    def __repr__(self) -> str:
        return (f"SplitHeadEnsemble({self._base_name()} x {self.n_members} heads, lr={self.lr}, "
                f"batch_size={self.batch_size}, max_epochs={self.max_epochs}, device={self.device})")


#: The cheap ensembles by their grid-spec name (``[training] ensemble = ...``).
ENSEMBLES: dict[str, type[_MemberEnsemble]] = {
    "snapshot": SnapshotEnsemble, "diversity": DiversityEnsemble, "split_head": SplitHeadEnsemble,
}
