"""The coordinator: moves money between branches atomically with Two-Phase Commit.

Role: drive 2PC for transfers between branches, keep the durable recovery log, finish
interrupted transactions after a crash, answer branches that ask for a decision,
and route single-branch operations to the right branch.

Run it:
    python coordinator.py --port 9000 --branch Mumbai=http://127.0.0.1:9100 \\
                                      --branch Delhi=http://127.0.0.1:9101
    python coordinator.py --config cluster.ini

Rules (the decisions themselves live in protocol.py; this file moves them):
  * Rule 1 - phase 1: send prepare to every participant in parallel, each with a
    timeout. A no, an error or silence is a no.
  * Rule 2 - the commit point: the commit decision is forced to the recovery log
    before any commit is sent and before the client hears "committed". Until then
    ``decision(txid)`` answers "pending", never a guess.
  * Rule 3 - phase 2: tell every participant the decision in parallel, and retry in
    the background until each acknowledges; then log ``end``.
  * Rule 4 - presumed abort: a txid with no commit record is aborted, so recovery
    re-sends commit for committed txids without ``end`` and aborts all the others.
  * Rule 5 - a transfer inside one branch is that branch's local transfer: no 2PC.
  * Every message sent and received is kept in the transaction's trace, with times,
    so the shell and the window can draw its sequence diagram.

Glossary (more in protocol.py):
  route       which branch holds an account: "Mumbai/1001" is served by Mumbai
  trace       the list of messages of one transaction: who, to whom, what, when
  partition   a lab switch: the coordinator pretends it cannot reach a branch at all
  request id  a client-chosen id: a retried transfer returns the first outcome
"""

import argparse
import collections
import concurrent.futures
import configparser
import logging
import secrets
import sys
import threading
import time

import rpc
from branch import write_url_file
from errors import (BankError, FaultCode, check_branch_name, check_limit, check_text,
                    check_token, split_acct_ref)
from faults import COORDINATOR_POINTS, FaultPoints
from ledger import now
from money import format_amount, format_delta, parse_amount
from protocol import CoordinatorTxn, CoordState, TxState, Vote
from recovery_log import RecoveryLog

log = logging.getLogger("coordinator")

PREPARE_TIMEOUT = 5.0        # seconds to wait for a vote
DECISION_TIMEOUT = 5.0       # seconds to wait for an acknowledgement
RETRY_EVERY = 1.0            # seconds between phase-2 retries
KEEP_TXNS = 1000             # transactions kept in memory with their traces
COORDINATOR = "coordinator"
LOG = "log"                  # the recovery log, drawn as a party in diagrams


# ---- one transaction, with its trace -----------------------------------------------------

class Txn:
    """A transaction the coordinator drives: the protocol core plus what to show."""

    def __init__(self, txid: str, plan: dict, info: dict):
        self.core = CoordinatorTxn(txid, tuple(sorted(plan)))
        self.plan = plan                   # branch -> ops for that branch
        self.info = info                   # src, dst, amount, request_id
        self.published = None              # the decision others may see (Rule 2)
        self.began = now()
        self.ended = ""
        self.trace = []
        self.done = threading.Event()      # set when the client has its answer
        self.result = None
        self.phase2_lock = threading.Lock()
        self._t0 = time.monotonic()

    @property
    def txid(self) -> str:
        return self.core.txid

    def note(self, sender: str, receiver: str, msg: str, detail: str = "") -> None:
        """Add one message to the trace (at most 500, oldest kept)."""
        if len(self.trace) < 500:
            self.trace.append({"at": now(), "ms": int((time.monotonic() - self._t0) * 1000),
                               "from": sender, "to": receiver, "msg": msg, "detail": detail})

    def summary(self) -> dict:
        outcome = self.published.value if self.published else ""
        return {"txid": self.txid, "state": self.core.state.value, "outcome": outcome,
                "src": self.info.get("src", ""), "dst": self.info.get("dst", ""),
                "amount": self.info.get("amount", ""), "reason": self.core.reason,
                "request_id": self.info.get("request_id", ""), "began": self.began,
                "ended": self.ended, "participants": list(self.core.participants),
                "waiting_for": self.core.waiting_for() if self.published else []}


