"""Plot the speed-ups measured by ``benchmarks/selection.py`` (from its JSON output).

    python benchmarks/selection.py --scale --json benchmarks/selection.json
    python benchmarks/plot_selection.py benchmarks/selection.json docs/selection_speedups.png

One bar per case with a plain reference, on a log scale, with the targets drawn in: 10x for BADGE
(against the authors' selection loop) and 20x for core-set (against their ``furthest_first``).
Rows whose plain time was extrapolated are hatched.
"""
from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = {"BADGE": 10.0, "core-set": 20.0}
COLOURS = {"BADGE": "tab:blue", "core-set": "tab:orange"}


def plot(rows: list[dict], path: str) -> None:
    """Horizontal bars of plain / ours for every row that has both, grouped by method."""
    rows = [r for r in rows if r.get("speedup")]
    fig, ax = plt.subplots(figsize=(9.5, 0.42 * len(rows) + 1.6))
    for y, r in enumerate(rows):
        family = r["case"].split()[0]
        ax.barh(y, r["speedup"], color=COLOURS.get(family, "grey"),
                hatch="//" if "extrapolated" in r.get("note", "") else None, edgecolor="white")
        ax.text(r["speedup"] * 1.04, y, f"{r['speedup']:.0f}x  ({r['ours_s']:.2f} s vs {r['plain_s']:.1f} s)",
                va="center", fontsize=8)
    for family, target in TARGETS.items():
        ax.axvline(target, color=COLOURS[family], ls="--", lw=1, label=f"{family} target {target:.0f}x")
    ax.set_yticks(range(len(rows)), [r["case"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(1, max(r["speedup"] for r in rows) * 12)
    ax.set_xlabel("speed-up over the plain reference (log scale); hatched: plain time extrapolated")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="the JSON written by benchmarks/selection.py --json")
    parser.add_argument("out", help="image to write (.png, .svg, .pdf)")
    args = parser.parse_args()
    with open(args.json) as fh:
        plot(json.load(fh)["rows"], args.out)


if __name__ == "__main__":
    main()
