"""Selection over a candidate pool split into shards that no single machine holds, on Ray.

A :class:`Shards` names the pool's row shards: for each evidence field a list of ``.npy`` files
(shard i of every field holds the same candidate rows), or the blocks of a Ray Dataset. The
selection runs in a few Ray actors, the *owners*, each of which opens its shards itself
(memory-mapped files, or the Dataset's blocks read zero-copy from the object store), so the
driver never holds the pool: it sends and receives per-shard summaries and single rows.

Supported strategies, and what travels per pick (docs/sharded.md has the measured numbers):

* ``least_confidence``, ``margin``, ``entropy`` (``probs``) and ``bald`` (``mc_probs``): every
  shard scores its rows with the single-machine score function and returns its local top n
  (scores and global positions); the driver takes the top n of their union with the same
  ``top_n`` (ties to the lowest position). One round trip; the picks are those of
  :func:`activebatch.select`.
* ``coreset``: furthest-first traversal (Sener & Savarese, ICLR 2018). Every shard keeps each
  row's float64 squared distance to the labeled centres and the picks so far, and reports its
  largest (value, first position, row); the driver takes the largest over shards (ties to the
  lowest position) and broadcasts the pick's row, which every shard folds into its distances.
  One round trip per pick: a d-vector down, a (value, position, d-vector) per shard up.
* ``badge``: k-means++ seeding on gradient embeddings, by the single-machine kernel's exact
  rejection sampler (:mod:`activebatch.kernels.kmeanspp`) with its stale D^2 distribution held
  by the shards: the driver draws proposals from the stale law shard by shard in proportion to
  the shards' stale sums, each shard locates its proposals and returns their stale and current
  D^2 and factors, and the driver runs the acceptance tests (which need only the new centres).
  A refresh (the kernel's rule, on the same statistics) is one distributed pass over the pool.
  The draws follow the k-means++ law exactly; the first centre follows the same ``init`` rule.

Validation gives the single-machine messages (shapes that disagree between fields, NaN,
probability rows not summing to 1, ``n`` larger than the pool), with global row numbers, and
raises before any selection work starts; shards that disagree among themselves get messages
naming the shard.
"""
from __future__ import annotations

import math
import os
import pickle
import time
import warnings
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ..kernels.factors import GradientFactors
from ..kernels.kcenter import _sqnorms, min_sqdist_to_centers
from ..kernels.kmeanspp import _locate, _refresh, accept_chunk, current_d2
from ..kernels.rowblocks import rows_per_block
from ..kernels.scores import top_n
from ..learning.evidence import _check_shapes
from ..strategies import Selection, Strategy, get
from ..utils.extras import require
from ..utils.validation import (
    _check_real_dtype,
    _raise_problems,
    _RowStats,
    _scan,
    as_tensor,
    check_matrix,
    check_n,
    check_scalar,
    check_seed,
)
from .round import MissingEvidenceError, check_candidate_ids, excluded_mask

__all__ = ["Shards", "SHARDED_STRATEGIES", "as_shards"]

#: The strategies that run on shards.
SHARDED_STRATEGIES = ("least_confidence", "margin", "entropy", "bald", "coreset", "badge")
#: The candidate fields that may be sharded (mc_probs shards have shape (S, n_i, K)).
SHARD_FIELDS = ("probs", "embeddings", "mc_probs")
_SCORE_STRATEGIES = ("least_confidence", "margin", "entropy", "bald")
# Rows per block of the per-pick core-set pass and the BADGE refresh (float64 blocks of
# 16,384 x d stay in cache-friendly sizes and bound an owner's temporaries).
_BLOCK_ROWS = 16384


# The description of a sharded pool -------------------------------------------------------------------
def _is_path_list(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, (str, os.PathLike)) for v in value))


def _is_dataset(value: Any) -> bool:
    # by name, so that checking an argument never imports ray
    return any(c.__module__.startswith("ray.data") and c.__name__ == "Dataset" for c in type(value).__mro__)


