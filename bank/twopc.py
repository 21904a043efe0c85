"""The coordinator's Two-Phase Commit driver: one transfer across branches, start to end.

Role: run the protocol for each transfer between branches, remember every
transaction with its trace, finish interrupted ones after a crash, and answer
"what was decided?". coordinator.py serves this over XML-RPC and routes everything
else. The decisions themselves are the coordinator core's (bank/core/coordinator.py,
rules C1-C14); this file only carries out the effects the core returns and feeds the
answers back in; bank/recovery_log.py is the durable log.

Rules (how the core's effects are carried out):
  * D1 - records first, then messages: every Record effect of a step is written (and
    a forced one fsynced) while the transaction's lock is held, before any Send or
    Reply of that step leaves. So nobody sees a decision that is not durable (C3, C7).
  * D2 - the sends of a step all leave before any answer is awaited, each with a
    timeout; in a transaction's rounds one thread then takes in each answer as it
    arrives (bank/twopc_rounds.py), and a recovery pass sends its decisions on the
    pool. Each answer (or its absence, as a Silence: never a "no") is fed back into
    the core.
  * D3 - the client is answered after the first round of phase 2, with
    ``waiting_for`` naming the participants that have not acknowledged yet. A
    message for a branch that already has one on its way rides the next batch there
    (bank/batching.py, B5); the driver waits for such a vote, but not for such a
    decision: under load the client hears the outcome at the forced decision, the
    branch in ``waiting_for``. So does every client when decisions are held for
    company (--hold-decisions, B6): a held decision is not waited for either.
  * D4 - retries run in the background until every participant acknowledges (C6);
    no work ever waits on the thread pool it runs on.
  * D5 - say what is known, no more: every answer in the trace keeps its kind (yes,
    no, timeout, unreachable, cut-off, error); a missing vote is never a "no"; a message
    refused before it left (a partition, a refused connection) is marked "sent": False,
    so a diagram draws it at the sender only, with the reason.
  * Every message sent and received is kept in the transaction's trace, with times,
    so the shell and the window can draw its sequence diagram (bank/twopc_txn.py keeps
    each transaction with its trace, and shows them to the API; bank/twopc_memory.py
    remembers the transactions and the request ids that started them).
  * D6 - one presumption per log: the coordinator runs the core's table of its
    --presumption (C1-C13), writes it into every begin record (so recovery finishes
    each transaction under its own), counts each transaction's writes and messages
    (bank/txn_counters.py, N1-N3), and refuses to start on a log written under another
    presumption: a txid it no longer knows would be presumed the other way. A new log
    is no way round while a branch holds one of the old log's transactions in doubt:
    the new log knows none of them and answers "in-doubt" (C14; presuming, presumed
    commit would tell a branch in doubt "committed" while another had voted no). It also
    refuses a log whose unfinished transactions name a branch it was not given:
    recovery could not finish them.
  * D7 - no two transactions share a txid: <coordinator>-<UTC second>-<6 hex digits>,
    the digits counting up from a random start, never one this coordinator holds. A
    branch answers a txid it knows with its recorded vote (P3), so a second transfer
    under the same id would be told "committed" and never applied. (With random
    digits, at 300 transfers a second two shared an id about every six minutes.)

Glossary (more in bank/core/messages.py):
  plan        which ops each participant is asked to prepare
  trace       the list of messages of one transaction: who, to whom, what, when
  request id  a client-chosen id: a retried transfer returns the first outcome
  kind        what an answer was: yes, no, ack, or a silence: timeout (sent, no answer
              in time), unreachable (connection refused), cut-off (a lab partition),
              error (sent; an error came back, or the connection broke)
  never sent  a message refused before it left this process; it cannot have arrived
"""

import logging
import threading
import time

