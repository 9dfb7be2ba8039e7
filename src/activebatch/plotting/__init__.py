"""Every figure activebatch draws (matplotlib, no display needed), from results frames."""
from .curves import learning_curve_table, plot_learning_curves

__all__ = ["learning_curve_table", "plot_learning_curves"]
