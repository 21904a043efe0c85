"""The coordinator: moves money between branches atomically with Two-Phase Commit.

Role: serve the bank's public API. Transfers between branches go to the 2PC driver
(twopc.py), which keeps the durable recovery log and finishes interrupted
transactions after a crash; everything else is routed to the right branch, whose
primary this file keeps track of (failover).

Run it:
    python coordinator.py --port 9000 --branch Mumbai=http://127.0.0.1:9100 \\
                                      --branch Delhi=http://127.0.0.1:9101
    python coordinator.py --config cluster.ini

Rules (2PC's own rules are the core's, bank/core/coordinator.py; twopc.py carries them out):
  * Rule 1 - every argument is checked here, before any branch hears of it.
  * Rule 2 - a transfer inside one branch is that branch's local transfer: no 2PC.
  * Rule 3 - a branch's calls go to its primary; a server that answers "not the
    primary" makes the coordinator look for the one that is, and ask again.
  * Rule 4 - one request id, one operation, one outcome, whatever the route: deposits,
    withdrawals, openings, local and cross-branch transfers share one registry
    (requests.py); `transaction(REQUEST_ID)` shows any of them.
  * Lab controls (faults, partitions) exist only with --allow-faults.

Glossary (more in bank/core/messages.py):
  route       which branch holds an account: "Mumbai/1001" is served by Mumbai
  trace       the list of messages of one transaction: who, to whom, what, when
  partition   a lab switch: the coordinator pretends it cannot reach a branch at all
  request id  a client-chosen id: a retried call returns the first outcome
"""

import logging
import threading

from bank import rpc
from bank.batching import batching_links
from bank.config_manager import ConfigManager
from bank.coordinator_lab import LabControls
from bank.coordinator_status import BranchStatus
from bank.counters import COUNTS, RUN
from bank.errors import (CUT_OFF, NOTHING_DONE, BankError, FaultCode, check_branch_name,
                         check_limit, check_text, check_token, show_value,
                         split_acct_ref, unknown_branch)
from bank.faults import FaultPoints
from bank.handoff import Workers, run_all
from bank.core.messages import COORDINATOR_POINTS
from bank.money import format_amount, parse_amount
from bank.recovery_log import RecoveryLog
from bank.ledger import now
from bank.requests import RequestRegistry, describe
from bank.twopc import TwoPhaseCommit

log = logging.getLogger("coordinator")

PREPARE_TIMEOUT = 5.0        # seconds to wait for a vote or an acknowledgement


# ---- links to branches ----------------------------------------------------------------------

class BranchLink:
    """How the coordinator reaches one branch: its primary, and its replicas' URLs."""

    def __init__(self, name: str, urls, secret):
        self.name, self.secret = name, secret
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.partitioned = False
        self.last_answer = None       # (time.time(), ping) of the last ping it answered
        self.use(self.urls[0])

    def use(self, url: str) -> None:
        """Route to this server from now on (kept-alive connections per thread)."""
        self.url = url
        self.client = rpc.Client(url, self.secret, timeout=PREPARE_TIMEOUT,
                                 label=f"branch {self.name} at {url}", expect=self.name)

    def replica_urls(self) -> list:
        return [u for u in self.urls if u != self.url]

    def ask(self, url: str, method: str, *args, timeout: float = 3):
        """Call one particular server of this branch (a replica, say), not the route."""
        return rpc.Client(url, self.secret, timeout=timeout, label=f"{self.name} server {url}",
                          expect=self.name).call(method, *args)

    def find_primary(self) -> bool:
        """Route to whichever server of this branch is the primary with the highest epoch
        (after a failover, or a coordinator restart). True if the route changed."""
        best = None
        for url in self.urls:
            try:
                info = self.ask(url, "ping", timeout=2)
            except BankError:
                continue
            if info.get("role") == "primary" and (best is None or info["epoch"] > best[0]):
                best = (info["epoch"], url)
        if best is None or best[1] == self.url:
            return False
        log.warning("%s is served by %s (epoch %d): routing there", self.name, best[1], best[0])
        self.use(best[1])
        return True

    def call(self, method: str, *args):
        """Call the branch's primary; if the server says it no longer is one, or nothing
        listens there any more, find the one that is and ask again (the refused call
        changed nothing)."""
        return self.send(method, *args).finish()

    def send(self, method: str, *args, then=None) -> "BranchReply":
        """Send a call to the branch's primary now (as call() does); the returned
        BranchReply's finish() reads its answer, and then calls then() if given."""
        if method in ("prepare", "commit", "abort", "batch"):   # the protocol's messages
            COUNTS.add("rpcs_sent")
        if self.partitioned:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"branch {self.name} is cut off by a lab partition "
                            f"(heal {self.name} to reconnect)." + NOTHING_DONE,
                            not_sent=True, why=CUT_OFF)
        try:
            return BranchReply(self, method, args, self.client.send(method, *args), then)
        except BankError as exc:
            self.follow_primary(exc)
        return BranchReply(self, method, args, self.client.send(method, *args), then)

    def follow_primary(self, exc: BankError) -> None:
        """A call failed: if the server is no longer the primary, or nothing listens at
        a replicated branch's route, route to the primary and return (send it again);
        otherwise raise the failure (saying so if the call never left)."""
        moved = exc.code == FaultCode.NOT_PRIMARY or (exc.not_sent and len(self.urls) > 1)
        if moved and self.find_primary():
            return
        if exc.not_sent:                          # the branch never got it: say so
            raise BankError(exc.code, exc.message + NOTHING_DONE,
                            not_sent=True, why=exc.why) from None
        raise exc

    def read(self, method: str, *args):
        """A read goes to the primary, or to a replica if the primary cannot be reached
        (replicas serve reads; they may lag a little behind)."""
        try:
            return self.call(method, *args)
        except BankError as exc:
            if exc.code != FaultCode.UNAVAILABLE or self.partitioned:
                raise
            for url in self.replica_urls():
                try:
                    return self.ask(url, method, *args)
                except BankError:
                    continue
            raise


