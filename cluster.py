"""Start, stop and inspect the local demo cluster (a teacher's one-laptop bank).

    python cluster.py start      # Mumbai and Delhi (preloaded) + a coordinator
    python cluster.py start --replicas 1   # ... and one synchronous replica per branch
    python cluster.py start --hold-decisions 5000   # decisions wait 5 s for company
    python cluster.py status     # what runs, where
    python cluster.py stop
    python cluster.py reset      # delete its databases and logs (when stopped)
    python cluster.py secret classroom.keys                 # three role keys for a LAN
    python cluster.py secret student.keys --role student --from classroom.keys

The launcher itself (LocalCluster, used by labs, the shell, the window and the tests)
is bank/local_cluster.py; this file is its command line.
"""

import argparse
import os
import pathlib
import sys

from bank import console, keys, rpc
from bank.batching import hold_ms_arg
from bank.local_cluster import (KIT, LocalCluster, answering_members, replicas_arg, reset,
                                stop_running)

def main(argv=None):
    p = argparse.ArgumentParser(description="Start or stop the local demo cluster.")
    p.add_argument("command", choices=("start", "stop", "status", "reset", "secret"),
                   help="reset deletes the databases and logs of a stopped cluster; "
                        "secret [FILE] makes a classroom LAN's three role keys "
                        "(with --role and --from: one role's key from them)")
    p.add_argument("file", nargs="?", help="with secret: write the keys to FILE (mode 0600)")
    p.add_argument("--role", choices=keys.ROLES,
                   help="with secret: write only this role's key, taken from --from")
    p.add_argument("--from", dest="source", metavar="KEYS",
                   help="with secret --role: the classroom's keys file to take it from")
    p.add_argument("--home", default=str(KIT), type=rpc.folder_arg,
                   help="folder for data/ and logs/")
    p.add_argument("--hold-decisions", type=hold_ms_arg, default=0.0, metavar="MS",
                   help="with start: the coordinator holds a commit or abort up to MS "
                        "milliseconds for the next message to its branch (B6; 0: never)")
    p.add_argument("--replicas", type=replicas_arg, default=None, metavar="N",
                   help="with start: N synchronous replicas per branch (0 to 3), each its "
                        "own process and database (default: as many as its data/ holds, "
                        "none for a new bank)")
    args = p.parse_args(argv)
    if args.file is not None and args.command != "secret":      # never start on a typo
        p.error(f"{args.command} takes no file name (only secret FILE does), "
                f"not {args.file!r}")
    if args.command == "secret":
        return make_keys(args.file, args.role, args.source)
    if args.command == "reset":
        removed = reset(args.home)
        print(f"Removed {len(removed)} files: the next start begins with fresh accounts."
              if removed else "Nothing to remove.")
        return 0
    if args.command == "stop":
        left = []
        recorded = (pathlib.Path(args.home) / "data" / "cluster.json").exists()
        stopped = stop_running(args.home, left)
        if stopped or not left:
            print("Stopped: " + ", ".join(stopped) if stopped else
                  "Its members had stopped already (the program that started it, say); "
                  "its record is removed." if recorded else "No local cluster was running.")
        if left:                          # L6: never reported stopped while it answers
            print(f"Still running: {', '.join(left)}: the process answering there is not "
                  "one whose pid this home's record or files name, so it was not stopped. "
                  "End it where it was started.", file=sys.stderr)
            return 1
        return 0
    if args.hold_decisions and args.replicas:
        p.error("--hold-decisions works only for branches without replicas (a replicated "
                "branch gets every message alone); leave out one of them")
    home = "" if pathlib.Path(args.home) == pathlib.Path(KIT) else f" --home {args.home}"
    running = LocalCluster.attach(args.home)           # None: nothing of it answers
    cut_short = answering_members(args.home) if args.command == "status" and not running \
        else {}
    if cut_short:
        print("A start of the local cluster was cut short (its program ended while it "
              "started) or is under way; these of its members run:")
        for name, (pid, url) in cut_short.items():
            print(f"  {name:<16} {url}  (pid {pid})")
        print(f"`python cluster.py stop{home}` ends them.")
        return 1
    if args.command == "status" or running:
        if not running:
            print(f"No local cluster is running. Start one with: python cluster.py start{home}")
            return 1
        print("A local cluster is running:")
        for name, member in running.members.items():
            print_member(running, name, member.pid)
        started_with = running.coordinator_args
        if "--hold-decisions" in started_with:
            print_hold(started_with[started_with.index("--hold-decisions") + 1])
        if args.command == "start":
            running.keep()                 # Rule L1 of bank/local_cluster.py
            print("It stays running until `python cluster.py stop" + home + "`, also after "
                  "the shell or window that started it (if one did) ends.")
        if args.command == "start" and (args.hold_decisions or args.replicas is not None):
            print("It keeps the settings it was started with; to start it with others: "
                  f"python cluster.py stop{home}, then start again.")
        return 0
    cluster = LocalCluster(args.home, fixed_ports=True, replicas=args.replicas,
                           coordinator_args=("--hold-decisions", f"{args.hold_decisions:g}")
                           if args.hold_decisions else ())
    print("Starting the local cluster...", flush=True)
    try:
        cluster.start()
    except RuntimeError as exc:            # a member exited or hung: its own words follow
        print(f"Cannot start the local cluster: {exc}", file=sys.stderr)
        return 2
    for name, member in cluster.members.items():
        print_member(cluster, name, member.proc.pid)
    if args.hold_decisions:
        print_hold(f"{args.hold_decisions:g}")
    print(f"Logs in {cluster.home / 'logs'}; stop it with: python cluster.py stop{home}")
    return 0


