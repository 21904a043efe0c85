"""Run the coordinator: it moves money between branches atomically with Two-Phase Commit.

    python coordinator.py --port 9000 --branch Mumbai=http://127.0.0.1:9100 \\
                                      --branch Delhi=http://127.0.0.1:9101
    python coordinator.py --config cluster.ini

This file only reads the command line and wires the parts together. What the
coordinator does lives in the package: bank/core/coordinator.py decides each step,
bank/twopc.py drives 2PC, bank/coordinator_service.py serves the public API.
"""

import argparse
import errno
import pathlib
import re
import sys

from bank import console, rpc
from bank.batching import hold_ms_arg
from bank.config import read_config
from bank.coordinator_service import Coordinator
from bank.errors import BankError, check_branch_name, check_url

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")   # a coordinator's name, in every txid

# ---- command line ------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the 2PC coordinator of the bank.")
    p.add_argument("--config", help="cluster.ini with [coordinator] and [branches]")
    p.add_argument("--name", default=None, help="coordinator name, used in txids (C1)")
    p.add_argument("--port", type=rpc.port_arg, default=None,
                   help="port (default 9000; 0: any)")
    p.add_argument("--host", default=None, help="address to serve on (127.0.0.1)")
    p.add_argument("--branch", action="append", default=[], metavar="NAME=URL[,URL...]",
                   help="a branch and its URL (then its replicas' URLs); repeat per branch")
    p.add_argument("--log", default=None, help="recovery log (logs/recovery.log)")
    p.add_argument("--accept-damaged-log", action="store_true",
                   help="start even though the recovery log is damaged: every transaction "
                        "the damage may touch is kept in doubt, never presumed aborted")
    p.add_argument("--auto-failover", type=rpc.time_arg(0, 86400), default=0.0,
                   metavar="SECONDS",
                   help="replace a primary by an in-sync replica once it has not renewed "
                        "its lease for SECONDS (0, the default: failover only by hand)")
    p.add_argument("--presumption", choices=("nothing", "abort", "commit"), default=None,
                   help="what a missing record means (bank/core/coordinator.py C8, C10-C13): "
                        "nothing, abort (the default) or commit")
    p.add_argument("--allow-faults", action="store_true",
                   help="enable fault(), partition() and heal()")
    p.add_argument("--fail-at", default="", metavar="POINT", help="arm a fault point now")
    p.add_argument("--no-batching", dest="batching", action="store_false",
                   help="send every prepare/commit/abort alone (bank/batching.py off)")
    p.add_argument("--hold-decisions", type=hold_ms_arg, default=0.0, metavar="MS",
                   help="hold a commit or abort for a free branch up to MS milliseconds, "
                        "to ride the next message there (bank/batching.py B6); the client "
                        "is then answered at the forced decision (0, the default: never)")
    p.add_argument("--secret-file", help="shared secret: sign and require signed calls")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve beyond loopback without a secret (trusted networks only)")
    rpc.add_output_options(p)              # --log-dir, --quiet, --url-file
    args = p.parse_args(argv)
    config = read_config(args.config) if args.config else {"branches": {}}
    given = {}                                   # --branch overrides the config file's
    for item in args.branch:
        name, sep, url = item.partition("=")
        if not sep or not url:
            p.error(f"--branch takes NAME=URL[,REPLICA_URL...], not {item!r}")
        if name.strip() in given:
            p.error(f"--branch {name.strip()} is given twice; give each branch once")
        given[name.strip()] = url
    branches = dict(config["branches"], **given)
    branches = {name: [u.strip() for u in urls.split(",") if u.strip()]
                for name, urls in branches.items()}
    if not branches:
        p.error("name at least one branch: --branch Mumbai=http://127.0.0.1:9100")
    try:
        for name, urls in branches.items():
            check_branch_name(name)
            for url in urls:
                check_url(url, f"URL of branch {name}")
                rpc.url_arg(url)                  # with a port it can be dialled on
    except BankError as exc:
        p.error(exc.message)
    except argparse.ArgumentTypeError as exc:
        p.error(f"--branch {name}: {exc}")
    args.branches = branches
    replicated = sorted(name for name, urls in branches.items() if len(urls) > 1)
    if args.hold_decisions and replicated:
        print(f"Note: --hold-decisions does not apply to {', '.join(replicated)}: a branch "
              "with replicas gets every message alone.", flush=True)
    if args.hold_decisions and not args.batching:
        p.error("--hold-decisions needs batching: a held decision rides a batch "
                "(leave out --no-batching)")
    args.name = config.get("name", "C1") if args.name is None else args.name   # "": refused
    if not NAME.fullmatch(args.name):
        p.error(f"the coordinator's name goes into every txid: 1 to 16 letters, digits, _ "
                f"or -, starting with a letter, like C1; not {args.name!r}")
    args.host = args.host or config.get("host", "127.0.0.1")
    args.port = args.port if args.port is not None else int(config.get("port", 9000))
    args.log = args.log or config.get("log", "logs/recovery.log")
    if pathlib.Path(args.log).is_dir():
        p.error(f"--log {args.log!r} is a folder; give the recovery log's file, like "
                "logs/recovery.log")
    args.secret_file = args.secret_file or config.get("secret_file") or None
    args.allow_faults = args.allow_faults or config.get("allow_faults", "no") == "yes"
    args.presumption = args.presumption or config.get("presumption", "abort")
    if args.presumption not in ("nothing", "abort", "commit"):
        p.error(f"presumption = {args.presumption!r} in {args.config}: say nothing, abort "
                "or commit")
    return args


