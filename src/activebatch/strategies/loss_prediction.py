"""Learning loss: a small module trained with the model predicts each item's loss; query the largest.

Yoo & Kweon, "Learning Loss for Active Learning", CVPR 2019 (Donggeun Yoo, In So Kweon). A loss
prediction module is attached to the target model: each tapped intermediate feature map goes
through global average pooling, a fully connected layer (128 units) and a ReLU; the levels'
outputs are concatenated and a linear layer gives one number, the predicted loss l_hat. It is
trained jointly with the target model on

    L = L_target + lambda * L_loss,   lambda = 1,

where L_loss compares the predicted losses of pairs of items of a mini-batch with a margin
ranking loss (margin xi = 1):

    L_loss(l_hat_p, l_p) = max(0, -A(l_i, l_j) (l_hat_i - l_hat_j) + xi),
    A(l_i, l_j) = +1 if l_i > l_j else -1,

averaged over the B/2 pairs of a mini-batch of size B, the pairs being (i, B-1-i) (the first half
against the flipped second half), and l the per-item cross-entropy of the target model, a
fixed target (no gradient). After a set number of epochs (120 of 200 in the paper) the features
are detached before entering the module, so its gradient no longer reaches the target model.
At selection time the unlabeled items with the largest predicted loss are queried.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..kernels.scores import top_n
from ..learning.callbacks import BatchState, Callback, FitState
from ..learning.evidence import Evidence
from ..learning.models import CNN, MLP, ResNet18
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["LossPrediction", "LossPredictionModule", "LossPredictionTraining", "default_taps",
           "global_average_pool", "pairwise_ranking_loss"]

#: Mixed into the fit's seed to initialise the loss prediction module.
_MODULE_SEED_TAG = 0x1055


def pairwise_ranking_loss(pred_B: torch.Tensor, target_B: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The loss-prediction loss of Yoo & Kweon (CVPR 2019) on one mini-batch.

    Items are paired as (i, B-1-i) for i < B // 2 (the first half against the flipped second
    half); with an odd B the middle item is in no pair. For each pair
    ``max(0, margin - A * (pred_i - pred_j))`` with ``A = +1`` if ``target_i > target_j`` and
    ``-1`` otherwise (ties included, as in the paper's definition); the mean over the pairs is
    returned. ``target_B`` is treated as a constant (detached).

    Parameters
    ----------
    pred_B : tensor of shape (B,)
        Predicted losses, B >= 2.
    target_B : tensor of shape (B,)
        The target model's per-item losses.
    margin : float, default 1.0
        The margin xi.

    Returns
    -------
    tensor (scalar)
    """
    if pred_B.ndim != 1 or target_B.shape != pred_B.shape:
        raise ValueError(f"pred_B and target_B must both have shape (B,), got {tuple(pred_B.shape)} and "
                         f"{tuple(target_B.shape)}")
    B = pred_B.shape[0]
    if B < 2:
        raise ValueError(f"the ranking loss needs at least one pair of items, got a batch of {B}")
    half = B // 2
    target_B = target_B.detach()
    d_pred = pred_B[:half] - pred_B.flip(0)[:half]
    sign = torch.where(target_B[:half] > target_B.flip(0)[:half], 1.0, -1.0).to(pred_B.dtype)
    return torch.clamp(margin - sign * d_pred, min=0).mean()


def global_average_pool(feature: torch.Tensor) -> torch.Tensor:
    """A tapped feature as one vector per item: the mean over every dimension after the channel
    dimension for feature maps (B, C, ...), a (B, d) hidden layer as it is.

    Parameters
    ----------
    feature : tensor of shape (B, C, ...) or (B, d)

    Returns
    -------
    tensor of shape (B, C) or (B, d)
    """
    if feature.ndim < 2:
        raise ValueError(f"a tapped layer must output (B, d) or (B, C, ...) tensors, got shape {tuple(feature.shape)}")
    return feature if feature.ndim == 2 else feature.flatten(2).mean(dim=2)


