#!/usr/bin/python3
"""PNG plots of bench/side-by-side.py's results, for docs/PERFORMANCE.md.

    /usr/bin/python3 bench/plot.py [--results bench/results] [--out docs/performance]

For each scenario it takes the newest bench/results/<date>-<scenario>.json and writes:
  imap-meta.png, imap-full.png   operations/s vs clients (median, min-max error bars), per server
  lmtp.png                       messages/s vs message size, per server and raw baselines
  idle.png                       KiB per idle connection vs connection count, per server/TLS
  notify.png                     notification latency percentiles (p50/p90/p99/max), per pair
                                 and background load: wd-load reports percentiles, not samples,
                                 so this is the distribution at those points, not a full CDF;
                                 a "before" block in the result (same run, previous build) is
                                 drawn dashed
  storage.png                    bytes on disk vs the raw message bytes, per store
Needs matplotlib (Debian: apt-get install python3-matplotlib); without it, says so and
exits 0, so a benchmark run never fails for want of plots.
"""

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CAVEAT = "loaded shared 2-core development machine; medians, bars = min–max"


def newest(results, scenario):
    files = sorted(glob.glob(os.path.join(results, "*-%s.json" % scenario)))
    return json.load(open(files[-1])) if files else None


def err(s):
    """(median, [lower, upper]) of a summary dict, or (None, None)."""
    if not s:
        return None, None
    return s["median"], [s["median"] - s["min"], s["max"] - s["median"]]


def by_server(rows, key):
    out = {}
    for r in rows:
        out.setdefault(r["server"], []).append(r)
    return out


def plot_imap(plt, data, path, title):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server, rows in by_server(data["rows"], "server").items():
        xs, ys, lo, hi = [], [], [], []
        for r in sorted(rows, key=lambda r: r["clients"]):
            m, e = err(r["ops_per_s"])
            if m is None:
                continue
            xs.append(r["clients"])
            ys.append(m)
            lo.append(e[0])
            hi.append(e[1])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=server)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("IMAP operations/s (median of %d rounds)" % data.get("repeat", 0))
    ax.set_title("%s: %s\n%s" % (title, data.get("mix", ""), CAVEAT), fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_lmtp(plt, data, path):
    sizes = data["sizes"]
    servers = []
    for r in data["rows"]:
        if r["server"] not in servers:
            servers.append(r["server"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(servers))
    for i, s in enumerate(servers):
        ys, lo, hi = [], [], []
        for size in sizes:
            row = next((r for r in data["rows"] if r["server"] == s and r["size"] == size), None)
            m, e = err(row and row["messages_per_s"])
            ys.append(m or 0)
            lo.append(e[0] if e else 0)
            hi.append(e[1] if e else 0)
        xs = [k + (i - (len(servers) - 1) / 2) * width for k in range(len(sizes))]
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=s)
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels(sizes)
    ax.set_yscale("log")
    ax.set_xlabel("message size (1 LMTP connection)")
    ax.set_ylabel("messages/s (median)")
    ax.set_title("Delivery rate vs message size\n" + CAVEAT, fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_idle(plt, data, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server, rows in by_server(data["rows"], "server").items():
        xs, ys, lo, hi = [], [], [], []
        for r in sorted(rows, key=lambda r: r["connections"]):
            m, e = err(r["bytes_per_conn"])
            if m is None:
                continue
            xs.append(r["connections"])
            ys.append(m / 1024.0)
            lo.append(e[0] / 1024.0)
            hi.append(e[1] / 1024.0)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=server)
    ax.axhline(8, color="grey", linestyle="--", linewidth=0.8)
    ax.axhline(24, color="grey", linestyle=":", linewidth=0.8)
    ax.text(ax.get_xlim()[0], 8, " target plain 8 KiB", fontsize=7, va="bottom")
    ax.text(ax.get_xlim()[0], 24, " target TLS 24 KiB", fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle IMAP connections held")
    ax.set_ylabel("KiB per connection (PSS of the process tree)")
    ax.set_title("Memory per idle IDLE connection\n" + CAVEAT, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_notify(plt, data, path):
    """One step curve per pair and background load; rows of data["before"] (the same run
    with the build before a change, when the result file carries one) dashed."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    pcts = [("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99), ("max_ms", 1.0)]
    # from-publish (the wd_events message to B's EXISTS) when the run measured it: under
    # load A's OK often comes after B's EXISTS, and from-OK is then 0
    metric = "from_publish" if any((r.get("from_publish") or {}).get("p50_ms") for r in data["rows"]) \
        else "from_ok"
    series = [(row, "-", "") for row in data["rows"]]
    before = data.get("before") or {}
    series += [(row, "--", "before: ") for row in before.get("rows", [])]
    colors = {}
    for row, style, prefix in series:
        xs, ys = [], []
        for key, q in pcts:
            m, _ = err((row.get(metric) or {}).get(key))
            if m is not None:
                xs.append(max(m, 0.1))  # log axis: 0 (EXISTS before the OK) drawn at 0.1
                ys.append(q)
        if not xs:
            continue
        key = (row["pair"], row["background"])
        line = ax.step([xs[0]] + xs, [0] + ys, where="post", marker="o", linestyle=style,
                       color=colors.get(key),
                       label="%s%s, %d background" % (prefix, row["pair"], row["background"]))
        colors.setdefault(key, line[0].get_color())
    ax.axvline(50, color="grey", linestyle="--", linewidth=0.8)
    ax.text(50, 0.05, " 50 ms target (p99)", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(("ms from the wd_events message (A's publish) to B's * EXISTS"
                   if metric == "from_publish" else "ms from A's APPEND OK to B's * EXISTS")
                  + " (median over rounds of each percentile)")
    ax.set_ylabel("fraction of notifications")
    title = "Cross-instance notification latency (p50/p90/p99/max)"
    if before:
        title += "\ndashed: %s" % before.get("label", "before")
    ax.set_title(title + "\n" + CAVEAT, fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_storage(plt, data, path):
    rows = data["rows"]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [r["store"].split(" (")[0] for r in rows]
    disk = [r["disk_bytes"] / 1e6 for r in rows]
    raw = [(r["raw_bytes"] or 0) / 1e6 for r in rows]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], raw, 0.4, label="messages as sent (sum of sizes)")
    ax.bar([x + 0.2 for x in xs], disk, 0.4, label="bytes on disk")
    for x, d, r in zip(xs, disk, raw):
        if r:
            ax.text(x + 0.2, d, "%.2f×" % (d / r), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("Storage after the same fill (shared attachments)\n" + CAVEAT, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "performance"))
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is not installed (Debian: apt-get install python3-matplotlib); "
              "no plots made", file=sys.stderr)
        return 0
    os.makedirs(a.out, exist_ok=True)
    jobs = [("imap-meta", lambda d, p: plot_imap(plt, d, p, "IMAP metadata mix")),
            ("imap-full", lambda d, p: plot_imap(plt, d, p, "IMAP full mix")),
            ("lmtp", lambda d, p: plot_lmtp(plt, d, p)),
            ("idle", lambda d, p: plot_idle(plt, d, p)),
            ("notify", lambda d, p: plot_notify(plt, d, p)),
            ("storage", lambda d, p: plot_storage(plt, d, p))]
    for scenario, fn in jobs:
        data = newest(a.results, scenario)
        if data is None:
            print("plot.py: no results for %s" % scenario, file=sys.stderr)
            continue
        path = os.path.join(a.out, scenario + ".png")
        fn(data, path)
        plt.close("all")
        print("plot.py: wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
