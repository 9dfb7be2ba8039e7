"""Argument types shared by the commands (plain Python: the parser imports nothing heavy)."""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["int_at_least", "key_value", "positive_int", "seed_int"]


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``, with a message saying so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value

    parse.__name__ = f"integer >= {low}"   # argparse names the type in its messages
    return parse


positive_int = int_at_least(1)
seed_int = int_at_least(0)


def key_value(text: str) -> tuple[str, Any]:
    """An argparse type: ``KEY=VALUE``, the value read as JSON when it parses (numbers, true,
    lists), else kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed
