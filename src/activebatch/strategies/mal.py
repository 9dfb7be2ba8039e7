"""MAL: minimax entropy on unlabeled data, a labeled/unlabeled discriminator, and a query that
combines the two.

Ebrahimi, Gan, Chen, Biamby, Salahi, Laielli, Zhu & Darrell, "Minimax Active Learning",
arXiv:2012.10467, 2021. The task model's encoder F produces l2-normalised features; a
similarity-based classifier C (temperature-scaled cosine logits) is trained with cross-entropy
on the labeled items and plays a minimax game on the unlabeled ones, C maximising and F
minimising the entropy of C's predictions (a gradient-reversal layer between them, as in minimax
entropy, Saito et al., ICCV 2019); a discriminator D is trained on the same features to tell
labeled from unlabeled items. The query takes the highest-entropy candidates among those the
discriminator predicts as unlabeled.

MAL trains the task model itself, so it is built on the learner's training callbacks
(:meth:`MAL.training_callbacks`): every fit of the selection model trains C and D alongside it,
and leaves them in ``learner.fit_artifacts["mal"]`` for the selection.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..kernels.scores import top_n
from ..learning.adversarial_nets import CosineClassifier, LatentDiscriminator, entropy, minimax_entropy_loss
from ..learning.callbacks import BatchState, Callback, FitState
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["MAL", "MALCallback", "mal_priority"]


def mal_priority(p_labeled: Any, entropy_nats: Any, n_classes: int) -> np.ndarray:
    """MAL's query order as one score per candidate (larger = queried first).

    The paper queries "the highest entropy samples from the classifier that the discriminator
    predicts as unlabeled". A candidate the discriminator predicts as unlabeled
    (P(labeled) < 1/2) scores ``1 + H / log K`` in [1, 2], so these come first, by decreasing
    entropy; should there be fewer of them than the batch, the others follow by increasing
    P(labeled) (the discriminator's ranking, VAAL's rule), scoring ``1 - P(labeled)`` in (0, 1/2].

    Parameters
    ----------
    p_labeled : array of shape (N,)
        The discriminator's probability that each candidate is labeled.
    entropy_nats : array of shape (N,)
        Entropy of the classifier's prediction, in [0, log K].
    n_classes : int
        K >= 2.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    p = np.asarray(p_labeled, dtype=np.float64)
    h = np.asarray(entropy_nats, dtype=np.float64)
    return np.where(p < 0.5, 1.0 + h / math.log(n_classes), 1.0 - p)