from bank.errors import CUT_OFF, TIMED_OUT, BankError, FaultCode
from bank.handoff import Latch, run_all
from bank.core.coordinator import CoordinatorTxn, Presumption
from bank.core.messages import CoordState, Record, Reply, Send, Silence, TxState, Vote
from bank.twopc_recovery import rebuild_before_crash
from bank.twopc_rounds import STOP_WAIT, Rounds, method_of
from bank.twopc_memory import Remembered
from bank.twopc_txn import COORDINATOR, LOG, Txn, TxnViews, kind_of
from bank.recovery_log import IN_DOUBT, LogWriteError

log = logging.getLogger("coordinator")

RETRY_EVERY = 1.0            # seconds between phase-2 retries


# ---- recovery and background retries (D4) -------------------------------------------------

class Recovery:
    """Mixed into TwoPhaseCommit: rebuild from the log after a restart (C8, C9), and
    finish unfinished decisions: `recover`, heals and the retry timer all ask for a
    recovery pass, which runs on its own thread, once at a time (D4)."""

    def _recover_from_log(self) -> None:
        """Rebuild each unfinished transaction from its log records through the core (C8):
        a logged commit is re-sent, anything else is aborted. Its trace first gets what
        the log proves happened before the crash (bank/twopc_recovery.py)."""
        told = _recovery_words(self.log)              # before recovery writes anything
        for txid, entry in list(self.log.in_flight.items()):
            info = entry["info"]
            txn = Txn(txid, {b: [] for b in info.get("branches", [])}, info)
            txn.began = info.get("began", "")
            decision = entry["decision"] or ""
            if info.get("request_id"):
                self.requests.record(info["request_id"], (
                    "transfer", info.get("src"), info.get("dst"), info.get("amount")), txid)
            if txid in self.log.in_doubt:       # storage faults: kept in doubt (C9)
                self._keep_in_doubt(txn, decision)
                continue
            rebuild_before_crash(txn, decision)     # what the log proves, then "recovered"
            self._step(txn, txn.core.on_restart, decision)
            txn.result = {"txid": txid, "outcome": txn.published.value, "reason": "",
                          "waiting_for": txn.core.waiting_for()}
            txn.done.set()
            self._remember(txn)
        for txid, data in self.log.finished.items():
            if data.get("request_id"):
                self.requests.record(data["request_id"], (
                    "transfer", data.get("src"), data.get("dst"), data.get("amount")), txid)
        if told:
            log.info("recovery: %d transaction(s) to finish: %s", len(told),
                     "; ".join(told[:10]))

    def _keep_in_doubt(self, txn: Txn, decision: str) -> None:
        """C9: a txn the damaged log may have decided: shown in doubt, never sent a
        decision, out of the retry loop (it is not decided)."""
        txn.core.reason = "in doubt: the recovery log is damaged (--accept-damaged-log)"
        txn.note(COORDINATOR, LOG, "recovered", txn.core.reason)
        self._step(txn, txn.core.on_restart, decision, True)
        txn.done.set()
        self._remember(txn)

    def recover(self) -> dict:
        """Re-send the decision of every unfinished transaction now, and wait for it.

        Returns {"resent": n, "unfinished": [txid, ...]}: n transactions whose decision
        this pass really sent, and those still waiting afterwards. Recovery runs on its
        own thread, once at a time; callers arriving during a pass share the next (D4).
        """
        return self._recovery.request(wait=True)

    def request_recovery(self) -> None:
        """Ask for a recovery pass soon, without waiting (heal, failover, start): a burst
        of requests coalesces into one or two passes."""
        self._recovery.request()

    def _recovery_pass(self) -> dict:
        """One pass: claim every unfinished transaction no other thread is telling, send
        all their decisions in parallel on the pool, then release them. It runs on the
        recovery thread, never on the pool it waits on (D4)."""
        claimed = [t for t in self._unfinished() if self._claim_phase2(t)]
        try:
            sends = []
            for txn in claimed:
                txn.note(COORDINATOR, COORDINATOR, "retry",
                         "waiting for " + ", ".join(txn.core.waiting_for()))
                sends += [(txn, send) for send in self._step(txn, txn.core.on_retry)]
            run_all(self._pool, lambda job: self._tell(*job), sends)
            for txn in claimed:
                if not txn.core.waiting_for():
                    log.info("%s: every participant has acknowledged the decision (%s) "
                             "now, sent again (C6)", txn.txid, txn.core.decision.value)
        finally:
            for txn in claimed:
                txn.phase2_lock.release()
        return {"resent": len(claimed), "unfinished": [t.txid for t in self._unfinished()]}

    @staticmethod
    def _claim_phase2(txn: Txn) -> bool:
        """Take the transaction's phase-2 lock if it is free and there is still someone to
        tell (a round that just finished may have logged end)."""
        if not txn.phase2_lock.acquire(blocking=False):
            return False
        if txn.core.state in (CoordState.COMMITTING, CoordState.ABORTING):
            return True
        txn.phase2_lock.release()
        return False

    def _unfinished(self) -> list:
        """The decided transactions still waiting for an acknowledgement. Only the open
        ones are looked at (a few under load), not the thousand remembered."""
        return [t for t in self._open_now() if t.published]

    def run_retries(self) -> None:
        """Background loop: keep telling the decision until every participant acks (C6).
        Each round is a recovery pass, so retries and `recover` never overlap."""
        while not self._stop.wait(RETRY_EVERY):
            if self._unfinished():
                try:
                    self._recovery.request(wait=True)
                except Exception:               # noqa: BLE001 - never stop retrying
                    log.exception("retrying unfinished decisions")

    def start(self) -> None:
        """Finish what the log says is unfinished, then keep retrying in the background."""
        self.request_recovery()
        threading.Thread(target=self.run_retries, name="retries", daemon=True).start()

    def stop(self) -> None:
        """Stop retrying, once the decisions riding or held (B5, B6) have been sent: a
        clean stop leaves no branch waiting for a decision that was ready to go."""
        self._stop.set()
        self.send_what_waits(STOP_WAIT)


