"""Start, stop and inspect the local demo cluster (a teacher's one-laptop bank).

    python cluster.py start      # Mumbai and Delhi (preloaded) + a coordinator
    python cluster.py start --replicas 1   # ... and one synchronous replica per branch
    python cluster.py status     # what runs, where
    python cluster.py stop
    python cluster.py reset      # delete its databases and logs (when stopped)
    python cluster.py secret secret.txt   # a fresh shared secret for a classroom LAN

The launcher itself (LocalCluster, used by labs, the shell, the window and the tests)
is bank/local_cluster.py; this file is its command line.
"""

import argparse
import sys

from bank import rpc
from bank.local_cluster import (KIT, LocalCluster, replicas_arg, reset, running_cluster,
                                stop_running)

def main(argv=None):
    p = argparse.ArgumentParser(description="Start or stop the local demo cluster.")
    p.add_argument("command", choices=("start", "stop", "status", "reset", "secret"),
                   help="reset deletes the databases and logs of a stopped cluster; "
                        "secret [FILE] makes a shared secret for a classroom LAN")
    p.add_argument("file", nargs="?", help="with secret: write it to FILE (mode 0600)")
    p.add_argument("--home", default=str(KIT), help="folder for data/ and logs/")
    p.add_argument("--replicas", type=replicas_arg, default=0, metavar="N",
                   help="with start: N synchronous replicas per branch (0 to 3), each its "
                        "own process and database")
    args = p.parse_args(argv)
    if args.command == "secret":
        if args.file:
            rpc.write_secret(args.file)
            print(f"Wrote a new secret to {args.file} (readable by you only); copy it to "
                  "every laptop and start each server with --secret-file.")
        else:
            print(rpc.new_secret())
        return 0
    if args.command == "reset":
        removed = reset(args.home)
        print(f"Removed {len(removed)} files: the next start begins with fresh accounts."
              if removed else "Nothing to remove.")
        return 0
    if args.command == "stop":
        stopped = stop_running(args.home)
        print("Stopped: " + ", ".join(stopped) if stopped else "No local cluster was running.")
        return 0
    state = running_cluster(args.home)
    if args.command == "status" or state:
        if not state:
            print("No local cluster is running. Start one with: python cluster.py start")
            return 1
        print("A local cluster is running:")
        for name, info in state["members"].items():
            print(f"  {name:<12} {info['url']}  (pid {info['pid']})")
        return 0
    cluster = LocalCluster(args.home, fixed_ports=True, replicas=args.replicas)
    print("Starting the local cluster...", flush=True)
    cluster.start()
    for name, member in cluster.members.items():
        print(f"  {name:<12} {member.url}  (pid {member.proc.pid})")
    print(f"Logs in {cluster.home / 'logs'}; stop it with: python cluster.py stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
