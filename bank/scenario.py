"""Scenario files: a lab a teacher writes without Python, played and graded line by line.

Role: read a plain INI file (the cluster, the steps, the faults, the balances and
transaction states expected at the end), play it against a real local cluster in a
fresh temporary folder, and grade every step and every expected line: ok or FAIL,
with what was found instead.

    python -m bank.scenario labs/scenarios/lab04_blocking.ini [--keep] [--step]

A scenario file (every section but [scenario] may be left out):

    [scenario]
    title = Lab 4: the coordinator dies before deciding
    [cluster]
    branches = Mumbai, Delhi        # each opens 1001 (10000.00) and 1002 (5000.00)
    replicas = 0                    # synchronous replicas per branch
    ask_every = 0.5                 # seconds between an in-doubt branch's questions
    ask_peers_after = 30            # seconds of coordinator silence before it asks its peers
    async_replication = no
    presumption = abort             # the coordinator's: nothing, abort or commit (lab 14)
    [steps]
    run =
        fault coordinator crash-after-prepare
        transfer Mumbai/1001 Delhi/1002 100 -> unknown
        crashed coordinator
        restart coordinator
        wait T1 on Mumbai = aborted
    [expect]
    Mumbai/1001 = 10000.00
    T1 on Mumbai = aborted
    total = 30000.00

Steps (one a line; `#` starts a comment):
    transfer SRC DST AMOUNT [-> committed|aborted|unknown] [&]   the Nth transfer is TN;
                                   `&` runs it in the background (`join` waits for it)
    deposit ACCT AMOUNT [-> ok|refused]     withdraw ACCT AMOUNT [-> ok|refused]
    fault MEMBER POINT     crashed MEMBER (it died on purpose)     kill MEMBER
    restart MEMBER [--accept-damaged-log] [-> started|refused]   (refused: it exited while starting)
    partition BRANCH     heal BRANCH     failover BRANCH     join
    heuristic BRANCH TN commit|abort   (the teacher forces TN at BRANCH, without the coordinator)
    after-heartbeat REPLICA (a heartbeat from its primary just arrived)
    say TEXT     check CHECK     wait CHECK (poll until it holds, 20 s at most)
    tear-log (half a record at the end of the coordinator's recovery log, as a crash leaves it)
    damage-log TN begin|commit|abort|end (one character of that record changed, as an editor would)
    restore-log (the operator puts back the log as it was before the first damage-log)
                                   (the three log steps need the coordinator down: kill it first)
Checks (in steps and in [expect]):
    total = AMOUNT           every balance, through the coordinator (or the branches if it is down)
    MEMBER/NUMBER = AMOUNT   a balance, read from that member     MEMBER/NUMBER held = AMOUNT
    TN = OUTCOME             what the client heard                TN on MEMBER = STATE
    in doubt on MEMBER = N   MEMBER = ROLE (primary, replica, fenced, down, refused)
    TN on coordinator = STATE  (committed, aborted, in doubt, ...: transaction(txid)["state"])
    torn tail cut = N        damaged lines = N   (what the coordinator's recovery found in its log)
    TN asked by BRANCH = yes|no       (BRANCH asked the coordinator for TN's decision)
    TN PARTY writes|forced|unforced|messages = N   what TN cost the coordinator or a branch
    TN writes|forced|unforced|messages = N         the same, summed over every party

Rules:
  * The whole file is checked before anything starts: a bad line is named, with one
    sentence, and nothing runs.
  * A failed step stops the steps (the rest are "not reached"); every [expect] line is
    still graded. The grade is "N of M lines as expected"; the exit code is 0 only if all are.
  * Real processes on loopback, ports from the OS; the folder is removed unless --keep.

The log steps and the checks on the log and the counters are in bank/scenario_storage.py.

Glossary:
  member   a process of the cluster: a branch (Mumbai), a replica (Mumbai-replica1), coordinator
  TN       the Nth transfer of the scenario (T1, T2, ...)
"""

import argparse
import configparser
import pathlib
import shutil
import sys
import tempfile
import threading
import time
import uuid

from bank import console
from bank.errors import BankError
from bank.faults import CRASH_EXIT_CODE
from bank.local_cluster import COORDINATOR, LocalCluster
from bank.money import format_amount, parse_amount
from bank.scenario_storage import COUNT_FIELDS, LOG_KINDS, LogSteps
from bank.views import minor

