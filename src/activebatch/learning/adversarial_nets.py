"""Networks of the adversarial strategies: VAAL's beta-VAE and latent discriminator, MAL's cosine
classifier and gradient reversal, and their loss terms.

- :class:`ConvVAE` — the convolutional VAE of Sinha, Ebrahimi & Darrell, "Variational Adversarial
  Active Learning" (ICCV 2019), the Wasserstein auto-encoder architecture of its appendix;
- :class:`MLPVAE` — a fully connected VAE for tabular rows (our adaptation; the paper has images only);
- :class:`LatentDiscriminator` — VAAL's five-layer MLP telling labeled from unlabeled codes;
- :class:`CosineClassifier` and :func:`grad_reverse` — the l2-normalised, temperature-scaled
  classifier and the gradient-reversal layer of the minimax entropy game (Saito et al., "Semi-supervised
  Domain Adaptation via Minimax Entropy", ICCV 2019), on which Minimax Active Learning builds;
- :func:`gaussian_kl`, :func:`vae_loss`, :func:`entropy`, :func:`minimax_entropy_loss` — the loss terms.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvVAE", "MLPVAE", "LatentDiscriminator", "CosineClassifier", "grad_reverse", "gaussian_kl",
           "vae_loss", "entropy", "minimax_entropy_loss", "image_shape"]

#: Smallest image side the convolutional VAE takes: its four stride-2 convolutions halve the side
#: four times, so a side below 16 pixels leaves nothing to encode.
MIN_IMAGE_SIDE = 16


def image_shape(row_shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """The (C, H, W) image shape of pool rows of shape ``row_shape``, or None for tabular rows.

    Rows of shape (C, H, W) or (H, W) are images; flat rows of width F are images when F = s * s
    (one channel) or F = 3 * s * s (RGB), as :func:`activebatch.learning.models.shapes.as_images`
    views them. Images whose sides are below 16 pixels (e.g. the 8 x 8 digits) count as tabular
    rows: the convolutional VAE cannot encode them.
    """
    shape = tuple(int(s) for s in row_shape)
    if len(shape) == 3:
        c, h, w = shape
    elif len(shape) == 2:
        c, (h, w) = 1, shape
    elif len(shape) == 1:
        width = shape[0]
        for c in (1, 3):
            side = math.isqrt(width // c) if width % c == 0 else 0
            if side > 0 and c * side * side == width:
                h = w = side
                break
        else:
            return None
    else:
        return None
    return (c, h, w) if min(h, w) >= MIN_IMAGE_SIDE else None


def _kaiming(modules: nn.Module) -> None:
    # The VAAL authors' initialisation: Kaiming-normal weights (fan-in, ReLU gain) and zero biases
    # for the convolutions and linear layers of each block; transposed convolutions keep PyTorch's.
    for m in modules.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class ConvVAE(nn.Module):
    """VAAL's convolutional beta-VAE (Sinha et al., ICCV 2019; the WAE architecture of Tolstikhin et al.).

    Encoder: four 4x4 stride-2 convolutions (128, 256, 512, 1024 channels, each followed by batch
    normalisation and ReLU), flattened, then linear maps to the latent mean and log-variance.
    Decoder: a linear map to 1024 x ceil(H/8) x ceil(W/8), three 4x4 stride-2 transposed
    convolutions (512, 256, 128 channels, batch norm, ReLU) and a 1x1 transposed convolution to
    C channels, linear output. For 32 x 32 images this is exactly the authors' network (1024 x 2 x 2
    codes, decoder from 4 x 4); for other sizes the flattened width follows the encoder's output and
    the decoder's 8 ceil(H/8) x 8 ceil(W/8) output is cropped to H x W (e.g. 28 x 28 digits).

    Parameters
    ----------
    shape : tuple (C, H, W)
        Input image shape, H and W >= 16.
    latent_dim : int, default 32
    """

    def __init__(self, shape: tuple[int, int, int], latent_dim: int = 32) -> None:
        super().__init__()
        c, h, w = (int(s) for s in shape)
        if min(h, w) < MIN_IMAGE_SIDE:
            raise ValueError(f"ConvVAE needs images of at least {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} pixels, "
                             f"got {h} x {w}")
        self.shape, self.latent_dim = (c, h, w), int(latent_dim)
        layers: list[nn.Module] = []
        for c_in, c_out in ((c, 128), (128, 256), (256, 512), (512, 1024)):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        flat = 1024 * (h // 16) * (w // 16)      # each stride-2, padding-1, 4x4 convolution halves (floor)
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self._start = (-(-h // 8), -(-w // 8))
        dec: list[nn.Module] = [nn.Linear(latent_dim, 1024 * self._start[0] * self._start[1]),
                                nn.Unflatten(1, (1024, *self._start))]
        for c_in, c_out in ((1024, 512), (512, 256), (256, 128)):
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        dec.append(nn.ConvTranspose2d(128, c, 1))
        self.decoder = nn.Sequential(*dec)
        _kaiming(self.encoder)
        _kaiming(self.decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance, each (B, latent_dim), of images (B, C, H, W)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions (B, C, H, W) of codes (B, latent_dim)."""
        h, w = self.shape[1:]
        return self.decoder(z)[:, :, :h, :w]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); the decoded code is sampled by reparameterisation."""
        mu, logvar = self.encode(x)
        return self.decode(_reparameterize(mu, logvar)), mu, logvar


class MLPVAE(nn.Module):
    """A fully connected beta-VAE for tabular rows (our adaptation of VAAL, whose paper has images only).

    Encoder: two ReLU layers of width ``hidden`` then linear maps to the latent mean and
    log-variance; decoder: two ReLU layers of width ``hidden`` then a linear map back to the
    features. No batch normalisation: a labeled set can be a handful of rows. Initialised as the
    convolutional VAE (Kaiming-normal, zero biases).

    Parameters
    ----------
    n_features : int
    latent_dim : int, default 32
    hidden : int, default 512
        The width of VAAL's discriminator.
    """

    def __init__(self, n_features: int, latent_dim: int = 32, hidden: int = 512) -> None:
        super().__init__()
        self.n_features, self.latent_dim = int(n_features), int(latent_dim)
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(True), nn.Linear(hidden, hidden),
                                     nn.ReLU(True))
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(True), nn.Linear(hidden, hidden),
                                     nn.ReLU(True), nn.Linear(hidden, n_features))
        _kaiming(self.encoder)
        _kaiming(self.decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance, each (B, latent_dim), of rows (B, n_features)."""
        h = self.encoder(x.flatten(1))
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions (B, n_features)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); the decoded code is sampled by reparameterisation."""
        mu, logvar = self.encode(x)
        return self.decode(_reparameterize(mu, logvar)), mu, logvar


class LatentDiscriminator(nn.Module):
    """VAAL's discriminator: a five-layer ReLU MLP (four hidden layers of width 512) on a code.

    Returns the logit of "labeled" (B,); the authors' network ends in a sigmoid, which the losses
    here fold into ``binary_cross_entropy_with_logits`` (the same loss, without log(0)).

    Parameters
    ----------
    in_dim : int
    hidden : int, default 512
    """

    def __init__(self, in_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True),
                                 nn.Linear(hidden, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True),
                                 nn.Linear(hidden, 1))
        _kaiming(self.net)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, eta: float) -> torch.Tensor:   # type: ignore[override]
        ctx.eta = eta
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:   # type: ignore[override]
        return -ctx.eta * grad, None


def grad_reverse(x: torch.Tensor, eta: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-eta`` backward (Ganin & Lempitsky, ICML 2015)."""
    return _GradReverse.apply(x, float(eta))