# ---- the driver -----------------------------------------------------------------------------

class TwoPhaseCommit(Recovery, Remembered, Rounds, TxnViews):
    """Drives 2PC for transfers and remembers them, with their traces, for the API.

    links: branch name -> a coordinator_service.BranchLink (call, and send, whose reply a
    selector can wait on), or a batching.BatchingLink around one (send_or_post too);
    log: the RecoveryLog; faults: the coordinator's FaultPoints; pool: the Workers
    (bank/handoff.py) that send a recovery pass's decisions, all at once.
    """

    def __init__(self, name: str, links: dict, recovery_log, faults, pool, requests=None,
                 presumption: str = Presumption.ABORT.value):
        self.name, self.links, self.log, self.faults = name, links, recovery_log, faults
        self.presumption = Presumption(presumption)
        check_presumption(recovery_log, self.presumption)           # D6
        check_branches_known(recovery_log, links)                    # D6
        self.url = ""                              # ours, sent with every prepare
        self._remember_nothing_yet(requests)       # txns, open ones, request ids, txids
        self._lock = threading.Lock()
        self._pool = pool
        self._stop = threading.Event()
        self._recovery = OnceAtATime(self._recovery_pass, "recovery")
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

    def _run_two_phase_commit(self, txn: Txn) -> None:
        """The whole protocol for one transaction; sets txn.result for the client."""
        # ---- Phase 1: voting (C1, C2) ----
        try:
            prepares = self._step(txn, txn.core.begin)
        except LogWriteError:          # storage faults: refused before any prepare was sent
            self._forget(txn)
            raise
        votes_in = Latch()
        self._round(txn, prepares, self._voted, votes_in.set)
        votes_in.wait()                                  # every vote, or its absence
        self.faults.crash_if_armed("crash-after-prepare")
        # ---- The decision, durable before visible (C3, C4; D1) ----
        txn.phase2_lock.acquire()     # the first round of phase 2 is ours: a retry that
        try:                          # saw the decision first would answer the client early
            after = self._step(txn, txn.core.decide)
        except BaseException:
            txn.phase2_lock.release()
            raise
        log.debug("%s: decided %s %s", txn.txid, txn.published.value, txn.core.reason)
        if txn.published is TxState.COMMITTED:
            self.faults.crash_if_armed("crash-after-decision")
        # ---- Phase 2: the decision (C5, C6), then the client's answer (D3) ----
        self._send_decision(txn, [e for e in after if isinstance(e, Send)])
        outcome = next(e.message for e in after if isinstance(e, Reply))
        txn.result = {"txid": txn.txid, "outcome": outcome.outcome,
                      "reason": outcome.reason, "waiting_for": txn.core.waiting_for()}
        txn.done.set()

    def _step(self, txn: Txn, event, *args) -> list:
        """Feed one event to the core and write the records it asks for (D1).

        The records are written while the transaction's lock is held, so no query or
        retry sees the new state before it is durable; the sends and replies, which
        every row lists after its records, are returned for the caller to carry out.
        """
        with txn.lock:
            effects = event(*args)
            try:
                for effect in effects:
                    if isinstance(effect, Record):
                        self._write_record(txn, effect)
            except LogWriteError as exc:
                if effect.kind != "commit":
                    raise
                effects = txn.core.on_commit_not_logged(exc.message)    # C3: no record, no
                for effect in effects:                                   # commit: abort
                    if isinstance(effect, Record):
                        self._write_record(txn, effect)
            txn.settle()                  # durable: now the new state may be seen (D1)
            if txn.core.state in (CoordState.COMMITTED, CoordState.ABORTED) and not txn.ended:
                self._ended(txn)          # C12: presumed commit finishes without an end
            return [e for e in effects if not isinstance(e, Record)]

    def _write_record(self, txn: Txn, record: Record) -> None:
        """One Record effect into the recovery log; forced ones are fsynced (C3)."""
        info, forced = txn.info, " (forced to disk)" if record.forced else ""
        if record.kind == "begin":
            self._forced_or_stop(txn, record, lambda: self.log.begin(txn.txid, info,
                                                                      forced=record.forced))
            txn.note(COORDINATOR, LOG, "begin", f"{info.get('src', '')} -> "
                     f"{info.get('dst', '')} {info.get('amount', '')}{forced}")
        elif record.kind == "commit":
            assert record.forced, "C3: the commit record is always forced"
            self._force_commit(txn, record)                # fsync: THE commit point
            txn.note(COORDINATOR, LOG, "decision", "commit (forced to disk)")
        elif record.kind == "abort":
            self._forced_or_stop(txn, record, lambda: self.log.abort(txn.txid,
                                                                      forced=record.forced))
            txn.note(COORDINATOR, LOG, "decision",
                     f"abort: {record.reason}".rstrip(": ") + forced)
        else:
            assert record.kind == "end", record
            try:
                self.log.end(txn.txid, txn.core.decision.value, record.reason, txn.damaged)
            finally:                # the log holds it as finished, even if its compaction
                self._ended(txn)    # failed afterwards (a full disk): nothing left to do
            txn.note(COORDINATOR, LOG, "end", "every participant acknowledged")
        txn.counts.wrote(COORDINATOR, record.forced)                # N1

    def _force_commit(self, txn: Txn, record: Record) -> None:
        """Log the commit decision durably (fsync: THE commit point; a failed fsync
        stops the process, _forced_or_stop).

        LogWriteError (a full disk: the record certainly is not in the log) goes up to
        _step, which asks the core to abort instead. But if the half-written line could
        not be cut off again (the log broke), a restart may read it as this commit
        (recovery log Rule 6): no abort may be told, so stop, as for a failed fsync."""
        broken_before = self.log.broken
        try:
            self._forced_or_stop(txn, record, lambda: self.log.commit(txn.txid))
        except LogWriteError:
            if self.log.broken and not broken_before:    # this commit's half line stays
                self._stop_for_the_log(txn, "commit")
            raise

    def _forced_or_stop(self, txn: Txn, record: Record, write) -> None:
        """write() a record; if a forced one's fsync fails, stop (Rule 7 of the log)."""
        try:
            write()
        except OSError:                     # (a LogWriteError is no OSError: it goes up)
            if not record.forced:
                raise
            self._stop_for_the_log(txn, record.kind)

    def _stop_for_the_log(self, txn: Txn, kind: str) -> None:
        """A forced record may or may not be on disk: only recovery can tell what the log
        holds, so nobody may be told anything first. Stop the process (C8)."""
        log.critical("cannot force the %s of %s to the log: stopping; recovery will finish "
                     "it from what the log holds", kind, txn.txid, exc_info=True)
        self.faults.crash_now("the recovery log could not be written")

    def _voted(self, txn: Txn, send: Send, asked: dict, answer, exc) -> None:
        """One participant's vote (D2). Anything but a clear yes or no (an error, a
        timeout, an answer we do not understand) is a Silence, which the core counts
        as a missing vote: abort (C4), but never recorded as a "no" (D5)."""
        branch = send.to
        try:
            if exc is None:
                vote, reason = Vote(answer["vote"]), answer.get("reason", "")
        except Exception as strange:            # noqa: BLE001 - a strange answer
            exc = strange
        if exc is None:
            txn.counts.sent(COORDINATOR)                            # N1: prepare
            txn.counts.sent(branch)                                 # N2: its vote
            words = vote.value + (f": {reason}" if reason else "")
            txn.note(branch, COORDINATOR, "vote", words, kind=vote.value)
            txn.voted_at[branch] = time.time()
        else:
            vote, words, sent = _silence(exc, self._timeout(branch))
            if sent:
                txn.counts.sent(COORDINATOR)                        # N1: it left
            reason = self._note_silence(txn, asked, branch, vote, words, sent, "vote",
                                        getattr(exc, "code", None))
        with txn.lock:
            txn.vote_words[branch] = words
        self._step(txn, txn.core.on_vote, branch, vote, reason)

    def _note_silence(self, txn: Txn, asked: dict, branch: str, silence: Silence,
                      words: str, sent: bool, what: str, code=None) -> str:
        """Trace a missing answer (D5): a message never sent is marked so at the sender;
        one sent and unanswered gets an "error" row from the branch with its kind, and
        the fault code when one came back (409: the branch refuses the step for good).
        Returns the reason for the core (what is known beyond the kind)."""
        if not sent:
            txn.never_sent(asked, words, kind_of(silence))
            return "never sent"
        txn.note(branch, COORDINATOR, "error", f"{what} not received: {words}",
                 kind=kind_of(silence), **({"code": int(code)} if code else {}))
        if silence is Silence.TIMEOUT:
            return "waited " + words.removeprefix(silence.value).strip(" ()")
        return words

    def _send_decision(self, txn: Txn, sends: list) -> None:
        """Carry out the first round of the decision's sends (C5; retries: C6, below),
        holding the phase-2 lock taken before the decision. Those that ride a busy line
        (B5) are not awaited; the lock is let go when the last answer is taken in."""
        try:
            if sends and txn.published is TxState.COMMITTED and \
                    self.faults.fires("crash-mid-commit"):
                self._tell(txn, sends[0])                # one participant told...
                self.faults.crash_now("crash-mid-commit")  # ...and the others never
        except BaseException:
            txn.phase2_lock.release()
            raise
        self._round(txn, sends, self._told, txn.phase2_lock.release)

    def _tell(self, txn: Txn, send: Send) -> None:
        """Send one decision now and take in its acknowledgement (C5, C6)."""
        self._call(txn, send, self._note_sent(txn, send), self._told)

    def _told(self, txn: Txn, send: Send, told: dict, answer, exc) -> None:
        """Feed a decision's acknowledgement, or its absence (D5), into the core."""
        branch, method = send.to, method_of(send)
        if exc is not None:                     # no ack; retried later (C6)
            silence, words, sent = _silence(exc, self._timeout(branch))
            if branch not in txn.unacknowledged_said:          # said once, not every retry
                txn.unacknowledged_said.add(branch)
                log.info("%s: the %s to %s was not acknowledged (%s); it is sent again "
                         "every %g s until it is (C6)", txn.txid, method, branch, words,
                         RETRY_EVERY)
            if sent:
                txn.counts.sent(COORDINATOR)                        # N1: it left
            self._note_silence(txn, told, branch, silence, words, sent, "ack",
                               getattr(exc, "code", None))
            return
        txn.counts.sent(COORDINATOR)                                # N1: commit or abort
        txn.counts.sent(branch)                                     # N2: its answer
        damage = answer.get("damage", "") if isinstance(answer, dict) else ""
        if damage and branch not in txn.damaged:
            txn.damaged.append(branch)
        txn.note(branch, COORDINATOR, "ack", method + _ack_words(answer, branch, damage),
                 kind="ack")
        self._step(txn, txn.core.on_ack, branch)

    # ---- what the API shows ---------------------------------------------------------

    def decision(self, txid: str, asker: str = "") -> str:
        """committed, aborted, pending while the votes are still being collected, or
        in-doubt for one a damaged log may hide (C9) or begun before this log (C14).

        Only a decision that is durable is ever answered (C7); a txid the log holds no
        record of is what the presumption says (C8: aborted; C12: committed; C10: in
        presumed nothing every undecided one is remembered).
        """
        with self._lock:
            txn = self.txns.get(txid)
        if txn is None:                                                  # storage faults:
            if self.log.in_doubt_about(txid):     # a damaged log may hide it: never presume
                return IN_DOUBT
            return self.log.outcome(txid) or CoordinatorTxn.answer_unknown(   # C8, C12, C14
                txid, self.presumption, self.log.created)
        answer = self._step(txn, txn.core.on_query)[0].message.outcome   # C7, C9
        txn.note(asker or "?", COORDINATOR, "query", f"decision? -> {answer}")
        txn.counts.sent(asker or "?")                               # N2: the query
        txn.counts.sent(COORDINATOR)                                # N1: the answer
        return answer