WAIT_SECONDS = 20.0
SYNC_SECONDS = 60.0      # replicas recorded in sync at start (slower on a loaded machine)
STEP_WORDS = ("transfer", "deposit", "withdraw", "fault", "crashed", "kill", "restart",
              "partition", "heal", "failover", "join", "after-heartbeat", "say", "check", "wait",
              "heuristic", "tear-log", "damage-log", "restore-log")
OUTCOMES = {"transfer": ("committed", "aborted", "unknown"), "deposit": ("ok", "refused"),
            "withdraw": ("ok", "refused"), "restart": ("started", "refused")}
RESTART_OPTIONS = ("--accept-damaged-log",)
PRESUMPTIONS = ("nothing", "abort", "commit")


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message is one sentence naming the line."""


# ---- reading a scenario file ---------------------------------------------------------------

class Scenario:
    """A parsed scenario file: title, cluster options, steps and expected lines."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        ini = configparser.ConfigParser(inline_comment_prefixes=("#",), interpolation=None)
        ini.optionxform = str                         # keep "Mumbai/1001" as written
        try:
            ini.read_string(self.path.read_text(encoding="utf-8"))
        except (OSError, configparser.Error) as exc:
            raise ScenarioError(f"{self.path}: cannot be read as an INI file ({exc}).") from None
        self.title = ini.get("scenario", "title", fallback=self.path.stem)
        cluster = ini["cluster"] if ini.has_section("cluster") else {}
        self.branches = tuple(b.strip() for b in cluster.get("branches", "Mumbai, Delhi").split(","))
        self.replicas = self._number(cluster.get("replicas", "0"), "replicas")
        self.ask_every = cluster.get("ask_every", "0.5")
        self.ask_peers_after = cluster.get("ask_peers_after", "30")
        self.async_replication = cluster.get("async_replication", "no").lower() in ("yes", "true")
        self.presumption = cluster.get("presumption", "abort").strip()
        if self.presumption not in PRESUMPTIONS:
            raise ScenarioError(f"{self.path}: presumption must be one of "
                                f"{', '.join(PRESUMPTIONS)}, not {self.presumption!r}.")
        raw = ini.get("steps", "run", fallback="")
        self.steps = [line.split("#")[0].strip() for line in raw.splitlines()]
        self.steps = [s for s in self.steps if s]
        self.expect = [f"{key} = {value}" for key, value in
                       (ini.items("expect") if ini.has_section("expect") else [])]
        for line in self.steps:
            self._check_step(line)
        for line in self.expect:
            parse_check(line, self.path)

    def _number(self, text, what) -> int:
        if not str(text).strip().isdigit():
            raise ScenarioError(f"{self.path}: {what} must be a whole number, not {text!r}.")
        return int(text)

    def _check_step(self, line: str) -> None:
        word, *rest = line.split()
        if word not in STEP_WORDS:
            raise ScenarioError(f"{self.path}: {line!r} is not a step; steps begin with one "
                                f"of: {', '.join(STEP_WORDS)}.")
        if word in ("check", "wait"):
            parse_check(" ".join(rest), self.path)
        elif word == "restart" and any(w.startswith("--") and w not in RESTART_OPTIONS
                                       for w in rest):
            raise ScenarioError(f"{self.path}: in {line!r} the only option a restart takes "
                                f"is {', '.join(RESTART_OPTIONS)}.")
        elif word == "damage-log" and rest[1:2] and rest[1] not in LOG_KINDS:
            raise ScenarioError(f"{self.path}: in {line!r} the record must be one of "
                                f"{', '.join(LOG_KINDS)}.")
        elif word in OUTCOMES and "->" in rest and rest[rest.index("->") + 1:][:1] and \
                rest[rest.index("->") + 1] not in OUTCOMES[word]:
            raise ScenarioError(f"{self.path}: in {line!r} the outcome must be one of "
                                f"{', '.join(OUTCOMES[word])}.")


