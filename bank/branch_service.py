"""A bank branch: a 2PC participant with its own SQLite ledger, served over XML-RPC.

Role: check every request, hand it to the ledger (where the participant core,
bank/core/participant.py, decides and SQLite makes it durable), and only then
answer. It also runs the participant's timer (rule P6): a branch holding a prepared
transaction asks the coordinator for the decision until it learns it, and the other
participants when the coordinator cannot be reached (P8, P9: bank/branch_termination.py,
with the teacher's heuristic decisions, P10, P11). Its replication role (primary,
replica, fenced) is bank/branch_roles.py.
The program that starts it is branch.py at the top of the repository.

Rules:
  * BR1 - check, then write, then reply. Arguments are checked before anything
    changes; the ledger makes the change durable; the reply leaves afterwards.
  * BR2 - a yes vote is a promise (P1, P6). A prepared transaction never times out
    by itself: it asks for the decision every few seconds (``--ask-every``).
  * BR3 - fault points sit exactly between those steps (see faults.py), so a
    student can crash the branch "after the vote was recorded, before it was sent".
  * BR4 - roles (bank/keys.py): a branch started with ``--coordinator URL`` carries out
    participant steps only for that coordinator: a prepare naming another one is
    refused like a wrong role (HTTP 403), before anything changes (refuse_caller),
    alone or inside a batch (the whole batch is refused).
  * BR5 - the branch narrates its 2PC steps in its terminal and log (INFO, one plain
    sentence each): the prepare and its vote, the commit or abort, and each time it
    asks the coordinator for a decision while it holds money ("still holding 100.00").
    So a class watching the branch windows sees who is blocked, and on what.

Glossary (more in bank/core/messages.py):
  ops        what a prepare asks this branch to do: [{"account": "1001", "delta": "-50.00"}]
  in doubt   prepared here, decision not yet known
"""

import logging
import pathlib
import threading
import time

from bank import rpc
from bank.batching import BatchRunner, check_items, run_step
from bank.counters import RUN
from bank.errors import (BankError, FaultCode, check_account_number, check_branch_name,
                    check_limit, check_text, check_token, check_url)
from bank.faults import FaultPoints
from bank.core.messages import BRANCH_POINTS
from bank.core.participant import MAX_OPS
from bank.ledger import Ledger
from bank.money import parse_amount, parse_delta
from bank.core.messages import Role, TxState
from bank.branch_roles import (ManagerLink, ReplicationRoles, followed_primaries,
                               remember_followed)
from bank.branch_termination import ASK_PEERS_AFTER, Termination, _held_text, _ops_text
from bank.core.replica import BranchRole
from bank.replication import HEARTBEAT_EVERY, Follower, Replicas
from bank.storage import durable_replace

log = logging.getLogger("branch")

PRELOAD = (("1001", "Asha Rao", 10_000_00), ("1002", "Vikram Shah", 5_000_00))
ASK_EVERY = 2.0          # seconds between decision queries for an in-doubt txn