class BranchReply:
    """A call on its way to a branch (BranchLink.send). finish() waits for the answer
    and returns it, then calls `then` (so does abandon()); a selector may wait on it
    (fileno), until its `deadline`."""

    def __init__(self, link: BranchLink, method: str, args: tuple, pending, then=None):
        self.link, self.method, self.args, self.pending = link, method, args, pending
        self.deadline, self.then = pending.deadline, then or _nothing

    def fileno(self) -> int:
        return self.pending.fileno()

    def finish(self):
        try:
            return self._answer()
        finally:
            self.then()

    def abandon(self) -> None:
        """Give up on the answer (its reader stopped early): the connection is closed,
        and then() is called as finish() would have."""
        try:
            self.pending.abandon()
        finally:
            self.then()

    def _answer(self):
        try:
            return self.pending.finish()
        except BankError as exc:
            self.link.follow_primary(exc)         # Rule 3: it moved; ask the primary
        return self.link.client.call(self.method, *self.args)


def _nothing() -> None:
    """What a BranchReply does once answered when nobody asked for anything."""


# ---- the coordinator service ----------------------------------------------------------------

class Coordinator(LabControls, BranchStatus):
    """The public XML-RPC methods of the coordinator."""

    PUBLIC_METHODS = ("ping", "branches", "open_account", "account", "accounts", "deposit",
                      "withdraw", "transfer", "transactions", "transaction", "decision",
                      "recover", "journal", "failover", "audit",
                      # the configuration manager (config_manager.py, coordinator_lab.py)
                      "configuration", "lease", "add_replica", "drop_replica")
    LAB_METHODS = ("fault", "partition", "heal")

    def __init__(self, name: str, branches: dict, log_path, *, secret=None,
                 allow_faults=False, url="", accept_damaged_log=False, auto_failover=0.0,
                 presumption="abort", batching=True, hold_decisions=0.0):
        self.name, self.secret = name, secret
        self.links = {n: BranchLink(check_branch_name(n), u, secret) for n, u in branches.items()}
        self.faults = FaultPoints("coordinator", COORDINATOR_POINTS, allow_faults)
        if allow_faults:
            self.PUBLIC_METHODS = Coordinator.PUBLIC_METHODS + Coordinator.LAB_METHODS
        self.log = RecoveryLog(log_path, accept_damage=accept_damaged_log,
                               presumed_commit=presumption == "commit")
        self.requests = RequestRegistry()                                   # Rule 4
        self.manager = ConfigManager(self.log, self.links)      # config_manager.py M1-M6
        self.auto_failover = auto_failover
        self._auto_failover_said = {}    # branch -> its last failed try's sentence
        self._stop_config = threading.Event()
        self._senders = Workers(32, "2pc-send")       # bank/handoff.py: pings, recovery
        self.twopc = TwoPhaseCommit(name, batching_links(self.links, batching,  # optional
                                                         hold_decisions),
                                    self.log, self.faults, self._senders,
                                    requests=self.requests, presumption=presumption)
        self.url = url

    @property
    def url(self) -> str:
        """Our URL: branches call it back to ask for decisions."""
        return self.twopc.url

    @url.setter
    def url(self, value: str) -> None:
        self.twopc.url = value

    # ---- information ---------------------------------------------------------------

    def ping(self) -> dict:
        """Who this is: {"name", "role": "coordinator", "url", "branches", "in_flight",
        "faults", "log", "counters"}. "counters": {"transfers", "rpcs_sent", "fsyncs"}
        so far, and the "run" that counted them (bank/counters.py). "log" is what
        recovery found in the recovery log:
        {"torn_tail_cut": lines cut, "torn_kept": ["commit TXID", ...] (Rule 6),
        "damaged": ["line N: what is wrong", ...], "in_doubt": [txid or branch, ...]
        kept in doubt because of the damage, "writable"}."""
        return {"name": self.name, "role": "coordinator", "url": self.url, "epoch": 1,
                "branches": sorted(self.links), "in_flight": len(self.log.in_flight),
                "faults": self.faults.describe()["armed"], "log": self.log.describe(),
                "counters": dict(COUNTS.snapshot(), fsyncs=self.log.fsyncs,
                                        config_fsyncs=self.log.config_fsyncs, run=RUN)}

    def account(self, acct) -> dict:
        """One account by BRANCH/NUMBER. Example: account("Mumbai/1001")"""
        branch, number = self._route(acct)
        return self._read(branch, "account", number)

    def accounts(self, branch="") -> list:
        """The accounts of one branch, or of every reachable branch if "" is given."""
        _text_or_all(branch, "branch")
        if branch:
            return self._read(self._link(branch), "accounts")
        lists = self._each_branch(lambda link: self._try(link, "accounts", default=[]))
        return [acct for rows in lists for acct in rows]

    def journal(self, acct_or_branch="", limit=100) -> list:
        """Journal rows of one account ("Mumbai/1001"), one branch ("Mumbai") or all ("").

        Example: journal("Mumbai/1001", 20)
        """
        limit = check_limit(limit)
        acct_or_branch = _text_or_all(acct_or_branch, "account or branch")
        if "/" in acct_or_branch:
            branch, number = self._route(acct_or_branch)
            return self._read(branch, "journal", number, limit)
        if acct_or_branch:
            return self._read(self._link(acct_or_branch), "journal", "", limit)
        lists = self._each_branch(lambda link: self._try(link, "journal", "", limit, default=[]))
        rows = sorted((r for rows in lists for r in rows), key=lambda r: r["ts"])
        return rows[-limit:]

    def transactions(self, limit=50, state="") -> list:
        """Recent transfers, newest first. state: "", "committed", "aborted" or "in-doubt".

        Each: {"txid", "state", "outcome", "src", "dst", "amount", "reason", "waiting_for"}.
        """
        limit = check_limit(limit, default=50)
        if state not in ("", "committed", "aborted", "in-doubt"):
            raise BankError(FaultCode.BAD_INPUT,
                            'state must be "", "committed", "aborted" or "in-doubt".')
        rows = self.twopc.summaries()
        rows.sort(key=lambda r: r["began"] or r["ended"], reverse=True)
        if state:
            rows = [r for r in rows if _matches(r, state)]
        return rows[:limit]

    def transaction(self, txid) -> dict:
        """One transfer with its votes and its trace (the messages, in order, with times).

        txid may also be a request id: of a transfer, or of a deposit, withdrawal,
        opening or local transfer (those have txid "" and "local": true).
        """
        ident = check_token(txid, "transaction id")
        try:
            return self.twopc.detail(ident)
        except BankError as exc:
            entry = self.requests.lookup(ident)
            if exc.code != FaultCode.UNKNOWN_TXN or entry is None:
                raise
        if entry.txid:
            return self.twopc.detail(entry.txid)
        return _local_detail(entry)

    def decision(self, txid, asker="") -> dict:
        """What was decided for txid: {"txid", "decision": committed|aborted|pending|in-doubt}.

        Branches ask this when they hold a prepared txid (termination protocol). No
        commit record means aborted (presumed abort), unless the txn is still voting,
        or the recovery log is damaged and the damage may hide its outcome (in-doubt:
        accepted with --accept-damaged-log), or the txid was stamped before this log
        was created (in-doubt, C14); an in-doubt branch then asks its peers (P9).
        """
        txid = check_token(txid, "transaction id")
        asker = check_branch_name(asker) if asker not in ("", None) else ""
        if asker in self.links and self.links[asker].partitioned:
            raise BankError(FaultCode.UNAVAILABLE, f"{asker} is cut off by a lab partition.")
        return {"txid": txid, "decision": self.twopc.decision(txid, asker)}

    # ---- single-branch operations (routed) ---------------------------------------

    def open_account(self, branch, owner, initial="0", request_id="") -> dict:
        """Open an account at a branch; with a request_id a retry opens no second one.

        Example: open_account("Delhi", "Meera Iyer", "500", "open-meera-1")
        """
        link, owner = self._link(branch), check_text(owner, "owner name")
        initial = _amount_text(initial, True)
        request_id = check_token(request_id, "request id", optional=True)
        return self._once(request_id, ("open_account", link.name, owner, initial), link.name,
                          lambda: link.call("open_account", owner, initial, "", request_id))

    def deposit(self, acct, amount, request_id="") -> dict:
        """Deposit into BRANCH/NUMBER. Example: deposit("Mumbai/1001", "250.00")"""
        return self._cash("deposit", acct, amount, request_id)

    def withdraw(self, acct, amount, request_id="") -> dict:
        """Withdraw from BRANCH/NUMBER. Example: withdraw("Delhi/1002", "100")"""
        return self._cash("withdraw", acct, amount, request_id)

    def _cash(self, method: str, acct, amount, request_id) -> dict:
        link, number = self._route(acct)
        amount = _amount_text(amount)
        request_id = check_token(request_id, "request id", optional=True)
        return self._once(request_id, (method, f"{link.name}/{number}", amount), link.name,
                          lambda: self._write(link, method, number, amount, request_id))

    def _once(self, request_id: str, fingerprint: tuple, branch: str, call):
        """Route one call under its request id (Rule 4): a definite first outcome is
        repeated, never run again; an unknown one is asked again with the same id (the
        branch applies an id once). Every routed call is traced for `show`."""
        if not request_id:
            return call()
        entry = self.requests.claim(request_id, fingerprint)
        if entry.definite:
            return entry.repeat()
        _trace(entry, COORDINATOR_PARTY, branch, fingerprint[0], " ".join(fingerprint[1:]))
        try:
            result = call()
        except BankError as exc:
            self.requests.finish(entry, error=exc)
            _trace(entry, branch, COORDINATOR_PARTY, "refused" if entry.definite else "error",
                   exc.message)
            raise
        self.requests.finish(entry, result=result)
        _trace(entry, branch, COORDINATOR_PARTY, "done")
        return result

    # ---- transfer: local or Two-Phase Commit --------------------------------------

    def transfer(self, src, dst, amount, request_id="") -> dict:
        """Move money from src to dst (BRANCH/NUMBER each); atomic across branches.

        Returns {"txid", "outcome": "committed"|"aborted", "reason", "waiting_for"}.
        With a request_id, a retry returns the first outcome and never moves money twice
        (across a coordinator restart: for the last 10,000 transfers, see recovery_log.py).
        Example: transfer("Mumbai/1001", "Delhi/1002", "100.00", "lab1-try1")
        """
        (src_branch, src_no), (dst_branch, dst_no) = self._route(src), self._route(dst)
        amount = _amount_text(amount)
        request_id = check_token(request_id, "request id", optional=True)
        if src_branch is dst_branch:                                       # Rule 2
            return self._local_transfer(src_branch, src_no, dst_no, amount, request_id)
        info = {"src": f"{src_branch.name}/{src_no}", "dst": f"{dst_branch.name}/{dst_no}",
                "amount": amount, "request_id": request_id}
        paise = parse_amount(amount)                # the core's ops: (account, paise)
        plan = {src_branch.name: ((src_no, -paise),), dst_branch.name: ((dst_no, paise),)}
        COUNTS.add("transfers")
        return self.twopc.transfer(info, plan)

    def _local_transfer(self, link, src_no, dst_no, amount, request_id) -> dict:
        fingerprint = ("transfer", f"{link.name}/{src_no}", f"{link.name}/{dst_no}", amount)
        try:
            self._once(request_id, fingerprint, link.name,
                       lambda: self._write(link, "transfer", src_no, dst_no, amount,
                                           request_id))
            return {"txid": "", "outcome": "committed", "reason": "", "waiting_for": [],
                    "local": True}
        except BankError as exc:
            if exc.code in (FaultCode.INSUFFICIENT_FUNDS, FaultCode.UNKNOWN_ACCOUNT):
                return {"txid": "", "outcome": "aborted", "reason": exc.message,
                        "waiting_for": [], "local": True}
            raise

    def recover(self) -> dict:
        """Re-send the decision of every unfinished transaction now.

        Returns {"resent": n, "unfinished": [txid, ...]} (those still waiting afterwards).
        """
        return self.twopc.recover()

    def start_background(self):
        """Find each branch's current primary, then let the 2PC driver finish what the
        log says is unfinished and keep retrying."""
        with_replicas = [link for link in self.links.values() if len(link.urls) > 1]
        run_all(self._senders, lambda link: link.find_primary(), with_replicas)
        self.twopc.start()
        threading.Thread(target=self.run_configuration, name="configuration", daemon=True,
                         args=(self.auto_failover, self._stop_config)).start()

    def close(self):
        self._stop_config.set()
        self.twopc.stop()
        self._senders.close()
        self.log.close()

    # ---- helpers --------------------------------------------------------------------

    def _link(self, name) -> BranchLink:
        name = check_branch_name(name)
        if name not in self.links:
            raise BankError(FaultCode.UNKNOWN_ACCOUNT, unknown_branch(name, self.links))
        return self.links[name]

    def _route(self, acct) -> tuple:
        branch, number = split_acct_ref(acct)
        return self._link(branch), number

    def _each_branch(self, fn) -> list:
        return run_all(self._senders, fn, [self.links[n] for n in sorted(self.links)])

    def _try(self, link: BranchLink, method: str, *args, default):
        try:
            return self._read(link, method, *args)
        except BankError:
            return default

    def _read(self, link: BranchLink, method: str, *args):
        """A read of one branch, once the messages riding to it have been carried
        (bank/batching.py, B5, B6): it sees every transfer this coordinator has answered."""
        self.twopc.settle(link.name)
        return link.read(method, *args)

    def _write(self, link: BranchLink, method: str, *args):
        """A deposit, withdrawal or local transfer at one branch, once the messages
        riding to it have been carried (B5, B6): money a transfer just brought in can
        be spent at once."""
        self.twopc.settle(link.name)
        return link.call(method, *args)

    # ---- the audit (the shell's `check`) --------------------------------------------

    def audit(self, branch) -> dict:
        """One branch's books reconciled in SQL, exact at any size (the branch's audit()).

        Example: audit("Mumbai")
        """
        return self._read(self._link(branch), "audit")


