"""The bank's shell: the entry point. The shell itself lives in bank/shell/.

Role: read the command line, connect (to the local cluster, starting one if none
runs, or to a coordinator by URL or cluster.ini), then run the prompt, a -c line or
a script from stdin, and exit with a code a lab can test.

Run it:
    python shell.py                       # attach to the local cluster, or start one
    python shell.py --config cluster.ini  # or --coordinator URL [--secret-file F]
    python shell.py -c "transfer Mumbai/1001 Delhi/1002 100; balance Mumbai/1001"
    python shell.py < lab.txt             # one command per line; '#' lines are echoed

Rules:
  * Exit code: 0 if every command worked, 1 if one failed (an error, a failed check,
    an aborted transfer), 2 if the local cluster could not be started.
  * A cluster this shell started is stopped when it exits, unless another program
    attached to it since (bank/local_cluster.py, Rule L1); one it attached to keeps running.
  * In a script, messages about connecting go to stderr, so stdout is the transcript.

Glossary:
  home     the local cluster's folder (data/, logs/); default: the kit's folder
  script   commands from -c (separated by ";") or from stdin when it is not a terminal
"""

import argparse
import pathlib
import sys

from bank import console
from bank import local_cluster as cluster
from bank import rpc
from bank.config import coordinator_address, read_config
from bank.errors import BankError
from bank.shell import KIT, BankShell, coordinator_client, sentence


# ---- starting ---------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="The bank's shell. At the prompt, type help.")
    p.add_argument("-c", dest="commands", metavar="COMMANDS",
                   help='run commands separated by ";" and exit (non-zero if one failed)')
    p.add_argument("--coordinator", metavar="URL", type=rpc.url_arg, help="attach to this coordinator")
    p.add_argument("--secret-file", help="the shared secret of that coordinator")
    p.add_argument("--config", help="attach to the coordinator named in a cluster.ini")
    p.add_argument("--replicas", type=cluster.replicas_arg, default=None, metavar="N",
                   help="if it starts the local cluster: N replicas per branch (0 to 3; "
                        "default: as many as its data/ holds)")
    p.add_argument("--home", default=str(KIT), type=rpc.folder_arg,
                   help="the local cluster's folder (data/, logs/); default: the kit's")
    args = p.parse_args(argv)
    if args.coordinator and args.config:
        p.error("give --coordinator or --config, not both")
    return args


def open_shell(args, say) -> tuple:
    """(shell, banner, the LocalCluster to stop at exit, or None)."""
    if args.config or args.coordinator:
        url, secret_file = coordinator_address(args.config) if args.config else \
            (args.coordinator, None)
        secret_file = args.secret_file or secret_file
        client = coordinator_client(url, rpc.load_secret(secret_file) if secret_file else None)
        reached = "Connected to"
        try:
            client.call("ping")
        except BankError as exc:
            say(f"Warning: {sentence(exc)}")
            reached = "Not connected yet (each command tries again) to"
        shell = BankShell(client, home=args.home, branch_urls=_branch_urls(args.config))
        try:
            shell.learn_branches(client.call("branches"))     # for reads while it is down
        except BankError:
            pass                                             # the warning above said so
        return shell, (f"{reached} {shell.where}; crash and restart are unavailable here: "
                       "they work only on the local cluster that `python shell.py` starts."), None
    if cluster.running_cluster(args.home) is None:
        say(f"Starting a local cluster in {pathlib.Path(args.home).resolve()} ...")
    local, started = cluster.attach_or_start(args.home, args.replicas)
    shell = BankShell(coordinator_client(local.coordinator_url, local.secret), local,
                      args.home, where=f"the local cluster in {local.home}")
    how = ("started now; it stops when you quit, unless another program attaches to it"
           if started else "it keeps running after you quit")
    members = "\n".join(f"  {n:<16} {m.url}" for n, m in local.members.items())
    if not started and args.replicas is not None:
        members += ("\n--replicas was not used: the cluster already runs, with the settings "
                    "it was started with.")
    if not started and not local.answers(cluster.COORDINATOR):
        members += ("\nIts coordinator does not answer (crashed?): `restart coordinator` "
                    "brings it back; until then reads go to the branches directly.")
    return shell, f"Connected to {shell.where} ({how}):\n{members}", local if started else None


def _branch_urls(config_path) -> dict:
    """name -> primary URL from a cluster.ini (for reads while the coordinator is down)."""
    if not config_path:
        return {}
    return {name: urls.split(",")[0].strip()
            for name, urls in read_config(config_path)["branches"].items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.commands is not None:
        script = args.commands.split(";")
    elif sys.stdin is None or not sys.stdin.isatty():
        script = sys.stdin.read().splitlines() if sys.stdin else []
    else:
        script = None                              # a person at a terminal
    say = print if script is None else (lambda text: print(text, file=sys.stderr))
    try:
        shell, banner, to_stop = open_shell(args, say)
    except RuntimeError as exc:
        say(f"Cannot start the local cluster: {str(exc).splitlines()[0]}")
        return 2
    except KeyboardInterrupt:
        say("Interrupted while connecting.")
        return 130
    try:
        if script is None:
            shell.run_interactive(banner + "\nAccounts are typed BRANCH/NUMBER, like "
                                  "Mumbai/1001. Type help to list the commands.")
            return 0
        say("# " + banner.splitlines()[0])
        shell.run_script(script)
        return 1 if shell.failures else 0
    finally:
        if to_stop is not None and to_stop.stopped_elsewhere():
            say("The local cluster this shell started was stopped already (cluster.py "
                "stop?); nothing of it is left running.")
            to_stop.stop()                          # ends only what is still ours (L1)
        elif to_stop is not None:
            say("Stopped the local cluster this shell started." if to_stop.stop_unless_kept()
                else cluster.left_running("shell", args.home))


if __name__ == "__main__":
    console.use_utf8()
    sys.exit(main())
