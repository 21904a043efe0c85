"""Run one bank branch: a 2PC participant with its own SQLite ledger, over XML-RPC.

    python branch.py --name Mumbai --port 9100 --preload

This file only reads the command line and wires the parts together. What a branch
does lives in the package: bank/core/participant.py decides each 2PC step,
bank/ledger.py makes it durable, bank/branch_service.py serves it.
"""

import argparse
import errno
import pathlib
import sys

from bank import console, rpc
from bank.branch_service import ASK_EVERY, ASK_PEERS_AFTER, Branch
from bank.errors import BankError
from bank.ledger import check_database

def default_db(name: str) -> pathlib.Path:
    return pathlib.Path("data") / f"{name}.db"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run one bank branch (a 2PC participant).")
    p.add_argument("--name", required=True, help="branch name, e.g. Mumbai")
    p.add_argument("--port", type=rpc.port_arg, default=9100, help="port (0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--db", help="SQLite file (default: data/NAME.db)")
    p.add_argument("--preload", action="store_true",
                   help="open accounts 1001 (10000.00) and 1002 (5000.00) if none exist")
    p.add_argument("--allow-faults", action="store_true", help="enable the fault() RPC")
    p.add_argument("--fail-at", default="", metavar="POINT", help="arm a fault point now")
    p.add_argument("--secret-file", help="shared secret: sign and require signed calls")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve beyond loopback without a secret (trusted networks only)")
    # URLs are checked here, before anything is opened: a replica remembers the primary
    # it was started to follow, so a mistyped --replica-of would stay in its database.
    p.add_argument("--coordinator", default=None, type=rpc.url_arg, metavar="URL",
                   help="take part only in transactions of this coordinator (a LAN)")
    p.add_argument("--replica-of", default=None, type=rpc.url_arg, metavar="URL",
                   help="run as a replica of the primary at URL")
    p.add_argument("--async-replication", action="store_true",
                   help="answer writes before replicas have them (a lab: this can lose money)")
    p.add_argument("--ask-every", type=rpc.time_arg(0.05, 3600), default=ASK_EVERY,
                   metavar="SECONDS",
                   help="how often to ask the coordinator about in-doubt transactions")
    p.add_argument("--ask-peers-after", type=rpc.time_arg(0, 86400), default=ASK_PEERS_AFTER,
                   metavar="SECONDS",
                   help="once the coordinator has not answered for this long, ask the "
                        "other participants too (cooperative termination)")
    rpc.add_output_options(p)              # --log-dir, --quiet, --url-file
    args = p.parse_args(argv)
    args.coordinator, args.replica_of = args.coordinator or "", args.replica_of or ""
    return args


def main(argv=None):
    args = parse_args(argv)
    secret = rpc.load_secret(args.secret_file).as_server() if args.secret_file \
        else None           # K5: its own calls are signed with the server key
    rpc.check_server_keys(secret, args.secret_file)
    rpc.check_bind(args.host, secret, args.insecure_no_auth)
    rpc.hold_exclusive(args.db or default_db(args.name), "database")
    rpc.setup_logging(pathlib.Path(args.db).stem if args.db else args.name, args.log_dir,
                      quiet=args.quiet)
    db = args.db or default_db(args.name)
    problem = check_database(db)        # never vote on a damaged ledger
    if problem:
        raise SystemExit(f"Branch {args.name} will not serve: {problem}. Restore the "
                         "database from a backup, or start this branch as a replica of "
                         "a healthy primary (--replica-of URL) after moving the file aside.")
    try:
        branch = Branch(args.name, db, allow_faults=args.allow_faults or bool(args.fail_at),
                        secret=secret, ask_every=args.ask_every, replica_of=args.replica_of,
                        ask_peers_after=args.ask_peers_after,
                        synchronous=not args.async_replication,
                        coordinator=args.coordinator)
    except BankError as exc:             # e.g. a full disk while it records its role
        raise SystemExit(f"Branch {args.name!r} cannot start: {exc.message}")
    if args.async_replication:
        print("WARNING: asynchronous replication: writes are acknowledged before the "
              "replicas have them; a failover can lose acknowledged money.", flush=True)
    if args.preload and branch.role == "primary":
        branch.preload()
    if args.fail_at:
        try:
            branch.faults.arm(args.fail_at)
        except BankError as exc:
            raise SystemExit(f"Branch {args.name!r} cannot start: {exc.message}")
    try:
        server = rpc.Server(branch, args.host, args.port, secret)
    except OSError as exc:
        raise SystemExit(f"Cannot serve on {args.host}:{args.port}: {exc.strerror}."
                         + (rpc.PORT_HINT if exc.errno == errno.EADDRINUSE else ""))
    branch.url = server.url
    branch.check_fenced()               # an old primary learns of a promotion before serving
    branch.replicas.heartbeat()         # and tells its replicas they are out of sync
    print(f"Branch {branch.name} ({branch.role.value}) serving at {server.url} "
          f"(database {branch.ledger.path}, authentication "
          f"{'on' if secret else 'OFF'}, faults {'allowed' if args.allow_faults else 'off'})",
          flush=True)
    branch.start_background()
    rpc.serve(server, on_stop=branch.close, url_file=args.url_file)


if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