class MALCallback(Callback):
    """Trains MAL's classifier and discriminator during a fit of the selection model.

    ``on_fit_start`` builds the cosine classifier C (on the model's embedding width and classes)
    and the discriminator D on the model's device, seeded from the fit's seed in a forked random
    stream; C is trained by the fit's optimiser, D by its own Adam. Each mini-batch
    (``on_batch``) draws a mini-batch of the pool's unlabeled items (successive random
    permutations of them, seeded by the fit's seed) and adds two loss terms: ``mal_ce``, the
    cross-entropy of C on the labeled mini-batch, and ``mal_entropy``, the minimax entropy term on
    the unlabeled one (:func:`~activebatch.learning.adversarial_nets.minimax_entropy_loss`); then
    it takes one discriminator step on the detached normalised features of both. C and D are left
    in ``fit.artifacts[name]``.
    """

    def __init__(self, strategy: MAL, pool: Any) -> None:
        self.strategy, self.pool = strategy, pool
        self.unlabeled = np.empty(0, dtype=np.int64)

    def on_fit_start(self, fit: FitState) -> None:
        s = self.strategy
        model = fit.model
        device = fit.X.device
        d = int(model.head.in_features)
        k = int(model.head.out_features)
        # a seed of its own, so the extra modules leave the backbone's initialisation untouched
        seed = int(np.random.SeedSequence([int(fit.seed), 0x4D414C]).generate_state(1, dtype=np.uint64)[0] >> 1)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.classifier = CosineClassifier(d, k, s.temperature).to(device)
            self.discriminator = LatentDiscriminator(d, s.discriminator_width).to(device)
        fit.add_parameters(self.classifier.parameters())
        self.opt_disc = torch.optim.Adam(self.discriminator.parameters(), lr=s.lr_discriminator)
        self.unlabeled = np.asarray(self.pool.unlabeled_indices, dtype=np.int64)
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = np.empty(0, dtype=np.int64), 0
        self.size = s.unlabeled_batch_size or int(getattr(fit.learner, "batch_size", 64))
        fit.artifacts[s.name] = {"classifier": self.classifier, "discriminator": self.discriminator}

    def _next_unlabeled(self) -> np.ndarray:
        size = min(self.size, self.unlabeled.size)
        if self.pos + size > self.perm.size:
            self.perm = self.unlabeled[torch.randperm(self.unlabeled.size, generator=self.gen).numpy()]
            self.pos = 0
        out = self.perm[self.pos:self.pos + size]
        self.pos += size
        return out

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        s = self.strategy
        self.classifier.train()
        z_l = batch.embeddings
        batch.add_loss("mal_ce", F.cross_entropy(self.classifier(z_l), batch.y))
        if self.unlabeled.size == 0:     # the pool is exhausted: nothing to play the game on
            return
        x_u = fit.learner._to_tensor(self.pool.features(np.sort(self._next_unlabeled())))
        z_u = fit.model.embed(x_u)
        batch.add_loss("mal_entropy", minimax_entropy_loss(z_u, self.classifier, s.entropy_weight))
        # the discriminator learns on the features as they are; it does not train the encoder
        self.discriminator.train()
        logit_l = self.discriminator(F.normalize(z_l.detach(), dim=1))
        logit_u = self.discriminator(F.normalize(z_u.detach(), dim=1))
        loss_d = (F.binary_cross_entropy_with_logits(logit_l, torch.ones_like(logit_l))
                  + F.binary_cross_entropy_with_logits(logit_u, torch.zeros_like(logit_u)))
        self.opt_disc.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_disc.step()

    def on_fit_end(self, fit: FitState) -> None:
        self.classifier.eval()
        self.discriminator.eval()