def print_member(cluster, name: str, pid) -> None:
    """One member: its name, URL, pid, and what it does now (a failover moves roles)."""
    role = cluster.role_now(name)
    if not role:
        said = f"does not answer: `restart {name}` in the shell brings it back"
    elif role == "fenced":
        said = (f"fenced: a failover replaced it; `restart {name} --rejoin` in the shell "
                "makes it a replica again")
    elif role == "primary" and not cluster.replica_names(cluster.branch_of(name)):
        said = ""                              # no replicas: "primary" would say nothing
    else:
        said = "" if role == "coordinator" else role
    line = f"  {name:<16} {cluster.member(name).url}  (pid {pid})"
    print(f"{line}  {said}" if said else line)


def print_hold(ms: str) -> None:
    print(f"  the coordinator holds each decision up to {ms} ms for company "
          "(bank/batching.py B6)")


def make_keys(path, role, source) -> int:
    """`secret`: a new keys file with three role keys, or one role's key from it (K4)."""
    if role and not source:
        print("Say which keys file to take the key from: "
              f"python cluster.py secret {path or role + '.keys'} --role {role} "
              "--from classroom.keys", file=sys.stderr)
        return 2
    if source and not role:              # new keys would not be the class's: say so
        print(f"--from takes one role's key from {source}: say which with --role, as in "
              f"python cluster.py secret {path or 'student.keys'} --role student --from "
              f"{source}. Nothing was written (without --from, secret makes new keys, "
              "which no laptop of the class holds).", file=sys.stderr)
        return 2
    try:
        keyring = keys.load_keys(source).only(role) if role else keys.new_keyring()
    except ValueError as exc:
        print(f"{source}: {exc}", file=sys.stderr)
        return 2
    if not path:
        print(keyring.text(), end="")
        return 0
    if pathlib.Path(path).exists():      # its keys may be on every laptop of the class
        print(f"{path} already exists and is left as it is: a new keys file there would "
              "lock out every laptop that holds its keys (or overwrite some other file). "
              "Choose another name, or remove it first if you mean to replace it.",
              file=sys.stderr)
        return 2
    keys.write_keys(path, keyring)
    private = ("readable by you only" if os.name != "nt" else   # Windows ignores mode 0600:
               "private only if its folder is yours")          # the folder's rights apply
    given = {"student": "each student's laptop", "teacher": "the teacher's laptop",
             "server": "a server laptop"}
    print(f"Wrote the {role} key to {path} ({private}): copy it to "
          f"{given[role]}." if role else
          f"Wrote three role keys (student, teacher, server) to {path} ({private}). "
          "Copy it to every branch laptop and the coordinator's; give students "
          f"only the student key: python cluster.py secret student.keys --role student "
          f"--from {path}")
    return 0


if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