def default_taps(model: nn.Module) -> tuple[str, ...]:
    """The sub-modules a loss prediction module reads by default.

    :class:`~activebatch.learning.models.ResNet18`: its four residual stages ``layer1``..``layer4``
    (the paper's choice); :class:`~activebatch.learning.models.CNN`: its two convolutions and its
    fully connected layer (``conv1``, ``conv2``, ``fc``; their ReLUs and pooling are functional,
    so the taps see the outputs before them); :class:`~activebatch.learning.models.MLP`: its hidden
    layer (``hidden``, before its ReLU). Other models need ``taps`` named explicitly.
    """
    if isinstance(model, ResNet18):
        return ("layer1", "layer2", "layer3", "layer4")
    if isinstance(model, CNN):
        return ("conv1", "conv2", "fc")
    if isinstance(model, MLP):
        return ("hidden",)
    children = [name for name, _ in model.named_modules() if name]
    raise ValueError(f"loss_prediction has no default layers to tap in a {type(model).__name__}: name them with "
                     f"taps=[...] (its sub-modules: {', '.join(children[:20])}{', ...' if len(children) > 20 else ''})")


class LossPredictionModule(nn.Module):
    """The loss prediction module of Yoo & Kweon (CVPR 2019, Figure 2).

    Each tapped level's pooled feature (B, c_l) goes through ``Linear(c_l, width)`` and a ReLU;
    the L outputs are concatenated and ``Linear(L * width, 1)`` gives the predicted loss.

    Parameters
    ----------
    in_widths : sequence of int
        c_l, the width of each level's pooled feature.
    width : int, default 128
        Units of each level's fully connected layer (the paper's 128).
    """

    def __init__(self, in_widths: Sequence[int], width: int = 128) -> None:
        super().__init__()
        if not in_widths:
            raise ValueError("a loss prediction module needs at least one tapped level")
        self.levels = nn.ModuleList(nn.Linear(int(c), width) for c in in_widths)
        self.out = nn.Linear(len(self.levels) * width, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Predicted losses (B,) from the levels' pooled features, each (B, c_l)."""
        if len(features) != len(self.levels):
            raise ValueError(f"expected {len(self.levels)} tapped features, got {len(features)}")
        h = torch.cat([torch.relu(fc(f)) for fc, f in zip(self.levels, features)], dim=1)
        return self.out(h).squeeze(1)


class _Taps:
    """Forward hooks on named sub-modules that keep each one's pooled output of the last forward.

    With ``training_only`` outputs are kept only in training mode, so predictions taken during a
    fit (eval mode) neither overwrite the training pass's features nor keep large tensors alive.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], *, training_only: bool) -> None:
        modules = dict(model.named_modules())
        unknown = [n for n in names if n not in modules or not n]
        if unknown:
            children = [name for name in modules if name]
            raise ValueError(f"loss_prediction cannot tap {unknown} in a {type(model).__name__}: no such sub-module "
                             f"(its sub-modules: {', '.join(children[:20])}{', ...' if len(children) > 20 else ''})")
        self.names, self.training_only = tuple(names), training_only
        self.out: dict[str, torch.Tensor] = {}
        self.handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self.training_only and not module.training:
                return
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"loss_prediction taps {name!r}, which returned a {type(output).__name__}; "
                                "tap modules that return one tensor")
            self.out[name] = global_average_pool(output)   # pooled at once: the full map is not kept
        return hook

    def take(self) -> list[torch.Tensor]:
        missing = [n for n in self.names if n not in self.out]
        if missing:
            raise RuntimeError(f"loss_prediction's tapped layers {missing} did not run in the model's forward pass")
        feats = [self.out[n] for n in self.names]
        self.out = {}
        return feats

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles, self.out = [], {}


@torch.no_grad()
def _tap_widths(model: nn.Module, names: Sequence[str], x: torch.Tensor) -> list[int]:
    """Widths of the tapped layers' pooled outputs, from one eval-mode pass on a few rows
    (no dropout mask is drawn, no batch-norm statistic is updated)."""
    was_training = model.training
    taps = _Taps(model, names, training_only=False)
    try:
        model.eval()
        model(x)
        return [int(f.shape[1]) for f in taps.take()]
    finally:
        taps.remove()
        model.train(was_training)


class LossPredictionTraining(Callback):
    """Train a :class:`LossPredictionModule` jointly with the model (Yoo & Kweon, CVPR 2019).

    In ``on_fit_start`` forward hooks are registered on the tapped layers (removed in
    ``on_fit_end``) and a fresh module is built on the model's device, initialised from the fit's
    seed under ``torch.random.fork_rng`` (the backbone's random stream is untouched) and trained
    by the fit's optimiser (``fit.add_parameters``). Each mini-batch adds
    ``weight * pairwise_ranking_loss(l_hat, l)`` under the loss term ``"loss_prediction"``, with l
    the per-item cross-entropy of the forward pass; a mini-batch of one item (no pair) adds
    nothing. From epoch ``stop_epoch + 1`` on, the tapped features are detached. The module, the
    model it reads and the tap names are stored in ``fit.artifacts[key]``.

    Parameters
    ----------
    key : str
        The artifact's key (the strategy's name).
    taps : tuple of str, optional
        Sub-modules to tap (default :func:`default_taps`).
    width : int
    weight : float
        lambda.
    margin : float
        xi.
    stop_gradient_share : float
        Share of the learner's ``max_epochs`` after which the module's gradient stops reaching the
        model: the first ``floor(share * max_epochs)`` epochs train jointly.
    """

    def __init__(self, key: str, *, taps: tuple[str, ...] | None, width: int, weight: float, margin: float,
                 stop_gradient_share: float) -> None:
        self.key, self.taps, self.width = key, taps, width
        self.weight, self.margin, self.stop_gradient_share = weight, margin, stop_gradient_share
        self._hooks: _Taps | None = None
        self._module: LossPredictionModule | None = None
        self.stop_epoch = 0

    def on_fit_start(self, fit: FitState) -> None:
        if self._hooks is not None:      # a fit that ended in an exception left its hooks
            self._hooks.remove()
            self._hooks = None
        model = fit.model
        names = self.taps if self.taps is not None else default_taps(model)
        widths = _tap_widths(model, names, fit.X[:2])
        seed = int(np.random.SeedSequence([int(fit.seed), _MODULE_SEED_TAG]).generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = LossPredictionModule(widths, self.width)     # initialised on the CPU: same weights on any device
        self._module = module.to(fit.X.device).train()
        fit.add_parameters(self._module.parameters())
        self._hooks = _Taps(model, names, training_only=True)
        self.stop_epoch = math.floor(self.stop_gradient_share * fit.learner.max_epochs)
        fit.artifacts[self.key] = {"module": self._module, "model": model, "taps": tuple(names),
                                   "stop_epoch": self.stop_epoch}

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        assert self._hooks is not None and self._module is not None
        feats = self._hooks.take()
        if batch.y.shape[0] < 2:
            return
        if fit.epoch > self.stop_epoch:
            feats = [f.detach() for f in feats]
        target = nn.functional.cross_entropy(batch.logits, batch.y, reduction="none").detach()
        pred = self._module(feats)
        batch.add_loss("loss_prediction", self.weight * pairwise_ranking_loss(pred, target, self.margin))

    def on_fit_end(self, fit: FitState) -> None:
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None
        if self._module is not None:
            self._module.eval()
            self._module = None


@torch.no_grad()
def predicted_losses(module: nn.Module, model: nn.Module, taps: Sequence[str], x: torch.Tensor) -> torch.Tensor:
    """The loss prediction module's outputs (B,) for inputs x, the model and module in eval mode."""
    hooks = _Taps(model, taps, training_only=False)
    was_training = model.training
    try:
        model.eval()
        module.eval()
        model(x)
        return module(hooks.take())
    finally:
        hooks.remove()
        model.train(was_training)


@register
class LossPrediction(Strategy):
    """The candidates with the largest predicted loss first (Yoo & Kweon, "Learning Loss for
    Active Learning", CVPR 2019).

    The strategy's training callback (:class:`LossPredictionTraining`) trains a
    :class:`LossPredictionModule` with the selection model in every fit; at selection time the
    candidates are forwarded ``eval_batch_size`` at a time through the model in eval mode, the
    module predicts their losses, and the n largest are taken, ties to the lowest position. The
    selection model must have been trained with the strategy's callbacks (:func:`activebatch.run`,
    grid specs and workspaces attach them; with your own :class:`~activebatch.Learner`, pass
    ``callbacks=strategy.training_callbacks(pool)`` to ``fit``).

    Choices where the paper is silent or its setting differs from the Learner's: the module is
    trained by the fit's own optimiser, learning rate and weight decay (the paper gives it the
    target model's SGD settings); the paper's mini-batches are even, and here the middle item
    of an odd mini-batch is left out of the pairs (a mini-batch of one adds no term); the
    paper's "after 120 epochs" is read as: epochs 1..120 train jointly.

    Parameters
    ----------
    taps : sequence of str, optional
        Names (as in ``model.named_modules()``) of the layers the module reads; by default
        :func:`default_taps` (ResNet-18's four stages, as in the paper; the CNN's convolutions and
        fully connected layer; the MLP's hidden layer).
    width : int, default 128
        Units of each level's fully connected layer (the paper's 128).
    weight : float, default 1.0
        lambda, the weight of the loss-prediction loss (the paper's 1).
    margin : float, default 1.0
        xi, the ranking loss's margin (the paper's 1).
    stop_gradient_share : float, default 0.6
        The paper trains 200 epochs and stops the module's gradient into the model after 120;
        here the first ``floor(share * max_epochs)`` epochs (``max_epochs`` of the Learner) train
        jointly and later ones detach the features. Under the train-until-99%-accuracy protocol a
        fit usually stops long before, so the gradient is then never stopped; 0 detaches from the
        start (the module never shapes the model), 1 never detaches.
    subset : int, optional
        Score only this many candidates, drawn uniformly without replacement (at least n of
        them), as the paper does with 10,000 per cycle to save time; candidates outside the
        subset get NaN scores. The default None scores every candidate: one forward pass over the
        pool is cheap next to training, and the selection then does not depend on the seed.
    """

    name = "loss_prediction"
    needs = frozenset({"learner", "pool"})
    score_name = "predicted loss of the loss prediction module (larger = expected to be harder)"

    def __init__(self, taps: Sequence[str] | str | None = None, width: int = 128, weight: float = 1.0,
                 margin: float = 1.0, stop_gradient_share: float = 0.6, subset: int | None = None) -> None:
        if isinstance(taps, str):
            taps = (taps,)
        if taps is not None:
            taps = tuple(taps)
            if not taps or not all(isinstance(t, str) and t for t in taps):
                raise ValueError(f"taps must be a non-empty sequence of sub-module names, got {taps!r}")
        self.taps = taps
        self.width = check_scalar(width, "width", int, min_val=1)
        self.weight = check_scalar(weight, "weight", float, min_val=0, include_min=False)
        self.margin = check_scalar(margin, "margin", float, min_val=0)
        self.stop_gradient_share = check_scalar(stop_gradient_share, "stop_gradient_share", float, min_val=0,
                                                max_val=1)
        self.subset = check_scalar(subset, "subset", int, min_val=1, allow_none=True)
        # Only a random subset makes the picks depend on the seed.
        self.randomized = self.subset is not None

    def training_callbacks(self, pool: Any = None) -> list[Any]:
        return [LossPredictionTraining(self.name, taps=self.taps, width=self.width, weight=self.weight,
                                       margin=self.margin, stop_gradient_share=self.stop_gradient_share)]

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        learner, pool, ids = evidence.learner, evidence.pool, evidence.candidate_ids
        trained = self.fit_artifact(learner, "the loss prediction module")
        if ids is None:
            raise ValueError(f"strategy {self.name!r} needs the candidates' pool indices "
                             "(Evidence.candidate_ids, as Learner.evidence(pool) sets them)")
        ids = np.asarray(ids)
        N = ids.size
        rows = np.arange(N)
        if self.subset is not None and max(self.subset, n) < N:
            rows = np.sort(rng.choice(N, size=max(self.subset, n), replace=False))
        module, model, taps = trained["module"], trained["model"], trained["taps"]
        chunk = int(learner.eval_batch_size)
        parts = [predicted_losses(module, model, taps, learner._to_tensor(pool.features(ids[rows[s:s + chunk]])))
                 for s in range(0, rows.size, chunk)]
        scored = torch.cat(parts).to(torch.float64).cpu().numpy()
        scores = np.full(N, np.nan)
        scores[rows] = scored
        pick = top_n(scored, n, largest=True)
        idx = rows[pick]
        return Selection(idx, scores=scores[idx], candidate_scores=scores)
