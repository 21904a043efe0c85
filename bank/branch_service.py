"""A bank branch: a 2PC participant with its own SQLite ledger, served over XML-RPC.

Role: check every request, hand it to the ledger (which makes it durable), and only
then answer. It also runs the participant's half of the termination protocol: a
branch holding a prepared transaction asks the coordinator for the decision until
it learns it.

Run it:  python branch.py --name Mumbai --port 9100 --preload

Rules:
  * Rule 1 - check, then write, then reply. Arguments are checked before anything
    changes; ledger.py makes the change durable; the reply leaves afterwards.
  * Rule 2 - a yes vote is a promise. Funds are held at prepare, so a later commit
    cannot fail. A prepared transaction never times out by itself: it waits for the
    coordinator's decision, asking for it every few seconds (``--ask-every``).
  * Rule 3 - fault points sit exactly between those steps (see faults.py), so a
    student can crash the branch "after the vote was recorded, before it was sent".

Glossary (more in protocol.py):
  ops        what a prepare asks this branch to do: [{"account": "1001", "delta": "-50.00"}]
  in doubt   prepared here, decision not yet known
"""

import logging
import pathlib
import threading
import time

from bank import rpc
from bank.errors import (BankError, FaultCode, check_account_number, check_branch_name,
                    check_limit, check_text, check_token, check_url)
from bank.faults import BRANCH_POINTS, FaultPoints
from bank.ledger import MAX_OPS, Ledger
from bank.money import parse_amount, parse_delta
from bank.protocol import TxState
from bank.replication import HEARTBEAT_EVERY, Follower, Replicas
from bank.storage import durable_replace

log = logging.getLogger("branch")

PRELOAD = (("1001", "Asha Rao", 10_000_00), ("1002", "Vikram Shah", 5_000_00))
ASK_EVERY = 2.0          # seconds between decision queries for an in-doubt txn


