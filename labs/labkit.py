"""Small helpers shared by the lab scripts: options, the lab's folder, steps, checks, waiting.

Role: every lab is one script that starts its own cluster in a fresh folder, prints
what it does as numbered steps, checks what the kit must guarantee, and exits
non-zero (with the reason) the moment the kit misbehaves.

Rules:
  * Every lab takes the same options: --step (stop at each state worth looking at
    until Enter is pressed), --seed N (anything random in the lab comes from it; the
    lab prints it so a run replays), --keep (keep the lab's folder afterwards).
  * A lab prints its folder first. It deletes the folder when it ends, unless --keep
    was given or the lab failed (then the folder is kept for a look, and named).
  * A lab never sleeps to wait: wait_until polls with a deadline.

Glossary:
  home     the lab's temporary folder: data/ (SQLite files) and logs/ (recovery.log, *.log)
  step     one numbered stage of the lab; in --step mode the lab stops before the next one
"""

import argparse
import contextlib
import pathlib
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank import console                               # noqa: E402
from bank.local_cluster import LocalCluster                  # noqa: E402,F401  (labs import it from here)
from bank.errors import BankError                      # noqa: E402,F401
from bank.money import format_amount, parse_amount     # noqa: E402,F401
from bank.views import minor                           # noqa: E402

_step = 0
_options = None
rng = random.Random(1)          # the lab's only source of randomness (seeded by --seed)


def options() -> argparse.Namespace:
    """The lab's command-line options (parsed once): step, seed, keep."""
    global _options
    if _options is None:
        console.use_utf8()          # as every program: a redirected lab writes UTF-8
        parser = argparse.ArgumentParser(description=_title())
        parser.add_argument("--step", action="store_true",
                            help="stop at each state worth looking at until Enter is pressed")
        parser.add_argument("--seed", type=int, default=1,
                            help="seed of anything random in the lab (default 1)")
        parser.add_argument("--keep", action="store_true",
                            help="keep the lab's folder (data/, logs/) afterwards")
        _options = parser.parse_args()
        rng.seed(_options.seed)
    return _options


def _title() -> str:
    """The lab's title: the first line of its docstring."""
    return ((sys.modules["__main__"].__doc__ or "").strip().splitlines() or [""])[0]


# ---- the lab's folder and cluster ----------------------------------------------------------

@contextlib.contextmanager
def lab_folder(name: str):
    """A fresh temporary folder for this lab, printed first, removed at the end unless
    --keep (or the lab failed: then it is kept and named, to look inside)."""
    opts = options()
    home = pathlib.Path(tempfile.mkdtemp(prefix=f"bank-{name}-"))
    print(_title(), flush=True)
    print(f"Folder: {home}   (seed {opts.seed}{'; --step: press Enter at each pause' if opts.step else ''})",
          flush=True)
    try:
        yield home
    except KeyboardInterrupt:            # a teacher's Ctrl-C: a sentence, not a traceback
        print(f"\nStopped (Ctrl-C); the cluster is stopped. The lab's folder is kept "
              f"for a look: {home}", flush=True)
        raise SystemExit(130) from None
    except BaseException:
        print(f"\nThe lab's folder is kept for a look: {home}", flush=True)
        raise
    if opts.keep:
        look = f"   (look: python shell.py --home {home})" \
            if (home / "data" / "cluster.keys").exists() else ""    # a cluster ran here
        print(f"\nKept (--keep): {home}{look}", flush=True)
    else:
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def lab_cluster(name: str, **cluster_args):
    """Start a LocalCluster in a fresh lab folder; stop it and clean up at the end. In
    --step mode the lab pauses once more after its last step, with the cluster still
    running, so the class can look at the end state (a shell on FOLDER, the logs)."""
    with lab_folder(name) as home:
        with LocalCluster(home=home, **cluster_args) as bank:
            _configured(bank)
            yield bank
            pause(f"the last step is done and the cluster still runs (python shell.py "
                  f"--home {home}); Enter stops it")


def _configured(bank, timeout: float = 30.0) -> None:
    """Wait, silently, until the configuration manager has recorded every branch
    (LocalCluster.wait_configured): the start's own writes then never land in the
    middle of a lab's step (lab 1 counts the recovery log's lines around a deposit)."""
    if not bank.wait_configured(timeout):
        print(f"\nLAB FAILED: waited {timeout:.0f} s for the configuration manager to "
              "record every branch", flush=True)
        sys.exit(1)


# ---- steps, pauses and checks ------------------------------------------------------------

def step(text: str, wait: bool = True) -> None:
    """Begin the next numbered step (in --step mode, first wait for Enter, unless
    wait=False: the state before it lasts only a moment, like a transfer kept open
    for a few seconds, and a pause would let it end)."""
    global _step
    if _step and wait:
        pause()
    _step += 1
    print(f"\n[{_step}] {text}", flush=True)


def pause(what: str = "") -> None:
    """In --step mode: stop here until Enter is pressed, so the class can look."""
    if not options().step:
        return
    prompt = f"    -- paused{': ' + what if what else ''}. Press Enter to go on. "
    try:
        input(prompt)
    except EOFError:                 # no terminal (a pipe ran dry): go on
        print()


def show(text: str) -> None:
    print(f"    {text}", flush=True)


def expect(condition: bool, what: str) -> None:
    """A guarantee of the kit; if it does not hold, the lab fails loudly."""
    if not condition:
        print(f"\nLAB FAILED: expected {what}", flush=True)
        sys.exit(1)
    show(f"ok: {what}")


def wait_until(predicate, what: str, timeout: float = 20.0) -> None:
    """Poll predicate (every 0.1 s) until it holds, or fail the lab after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            show(f"ok: {what}")
            return
        time.sleep(0.1)              # polling with a deadline, not waiting blindly
    print(f"\nLAB FAILED: waited {timeout:.0f} s for {what}", flush=True)
    sys.exit(1)


def transfer_expecting_a_crash(bank, src: str, dst: str, amount: str) -> None:
    """Transfer with a crash armed at the coordinator: the client hears no outcome, and
    the coordinator exits with the labs' crash code (86)."""
    try:
        bank.coordinator().call("transfer", src, dst, amount)
        expect(False, "the coordinator to crash")
    except BankError as exc:
        show(f"the client hears: {exc.message.rstrip('.')}. The outcome is not known to "
             "the client.")
    expect(bank.members["coordinator"].wait_exit(10) == 86, "the coordinator crashed on purpose")


def passed(number: int, lesson: str) -> None:
    print(f"\nLab {number} passed: {lesson}", flush=True)


# ---- reading the bank ---------------------------------------------------------------------

def total_money(bank) -> str:
    """Sum of every balance of every branch, as a decimal string (via integer paise)."""
    accounts = bank.coordinator().call("accounts", "")
    return format_amount(sum(minor(a["balance"]) for a in accounts))


def branch_total(bank, names=("Mumbai", "Delhi")) -> str:
    """Every balance, asked of the branches themselves (the coordinator may be down)."""
    return format_amount(sum(minor(a["balance"])
                             for name in names for a in bank.client(name).call("accounts")))


def log_lines(bank, txid: str = "") -> list:
    """The coordinator's recovery log, whole lines (only those of txid, if given)."""
    text = (bank.home / "logs" / "recovery.log").read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if txid in line]


def show_log(bank, txid: str = "") -> None:
    """Print the recovery log's lines for txid: time, record and txid, then its details
    (the JSON) whole on the next line, never cut in the middle."""
    for line in log_lines(bank, txid):
        head, _, details = line.partition(" {")
        show(" ".join(head.split()))
        if details:
            show("    {" + details)
