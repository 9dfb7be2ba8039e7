"""The Learner: trains a model from scratch on the labeled set and produces Evidence."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..datasets.pool import Pool
from ..utils.validation import check_features, check_labels, check_scalar
from .callbacks import BatchState, Callback, FitState
from .evidence import Evidence
from .models.base import EmbeddingModel
from .reinit import reinitialise

__all__ = ["Learner", "FitResult", "resolve_device"]

#: Optimisers known by name (Learner's ``optimizer``).
_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
}


def _check_callbacks(callbacks: Sequence[Callback] | None) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    out = list(callbacks)
    bad = [type(c).__name__ for c in out if not isinstance(c, Callback)]
    if bad:
        raise TypeError(f"callbacks must be activebatch.learning.Callback instances, got {', '.join(bad)}")
    return out


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
    ``torch.device`` as given (an unknown name is refused, naming the accepted ones)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def _builtin_callbacks(model: nn.Module) -> list[Callback]:
    """The callbacks a model brings itself: the KL term of Bayes by Backprop for Bayesian layers."""
    from .models.bayesian import KLDivergenceLoss, bayesian_layers

    return [KLDivergenceLoss()] if bayesian_layers(model) else []


def _has_mc_samples(model: nn.Module) -> bool:
    """Whether the model offers ``mc_probs``: dropout before its head, or a Bayesian head."""
    from .mc_dropout import head_dropout
    from .models.bayesian import has_bayesian_head

    return head_dropout(model) > 0.0 or has_bayesian_head(model)


def _channels_last(model: nn.Module) -> nn.Module:
    """Store a convolutional model's 4-D weights channels-last (NHWC).

    The same network and arithmetic; oneDNN's and cuDNN's NHWC convolution and pooling kernels
    take 25-30% less time per training step of the library's CNN and ResNet-18 on one CPU
    thread (benchmarks/loop.py). Only the summation order inside a convolution changes.
    """
    if any(p.dim() == 4 for p in model.parameters()):
        model.to(memory_format=torch.channels_last)
    return model


def _fusable(params: Sequence[torch.Tensor]) -> bool:
    """Whether the fused optimiser kernels (CPU and CUDA, floating point) take these parameters."""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


@dataclass
class FitResult:
    """What one call of :meth:`Learner.fit` did."""

    epochs: int
    train_accuracy: float
    seconds: float
    reached_target: bool


class Learner:
    """Trains a model with Adam from a fresh initialisation and computes Evidence.

    Follows the BADGE paper's protocol (Ash et al., ICLR 2020, section 4): every call of
    :meth:`fit` re-initialises the model and trains it from scratch with Adam, mini-batches of
    ``batch_size``, until the training accuracy of an epoch reaches ``target_accuracy`` or
    ``max_epochs`` have run. The training accuracy of an epoch is measured on the mini-batches as
    they are trained on, as the authors' code does.

    Parameters
    ----------
    model : torch.nn.Module
        Has ``embed(x)`` (penultimate embedding) and a final ``nn.Linear`` named ``head``;
        see :class:`activebatch.learning.models.EmbeddingModel`.
    lr : float, default 1e-3
        Adam learning rate (the paper uses 1e-3 for images and 1e-4 for tabular data).
    batch_size : int, default 64
    max_epochs : int, default 200
    target_accuracy : float, default 0.99
    weight_decay : float, default 0.0
    device : str or torch.device, default "auto"
        "auto" uses CUDA when present.
    eval_batch_size : int, default 1024
        Rows per forward pass when computing evidence, predictions and embeddings.
    extractor : torch.nn.Module, optional
        A frozen feature extractor (e.g. a pretrained network without its classifier) applied to
        every input before ``model``; it stays in eval mode, is never trained or re-initialised,
        and ``model`` (e.g. :class:`~activebatch.learning.models.LinearHead` or an MLP) is trained on its
        outputs. For features computed once beforehand, give the pool the feature matrix instead
        (see :func:`activebatch.learning.models.extract_features`, which can write a memory-mapped ``.npy``).
    mc_samples : int, default 20
        Number S of MC samples in the ``mc_probs`` evidence (models with dropout before the head
        or a Bayesian head; see :meth:`mc_probs`).
    optimizer : {"adam", "adamw", "sgd"} or callable, default "adam"
        The optimiser, or ``factory(params, lr=..., weight_decay=..., **optimizer_options)``
        returning a ``torch.optim.Optimizer`` (e.g. ``torch.optim.RMSprop``). A named optimiser
        runs PyTorch's fused implementation (``fused=True``: the same update, in one kernel for
        all parameters) unless ``optimizer_options`` sets ``fused`` or ``foreach``; its weights
        agree with the per-parameter implementation to float rounding (about 1e-7 after a few
        steps), not bit for bit.
    optimizer_options : dict, optional
        Further optimiser arguments (e.g. ``{"momentum": 0.9}`` for SGD, ``{"fused": False}``
        for PyTorch's per-parameter update).
    callbacks : list of Callback, optional
        Training callbacks (:mod:`activebatch.learning.callbacks`) called during every fit:
        extra loss terms, extra modules sharing the backbone's features, learning-rate
        schedules, per-epoch predictions, early stopping.
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3, batch_size: int = 64, max_epochs: int = 200,
                 target_accuracy: float = 0.99, weight_decay: float = 0.0, device: str | torch.device = "auto",
                 eval_batch_size: int = 1024, extractor: nn.Module | None = None, mc_samples: int = 20,
                 optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
                 optimizer_options: dict[str, Any] | None = None, callbacks: Sequence[Callback] | None = None) -> None:
        if not hasattr(model, "embed") or not isinstance(getattr(model, "head", None), nn.Linear):
            raise TypeError("model must have an embed(x) method and a final nn.Linear named 'head' "
                            "(see activebatch.learning.models.EmbeddingModel)")
        lr = check_scalar(lr, "lr", float, min_val=0, include_min=False)
        batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
        max_epochs = check_scalar(max_epochs, "max_epochs", int, min_val=1)
        eval_batch_size = check_scalar(eval_batch_size, "eval_batch_size", int, min_val=1)
        target_accuracy = check_scalar(target_accuracy, "target_accuracy", float, min_val=0, include_min=False,
                                       max_val=1)
        weight_decay = check_scalar(weight_decay, "weight_decay", float, min_val=0)
        self.mc_samples = check_scalar(mc_samples, "mc_samples", int, min_val=1)
        if not (callable(optimizer) or optimizer in _OPTIMIZERS):
            raise ValueError(f"optimizer must be one of {', '.join(map(repr, _OPTIMIZERS))} or a callable "
                             f"(params, lr=..., weight_decay=...) -> torch.optim.Optimizer; got {optimizer!r}")
        self.optimizer = optimizer
        self.optimizer_options = dict(optimizer_options or {})
        self.callbacks = _check_callbacks(callbacks)
        self._last_seed = 0
        self.device = resolve_device(device)
        self.model = _channels_last(model).to(self.device)
        if extractor is not None and not isinstance(extractor, nn.Module):
            raise TypeError(f"extractor must be a torch.nn.Module, got {type(extractor).__name__}")
        self.extractor = None if extractor is None else extractor.to(self.device).eval().requires_grad_(False)
        self.lr, self.batch_size, self.max_epochs = lr, batch_size, max_epochs
        self.target_accuracy, self.weight_decay = target_accuracy, weight_decay
        self.eval_batch_size = eval_batch_size
        self.n_classes = int(model.head.out_features)
        self.last_fit: FitResult | None = None
        #: What training callbacks left for the strategies in the last :meth:`fit` (a loss-prediction
        #: module, per-epoch predictions, ...), keyed by the strategy's name; emptied by every fit.
        self.fit_artifacts: dict[str, Any] = {}

    # Training -----------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Re-initialise the model's parameters from ``seed`` (on the CPU, so every device
        starts from the same weights)."""
        self.model.to("cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            reinitialise(self.model)
        self.model.to(self.device)

    def fit(self, X: Any, y: Any, *, seed: int = 0, callbacks: Sequence[Callback] | None = None) -> FitResult:
        """Re-initialise the model and train it from scratch on (X, y).

        Parameters
        ----------
        X : array of shape (n, ...)
        y : array of int, shape (n,)
        seed : int
            Seeds the initial weights, the mini-batch order and dropout.
        callbacks : list of Callback, optional
            Called in this fit after the learner's own ``callbacks`` (e.g. the training
            callbacks of a strategy, :meth:`Strategy.training_callbacks`).
        """
        check_features(X, "X")
        self.check_inputs(X, "X")
        X_t = self._to_tensor(X)
        y_np = check_labels(y, "y", rows=X_t.shape[0])
        if y_np.size == 0:
            raise ValueError("fit needs at least one labeled example, got none")
        if y_np.max() >= self.n_classes:
            raise ValueError(f"y holds label {int(y_np.max())} but the model has {self.n_classes} outputs")
        y_t = torch.as_tensor(y_np, device=self.device)
        cbs = _builtin_callbacks(self.model) + self.callbacks + _check_callbacks(callbacks)
        start = time.perf_counter()
        self.reset(seed)
        self._last_seed = int(seed)
        self.fit_artifacts = {}
        n = X_t.shape[0]
        opt = self._make_optimizer([p for p in self.model.parameters() if p.requires_grad])
        gen = torch.Generator().manual_seed(seed)
        loss_fn = nn.CrossEntropyLoss()
        fit = FitState(self, self.model, opt, X_t, y_t, int(seed))
        forward = self._training_forward()
        # The optimiser's own zero_grad costs about 25 us a step in wrappers (a tenth of a small MLP's
        # step); setting the gradients to None is what zero_grad(set_to_none=True) does.
        params: list[torch.Tensor] = []
        n_groups = -1
        self.model.train()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)  # dropout masks
            for cb in cbs:
                cb.on_fit_start(fit)
            while fit.epoch < self.max_epochs and fit.train_accuracy < self.target_accuracy and not fit.stop:
                fit.epoch += 1
                for cb in cbs:
                    cb.on_epoch_start(fit)
                perm = torch.randperm(n, generator=gen).to(self.device)
                # counted on the device: a per-batch int() would wait for the device at every step
                correct = torch.zeros((), dtype=torch.int64, device=self.device)
                total_loss, terms = 0.0, {}
                for start_b in range(0, n, self.batch_size):
                    b = perm[start_b:start_b + self.batch_size]
                    xb, yb = X_t[b], y_t[b]
                    out, embed = forward(xb)
                    batch = BatchState(b, xb, yb, out, loss_fn(out, yb), fit.step, _embed=embed)
                    for cb in cbs:
                        cb.on_batch(fit, batch)
                    loss = batch.total_loss
                    if len(opt.param_groups) != n_groups:   # a callback may add a group (FitState.add_params)
                        n_groups = len(opt.param_groups)
                        params = [p for group in opt.param_groups for p in group["params"]]
                    for p in params:
                        p.grad = None
                    loss.backward()
                    opt.step()
                    fit.step += 1
                    correct += (out.argmax(1) == yb).sum()
                    if cbs:   # the epoch's mean losses, only when someone can read them
                        total_loss += float(loss.detach()) * len(b)
                        for key, value in batch.extra_losses.items():
                            terms[key] = terms.get(key, 0.0) + float(value.detach()) * len(b)
                    for cb in cbs:
                        cb.on_batch_end(fit, batch)
                fit.train_accuracy = int(correct) / n
                fit.epoch_loss = total_loss / n
                fit.history.append({"epoch": fit.epoch, "train_accuracy": fit.train_accuracy, "loss": fit.epoch_loss,
                                    **{k: v / n for k, v in terms.items()}})
                for cb in cbs:
                    cb.on_epoch_end(fit)
            self.model.eval()
            for cb in cbs:
                cb.on_fit_end(fit)
        acc = fit.train_accuracy
        self.last_fit = FitResult(fit.epoch, acc, time.perf_counter() - start, acc >= self.target_accuracy)
        return self.last_fit

    def _make_optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        factory = _OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer
        options = dict(self.optimizer_options)
        if isinstance(self.optimizer, str) and not {"fused", "foreach"} & set(options) and _fusable(params):
            # The fused kernel is the same update in one pass over all parameters: about 30% of a
            # small model's step is the per-parameter update loop otherwise.
            options["fused"] = True
        opt = factory(params, lr=self.lr, weight_decay=self.weight_decay, **options)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory returned {type(opt).__name__}, not a torch.optim.Optimizer")
        return opt

    def _training_forward(self) -> Callable[[torch.Tensor], tuple[torch.Tensor, Callable[[], torch.Tensor]]]:
        """(logits, embeddings-on-demand) of a mini-batch.

        For the library's models, forward(x) is head(embed(x)): the embeddings are kept from the
        same pass (so a loss term on them shares its dropout mask and graph). Other models run
        their own forward, and their embeddings cost a second pass when a callback asks.
        """
        model = self.model
        if type(model).forward is EmbeddingModel.forward:
            def shared(xb: torch.Tensor):
                z = model.embed(xb)
                return model.head(z), (lambda: z)
            return shared
        return lambda xb: (model(xb), (lambda: model.embed(xb)))

    # Inference ------------------------------------------------------------------------------
    def _to_tensor(self, X: Any) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            t = X
        else:
            arr = np.ascontiguousarray(np.asarray(X))
            t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())   # read-only memmaps
        if t.ndim < 2:
            raise ValueError(f"X must have shape (n, n_features...), got {tuple(t.shape)}")
        if self.device.type == "cuda" and t.device.type == "cpu":
            # page-locked rows copy to the device asynchronously, overlapping the previous chunk's work
            t = t.pin_memory().to(self.device, non_blocking=True)
        if self.extractor is None:
            return t.to(self.device, torch.float32)
        with torch.no_grad():   # frozen extractor: its outputs are the model's inputs
            parts = [self.extractor(t[i:i + self.eval_batch_size].to(self.device, torch.float32)).flatten(1)
                     for i in range(0, t.shape[0], self.eval_batch_size)]
        return torch.cat(parts) if parts else torch.empty(0, 0, device=self.device)

    @torch.no_grad()
    def outputs(self, X: Any, *, probs: bool = True, embeddings: bool = True
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Softmax outputs (n, K) and embeddings (n, d) of the model in eval mode, on its device.

        Rows of ``X`` (an array, memory-mapped array or tensor) are moved to the device
        ``eval_batch_size`` at a time, so only one chunk of inputs is resident at once.
        """
        self.model.eval()
        n = int(X.shape[0])
        # written chunk by chunk into their final tensors: no list of parts concatenated (a second
        # copy of the pool's outputs) at the end
        P = Z = None
        for start in range(0, n, self.eval_batch_size):
            xb = self._to_tensor(X[start:start + self.eval_batch_size])
            z = self.model.embed(xb)
            rows = slice(start, start + z.shape[0])
            if embeddings:
                Z = torch.empty(n, z.shape[1], dtype=z.dtype, device=z.device) if Z is None else Z
                Z[rows] = z
            if probs:
                p = torch.softmax(self.model.head(z), dim=1)
                P = torch.empty(n, p.shape[1], dtype=p.dtype, device=p.device) if P is None else P
                P[rows] = p
        if probs and P is None:
            P = torch.empty(0, self.n_classes, device=self.device)
        if embeddings and Z is None:
            Z = torch.empty(0, int(self.model.head.in_features), device=self.device)
        return P, Z

    @torch.no_grad()
    def mc_probs(self, X: Any, *, samples: int | None = None, seed: int = 0) -> torch.Tensor:
        """Consistent MC-dropout samples: softmax outputs of S stochastic passes, (S, n, K).

        The S dropout masks on the embedding (the model's ``dropout`` before its head) are drawn
        once from ``seed`` and shared by every row, so a row's S predictions do not depend on
        the other rows or on the chunking (Kirsch et al., NeurIPS 2019, consistent MC dropout;
        see :mod:`activebatch.learning.mc_dropout`). Rows are processed ``eval_batch_size`` at a time.

        A Bayesian head (:class:`~activebatch.learning.models.BayesianLinear`, Bayes by Backprop)
        is sampled the same way: S weight samples drawn once from ``seed`` and shared by every row,
        sample s giving softmax(z W_s^T + b_s) (with mask s applied to z as well when the model also
        has dropout before its head).

        Parameters
        ----------
        X : array of shape (n, ...)
        samples : int, optional
            S; default ``mc_samples``.
        seed : int, default 0
            Seeds the masks (and a Bayesian head's weight samples).
        """
        from .mc_dropout import consistent_masks, head_dropout, mc_head_probs
        from .models.bayesian import has_bayesian_head, mc_weight_probs

        p = head_dropout(self.model)
        bayesian = has_bayesian_head(self.model)
        if p <= 0.0 and not bayesian:
            raise ValueError("MC samples need a model with dropout before its head (an nn.Dropout named "
                             "'dropout' with p > 0, e.g. MLP(..., dropout=0.5)) or a Bayesian head "
                             "(e.g. MLP(..., bayesian=True))")
        S = self.mc_samples if samples is None else int(samples)
        if S < 1:
            raise ValueError(f"samples must be >= 1, got {S}")
        masks = consistent_masks(int(self.model.head.in_features), S, p, seed, device=self.device) if p > 0 else None
        n = int(X.shape[0])
        if bayesian:
            # a seed of its own, so that the weight noise is not drawn from the masks' stream
            W, b = self.model.head.sample_weights(S, int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0]))

        def sampled(z: torch.Tensor) -> torch.Tensor:
            return mc_weight_probs(z, W, b, masks) if bayesian else mc_head_probs(z, self.model.head, masks)

        parts = [sampled(self.outputs(X[i:i + self.eval_batch_size], probs=False)[1])
                 for i in range(0, n, self.eval_batch_size)]
        return torch.cat(parts, dim=1) if parts else torch.empty(S, 0, self.n_classes, device=self.device)

    # Results that leave as numpy arrays are computed in inference mode (no autograd bookkeeping at
    # all); ``outputs`` stays in no_grad, because strategies may feed its tensors to modules they train.
    @torch.inference_mode()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax outputs, a numpy array of shape (n, K)."""
        return self.outputs(X, embeddings=False)[0].cpu().numpy()

    @torch.inference_mode()
    def predict(self, X: Any) -> np.ndarray:
        """Predicted class indices, shape (n,)."""
        return self.outputs(X, embeddings=False)[0].argmax(1).cpu().numpy()

    @torch.inference_mode()
    def embed(self, X: Any) -> np.ndarray:
        """Penultimate-layer embeddings, a numpy array of shape (n, d)."""
        return self.outputs(X, probs=False)[1].cpu().numpy()

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y)."""
        y_np = check_labels(y, "y", rows=int(X.shape[0]))
        if y_np.size == 0:
            raise ValueError("score needs at least one example")
        if y_np.max() >= self.n_classes:   # such a label can never be predicted: accuracy would be wrong
            raise ValueError(f"y holds label {int(y_np.max())} but the model has {self.n_classes} classes "
                             f"(labels 0..{self.n_classes - 1})")
        return float((self.predict(X) == y_np).mean())

    @torch.no_grad()
    def check_inputs(self, X: Any, name: str = "X") -> None:
        """Run the model on the first rows of ``X`` (eval mode) and turn a shape mismatch into a
        ``ValueError`` naming the input shape, before any training starts."""
        rows = X[:2]
        was_training = self.model.training
        self.model.eval()
        try:
            self.model(self._to_tensor(rows))
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ValueError(f"the model cannot take {name}: its rows have shape {tuple(X.shape[1:])}, and the "
                             f"model ({type(self.model).__name__}) failed on them: {exc}") from None
        finally:
            self.model.train(was_training)

    def evidence(self, pool: Pool, *, mc_seed: int | None = None, targets: Any = None,
                 n_targets: int = 1000) -> Evidence:
        """Evidence on the pool's unlabeled items, each field computed only when a strategy
        reads it (probs and embeddings share one forward pass, as do the labeled items' probs
        and embeddings).

        Models with dropout before the head or a Bayesian head also offer ``mc_probs``
        (``mc_samples`` consistent MC samples, see :meth:`mc_probs`), seeded by ``mc_seed`` (default:
        the seed of the last :meth:`fit`), and ``target_mc_probs``: the same samples on target
        inputs, ``targets`` (pool indices) or by default ``n_targets`` items drawn uniformly from
        the whole pool with that seed (the default of EPIG's authors, who sample targets from the
        pool when no separate target set is given).
        """
        cand = pool.unlabeled_indices
        lab = pool.labeled_indices
        cache: dict[str, torch.Tensor] = {}
        lab_cache: dict[str, torch.Tensor] = {}

        def candidate_outputs(key: str):
            def compute() -> torch.Tensor:
                if not cache:
                    cache.update(zip(self._shared_fields, self._candidate_forward(_Rows(pool, cand))))
                return cache.pop(key)
            return compute

        def labeled_outputs(key: str):
            def compute() -> torch.Tensor:
                if not lab_cache:
                    lab_cache.update(zip(("labeled_probs", "labeled_embeddings"), self.outputs(_Rows(pool, lab))))
                return lab_cache.pop(key)
            return compute

        fields = {key: candidate_outputs(key) for key in self._shared_fields}
        fields.setdefault("mc_probs", self._mc_provider(pool, cand, mc_seed))
        if "target_mc_probs" in self.evidence_fields():
            # the target rows are drawn only if a strategy reads the field (given ones checked now)
            given = None if targets is None else self._targets(pool, targets, n_targets, mc_seed)
            fields["target_mc_probs"] = lambda: self._mc_provider(
                pool, given if given is not None else self._targets(pool, None, n_targets, mc_seed), mc_seed)()
        return Evidence(
            len(cand), candidate_ids=cand,
            labeled_embeddings=labeled_outputs("labeled_embeddings"), labeled_probs=labeled_outputs("labeled_probs"),
            labels=lambda: torch.as_tensor(pool.labels[lab]), learner=self, pool=pool, **fields,
        )

    def _targets(self, pool: Pool, targets: Any, n_targets: int, seed: int | None) -> np.ndarray:
        if targets is not None:
            idx = np.asarray(targets, dtype=np.int64).reshape(-1)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= len(pool):
                raise ValueError(f"targets must be pool indices in 0..{len(pool) - 1}")
            return idx
        n_targets = check_scalar(n_targets, "n_targets", int, min_val=1)
        rng = np.random.default_rng([self._last_seed if seed is None else int(seed), 1])
        return np.sort(rng.choice(len(pool), size=min(n_targets, len(pool)), replace=False))

    def evidence_fields(self) -> frozenset[str]:
        """The Evidence fields :meth:`evidence` can supply with this model (known before training:
        ``mc_probs`` only for a model with dropout before its head or a Bayesian head)."""
        fields = {"probs", "embeddings", "labeled_embeddings", "labeled_probs", "labels", "learner", "pool"}
        if _has_mc_samples(self.model):
            fields |= {"mc_probs", "target_mc_probs"}
        return frozenset(fields)

    #: Evidence fields that one forward pass over the candidates yields together.
    _shared_fields: tuple[str, ...] = ("probs", "embeddings")

    def _candidate_forward(self, X: Any) -> tuple[torch.Tensor, ...]:
        """The fields of ``_shared_fields`` for rows X, in that order, from one forward pass."""
        return self.outputs(X)

    def _mc_provider(self, pool: Pool, cand: np.ndarray, seed: int | None):
        if not _has_mc_samples(self.model):
            return None
        seed = self._last_seed if seed is None else int(seed)
        return lambda: self.mc_probs(_Rows(pool, cand), seed=seed)

    def __repr__(self) -> str:
        return (f"Learner({type(self.model).__name__}, lr={self.lr}, batch_size={self.batch_size}, "
                f"max_epochs={self.max_epochs}, device={self.device})")


class _Rows:
    """Read-only row view of a pool's features at given indices (sliced lazily)."""

    def __init__(self, pool: Pool, indices: np.ndarray) -> None:
        self.pool, self.indices = pool, indices
        self.shape = (len(indices),) + tuple(pool.X.shape[1:])

    def __getitem__(self, sl: slice) -> np.ndarray:
        return self.pool.features(self.indices[sl])
