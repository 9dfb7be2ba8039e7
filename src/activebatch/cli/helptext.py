"""Plain data the command line's parser is built from.

The parser (and so ``activebatch --help`` and every sub-command's ``--help``) must not import
torch, which the registries these lists mirror do. ``tests/test_cli_startup.py`` checks that they
agree with :func:`activebatch.cli.select.array_fields` and
:func:`activebatch.cli.select.file_strategies`.
"""
from __future__ import annotations

__all__ = ["ARRAY_FIELDS", "FILE_STRATEGIES"]

#: Evidence fields that can be given as files (the tensor fields of
#: :data:`activebatch.learning.evidence.FIELDS`), with their descriptions, in that order.
ARRAY_FIELDS: dict[str, str] = {
    "probs": "(N, K) softmax outputs on the candidates",
    "embeddings": "(N, d) penultimate-layer outputs on the candidates",
    "labeled_embeddings": "(L, d) penultimate-layer outputs on the labeled items",
    "mc_probs": "(S, N, K) softmax outputs of S stochastic forward passes with consistent dropout masks, "
                "or of the S members of a committee",
    "labeled_probs": "(L, K) softmax outputs on the labeled items",
    "labels": "(L,) class labels of the labeled items",
    "target_mc_probs": "(S, T, K) the same S stochastic passes (or members) on T target inputs",
}

#: Registered strategies whose evidence can all be given as files, in name order.
FILE_STRATEGIES: tuple[str, ...] = (
    "albl", "badge", "bait", "bald", "batchbald", "cal", "clue", "cluster_margin", "consensus_entropy", "coreset",
    "discriminative", "diverse_minibatch", "egl", "entropy", "entropy_dropout", "epig",
    "information_density", "kdpp", "kl_divergence", "least_confidence",
    "least_confidence_dropout", "margin", "margin_dropout", "mean_std", "probcover", "random",
    "ranked_batch", "suggestive_annotation", "typiclust", "var_ratio", "vote_entropy",
)
