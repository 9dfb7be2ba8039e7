"""Wall time of ``activebatch --help`` (and each sub-command's ``--help``) against ``python -c pass``.

Each measurement is a fresh interpreter running ``activebatch.cli.main.main([... '--help'])``
(what the ``activebatch`` console script does), timed from outside; the reported figure is the
median of ``--repeats`` runs after one unmeasured warm-up run (so the files are in the page
cache). The baseline is the same interpreter running ``pass``. Also reports whether torch was
imported, which is what used to make ``--help`` slow.

    python benchmarks/cli_startup.py                    # top level and every sub-command
    python benchmarks/cli_startup.py --repeats 9 --commands "" select serve
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = ["", "demo", "bench", "report", "select", "init", "query", "export", "import", "status", "serve",
            "strategies", "datasets"]

_HELP = ("import sys\n"
         "from activebatch.cli.main import main\n"
         "try:\n"
         "    main({argv!r})\n"
         "except SystemExit:\n"
         "    pass\n"
         "sys.stderr.write('torch imported\\n' if 'torch' in sys.modules else 'torch not imported\\n')\n")


def _time(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


def _median(code: str, repeats: int) -> tuple[float, str]:
    _time(code)   # warm-up: page cache, .pyc files
    runs = [_time(code) for _ in range(repeats)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per command (default: 5)")
    ap.add_argument("--commands", nargs="*", default=COMMANDS,
                    help="sub-commands to time ('' is the top level; default: all)")
    args = ap.parse_args()
    base, _ = _median("pass", args.repeats)
    print(f"python -c pass: {base * 1000:.0f} ms (median of {args.repeats})")
    print(f"{'command':28s} {'median':>9s} {'ratio':>7s}  torch")
    for cmd in args.commands:
        argv = ([cmd] if cmd else []) + ["--help"]
        t, torch_note = _median(_HELP.format(argv=argv), args.repeats)
        print(f"{'activebatch ' + ' '.join(argv):28s} {t * 1000:7.0f} ms {t / base:6.1f}x  {torch_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