def _summary_from_log(txid: str, data: dict) -> dict:
    """A finished transaction known only from the recovery log (after a restart)."""
    return {"txid": txid, "state": data.get("outcome", ""), "outcome": data.get("outcome", ""),
            "src": data.get("src", ""), "dst": data.get("dst", ""),
            "amount": data.get("amount", ""), "reason": data.get("reason", ""),
            "request_id": data.get("request_id", ""), "began": data.get("began", ""),
            "ended": data.get("ended", ""), "participants": data.get("branches", []),
            "waiting_for": []}


# ---- links to branches ----------------------------------------------------------------------

class BranchLink:
    """How the coordinator reaches one branch: its primary, and its replicas' URLs."""

    def __init__(self, name: str, urls, secret):
        self.name, self.secret = name, secret
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.partitioned = False
        self.use(self.urls[0])

    def use(self, url: str) -> None:
        """Route to this server from now on (kept-alive connections per thread)."""
        self.url = url
        self.client = rpc.Client(url, self.secret, timeout=PREPARE_TIMEOUT,
                                 label=f"branch {self.name} at {url}")

    def replica_urls(self) -> list:
        return [u for u in self.urls if u != self.url]

    def find_primary(self) -> bool:
        """Route to whichever server of this branch is the primary with the highest epoch
        (after a failover, or a coordinator restart). True if the route changed."""
        best = None
        for url in self.urls:
            try:
                info = rpc.Client(url, self.secret, timeout=2).call("ping")
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
        """Call the branch's primary; if the server says it no longer is one, find the
        one that is and ask again (the refused call changed nothing)."""
        if self.partitioned:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"branch {self.name} is cut off by a lab partition "
                            f"(heal {self.name} to reconnect).")
        try:
            return self.client.call(method, *args)
        except BankError as exc:
            if exc.code != FaultCode.NOT_PRIMARY or not self.find_primary():
                raise
        return self.client.call(method, *args)


# ---- the coordinator service ----------------------------------------------------------------

