"""``activebatch select``: choose a batch from model outputs stored in files (bring your own model)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .args import key_value, positive_int, seed_int
from .helptext import ARRAY_FIELDS, FILE_STRATEGIES

__all__ = ["add_command", "run", "array_fields", "file_strategies"]


def array_fields() -> dict[str, str]:
    """Evidence fields that can be given as files, with their descriptions."""
    from ..learning.evidence import ARRAY_FIELDS, FIELDS

    return {k: FIELDS[k] for k in ARRAY_FIELDS}


def file_strategies() -> list[str]:
    """Registered strategies whose evidence can all be given as files."""
    from .. import strategies

    fields = set(array_fields())
    return [n for n in strategies.names() if set(strategies.strategy_class(n).needs) <= fields]


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``select`` to ``sub`` (built from plain data: no torch import)."""
    sel = sub.add_parser(
        "select", help="choose a batch from model outputs stored in files (bring your own model)",
        description="Choose the n items to label next from your own model's outputs. Each evidence field is read "
                    "from .npy, .npz or a .csv/.parquet feature table (an 'id' column there is taken as the item "
                    "ids). Strategies that can run from files: " + ", ".join(FILE_STRATEGIES) + ".")
    sel.add_argument("--strategy", default="badge", help="strategy name (default: badge)")
    sel.add_argument("-n", type=positive_int, required=True, help="batch size")
    for name, doc in ARRAY_FIELDS.items():   # plain data: building the parser imports no torch
        sel.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="FILE", default=None, help=doc)
    sel.add_argument("--evidence", metavar="FILE.npz", default=None,
                     help="one .npz holding any of the fields above under their names (and 'ids')")
    sel.add_argument("--ids", metavar="FILE", default=None,
                     help="item ids, one per candidate row (.csv/.parquet 'id' column, .txt, .npy)")
    sel.add_argument("--exclude", metavar="FILE", default=None,
                     help="ids (or positions, when there are no ids) of items that must not be chosen")
    sel.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    sel.add_argument("--option", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                     help="strategy option, e.g. --option init=random (repeatable)")
    sel.add_argument("--out", required=True, help="output .csv or .parquet (or - for CSV on stdout)")


def run(args: argparse.Namespace) -> int:
    """``activebatch select``: read the evidence files and run the same selection as ``ab.select``.

    Memory-mapped ``.npy`` files are passed on unconverted, so they are streamed exactly as in
    ``ab.select``; every check on the arrays (shapes, agreement, values, exclusions) is the
    selection round's, so both entry points give the same answer or the same error.
    """
    import numpy as np

    from .. import strategies
    from ..learning.evidence import CANDIDATE_FIELDS
    from ..selection import MissingEvidenceError, select
    from ..workspace.files import InputFileError, read_array, read_ids, write_table

    fields = array_fields()
    strat_cls = strategies.strategy_class(args.strategy)
    not_files = sorted(set(strat_cls.needs) - set(fields))
    if not_files:
        raise ValueError(f"strategy {args.strategy!r} needs {', '.join(not_files)} (the model itself), which cannot "
                         f"be given as files; strategies that run from files: {', '.join(file_strategies())}")
    arrays: dict[str, Any] = {}
    id_sources: list[tuple[str, np.ndarray]] = []
    if args.evidence is not None:
        p = Path(args.evidence)
        if p.suffix.lower() != ".npz":
            raise InputFileError(f"--evidence expects an .npz archive, got {str(p)!r}")
        if not p.is_file():
            raise InputFileError(f"--evidence file {str(p)!r} does not exist")
        with np.load(p, allow_pickle=False) as archive:
            keys = set(archive.keys())
        unknown = keys - set(fields) - {"ids"}
        if unknown:
            raise InputFileError(f"--evidence {str(p)!r} holds arrays {sorted(unknown)} that are not evidence fields "
                                 f"({', '.join(fields)}, ids)")
        for name in sorted(keys & set(fields)):
            arr, ids = read_array(p, name, key=name, with_ids=name in CANDIDATE_FIELDS)
            arrays[name] = arr
            if ids is not None:
                id_sources.append((f"--evidence {p.name}", ids))
    for name in fields:
        path = getattr(args, name)
        if path is None:
            continue
        if name in arrays:
            raise ValueError(f"{name} is given twice (in --evidence and as --{name.replace('_', '-')})")
        # A .npy file stays memory-mapped: the selection round reads it in row blocks.
        arr, ids = read_array(path, name, with_ids=name in CANDIDATE_FIELDS)
        if name == "labels" and arr.ndim == 2 and arr.shape[1] == 1:   # a table's one label column
            arr = arr[:, 0]
        arrays[name] = arr
        if ids is not None and name in CANDIDATE_FIELDS:
            id_sources.append((f"--{name.replace('_', '-')} {Path(path).name}", ids))
    ids = read_ids(args.ids, what="--ids") if args.ids is not None else None
    if ids is not None:
        id_sources.insert(0, ("--ids", ids))
    for where, other in id_sources:
        if len(other) != len(id_sources[0][1]) or (
                ids is not None and not np.array_equal(np.asarray(other, dtype=str), np.asarray(ids, dtype=str))):
            raise ValueError(f"the ids in {where} differ from those in {id_sources[0][0]}")
        ids = other if ids is None else ids
    exclude = None
    if args.exclude is not None:
        ex = read_ids(args.exclude, what="--exclude")
        if ids is not None:
            pos = {str(i): k for k, i in enumerate(ids)}
            unknown = [e for e in ex if str(e) not in pos]
            if unknown:
                raise ValueError(f"--exclude names {len(unknown)} id(s) that are not candidates, e.g. {unknown[:3]}")
            exclude = np.array([pos[str(e)] for e in ex], dtype=np.int64)
        else:
            try:
                exclude = np.array([int(e) for e in ex], dtype=np.int64)
            except ValueError:
                raise ValueError("--exclude holds ids but the candidates have none; give --ids") from None
    try:
        sel = select(args.strategy, args.n, exclude=exclude, seed=args.seed,
                     ids=None if ids is None else np.asarray(ids, dtype=str), return_result=True,
                     **arrays, **dict(args.option))
    except MissingEvidenceError as exc:
        # The API's message, with the command's flags instead of its keyword arguments.
        missing = sorted(set(strat_cls.needs) - set(arrays))
        raise ValueError(str(exc).split("; pass ")[0] + "; give " +
                         ", ".join(f"--{k.replace('_', '-')} FILE" for k in missing)) from None
    out = sel.to_frame()[["rank", "id", "position"] + (["score"] if sel.scores is not None else [])]
    out["id"] = out["id"].astype(str)
    if args.out == "-":
        out.to_csv(sys.stdout, index=False)
    else:
        write_table(out, args.out)
        n_rows = next(int(v.shape[1] if k == "mc_probs" else v.shape[0]) for k, v in arrays.items()
                      if k in CANDIDATE_FIELDS)
        what = f" ({sel.score_name})" if sel.score_name else ""
        print(f"{args.strategy} chose {len(sel)} of {n_rows} candidates; wrote {args.out}{what}", file=sys.stderr)
    return 0
