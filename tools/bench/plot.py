#!/usr/bin/env python3
"""Draws a results.json of tools/bench/compare.py: for each speaker count, p99 latency (log
scale) and delivery against the number of listeners (log scale), one line per system, with
the p99 target as a dashed line. Needs matplotlib (compare.py's virtualenv has it).

    .build-bench/venv/bin/python tools/bench/plot.py RESULTS.json --out docs/performance-compare.png
"""

from __future__ import annotations

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

STYLE = {"airwave": ("Airwave", "tab:blue", "o"), "django": ("Django Channels + daphne", "tab:red", "s")}


def series(runs, system, speakers):
    rows = sorted((r for r in runs if r["system"] == system and r["speakers"] == speakers
                   and not r["idle"] and not r["error"]), key=lambda r: r["listeners"])
    return ([r["listeners"] for r in rows], [max(r["p99_ms"], 0.01) for r in rows],
            [r["delivery"] * 100 for r in rows])


def plot(results: dict, out: str) -> None:
    params = results["parameters"]
    speakers_list = params["speakers"]
    target = params["target_p99_ms"]
    fig, axes = plt.subplots(len(speakers_list), 2, figsize=(11, 4.2 * len(speakers_list)), squeeze=False)
    count = FuncFormatter(lambda x, _: f"{x:,.0f}")
    for row, speakers in enumerate(speakers_list):
        lat_ax, del_ax = axes[row]
        for system in params["systems"]:
            label, color, marker = STYLE[system]
            n, p99, delivery = series(results["runs"], system, speakers)
            if not n:
                continue
            lat_ax.plot(n, p99, marker=marker, color=color, label=label)
            del_ax.plot(n, delivery, marker=marker, color=color, label=label)
            stop = results["stopped"].get(str(speakers), {}).get(system)
            if stop:
                lat_ax.annotate("stopped", (n[-1], p99[-1]), textcoords="offset points", xytext=(6, -4),
                                fontsize=8, color=color)
        title = f"{speakers} speaker{'s' if speakers > 1 else ''} × {params['rate']} frames/s"
        lat_ax.axhline(target, color="gray", linestyle="--", linewidth=1)
        lat_ax.text(0.01, target * 1.1, f"p99 target {target:g} ms", transform=lat_ax.get_yaxis_transform(),
                    color="gray", fontsize=8, va="bottom")
        tried = sorted({r["listeners"] for r in results["runs"] if r["speakers"] == speakers and not r["idle"]})
        lat_ax.set_xscale("log")
        lat_ax.set_yscale("log")
        lat_ax.set_xlabel("listeners")
        lat_ax.set_ylabel("p99 latency (ms, log)")
        lat_ax.set_title(f"p99 send → receive latency — {title}")
        lat_ax.grid(True, which="both", alpha=0.3)
        lat_ax.legend(fontsize=8)
        del_ax.set_xscale("log")
        del_ax.set_ylim(0, 105)
        del_ax.set_xlabel("listeners")
        del_ax.set_ylabel("frames delivered (%)")
        del_ax.set_title(f"delivery — {title}")
        for ax in (lat_ax, del_ax):
            ax.xaxis.set_major_locator(FixedLocator(tried))
            ax.xaxis.set_major_formatter(count)
            ax.xaxis.set_minor_formatter(NullFormatter())
        del_ax.grid(True, which="both", alpha=0.3)
        del_ax.legend(fontsize=8, loc="lower left")
    load = results["machine"]["before"]["loadavg"][0], results["machine"]["after"]["loadavg"][0]
    fig.suptitle(f"airwave-bench, same load against both, {results['machine']['cores']} cores, "
                 f"{params['duration']:g} s per run; load average {load[0]:.1f} before / {load[1]:.1f} after",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results.json written by compare.py")
    parser.add_argument("--out", required=True, help="PNG to write")
    opts = parser.parse_args(argv)
    with open(opts.results) as f:
        plot(json.load(f), opts.out)
    print(opts.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
