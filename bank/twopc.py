"""The coordinator's Two-Phase Commit driver: one transfer across branches, start to end.

Role: run the protocol for each transfer between branches, remember every
transaction with its trace, finish interrupted ones after a crash, and answer
"what was decided?". coordinator.py serves this over XML-RPC and routes everything
else; protocol.py holds the decisions themselves; recovery_log.py the durable log.

Rules:
  * Rule 1 - phase 1: send prepare to every participant in parallel, each with a
    timeout. A no, an error or silence is a no.
  * Rule 2 - the commit point: the commit decision is forced to the recovery log
    before any commit is sent and before the client hears "committed". Until then
    ``decision(txid)`` answers "pending", never a guess.
  * Rule 3 - phase 2: tell every participant the decision in parallel, and retry in
    the background until each acknowledges; then log ``end``.
  * Rule 4 - presumed abort: a txid with no commit record is aborted, so recovery
    re-sends commit for committed txids without ``end`` and aborts all the others.
  * Every message sent and received is kept in the transaction's trace, with times,
    so the shell and the window can draw its sequence diagram.

Glossary (more in protocol.py):
  plan        which ops each participant is asked to prepare
  trace       the list of messages of one transaction: who, to whom, what, when
  request id  a client-chosen id: a retried transfer returns the first outcome
"""

import collections
import logging
import secrets
import threading
import time

from bank.errors import BankError, FaultCode
from bank.ledger import now
from bank.protocol import CoordinatorTxn, CoordState, TxState, Vote
from bank.recovery_log import IN_DOUBT, LogWriteError

log = logging.getLogger("coordinator")

RETRY_EVERY = 1.0            # seconds between phase-2 retries
KEEP_TXNS = 1000             # transactions kept in memory with their traces
TRACE_HEAD, TRACE_TAIL = 200, 300   # messages kept per trace: the first and the last
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
        self._head, self._tail = [], collections.deque(maxlen=TRACE_TAIL)
        self._dropped = 0
        self.done = threading.Event()      # set when the client has its answer
        self.result = None
        self.phase2_lock = threading.Lock()   # one phase-2 round at a time
        self.lock = threading.Lock()          # guards core and trace: votes and acks
        self._t0 = time.monotonic()           # arrive on several threads at once

    @property
    def txid(self) -> str:
        return self.core.txid

    def note(self, sender: str, receiver: str, msg: str, detail: str = "") -> None:
        """Add one message to the trace. A long outage (retries every second) keeps the
        first TRACE_HEAD and the last TRACE_TAIL messages, so the end is always shown."""
        entry = {"at": now(), "ms": int((time.monotonic() - self._t0) * 1000),
                 "from": sender, "to": receiver, "msg": msg, "detail": detail}
        with self.lock:
            if len(self._head) < TRACE_HEAD:
                self._head.append(entry)
                return
            if len(self._tail) == self._tail.maxlen:
                self._dropped += 1
            self._tail.append(entry)

    @property
    def trace(self) -> list:
        with self.lock:
            gap = [{"at": self._tail[0]["at"], "ms": self._tail[0]["ms"],
                    "from": COORDINATOR, "to": COORDINATOR, "msg": "skipped",
                    "detail": f"{self._dropped} messages (retries) not kept"}] \
                if self._dropped else []
            return self._head + gap + list(self._tail)

    def votes(self) -> dict:
        with self.lock:
            return {b: v.value for b, v in self.core.votes.items()}

    def summary(self) -> dict:
        outcome = self.published.value if self.published else ""
        return {"txid": self.txid, "state": self.core.state.value, "outcome": outcome,
                "src": self.info.get("src", ""), "dst": self.info.get("dst", ""),
                "amount": self.info.get("amount", ""), "reason": self.core.reason,
                "request_id": self.info.get("request_id", ""), "began": self.began,
                "ended": self.ended, "participants": list(self.core.participants),
                "waiting_for": self.core.waiting_for() if self.published else []}


def summary_from_log(txid: str, data: dict) -> dict:
    """A finished transaction known only from the recovery log (after a restart)."""
    return {"txid": txid, "state": data.get("outcome", ""), "outcome": data.get("outcome", ""),
            "src": data.get("src", ""), "dst": data.get("dst", ""),
            "amount": data.get("amount", ""), "reason": data.get("reason", ""),
            "request_id": data.get("request_id", ""), "began": data.get("began", ""),
            "ended": data.get("ended", ""), "participants": data.get("branches", []),
            "waiting_for": []}


