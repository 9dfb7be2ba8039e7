"""Helpers shared by every layer above the kernels: input validation and SQLite connections."""
