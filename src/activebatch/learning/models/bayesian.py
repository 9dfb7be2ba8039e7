"""Bayes by Backprop for the final layer: a Gaussian posterior over the head's weights.

Blundell, Cornebise, Kavukcuoglu & Wierstra, "Weight Uncertainty in Neural Networks", ICML 2015.
Every weight w of the head has a diagonal Gaussian variational posterior q(w) = N(mu, sigma^2)
with sigma = softplus(rho) = log(1 + exp(rho)), so sigma stays positive while rho is trained
unconstrained. Training minimises the variational free energy
KL[q(w) || P(w)] - E_q[log P(D | w)] by backpropagation through reparameterised samples
w = mu + sigma * eps, eps ~ N(0, I).

:class:`BayesianLinear` is an ``nn.Linear`` (its ``weight`` and ``bias`` are the means mu), so a
model with a Bayesian head keeps the library's model contract. The :class:`~activebatch.Learner`
adds the KL term to the loss of every mini-batch itself when a model holds Bayesian layers
(:class:`KLDivergenceLoss`), and samples the head's weights for ``mc_probs``
(:func:`mc_weight_probs`), so BALD, BatchBALD and the other ``mc_probs`` strategies run on it
unchanged.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...utils.validation import check_scalar
from ..callbacks import BatchState, Callback, FitState

__all__ = ["BayesianLinear", "KLDivergenceLoss", "bayesian_layers", "has_bayesian_head", "kl_divergence",
           "linear_head", "mc_weight_probs"]

#: Elements of one (S, chunk, K) block of sampled logits.
_BLOCK_ELEMENTS = 1 << 22


class BayesianLinear(nn.Linear):
    """A linear layer with a factorised Gaussian posterior over its weights and biases.

    Blundell et al., ICML 2015 (the Gaussian variational posterior): each weight has a mean mu
    (``weight``, ``bias``) and a ``rho`` (``weight_rho``, ``bias_rho``), its standard deviation
    sigma = softplus(rho).
    In training mode every forward pass draws one fresh weight sample w = mu + sigma * eps
    (eps ~ N(0, I) from torch's global generator, which the Learner seeds per fit), shared by the
    rows of the mini-batch as in the paper; in eval mode the layer uses the means, a deterministic
    ``nn.Linear``.

    The prior is one zero-mean Gaussian per weight, P(w) = N(0, sigma_p^2), for which
    KL[q || P] has a closed form (:meth:`kl_divergence`). The paper's prior is the scale mixture
    pi N(0, sigma_1^2) + (1 - pi) N(0, sigma_2^2) (searched over -log sigma_1 in {0, 1, 2},
    -log sigma_2 in {6, 7, 8} and pi in {1/4, 1/2, 3/4} in its MNIST experiments), whose KL has
    no closed form and is estimated there by Monte Carlo on the sampled weights. A single Gaussian is that mixture with
    pi = 1; its closed-form KL removes the Monte Carlo noise of the complexity cost. The default
    sigma_p = 1 = e^0 is the widest sigma_1 of the paper's grid.

    The means start as ``nn.Linear``'s (Kaiming-uniform weights, uniform biases) and every rho at
    ``rho_init``; the paper does not state its initialisation. The default -3 gives
    sigma = softplus(-3) = 0.0486, about e^-3: between the paper's two prior scales, small enough
    that the first predictions are close to a deterministic layer's.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    prior_sigma : float, default 1.0
        sigma_p, the prior's standard deviation.
    rho_init : float, default -3.0
        Initial rho of every weight and bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, prior_sigma: float = 1.0,
                 rho_init: float = -3.0, device: Any = None, dtype: Any = None) -> None:
        self.prior_sigma = check_scalar(prior_sigma, "prior_sigma", float, min_val=0, include_min=False)
        self.rho_init = check_scalar(rho_init, "rho_init", float)
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.weight_rho = nn.Parameter(torch.full_like(self.weight, self.rho_init))
        if bias:
            self.bias_rho = nn.Parameter(torch.full_like(self.bias, self.rho_init))
        else:
            self.register_parameter("bias_rho", None)

    def reset_parameters(self) -> None:
        """Re-draw the means as ``nn.Linear`` does and set every rho back to ``rho_init``."""
        super().reset_parameters()
        if getattr(self, "weight_rho", None) is not None:   # nn.Linear.__init__ calls this before rho exists
            with torch.no_grad():
                self.weight_rho.fill_(self.rho_init)
                if self.bias_rho is not None:
                    self.bias_rho.fill_(self.rho_init)

    @property
    def weight_sigma(self) -> torch.Tensor:
        """sigma = softplus(rho) of the weights, shape (out_features, in_features)."""
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        """sigma of the biases, shape (out_features,), or None without bias."""
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight, self.bias)
        w = self.weight + self.weight_sigma * torch.randn_like(self.weight)
        b = None if self.bias is None else self.bias + self.bias_sigma * torch.randn_like(self.bias)
        return F.linear(x, w, b)

    def kl_divergence(self) -> torch.Tensor:
        """KL[q(w) || P(w)] summed over every weight and bias (a scalar with gradient).

        Per weight, for q = N(mu, sigma^2) and P = N(0, sigma_p^2):
        KL = log(sigma_p / sigma) + (sigma^2 + mu^2) / (2 sigma_p^2) - 1/2.
        """
        total = _gaussian_kl(self.weight, self.weight_sigma, self.prior_sigma)
        if self.bias is not None:
            total = total + _gaussian_kl(self.bias, self.bias_sigma, self.prior_sigma)
        return total

    @torch.no_grad()
    def sample_weights(self, n_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n_samples`` draws of the weights and biases from the posterior, seeded.

        The noise is drawn on the CPU from ``seed`` (the same samples on every device) and then
        moved to the layer's device.

        Returns
        -------
        weights : tensor of shape (S, out_features, in_features)
        biases : tensor of shape (S, out_features), or None without bias
        """
        gen = torch.Generator().manual_seed(int(seed))
        eps_w = torch.randn((n_samples,) + tuple(self.weight.shape), generator=gen, dtype=torch.float32)
        w = self.weight + self.weight_sigma * eps_w.to(self.weight.device, self.weight.dtype)
        if self.bias is None:
            return w, None
        eps_b = torch.randn((n_samples,) + tuple(self.bias.shape), generator=gen, dtype=torch.float32)
        return w, self.bias + self.bias_sigma * eps_b.to(self.bias.device, self.bias.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, prior_sigma={self.prior_sigma}, rho_init={self.rho_init}"


def _gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    return (math.log(prior_sigma) - torch.log(sigma) + (sigma ** 2 + mu ** 2) / (2.0 * prior_sigma ** 2)
            - 0.5).sum()


def linear_head(in_features: int, out_features: int, bayesian: bool = False) -> nn.Linear:
    """The final layer of a library model: ``nn.Linear``, or :class:`BayesianLinear` when ``bayesian``."""
    if not isinstance(bayesian, bool):
        raise TypeError(f"bayesian must be True or False, got {bayesian!r}")
    return BayesianLinear(in_features, out_features) if bayesian else nn.Linear(in_features, out_features)


def bayesian_layers(model: nn.Module) -> list[BayesianLinear]:
    """The :class:`BayesianLinear` layers of ``model`` (empty for an ordinary network)."""
    return [m for m in model.modules() if isinstance(m, BayesianLinear)]


def has_bayesian_head(model: nn.Module) -> bool:
    """Whether the model's final layer ``head`` is a :class:`BayesianLinear`."""
    return isinstance(getattr(model, "head", None), BayesianLinear)


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """The sum of :meth:`BayesianLinear.kl_divergence` over the model's Bayesian layers."""
    layers = bayesian_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} holds no BayesianLinear layer")
    total = layers[0].kl_divergence()
    for layer in layers[1:]:
        total = total + layer.kl_divergence()
    return total


