"""Committees: several independently initialised copies of one model, trained on the same labels
(or, with ``bootstrap=True``, each on its own bootstrap resample of them)."""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils.validation import check_labels, check_scalar
from .learner import FitResult, Learner, _Rows

__all__ = ["Committee", "Ensemble", "MemberEnsemble"]


class Ensemble(nn.Module):
    """The members of a committee as one module.

    ``forward(x)`` returns log(mean_m softmax(member_m(x))): logits whose softmax is the
    committee's consensus distribution, so attacks and other model-level code see the committee
    as one classifier. ``embed`` and ``head`` are those of the first member.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.head = members[0].head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[0].embed(x)

    def member_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax outputs of every member, shape (M, B, K)."""
        return torch.stack([torch.softmax(m(x), dim=1) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.member_probs(x).mean(dim=0).clamp_min(torch.finfo(torch.float32).tiny))


def _modules_outputs(modules: Sequence[nn.Module], index: int, xb: torch.Tensor, embeddings: bool
                     ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(embeddings of ``modules[index]`` or None, every module's softmax outputs (M, B, K)) of ``xb``."""
    probs, z_keep = [], None
    for i, m in enumerate(modules):
        z = m.embed(xb)
        if embeddings and i == index:
            z_keep = z
        probs.append(torch.softmax(m.head(z), dim=1))
    return z_keep, torch.stack(probs)



class MemberEnsemble(Learner):
    """A Learner whose prediction is the mean of M members' softmax outputs, and whose
    ``mc_probs`` evidence is those members' outputs, shape (M, N, K): the committee and the
    cheap ensembles (:mod:`activebatch.learning.ensembles`). Subclasses define
    :meth:`_member_outputs` for one chunk of inputs."""

    n_members: int

    def _member_outputs(self, xb: torch.Tensor, embeddings: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(embeddings (B, d) or None, member probabilities (M, B, K)) of one chunk of inputs."""
        raise NotImplementedError(f"{type(self).__name__} must define _member_outputs(xb, embeddings)")

    def _embedding_dim(self) -> int:
        return int(self.model.head.in_features)

    @torch.no_grad()
    def _forward(self, X: Any, *, embeddings: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(mean probs (n, K), embeddings (n, d) or None, member probs (M, n, K)), in row chunks."""
        self.model.eval()
        n = int(X.shape[0])
        P_parts, Z_parts = [], []
        for start in range(0, n, self.eval_batch_size):
            z, mp = self._member_outputs(self._to_tensor(X[start:start + self.eval_batch_size]), embeddings)
            P_parts.append(mp)
            if embeddings:
                Z_parts.append(z)
        MP = (torch.cat(P_parts, dim=1) if P_parts
              else torch.empty(self.n_members, 0, self.n_classes, device=self.device))
        Z = ((torch.cat(Z_parts) if Z_parts else torch.empty(0, self._embedding_dim(), device=self.device))
             if embeddings else None)
        return MP.mean(dim=0), Z, MP

    def outputs(self, X: Any, *, probs: bool = True, embeddings: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Mean softmax outputs of the members (n, K) and the embeddings (n, d)."""
        P, Z, _ = self._forward(X, embeddings=embeddings)
        return (P if probs else None), Z

    def member_probs(self, X: Any) -> torch.Tensor:
        """Every member's softmax outputs, shape (M, n, K), on the learner's device."""
        return self._forward(X, embeddings=False)[2]

    def mc_probs(self, X: Any, *, samples: int | None = None, seed: int = 0) -> torch.Tensor:
        """The ensemble's samples are its members: :meth:`member_probs`, shape (M, n, K).

        ``samples`` may only be M; ``seed`` is ignored (the members are deterministic).
        """
        if samples is not None and int(samples) != self.n_members:
            raise ValueError(f"this {type(self).__name__} has {self.n_members} members; samples={samples} "
                             "cannot be drawn")
        return self.member_probs(X)

    # One forward pass gives probs, embeddings and the members' probabilities (mc_probs).
    _shared_fields = ("probs", "embeddings", "mc_probs")

    def _candidate_forward(self, X: Any) -> tuple[torch.Tensor, ...]:
        return self._forward(X, embeddings=True)

    def _mc_provider(self, pool: Any, rows: np.ndarray, seed: int | None):
        """The members' probabilities on ``rows`` of the pool (``target_mc_probs``; the
        candidates' come from the shared forward pass)."""
        return lambda: self.member_probs(_Rows(pool, rows))

    def evidence_fields(self) -> frozenset[str]:
        """Every field, ``mc_probs`` included (the members' outputs)."""
        return frozenset({"probs", "embeddings", "labeled_embeddings", "labeled_probs", "labels", "mc_probs",
                          "target_mc_probs", "learner", "pool"})


class Committee(MemberEnsemble):
    """A committee of ``n_members`` independently initialised copies of ``model``.

    The naive ensemble of Beluch, McCarthy, Lerch & Hentschel ("The power of ensembles for active
    learning in image classification", CVPR 2018): every member is re-initialised from its own
    seed and trained from scratch, with its own mini-batch order, on the same labeled data (each
    member as :class:`~activebatch.Learner` trains). The committee predicts with the mean of the
    members' softmax outputs.

    With ``bootstrap=True`` each member trains instead on a bootstrap resample of the labeled
    data: as many rows as there are labels, drawn uniformly with replacement, from the member's
    seed (:meth:`bootstrap_rows`), so every member sees a different resample and the same committee
    seed gives the same resamples. This is how Yang, Zhang, Chen, Zhang & Chen ("Suggestive
    Annotation", MICCAI 2017) train the committee whose disagreement measures uncertainty (the
    ``suggestive_annotation`` strategy).

    Its :meth:`evidence` adds ``mc_probs`` of shape (M, N, K), the members' class probabilities
    on the candidates, so the query-by-committee strategies (``vote_entropy``,
    ``consensus_entropy``, ``kl_divergence``) and every strategy reading ``mc_probs`` (BALD and
    friends) work on the committee. ``probs`` is the consensus (mean) distribution; ``embeddings``
    and ``labeled_embeddings`` come from the first member.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture (``embed(x)`` and a final ``nn.Linear`` named ``head``); it becomes the
        first member and the others are deep copies of it.
    n_members : int, default 5
        M >= 2 (Beluch et al. use 5 to 10).
    bootstrap : bool, default False
        Train each member on its own bootstrap resample of the labels (same size, with
        replacement) instead of on all of them.
    **options
        :class:`~activebatch.Learner` options (lr, batch_size, max_epochs, target_accuracy,
        weight_decay, device, eval_batch_size, extractor), shared by all members. A frozen
        extractor runs once per input for the whole committee.
    """

    def __init__(self, model: nn.Module, n_members: int = 5, bootstrap: bool = False, **options: Any) -> None:
        n_members = check_scalar(n_members, "n_members", int, min_val=2)
        self.bootstrap = check_scalar(bootstrap, "bootstrap", bool)
        super().__init__(model, **options)
        member_opts = {k: v for k, v in options.items() if k != "extractor"}
        member_opts["device"] = self.device
        self.n_members = int(n_members)
        self.members = [Learner(model if i == 0 else copy.deepcopy(model), **member_opts)
                        for i in range(self.n_members)]
        self.model = Ensemble([m.model for m in self.members])

    @property
    def model_name(self) -> str:
        """Name recorded in results, e.g. ``"MLPx5"`` (``"MLPx5-bootstrap"`` for a bootstrap committee)."""
        return f"{type(self.members[0].model).__name__}x{self.n_members}" + ("-bootstrap" if self.bootstrap else "")

    @staticmethod
    def member_seed(seed: int, member: int) -> int:
        """The seed of member ``member`` for the committee seed ``seed``."""
        return int(np.random.SeedSequence([int(seed), int(member)]).generate_state(1)[0])

    def bootstrap_rows(self, seed: int, member: int, n: int) -> np.ndarray:
        """The rows of ``n`` labels that member ``member`` trains on with ``bootstrap=True``: ``n``
        positions drawn uniformly with replacement from the member's seed (:meth:`member_seed`)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.member_seed(seed, member), 0x5EED]))
        return rng.integers(0, int(n), size=int(n), dtype=np.int64)

    def reset(self, seed: int) -> None:
        """Re-initialise every member from its own seed."""
        for i, m in enumerate(self.members):
            m.reset(self.member_seed(seed, i))

    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Any = None) -> FitResult:
        """Re-initialise every member and train it from scratch on (X, y), or with ``bootstrap``
        on its own resample of (X, y) (:meth:`bootstrap_rows`).

        ``callbacks`` (and the committee's own) are called in every member's fit.

        Returns the slowest member's epochs, the mean training accuracy, the total time, and
        whether every member reached the target accuracy.
        """
        start = time.perf_counter()
        X_t = self._to_tensor(X)
        y_np = check_labels(y, "y", rows=X_t.shape[0])
        fits = []
        for i, m in enumerate(self.members):
            Xi, yi = X_t, y_np
            if self.bootstrap:
                rows = self.bootstrap_rows(seed, i, y_np.size)
                Xi, yi = X_t[torch.as_tensor(rows, device=X_t.device)], y_np[rows]
            fits.append(m.fit(Xi, yi, seed=self.member_seed(seed, i), callbacks=callbacks))
        self.fit_artifacts = self.members[0].fit_artifacts   # the first member's, as its embeddings
        self.model.eval()
        self.last_fit = FitResult(max(f.epochs for f in fits), float(np.mean([f.train_accuracy for f in fits])),
                                  time.perf_counter() - start, all(f.reached_target for f in fits))
        return self.last_fit

    def _member_outputs(self, xb: torch.Tensor, embeddings: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        # the first member's embeddings
        return _modules_outputs([m.model for m in self.members], 0, xb, embeddings)

    def _embedding_dim(self) -> int:
        return int(self.members[0].model.head.in_features)

    def __repr__(self) -> str:
        return (f"Committee({type(self.members[0].model).__name__} x {self.n_members}, "
                f"{'bootstrap, ' if self.bootstrap else ''}lr={self.lr}, "
                f"batch_size={self.batch_size}, max_epochs={self.max_epochs}, device={self.device})")