def check_presumption(recovery_log, presumption: Presumption) -> None:
    """D6: refuse a log whose transactions were run under another presumption (a begin
    without one is from before the switch: presumed abort)."""
    infos = [e["info"] for e in recovery_log.in_flight.values()]
    infos += list(recovery_log.finished.values())
    found = {i.get("presumption", Presumption.ABORT.value) for i in infos if i}
    other = sorted(found - {presumption.value})
    if other:
        raise BankError(FaultCode.BAD_INPUT, (
            f"The recovery log {recovery_log.path} holds transactions run under presumed "
            f"{other[0]}, so this coordinator cannot run presumed {presumption.value} on it "
            "(a transaction it no longer remembers would be presumed the other way): start "
            f"with --presumption {other[0]}. Start presumed {presumption.value} on a new "
            "--log only once no branch holds a transaction of this one in doubt (the "
            "shell's check: in-doubt transactions ok): the new log would not know them "
            "either, and answers \"in-doubt\" for them (C14), so they stay blocked until "
            "their branches settle them among themselves or an operator does."))


def _recovery_words(recovery_log) -> list:
    """What recovery will do with each unfinished transaction, as the log holds it, for
    the coordinator's log: "TXID (commit: telling Delhi, Mumbai)"."""
    words = []
    for txid, entry in recovery_log.in_flight.items():
        if txid in recovery_log.in_doubt:
            words.append(f"{txid} (kept in doubt: the log is damaged)")
            continue
        decision = entry["decision"] or "no decision logged: abort"
        branches = ", ".join(entry["info"].get("branches", [])) or "its branches when they ask"
        words.append(f"{txid} ({decision}: telling {branches})")
    return words