class Branch:
    """The public XML-RPC methods of one branch. Each returns a dict or a list of dicts."""

    PUBLIC_METHODS = ("ping", "open_account", "account", "accounts", "deposit", "withdraw",
                      "transfer", "prepare", "commit", "abort", "status", "in_doubt",
                      "journal", "promote",
                      # replication between branch servers (replication.py)
                      "replication", "changes_since", "attach_replica", "caught_up",
                      "replicate", "follow")

    def __init__(self, name: str, db_path, *, allow_faults=False, secret=None,
                 ask_every: float = ASK_EVERY, replica_of: str = "", synchronous=True):
        self.name = check_branch_name(name)
        self.ledger, replica_of = _open_ledger(db_path, self.name, replica_of, secret)
        self.faults = FaultPoints("branch", BRANCH_POINTS, allow_faults)
        if allow_faults:
            self.PUBLIC_METHODS = Branch.PUBLIC_METHODS + ("fault",)
        self.secret, self.ask_every = secret, ask_every
        self.url = ""                           # set once the server listens
        self._coordinators = {}                 # url -> rpc.Client
        self._stop = threading.Event()
        self.epoch = int(self.ledger.meta("epoch", "1"))
        self.role = "replica" if replica_of else self.ledger.meta("role", "primary")
        self.primary_url = replica_of or self.ledger.meta("primary", "")
        self.replicas = Replicas(self, synchronous)
        self.follower = Follower(self, self.primary_url) if self.role == "replica" else None
        self.ledger.set_meta(role=self.role, primary=self.primary_url)

    # ---- information ------------------------------------------------------------------

    def ping(self) -> dict:
        """Who and what this server is: {"name", "role": "primary"|"replica"|"fenced",
        "epoch", "primary", "applied", "in_sync", "accounts", "in_doubt", "faults"}."""
        return {"name": self.name, "role": self.role, "epoch": self.epoch,
                "primary": self.primary_url, "applied": self.ledger.applied_seq(),
                "in_sync": bool(self.follower and self.follower.in_sync),
                "accounts": self.ledger.count_accounts(),
                "in_doubt": len(self.ledger.in_doubt()),
                "faults": self.faults.describe()["armed"]}

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

    def open_account(self, owner, initial="0", number="") -> dict:
        """Open an account with an opening balance; the number is chosen if "" is given.

        Example: open_account("Meera Iyer", "2500.00")
        """
        owner = check_text(owner, "owner name")
        amount = parse_amount(initial, allow_zero=True)
        number = check_account_number(number) if number not in ("", None) else ""
        acct = self._write(self.ledger.open_account, owner, amount, number)
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

    def prepare(self, txid, coordinator, ops) -> dict:
        """Phase 1: can this branch apply `ops`? Holds debits, records, then votes.

        Answers {"vote": "yes"|"no", "reason"}; a repeated prepare gets the same vote.
        Example: prepare("C1-20261125T130102-9f3a2c", "http://127.0.0.1:9000",
                         [{"account": "1001", "delta": "-50.00"}])
        """
        txid = check_token(txid, "transaction id")
        coordinator = check_url(coordinator, "coordinator URL")
        parsed = _parse_ops(ops)
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-vote")
        refuse = "fault injected: vote-no" if self.faults.fires("vote-no") else ""
        vote, reason = self._write(self.ledger.prepare, txid, coordinator, parsed, refuse)
        log.info("prepare %s: vote %s %s", txid, vote.value, reason)
        self.faults.crash_if_armed("crash-after-vote")
        return {"vote": vote.value, "reason": reason}

    def commit(self, txid) -> dict:
        """Phase 2: apply a prepared transaction. Repeating it is harmless.

        Committing an unknown or aborted txid is a protocol violation (Fault 409).
        """
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-commit")
        state = self._write(self.ledger.commit, txid)       # durable here and on replicas
        log.info("commit %s: done", txid)
        self.faults.crash_if_armed("crash-after-commit")
        return {"txid": txid, "state": state.value}

    def abort(self, txid) -> dict:
        """Phase 2: release the holds of a transaction; an unknown txid is recorded aborted
        (so a late prepare votes no). Aborting a committed txid is refused (Fault 409).
        """
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        state = self._write(self.ledger.abort, txid)
        log.info("abort %s: done", txid)
        return {"txid": txid, "state": state.value}

    def status(self, txid) -> dict:
        """This branch's state for a txid: unknown, prepared, committed or aborted."""
        return self.ledger.status(check_token(txid, "transaction id"))

    def in_doubt(self) -> list:
        """Prepared transactions waiting for a decision, with their held ops."""
        return self.ledger.in_doubt()

    def fault(self, point) -> dict:
        """Arm a fault point (only with --allow-faults): vote-no, crash-before-vote,
        crash-after-vote, crash-before-commit, crash-after-commit, delay=SECONDS; "" disarms.
        """
        return self.faults.arm(point)

    # ---- termination protocol: ask for the decisions we are waiting on ---------------

    def resolve_in_doubt(self) -> int:
        """Ask each in-doubt txn's coordinator for its decision; apply what we learn.

        Returns how many were resolved. A coordinator that is down or still deciding
        changes nothing: we simply ask again later (Rule 2).
        """
        resolved = 0
        for txn in self.ledger.in_doubt():          # one bad coordinator URL must not
            decision = self._ask_decision(txn["txid"], txn["coordinator"])  # stop the rest
            if decision == TxState.COMMITTED.value:
                self._write(self.ledger.commit, txn["txid"])
            elif decision == TxState.ABORTED.value:
                self._write(self.ledger.abort, txn["txid"])
            else:
                continue
            resolved += 1
            log.info("termination: learned %s for %s from %s", decision, txn["txid"],
                     txn["coordinator"])
        return resolved

    def _ask_decision(self, txid: str, coordinator_url: str) -> str:
        client = self._coordinators.get(coordinator_url)
        if client is None:
            client = self._coordinators[coordinator_url] = rpc.Client(
                coordinator_url, self.secret, timeout=3, label="the coordinator")
        try:
            answer = client.call("decision", txid, self.name)
            return answer.get("decision", "") if isinstance(answer, dict) else ""
        except BankError as exc:
            log.debug("termination: no decision for %s yet (%s)", txid, exc)
            return ""

    def run_termination(self):
        """Background loop: resolve in-doubt txns now (after a restart) and every few s."""
        while not self._stop.is_set():
            try:
                if self.role == "primary":
                    self.resolve_in_doubt()
            except Exception:
                log.exception("termination loop")
            self._stop.wait(self.ask_every)

    def run_replication(self):
        """Background loop: a primary checks it was not replaced and sends heartbeats;
        a replica catches up when behind."""
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                if self.role == "primary":
                    self.check_fenced(only_out_of_sync=True)
                if self.role == "primary":
                    self.replicas.heartbeat()
                elif self.role == "replica" and not self.follower.in_sync:
                    self.follower.catch_up()
            except Exception:
                log.exception("replication loop")

    def start_background(self):
        threading.Thread(target=self.run_termination, name="termination", daemon=True).start()
        threading.Thread(target=self.run_replication, name="replication", daemon=True).start()

    # ---- roles: primary, replica, fenced -----------------------------------------------

    def _write(self, operation, *args):
        """Rule 1 again, for replication: only a primary writes, and in synchronous mode
        the reply waits until every in-sync replica has the change."""
        if self.role != "primary":
            where = f" The primary is {self.primary_url}." if self.primary_url else ""
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"{self.name} at {self.url or 'this address'} is "
                            f"{_role_words(self.role)} and does not accept writes.{where}")
        result = operation(*args)
        self.replicas.after_write()
        if self.role != "primary":        # a replica refused our push: we were replaced
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"{self.name} at {self.url} was replaced by a newer primary "
                            f"({self.primary_url or 'see the replicas'}) while writing: "
                            "this change is not acknowledged.")
        return result

    def set_role(self, role: str, epoch: int = 0, primary: str = "") -> None:
        """Change role durably (and the epoch, which only ever grows)."""
        self.epoch = max(self.epoch, epoch)
        self.role, self.primary_url = role, primary
        self.ledger.set_meta(role=role, epoch=self.epoch, primary=primary)
        log.warning("now %s at epoch %d%s", role, self.epoch,
                    f" (primary: {primary})" if primary else "")

    def fence(self, why: str) -> None:
        """A higher epoch exists: stop accepting writes (Rule 3 of replication.py)."""
        if self.role == "primary":
            self.set_role("fenced", primary=_primary_named_in(why))
            log.warning("fenced: %s", why)

    def check_fenced(self, only_out_of_sync: bool = False) -> None:
        """A primary asks the replicas it knew whether one was promoted (Rule 3).

        Done before serving after a restart, and at every heartbeat for the replicas it
        cannot push to (an in-sync replica would refuse a push from an old epoch anyway).
        """
        if self.role != "primary":
            return
        for url, link in list(self.replicas.links.items()):
            if only_out_of_sync and link.in_sync:
                continue
            try:
                info = rpc.Client(url, self.secret, timeout=2).call("ping")
            except BankError:
                continue
            if info.get("epoch", 0) > self.epoch:
                primary = url if info.get("role") == "primary" else info.get("primary", "")
                self.set_role("fenced", epoch=info["epoch"], primary=primary)
                return

    def promote(self) -> dict:
        """Make this in-sync replica the primary, with a higher epoch.

        Refused (Fault 409) if it is out of sync or lacks changes it was told of.
        Returns {"name", "role", "epoch", "applied"}.
        """
        if self.role != "replica":
            raise BankError(FaultCode.PROTOCOL_VIOLATION, f"{self.name} is a {self.role}, "
                                                          "not a replica: nothing to promote.")
        why_not = self.follower.promotable()
        if why_not:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} at {self.url} cannot be promoted: {why_not}.")
        old_primary = self.primary_url
        self.set_role("primary", epoch=self.epoch + 1)
        self.ledger.set_meta(promoted_from=old_primary)
        self.follower = None
        return {"name": self.name, "role": self.role, "epoch": self.epoch,
                "applied": self.ledger.applied_seq()}

    def follow(self, primary_url) -> dict:
        """Become (or stay) a replica of primary_url, e.g. after a failover."""
        primary_url = check_url(primary_url, "primary URL")
        if self.role != "replica":
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} is {_role_words(self.role)}: its history may differ; "
                            "restart it with --replica-of to rejoin from a fresh copy.")
        self.set_role("replica", primary=primary_url)
        self.follower = Follower(self, primary_url)
        return {"name": self.name, "role": self.role, "primary": primary_url}

    # ---- replication RPCs (between branch servers) -----------------------------------

    def replication(self) -> dict:
        """Replication status: {"role", "epoch", "applied", "replicas": [...], "follower": {...}}."""
        return {"role": self.role, "epoch": self.epoch, "applied": self.ledger.applied_seq(),
                "synchronous": self.replicas.synchronous, "replicas": self.replicas.status(),
                "follower": self.follower.status() if self.follower else {}}

    def changes_since(self, seq, limit=500) -> list:
        """[[seq, change], ...] after seq, for a replica catching up."""
        return [[n, op] for n, op in self.ledger.changes_since(_check_seq(seq),
                                                                 check_limit(limit))]

    def attach_replica(self, url, applied, last_hash="") -> dict:
        """A replica introduces itself (it starts out of sync); last_hash fingerprints
        its last change, so that a diverged history is detected and copied again."""
        self._require_role("primary")
        if not isinstance(last_hash, str) or len(last_hash) > 64:
            raise BankError(FaultCode.BAD_INPUT, "last_hash must be a short text.")
        return self.replicas.attach(check_url(url, "replica URL"), _check_seq(applied),
                                    last_hash)

    def caught_up(self, url, applied) -> dict:
        """A replica has pulled everything; it becomes in sync after a final push."""
        self._require_role("primary")
        return self.replicas.caught_up(check_url(url, "replica URL"), _check_seq(applied))

    def replicate(self, epoch, changes, primary_seq, in_sync_urls) -> dict:
        """A push from the primary: apply these changes in order."""
        epoch, primary_seq = _check_seq(epoch, "The epoch"), _check_seq(primary_seq)
        if not isinstance(changes, list) or not isinstance(in_sync_urls, list):
            raise BankError(FaultCode.BAD_INPUT, "changes and in_sync must be lists.")
        if epoch < self.epoch:                      # the sender was replaced: fence it
            primary = self.url if self.role == "primary" else self.primary_url
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"Fenced: epoch {epoch} is over; {self.name} is at epoch "
                            f"{self.epoch} and its primary is {primary}.")
        if self.role == "primary" and epoch > self.epoch:
            self.fence(f"a primary at epoch {epoch} pushed changes")
        self._require_role("replica")
        return self.follower.receive(epoch, changes, primary_seq, in_sync_urls)

    def _require_role(self, role: str) -> None:
        if self.role != role:
            raise BankError(FaultCode.NOT_PRIMARY if role == "primary" else
                            FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} at {self.url} is {_role_words(self.role)} "
                            f"(epoch {self.epoch}), not a {role}." + (f" The primary is {self.primary_url}."
                                                if self.primary_url else ""))

    def close(self):
        self._stop.set()
        self.ledger.close()

    def preload(self) -> None:
        """Open the demo accounts (1001 and 1002) if this branch has no accounts yet."""
        if self.ledger.count_accounts() == 0:
            for number, owner, balance in PRELOAD:
                self.ledger.open_account(owner, balance, number)
            log.info("preloaded accounts %s", ", ".join(n for n, _, _ in PRELOAD))


