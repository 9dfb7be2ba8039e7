"""SimCLR: self-supervised pretraining of an encoder on unlabelled images.

Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020 (arXiv:2002.05709). Each image of a minibatch of N gives two views
through the same random augmentation family; the encoder f maps a view to its representation
h = f(x), a projection head g (an MLP with one hidden ReLU layer, output width 128) maps h to
z = g(h), and the NT-Xent loss makes the two views of an image agree against the other 2(N - 1)
views of the batch. After training g is thrown away and h is the feature (the paper's section 4.2:
h is the better representation).

The frozen encoder that :func:`pretrain_simclr` returns gives the features an active-learning
loop can train a small head on (``extract_features`` embeds the pool once); strategies that ask
for self-supervised features (TypiClust, ProbCover) take them as their ``embeddings``.

Adaptations of the paper's ImageNet/CIFAR-10 recipe to small images on a CPU, each documented
where it is made:

- optimiser: Adam (lr 1e-3, the paper's weight decay 1e-6, cosine decay, no warm-up) instead of
  LARS, which the paper needs to keep batches of 4,096 stable (section 2.2); at a batch of 256
  Adam is stable and needs no per-layer trust ratio;
- temperature 0.5: the authors' CIFAR-10 setting (appendix B.9: 0.5 is the best temperature at
  batch sizes up to 1,024 there; 0.1 is their ImageNet value at batch 4,096, where more negatives
  tolerate a sharper softmax);
- augmentations: the paper's random resized crop, flip and colour distortion of strength 0.5
  (its CIFAR-10 value), without the Gaussian blur the paper also drops on 32x32 images
  (appendix B.9). Single-channel images (digits, letters) get no flip (a mirrored digit is another
  symbol or none) and of the colour distortion only the brightness and contrast jitter that a
  single channel has. They keep the paper's crop area, 8 % to 100 %: on mnist-5k (10 epochs, linear
  probe with 100 / 1,000 labels) a minimum of 0.08 gave 0.759 / 0.913, against 0.720 / 0.908 for
  0.3 and 0.707 / 0.895 for 0.5; the hard small crops are what make the task informative.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..utils.validation import check_scalar
from .models.base import EmbeddingModel
from .models.cnn import CNN
from .models.shapes import as_images

__all__ = ["ProjectionHead", "SimCLREncoder", "nt_xent", "pretrain_simclr", "simclr_augment"]

#: The paper's random-resized-crop aspect ratios (3/4 to 4/3) and crop area (8 % to 100 %).
_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_SCALE = (0.08, 1.0)
#: Candidate crops drawn per image before falling back to the whole image (torchvision's rule).
_CROP_TRIES = 10
#: ITU-R 601 luma weights, the grayscale conversion of the paper's TensorFlow code.
_LUMA = (0.299, 0.587, 0.114)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The NT-Xent loss (normalised temperature-scaled cross entropy), SimCLR's equation (1).

    For the 2N projections (view 1 of every image, then view 2), with cosine similarity
    ``sim(u, v) = u.v / (|u| |v|)``, the loss of the positive pair (i, j) is
    ``-log exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)``, averaged over
    all 2N ordered positive pairs (both (i, j) and (j, i)), as in Algorithm 1.

    Parameters
    ----------
    z1, z2 : Tensor of shape (N, p)
        Projections of the first and second view of the same N images (row i of each from image i).
    temperature : float, default 0.5
        tau > 0.

    Returns
    -------
    Tensor of shape ()
        The mean loss.
    """
    temperature = check_scalar(temperature, "temperature", float, min_val=0, include_min=False)
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must be matrices of the same shape (N, p), got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    n = z1.shape[0]
    if n < 2:
        raise ValueError(f"NT-Xent needs N >= 2 images (the other images are the negatives), got N = {n}")
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    # k = i is not a candidate: its similarity with itself is always 1
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, positive)