def check_branches_known(recovery_log, links: dict) -> None:
    """D6: refuse a log whose unfinished transactions name a branch this coordinator was
    not given (--branch): recovery could send them no decision, and they would block."""
    missing = {}
    for txid, entry in recovery_log.in_flight.items():
        for branch in entry["info"].get("branches", []):
            if branch not in links:
                missing.setdefault(branch, []).append(txid)
    if missing:
        branch, txids = sorted(missing.items())[0]
        raise BankError(FaultCode.BAD_INPUT, (
            f"The recovery log {recovery_log.path} has {len(txids)} unfinished "
            f"transfer(s) with branch {branch} ({', '.join(sorted(txids)[:3])}"
            f"{', ...' if len(txids) > 3 else ''}), but {branch} is not among this "
            f"coordinator's branches ({', '.join(sorted(links)) or 'none'}): start it with "
            f"--branch {branch}=URL too, so that recovery can finish them."))


def _ack_words(answer, branch: str, damage: str) -> str:
    """What an acknowledgement says beyond its method, for the trace: a repeat (P3: it
    was applied before, nothing was done twice) or heuristic damage (P11)."""
    if damage:
        return (f"; but {branch} had decided {answer.get('heuristic')} heuristically "
                "(heuristic damage)")
    if isinstance(answer, dict) and answer.get("again"):
        return " again: already done there, nothing done twice (P3)"
    return ""