def parse_check(line: str, where="") -> tuple:
    """'KEY = VALUE' -> (kind, subject, member, value); a bad line raises ScenarioError."""
    key, sep, value = line.partition(" = ")
    key, value = key.strip(), value.strip()
    words = key.split()
    if not sep or not value:
        raise ScenarioError(f"{where}: {line!r} is not a check of the form KEY = VALUE.")
    if key == "total":
        return ("total", "", "", value)
    if key in ("torn tail cut", "damaged lines"):
        return (words[0], "", "", value)
    if len(words) == 4 and _is_transfer(words[0]) and words[1:3] == ["asked", "by"]:
        return ("asked", words[0], words[3], value)
    if len(words) in (2, 3) and _is_transfer(words[0]) and words[-1] in COUNT_FIELDS:
        return ("count", f"{words[0]} {words[-1]}", " ".join(words[1:-1]), value)
    if key.startswith("in doubt on ") and len(words) == 4:
        return ("in-doubt", "", words[3], value)
    if len(words) == 3 and words[0][:1] == "T" and words[1] == "on":
        return ("state", words[0], words[2], value)
    if len(words) == 1 and _is_transfer(words[0]):
        return ("heard", words[0], "", value)
    if len(words) in (1, 2) and "/" in words[0] and words[1:] in ([], ["held"]):
        member, number = words[0].split("/", 1)
        return ("held" if words[1:] else "balance", number, member, value)
    if len(words) == 1:
        return ("role", "", words[0], value)
    raise ScenarioError(f"{where}: {line!r} is not a check this runner knows (see "
                        "python -m bank.scenario --help).")


def _is_transfer(word: str) -> bool:
    return word[:1] == "T" and word[1:].isdigit()


# ---- playing a scenario -------------------------------------------------------------------

