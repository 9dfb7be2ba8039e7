"""Discriminative active learning: query what a classifier most confidently calls "unlabeled".

Gissin & Shalev-Shwartz, "Discriminative Active Learning", arXiv:1907.06347, 2019. Active learning
is posed as a binary classification task: a small network learns to tell the labeled items from the
unlabeled ones in the task model's learned representation (the penultimate embedding), and the
items it classifies as "unlabeled" with the highest confidence are queried, the ones least like
anything labeled so far. The labels of the task never enter: the strategy reads only the
``embeddings`` and ``labeled_embeddings`` arrays, so it also runs from :func:`activebatch.select`
and the ``activebatch select`` command on saved arrays.

A batch is built in sub-batches ("mini-queries"): after each one, the chosen items join the labeled
side as if they were labeled and a new discriminator is trained from scratch, so later picks avoid
the neighbourhoods of earlier ones.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..kernels.scores import top_n
from ..learning.evidence import Evidence
from ..utils.validation import check_scalar
from .base import Selection, Strategy, register

__all__ = ["Discriminative", "class_weights", "discriminator", "sub_batch_sizes", "subsample_size",
           "train_discriminator"]


def sub_batch_sizes(n: int, sub_batches: int) -> list[int]:
    """Split a batch of ``n`` picks into ``min(sub_batches, n)`` sub-batches of near-equal size.

    The sizes differ by at most one, the larger ones first (``numpy.array_split``'s rule), and sum
    to ``n``; e.g. ``sub_batch_sizes(50, 20)`` gives ten sub-batches of 3 then ten of 2.
    """
    k = min(int(sub_batches), int(n))
    base, extra = divmod(int(n), k)
    return [base + 1] * extra + [base] * (k - extra)


def subsample_size(n_labeled: int, n_unlabeled: int, ratio: float, sub_batch: int) -> int:
    """How many unlabeled items one discriminator is trained on: ``min(U, max(floor(ratio * L), b))``.

    ``floor(ratio * L)`` is the paper's rule (at most ten times the labeled set); it is raised to
    the sub-batch size ``b`` when smaller, so that a sub-batch can always be filled from the
    sub-sample (the picks come from it), and capped by the ``U`` unlabeled items left.
    """
    return int(min(n_unlabeled, max(math.floor(ratio * n_labeled), sub_batch)))


def class_weights(n_labeled: int, n_unlabeled: int) -> torch.Tensor:
    """Inverse-frequency class weights (labeled, unlabeled): ``M / M_c`` for M = L + U rows, M_c of class c.

    Returns a float32 tensor of shape (2,); e.g. 10 labeled and 90 unlabeled rows give (10, 10/9),
    so both classes carry the same total weight M.
    """
    M = n_labeled + n_unlabeled
    return torch.tensor([M / n_labeled, M / n_unlabeled], dtype=torch.float32)


def discriminator(in_features: int, width: int = 256, depth: int = 3) -> nn.Sequential:
    """The paper's binary classifier: ``depth`` fully connected ReLU layers of ``width``, then 2 logits.

    No regularisation (no dropout, no weight decay): it must be able to fit an almost random
    labeling. Weights are Glorot-uniform and biases zero (the initialisation of the authors'
    Keras layers; the paper does not state one).
    """
    layers: list[nn.Module] = []
    d = in_features
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 2))
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def train_discriminator(labeled: torch.Tensor, unlabeled: torch.Tensor, *, seed: int, width: int = 256,
                        depth: int = 3, lr: float = 3e-4, batch_size: int = 1024, max_epochs: int = 500,
                        stop_accuracy: float = 0.98) -> tuple[nn.Sequential, int]:
    """Train a fresh :func:`discriminator` to tell ``labeled`` (class 0) from ``unlabeled`` (class 1).

    Adam on the class-weighted cross-entropy, each class weighted by the inverse of its frequency
    (w_c = M / M_c for M training rows, M_c of class c: the labeled rows, an order of magnitude
    fewer, count as much as the unlabeled ones), in shuffled mini-batches of ``batch_size``;
    training stops after the first epoch whose training accuracy (measured on the mini-batches as
    they are trained on) exceeds ``stop_accuracy``, before the network can memorise the labeling
    (which would make every unlabeled item equally confident), or after ``max_epochs``.

    Parameters
    ----------
    labeled : tensor of shape (L, d)
    unlabeled : tensor of shape (U, d)
        On the device the training runs on (``labeled`` is moved there).
    seed : int
        Seeds the initial weights (drawn on the CPU, the same on every device) and the
        mini-batch order.
    width, depth, lr, batch_size, max_epochs, stop_accuracy
        See :class:`Discriminative`.

    Returns
    -------
    net : torch.nn.Sequential
        The trained network, in eval mode, on the inputs' device; ``softmax(net(z))[:, 1]`` is
        P(unlabeled | z).
    epochs : int
        The epochs it trained for.
    """
    device = unlabeled.device
    X = torch.cat([labeled.to(device, torch.float32), unlabeled.to(torch.float32)])
    n_lab, M = int(labeled.shape[0]), int(X.shape[0])
    y = torch.cat([torch.zeros(n_lab, dtype=torch.long), torch.ones(M - n_lab, dtype=torch.long)]).to(device)
    weight = class_weights(n_lab, M - n_lab).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = discriminator(int(X.shape[1]), width, depth)
    net = net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)  # multi-tensor update: cheaper small steps
    gen = torch.Generator().manual_seed(seed)
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        perm = torch.randperm(M, generator=gen).to(device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for start in range(0, M, batch_size):
            b = perm[start:start + batch_size]
            logits, yb = net(X[b]), y[b]
            # Mean of the weighted per-row losses (not torch's weight-normalised mean), as a
            # class-weighted fit averages them.
            loss = (weight[yb] * F.cross_entropy(logits, yb, reduction="none")).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (logits.detach().argmax(1) == yb).sum()
        if int(correct) / M > stop_accuracy:   # one device sync per epoch
            break
    return net.eval(), epoch


@register
class Discriminative(Strategy):
    """Discriminative active learning (DAL) on the model's penultimate embeddings.

    Gissin & Shalev-Shwartz, "Discriminative Active Learning", arXiv:1907.06347, 2019. For each
    of ``sub_batches`` sub-batches of the batch:

    1. sub-sample the unlabeled items to ``unlabeled_ratio`` times the labeled set (uniformly,
       without replacement, from ``rng``);
    2. train a binary classifier from scratch (:func:`train_discriminator`: three ReLU layers of
       256, Adam, classes weighted inversely to their frequency, stopped once the training
       accuracy passes 98%) to tell the labeled items from the sub-sample;
    3. pick the sub-sample's items with the largest P(unlabeled), and move them to the labeled
       side (as if labeled) for the next sub-batch.

    Defaults follow the paper and the authors' code: the 3 x 256 ReLU network without
    regularisation, the 98% stopping rule, inverse-frequency class weights, the ten-fold
    sub-sample, Adam with learning rate 3e-4 and mini-batches of 1024 (the authors' code uses
    3e-4 on 28- and 32-wide inputs, 2e-4 with 1024 on 512-wide embeddings and 1e-4 with 128 on
    128-wide ones, and 200 to 1000 epochs; the epoch cap, 500 here, rarely binds before the
    stopping rule), and 20 sub-batches.

    Choices where the paper is silent:

    - The picks of a sub-batch come from the sub-sample its discriminator was trained on (as in
      the authors' code): an item outside it would be compared with items the network was fitted
      to call "unlabeled". The sub-sample is redrawn for each sub-batch from the items not yet
      picked, ``min(U, max(floor(unlabeled_ratio * L), b))`` of them for L labeled (the original
      labeled set plus the picks so far), U not yet picked and a sub-batch of b (raised to b so
      a sub-batch can always be filled).
    - The batch of n is split into ``min(sub_batches, n)`` sub-batches whose sizes differ by at
      most one (:func:`sub_batch_sizes`); the authors' code takes ``int(n / sub_batches)`` per
      sub-batch and puts the remainder in an extra last one.
    - The early stop fires when the epoch's training accuracy exceeds ``stop_accuracy`` strictly
      (the authors' rule); the network trains in float32 on the embeddings' device.
    - A cold start (no labeled items) has no labeled class to discriminate and is refused.
    - Items are ranked by the discriminator's log-odds of "unlabeled", the order of P(unlabeled)
      itself, which rounds to 1.0 for every item far from the labeled ones and would leave them
      tied.

    Per-pick scores are P(unlabeled) of each pick under the discriminator of its sub-batch; the
    picks are in selection order (sub-batch by sub-batch, most confident first within one, ties
    to the lowest position).

    Parameters
    ----------
    sub_batches : int, default 20
        Number of sub-batches (discriminators trained) per batch.
    unlabeled_ratio : float, default 10.0
        Size of the unlabeled sub-sample relative to the labeled set.
    width : int, default 256
        Width of the discriminator's hidden layers.
    depth : int, default 3
        Number of hidden layers.
    lr : float, default 3e-4
        Adam's learning rate.
    batch_size : int, default 1024
        Mini-batch size of the discriminator's training.
    max_epochs : int, default 500
        Epoch cap of one discriminator's training.
    stop_accuracy : float, default 0.98
        Training stops after the first epoch whose training accuracy exceeds it.
    """

    name = "discriminative"
    needs = frozenset({"embeddings", "labeled_embeddings"})
    randomized = True   # the sub-samples, initial weights and mini-batch orders come from rng
    score_name = ("P(unlabeled) under the discriminator of the pick's sub-batch when picked "
                  "(larger first within a sub-batch)")

    def __init__(self, sub_batches: int = 20, unlabeled_ratio: float = 10.0, width: int = 256, depth: int = 3,
                 lr: float = 3e-4, batch_size: int = 1024, max_epochs: int = 500,
                 stop_accuracy: float = 0.98) -> None:
        self.sub_batches = check_scalar(sub_batches, "sub_batches", int, min_val=1)
        self.unlabeled_ratio = check_scalar(unlabeled_ratio, "unlabeled_ratio", float, min_val=0,
                                            include_min=False)
        self.width = check_scalar(width, "width", int, min_val=1)
        self.depth = check_scalar(depth, "depth", int, min_val=1)
        self.lr = check_scalar(lr, "lr", float, min_val=0, include_min=False)
        self.batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
        self.max_epochs = check_scalar(max_epochs, "max_epochs", int, min_val=1)
        self.stop_accuracy = check_scalar(stop_accuracy, "stop_accuracy", float, min_val=0, max_val=1,
                                          include_max=False)

    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        Z = torch.as_tensor(evidence.get("embeddings"))
        device = Z.device
        Z = Z.to(torch.float32)
        labeled = torch.as_tensor(evidence.get("labeled_embeddings")).to(device, torch.float32)
        if labeled.shape[0] == 0:
            raise ValueError("strategy 'discriminative' needs at least one labeled item: its classifier tells "
                             "labeled from unlabeled embeddings (labeled_embeddings has no rows)")
        N = int(Z.shape[0])
        available = np.ones(N, dtype=bool)
        picks: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for size in sub_batch_sizes(n, self.sub_batches):
            remaining = np.flatnonzero(available)
            chosen = np.concatenate(picks) if picks else np.empty(0, dtype=np.int64)
            m = subsample_size(int(labeled.shape[0]) + chosen.size, remaining.size, self.unlabeled_ratio, size)
            sub = np.sort(rng.choice(remaining, size=m, replace=False))
            seed = int(rng.integers(2**62))
            sub_t = torch.as_tensor(sub, device=device)
            lab = torch.cat([labeled, Z[torch.as_tensor(chosen, device=device)]]) if chosen.size else labeled
            net, _ = train_discriminator(lab, Z[sub_t], seed=seed, width=self.width, depth=self.depth, lr=self.lr,
                                      batch_size=self.batch_size, max_epochs=self.max_epochs,
                                      stop_accuracy=self.stop_accuracy)
            with torch.no_grad():
                logits = net(Z[sub_t]).double()
            # Ranked by the log-odds of "unlabeled", the same order as P(unlabeled) but without its
            # saturation at 1.0 (far-away items would otherwise tie and go by position).
            log_odds = logits[:, 1] - logits[:, 0]
            best = top_n(log_odds, size, largest=True)
            picks.append(sub[best].astype(np.int64))
            scores.append(torch.sigmoid(log_odds).cpu().numpy()[best])
            available[sub[best]] = False
        return Selection(np.concatenate(picks), scores=np.concatenate(scores))