def _silence(exc: Exception, seconds=None) -> tuple:
    """(Silence, words, sent) for an answer that did not arrive: say what is known, no
    more (D5). "sent" is False when the call was refused before it left this process
    (a lab partition) or the connection was refused (nothing listens there)."""
    if not isinstance(exc, BankError):
        return Silence.ERROR, f"a strange answer ({exc!r})", True
    if exc.why == CUT_OFF:
        return Silence.CUT_OFF, Silence.CUT_OFF.value, False
    if exc.why == TIMED_OUT:
        waited = f" ({seconds:g} s)" if seconds else ""
        return Silence.TIMEOUT, Silence.TIMEOUT.value + waited, True
    if exc.code == FaultCode.UNAVAILABLE and exc.not_sent:
        return Silence.UNREACHABLE, f"{Silence.UNREACHABLE.value} (connection refused)", False
    return Silence.ERROR, exc.message, True


class OnceAtATime:
    """Runs one job on its own thread, one run at a time (D4).

    request() asks for a run that starts after the request; requests that arrive while
    a run is under way are all served by the next one (a burst coalesces). With
    wait=True it blocks until that run is over and returns its result (or raises its
    error). The job never runs on a caller's thread, so a caller on a pool thread
    cannot starve the pool the job waits on.
    """

    def __init__(self, job, name: str):
        self._job, self._name = job, name
        self._cond = threading.Condition()
        self._asked = self._done = 0          # request tickets: asked, and served
        self._running = False
        self._result, self._error = None, None

    def request(self, wait: bool = False):
        with self._cond:
            self._asked += 1
            ticket = self._asked
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            if not wait:
                return None
            while self._done < ticket:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._result

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._done == self._asked:
                    self._running = False
                    return
                serving = self._asked            # every request so far is served by this run
            result, error = None, None
            try:
                result = self._job()
            except Exception as exc:             # noqa: BLE001 - reported to the waiters
                log.exception("%s failed", self._name)
                error = exc
            with self._cond:
                self._done, self._result, self._error = serving, result, error
                self._cond.notify_all()
