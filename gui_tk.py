"""The desktop window: watch the bank and the Two-Phase Commit protocol, live.

Role: the program that opens the window. It reads the command line, connects to a
coordinator (the local cluster, attached to or started, or one given by URL or
cluster.ini), builds the window (bank/window/app.py) and runs Tk's main loop.

Run it:
    python gui_tk.py                      # attach to the local cluster, or start one
    python gui_tk.py --home DIR           # ... whose data/ and logs/ live in DIR
    python gui_tk.py --coordinator http://192.168.1.30:9000 --secret-file secret.txt
    python gui_tk.py --config cluster.ini
    python gui_tk.py --font-size 14       # for a projector; --activity FILE for the log
    python gui_tk.py --replay FILE        # step through a saved trace (no bank needed)

Files (one role each, in bank/window/):
  app.py           the plumbing: worker threads, the queue pump, the refresh
  branches.py      members, replicas, accounts, and the money gauge
  operations.py    the transfer, deposit, withdraw and open-account forms
  transactions.py  the list of transactions and the sequence diagram
  logs.py          the activity log, the branch journals, CSV export
  lab.py           crash, restart, fault points, partition/heal, failover
  trace_replay.py  a transfer's trace replayed message by message (--replay FILE)
  seen.py, look.py, calls.py, diagram.py   what was heard, the look, the calls, drawing
  fit.py           a small screen: the tree keeps its rows, forms scroll, nothing is cut

Rules:
  * Rule 1 - this file only wires things up: no widget and no call of the window is
    made here (they live in bank/window/, which states the window's own rules).
  * Rule 2 - if this program started the local cluster, it stops it when it ends, even
    when the window could not open, unless another program attached to it since
    (bank/local_cluster.py, Rule L1); a cluster it merely attached to keeps running.
  * Rule 3 - Ctrl-C in the terminal, or ``kill``, closes the window the way its close
    button does.

Glossary:
  local cluster  Mumbai, Delhi and a coordinator on loopback, kept in --home
  attach         use a local cluster that already runs instead of starting one
"""

import argparse
import logging
import pathlib
import sys

try:
    import tkinter as tk
except ImportError:                # some Pythons are built without Tk, or lack its libraries
    raise SystemExit("The window needs Tk for Python (the tkinter module), which this "
                     "Python lacks. Install it (Debian or Ubuntu: sudo apt install "
                     "python3-tk; macOS with Homebrew: brew install python-tk), or use "
                     "the shell instead: python shell.py") from None

from bank import console, local_cluster
from bank import rpc
from bank.config import coordinator_address
from bank.activity import ActivityLog
from bank.window import run_until_closed, trace_replay
from bank.window.app import FONT_SIZE, App

OPERATION_TIMEOUT = 15     # seconds: a transfer may wait for a slow vote (5 s at most)


# ---- command line ------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="The desktop window of the distributed bank.")
    p.add_argument("--coordinator", metavar="URL", type=rpc.url_arg, help="a coordinator to use, e.g. "
                   "http://192.168.1.30:9000 (default: the local cluster)")
    p.add_argument("--secret-file", help="the shared secret of that coordinator")
    p.add_argument("--config", help="cluster.ini: use the coordinator it describes")
    p.add_argument("--replicas", type=local_cluster.replicas_arg, default=None, metavar="N",
                   help="if it starts the local cluster: N replicas per branch (0 to 3; "
                        "default: as many as its data/ holds)")
    p.add_argument("--home", default=str(local_cluster.KIT), type=rpc.folder_arg,
                   help="the local cluster's folder (data/ and logs/)")
    p.add_argument("--activity", help="the activity log (default HOME/logs/activity.csv)")
    p.add_argument("--font-size", type=int, default=FONT_SIZE,
                   help=f"text size in points (default {FONT_SIZE}; try 14 on a projector)")
    p.add_argument("--replay", metavar="FILE", help="step through a saved trace (the "
                   "transactions panel's Save trace) or a run saved by explore.py --save")
    return p.parse_args(argv)


def connect(args):
    """(bank client, cluster or None, started, description) from the command line."""
    if args.coordinator or args.config:
        url, secret_file = args.coordinator, args.secret_file
        if args.config:
            dialled, in_file = coordinator_address(args.config)
            url, secret_file = url or dialled, secret_file or in_file
        secret = rpc.load_secret(secret_file) if secret_file else None
        bank = rpc.Client(url, secret, timeout=OPERATION_TIMEOUT, label="the coordinator")
        return bank, None, False, f"coordinator {url}"
    print("Attaching to the local cluster, or starting one...", flush=True)
    cluster, started = local_cluster.attach_or_start(args.home, args.replicas)
    bank = cluster.coordinator(timeout=OPERATION_TIMEOUT)
    how = ("started by this window (stops when it closes, unless another program attaches)"
           if started else "attached")
    return bank, cluster, started, f"local cluster, {how} · {cluster.coordinator_url}"


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.replay:                         # a replay needs no bank: the trace is in the file
        try:
            return trace_replay.open_file(args.replay, args.font_size)
        except tk.TclError as exc:
            print(f"Cannot open the window ({exc}): is there a display?", file=sys.stderr)
            return 1
    try:
        bank, cluster, started, description = connect(args)
    except (RuntimeError, OSError) as exc:
        print(f"Cannot start the local cluster: {exc}", file=sys.stderr)
        return 1
    home = pathlib.Path(args.home) if cluster is not None else local_cluster.KIT
    activity = ActivityLog(args.activity or home / "logs" / "activity.csv", cluster=bank.url)
    try:
        try:
            root = tk.Tk()
        except tk.TclError as exc:
            print(f"Cannot open the window ({exc}): is there a display?", file=sys.stderr)
            return 1
        app = App(root, bank, cluster=cluster, activity=activity, started=started,
                  source=description, font_size=args.font_size)
        run_until_closed(root, app.close)     # Ctrl-C or kill close it too (Rule W1)
    finally:
        if started and not cluster.stop_unless_kept():   # idempotent: also if it failed
            print(local_cluster.left_running("window", args.home))
    return 0


if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