COORDINATOR_PARTY = "coordinator"


def _trace(entry, sender: str, receiver: str, msg: str, detail: str = "") -> None:
    """One message of a routed call, for `show REQUEST_ID` (a short list: 2 or so)."""
    if len(entry.trace) < 20:
        entry.trace.append({"at": now(), "ms": 0, "from": sender, "to": receiver,
                            "msg": msg, "detail": detail})


def _local_detail(entry) -> dict:
    """A routed call (no 2PC) shaped like a transaction, for `show REQUEST_ID`."""
    kind, *args = entry.fingerprint
    src, dst, amount = {"transfer": lambda: args, "withdraw": lambda: (args[0], "", args[1]),
                        "deposit": lambda: ("", args[0], args[1]),
                        "open_account": lambda: ("", f"{args[0]} (new account)", args[2])
                        }[kind]()
    if entry.result is not None:
        outcome, reason = "committed", ""
    elif entry.refusal is not None:
        outcome, reason = "aborted", entry.refusal[1]
    else:
        outcome, reason = "", "no answer from the branch yet: retry with the same request id"
    branch = (src or dst).split("/")[0].split(" ")[0]
    return {"txid": "", "request_id": entry.request_id, "kind": describe(entry.fingerprint),
            "state": outcome or "unknown", "outcome": outcome, "src": src, "dst": dst,
            "amount": amount, "reason": reason, "began": entry.began, "ended": entry.ended,
            "participants": [branch], "waiting_for": [], "trace": list(entry.trace),
            "votes": {}, "local": True}


def _amount_text(value, allow_zero=False) -> str:
    """Check an amount here (so a bad one never reaches a branch) and send it as text."""
    return format_amount(parse_amount(value, allow_zero=allow_zero))


def _matches(row: dict, state: str) -> bool:
    if state == "in-doubt":
        return row["state"] in ("new", "preparing", "committing", "aborting", "in doubt")
    return row["outcome"] == state and row["state"] in ("committed", "aborted",
                                                        "committing", "aborting")


def _text_or_all(value, what: str) -> str:
    """A read's scope is text; "" (or none given) means all of it. A list, a number or
    a struct is refused, not read as "all" because it is empty or false."""
    if value is not None and not isinstance(value, str):
        raise BankError(FaultCode.BAD_INPUT, f"The {what} must be text (\"\" for all), "
                        f"not {show_value(value)}.")
    return value or ""