class Coordinator:
    """The public XML-RPC methods of the coordinator, and the 2PC driver behind them."""

    PUBLIC_METHODS = ("ping", "branches", "open_account", "account", "accounts", "deposit",
                      "withdraw", "transfer", "transactions", "transaction", "decision",
                      "recover", "journal", "failover")
    LAB_METHODS = ("fault", "partition", "heal")

    def __init__(self, name: str, branches: dict, log_path, *, secret=None,
                 allow_faults=False, url=""):
        self.name, self.url, self.secret = name, url, secret
        self.links = {n: BranchLink(check_branch_name(n), u, secret) for n, u in branches.items()}
        self.faults = FaultPoints("coordinator", COORDINATOR_POINTS, allow_faults)
        if allow_faults:
            self.PUBLIC_METHODS = Coordinator.PUBLIC_METHODS + Coordinator.LAB_METHODS
        self.log = RecoveryLog(log_path)
        self.txns = collections.OrderedDict()      # txid -> Txn, newest last
        self.requests = {}                         # request id -> (fingerprint, txid)
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="2pc")
        self._stop = threading.Event()
        self._recover_from_log()

    # ---- information ---------------------------------------------------------------

    def ping(self) -> dict:
        """Who this is: {"name", "role": "coordinator", "url", "branches", "in_flight"}."""
        return {"name": self.name, "role": "coordinator", "url": self.url, "epoch": 1,
                "branches": sorted(self.links), "in_flight": len(self.log.in_flight),
                "faults": self.faults.describe()["armed"]}

    def branches(self) -> list:
        """Every branch: {"name", "url", "up", "role", "epoch", "applied", "in_doubt",
        "partitioned", "error", "replicas": [{"url", "up", "role", "epoch", "in_sync",
        "applied", "lag"}]}, pinged in parallel."""
        return self._each_branch(self._branch_status)

    def _branch_status(self, link: BranchLink) -> dict:
        row = {"name": link.name, "url": link.url, "up": False, "role": "", "epoch": 0,
               "applied": 0, "in_doubt": 0, "partitioned": link.partitioned, "error": ""}
        try:
            info = link.call("ping")
            row.update(up=True, role=info["role"], epoch=info["epoch"],
                       applied=info["applied"], in_doubt=info["in_doubt"])
        except (BankError, KeyError) as exc:
            row["error"] = str(exc)
        row["replicas"] = [self._replica_status(link, url, row["applied"])
                           for url in link.replica_urls()]
        return row

    def _replica_status(self, link: BranchLink, url: str, primary_applied: int) -> dict:
        row = {"url": url, "up": False, "role": "", "epoch": 0, "in_sync": False,
               "applied": 0, "lag": 0}
        try:
            info = rpc.Client(url, self.secret, timeout=2).call("ping")
            row.update(up=True, role=info["role"], epoch=info["epoch"],
                       in_sync=info["in_sync"], applied=info["applied"],
                       lag=max(0, primary_applied - info["applied"]))
        except (BankError, KeyError):
            pass
        return row

    def failover(self, branch) -> dict:
        """Promote the best in-sync replica of a branch and route to it from now on.

        The best is the in-sync replica with the most changes applied; an out-of-sync
        one is never promoted. Transactions prepared on the old primary were replicated
        before their vote, so they finish on the new one. Other replicas follow it.
        Returns {"branch", "primary", "old_primary", "epoch", "applied"}.
        """
        link = self._link(branch)
        reasons, candidates = [], []
        for url in link.replica_urls():
            status = self._replica_status(link, url, 0)
            if not status["up"] or status["role"] != "replica":
                reasons.append(f"{url} is {'down' if not status['up'] else status['role']}")
            elif not status["in_sync"]:
                reasons.append(f"{url} is out of sync")
            else:
                candidates.append((status["applied"], url))
        for applied, url in sorted(candidates, reverse=True):
            try:
                promoted = rpc.Client(url, self.secret, timeout=5).call("promote")
            except BankError as exc:
                reasons.append(exc.message)
                continue
            old = link.url
            link.use(url)
            for other in link.replica_urls():
                self._try_client(other, "follow", url)
            log.warning("failover: %s now served by %s (epoch %s)", link.name, url,
                        promoted["epoch"])
            self._pool.submit(self.recover)
            return {"branch": link.name, "primary": url, "old_primary": old,
                    "epoch": promoted["epoch"], "applied": promoted["applied"]}
        raise BankError(FaultCode.UNAVAILABLE,
                        f"No replica of {link.name} can be promoted: "
                        f"{'; '.join(reasons) or 'it has no replicas'}.")

    def _try_client(self, url, method, *args):
        try:
            return rpc.Client(url, self.secret, timeout=3).call(method, *args)
        except BankError:
            return None

    def account(self, acct) -> dict:
        """One account by BRANCH/NUMBER. Example: account("Mumbai/1001")"""
        branch, number = self._route(acct)
        return branch.call("account", number)

    def accounts(self, branch="") -> list:
        """The accounts of one branch, or of every reachable branch if "" is given."""
        if branch:
            return self._link(branch).call("accounts")
        lists = self._each_branch(lambda link: self._try(link, "accounts", default=[]))
        return [acct for rows in lists for acct in rows]

    def journal(self, acct_or_branch="", limit=100) -> list:
        """Journal rows of one account ("Mumbai/1001"), one branch ("Mumbai") or all ("").

        Example: journal("Mumbai/1001", 20)
        """
        limit = check_limit(limit)
        if isinstance(acct_or_branch, str) and "/" in acct_or_branch:
            branch, number = self._route(acct_or_branch)
            return branch.call("journal", number, limit)
        if acct_or_branch:
            return self._link(acct_or_branch).call("journal", "", limit)
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
        with self._lock:
            rows = [t.summary() for t in self.txns.values()]
            known = set(self.txns)
        rows += [_summary_from_log(t, d) for t, d in self.log.finished.copy().items()
                 if t not in known]
        rows.sort(key=lambda r: r["began"] or r["ended"], reverse=True)
        if state:
            rows = [r for r in rows if _matches(r, state)]
        return rows[:limit]

    def transaction(self, txid) -> dict:
        """One transfer with its votes and its trace (the messages, in order, with times)."""
        txid = check_token(txid, "transaction id")
        with self._lock:
            txn = self.txns.get(txid)
            if txn is not None:
                return dict(txn.summary(), trace=list(txn.trace),
                            votes={b: v.value for b, v in txn.core.votes.items()})
        if txid in self.log.finished:
            return dict(_summary_from_log(txid, self.log.finished[txid]), trace=[], votes={})
        raise BankError(FaultCode.UNKNOWN_TXN, f"The coordinator knows no transaction {txid}.")

    def decision(self, txid, asker="") -> dict:
        """What was decided for txid: {"txid", "decision": committed|aborted|pending}.

        Branches ask this when they hold a prepared txid (termination protocol). No
        commit record means aborted (presumed abort), unless the txn is still voting.
        """
        txid = check_token(txid, "transaction id")
        asker = check_branch_name(asker) if asker not in ("", None) else ""
        if asker in self.links and self.links[asker].partitioned:
            raise BankError(FaultCode.UNAVAILABLE, f"{asker} is cut off by a lab partition.")
        with self._lock:
            txn = self.txns.get(txid)
        if txn is not None and txn.published is None:
            answer = "pending"
        elif txn is not None:
            answer = txn.published.value
        else:
            answer = self.log.outcome(txid) or TxState.ABORTED.value     # Rule 4
        if txn is not None:
            txn.note(asker or "?", COORDINATOR, "query", f"decision? -> {answer}")
        return {"txid": txid, "decision": answer}

    # ---- single-branch operations (routed) ---------------------------------------

    def open_account(self, branch, owner, initial="0") -> dict:
        """Open an account at a branch. Example: open_account("Delhi", "Meera Iyer", "500")"""
        owner = check_text(owner, "owner name")
        return self._link(branch).call("open_account", owner, _amount_text(initial, True))

    def deposit(self, acct, amount, request_id="") -> dict:
        """Deposit into BRANCH/NUMBER. Example: deposit("Mumbai/1001", "250.00")"""
        branch, number = self._route(acct)
        return branch.call("deposit", number, _amount_text(amount),
                           check_token(request_id, "request id", optional=True))

    def withdraw(self, acct, amount, request_id="") -> dict:
        """Withdraw from BRANCH/NUMBER. Example: withdraw("Delhi/1002", "100")"""
        branch, number = self._route(acct)
        return branch.call("withdraw", number, _amount_text(amount),
                           check_token(request_id, "request id", optional=True))

    # ---- transfer: local or Two-Phase Commit --------------------------------------

    def transfer(self, src, dst, amount, request_id="") -> dict:
        """Move money from src to dst (BRANCH/NUMBER each); atomic across branches.

        Returns {"txid", "outcome": "committed"|"aborted", "reason", "waiting_for"}.
        With a request_id, a retry returns the first outcome and never moves money twice.
        Example: transfer("Mumbai/1001", "Delhi/1002", "100.00", "lab1-try1")
        """
        (src_branch, src_no), (dst_branch, dst_no) = self._route(src), self._route(dst)
        amount = _amount_text(amount)
        request_id = check_token(request_id, "request id", optional=True)
        if src_branch is dst_branch:                                       # Rule 5
            return self._local_transfer(src_branch, src_no, dst_no, amount, request_id)
        info = {"src": f"{src_branch.name}/{src_no}", "dst": f"{dst_branch.name}/{dst_no}",
                "amount": amount, "request_id": request_id}
        plan = {src_branch.name: [{"account": src_no, "delta": format_delta(-parse_amount(amount))}],
                dst_branch.name: [{"account": dst_no, "delta": format_delta(parse_amount(amount))}]}
        txn, first = self._claim(info, plan)
        if first:
            try:
                self._run_two_phase_commit(txn)
            finally:
                txn.done.set()      # a retry waiting on the same request id never hangs
        txn.done.wait()
        if txn.result is None:
            raise BankError(FaultCode.INTERNAL, f"Transfer {txn.txid} failed inside the "
                            "coordinator; its outcome is in transactions() once recovered.")
        return txn.result

    def _local_transfer(self, link, src_no, dst_no, amount, request_id) -> dict:
        try:
            link.call("transfer", src_no, dst_no, amount, request_id)
            return {"txid": "", "outcome": "committed", "reason": "", "waiting_for": [],
                    "local": True}
        except BankError as exc:
            if exc.code in (FaultCode.INSUFFICIENT_FUNDS, FaultCode.UNKNOWN_ACCOUNT):
                return {"txid": "", "outcome": "aborted", "reason": exc.message,
                        "waiting_for": [], "local": True}
            raise

    def _claim(self, info: dict, plan: dict):
        """A new Txn, or the one already started for the same request id (and False)."""
        fingerprint = (info["src"], info["dst"], info["amount"])
        with self._lock:
            rid = info["request_id"]
            if rid and rid in self.requests:
                seen, txid = self.requests[rid]
                if seen != fingerprint:
                    raise BankError(FaultCode.BAD_INPUT, f"Request id {rid!r} was already "
                                                         "used for a different transfer.")
                if txid in self.txns:
                    return self.txns[txid], False
                return self._finished_request(txid), False
            txn = Txn(self._new_txid(), plan, dict(info, branches=sorted(plan),
                                                   began=now()))
            self.txns[txn.txid] = txn
            self._forget_old_txns()
            if rid:
                self.requests[rid] = (fingerprint, txn.txid)
        return txn, True

    def _finished_request(self, txid: str) -> Txn:
        """A stand-in Txn holding the outcome of a request finished long ago.

        If the outcome is no longer remembered, say so: never guess "aborted".
        """
        data = self.log.finished.get(txid, {})
        outcome = data.get("outcome") or self.log.outcome(txid)
        if outcome is None:
            raise BankError(FaultCode.UNKNOWN_TXN,
                            f"That request id was used for transaction {txid}, whose outcome "
                            "is no longer remembered here (only recent ones are); ask the "
                            "branches with status(txid).")
        txn = Txn(txid, {}, data)
        txn.result = {"txid": txid, "outcome": outcome, "reason": data.get("reason", ""),
                      "waiting_for": []}
        txn.done.set()
        return txn

    def _new_txid(self) -> str:
        """Readable and globally unique: <coordinator>-<UTC time>-<random>."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return f"{self.name}-{stamp}-{secrets.token_hex(3)}"

    def _forget_old_txns(self):
        while len(self.txns) > KEEP_TXNS:
            txid, old = next(iter(self.txns.items()))
            if old.core.state in (CoordState.COMMITTED, CoordState.ABORTED):
                self.txns.popitem(last=False)
            else:
                break

    def _run_two_phase_commit(self, txn: Txn) -> None:
        """The whole protocol for one transaction; sets txn.result for the client."""
        self.log.begin(txn.txid, txn.info)
        txn.note(COORDINATOR, LOG, "begin", f"{txn.info['src']} -> {txn.info['dst']} "
                                            f"{txn.info['amount']}")
        # ---- Phase 1: voting (Rule 1) ----
        list(self._pool.map(lambda b: self._ask_vote(txn, b), txn.core.participants))
        self.faults.crash_if_armed("crash-after-prepare")
        # ---- The decision, durable before visible (Rule 2) ----
        decision = txn.core.decide()
        if decision is CoordState.COMMITTING:
            self.log.commit(txn.txid)                      # fsync: THE commit point
            txn.note(COORDINATOR, LOG, "decision", "commit (forced to disk)")
            self.faults.crash_if_armed("crash-after-decision")
            txn.published = TxState.COMMITTED
        else:
            self.log.abort(txn.txid)
            txn.note(COORDINATOR, LOG, "decision", f"abort: {txn.core.reason}")
            txn.published = TxState.ABORTED
        log.info("%s: decided %s %s", txn.txid, txn.published.value, txn.core.reason)
        # ---- Phase 2: the decision (Rule 3) ----
        self._send_decision(txn)
        txn.result = {"txid": txn.txid, "outcome": txn.published.value,
                      "reason": txn.core.reason, "waiting_for": txn.core.waiting_for()}
        txn.done.set()

    def _ask_vote(self, txn: Txn, branch: str) -> None:
        ops = txn.plan[branch]
        txn.note(COORDINATOR, branch, "prepare", ", ".join(
            f"{o['account']} {o['delta']}" for o in ops))
        try:
            answer = self.links[branch].call("prepare", txn.txid, self.url, ops)
            vote, reason = Vote(answer["vote"]), answer.get("reason", "")
            txn.note(branch, COORDINATOR, "vote", vote.value + (f": {reason}" if reason else ""))
        except (BankError, KeyError, ValueError) as exc:
            txn.note(branch, COORDINATOR, "error", f"no vote: {exc}")
            txn.core.on_vote(branch, Vote.NO, str(exc), answered=False)
            return
        txn.core.on_vote(branch, vote, reason)

    def _send_decision(self, txn: Txn) -> None:
        """Tell every participant that has not acknowledged yet; log end when all have."""
        if not txn.phase2_lock.acquire(blocking=False):
            return                                   # another thread is already at it
        try:
            targets = txn.core.waiting_for()
            if txn.published is TxState.COMMITTED and self.faults.fires("crash-mid-commit"):
                self._tell(txn, targets[0])              # one participant told...
                self.faults.crash_now("crash-mid-commit")  # ...and the others never
            list(self._pool.map(lambda b: self._tell(txn, b), targets))
            if not txn.core.waiting_for() and not txn.ended:
                self.log.end(txn.txid, txn.published.value, txn.core.reason)
                txn.ended = now()
                txn.note(COORDINATOR, LOG, "end", "every participant acknowledged")
        finally:
            txn.phase2_lock.release()

    def _tell(self, txn: Txn, branch: str) -> None:
        method = "commit" if txn.published is TxState.COMMITTED else "abort"
        txn.note(COORDINATOR, branch, method)
        try:
            self.links[branch].call(method, txn.txid)
            txn.note(branch, COORDINATOR, "ack", method)
            txn.core.on_ack(branch)
        except BankError as exc:
            txn.note(branch, COORDINATOR, "error", f"no ack: {exc.message}")

    # ---- recovery and background retries (Rules 3 and 4) ---------------------------

    def _recover_from_log(self) -> None:
        """Rebuild in-flight transactions from the log: commits are re-sent, the rest aborted."""
        for txid, entry in list(self.log.in_flight.items()):
            info = entry["info"]
            plan = {b: [] for b in info.get("branches", [])}
            txn = Txn(txid, plan, info)
            txn.began = info.get("began", "")
            txn.core.state = CoordState.COMMITTING if entry["decision"] == "commit" \
                else CoordState.ABORTING
            txn.published = txn.core.decision
            if entry["decision"] != "commit":
                self.log.abort(txid)
            txn.note(COORDINATOR, LOG, "recovered",
                     f"found after a restart: {txn.published.value} (re-sending)")
            txn.result = {"txid": txid, "outcome": txn.published.value, "reason": "",
                          "waiting_for": txn.core.waiting_for()}
            txn.done.set()
            self.txns[txid] = txn
            if info.get("request_id"):
                self.requests[info["request_id"]] = (
                    (info.get("src"), info.get("dst"), info.get("amount")), txid)
        for txid, data in self.log.finished.items():
            if data.get("request_id"):
                self.requests[data["request_id"]] = (
                    (data.get("src"), data.get("dst"), data.get("amount")), txid)
        if self.log.in_flight:
            log.info("recovery: %d transaction(s) to finish", len(self.log.in_flight))

    def recover(self) -> dict:
        """Re-send the decision of every unfinished transaction now.

        Returns {"resent": n, "unfinished": [txid, ...]} (those still waiting afterwards).
        """
        pending = self._unfinished()
        for txn in pending:
            self._send_decision(txn)
        return {"resent": len(pending), "unfinished": [t.txid for t in self._unfinished()]}

    def _unfinished(self) -> list:
        with self._lock:
            return [t for t in self.txns.values() if t.published and not t.ended]

    def run_retries(self) -> None:
        """Background loop: keep telling the decision until every participant acks."""
        while not self._stop.wait(RETRY_EVERY):
            for txn in self._unfinished():
                txn.note(COORDINATOR, COORDINATOR, "retry",
                         "waiting for " + ", ".join(txn.core.waiting_for()))
                self._send_decision(txn)

    def start_background(self):
        """Find each branch's current primary, finish what the log says is unfinished,
        then keep retrying."""
        for link in self.links.values():
            if len(link.urls) > 1:
                self._pool.submit(link.find_primary)
        self._pool.submit(self.recover)
        threading.Thread(target=self.run_retries, name="retries", daemon=True).start()

    def close(self):
        self._stop.set()
        self._pool.shutdown(wait=False)
        self.log.close()

    # ---- lab controls (only with --allow-faults) ------------------------------------

    def fault(self, point) -> dict:
        """Arm a coordinator fault point: crash-after-prepare, crash-after-decision,
        crash-mid-commit ("" disarms)."""
        return self.faults.arm(point)

    def partition(self, branch) -> dict:
        """Lab: from now on the coordinator cannot reach this branch at all."""
        link = self._link(branch)
        link.partitioned = True
        log.warning("partition: %s is cut off", link.name)
        return {"branch": link.name, "partitioned": True}

    def heal(self, branch) -> dict:
        """Lab: end a partition; unfinished transactions are retried at once."""
        link = self._link(branch)
        link.partitioned = False
        log.warning("heal: %s is reachable again", link.name)
        self._pool.submit(self.recover)
        return {"branch": link.name, "partitioned": False}

    # ---- helpers --------------------------------------------------------------------

    def _link(self, name) -> BranchLink:
        name = check_branch_name(name)
        if name not in self.links:
            raise BankError(FaultCode.UNKNOWN_ACCOUNT,
                            f"There is no branch {name!r}; the branches are "
                            f"{', '.join(sorted(self.links))}.")
        return self.links[name]

    def _route(self, acct) -> tuple:
        branch, number = split_acct_ref(acct)
        return self._link(branch), number

    def _each_branch(self, fn) -> list:
        return list(self._pool.map(fn, [self.links[n] for n in sorted(self.links)]))

    @staticmethod
    def _try(link: BranchLink, method: str, *args, default):
        try:
            return link.call(method, *args)
        except BankError:
            return default


def _amount_text(value, allow_zero=False) -> str:
    """Check an amount here (so a bad one never reaches a branch) and send it as text."""
    return format_amount(parse_amount(value, allow_zero=allow_zero))


def _matches(row: dict, state: str) -> bool:
    if state == "in-doubt":
        return row["state"] in ("preparing", "committing", "aborting")
    return row["outcome"] == state and row["state"] in ("committed", "aborted",
                                                        "committing", "aborting")


# ---- command line ------------------------------------------------------------------------

def read_config(path) -> dict:
    """cluster.ini -> options. See cluster.ini in the repository for the format."""
    cp = configparser.ConfigParser()
    if not cp.read(path, encoding="utf-8"):
        raise SystemExit(f"Cannot read the config file {path}.")
    section = cp["coordinator"] if cp.has_section("coordinator") else {}
    branches = dict(cp["branches"]) if cp.has_section("branches") else {}
    # configparser lower-cases keys; keep the names as written in the file.
    names = {k.lower(): k for k in _raw_keys(path, "branches")}
    return {"branches": {names.get(k, k): v.strip() for k, v in branches.items()},
            **{k: v for k, v in section.items()}}


def _raw_keys(path, section_name) -> list:
    keys, inside = [], False
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{section_name}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            keys.append(line.split("=", 1)[0].strip())
    return keys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the 2PC coordinator of the bank.")
    p.add_argument("--config", help="cluster.ini with [coordinator] and [branches]")
    p.add_argument("--name", default=None, help="coordinator name, used in txids (C1)")
    p.add_argument("--port", type=int, default=None, help="port (default 9000; 0: any)")
    p.add_argument("--host", default=None, help="address to serve on (127.0.0.1)")
    p.add_argument("--branch", action="append", default=[], metavar="NAME=URL[,URL...]",
                   help="a branch and its URL (then its replicas' URLs); repeat per branch")
    p.add_argument("--log", default=None, help="recovery log (logs/recovery.log)")
    p.add_argument("--allow-faults", action="store_true",
                   help="enable fault(), partition() and heal()")
    p.add_argument("--fail-at", default="", metavar="POINT", help="arm a fault point now")
    p.add_argument("--secret-file", help="shared secret: sign and require signed calls")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve beyond loopback without a secret (trusted networks only)")
    p.add_argument("--log-dir", default="logs", help="where the process log goes")
    p.add_argument("--url-file", help="write the served URL here once listening")
    args = p.parse_args(argv)
    config = read_config(args.config) if args.config else {"branches": {}}
    branches = dict(config["branches"])
    for item in args.branch:
        name, sep, url = item.partition("=")
        if not sep or not url:
            p.error(f"--branch takes NAME=URL[,REPLICA_URL...], not {item!r}")
        branches[name.strip()] = url
    branches = {name: [u.strip() for u in urls.split(",") if u.strip()]
                for name, urls in branches.items()}
    if not branches:
        p.error("name at least one branch: --branch Mumbai=http://127.0.0.1:9100")
    args.branches = branches
    args.name = args.name or config.get("name", "C1")
    args.host = args.host or config.get("host", "127.0.0.1")
    args.port = args.port if args.port is not None else int(config.get("port", 9000))
    args.log = args.log or config.get("log", "logs/recovery.log")
    args.secret_file = args.secret_file or config.get("secret_file") or None
    args.allow_faults = args.allow_faults or config.get("allow_faults", "no") == "yes"
    return args


def main(argv=None):
    args = parse_args(argv)
    secret = rpc.load_secret(args.secret_file) if args.secret_file else None
    rpc.check_bind(args.host, secret, args.insecure_no_auth)
    rpc.setup_logging("coordinator", args.log_dir)
    try:
        coordinator = Coordinator(args.name, args.branches, args.log, secret=secret,
                                  allow_faults=args.allow_faults or bool(args.fail_at))
        server = rpc.Server(coordinator, args.host, args.port, secret)
    except OSError as exc:
        raise SystemExit(f"Cannot start the coordinator: {exc.strerror or exc}.")
    except BankError as exc:
        raise SystemExit(f"Cannot start the coordinator: {exc.message}")
    coordinator.url = server.url
    if args.fail_at:
        coordinator.faults.arm(args.fail_at)
    print(f"Coordinator {args.name} serving at {coordinator.url} (log {args.log}, "
          f"branches {', '.join(f'{n}={u[0]}' for n, u in args.branches.items())}, "
          f"authentication {'on' if secret else 'OFF'})", flush=True)
    if args.url_file:
        write_url_file(args.url_file, server.url)
    coordinator.start_background()
    rpc.serve(server, on_stop=coordinator.close)


if __name__ == "__main__":
    sys.exit(main())