def _open_ledger(db_path, name: str, replica_of: str, secret) -> tuple:
    """(ledger, primary URL to follow or ""). A former primary rejoining as a replica
    starts from a fresh copy.

    Its old database may hold changes no replica ever got, so it is kept aside
    (NAME.db.before-rejoin-TIME), never merged. But a database that is still the
    newest primary (e.g. a promoted replica restarted with its old --replica-of) is
    never set aside: it starts as the primary.
    """
    ledger = Ledger(db_path, name)
    role = ledger.meta("role", "primary")
    if replica_of and role == "primary" and ledger.applied_seq():
        if replica_of == ledger.meta("promoted_from"):
            log.warning("%s was promoted to replace %s: starting as the primary",
                        db_path, replica_of)
            return ledger, ""                  # a stale --replica-of after a failover
        if not _newer_primary_at(replica_of, int(ledger.meta("epoch", "1")), secret):
            ledger.close()
            raise SystemExit(
                f"{db_path} holds a primary's data, and {replica_of} does not answer as a "
                "newer primary, so rejoining it could lose or fork data. Start this server "
                f"when {replica_of} is up, or without --replica-of to serve as the primary.")
    if replica_of and role != "replica" and ledger.applied_seq():
        ledger.close()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            old = pathlib.Path(str(db_path) + suffix)
            if old.exists():             # synced, renamed, folder synced: kept for sure
                durable_replace(old, f"{old}.before-rejoin-{stamp}")
        log.warning("rejoining as a replica: old database kept as %s.before-rejoin-%s",
                    db_path, stamp)
        ledger = Ledger(db_path, name)
    return ledger, replica_of


def _newer_primary_at(url: str, epoch: int, secret) -> bool:
    """Does a primary with a higher epoch than ours answer at url?"""
    try:
        info = rpc.Client(url, secret, timeout=3).call("ping")
    except BankError:
        return False
    return info.get("role") == "primary" and info.get("epoch", 0) > epoch


def _check_seq(value, what: str = "A replog position") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise BankError(FaultCode.BAD_INPUT, f"{what} must be a whole number from 0 to "
                                             f"{2**31 - 1}.")
    return value


def _role_words(role: str) -> str:
    return {"fenced": "fenced (a former primary)"}.get(role, "a " + role)


def _primary_named_in(sentence: str) -> str:
    """The URL a NOT_PRIMARY fault names, if any."""
    for word in sentence.split():
        if word.startswith("http"):
            return word.rstrip(".")
    return ""


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
