"""VAAL: a VAE and a discriminator trained adversarially on labeled and unlabeled inputs.

Sinha, Ebrahimi & Darrell, "Variational Adversarial Active Learning", ICCV 2019. A beta-VAE
learns a latent space from the labeled and the unlabeled inputs while a discriminator learns to
tell their codes apart and the VAE learns to fool it; the candidates the discriminator is surest
are unlabeled are queried. The method never looks at the task model: it reads the raw pool inputs
and trains its own networks at selection time (so the selection's wall time includes training).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..kernels.scores import top_n
from ..learning.adversarial_nets import MLPVAE, ConvVAE, LatentDiscriminator, image_shape, vae_loss
from ..learning.evidence import Evidence
from ..utils.validation import check_choice, check_scalar
from .base import Selection, Strategy, register

__all__ = ["VAAL", "VAALModules"]

#: Rows read from the pool at once when computing standardisation statistics and scores.
_CHUNK = 1024


@dataclass
class VAALModules:
    """What one VAAL training produced: the networks and the input standardisation.

    Attributes
    ----------
    vae : ConvVAE or MLPVAE
    discriminator : LatentDiscriminator
    mean, std : tensors broadcastable to one input row (per channel for images, per feature for rows)
    shape : tuple
        The shape each row is viewed as before the VAE: (C, H, W) or (F,).
    iterations : int
        Training iterations run.
    """

    vae: nn.Module
    discriminator: LatentDiscriminator
    mean: torch.Tensor
    std: torch.Tensor
    shape: tuple[int, ...]
    iterations: int

    def inputs(self, pool: Any, ids: np.ndarray, device: torch.device) -> torch.Tensor:
        """Standardised inputs of pool rows ``ids``, viewed as the VAE reads them, on ``device``."""
        x = torch.as_tensor(np.asarray(pool.features(ids)), device=device).to(torch.float32)
        return (x.reshape(x.shape[0], *self.shape) - self.mean) / self.std

    @torch.no_grad()
    def labeled_probability(self, pool: Any, ids: np.ndarray, device: torch.device,
                            chunk_size: int = _CHUNK) -> torch.Tensor:
        """The discriminator's probability (float64, (N,)) that each row of ``ids`` is labeled, from
        the VAE's latent mean, both networks in eval mode (batch norm on its running statistics, so a
        row's score does not depend on the other rows)."""
        self.vae.eval()
        self.discriminator.eval()
        parts = [torch.sigmoid(self.discriminator(self.vae.encode(self.inputs(pool, ids[i:i + chunk_size], device))[0]))
                 for i in range(0, ids.size, chunk_size)]
        return torch.cat(parts).to(torch.float64) if parts else torch.empty(0, dtype=torch.float64)


class _Batches:
    """Mini-batches of positions 0..n-1 from successive random permutations (an infinite loader).

    Each batch holds the next min(batch_size, n) positions of the current permutation; a new
    permutation is drawn when fewer remain (the epoch's remainder is dropped). A one-item set gives
    that item twice, so batch normalisation has two rows to take statistics from.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.size, self.gen = n, min(batch_size, n), generator
        self.perm = np.empty(0, dtype=np.int64)
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.n == 1:
            return np.zeros(2, dtype=np.int64)
        if self.pos + self.size > self.perm.size:
            self.perm = torch.randperm(self.n, generator=self.gen).numpy()
            self.pos = 0
        out = self.perm[self.pos:self.pos + self.size]
        self.pos += self.size
        return out


def _standardisation(pool: Any, ids: np.ndarray, shape: tuple[int, ...],
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over rows ``ids``: per channel for images (C, H, W), per feature
    for flat rows; accumulated in float64 a chunk of rows at a time. A constant feature (std below
    1e-6) is only centred."""
    axes = (0, 2, 3) if len(shape) == 3 else (0,)
    total = total_sq = None
    count = 0
    for i in range(0, ids.size, _CHUNK):
        x = np.asarray(pool.features(ids[i:i + _CHUNK]), dtype=np.float64).reshape(-1, *shape)
        s, sq = x.sum(axis=axes), np.square(x).sum(axis=axes)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.shape[0] * (int(np.prod(shape[1:])) if len(shape) == 3 else 1)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    view = (-1, 1, 1) if len(shape) == 3 else (-1,)
    as_t = lambda a: torch.as_tensor(a.reshape(view), dtype=torch.float32, device=device)  # noqa: E731
    return as_t(mean), as_t(std)


