"""Pure tensor algorithms for selection: no model, pool or strategy knowledge.

Every kernel works on CPU and CUDA tensors alike (the device follows the inputs) and takes its
randomness from an explicit :class:`numpy.random.Generator`.
"""
from .batchbald import (
    BatchBALDResult,
    BatchBALDSaturationWarning,
    bald_scores,
    expected_entropy,
    greedy_batchbald,
    joint_mutual_information,
    predictive_entropy,
)
from .gradient_embedding import gradient_embedding_factors, gradient_embedding_sqdist, gradient_embedding_sqnorms
from .kcenter import kcenter_greedy, min_sqdist_to_centers
from .kmeanspp import kmeanspp_gradient, sample_d2

__all__ = [
    "BatchBALDResult",
    "BatchBALDSaturationWarning",
    "bald_scores",
    "greedy_batchbald",
    "expected_entropy",
    "joint_mutual_information",
    "predictive_entropy",
    "gradient_embedding_factors",
    "gradient_embedding_sqdist",
    "gradient_embedding_sqnorms",
    "kcenter_greedy",
    "kmeanspp_gradient",
    "min_sqdist_to_centers",
    "sample_d2",
]