class Player(LogSteps):
    """Plays a Scenario's steps against a LocalCluster and grades each line (the steps
    and checks on the recovery log and the counters come from LogSteps)."""

    def __init__(self, scenario: Scenario, bank: LocalCluster, out=sys.stdout, step=False):
        self.scenario, self.bank, self.out, self.step = scenario, bank, out, step
        self.transfers = {}              # "T1" -> {"txid", "outcome"} as the client heard it
        self.background = []
        self.marks = []                  # True/False per graded line
        self.notes = []                  # what a step saw, printed under its grade
        self.refused = {}                # member -> why its last restart failed

    def play(self) -> bool:
        """Every step, then every expected line; True if all were as expected."""
        self.say(f"{self.scenario.title}\nFolder: {self.bank.home}")
        self.say("\nSteps:")
        for number, line in enumerate(self.scenario.steps, 1):
            problem = self.run_step(line)
            self.grade(problem, line, number)
            if problem:
                for rest in self.scenario.steps[number:]:
                    self.say(f"  --   {rest}   (not reached)")
                    self.marks.append(False)
                break
        problem = self.join()
        if self.notes or problem:                # transfers still running at the end
            self.grade(problem, "join (the transfers still running)")
        self.say("\nExpected at the end:")
        for line in self.scenario.expect:
            self.grade(self.check(line), line)
        good = sum(self.marks)
        self.say(f"\nGrade: {good} of {len(self.marks)} lines as expected"
                 f"{'' if good == len(self.marks) else ' - see FAIL above'}.")
        return good == len(self.marks)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Something a step saw (a txid, a refusal): printed under the step's grade."""
        self.notes.append(text)

    def grade(self, problem: str, line: str, number=None) -> None:
        self.marks.append(not problem)
        label = f"{number:>2}. " if number else ""
        self.say(f"  {'ok  ' if not problem else 'FAIL'} {label}{line}"
                 + (f"\n         {problem}" if problem else ""))
        for note in self.notes:
            self.say(f"         {note}")
        self.notes = []
        if self.step and number:
            try:
                input("         (paused; press Enter) ")
            except EOFError:
                pass

    # ---- steps: each returns "" when it went as written, else what happened ----

    def run_step(self, line: str) -> str:
        word, *args = line.split()
        try:
            return getattr(self, "step_" + word.replace("-", "_"))(*args)
        except BankError as exc:
            return f"the step failed: {exc.message}"
        except TypeError:
            return "this step has the wrong number of words"

    def step_transfer(self, src, dst, amount, *tail) -> str:
        name = f"T{len(self.transfers) + 1}"
        self.transfers[name] = entry = {"txid": "", "outcome": "",
                                        "request_id": f"scenario-{name}-{uuid.uuid4().hex[:8]}"}
        wanted = tail[tail.index("->") + 1] if "->" in tail else ""
        if tail[-1:] == ("&",):
            thread = threading.Thread(target=self._transfer, args=(entry, src, dst, amount),
                                      daemon=True)
            thread.start()
            self.background.append((name, wanted, thread))
            return ""
        self._transfer(entry, src, dst, amount)
        self.note(f"{name}: {entry['outcome']} {self.txid(name)}")
        return _differs(entry["outcome"], wanted, f"{name} was")

    def _transfer(self, entry, src, dst, amount) -> None:
        try:
            result = self.bank.coordinator().call("transfer", src, dst, amount,
                                                  entry["request_id"])
            entry.update(txid=result["txid"], outcome=result["outcome"])
        except BankError as exc:
            entry.update(outcome="unknown", error=exc.message)

    def txid(self, name: str) -> str:
        """The txid of transfer `name`: from its answer, or (still running, or its answer
        was lost in a crash) from the begin record of its request id in the recovery log."""
        entry = self.transfers.get(name, {})
        if not entry.get("txid") and entry:
            log = self.bank.home / "logs" / "recovery.log"
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            for line in text.split("\n"):
                words = line.split()
                if len(words) > 3 and words[1] == "begin" and f'"{entry["request_id"]}"' in line:
                    entry["txid"] = words[2]
        return entry.get("txid", "")

    def step_deposit(self, acct, amount, *tail) -> str:
        return self._cash("deposit", acct, amount, tail)

    def step_withdraw(self, acct, amount, *tail) -> str:
        return self._cash("withdraw", acct, amount, tail)

    def _cash(self, method, acct, amount, tail) -> str:
        wanted = tail[tail.index("->") + 1] if "->" in tail else "ok"
        try:
            self.bank.coordinator().call(method, acct, amount)
            heard = "ok"
        except BankError as exc:
            heard = "refused"
            self.note(f"refused: {exc.message}")
        return _differs(heard, wanted, f"the {method} was")

    def step_fault(self, member, point) -> str:
        self.bank.client(member).call("fault", point)
        return ""

    def step_crashed(self, member) -> str:
        code = self.bank.member(member).wait_exit(10)
        return "" if code == CRASH_EXIT_CODE else f"{member} did not crash on purpose (exit {code})"

    def step_kill(self, member) -> str:
        self.bank.kill(member)
        return ""

    def step_restart(self, member, *tail) -> str:
        """Start a member again; `-> refused` expects it to exit while starting."""
        wanted = tail[tail.index("->") + 1] if "->" in tail[:-1] else "started"
        try:
            self.bank.restart(member, tuple(w for w in tail if w in RESTART_OPTIONS))
            self.refused.pop(member, None)
            heard = "started"
        except RuntimeError as exc:      # it exited (or hung) while starting: why, in its words
            self.refused[member] = _why_refused(str(exc))
            self.note(f"{member} did not start: {self.refused[member]}")
            heard = "refused"
        return _differs(heard, wanted, f"the restart of {member} was")

    def step_partition(self, branch) -> str:
        self.bank.coordinator().call("partition", branch)
        return ""

    def step_heal(self, branch) -> str:
        self.bank.coordinator().call("heal", branch)
        return ""

    def step_heuristic(self, branch, name, outcome) -> str:
        """The teacher's heuristic decision of transfer `name` at `branch` (P10)."""
        done = self.bank.client(branch).call("heuristic", self.txid(name), outcome)
        self.note(f"{branch} {done['state']} {done['txid']} heuristically")
        return ""

    def step_failover(self, branch) -> str:
        result = self.bank.coordinator().call("failover", branch)
        self.note(f"new primary {result['primary']} at epoch {result['epoch']}")
        return ""

    def step_join(self) -> str:
        return self.join()

    def join(self) -> str:
        problems = []
        for name, wanted, thread in self.background:
            thread.join(60)
            entry = self.transfers[name]
            self.note(f"{name}: {entry['outcome']} {self.txid(name)}")
            problems.append(_differs(entry["outcome"], wanted, f"{name} was"))
        self.background = []
        return "; ".join(p for p in problems if p)

    def step_after_heartbeat(self, replica) -> str:
        """Wait until the replica has just heard from its primary (async-replication labs)."""
        return self._poll(lambda: 0 <= self.bank.client(replica).call("replication")
                          ["follower"]["silent_for"] <= 0.2, "a fresh heartbeat", interval=0.02)

    def step_say(self, *words) -> str:
        self.note(" ".join(words))
        return ""

    def step_check(self, *words) -> str:
        return self.check(" ".join(words))

    def step_wait(self, *words) -> str:
        return self._poll(lambda: not self.check(" ".join(words)), " ".join(words),
                          detail=lambda: self.check(" ".join(words)))

    def _poll(self, holds, what, interval=0.1, detail=None) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                if holds():
                    return ""
            except BankError:
                pass                     # not reachable yet: keep polling
            time.sleep(interval)         # polling with a deadline
        return f"waited {WAIT_SECONDS:.0f} s for {what}" + (f": {detail()}" if detail else "")

    # ---- checks: "" when it holds, else what was found ----

    def check(self, line: str) -> str:
        kind, subject, member, value = parse_check(line)
        try:
            found = getattr(self, "found_" + kind.replace("-", "_"))(subject, member)
        except BankError as exc:
            found = f"(cannot tell: {exc.message})"
        if kind in ("total", "balance", "held"):
            value = _amount(value)
        return "" if str(found) == value else f"expected {value}, found {found}"

    def found_total(self, _subject, _member) -> str:
        try:
            accounts = self.bank.coordinator(timeout=5).call("accounts", "")
        except BankError:
            accounts = [a for b in self.scenario.branches for a in self.bank.client(b).call("accounts")]
        return format_amount(sum(minor(a["balance"]) for a in accounts))   # balances: no cap

    def found_balance(self, number, member) -> str:
        return self.bank.client(member).call("account", number)["balance"]

    def found_held(self, number, member) -> str:
        return self.bank.client(member).call("account", number)["held"]

    def found_heard(self, name, _member) -> str:
        return self.transfers.get(name, {}).get("outcome") or "(no such transfer yet)"

    def found_state(self, name, member) -> str:
        txid = self.txid(name)
        if not txid:
            return "(no txid known)"
        if member == COORDINATOR:
            return self.bank.coordinator(timeout=5).call("transaction", txid)["state"]
        return self.bank.client(member).call("status", txid)["state"]

    def found_in_doubt(self, _subject, member) -> str:
        return str(len(self.bank.client(member).call("in_doubt")))

    def found_role(self, _subject, member) -> str:
        if not self.bank.member(member).alive:
            return "refused" if member in self.refused else "down"
        return self.bank.client(member).call("ping")["role"]