@register
class MAL(Strategy):
    """Minimax active learning (Ebrahimi, Gan, Chen, Biamby, Salahi, Laielli, Zhu & Darrell,
    "Minimax Active Learning", arXiv:2012.10467v2, 2021).

    Training (through :meth:`training_callbacks`, see :class:`MALCallback`), on every fit of the
    selection model from scratch:

    - the encoder F is the model's ``embed``; its features z are l2-normalised and fed to a
      similarity classifier C, ``softmax(W^T (z / ||z||) / T)`` (no bias);
    - labeled mini-batch: cross-entropy of C (``mal_ce``);
    - unlabeled mini-batch (drawn from the pool's unlabeled items, as many as the learner's
      batch size unless ``unlabeled_batch_size``): ``-lambda * mean H(C(z_u))`` through a
      gradient reversal before C (``mal_entropy``), so C ascends and F descends the entropy — the
      paper's min_F max_C of the entropy;
    - a discriminator D (VAAL's five-layer MLP, hidden width 512, Adam 5e-4) learns on the
      normalised features, labeled = 1, unlabeled = 0, one step per mini-batch. It is not played
      against the encoder: the paper has the minimax entropy game close the labeled/unlabeled gap
      "while a discriminator is simultaneously trained to distinguish the labeled/unlabeled data".

    How C relates to the model's own ``head``: the paper's task network is F followed by C.
    Here the learner keeps training its model as always (``head`` on ``embed``, cross-entropy,
    the usual optimiser and stopping rule, and ``head`` makes the predictions the loop
    evaluates); C is a second head on the same, shared encoder, trained by the same optimiser.
    The encoder therefore learns from ``head``'s cross-entropy, C's cross-entropy and the entropy
    game together, and the selection reads C and D, never ``head``.

    Selection (:func:`mal_priority`): with the model in eval mode, each candidate's normalised
    feature gives C's entropy H (uncertainty) and D's probability of "labeled" (diversity); the
    candidates D predicts as unlabeled (P(labeled) < 1/2) are queried by decreasing entropy, and
    if there are fewer of them than the batch, the rest follow by increasing P(labeled). The
    selection itself is deterministic (``rng`` is not used); the training is seeded by the fit.

    Choices made here: T = 0.05 and lambda = 0.1 are the values of minimax entropy (Saito et
    al., 2019), whose classifier and game MAL adopts; "predicted as unlabeled" is P(labeled) < 1/2,
    and the fallback order for a batch larger than that set is D's ranking; D is VAAL's (Sinha et
    al., 2019), on the normalised features; the unlabeled batch size equals the labeled one; C's
    cross-entropy has weight 1 next to ``head``'s.

    Parameters
    ----------
    temperature : float, default 0.05
        T of the cosine classifier.
    entropy_weight : float, default 0.1
        lambda, the weight of the minimax entropy term.
    lr_discriminator : float, default 5e-4
    discriminator_width : int, default 512
    unlabeled_batch_size : int, optional
        Unlabeled items per mini-batch (default: the learner's batch size).
    chunk_size : int, default 1024
        Candidates scored together.
    """

    name = "mal"
    needs = frozenset({"learner", "pool"})
    score_name = ("MAL priority: 1 + entropy / log K of the cosine classifier for candidates the discriminator "
                  "predicts unlabeled (P(labeled) < 1/2), else 1 - P(labeled) (larger = queried first)")

    def __init__(self, temperature: float = 0.05, entropy_weight: float = 0.1, lr_discriminator: float = 5e-4,
                 discriminator_width: int = 512, unlabeled_batch_size: int | None = None,
                 chunk_size: int = 1024) -> None:
        self.temperature = check_scalar(temperature, "temperature", float, min_val=0, include_min=False)
        self.entropy_weight = check_scalar(entropy_weight, "entropy_weight", float, min_val=0)
        self.lr_discriminator = check_scalar(lr_discriminator, "lr_discriminator", float, min_val=0,
                                             include_min=False)
        self.discriminator_width = check_scalar(discriminator_width, "discriminator_width", int, min_val=1)
        self.unlabeled_batch_size = check_scalar(unlabeled_batch_size, "unlabeled_batch_size", int, min_val=1,
                                                 allow_none=True)
        self.chunk_size = check_scalar(chunk_size, "chunk_size", int, min_val=1)

    def training_callbacks(self, pool: Any = None) -> list[Callback]:
        """A :class:`MALCallback` training C and D on ``pool``'s labeled and unlabeled items."""
        if pool is None:
            raise ValueError(f"strategy {self.name!r} trains on the pool's unlabeled items: "
                             "pass the pool to training_callbacks(pool)")
        return [MALCallback(self, pool)]

    @torch.no_grad()
    def candidate_scores(self, learner: Any, pool: Any, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(P(labeled) under D, entropy of C in nats, K) for pool rows ``ids``, float64 arrays (N,)."""
        art = self.fit_artifact(learner, "the classifier and discriminator")
        clf, disc = art["classifier"], art["discriminator"]
        model = learner.model
        model.eval()
        clf.eval()
        disc.eval()
        p_parts, h_parts = [], []
        for start in range(0, ids.size, self.chunk_size):
            z = model.embed(learner._to_tensor(pool.features(ids[start:start + self.chunk_size])))
            p_parts.append(torch.sigmoid(disc(F.normalize(z, dim=1))).to(torch.float64))
            h_parts.append(entropy(clf(z)).to(torch.float64))
        return torch.cat(p_parts).cpu().numpy(), torch.cat(h_parts).cpu().numpy(), int(clf.fc.out_features)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        learner, pool, ids = evidence.learner, evidence.pool, evidence.candidate_ids
        if ids is None:
            raise ValueError(f"strategy {self.name!r} needs the candidates' pool indices "
                             "(Evidence.candidate_ids, as Learner.evidence(pool) sets them)")
        p, h, k = self.candidate_scores(learner, pool, np.asarray(ids, dtype=np.int64))
        score = mal_priority(p, h, k)
        idx = top_n(score, n, largest=True)
        return Selection(idx, scores=score[idx], candidate_scores=score)
