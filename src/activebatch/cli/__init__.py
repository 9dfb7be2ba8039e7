"""The ``activebatch`` command line (nothing heavy is imported before the arguments are parsed)."""
from .main import main

__all__ = ["main"]
