"""Every figure activebatch draws (matplotlib on the Agg backend, no display needed), from frames.

Learning curves of a run or a demo (:mod:`.curves`), the protocol's figures for reports
(:mod:`.protocol`), and a workspace's learning curve.
"""
from .curves import learning_curve_table, plot_learning_curves
from .protocol import plot_cdf, plot_class_entropy, plot_learning_curves_grid, plot_penalty_matrix, plot_times
from .workspace import plot_workspace_curve

__all__ = ["learning_curve_table", "plot_cdf", "plot_class_entropy", "plot_learning_curves",
           "plot_learning_curves_grid", "plot_penalty_matrix", "plot_times", "plot_workspace_curve"]