class Shards:
    """A candidate pool split into row shards, one ``.npy`` file per shard and field.

    Shard i of every field holds the same candidates; the pool's rows are the shards' rows in
    the order of the lists (global position = the shard's offset + the row's position in it).

    Parameters
    ----------
    probs : list of paths, optional
        ``.npy`` files of shape (n_i, K): softmax outputs of shard i's candidates.
    embeddings : list of paths, optional
        ``.npy`` files of shape (n_i, d): their penultimate-layer embeddings.
    mc_probs : list of paths, optional
        ``.npy`` files of shape (S, n_i, K): S stochastic forward passes on them.
    owners : int, optional
        Ray actors that hold the shards (each opens its share of the shards itself, a
        contiguous run of them); default: one per CPU of the Ray cluster, at most one per
        shard. They are spread over the nodes.
    cpus_per_owner : float, default 0
        Logical CPUs each owner reserves while it lives (fractions allowed). The default
        reserves none: an owner waits for the driver most of the time, and a selection never
        waits for other work on the cluster to free CPUs. With a reservation, owners that cannot
        be placed within ``start_timeout`` seconds raise an error.
    start_timeout : float, default 120
        Seconds to wait for the owners to start and open their shards.

    Examples
    --------
    >>> shards = Shards(probs=["p0.npy", "p1.npy"], embeddings=["z0.npy", "z1.npy"])  # doctest: +SKIP
    >>> shards.select("badge", 100, seed=0)                                             # doctest: +SKIP
    """

    def __init__(self, *, probs: Sequence[str | os.PathLike] | None = None,
                 embeddings: Sequence[str | os.PathLike] | None = None,
                 mc_probs: Sequence[str | os.PathLike] | None = None, owners: int | None = None,
                 cpus_per_owner: float = 0.0, start_timeout: float = 120.0) -> None:
        given = {k: v for k, v in (("probs", probs), ("embeddings", embeddings), ("mc_probs", mc_probs))
                 if v is not None}
        if not given:
            raise ValueError("no shards given: pass probs, embeddings or mc_probs as lists of .npy files")
        for key, paths in given.items():
            if not _is_path_list(paths):
                raise TypeError(f"{key} must be a non-empty list of .npy file paths (one per shard), "
                                f"got {type(paths).__name__}")
        counts = {k: len(v) for k, v in given.items()}
        first = next(iter(counts))
        for key, c in counts.items():
            if c != counts[first]:
                raise ValueError(f"{key} lists {c} shards but {first} lists {counts[first]}: shard i of every "
                                 "field must hold the same candidates")
        self.fields = tuple(given)
        self.sources = [{k: ("npy", os.fspath(v[i])) for k, v in given.items()} for i in range(counts[first])]
        self._settings(owners, cpus_per_owner, start_timeout)

    def _settings(self, owners: int | None, cpus_per_owner: float, start_timeout: float) -> None:
        self.owners = check_scalar(owners, "owners", int, min_val=1, allow_none=True)
        self.cpus_per_owner = check_scalar(cpus_per_owner, "cpus_per_owner", float, min_val=0)
        self.start_timeout = check_scalar(start_timeout, "start_timeout", float, min_val=0, include_min=False)
        self._pool = None

    @classmethod
    def from_dataset(cls, dataset: Any, *, fields: Sequence[str] | None = None, owners: int | None = None,
                     cpus_per_owner: float = 0.0, start_timeout: float = 120.0) -> Shards:
        """The blocks of a Ray Dataset as shards (its rows in the Dataset's order).

        Parameters
        ----------
        dataset : ray.data.Dataset
            With a column per field: ``probs`` (each row a K-vector), ``embeddings`` (d-vectors)
            and/or ``mc_probs`` (each row an (S, K) array). The blocks are materialised in the
            object store and stay there; each owner reads its blocks without a copy.
        fields : sequence of str, optional
            The columns to use; default: every column named like a field.
        owners, cpus_per_owner, start_timeout
            As for :class:`Shards`.
        """
        if not _is_dataset(dataset):
            raise TypeError(f"dataset must be a ray.data.Dataset, got {type(dataset).__name__}")
        names = list(dataset.schema().names)
        if fields is None:
            fields = [f for f in SHARD_FIELDS if f in names]
        for f in fields:
            if f not in SHARD_FIELDS:
                raise ValueError(f"unknown sharded field {f!r}; known: {', '.join(SHARD_FIELDS)}")
            if f not in names:
                raise ValueError(f"the Dataset has no column {f!r} (its columns: {', '.join(names)})")
        if not fields:
            raise ValueError(f"the Dataset has none of the columns {', '.join(SHARD_FIELDS)} "
                             f"(its columns: {', '.join(names)})")
        out = object.__new__(cls)
        out.fields = tuple(f for f in SHARD_FIELDS if f in fields)
        out.sources = [{f: ("ray", ref, f) for f in out.fields} for ref in dataset.to_numpy_refs()]
        out._settings(owners, cpus_per_owner, start_timeout)
        return out

    @property
    def n_shards(self) -> int:
        return len(self.sources)

    def _open(self) -> _Pool:
        """The owners, started on first use and kept until :meth:`close`."""
        if self._pool is None:
            self._pool = _Pool(_ray(), self)
        return self._pool

    def close(self) -> None:
        """Stop the owners (a later selection starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Shards:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def traffic(self) -> dict[str, dict[str, int]]:
        """What the driver and the owners exchange, per owner method, counted from the first call on.

        The returned dict is live (clear it to start again): for each method, ``calls``,
        ``round_trips`` (waits of the driver for answers sent at once) and ``bytes_out`` /
        ``bytes_in`` (the pickled size of the arguments and answers, about what Ray sends).
        """
        pool = self._open()
        if pool.traffic is None:
            pool.traffic = {}
        return pool.traffic

    def memory(self) -> list[dict[str, int]]:
        """Per owner: its process's peak (``VmHWM``) and current (``VmRSS``) resident set, and the
        current anonymous (``RssAnon``) and file-backed (``RssFile``: pages of mapped shards) parts, in kB."""
        pool = self._open()
        return pool.wait([pool.send(w, "memory") for w in range(len(pool.owners))], "memory")

    def __repr__(self) -> str:
        return f"Shards(n_shards={self.n_shards}, fields={list(self.fields)})"

    def select(self, strategy: str | Strategy, n: int, *, labeled_embeddings: Any = None, labeled_probs: Any = None,
               labels: Any = None, target_mc_probs: Any = None, exclude: Any = None,
               seed: int | np.random.Generator | None = None, ids: Any = None, return_result: bool = False,
               **options: Any) -> np.ndarray | Selection:
        """Choose ``n`` candidates of the sharded pool, as :func:`activebatch.select` does.

        Parameters are those of :func:`activebatch.select`; ``exclude`` (global positions or a
        boolean mask over the pool) and ``ids`` (one per row of the pool) are held by the driver.
        Uses the running Ray instance if there is one, else starts a local one (left running
        for later calls). The owners start on the first selection and serve later ones until
        :meth:`close` (or the end of a ``with`` block); the files must not change meanwhile,
        and their shapes and values are checked once. Returns global positions in selection order, or with
        ``return_result`` a :class:`~activebatch.strategies.Selection` with each pick's score
        (``candidate_scores`` stays None: the pool's scores are never gathered).
        """
        strat = get(strategy, **options)
        return_result = check_scalar(return_result, "return_result", bool)
        rng = check_seed(seed)
        if strat.name not in SHARDED_STRATEGIES:
            raise ValueError(f"strategy {strat.name!r} does not run on a sharded pool; the sharded strategies are "
                             f"{', '.join(SHARDED_STRATEGIES)}")
        if getattr(strat, "sampling", "topk") != "topk":
            raise ValueError(f"strategy {strat.name!r} with sampling={strat.sampling!r} does not run on a sharded "
                             "pool; only sampling='topk' does")
        missing = [k for k in strat.needs if k not in self.fields and k != "labeled_embeddings"]
        if missing:
            raise MissingEvidenceError(f"strategy {strat.name!r} needs {', '.join(missing)}; give "
                                       + ", ".join(f"{k}=[...]" for k in missing) + " as shards of the same rows")
        local = {"labeled_embeddings": labeled_embeddings, "labeled_probs": labeled_probs, "labels": labels,
                 "target_mc_probs": target_mc_probs}
        pool = self._open()
        N = pool.check_shapes({k: v for k, v in local.items() if v is not None})
        used = set(strat.needs) | set(strat.optional)
        for key in self.fields:
            if key in used:
                pool.check_values(key)
        lab = None
        if labeled_embeddings is not None and "labeled_embeddings" in used:
            lab = check_matrix(labeled_embeddings, "labeled_embeddings")
        mask = excluded_mask(exclude, N)
        n_excl = 0 if mask is None else int(mask.sum())
        n = check_n(n, N - n_excl, "candidates that are not excluded" if n_excl else "candidates")
        cand_ids = check_candidate_ids(ids, N)
        pool.exclude(mask)
        t0 = time.perf_counter()
        if strat.name in _SCORE_STRATEGIES:
            picks, scores = _select_top(pool, strat, n)
        elif strat.name == "coreset":
            picks, scores = _select_coreset(pool, n, lab, rng)
        else:
            picks, scores = _select_badge(pool, n, rng, init=strat.init)
        seconds = time.perf_counter() - t0
        if not return_result:
            return picks
        return Selection(picks, scores=scores, score_name=strat.score_name, strategy=strat.name,
                         ids=picks if cand_ids is None else cand_ids[picks], seconds=seconds)


def as_shards(*, probs: Any = None, embeddings: Any = None, mc_probs: Any = None) -> Shards | None:
    """The :class:`Shards` that ``ab.select``'s candidate fields describe, or None when none is sharded.

    A field is sharded when it is a list of ``.npy`` paths or a Ray Dataset (which supplies its
    column of that name). Either every given candidate field is sharded, or none is.
    """
    given = {"probs": probs, "embeddings": embeddings, "mc_probs": mc_probs}
    given = {k: v for k, v in given.items() if v is not None}
    paths = {k for k, v in given.items() if _is_path_list(v)}
    datasets = {k for k, v in given.items() if _is_dataset(v)}
    if not paths and not datasets:
        return None
    sharded = paths | datasets
    rest = sorted(set(given) - sharded)
    if rest:
        raise ValueError(f"{', '.join(sorted(sharded))} given as shards but {', '.join(rest)} as arrays: give every "
                         "candidate field as shards of the same rows")
    if paths and datasets:
        raise ValueError(f"{', '.join(sorted(paths))} given as .npy shards but {', '.join(sorted(datasets))} as a Ray "
                         "Dataset: give the fields one way")
    if datasets:
        objs = [given[k] for k in sorted(datasets)]
        if any(o is not objs[0] for o in objs):
            raise ValueError("the sharded fields come from different Ray Datasets: give one Dataset with a column "
                             "per field")
        return Shards.from_dataset(objs[0], fields=sorted(datasets))
    return Shards(**{k: given[k] for k in paths})


def _ray() -> Any:
    ray = require("ray", "experiments", "selection on a sharded pool")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    return ray


# The owners: Ray actors that hold the shards -------------------------------------------------------------
def _load(source: tuple) -> Any:
    """A shard's array: a memory-mapped ``.npy`` or a Dataset block's column (read-only, no copy)."""
    if source[0] == "npy":
        return np.load(source[1], mmap_mode="r")
    import ray

    arr = ray.get(source[1])[source[2]]
    # a Dataset row of mc_probs is (S, K): the block is (n_i, S, K); the field is (S, n_i, K)
    return np.moveaxis(arr, 0, 1) if source[2] == "mc_probs" and arr.ndim == 3 else arr


def _name(source: tuple) -> str:
    return source[1] if source[0] == "npy" else f"block of column {source[2]!r}"


def _float(block: np.ndarray) -> np.ndarray:
    """A block in the dtype the single-machine path computes in (float32 and float64 kept)."""
    dt = np.dtype(block.dtype)
    return np.array(block, dtype=dt if dt in (np.float32, np.float64) else np.float32)


def _float32_view(block: np.ndarray) -> torch.Tensor:
    """A float32 block as a tensor without a copy (a read-only map is only read); others converted."""
    if np.dtype(block.dtype) != np.float32 or not block.flags.c_contiguous:
        return torch.from_numpy(np.array(block, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(np.asarray(block))


class _Shard:
    """One shard inside an owner: its arrays, offset, exclusion and the strategies' per-row state."""

    def __init__(self, index: int, sources: dict[str, tuple]) -> None:
        self.index = index
        self.sources = sources
        self.arrays: dict[str, Any] = {}   # opened by the owner's first call (describe)
        self.offset = 0
        self.rows = 0
        self.excluded: np.ndarray | None = None   # local positions, sorted

    def kept(self) -> np.ndarray | None:
        """Local positions of the rows not excluded (None: all rows)."""
        if self.excluded is None or not self.excluded.size:
            return None
        keep = np.ones(self.rows, dtype=bool)
        keep[self.excluded] = False
        return np.flatnonzero(keep)


class _ShardOwner:
    """A Ray actor holding some shards of the pool; every method answers per shard, in shard order."""

    def __init__(self, shards: list[tuple[int, dict[str, tuple]]]) -> None:
        torch.set_num_threads(1)
        self.shards = [_Shard(i, s) for i, s in shards]

    def describe(self) -> list[dict[str, tuple]]:
        """Open the shards; per shard: field -> (shape, dtype name, source name).

        A shard that cannot be opened gives, in place of its fields, ``{"error": (field,
        exception class, message, node)}`` for the driver to raise.
        """
        out = []
        for sh in self.shards:
            try:
                for k, src in sh.sources.items():
                    if k not in sh.arrays:
                        sh.arrays[k] = _load(src)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                import socket

                out.append({"error": (k, type(exc).__name__, str(exc), socket.gethostname())})
                continue
            out.append({k: (tuple(int(v) for v in a.shape), str(a.dtype), _name(sh.sources[k]))
                        for k, a in sh.arrays.items()})
        return out

    def place(self, offsets: list[int], rows: list[int]) -> None:
        for sh, off, r in zip(self.shards, offsets, rows):
            sh.offset, sh.rows = off, r

    def scan(self, field: str, probs: bool, total: int) -> list[_RowStats]:
        """The validation scan of ``field`` on each shard, rows numbered as in the whole pool.

        mc_probs (S, n_i, K) is scanned as the single-machine check sees it, reshaped to
        (S * N, K): row s * N + offset + i.
        """
        out = []
        for sh in self.shards:
            a = sh.arrays[field]
            planes = [(s * total, a[s]) for s in range(a.shape[0])] if field == "mc_probs" else [(0, a)]
            blocks = []
            for base, rows in planes:
                step = rows_per_block(rows.shape[1])
                blocks += [(base + sh.offset + b0, rows[b0:b0 + step]) for b0 in range(0, rows.shape[0], step)]
            # each block is read when the scan reaches it (the slices of a memory map read nothing)
            out.append(_scan(((b0, np.asarray(blk)) for b0, blk in blocks), probs=probs))
        return out

    def exclude(self, excluded: list[np.ndarray]) -> None:
        for sh, ex in zip(self.shards, excluded):
            sh.excluded = ex

    def memory(self) -> dict[str, int]:
        """This process's peak and current resident set, anonymous and file-backed parts (kB, Linux)."""
        out: dict[str, int] = {}
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    key = line.split(":")[0]
                    if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                        out[key] = int(line.split()[1])
        except OSError:
            pass
        return out

    # top n of a per-candidate score --------------------------------------------------------------------
    def top(self, name: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard: (global positions ascending, scores) of its n best rows not excluded."""
        strat = get(name)
        field = strat.fields[0]
        out = []
        for sh in self.shards:
            a = sh.arrays[field]
            axis = 1 if field == "mc_probs" else 0
            N = a.shape[axis]
            if N == 0:
                out.append((np.zeros(0, np.int64), np.zeros(0)))
                continue
            step = rows_per_block(int(np.prod(a.shape)) // max(N, 1))
            parts = []
            for b0 in range(0, N, step):
                blk = a[:, b0:b0 + step] if axis else a[b0:b0 + step]
                parts.append(np.asarray(strat.score(as_tensor(_float(blk), field))))
            s = np.concatenate(parts)
            kept = sh.kept()
            cand = s if kept is None else s[kept]
            k = min(n, cand.shape[0])
            if k == 0:
                out.append((np.zeros(0, np.int64), s[:0]))
                continue
            idx = np.sort(top_n(cand, k, largest=strat.largest))
            local = idx if kept is None else kept[idx]
            out.append((local + sh.offset, s[local]))
        return out

    # core-set ----------------------------------------------------------------------------------------
    def _x64(self, sh: _Shard, start: int, stop: int) -> torch.Tensor:
        return torch.from_numpy(np.array(sh.arrays["embeddings"][start:stop], dtype=np.float64))

    def kc_start(self, centers: np.ndarray | None) -> list[tuple[float, int, np.ndarray | None]]:
        """Each row's float64 squared distance to the labeled centres (+inf without any)."""
        c = None if centers is None else torch.from_numpy(centers)
        for sh in self.shards:
            sh.sqn = torch.empty(sh.rows, dtype=torch.float64)
            sh.m = torch.full((sh.rows,), math.inf, dtype=torch.float64)
            for b0 in range(0, sh.rows, _BLOCK_ROWS):
                x = self._x64(sh, b0, b0 + _BLOCK_ROWS)
                sh.sqn[b0:b0 + x.shape[0]] = _sqnorms(x)
                if c is not None:
                    sh.m[b0:b0 + x.shape[0]] = min_sqdist_to_centers(x, c, x_sqn=sh.sqn[b0:b0 + x.shape[0]])
            if sh.excluded is not None:
                sh.m[torch.from_numpy(sh.excluded)] = -math.inf
        return self._kc_best()

    def kc_pick(self, shard: int, local: int, row: np.ndarray) -> list[tuple[float, int, np.ndarray | None]]:
        """Fold a pick (its shard, local position and float64 row) into every row's distance.

        Float32 (and float16) shards are screened in float32: a row whose float32 squared
        distance to the pick exceeds its current value by more than the rounding bound cannot be
        lowered, and only the others get their float64 distance, so the values are those of a
        float64 pass.
        """
        p = torch.from_numpy(row)[None, :]
        p_sqn = float(p[0] @ p[0])
        d = row.shape[0]
        eps = float(torch.finfo(torch.float32).eps)
        # |float32 x.p - x.p| <= gamma |x||p| <= gamma (|x|^2 + |p|^2) / 2 (Higham, 3.1); doubled
        # for the factor 2 of the distance, with a relative margin for the float64 formula
        gamma = (d + 2) * eps / (1 - (d + 2) * eps)
        p32 = p[0].to(torch.float32)
        for sh in self.shards:
            if sh.index == shard:
                sh.m[local] = -math.inf
            emb = sh.arrays["embeddings"]
            screen = np.dtype(emb.dtype) != np.float64
            for b0 in range(0, sh.rows, _BLOCK_ROWS):
                e = slice(b0, min(b0 + _BLOCK_ROWS, sh.rows))
                m, q = sh.m[e], sh.sqn[e]
                if not screen:
                    x = self._x64(sh, e.start, e.stop)
                    torch.minimum(m, min_sqdist_to_centers(x, p, x_sqn=q), out=m)
                    continue
                x32 = _float32_view(emb[e])
                approx = q + p_sqn - 2.0 * (x32 @ p32).to(torch.float64)
                near = torch.nonzero(approx - (2.0 * gamma + 1e-12) * (q + p_sqn) <= m)[:, 0]
                if near.numel():
                    exact = min_sqdist_to_centers(x32[near].to(torch.float64), p, x_sqn=q[near])
                    m[near] = torch.minimum(m[near], exact)
        return self._kc_best()

    def _kc_best(self) -> list[tuple[float, int, np.ndarray | None]]:
        out = []
        for sh in self.shards:
            if sh.rows == 0:
                out.append((-math.inf, -1, None))
                continue
            j = int(torch.argmax(sh.m))   # the first of equal maxima: the lowest position
            v = float(sh.m[j])
            out.append((v, j, self._x64(sh, j, j + 1)[0].numpy() if v > -math.inf else None))
        return out

    def row64(self, shard: int, local: int) -> np.ndarray:
        sh = next(s for s in self.shards if s.index == shard)
        return self._x64(sh, local, local + 1)[0].numpy()

    # BADGE: k-means++ on gradient embeddings -----------------------------------------------------------
    def km_start(self, init_norm: bool) -> list[tuple[float, int]]:
        """Set up the factors; per shard the largest gradient norm^2 among the kept rows and its position."""
        out = []
        for sh in self.shards:
            sh.f = GradientFactors(sh.arrays["embeddings"], probs=sh.arrays["probs"])
            sh.a = sh.f.sqnorms()
            sh.S = torch.full((sh.rows,), math.inf, dtype=torch.float64)
            sh.cs = None
            sh.chosen = torch.zeros(sh.rows, dtype=torch.bool)
            if sh.excluded is not None:
                sh.chosen[torch.from_numpy(sh.excluded)] = True   # never drawn: weight 0 like a chosen row
            sh.cu, sh.cz, sh.ca = [], [], []
            if not init_norm or sh.rows == 0:
                out.append((-math.inf, -1))
                continue
            a = sh.a.clone()
            a[sh.chosen] = -math.inf
            j = int(torch.argmax(a))
            out.append((float(a[j]), j))
        self._cu, self._cz, self._ca = [], [], []
        return out

    def km_rows(self, shard: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sh = next(s for s in self.shards if s.index == shard)
        u, z = sh.f.rows(np.asarray(local, dtype=np.int64))
        return u.numpy(), z.numpy(), sh.a[torch.as_tensor(local)].numpy()

    def _km_add(self, new: list[tuple[int, np.ndarray, np.ndarray, float]]) -> None:
        """Centres chosen since the last call: (global position, u, z, ||g||^2)."""
        for pos, u, z, a in new:
            for sh in self.shards:
                if sh.offset <= pos < sh.offset + sh.rows:
                    sh.chosen[pos - sh.offset] = True
            self._cu.append(u)
            self._cz.append(z)
            self._ca.append(a)
        if new:   # the centres' factors as tensors, rebuilt only when centres were added
            self.CU = torch.from_numpy(np.stack(self._cu))
            self.CZ = torch.from_numpy(np.stack(self._cz))
            self.CA = torch.tensor(self._ca, dtype=torch.float64)

    def km_refresh(self, fresh: int, new: list) -> list[float]:
        """Lower every stale D^2 by the centres [fresh:] (one pass); per shard the stale sum."""
        self._km_add(new)
        out = []
        for sh in self.shards:
            sh.S, sh.cs, total, _ = _refresh(sh.f, sh.a, sh.S, sh.chosen, self.CU, self.CZ, self.CA, fresh)
            out.append(total)
        return out

    def km_propose(self, requests: list[tuple[int, np.ndarray]], fresh: int, new: list,
                   pending_block: int = 4096) -> list[tuple[np.ndarray, ...]]:
        """Locate proposals in the stale D^2 of a shard and test them against the pending centres.

        ``requests``: (shard, points in [0, stale sum)). Per request: global positions, stale
        D^2, current D^2 (0 for chosen rows), and the proposals' factors u, z, ||g||^2.
        """
        self._km_add(new)
        out = []
        for shard, x in requests:
            sh = next(s for s in self.shards if s.index == shard)
            prop = _locate(sh.cs, torch.from_numpy(x).clamp_min_(0.0), sh.S)
            pu, pz = sh.f.rows(prop.numpy())
            pa, Sp = sh.a[prop], sh.S[prop]
            D = current_d2(Sp, pu, pz, pa, self.CU, self.CZ, self.CA, fresh, pending_block)
            D[sh.chosen[prop]] = 0.0
            out.append((prop.numpy() + sh.offset, Sp.numpy(), D.numpy(), pu.numpy(), pz.numpy(), pa.numpy()))
        return out

    def km_available(self, new: list) -> list[int]:
        """Per shard: rows neither excluded nor chosen."""
        self._km_add(new)
        return [int((~sh.chosen).sum()) for sh in self.shards]

    def km_nth_available(self, shard: int, ranks: np.ndarray) -> np.ndarray:
        sh = next(s for s in self.shards if s.index == shard)
        return torch.nonzero(~sh.chosen)[:, 0].numpy()[ranks] + sh.offset


class _Pool:
    """The driver's view of the owners: which owner holds which shard, offsets, exclusions."""

    def __init__(self, ray: Any, shards: Shards) -> None:
        self.ray = ray
        self.fields = shards.fields
        S = shards.n_shards
        per = shards.cpus_per_owner
        cpus = int(ray.cluster_resources().get("CPU", 1))
        W = max(1, min(S, shards.owners or cpus))
        # contiguous groups of shards per owner, so an owner's shards are neighbours in the pool
        bounds = np.linspace(0, S, W + 1).round().astype(int)
        self.groups = [list(range(bounds[w], bounds[w + 1])) for w in range(W) if bounds[w + 1] > bounds[w]]
        actor = ray.remote(num_cpus=per, scheduling_strategy="SPREAD")(_ShardOwner)
        self.owners = [actor.remote([(i, shards.sources[i]) for i in g]) for g in self.groups]
        self.start_timeout, self.per = shards.start_timeout, per
        self.owner_of = {i: w for w, g in enumerate(self.groups) for i in g}
        self.synced = [0] * len(self.owners)
        self.desc: list[dict[str, tuple]] | None = None
        self.checked: set[str] = set()
        self.placed = False
        #: method -> calls, round trips and pickled bytes each way (None: not counted)
        self.traffic: dict[str, dict[str, int]] | None = None

    def close(self) -> None:
        for o in self.owners:
            self.ray.kill(o)

    def send(self, w: int, method: str, *args: Any) -> Any:
        """Call ``method(*args)`` on owner ``w``; the reference to its answer."""
        if self.traffic is not None:
            rec = self.traffic.setdefault(method, {"calls": 0, "round_trips": 0, "bytes_out": 0, "bytes_in": 0})
            rec["calls"] += 1
            rec["bytes_out"] += len(pickle.dumps(args, protocol=5))
        return getattr(self.owners[w], method).remote(*args)

    def wait(self, refs: list, method: str) -> list[Any]:
        """The answers to calls of ``method`` made at once (one round trip)."""
        res = self.ray.get(refs)
        if self.traffic is not None:
            rec = self.traffic[method]
            rec["round_trips"] += 1
            rec["bytes_in"] += sum(len(pickle.dumps(r, protocol=5)) for r in res)
        return res

    def each(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every owner; the answers flattened in shard order."""
        res = self.wait([self.send(w, method, *args) for w in range(len(self.owners))], method)
        return [r for part in res for r in part]

    def call(self, w: int, method: str, *args: Any) -> Any:
        return self.wait([self.send(w, method, *args)], method)[0]

    # validation ----------------------------------------------------------------------------------------
    def check_shapes(self, local: dict[str, Any]) -> int:
        """Check every shard's shapes against the other shards and fields; place the shards; N."""
        if self.desc is None:
            refs = [self.send(w, "describe") for w in range(len(self.owners))]
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
            if len(ready) < len(refs):
                free = self.ray.available_resources().get("CPU", 0)
                raise TimeoutError(
                    f"{len(refs) - len(ready)} of {len(refs)} shard owners did not start within "
                    f"{self.start_timeout:g} s: each reserves {self.per:g} CPU and the Ray cluster has {free:g} "
                    "free; pass fewer owners, a smaller cpus_per_owner, or a longer start_timeout")
            self.desc = [r for part in self.wait(refs, "describe") for r in part]
        desc = self.desc
        for i, d in enumerate(desc):
            if "error" in d:
                self.desc = None   # open them again next time (the files may be fixed)
                key, kind, msg, node = d["error"]
                cls = OSError if kind in ("FileNotFoundError", "PermissionError", "OSError") else ValueError
                raise cls(f"{key} shard {i} could not be opened by its owner on node {node}: {kind}: {msg}")
        axis = {"probs": 0, "embeddings": 0, "mc_probs": 1}
        for i, d in enumerate(desc):
            for key in self.fields:
                shape, dtype, src = d[key]
                _check_real_dtype(np.dtype(dtype), f"{key} shard {i} ({src})")
                want = 3 if key == "mc_probs" else 2
                if len(shape) != want:
                    form = "(S, n_i, K) (samples, candidates, classes)" if want == 3 else "(n_i, n_columns)"
                    raise ValueError(f"{key} shard {i} ({src}) must have shape {form}, got {shape}")
        for i, d in enumerate(desc):
            ref = self.fields[0]
            rows = d[ref][0][axis[ref]]
            for key in self.fields[1:]:
                r = d[key][0][axis[key]]
                if r != rows:
                    raise ValueError(f"{key} shard {i} ({d[key][2]}) has {r} candidates but {rows} are expected "
                                     f"(the candidates of {ref} shard {i})")
            for key in self.fields:
                shape, s0 = d[key][0], desc[0][key][0]
                other = [k for k in range(len(shape)) if k != axis[key]]
                if [shape[k] for k in other] != [s0[k] for k in other]:
                    raise ValueError(f"{key} shard {i} ({d[key][2]}) has shape {shape} but shard 0 has {s0}: "
                                     "shards may differ only in their number of candidates")
        rows = [d[self.fields[0]][0][axis[self.fields[0]]] for d in desc]
        self.rows = np.asarray(rows, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.rows)[:-1]]).astype(np.int64)
        self.N = int(self.rows.sum())
        total = {}
        for key in self.fields:
            s0 = desc[0][key][0]
            total[key] = SimpleNamespace(shape=(s0[0], self.N, s0[2]) if key == "mc_probs" else (self.N, s0[1]))
        _check_shapes({**total, **local})   # the single-machine messages for fields that disagree
        if not self.placed:
            self._per_owner("place", [int(v) for v in self.offsets], [int(v) for v in self.rows])
            self.placed = True
        return self.N

    def _per_owner(self, method: str, *lists: list) -> list[Any]:
        """``method`` on every owner with its shards' entries of each list."""
        refs = [self.send(w, method, *[[lst[i] for i in g] for lst in lists]) for w, g in enumerate(self.groups)]
        res = self.wait(refs, method)
        return [r for part in res if part is not None for r in part]

    def check_values(self, key: str) -> None:
        """The single-machine value checks of ``key`` (NaN, negative, rows summing to 1), per shard."""
        if key in self.checked:
            return
        probs = key != "embeddings"
        parts = self.each("scan", key, probs, self.N)
        st = _RowStats()
        for p in parts:
            st.bad_rows += p.bad_rows
            if p.first_bad >= 0 and (st.first_bad < 0 or p.first_bad < st.first_bad):
                st.first_bad = p.first_bad
            st.negative |= p.negative
            if p.worst > st.worst or (p.worst == st.worst and 0 <= p.worst_row < st.worst_row):
                st.worst, st.worst_row, st.worst_sum = p.worst, p.worst_row, p.worst_sum
        _raise_problems(st, key, probs=probs, n_cols=self.desc[0][key][0][-1])
        self.checked.add(key)

    def exclude(self, mask: np.ndarray | None) -> None:
        pos = np.zeros(0, np.int64) if mask is None else np.flatnonzero(mask)
        cut = np.searchsorted(pos, np.concatenate([self.offsets, [self.N]]))
        self.excluded = [pos[cut[i]:cut[i + 1]] - self.offsets[i] for i in range(len(self.rows))]
        self.kept = self.rows - np.asarray([e.size for e in self.excluded])
        self._per_owner("exclude", self.excluded)

    def nth_kept(self, k: int) -> tuple[int, int]:
        """(shard, local position) of the k-th row that is not excluded (0-based, in pool order)."""
        cum = np.cumsum(self.kept)
        i = int(np.searchsorted(cum, k, side="right"))
        r = k - (int(cum[i - 1]) if i else 0)
        e = self.excluded[i]
        # the r-th kept row is r + the number of excluded rows before it
        return i, int(r + np.searchsorted(e - np.arange(e.size), r, side="right"))


# The strategies ------------------------------------------------------------------------------------------
def _select_top(pool: _Pool, strat: Strategy, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distributed top n: each shard's top n, then the top n of their union (ties: lowest position)."""
    parts = pool.each("top", strat.name, n)
    pos = np.concatenate([p for p, _ in parts])
    scores = np.concatenate([s for _, s in parts])
    # shards come in pool order and each lists its rows ascending: the union is ascending, so
    # top_n's tie rule (lowest index) is the lowest global position
    idx = top_n(scores, n, largest=strat.largest)
    return pos[idx].astype(np.int64), scores[idx]


def _select_coreset(pool: _Pool, n: int, lab: torch.Tensor | None,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Furthest-first traversal with per-shard distances: each pick is the global argmax."""
    c = None if lab is None or lab.shape[0] == 0 else lab.detach().cpu().numpy().astype(np.float64)
    best = pool.each("kc_start", c)
    order: list[int] = []
    values: list[float] = []
    if c is None:   # a cold start: the first pick is uniform over the kept rows, as the kernel draws it
        i, j = pool.nth_kept(int(rng.integers(int(pool.kept.sum()))))
        order.append(int(pool.offsets[i]) + j)
        values.append(math.inf)
        best = pool.each("kc_pick", i, j, pool.call(pool.owner_of[i], "row64", i, j))
    while len(order) < n:
        vals = np.array([b[0] for b in best])
        i = int(np.argmax(vals))   # the first shard holding the maximum: the lowest position
        v, j, row = best[i]
        order.append(int(pool.offsets[i]) + j)
        values.append(v)
        if len(order) < n:
            best = pool.each("kc_pick", i, j, row)
    return np.asarray(order, dtype=np.int64), np.sqrt(np.asarray(values, dtype=np.float64))


def _select_badge(pool: _Pool, n: int, rng: np.random.Generator, *, init: str, chunk: int = 1024,
                  refresh_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ by the kernel's rejection sampler (kernels/kmeanspp.py ``_kmeanspp``), sharded.

    The driver keeps the centres and the shards' stale sums; proposals are drawn from the stale
    law in two stages (the shard in proportion to its sum, then the row in the shard), which is
    the stale law itself; acceptance, the chunk re-tests and the refresh rule are the kernel's.
    """
    N = int(pool.kept.sum())
    norm = pool.each("km_start", init == "norm")   # also forgets an earlier selection's centres
    pool.synced = [0] * len(pool.owners)
    if init == "norm":
        vals = np.array([b[0] for b in norm])
        i = int(np.argmax(vals))
        j = norm[i][1]
    else:
        i, j = pool.nth_kept(int(rng.integers(N)))
    u, z, a = pool.call(pool.owner_of[i], "km_rows", i, np.array([j]))
    centres = [(int(pool.offsets[i]) + j, u[0], z[0], float(a[0]))]
    order, d2s = [centres[0][0]], [math.inf]

    def new_for(w: int) -> list:
        out = centres[pool.synced[w]:]
        pool.synced[w] = len(centres)
        return out

    def refresh(fresh: int) -> tuple[np.ndarray, int]:
        refs = [pool.send(w, "km_refresh", fresh, new_for(w)) for w in range(len(pool.owners))]
        tot = np.asarray([t for part in pool.wait(refs, "km_refresh") for t in part], dtype=np.float64)
        return tot, len(order)

    totals, fresh = refresh(0)
    rate = 1.0
    while len(order) < n:
        total = float(totals.sum())
        if not total > 0.0:   # every remaining row coincides with a centre: uniform over the rest
            m = n - len(order)
            refs = [pool.send(w, "km_available", new_for(w)) for w in range(len(pool.owners))]
            avail = np.asarray([c for part in pool.wait(refs, "km_available") for c in part], dtype=np.int64)
            ranks = rng.choice(int(avail.sum()), size=m, replace=False)
            cum = np.cumsum(avail)
            shard = np.searchsorted(cum, ranks, side="right")
            out = np.empty(m, dtype=np.int64)
            for s in np.unique(shard):
                sel = shard == s
                out[sel] = pool.call(pool.owner_of[int(s)], "km_nth_available", int(s),
                                     ranks[sel] - (cum[s - 1] if s else 0))
            order += out.tolist()
            d2s += [0.0] * m
            break
        pending = len(order) - fresh
        remaining = n - len(order)
        if pending > 0 and remaining / max(rate, 1e-300) > refresh_factor * N:
            totals, fresh = refresh(fresh)
            rate = 1.0
            continue
        T = int(min(chunk, max(16, math.ceil(2 * (n - len(order)) / max(rate, 1e-3)))))
        x = rng.random(T) * total
        v = torch.as_tensor(rng.random(T), dtype=torch.float64)
        # the stale law in two stages: the shard by its stale sum, then the row within it
        cum = np.cumsum(totals)
        shard = np.searchsorted(cum, x, side="right")
        over = shard >= totals.size
        if over.any():   # x rounded up to the total: the last shard with weight
            shard[over] = int(np.flatnonzero(totals > 0)[-1])
        local = x - (cum - totals)[shard]
        by_owner: dict[int, list[tuple[int, np.ndarray]]] = {}
        for s in np.unique(shard):
            by_owner.setdefault(pool.owner_of[int(s)], []).append((int(s), local[shard == s]))
        owners = list(by_owner)
        got = pool.wait([pool.send(w, "km_propose", by_owner[w], fresh, new_for(w)) for w in owners], "km_propose")
        answers = dict(zip(owners, got))
        # put the answers back in proposal order
        prop = np.empty(T, dtype=np.int64)
        Sp, D, pa = (np.empty(T) for _ in range(3))
        pu = pz = None
        for w, req in by_owner.items():
            for (s, _), (g, sp, d, uu, zz, aa) in zip(req, answers[w]):
                where = np.flatnonzero(shard == s)
                if pu is None:
                    pu = np.empty((T, uu.shape[1]), dtype=uu.dtype)
                    pz = np.empty((T, zz.shape[1]), dtype=zz.dtype)
                prop[where], Sp[where], D[where], pu[where], pz[where], pa[where] = g, sp, d, uu, zz, aa
        prop_t, Sp_t, D_t = torch.from_numpy(prop), torch.from_numpy(Sp), torch.from_numpy(D)
        pu_t, pz_t, pa_t = torch.from_numpy(pu), torch.from_numpy(pz), torch.from_numpy(pa)
        accepted, used = accept_chunk(v, Sp_t, D_t, prop_t, pu_t, pz_t, pa_t, n - len(order))
        for t in accepted:
            g = int(prop_t[t])
            order.append(g)
            d2s.append(float(D_t[t]))
            centres.append((g, pu[t], pz[t], float(pa[t])))
        rate = 0.5 * rate + 0.5 * (len(accepted) / max(used, 1))
    return np.asarray(order[:n], dtype=np.int64), np.asarray(d2s[:n], dtype=np.float64)
