#!/usr/bin/python3
"""PNG plot of bench/imap-idle-memory.py's results: wd-server's memory per idle IMAP
IDLE connection against the number of connections held, plain and TLS.

    /usr/bin/python3 bench/plot-idle-scale.py [--results bench/results] [--out docs/performance]

Takes the newest bench/results/<date>-idle-scale.json and writes idle-scale.png: bytes per
connection (PSS growth of the wd-server processes / connections held, as the runner
computes it; dotted: glibc's bytes in use per connection) on a log connection axis, one
line per mode and "series" (a row's configuration label; rows with "plot": false are left
out), with the issue's targets (8 KiB plain, 24 KiB TLS) drawn in. A count whose run did
not get every connection idle is marked with how many idled. Needs matplotlib (Debian: python3-matplotlib); without it, says so
and exits 0.

(bench/plot.py draws the side-by-side runner's results; this one the scale runner's.)"""

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "performance"))
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.results, "*-idle-scale.json")))
    if not files:
        print("plot-idle-scale.py: no *-idle-scale.json in %s" % a.results, file=sys.stderr)
        return 1
    data = json.load(open(files[-1]))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot-idle-scale.py: matplotlib is not installed (Debian: apt-get install "
              "python3-matplotlib); no plot made", file=sys.stderr)
        return 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = sorted({(r["mode"], r.get("series", "")) for r in data["rows"]
                     if r.get("held") and r.get("plot", True)})
    series_names = sorted({name for _, name in series})
    for mode, name in series:
        rows = sorted((r for r in data["rows"] if r["mode"] == mode and r.get("held")
                       and r.get("series", "") == name and r.get("plot", True)),
                      key=lambda r: r["connections"])
        xs = [r["connections"] for r in rows]
        key = "pss_bytes_per_conn"
        ys = [r[key] / 1024.0 for r in rows]
        color = "tab:blue" if mode == "TLS" else "tab:orange"
        marker = "o" if name == series_names[0] else "s"
        line = ax.plot(xs, ys, marker=marker, color=color,
                       label="%s%s, PSS" % (mode, ", " + name if name else ""))[0]
        heap = [(r["connections"], r["heap_bytes_per_conn"] / 1024.0) for r in rows
                if r.get("heap_bytes_per_conn")]
        if heap:
            ax.plot([h[0] for h in heap], [h[1] for h in heap], marker="x", linestyle=":",
                    color=line.get_color(), label="%s%s, malloc in use" % (
                        mode, ", " + name if name else ""))
        for r, y in zip(rows, ys):
            note = "%.1f" % y
            if r["held"] < r["connections"]:
                note += " per open conn. (%d idle)" % r["held"]
            ax.annotate(note, (r["connections"], y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    xmin = min(r["connections"] for r in data["rows"] if r.get("held") and r.get("plot", True))
    for mode, target in (("plain", 8), ("TLS", 24)):
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
        ax.text(xmin, target, " target %s %d KiB" % (mode, target), fontsize=7,
                va="bottom")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("idle IMAP connections held (LOGIN, SELECT INBOX, IDLE)")
    ax.set_ylabel("KiB per connection (growth / held;\nper open connection where marked)")
    loads = [r["loadavg_at_ramp_end"][0] for r in data["rows"] if r.get("loadavg_at_ramp_end")]
    ax.set_title("wd-server memory per idle IDLE connection (%s)\nshared 2-core machine, "
                 "load average %.0f-%.0f during the runs" % (
                     data.get("started_utc", "")[:10], min(loads or [0]), max(loads or [0])),
                 fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left")
    fig.tight_layout()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "idle-scale.png")
    fig.savefig(path, dpi=110)
    print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