# ---- the driver ------------------------------------------------------------------------------

class TwoPhaseCommit:
    """Drives 2PC for transfers and remembers them, with their traces, for the API.

    links: branch name -> an object with call(method, *args) (coordinator.BranchLink);
    log: the RecoveryLog; faults: the coordinator's FaultPoints; pool: a thread pool.
    """

    def __init__(self, name: str, links: dict, recovery_log, faults, pool):
        self.name, self.links, self.log, self.faults = name, links, recovery_log, faults
        self.url = ""                              # ours, sent with every prepare
        self.txns = collections.OrderedDict()      # txid -> Txn, newest last
        self.requests = {}                         # request id -> (fingerprint, txid)
        self._lock = threading.Lock()
        self._pool = pool
        self._stop = threading.Event()
        self._recover_from_log()

    def transfer(self, info: dict, plan: dict) -> dict:
        """Run 2PC for one transfer (or join the run of the same request id); its outcome.

        info: {"src", "dst", "amount", "request_id"}; plan: branch -> its ops.
        """
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
        try:
            self.log.begin(txn.txid, txn.info)
        except LogWriteError:          # storage faults: refused before any prepare was sent
            self._forget(txn)
            raise
        txn.note(COORDINATOR, LOG, "begin", f"{txn.info['src']} -> {txn.info['dst']} "
                                            f"{txn.info['amount']}")
        # ---- Phase 1: voting (Rule 1) ----
        list(self._pool.map(lambda b: self._ask_vote(txn, b), txn.core.participants))
        self.faults.crash_if_armed("crash-after-prepare")
        # ---- The decision, durable before visible (Rule 2) ----
        with txn.lock:
            decision = txn.core.decide()
        if decision is CoordState.COMMITTING and not self._force_commit(txn):
            decision = CoordState.ABORTING     # storage faults: no commit record, no commit
        if decision is CoordState.COMMITTING:
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

    def _force_commit(self, txn: Txn) -> bool:
        """Log the commit decision durably (fsync: THE commit point); True once it is.

        False if the record certainly did not reach the log (a full disk: the log cut
        the line off again); then the transaction is aborted, as presumed abort says.
        If the fsync fails, stop the process: the decision may or may not be on disk,
        and only recovery can tell (Rule 4)."""
        try:
            self.log.commit(txn.txid)
            return True
        except LogWriteError as exc:
            with txn.lock:             # nobody has seen a commit: abort is still open
                txn.core.state, txn.core.reason = CoordState.ABORTING, exc.message
            return False
        except OSError:
            log.critical("cannot force the commit of %s to the log: stopping; recovery "
                         "will finish it from what the log holds", txn.txid, exc_info=True)
            self.faults.crash_now("the recovery log could not be written")

    def _forget(self, txn: Txn) -> None:
        """Drop a transaction that never started (its begin could not be logged)."""
        with self._lock:
            self.txns.pop(txn.txid, None)
            rid = txn.info.get("request_id")
            if rid and self.requests.get(rid, (None, None))[1] == txn.txid:
                del self.requests[rid]

    def _ask_vote(self, txn: Txn, branch: str) -> None:
        """One participant's vote. Anything but a clear yes (an error, a timeout, an
        answer we do not understand) is counted as no (Rule 1)."""
        ops = txn.plan[branch]
        txn.note(COORDINATOR, branch, "prepare", ", ".join(
            f"{o['account']} {o['delta']}" for o in ops))
        try:
            answer = self.links[branch].call("prepare", txn.txid, self.url, ops)
            vote, reason = Vote(answer["vote"]), answer.get("reason", "")
            txn.note(branch, COORDINATOR, "vote", vote.value + (f": {reason}" if reason else ""))
        except Exception as exc:                # noqa: BLE001 - every failure is a no
            why = exc.message if isinstance(exc, BankError) else f"a strange answer ({exc!r})"
            txn.note(branch, COORDINATOR, "error", f"no vote: {why}")
            with txn.lock:
                txn.core.on_vote(branch, Vote.NO, why, answered=False)
            return
        with txn.lock:
            txn.core.on_vote(branch, vote, reason)

    def _send_decision(self, txn: Txn) -> None:
        """Tell every participant that has not acknowledged yet; log end when all have."""
        if not txn.phase2_lock.acquire(blocking=False):
            return                                   # another thread is already at it
        try:
            targets = txn.core.waiting_for()
            if targets and txn.published is TxState.COMMITTED and \
                    self.faults.fires("crash-mid-commit"):
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
        except Exception as exc:                # noqa: BLE001 - no ack; retried later
            why = exc.message if isinstance(exc, BankError) else repr(exc)
            txn.note(branch, COORDINATOR, "error", f"no ack: {why}")
            return
        txn.note(branch, COORDINATOR, "ack", method)
        with txn.lock:
            txn.core.on_ack(branch)

    # ---- what the API shows ---------------------------------------------------------

    def decision(self, txid: str, asker: str = "") -> str:
        """committed, aborted, or pending while the votes are still being collected.

        Only a decision that is durable is ever answered (Rule 2); a txid with no
        commit record is aborted (Rule 4).
        """
        with self._lock:
            txn = self.txns.get(txid)
        if self.log.in_doubt_about(txid):       # storage faults: a damaged log may hide
            answer = IN_DOUBT                   # it, so never presume abort (Rule 6 there)
        elif txn is not None and txn.published is None:
            answer = "pending"
        elif txn is not None:
            answer = txn.published.value
        else:
            answer = self.log.outcome(txid) or TxState.ABORTED.value
        if txn is not None:
            txn.note(asker or "?", COORDINATOR, "query", f"decision? -> {answer}")
        return answer

    def summaries(self) -> list:
        """Every transaction remembered, in memory or in the log's recent history."""
        with self._lock:
            rows = [t.summary() for t in self.txns.values()]
            known = set(self.txns)
        rows += [summary_from_log(t, d) for t, d in self.log.finished.copy().items()
                 if t not in known]
        return rows

    def detail(self, txid: str) -> dict:
        """One transaction with its votes and its trace."""
        with self._lock:
            txn = self.txns.get(txid)
            if txn is not None:
                return dict(txn.summary(), trace=txn.trace, votes=txn.votes())
        if txid in self.log.finished:
            return dict(summary_from_log(txid, self.log.finished[txid]), trace=[], votes={})
        raise BankError(FaultCode.UNKNOWN_TXN, f"The coordinator knows no transaction {txid}.")

    # ---- recovery and background retries (Rules 3 and 4) ---------------------------

    def _recover_from_log(self) -> None:
        """Rebuild in-flight transactions from the log: commits are re-sent, the rest aborted."""
        for txid, entry in list(self.log.in_flight.items()):
            info = entry["info"]
            plan = {b: [] for b in info.get("branches", [])}
            txn = Txn(txid, plan, info)
            txn.began = info.get("began", "")
            if info.get("request_id"):
                self.requests[info["request_id"]] = (
                    (info.get("src"), info.get("dst"), info.get("amount")), txid)
            if txid in self.log.in_doubt:       # storage faults: kept in doubt, not aborted
                self._keep_in_doubt(txn)
                continue
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
        for txid, data in self.log.finished.items():
            if data.get("request_id"):
                self.requests[data["request_id"]] = (
                    (data.get("src"), data.get("dst"), data.get("amount")), txid)
        if self.log.in_flight:
            log.info("recovery: %d transaction(s) to finish", len(self.log.in_flight))

    def _keep_in_doubt(self, txn: Txn) -> None:
        """A txn the damaged log may have decided: shown in doubt, never sent a decision."""
        txn.core.reason = "in doubt: the recovery log is damaged (--accept-damaged-log)"
        txn.note(COORDINATOR, LOG, "recovered", txn.core.reason)
        txn.done.set()
        self.txns[txn.txid] = txn

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
                try:
                    txn.note(COORDINATOR, COORDINATOR, "retry",
                             "waiting for " + ", ".join(txn.core.waiting_for()))
                    self._send_decision(txn)
                except Exception:               # noqa: BLE001 - never stop retrying
                    log.exception("retrying the decision of %s", txn.txid)

    def start(self) -> None:
        """Finish what the log says is unfinished, then keep retrying in the background."""
        self._pool.submit(self.recover)
        threading.Thread(target=self.run_retries, name="retries", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
