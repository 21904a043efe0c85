"""Draw throughput and p99 against clients from bench/compare.py's saved rows.

Run:  python bench/compare.py --save docs/bench.json
      python bench/plot.py docs/bench.json docs/bench.png

Needs matplotlib (requirements-bench.txt), which the kit itself never needs.
One line per system; solid for the hot pair, dashed for spread accounts.
"""

import json
import sys


def main(src: str, out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")                       # no display needed
    import matplotlib.pyplot as plt
    rows = json.load(open(src))
    fig, (rate, p99) = plt.subplots(1, 2, figsize=(11, 4.2))
    lines = sorted({(r["system"], r["workload"], r["branches"]) for r in rows})
    systems = sorted({line[0] for line in lines})
    colour = {name: f"C{k}" for k, name in enumerate(systems)}     # one colour per system
    for system, workload, branches in lines:
        pts = sorted((r["clients"], r["per_s"], r["p99_ms"]) for r in rows
                     if (r["system"], r["workload"], r["branches"]) == (system, workload,
                                                                          branches))
        label = f"{system}, {workload}" + (f", {branches} branches" if branches != 2 else "")
        style = "-" if workload == "hot" else "--"
        marker = "o" if system.startswith("kit") else "s"
        for ax, k in ((rate, 1), (p99, 2)):
            ax.plot([p[0] for p in pts], [p[k] for p in pts], style, marker=marker,
                    color=colour[system], label=label)
    for ax, title in ((rate, "transfers per second"), (p99, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    rate.legend(fontsize=8)
    runs = max(r.get("runs", 1) for r in rows)
    each = f"; each point the median of {runs} runs" if runs > 1 else ""
    cores = rows[0].get("cores")                # saved by compare.py since 2026-11-29
    where = f"loopback, {cores} cores" if cores else "loopback"
    fig.suptitle(f"The kit's 2PC beside PostgreSQL's native 2PC ({where}, one run{each})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/plot.py ROWS.json OUT.png  (ROWS.json: what "
                 "bench/compare.py --save wrote)")
    main(*sys.argv[1:3])