def _differs(heard: str, wanted: str, what: str) -> str:
    return "" if not wanted or heard == wanted else f"{what} {heard}, expected {wanted}"


def _why_refused(text: str) -> str:
    """The line of a failed start's output that says why (a coordinator's 'Cannot start')."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("Cannot start")]
    return (said or lines or ["(it said nothing)"])[-1]


def _amount(text: str) -> str:
    """An expected amount written by a teacher ("100" or "100.00"), in the wire form."""
    try:
        return format_amount(parse_amount(text, allow_zero=True))
    except BankError:
        return text


# ---- running a file -------------------------------------------------------------------------

def run_file(path, out=sys.stdout, keep=False, step=False) -> bool:
    """Play one scenario file in a fresh folder; True if every line was as expected."""
    scenario = Scenario(path)
    home = pathlib.Path(tempfile.mkdtemp(prefix=f"bank-scenario-{scenario.path.stem}-"))
    branch_args = ["--ask-every", scenario.ask_every,
                   "--ask-peers-after", scenario.ask_peers_after]
    if scenario.async_replication:
        branch_args.append("--async-replication")
    try:
        with LocalCluster(home=home, branches=scenario.branches, replicas=scenario.replicas,
                          branch_args=tuple(branch_args),
                          coordinator_args=("--presumption", scenario.presumption)) as bank:
            if scenario.replicas:
                _wait_in_sync(bank)
            return Player(scenario, bank, out, step).play()
    finally:
        if keep:
            print(f"Kept (--keep): {home}", file=out)
        else:
            shutil.rmtree(home, ignore_errors=True)


def _wait_in_sync(bank) -> None:
    deadline = time.monotonic() + SYNC_SECONDS
    while time.monotonic() < deadline:
        rows = bank.client(COORDINATOR).call("branches")
        if all(r["in_sync"] for row in rows for r in row["replicas"]):
            return
        time.sleep(0.1)                  # polling with a deadline
    raise ScenarioError(f"the replicas did not come in sync within {SYNC_SECONDS:.0f} s.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bank.scenario",
                                     description=__doc__.split("\n\n")[1],
                                     epilog="Steps (one a line" +
                                     __doc__.split("Steps (one a line")[1].split("Rules:")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="scenario files (.ini)")
    parser.add_argument("--keep", action="store_true", help="keep each cluster's folder")
    parser.add_argument("--step", action="store_true", help="pause after each step")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            failed += not run_file(path, keep=args.keep, step=args.step)
        except ScenarioError as exc:
            print(f"Not played: {exc}", file=sys.stderr)
            failed += 1
        except KeyboardInterrupt:        # a teacher's Ctrl-C: a sentence, not a traceback
            print(f"\nStopped (Ctrl-C) during {path}; its cluster is stopped.",
                  file=sys.stderr)
            return 130
    return 1 if failed else 0


if __name__ == "__main__":
    console.use_utf8()        # a teacher's title or note may hold any character
    sys.exit(main())