def main(argv=None):
    args = parse_args(argv)
    secret = rpc.load_secret(args.secret_file).as_server() if args.secret_file \
        else None           # K5: its own calls are signed with the server key
    rpc.check_server_keys(secret, args.secret_file)
    rpc.check_bind(args.host, secret, args.insecure_no_auth)
    rpc.hold_exclusive(args.log, "recovery log")
    rpc.setup_logging("coordinator", args.log_dir, quiet=args.quiet)
    try:
        coordinator = Coordinator(args.name, args.branches, args.log, secret=secret,
                                  allow_faults=args.allow_faults or bool(args.fail_at),
                                  accept_damaged_log=args.accept_damaged_log,
                                  auto_failover=args.auto_failover,
                                  presumption=args.presumption,
                                  batching=args.batching,
                                  hold_decisions=args.hold_decisions / 1000)
        server = rpc.Server(coordinator, args.host, args.port, secret)
    except OSError as exc:
        raise SystemExit(f"Cannot start the coordinator: {exc.strerror or exc}."
                         + (rpc.PORT_HINT if exc.errno == errno.EADDRINUSE else ""))
    except BankError as exc:
        raise SystemExit(f"Cannot start the coordinator: {exc.message}")
    coordinator.url = server.url
    if args.fail_at:
        try:
            coordinator.faults.arm(args.fail_at)
        except BankError as exc:
            raise SystemExit(f"Cannot start the coordinator: {exc.message}")
    print(f"Coordinator {args.name} serving at {coordinator.url} (log {args.log}, "
          f"branches {', '.join(f'{n}={u[0]}' for n, u in args.branches.items())}, "
          f"authentication {'on' if secret else 'OFF'}, presumed {args.presumption}"
          + (f", decisions held up to {args.hold_decisions:g} ms" if args.hold_decisions
             else "") + ")",
          flush=True)
    if coordinator.log.damage:
        found = coordinator.log.describe()
        print(f"WARNING: the recovery log is damaged ({'; '.join(found['damaged'])}); "
              f"kept in doubt, never presumed aborted: {', '.join(found['in_doubt']) or '-'} "
              "(and any transaction the log does not know).", flush=True)
    for sentence in coordinator.manager.moved(len(coordinator.log.in_flight)):
        print(f"WARNING: {sentence}", flush=True)             # config_manager.py S4
    coordinator.start_background()
    rpc.serve(server, on_stop=coordinator.close, url_file=args.url_file)


if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