class Branch(ReplicationRoles, ManagerLink, Termination):
    """The public XML-RPC methods of one branch. Each returns a dict or a list of dicts."""

    PUBLIC_METHODS = ("ping", "open_account", "account", "accounts", "deposit", "withdraw",
                      "transfer", "prepare", "commit", "abort", "status", "in_doubt",
                      "journal", "promote", "batch",
                      # cooperative termination and heuristic decisions (branch_termination.py)
                      "outcome", "heuristic", "heuristics",
                      # replication between branch servers (replication.py)
                      "replication", "changes_since", "attach_replica", "caught_up",
                      "replicate", "follow", "use_manager",
                      # the shell's `check`
                      "audit")

    def __init__(self, name: str, db_path, *, allow_faults=False, secret=None,
                 ask_every: float = ASK_EVERY, replica_of: str = "", synchronous=True,
                 coordinator: str = "", ask_peers_after: float = ASK_PEERS_AFTER):
        self.name = check_branch_name(name)
        self.coordinator = check_url(coordinator, "coordinator URL") if coordinator else ""
        self.ledger, replica_of = _open_ledger(db_path, self.name, replica_of, secret)
        self.faults = FaultPoints("branch", BRANCH_POINTS, allow_faults, delays=True)
        if allow_faults:
            self.PUBLIC_METHODS = Branch.PUBLIC_METHODS + ("fault",)
        self.secret, self.ask_every = secret, ask_every
        self.ask_peers_after = ask_peers_after  # T1: seconds of coordinator silence first
        self._silent_since = {}                 # txid -> when the coordinator first was silent
        self._prepared_since = {}               # txid -> when the termination loop saw it (T4)
        self.url = ""                           # set once the server listens
        self._coordinators = {}                 # url -> rpc.Client
        self._stop = threading.Event()
        self.roles = BranchRole(Role.REPLICA if replica_of else
                                Role(self.ledger.meta("role", "primary")),
                                int(self.ledger.meta("epoch", "1")),
                                replica_of or self.ledger.meta("primary", ""))
        self._recorded_role = None
        self._record_role()
        self.replicas = Replicas(self, synchronous)
        self.follower = Follower(self, self.primary_url) if self.role == "replica" else None
        self.role_lock = threading.RLock()  # a push is checked and applied under it, and
                                            # follow/promote change the role under it
        self._batches = BatchRunner(self)       # carries out batch() (bank/batching.py)

    # The replication role is the core's (bank/core/replica.py, rules R1-R9).
    role = property(lambda self: self.roles.role)
    epoch = property(lambda self: self.roles.epoch)
    primary_url = property(lambda self: self.roles.primary)

    # ---- information ------------------------------------------------------------------

    def ping(self) -> dict:
        """Who and what this server is: {"name", "role": "primary"|"replica"|"fenced",
        "epoch", "primary", "applied", "in_sync", "takes_writes" (a primary that needs
        no lease, as no replica is in its in_set, or holds one: R8), "holds_lease" (a
        lease from the manager holds now), "accounts", "in_doubt", "faults",
        "counters": {"fsyncs", "steps"} of the ledger (bank/group_commit.py), and the
        "run" that counted them (bank/counters.py)}."""
        return {"name": self.name, "role": self.role.value, "epoch": self.epoch,
                "primary": self.primary_url, "applied": self.ledger.applied_seq(),
                "in_sync": bool(self.follower and self.follower.in_sync),
                "takes_writes": self.role.value == "primary" and self.lease_ok(),
                "holds_lease": self.role.value == "primary" and self.holds_lease(),
                "accounts": self.ledger.count_accounts(),
                "in_doubt": len(self.ledger.in_doubt()),
                "faults": self.faults.describe()["armed"],
                "counters": dict(self.ledger.counters(), run=RUN)}

    def account(self, number) -> dict:
        """One account: {"branch", "number", "owner", "balance", "held", "available"}.

        Example: account("1001")
        """
        return self.ledger.account(check_account_number(number))

    def accounts(self) -> list:
        """Every account of this branch, ordered by number."""
        return self.ledger.accounts()

    def journal(self, number="", limit=100) -> list:
        """The last `limit` journal rows (one per balance change), oldest first.

        Each row: {"seq", "ts", "branch", "account", "kind", "amount", "balance_after",
        "txid", "request_id", "detail"}. Example: journal("1001", 20)
        """
        number = check_account_number(number) if number not in ("", None) else ""
        return self.ledger.journal(number, check_limit(limit))

    # ---- local operations -------------------------------------------------------------

    def open_account(self, owner, initial="0", number="", request_id="") -> dict:
        """Open an account with an opening balance; the number is chosen if "" is given
        (the smallest free one from 1001). With a request_id, a retry opens nothing more
        and answers the same account.

        Example: open_account("Meera Iyer", "2500.00")
        """
        owner = check_text(owner, "owner name")
        amount = parse_amount(initial, allow_zero=True)
        number = check_account_number(number) if number not in ("", None) else ""
        acct = self._write(self.ledger.open_account, owner, amount, number,
                           check_token(request_id, "request id", optional=True))
        log.info("opened %s/%s for %s with %s", self.name, acct["number"], owner,
                 acct["balance"])
        return acct

    def deposit(self, number, amount, request_id="") -> dict:
        """Add money to an account; returns the account. Example: deposit("1001", "250.00")"""
        args = (check_account_number(number), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self._write(self.ledger.deposit, *args)

    def withdraw(self, number, amount, request_id="") -> dict:
        """Take money out, if that much is available (holds count as spent).

        Example: withdraw("1001", "100")
        """
        args = (check_account_number(number), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self._write(self.ledger.withdraw, *args)

    def transfer(self, src, dst, amount, request_id="") -> dict:
        """Move money between two accounts of this branch in one local transaction.

        Returns {"src": account, "dst": account}. Example: transfer("1001", "1002", "10")
        """
        args = (check_account_number(src), check_account_number(dst), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self._write(self.ledger.transfer, *args)

    # ---- 2PC participant --------------------------------------------------------------

    def prepare(self, txid, coordinator, ops, participants=None) -> dict:
        """Phase 1: can this branch apply `ops`? Holds debits, records, then votes.

        participants (optional): {name: URL} of every participant of the transaction,
        kept with the txid so that, in doubt and cut off from the coordinator, this
        branch can ask the others (cooperative termination, P9).
        Answers {"vote": "yes"|"no", "reason"}; a repeated prepare gets the same vote.
        Example: prepare("C1-20261125T130102-9f3a2c", "http://127.0.0.1:9000",
                         [{"account": "1001", "delta": "-50.00"}],
                         {"Mumbai": "http://127.0.0.1:9001", "Delhi": "http://127.0.0.1:9002"})
        """
        return run_step(self, self.prepare_step(txid, coordinator, ops, participants))

    def commit(self, txid) -> dict:
        """Phase 2: apply a prepared transaction. Repeating it is harmless.

        Committing an unknown or aborted txid is a protocol violation (Fault 409).
        """
        return run_step(self, self.commit_step(txid))

    def abort(self, txid) -> dict:
        """Phase 2: release the holds of a transaction; an unknown txid is recorded aborted
        (so a late prepare votes no). Aborting a committed txid is refused (Fault 409).
        """
        return run_step(self, self.abort_step(txid))

    # Each participant step in two halves around its write (bank/batching.py, B4): the
    # `yield` hands the write to whoever runs the step, and resumes once it is durable
    # and on the in-sync replicas, with the write's result. Alone, that is at once;
    # in a batch, after the COMMIT the batch's writes share.

    def prepare_step(self, txid, coordinator, ops, participants=None):
        txid = check_token(txid, "transaction id")
        coordinator = check_url(coordinator, "coordinator URL")
        parsed, peers = _parse_ops(ops), _parse_participants(participants)
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-vote")
        refuse = "fault injected: vote-no" if self.faults.fires("vote-no") else ""
        vote, reason = yield self._apply(self.ledger.prepare, txid, coordinator, parsed,
                                         refuse, peers)
        if vote.value == "yes":
            log.info("prepare %s (%s): vote yes, recorded on disk; %s until the "
                     "coordinator decides.", txid, _ops_text(self.name, parsed),
                     _held_text(self.name, parsed))
        else:
            log.info("prepare %s (%s): vote no (%s); nothing is held.", txid,
                     _ops_text(self.name, parsed), reason or "no reason given")
        self.faults.crash_if_armed("crash-after-vote")
        return {"vote": vote.value, "reason": reason}

    def commit_step(self, txid):
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-commit")
        ack = yield self._apply(self.ledger.commit, txid)     # durable here and on replicas
        if ack.state is not TxState.COMMITTED:              # P11: a heuristic abort here
            return self._damage_answer(txid, "commit")
        log.info(ACKED[_how_acked(ack)]["commit"], txid)
        self.faults.crash_if_armed("crash-after-commit")
        return {"txid": txid, "state": ack.state.value, "again": ack.again}

    def abort_step(self, txid):
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        ack = yield self._apply(self.ledger.abort, txid)
        if ack.state is not TxState.ABORTED:                # P11: a heuristic commit here
            return self._damage_answer(txid, "abort")
        log.info(ACKED[_how_acked(ack)]["abort"], txid)
        return {"txid": txid, "state": ack.state.value, "again": ack.again}

    def _damage_answer(self, txid: str, decided: str) -> dict:
        """P11: the coordinator's decision contradicts our heuristic one: recorded, said."""
        row = self.ledger.status(txid)
        log.warning("%s %s: the coordinator decided %s, but the operator had forced %s "
                    "here (heuristic): heuristic damage recorded; the money does not "
                    "balance across branches (see check).", decided, txid, row["damage"],
                    row["heuristic"])
        return {"txid": txid, "state": row["state"], "heuristic": row["heuristic"],
                "damage": row["damage"]}

    def batch(self, calls) -> list:
        """Several prepare/commit/abort calls in one message (bank/batching.py, B1-B4).

        calls: [[method, [arguments]], ...]; each runs exactly as that call alone would.
        Answers one slot per call, in order: {"result": ...} or {"fault", "message"}.
        Example: batch([["commit", ["C1-20261125T130102-9f3a2c"]], ["abort", ["C1-..."]]])
        """
        return self._batches.run(calls)

    def status(self, txid) -> dict:
        """This branch's state for a txid: unknown, prepared, committed or aborted."""
        return self.ledger.status(check_token(txid, "transaction id"))

    def in_doubt(self) -> list:
        """Prepared transactions waiting for a decision, with their held ops."""
        return self.ledger.in_doubt()

    def refuse_caller(self, role: str, method: str, params) -> str:
        """BR4: why this well-signed call is not for us to carry out, or "" (rpc.py asks).

        Participant steps are only for the coordinator this branch is configured with;
        without --coordinator (one laptop) any coordinator holding the server key may.
        A prepare inside a batch is checked as one sent alone (the whole batch refused).
        """
        if not self.coordinator:
            return ""
        if method == "prepare":
            named = [params[1]] if len(params) >= 2 else []
        elif method == "batch" and params:
            try:
                items = check_items(params[0])      # the batch runner's own reading
            except BankError:
                return ""                           # refused as a whole when it runs
            named = [args[1] for item, args in items if item == "prepare" and len(args) >= 2]
        else:
            return ""
        for coordinator in named:
            if coordinator != self.coordinator:
                return (f"Forbidden: branch {self.name} takes part only in transactions of "
                        f"the coordinator it is configured with ({self.coordinator}), not "
                        f"{str(coordinator)[:80]!r}. Nothing was changed.")
        return ""

    def fault(self, point) -> dict:
        """Arm a fault point (only with --allow-faults): vote-no, crash-before-vote,
        crash-after-vote, crash-before-commit, crash-after-commit (each fires once),
        cut-replication (stays on until disarmed), delay=SECONDS; "" disarms.
        """
        return self.faults.arm(point)

    def run_replication(self):
        """Background loop: a primary checks it was not replaced and sends heartbeats;
        a replica catches up when behind."""
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                if self.role == "primary":
                    self.check_fenced(only_out_of_sync=True)
                if self.role == "primary":
                    self.renew_lease()                      # R8
                if self.role == "primary":
                    self.replicas.heartbeat()
                elif self.role == "replica" and not self.follower.in_sync:
                    self.follower.catch_up()
            except Exception:
                log.exception("replication loop")

    def start_background(self):
        threading.Thread(target=self.run_termination, name="termination", daemon=True).start()
        threading.Thread(target=self.run_replication, name="replication", daemon=True).start()

    def close(self):
        self._stop.set()
        self.ledger.close()

    def preload(self) -> None:
        """Open the demo accounts (1001 and 1002) if this branch has no accounts yet."""
        if self.ledger.count_accounts() == 0:
            for number, owner, balance in PRELOAD:
                self.ledger.open_account(owner, balance, number)
            log.info("preloaded accounts %s", ", ".join(n for n, _, _ in PRELOAD))

    # ---- the audit (the shell's `check`) --------------------------------------------

    def audit(self) -> dict:
        """This branch's books reconciled in SQL over every journal row, exact at any size:
        {"branch", "accounts", "journal_rows", "total", "held", "brought_in", "negative",
        "holds", "mismatched", and their counts, "role" and "url" of this server (books
        read from a replica or a fenced server may lag)}. Example: audit()"""
        return dict(self.ledger.audit(), role=self.role.value, url=self.url)


# What a branch's log says when it acknowledges a decision: a new one, the same one
# again (P3), or the one the operator had already forced here (P11).
ACKED = {
    "new": {"commit": "commit %s: the coordinator decided commit; applied here, any hold "
                      "is released.",
            "abort": "abort %s: the coordinator decided abort; nothing applied here, any "
                     "hold is released."},
    "again": {"commit": "commit %s again: it was already applied here, so nothing is done "
                        "twice (P3); acknowledged again.",
              "abort": "abort %s again: it was already aborted here (P3); acknowledged "
                       "again."},
    "heuristic": {"commit": "commit %s: the coordinator decided commit, as the operator "
                            "had forced here by hand (P11): nothing more to apply.",
                  "abort": "abort %s: the coordinator decided abort, as the operator had "
                           "forced here by hand (P11): nothing more to release."},
}


def _how_acked(ack) -> str:
    """Which of ACKED's lines an acknowledgement (bank/core/messages.py Ack) takes."""
    return "again" if ack.again else "heuristic" if ack.heuristic else "new"


def _open_ledger(db_path, name: str, replica_of: str, secret) -> tuple:
    """(ledger, primary URL to follow or ""). A former primary rejoining as a replica
    starts from a fresh copy.

    Its old database may hold changes no replica ever got, so it is kept aside
    (NAME.db.before-rejoin-TIME), never merged. But a promoted replica restarted with
    its old --replica-of (a server it followed before, the one it replaced or the one
    it was started after: remember_followed) starts as the primary it was, unless
    that server now answers with a newer epoch (as a primary, a replica or fenced: a
    newer primary exists, so it was replaced in turn): then it rejoins, instead of
    coming back fenced for good, or serving reads of a stale history.
    """
    ledger = Ledger(db_path, name)
    role = ledger.meta("role", "primary")
    if replica_of and role == "primary" and ledger.applied_seq():
        newer = _newer_at(replica_of, name, int(ledger.meta("epoch", "1")), secret)
        followed = followed_primaries(ledger) + [ledger.meta("promoted_from", "")]
        if replica_of in followed and not newer:
            log.warning("%s was promoted since it followed %s: starting as the primary",
                        db_path, replica_of)
            return ledger, ""                  # a stale --replica-of after a failover
        if not newer:
            ledger.close()
            raise SystemExit(
                f"{db_path} holds a primary's data, and {replica_of} does not answer with "
                "a newer epoch, so rejoining it could lose or fork data. Start this server "
                f"when {replica_of} is up, or without --replica-of to serve as the primary.")
    if replica_of and role != "replica" and ledger.applied_seq():
        followed = followed_primaries(ledger)      # this server followed them: still true
        epoch = ledger.meta("epoch", "1")          # and saw this epoch: no older primary
        ledger.close()
        stamp = _unused_stamp(db_path)
        for suffix in ("", "-wal", "-shm"):
            old = pathlib.Path(str(db_path) + suffix)
            if old.exists():             # synced, renamed, folder synced: kept for sure
                durable_replace(old, f"{old}.before-rejoin-{stamp}")
        log.warning("rejoining as a replica: old database kept as %s.before-rejoin-%s",
                    db_path, stamp)
        ledger = Ledger(db_path, name)
        ledger.set_meta(epoch=epoch)                # is copied after a rejoin (R3)
        remember_followed(ledger, *followed)
    remember_followed(ledger, replica_of)
    return ledger, replica_of


def _unused_stamp(db_path) -> str:
    """A time stamp no copy of db_path was set aside under yet: a second rejoin within
    the same second must never replace the first one's copy (it may hold changes no
    one else had)."""
    stamp = base = time.strftime("%Y%m%dT%H%M%S")
    taken = 1
    while pathlib.Path(f"{db_path}.before-rejoin-{stamp}").exists():
        taken += 1
        stamp = f"{base}-{taken}"
    return stamp


def _newer_at(url: str, name: str, epoch: int, secret) -> bool:
    """Does a server of our branch with a higher epoch than ours answer at url (a
    primary, or a replica or fenced server that has seen one): so we were replaced?
    Another branch's epochs say nothing of ours (R9)."""
    try:
        info = rpc.Client(url, secret, timeout=3).call("ping")
    except BankError:
        return False
    return info.get("name") == name and isinstance(info.get("epoch"), int) and \
        info["epoch"] > epoch


def _parse_participants(participants) -> list:
    """{"Mumbai": URL, ...} -> [["Delhi", URL], ...] sorted; None (an old caller) -> []."""
    if participants in (None, ""):
        return []
    if not isinstance(participants, dict) or len(participants) > MAX_OPS:
        raise BankError(FaultCode.BAD_INPUT, "participants must be a struct like "
                        '{"Mumbai": "http://127.0.0.1:9001"} naming each participant.')
    return sorted([check_branch_name(name), check_url(url, f"URL of {name}")]
                  for name, url in participants.items())


def _parse_ops(ops) -> list:
    """[{"account": "1001", "delta": "-50.00"}] -> [("1001", -5000)], or BankError."""
    if not isinstance(ops, list) or not ops or len(ops) > MAX_OPS:
        raise BankError(FaultCode.BAD_INPUT,
                        f"ops must be a list of 1 to {MAX_OPS} items like "
                        '{"account": "1001", "delta": "-50.00"}.')
    parsed = []
    for op in ops:
        if not isinstance(op, dict) or set(op) != {"account", "delta"}:
            raise BankError(FaultCode.BAD_INPUT,
                            'Each op must be {"account": NUMBER, "delta": SIGNED_AMOUNT}.')
        parsed.append((check_account_number(op["account"]), parse_delta(op["delta"])))
    return parsed


# ---- command line ------------------------------------------------------------------------