class CosineClassifier(nn.Module):
    """Logits ``W^T (z / ||z||) / T``: a bias-free linear map of l2-normalised features, scaled by 1/T.

    The similarity-based classifier of minimax entropy (Saito et al., ICCV 2019) and of Minimax
    Active Learning (Ebrahimi et al., 2021): the rows of W act as class prototypes.

    Parameters
    ----------
    in_dim : int
        Feature width d.
    n_classes : int
        K.
    temperature : float, default 0.05
    """

    def __init__(self, in_dim: int, n_classes: int, temperature: float = 0.05) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, n_classes, bias=False)
        self.temperature = float(temperature)

    def forward(self, z: torch.Tensor, *, reverse: bool = False, eta: float = 1.0) -> torch.Tensor:
        """Logits (B, K) of features ``z`` (B, d); ``reverse`` puts a gradient reversal on ``z``."""
        if reverse:
            z = grad_reverse(z, eta)
        return self.fc(F.normalize(z, dim=1)) / self.temperature


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) of each row, (B,):
    0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The beta-VAE objective of VAAL's equation 1 on one set: reconstruction error + beta * KL.

    The reconstruction term is the mean squared error over every element (the authors' Gaussian
    likelihood); the KL term is :func:`gaussian_kl` averaged over the batch, the expectation of
    the paper's equation (the authors' code sums it over the batch instead, which weights it by
    the batch size).

    Returns
    -------
    total, reconstruction, kl : scalar tensors
    """
    rec = F.mse_loss(recon, x)
    kl = gaussian_kl(mu, logvar).mean()
    return rec + beta * kl, rec, kl


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits) per row, (B,)."""
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def minimax_entropy_loss(features: torch.Tensor, classifier: CosineClassifier, weight: float) -> torch.Tensor:
    """The minimax entropy term ``-weight * mean H(C(z_u))`` with a gradient reversal before C.

    Minimising it (with everything else) makes the classifier *maximise* the mean entropy of the
    unlabeled predictions (its gradient is that of -weight * H) while the encoder that produced
    ``features`` *minimises* it (the reversal flips its gradient to that of +weight * H): the game
    min_F max_C H of Saito et al. (2019) and Ebrahimi et al. (2021).

    Parameters
    ----------
    features : tensor of shape (B, d)
        The encoder's features of unlabeled inputs (before normalisation), with gradient.
    classifier : CosineClassifier
    weight : float
        lambda.
    """
    return -weight * entropy(classifier(features, reverse=True)).mean()