@register
class VAAL(Strategy):
    """Variational adversarial active learning (Sinha, Ebrahimi & Darrell, "Variational Adversarial
    Active Learning", ICCV 2019).

    At each selection a beta-VAE and a discriminator are trained from scratch on the labeled
    items and the candidates (the unlabeled items), then the ``n`` candidates with the smallest
    probability of "labeled" under the discriminator are queried (the authors' sampler: the
    lowest discriminator outputs first). Each training iteration takes ``vae_steps`` VAE steps and
    ``discriminator_steps`` discriminator steps, each on a fresh labeled and a fresh unlabeled
    mini-batch (the discriminator step reuses the last VAE batches, as the authors' code does):

    - VAE step (the paper's equations 1-3): minimise
      ``[MSE(x_L) + beta KL_L] + [MSE(x_U) + beta KL_U] + adversary_weight * (BCE(D(mu_L), 1) + BCE(D(mu_U), 1))``:
      reconstruct both sets, keep their codes near N(0, I), and make the discriminator call
      every code "labeled" (:func:`~activebatch.learning.adversarial_nets.vae_loss`);
    - discriminator step (equation 4): minimise ``BCE(D(mu_L), 1) + BCE(D(mu_U), 0)`` on the VAE's
      codes, without gradient to the VAE.

    The discriminator reads the latent mean mu (as the authors' code, where the paper writes
    q(z|x)); VAE and discriminator are trained with Adam at 5e-4 each, in train mode, and scored
    in eval mode.

    Architecture: the authors' convolutional VAE (:class:`~activebatch.learning.adversarial_nets.ConvVAE`)
    for image pools — rows of shape (C, H, W) or (H, W), or flat rows of width s*s or 3*s*s,
    sides of at least 16 pixels — and for any other rows a fully connected VAE
    (:class:`~activebatch.learning.adversarial_nets.MLPVAE`; our adaptation, the paper has only
    images). Inputs are standardised (per channel for images, per feature for rows) with the mean
    and standard deviation of the labeled items and candidates, so reconstruction errors weigh
    every feature alike (the authors' images were in [0, 1]).

    Training budget: the authors run (number of images x ``epochs``) / ``batch_size`` iterations
    with 100 epochs, the number of images being the whole training set; here that number is the
    labeled items plus the candidates. This is costly (a CIFAR-10-sized pool: 78,125 iterations of
    the convolutional VAE); ``epochs`` or ``iterations`` set a smaller budget.

    Randomness: a torch seed drawn from the selection's ``rng`` seeds the networks' initialisation,
    the mini-batch order and the reparameterisation noise (in a forked random stream). Training
    runs on the learner's device when the evidence has a learner, else on the CPU.

    Parameters
    ----------
    latent_dim : int, default 32
        The paper's latent size for CIFAR-10/100.
    beta : float, default 1.0
        Weight of the KL term (beta-VAE).
    adversary_weight : float, default 1.0
        lambda_2, the weight of the VAE's adversarial term (lambda_1 = 1 on the reconstruction term).
    vae_steps : int, default 2
        VAE steps per iteration.
    discriminator_steps : int, default 1
        Discriminator steps per iteration.
    lr_vae, lr_discriminator : float, default 5e-4
        Adam learning rates.
    batch_size : int, default 64
        Of the labeled and of the unlabeled mini-batches (the paper's; a set smaller than this
        gives batches of its size).
    epochs : float, default 100
        Sets the iteration count: (labeled + candidates) * epochs // batch_size, at least 1.
    iterations : int, optional
        The iteration count itself (overrides ``epochs``).
    architecture : {"auto", "conv", "mlp"}, default "auto"
        "auto" picks the convolutional VAE for images as described above.
    discriminator_width : int, default 512
        Width of the discriminator's four hidden layers (the paper's 512).
    mlp_width : int, default 512
        Width of the fully connected VAE's hidden layers (tabular rows only).
    chunk_size : int, default 1024
        Candidates scored together.
    """

    name = "vaal"
    needs = frozenset({"pool"})
    optional = frozenset({"learner"})
    randomized = True
    score_name = "the discriminator's probability that the candidate is labeled (smaller = more informative)"

    def __init__(self, latent_dim: int = 32, beta: float = 1.0, adversary_weight: float = 1.0, vae_steps: int = 2,
                 discriminator_steps: int = 1, lr_vae: float = 5e-4, lr_discriminator: float = 5e-4,
                 batch_size: int = 64, epochs: float = 100, iterations: int | None = None,
                 architecture: str = "auto", discriminator_width: int = 512, mlp_width: int = 512,
                 chunk_size: int = 1024) -> None:
        self.latent_dim = check_scalar(latent_dim, "latent_dim", int, min_val=1)
        self.beta = check_scalar(beta, "beta", float, min_val=0)
        self.adversary_weight = check_scalar(adversary_weight, "adversary_weight", float, min_val=0)
        self.vae_steps = check_scalar(vae_steps, "vae_steps", int, min_val=1)
        self.discriminator_steps = check_scalar(discriminator_steps, "discriminator_steps", int, min_val=1)
        self.lr_vae = check_scalar(lr_vae, "lr_vae", float, min_val=0, include_min=False)
        self.lr_discriminator = check_scalar(lr_discriminator, "lr_discriminator", float, min_val=0,
                                             include_min=False)
        self.batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
        self.epochs = check_scalar(epochs, "epochs", float, min_val=0, include_min=False)
        self.iterations = check_scalar(iterations, "iterations", int, min_val=1, allow_none=True)
        self.architecture = check_choice(architecture, "architecture", ("auto", "conv", "mlp"))
        self.discriminator_width = check_scalar(discriminator_width, "discriminator_width", int, min_val=1)
        self.mlp_width = check_scalar(mlp_width, "mlp_width", int, min_val=1)
        self.chunk_size = check_scalar(chunk_size, "chunk_size", int, min_val=1)

    # Training -----------------------------------------------------------------------------------
    def n_iterations(self, n_items: int) -> int:
        """Training iterations for ``n_items`` labeled items and candidates together."""
        if self.iterations is not None:
            return self.iterations
        return max(1, int(n_items * self.epochs) // self.batch_size)

    def _networks(self, row_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
        img = image_shape(row_shape)
        if self.architecture == "conv":
            if img is None:
                raise ValueError(f"architecture='conv' needs image rows (C, H, W), (H, W) or flat square images "
                                 f"with sides >= 16; the pool's rows have shape {row_shape}")
            return ConvVAE(img, self.latent_dim), img
        if self.architecture == "auto" and img is not None:
            return ConvVAE(img, self.latent_dim), img
        width = int(np.prod(row_shape))
        return MLPVAE(width, self.latent_dim, self.mlp_width), (width,)

    def fit_modules(self, pool: Any, labeled: np.ndarray, unlabeled: np.ndarray, *, seed: int,
                    device: torch.device | str = "cpu") -> VAALModules:
        """Train VAAL's VAE and discriminator on pool rows ``labeled`` and ``unlabeled``.

        Parameters
        ----------
        pool : Pool
        labeled, unlabeled : array of int, shapes (L,) and (U,)
            Pool indices, L >= 1 and U >= 1.
        seed : int
            Seeds initialisation, mini-batch order and reparameterisation noise.
        device : torch.device or str, default "cpu"

        Returns
        -------
        VAALModules
        """
        labeled, unlabeled = np.asarray(labeled, dtype=np.int64), np.asarray(unlabeled, dtype=np.int64)
        if labeled.size == 0 or unlabeled.size == 0:
            raise ValueError(f"VAAL trains on labeled and unlabeled items; got {labeled.size} labeled and "
                             f"{unlabeled.size} unlabeled")
        device = torch.device(device)
        seen = np.concatenate([labeled, unlabeled])
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            vae, shape = self._networks(tuple(pool.X.shape[1:]))
            disc = LatentDiscriminator(self.latent_dim, self.discriminator_width)
            vae, disc = vae.to(device), disc.to(device)
            mean, std = _standardisation(pool, seen, shape, device)
            mods = VAALModules(vae, disc, mean, std, shape, self.n_iterations(seen.size))
            gen = torch.Generator().manual_seed(seed)
            lab_batches = _Batches(labeled.size, self.batch_size, gen)
            unl_batches = _Batches(unlabeled.size, self.batch_size, gen)
            opt_vae = torch.optim.Adam(vae.parameters(), lr=self.lr_vae)
            opt_disc = torch.optim.Adam(disc.parameters(), lr=self.lr_discriminator)
            vae.train()
            disc.train()
            for _ in range(mods.iterations):
                for _ in range(self.vae_steps):
                    xl = mods.inputs(pool, labeled[lab_batches.next()], device)
                    xu = mods.inputs(pool, unlabeled[unl_batches.next()], device)
                    opt_vae.zero_grad(set_to_none=True)
                    self.vae_objective(vae, disc, xl, xu).backward()
                    opt_vae.step()
                for step in range(self.discriminator_steps):
                    if step > 0:
                        xl = mods.inputs(pool, labeled[lab_batches.next()], device)
                        xu = mods.inputs(pool, unlabeled[unl_batches.next()], device)
                    opt_disc.zero_grad(set_to_none=True)
                    self.discriminator_objective(vae, disc, xl, xu).backward()
                    opt_disc.step()
        return mods

    def vae_objective(self, vae: nn.Module, disc: LatentDiscriminator, xl: torch.Tensor,
                      xu: torch.Tensor) -> torch.Tensor:
        """The VAE's loss on a labeled and an unlabeled mini-batch (the paper's equations 1-3)."""
        recon_l, mu_l, logvar_l = vae(xl)
        recon_u, mu_u, logvar_u = vae(xu)
        transductive = (vae_loss(xl, recon_l, mu_l, logvar_l, self.beta)[0]
                        + vae_loss(xu, recon_u, mu_u, logvar_u, self.beta)[0])
        logit_l, logit_u = disc(mu_l), disc(mu_u)
        # the VAE wants every code called "labeled" (target 1)
        adversarial = (F.binary_cross_entropy_with_logits(logit_l, torch.ones_like(logit_l))
                       + F.binary_cross_entropy_with_logits(logit_u, torch.ones_like(logit_u)))
        return transductive + self.adversary_weight * adversarial

    @staticmethod
    def discriminator_objective(vae: nn.Module, disc: LatentDiscriminator, xl: torch.Tensor,
                                xu: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss (the paper's equation 4): labeled codes -> 1, unlabeled -> 0."""
        with torch.no_grad():
            mu_l, mu_u = vae.encode(xl)[0], vae.encode(xu)[0]
        logit_l, logit_u = disc(mu_l), disc(mu_u)
        return (F.binary_cross_entropy_with_logits(logit_l, torch.ones_like(logit_l))
                + F.binary_cross_entropy_with_logits(logit_u, torch.zeros_like(logit_u)))

    # Selection ----------------------------------------------------------------------------------
    def _select(self, evidence: Evidence, n: int, rng: np.random.Generator) -> Selection:
        pool, ids = evidence.pool, evidence.candidate_ids
        if ids is None:
            raise ValueError(f"strategy {self.name!r} needs the candidates' pool indices "
                             "(Evidence.candidate_ids, as Learner.evidence(pool) sets them)")
        ids = np.asarray(ids, dtype=np.int64)
        labeled = pool.labeled_indices
        if labeled.size == 0:
            raise ValueError(f"strategy {self.name!r} trains its discriminator on labeled and unlabeled items; "
                             "the pool has no labeled items")
        device = torch.device(getattr(evidence.learner, "device", "cpu")) if evidence.has("learner") \
            else torch.device("cpu")
        seed = int(rng.integers(0, 2 ** 63 - 1))
        mods = self.fit_modules(pool, labeled, ids, seed=seed, device=device)
        prob = mods.labeled_probability(pool, ids, device, self.chunk_size).cpu().numpy()
        idx = top_n(prob, n, largest=False)
        return Selection(idx, scores=prob[idx], candidate_scores=prob)
