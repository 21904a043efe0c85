"""Scenario steps and checks on the coordinator's recovery log and counters (labs 11, 14).

Role: the part of the scenario runner (bank/scenario.py) that does by hand what a
crash or a student with an editor does to logs/recovery.log, and reads back what the
coordinator made of it and what each transaction cost. Mixed into scenario.Player.

Steps (the coordinator must be down for each: it holds its log open):
  tear-log              half a record at the end of the log, no end of line: what a
                        crash in the middle of a write leaves (recovery_log.py Rule 6:
                        a torn tail, cut at the next start)
  damage-log TN KIND    one character of TN's KIND record (begin, commit, abort, end)
                        changed, as an editor would: its checksum no longer matches (Rule 6:
                        damage, the coordinator refuses to start on it)
  restore-log           the operator puts back the log as it was before the first damage

Checks:
  torn tail cut = N         lines of a torn tail the coordinator cut at its last start
  damaged lines = N         damaged lines it runs on (started with --accept-damaged-log)
  TN asked by BRANCH = yes  BRANCH asked the coordinator for TN's decision (yes or no)
  TN PARTY FIELD = N        what TN cost one party (bank/txn_counters.py N1-N3): PARTY is
                            coordinator or a branch; FIELD is writes, forced, unforced or
                            messages. Without PARTY: the sum over the coordinator and
                            every branch.

Glossary:
  party   "coordinator" or a branch, as in bank/txn_counters.py
  writes  log records (the coordinator) or SQLite COMMITs (a branch, all forced: N3)
"""

from bank.clock import now
from bank.local_cluster import COORDINATOR
from bank.txn_counters import branch_writes

COUNT_FIELDS = ("writes", "forced", "unforced", "messages")
LOG_KINDS = ("begin", "commit", "abort", "end")


class LogSteps:
    """Steps and checks on the recovery log and the counters; needs self.bank,
    self.scenario, self.txid() and self.note() from scenario.Player."""

    saved_log = None                 # the log's bytes before the first damage-log

    @property
    def log_path(self):
        return self.bank.home / "logs" / "recovery.log"

    def _coordinator_running(self) -> str:
        if self.bank.member(COORDINATOR).alive:
            return "the coordinator is running: kill it (or let it crash) before its log is touched"
        return ""

    # ---- steps ----

    def step_tear_log(self) -> str:
        """Half a commit record at the end of the log: a write a crash cut short."""
        problem = self._coordinator_running()
        if problem:
            return problem
        half = f"{now()} commit C1-{now()[:16].replace('-', '').replace(':', '')}"
        with open(self.log_path, "ab") as log:
            log.write(half.encode())                 # no end of line: a torn tail
        self.note(f"wrote half a record at the end of the log: {half}")
        return ""

    def step_damage_log(self, name, kind) -> str:
        """Change one character (the txid's last) of TN's `kind` record, as an editor would."""
        problem = self._coordinator_running()
        txid = self.txid(name)
        if problem or not txid:
            return problem or f"{name} has no txid yet"
        original = self.log_path.read_bytes()
        lines = original.splitlines(keepends=True)
        for i, raw in enumerate(lines):
            words = raw.split()
            if len(words) > 2 and words[1] == kind.encode() and words[2] == txid.encode():
                lines[i] = raw.replace(txid.encode(), txid[:-1].encode() + b"#", 1)
                break
        else:
            return f"the recovery log has no {kind} record of {name} ({txid})"
        if self.saved_log is None:
            self.saved_log = original
        self.log_path.write_bytes(b"".join(lines))
        self.note(f"changed one character of line {i + 1}: {lines[i].decode().rstrip()}")
        return ""

    def step_restore_log(self) -> str:
        """The operator restores the log from the copy taken before the first damage."""
        problem = self._coordinator_running()
        if problem or self.saved_log is None:
            return problem or "there is nothing to restore: no damage-log step came before"
        self.log_path.write_bytes(self.saved_log)
        self.saved_log = None
        return ""

    # ---- checks: the value found, as text ----

    def found_torn(self, _subject, _member) -> str:
        return str(self.bank.coordinator(timeout=5).call("ping")["log"]["torn_tail_cut"])

    def found_damaged(self, _subject, _member) -> str:
        return str(len(self.bank.coordinator(timeout=5).call("ping")["log"]["damaged"]))

    def found_asked(self, name, branch) -> str:
        trace = self._detail(name).get("trace", [])
        return "yes" if any(m["msg"] == "query" and m["from"] == branch for m in trace) else "no"

    def found_count(self, subject, party) -> str:
        """TN's cost for one party, or summed over the coordinator and every branch."""
        name, field = subject.split()
        counts = self._detail(name).get("counts")
        if counts is None:
            return "(no counts: the coordinator has restarted since, or never ran it)"
        parties = [party] if party else [COORDINATOR, *self.scenario.branches]
        return str(sum(self._cost(name, counts, p, field) for p in parties))

    def _cost(self, name, counts, party, field) -> int:
        if party == COORDINATOR:                                  # N1: its own count
            own = counts.get(COORDINATOR, {})
            return (own.get("forced", 0) + own.get("unforced", 0) if field == "writes"
                    else own.get(field, 0))
        self.bank.member(party)                   # not a member: one sentence naming them
        if field == "messages":                                   # N2: answers it got
            return counts.get(party, {}).get("messages", 0)
        if field == "unforced":                                   # N3: every write forced
            return 0
        return branch_writes(self.bank.home / "data" / f"{party}.db", self.txid(name))

    def _detail(self, name) -> dict:
        txid = self.txid(name)
        return self.bank.coordinator(timeout=5).call("transaction", txid) if txid else {}