class KLDivergenceLoss(Callback):
    """Adds the complexity cost KL[q || P] / N to every mini-batch's loss, as the term ``"kl"``.

    Blundell et al. (minibatches and KL re-weighting): with the data split into M mini-batches,
    the free energy of mini-batch i is KL / M - log P(D_i | w), and the sum over one epoch is the
    full free energy. The Learner's classification loss is the *mean* cross-entropy over the B
    rows of a mini-batch, i.e. that free energy's likelihood term divided by B; the same division
    turns KL / M into KL / (M B) = KL / N for a training set of N rows (the term added to every
    mini-batch, the last and smaller one too). (The paper's alternative weighting,
    pi_i = 2^(M-i) / (2^M - 1), is not used: it depends on the order of mini-batches within an
    epoch.) The KL is the closed form of :meth:`BayesianLinear.kl_divergence`, one term per fit
    step; ``fit.history`` records its epoch mean under ``"kl"``.

    :meth:`activebatch.Learner.fit` attaches it by itself to the fit of any model holding
    :class:`BayesianLinear` layers.
    """

    name = "kl"

    def on_batch(self, fit: FitState, batch: BatchState) -> None:
        batch.add_loss(self.name, kl_divergence(fit.model) / int(fit.X.shape[0]))


@torch.no_grad()
def mc_weight_probs(z: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor | None,
                    masks: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(z_s W_s^T + b_s) for every posterior sample s: (S, n, K).

    Parameters
    ----------
    z : tensor of shape (n, d)
        Embeddings (``embed(x)`` in eval mode).
    weights : tensor of shape (S, K, d)
    biases : tensor of shape (S, K), or None
        From :meth:`BayesianLinear.sample_weights`.
    masks : tensor of shape (S, d), optional
        Consistent dropout masks (:func:`~activebatch.learning.mc_dropout.consistent_masks`),
        applied to z for a model that also has dropout before its head: sample s then uses
        mask s and weights s, as a training pass draws both.
    """
    S, K, d = weights.shape
    weights = weights.to(z.device, z.dtype)
    biases = None if biases is None else biases.to(z.device, z.dtype)
    masks = None if masks is None else masks.to(z.device, z.dtype)
    step = max(1, _BLOCK_ELEMENTS // (S * max(K, d)))
    parts = []
    for i in range(0, z.shape[0], step):
        zc = z[i:i + step]
        zs = zc.unsqueeze(0).expand(S, -1, -1) if masks is None else masks[:, None, :] * zc[None]
        logits = torch.bmm(zs, weights.transpose(1, 2))                      # (S, chunk, K)
        if biases is not None:
            logits = logits + biases[:, None, :]
        parts.append(torch.softmax(logits, dim=-1))
    return torch.cat(parts, dim=1) if parts else z.new_zeros(S, 0, K)
