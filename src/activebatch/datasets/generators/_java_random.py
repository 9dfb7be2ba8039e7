"""``java.util.Random``, bit for bit: a scalar version and a vectorised stream of its states.

The generator is the 48-bit linear congruential generator of Knuth, TAOCP vol. 2, section 3.2.1,
as specified by the Java SE API documentation of ``java.util.Random``:
``seed <- (seed * 0x5DEECE66D + 0xB) mod 2**48``, ``next(bits) = seed >> (48 - bits)``,
``nextDouble() = ((next(26) << 27) + next(27)) / 2**53``, ``nextGaussian()`` by Marsaglia's
polar method with the second value cached. MOA's generators draw from it, so reproducing it
reproduces their streams.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["JavaRandom", "state_stream", "doubles_at"]

_MULT = 0x5DEECE66D
_ADD = 0xB
_MASK = (1 << 48) - 1


class JavaRandom:
    """Scalar ``java.util.Random`` (for the few draws that set up a generator's model)."""

    def __init__(self, seed: int) -> None:
        self.seed = (int(seed) ^ _MULT) & _MASK
        self._next_gaussian: float | None = None

    def next(self, bits: int) -> int:
        self.seed = (self.seed * _MULT + _ADD) & _MASK
        value = self.seed >> (48 - bits)
        return value - (1 << 32) if bits == 32 and value >= 1 << 31 else value

    def next_int(self, bound: int | None = None) -> int:
        if bound is None:
            return self.next(32)
        if bound <= 0:
            raise ValueError("bound must be positive")
        if bound & -bound == bound:
            return (bound * self.next(31)) >> 31
        while True:
            bits = self.next(31)
            val = bits % bound
            if bits - val + (bound - 1) < 1 << 31:
                return val

    def next_double(self) -> float:
        return ((self.next(26) << 27) + self.next(27)) * 2.0 ** -53

    def next_gaussian(self) -> float:
        if self._next_gaussian is not None:
            g, self._next_gaussian = self._next_gaussian, None
            return g
        while True:
            v1 = 2 * self.next_double() - 1
            v2 = 2 * self.next_double() - 1
            s = v1 * v1 + v2 * v2
            if 0 < s < 1:
                break
        mult = math.sqrt(-2 * math.log(s) / s)
        self._next_gaussian = v2 * mult
        return v1 * mult


def state_stream(seed: int, n: int) -> np.ndarray:
    """The first ``n`` states of ``new Random(seed)``, after 1, 2, ..., n calls of ``next``.

    Built by doubling: the k-step map is affine, ``s -> A_k s + C_k (mod 2**48)``, so a block of
    k states gives the next k in one vectorised multiply-add (uint64 arithmetic wraps modulo
    2**64, a multiple of 2**48).
    """
    states = np.array([(((int(seed) ^ _MULT) & _MASK) * _MULT + _ADD) & _MASK], dtype=np.uint64)
    a, c = _MULT, _ADD                         # coefficients of the len(states)-step map
    mask = np.uint64(_MASK)
    while states.size < n:
        more = (states * np.uint64(a) + np.uint64(c)) & mask
        states = np.concatenate([states, more])
        a, c = (a * a) & _MASK, (a * c + c) & _MASK
    return states[:n]


def doubles_at(states: np.ndarray) -> np.ndarray:
    """``d[k]`` = the ``nextDouble()`` drawn after k calls of ``next`` (uses states k and k+1).

    Returns an array one shorter than ``states``.
    """
    hi = (states[:-1] >> np.uint64(22)).astype(np.int64)
    lo = (states[1:] >> np.uint64(21)).astype(np.int64)
    return ((hi << 27) + lo) * 2.0 ** -53