class ProjectionHead(nn.Module):
    """SimCLR's projection head g: ``W2 relu(W1 h)`` (section 2.1), hidden width d, output 128.

    Parameters
    ----------
    in_features : int
        Width d of the representation h.
    hidden : int, optional
        Hidden width (default: d, as the paper's 2048-wide head on ResNet-50's 2048-d h).
    out_features : int, default 128
        Width of z (the paper's 128).
    """

    def __init__(self, in_features: int, hidden: int | None = None, out_features: int = 128) -> None:
        super().__init__()
        in_features = check_scalar(in_features, "in_features", int, min_val=1)
        hidden = check_scalar(in_features if hidden is None else hidden, "hidden", int, min_val=1)
        out_features = check_scalar(out_features, "out_features", int, min_val=1)
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def _rand(gen: torch.Generator, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Uniform draws on [low, high), on the CPU (so the stream is the same on every device)."""
    return low + (high - low) * torch.rand(*shape, generator=gen)


def _random_resized_crop(x: torch.Tensor, scale: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in [3/4, 4/3] at a random place of
    each image and resize it back to (H, W), bilinearly, all in one ``grid_sample``."""
    b = x.shape[0]
    area = _rand(gen, b, _CROP_TRIES, low=scale[0], high=scale[1])
    log_r = _rand(gen, b, _CROP_TRIES, low=math.log(_RATIO[0]), high=math.log(_RATIO[1]))
    # width and height as fractions of the image's; on a square image w * h is the area fraction
    w, h = torch.sqrt(area * torch.exp(log_r)), torch.sqrt(area / torch.exp(log_r))
    fits = (w <= 1) & (h <= 1)
    first = torch.argmax(fits.int(), dim=1, keepdim=True)   # first candidate that fits, per image
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w.gather(1, first).squeeze(1), torch.ones(b))
    h = torch.where(any_fit, h.gather(1, first).squeeze(1), torch.ones(b))
    # centre anywhere the crop stays inside the image (normalised coordinates in [-1, 1])
    cx = (1 - w) * _rand(gen, b, low=-1.0, high=1.0)
    cy = (1 - h) * _rand(gen, b, low=-1.0, high=1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma of (B, 3, H, W) RGB images, shape (B, 1, H, W)."""
    wts = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * wts).sum(1, keepdim=True)


def _shift_hue(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB images in [0, 1] by ``delta`` (B,) turns, through HSV."""
    maxc, argmax = x.max(1)
    minc = x.min(1).values
    span = maxc - minc
    safe = torch.where(span > 0, span, torch.ones_like(span))
    r, g, b = x.unbind(1)
    hue = torch.stack([(g - b) / safe, 2 + (b - r) / safe, 4 + (r - g) / safe], 1).gather(1, argmax[:, None])[:, 0]
    hue = torch.where(span > 0, hue / 6, torch.zeros_like(hue))
    hue = torch.remainder(hue + delta.view(-1, 1, 1), 1.0)
    sat = torch.where(maxc > 0, span / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    v = maxc
    h6 = hue * 6
    i = torch.floor(h6).long() % 6
    f = h6 - torch.floor(h6)
    p, q, t = v * (1 - sat), v * (1 - sat * f), v * (1 - sat * (1 - f))
    # the six sectors of the hue circle, as in colorsys.hsv_to_rgb
    table = torch.stack([torch.stack(c, 1) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))], 1)
    return table.gather(2, i[:, None, None].expand(-1, 3, 1, -1, -1)).squeeze(2)


