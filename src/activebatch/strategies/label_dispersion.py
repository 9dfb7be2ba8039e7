"""Label dispersion: how often the model changed its mind about an unlabeled item during training.

Bengar, Raducanu & van de Weijer, "When Deep Learners Change Their Mind: Learning Dynamics for
Active Learning", CAIP 2021 (Javad Zolfaghari Bengar, Bogdan Raducanu, Joost van de Weijer).
The model's predicted class for every unlabeled item is recorded at T points during the
training of the selection model; an item's label dispersion is

    dispersion(x) = 1 - f_x / T,   f_x = #{t : y_hat_t(x) = the modal class of y_hat_1..T(x)},

0 when the model always assigned the same class and close to 1 - 1/K when the assigned class
kept changing. The items with the largest dispersion are queried. It is computed from the one
training run of the round (no second training), at the end of every epoch.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..kernels.scores import top_n
from ..learning.callbacks import Callback, FitState
from ..learning.evidence import Evidence
from ..learning.forgetting import ForgettingEvents
from .base import Selection, Strategy, register

__all__ = ["LabelDispersion", "EpochPredictions", "label_dispersion_scores"]


def label_dispersion_scores(predictions_TN: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Label dispersion 1 - f / T of each column of a (T, N) record of predicted classes.

    Parameters
    ----------
    predictions_TN : tensor or array of int, shape (T, N)
        ``predictions_TN[t, i]``: the class predicted for item i at the t-th record (T >= 1).

    Returns
    -------
    tensor of float64, shape (N,)
        1 - f_i / T, with f_i the number of records that predicted item i's modal class (its
        count, so which of several equally frequent classes is "the" mode does not matter).
    """
    P = torch.as_tensor(np.asarray(predictions_TN)) if not isinstance(predictions_TN, torch.Tensor) \
        else predictions_TN
    if P.ndim != 2 or P.shape[0] < 1:
        raise ValueError(f"predictions_TN must have shape (T, N) with T >= 1, got {tuple(P.shape)}")
    if P.dtype.is_floating_point or P.dtype == torch.bool:
        raise ValueError(f"predictions_TN must hold class indices (integers), got {P.dtype}")
    T = P.shape[0]
    if P.shape[1] == 0:
        return torch.zeros(0, dtype=torch.float64, device=P.device)
    P = P.to(torch.int64)
    mode = P.mode(dim=0).values                      # one of the most frequent classes per item
    f = (P == mode).sum(dim=0)
    return 1.0 - f.to(torch.float64) / T


class EpochPredictions(Callback):
    """Record the predicted class of given pool items at the end of every training epoch.

    At fit start the ids are fixed (by default the pool's unlabeled items at that moment, the
    candidates of the next selection); after each epoch the model, in eval mode
    (:meth:`~activebatch.learning.FitState.predict`), predicts them ``chunk`` rows at a time. At
    the end of the fit ``fit.artifacts[key]`` holds ``{"ids": (N,) int64, "predictions": (T, N)}``,
    the predictions as int16 (int32 beyond 32,767 classes) on the CPU: 2 bytes per item and epoch.

    Parameters
    ----------
    pool : Pool
        The pool whose items are predicted.
    key : str
        The artifact's key (the strategy's name).
    chunk : int, optional
        Rows per call of ``fit.predict`` (default: the learner's ``eval_batch_size``).
    """

    def __init__(self, pool: Any, key: str, chunk: int | None = None) -> None:
        self.pool, self.key, self.chunk = pool, key, chunk
        self._ids: np.ndarray | None = None
        self._rows: list[np.ndarray] = []

    def on_fit_start(self, fit: FitState) -> None:
        self._ids = np.asarray(self.pool.unlabeled_indices, dtype=np.int64).copy()
        self._rows = []

    def on_epoch_end(self, fit: FitState) -> None:
        assert self._ids is not None
        ids = self._ids
        dtype = np.int16 if fit.learner.n_classes <= np.iinfo(np.int16).max else np.int32
        chunk = int(self.chunk or fit.learner.eval_batch_size)
        row = np.empty(ids.size, dtype=dtype)
        for start in range(0, ids.size, chunk):
            part = ids[start:start + chunk]
            row[start:start + part.size] = fit.predict(self.pool.features(part)).argmax(dim=1).cpu().numpy()
        self._rows.append(row)

    def on_fit_end(self, fit: FitState) -> None:
        assert self._ids is not None
        preds = np.stack(self._rows) if self._rows else np.empty((0, self._ids.size), dtype=np.int16)
        fit.artifacts[self.key] = {"ids": self._ids, "predictions": preds}
        self._ids, self._rows = None, []


@register
class LabelDispersion(Strategy):
    """The candidates whose predicted class changed most during training (label dispersion,
    :func:`label_dispersion_scores`) first (Bengar, Raducanu & van de Weijer, CAIP 2021).

    The strategy's training callbacks record the selection model's predicted class for every
    unlabeled item at the end of each epoch (:class:`EpochPredictions`; T = the fit's epochs,
    the paper's recording points) and count forgetting events on the labeled set
    (:class:`~activebatch.learning.forgetting.ForgettingEvents`, a diagnostic that
    :func:`activebatch.run` reports per round). At selection time each candidate's record gives
    its dispersion; the n largest are taken, ties to the lowest position (the paper does not say
    how ties are broken; with T epochs the dispersion takes at most T values, so ties are common
    when training stops after few epochs, as it does under the train-to-99%-accuracy protocol).

    The record costs one forward pass over the unlabeled items per epoch and 2 bytes per item
    and epoch. The selection model must have been trained with the strategy's callbacks
    (:func:`activebatch.run`, grid specs and workspaces attach them; with your own
    :class:`~activebatch.Learner`, pass ``callbacks=strategy.training_callbacks(pool)`` to ``fit``).
    """

    name = "label_dispersion"
    needs = frozenset({"learner"})
    score_name = "label dispersion 1 - f/T over the training epochs (larger = the predicted class changed more)"

    def training_callbacks(self, pool: Any = None) -> list[Any]:
        if pool is None:
            raise ValueError(f"strategy {self.name!r} records predictions on the pool's unlabeled items during "
                             "training: pass the pool to training_callbacks(pool)")
        return [EpochPredictions(pool, self.name), ForgettingEvents()]

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        record = self.fit_artifact(evidence.learner, "the predictions recorded at each epoch")
        if evidence.candidate_ids is None:
            raise ValueError(f"strategy {self.name!r} needs the candidates' pool indices "
                             "(Evidence.candidate_ids, as Learner.evidence(pool) sets them)")
        cand = np.asarray(evidence.candidate_ids, dtype=np.int64)
        ids, preds = record["ids"], record["predictions"]
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        pos = np.minimum(np.searchsorted(sorted_ids, cand), max(sorted_ids.size - 1, 0))
        found = (sorted_ids[pos] == cand) if sorted_ids.size else np.zeros(cand.size, dtype=bool)
        if not found.all():
            missing = cand[~found]
            raise ValueError(f"strategy {self.name!r} has no recorded predictions for {missing.size} candidate(s) "
                             f"(e.g. pool items {missing[:5].tolist()}): predictions are recorded for the items "
                             "that were unlabeled when the model was trained; retrain it on the current labels")
        scores = label_dispersion_scores(preds[:, order[pos]]).numpy()
        idx = top_n(scores, n, largest=True)
        return Selection(idx, scores=scores[idx], candidate_scores=scores)