def _color_distort(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """The paper's colour distortion (appendix A): with probability 0.8 a colour jitter (brightness,
    contrast, saturation by factors in [1 - 0.8 s, 1 + 0.8 s], hue by up to 0.2 s turns, in a random
    order per image), then with probability 0.2 conversion to grayscale. A single-channel image gets
    the brightness and contrast jitter only (saturation, hue and grayscale do not exist for it)."""
    b, c = x.shape[:2]
    lo, hi = max(0.0, 1 - 0.8 * strength), 1 + 0.8 * strength
    factors = [_rand(gen, b, low=lo, high=hi) for _ in range(3)]
    delta = _rand(gen, b, low=-0.2 * strength, high=0.2 * strength)
    apply = _rand(gen, b) < 0.8
    to_gray = _rand(gen, b) < 0.2
    n_ops = 4 if c == 3 else 2
    order = torch.argsort(_rand(gen, b, n_ops), dim=1)

    def op(k: int, img: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if k == 0:   # brightness: scale the intensities
            return img * factors[0][rows].view(-1, 1, 1, 1).to(img)
        if k == 1:   # contrast: stretch around the image's mean luma
            mean = (_gray(img) if c == 3 else img).mean(dim=(1, 2, 3), keepdim=True)
            return (img - mean) * factors[1][rows].view(-1, 1, 1, 1).to(img) + mean
        if k == 2:   # saturation: blend with the grayscale image
            gray = _gray(img)
            return (img - gray) * factors[2][rows].view(-1, 1, 1, 1).to(img) + gray
        return _shift_hue(img, delta[rows].to(img))

    out = x
    for step in range(n_ops):      # a loop over the operations, each applied to the whole batch at once
        nxt = out.clone()
        for k in range(n_ops):
            rows = ((order[:, step] == k) & apply).nonzero().squeeze(1)
            if rows.numel():
                nxt[rows.to(x.device)] = op(k, out[rows.to(x.device)], rows).clamp(0, 1)
        out = nxt
    if c == 3:
        out = torch.where(to_gray.view(-1, 1, 1, 1).to(x.device), _gray(out).expand_as(out), out)
    return out


def simclr_augment(x: torch.Tensor, generator: torch.Generator, *, crop_scale: tuple[float, float] | None = None,
                   color_strength: float = 0.5, flip: bool | None = None) -> torch.Tensor:
    """One random SimCLR view of each image of a batch: crop and resize, flip, colour distortion.

    Vectorised over the batch: every random draw is made for all images at once.

    Parameters
    ----------
    x : Tensor of shape (B, C, H, W)
        Images with values in [0, 1], C = 1 or 3.
    generator : torch.Generator
        A CPU generator, the source of every random draw (two calls give two different views).
    crop_scale : (float, float), optional
        Range of the crop's area fraction (default: the paper's (0.08, 1)).
    color_strength : float, default 0.5
        Strength s of the colour distortion (the paper's CIFAR-10 value; 1.0 on ImageNet).
    flip : bool, optional
        Random horizontal flips with probability 0.5 (default: for colour images, as in the paper;
        not for single-channel images such as digits, which are not mirror-invariant).

    Returns
    -------
    Tensor of shape (B, C, H, W)
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"simclr_augment takes images of shape (B, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    color = x.shape[1] == 3
    lo, hi = crop_scale if crop_scale is not None else _SCALE
    lo = check_scalar(lo, "crop_scale[0]", float, min_val=0, max_val=1, include_min=False)
    hi = check_scalar(hi, "crop_scale[1]", float, min_val=lo, max_val=1)
    strength = check_scalar(color_strength, "color_strength", float, min_val=0)
    out = _random_resized_crop(x.float(), (lo, hi), generator)
    if color if flip is None else flip:
        mirror = (_rand(generator, x.shape[0]) < 0.5).view(-1, 1, 1, 1).to(x.device)
        out = torch.where(mirror, out.flip(-1), out)
    return _color_distort(out, strength, generator) if strength > 0 else out


class SimCLREncoder(nn.Module):
    """A frozen SimCLR encoder f: inputs as stored (flat or (N, C, H, W), uint8 or float) to h.

    Attributes
    ----------
    encoder : EmbeddingModel
        The trained network; its ``embed`` gives h.
    embedding_dim : int
        Width d of h.
    losses : tuple of float
        Mean NT-Xent loss of each pretraining epoch.
    """

    def __init__(self, encoder: EmbeddingModel, channels: int, image_shape: tuple[int, int, int], scale: float,
                 losses: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.encoder, self.channels, self.image_shape = encoder, channels, image_shape
        self.embedding_dim = int(encoder.embedding_dim)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.losses = tuple(losses)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """h of shape (N, embedding_dim) for inputs of shape (N, C, H, W) or (N, C * H * W)."""
        return self.encoder.embed(as_images(x, self.channels, self.image_shape) * self.scale)


def _as_image_array(X: Any, image_shape: tuple[int, ...] | None) -> tuple[tuple[int, int, int], float]:
    """Check ``X`` holds images; return their (C, H, W) and the factor that brings values to [0, 1]."""
    shape = getattr(X, "shape", None)
    dtype = getattr(X, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"X must be an array or a tensor of images, got {type(X).__name__}")
    if len(shape) == 4:
        img = tuple(int(v) for v in shape[1:])
    elif len(shape) == 3:
        img = (1, int(shape[1]), int(shape[2]))
    elif len(shape) == 2:
        if image_shape is not None:
            img = tuple(int(v) for v in image_shape)
        else:
            side = math.isqrt(int(shape[1]))
            if side * side != shape[1]:
                raise ValueError(f"X has {shape[1]} features per row, not a square single-channel image; pass "
                                 f"image_shape=(C, H, W) for flat images, or give X of shape (N, C, H, W)")
            img = (1, side, side)
    else:
        raise ValueError(f"X must hold images: shape (N, C, H, W), (N, H, W), or flat (N, C * H * W) with "
                         f"image_shape; got shape {tuple(shape)}")
    if len(img) != 3 or img[0] not in (1, 3) or min(img[1:]) < 8:
        raise ValueError(f"SimCLR needs images of 1 or 3 channels and at least 8x8 pixels, got (C, H, W) = {img}")
    if len(shape) == 2 and img[0] * img[1] * img[2] != shape[1]:
        raise ValueError(f"image_shape {img} does not match the {shape[1]} features of each row of X")
    if int(shape[0]) < 2:
        raise ValueError(f"SimCLR needs at least 2 images (the other images of a batch are the negatives), "
                         f"got {shape[0]}")
    is_uint8 = dtype in (np.uint8, torch.uint8)
    return img, (1.0 / 255.0 if is_uint8 else 1.0)


def _batch(X: Any, rows: np.ndarray, img: tuple[int, int, int], scale: float, device: torch.device) -> torch.Tensor:
    """Rows of ``X`` (read in index order, kind to memory maps) as float images in [0, 1]."""
    if isinstance(X, torch.Tensor):
        t = X[torch.from_numpy(rows)]
    else:
        arr = np.asarray(X[rows])
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return (t.to(device, torch.float32) * scale).reshape(len(rows), *img)


def _channel_stats(X: Any, img: tuple[int, int, int], scale: float, block: int = 4096) -> tuple[np.ndarray, ...]:
    """Per-channel mean, std, min and max of X in [0, 1] units, a block of rows at a time."""
    c = img[0]
    s1, s2 = np.zeros(c), np.zeros(c)
    lo, hi, count = np.inf, -np.inf, 0
    for start in range(0, int(X.shape[0]), block):
        b = _batch(X, np.arange(start, min(start + block, int(X.shape[0]))), img, scale, torch.device("cpu"))
        flat = b.double().transpose(0, 1).reshape(c, -1)
        s1 += flat.sum(1).numpy()
        s2 += (flat * flat).sum(1).numpy()
        lo, hi, count = min(lo, float(flat.min())), max(hi, float(flat.max())), count + flat.shape[1]
    mean = s1 / count
    std = np.sqrt(np.maximum(s2 / count - mean * mean, 0.0))
    return mean, np.where(std > 1e-6, std, 1.0), np.array(lo), np.array(hi)


def pretrain_simclr(X: Any, *, encoder: EmbeddingModel | None = None, image_shape: tuple[int, int, int] | None = None,
                    epochs: int = 30, batch_size: int = 256, temperature: float = 0.5, lr: float = 1e-3,
                    weight_decay: float = 1e-6, projection_dim: int = 128,
                    crop_scale: tuple[float, float] | None = None, color_strength: float = 0.5,
                    flip: bool | None = None, seed: int = 0,
                    device: str | torch.device = "cpu", progress: bool = False) -> SimCLREncoder:
    """Train an encoder on unlabelled images with SimCLR and return it frozen.

    Algorithm 1 of Chen et al. (ICML 2020): each epoch visits the images in a random order in
    minibatches of N; two views of each image (:func:`simclr_augment`) go through the encoder f and
    the projection head g (:class:`ProjectionHead`), and f and g take a step on the NT-Xent loss
    (:func:`nt_xent`). The paper's LARS optimiser (lr 0.3 N / 256, weight decay 1e-6, 10 warm-up
    epochs, cosine decay) is for batches of 4,096; here Adam with the paper's weight decay and
    cosine decay (no warm-up) trains the small batches a CPU affords (see the module docstring).

    Parameters
    ----------
    X : array or tensor of shape (N, C, H, W), (N, H, W) or (N, C * H * W)
        The images, without labels: uint8 in 0..255 or floats in [0, 1]; C = 1 or 3.
    encoder : EmbeddingModel, optional
        f, any model with ``embed(x) -> (B, d)`` on (B, C, H, W) images in [0, 1] and an
        ``embedding_dim``; a copy is trained. Default: a fresh :class:`~activebatch.learning.models.CNN`
        for the images' shape (d = 128), standardising its input with the pool's channel statistics.
    image_shape : (C, H, W), optional
        The shape of a flat row of X (default: a square single-channel image).
    epochs : int, default 30
        Passes over X (30 take about two minutes on one CPU core for 4,000 28x28 digits).
    batch_size : int, default 256
        N, the images of a minibatch (2N views; each positive pair has 2(N - 1) negatives).
    temperature : float, default 0.5
        tau of NT-Xent (the authors' CIFAR-10 value).
    lr : float, default 1e-3
        Adam's learning rate, decayed to 0 along a cosine over the run.
    weight_decay : float, default 1e-6
        The paper's weight decay.
    projection_dim : int, default 128
        Output width of g (the paper's 128).
    crop_scale, color_strength, flip
        The augmentation (:func:`simclr_augment`).
    seed : int, default 0
        Seeds the encoder's and head's initialisation, the batch order and every augmentation;
        the same seed gives the same encoder on a CPU.
    device : str or torch.device, default "cpu"
        Where to train; the returned encoder stays there.
    progress : bool, default False
        Show a progress bar over the epochs with the running loss.

    Returns
    -------
    SimCLREncoder
        In eval mode with ``requires_grad`` off: maps a batch of X's rows (as stored) to h of shape
        (B, d); ``losses`` holds each epoch's mean loss.
    """
    img, scale = _as_image_array(X, image_shape)
    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=2)
    temperature = check_scalar(temperature, "temperature", float, min_val=0, include_min=False)
    lr = check_scalar(lr, "lr", float, min_val=0, include_min=False)
    weight_decay = check_scalar(weight_decay, "weight_decay", float, min_val=0)
    projection_dim = check_scalar(projection_dim, "projection_dim", int, min_val=1)
    seed = check_scalar(seed, "seed", int, min_val=0)
    if encoder is not None and not (callable(getattr(encoder, "embed", None)) and hasattr(encoder, "embedding_dim")):
        raise TypeError(f"encoder must be an EmbeddingModel (embed(x) and embedding_dim), got {type(encoder).__name__}")
    dev = torch.device(device)
    mean, std, lo, hi = _channel_stats(X, img, scale)
    if lo < 0 or hi > 1 + 1e-6:
        raise ValueError(f"X must hold uint8 images or floats in [0, 1] (the colour distortion works on that "
                         f"range); its values lie in [{float(lo):.4g}, {float(hi):.4g}]: rescale them first")
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        # the initialisation is drawn from the seed without touching the caller's global stream
        torch.manual_seed(seed)
        f = (CNN(img[0], input_shape=img, mean=mean, std=std) if encoder is None else copy.deepcopy(encoder)).to(dev)
        g = ProjectionHead(int(f.embedding_dim), out_features=projection_dim).to(dev)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in f.parameters() if p.requires_grad] + list(g.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = int(X.shape[0])
    # a last batch of one image has no negatives: it joins the next epoch's draw instead
    per_epoch = n // batch_size + (1 if n % batch_size >= 2 else 0)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    losses: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="SimCLR", unit="epoch")
    f.train()
    g.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).numpy()
            running, seen = 0.0, 0
            for start in range(0, per_epoch * batch_size, batch_size):
                rows = np.sort(order[start:start + batch_size])
                x = _batch(X, rows, img, scale, dev)
                v1 = simclr_augment(x, gen, crop_scale=crop_scale, color_strength=color_strength, flip=flip)
                v2 = simclr_augment(x, gen, crop_scale=crop_scale, color_strength=color_strength, flip=flip)
                loss = nt_xent(g(f.embed(v1)), g(f.embed(v2)), temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running, seen = running + float(loss.detach()) * len(rows), seen + len(rows)
            losses.append(running / seen)
            if bar is not None:
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    out = SimCLREncoder(f, img[0], img, scale, tuple(losses)).eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out
