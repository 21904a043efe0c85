"""A branch's 2PC steps in SQLite: the participant core decides, this carries it out.

Role: for prepare, commit, abort, a peer's query (P8) and a heuristic decision
(P10), rebuild the participant core of the txid from
its durable row (bank/core/participant.py), feed it the event, and carry out the
effects it returns (holds, balance changes, the txns row) inside ONE SQLite
transaction. It is mixed into bank.ledger.Ledger and uses its ``_write()``.

Rules:
  * Durable before visible: every effect of a step is written in the same SQLite
    transaction, and the answer is returned only after its COMMIT (P1, P4).
  * The core decides; this file never chooses a next state or a vote itself.
  * A protocol violation (P7) becomes a Fault 409 sentence and changes nothing.

Glossary:
  txns row   a txid's durable participant state: state, coordinator, ops, reason
"""

import json

from bank.clock import now
from bank.core.messages import Ack, Apply, Hold, ProtocolViolation, Record, Reply, Send, TxState
from bank.core.participant import MAX_OPS, ParticipantTxn
from bank.errors import BankError, FaultCode


class ParticipantSteps:
    """Mixed into Ledger: prepare, commit and abort, carried out from the core's effects."""

    # ---- 2PC participant steps: the core decides, the ledger carries out -----------------

    def prepare(self, txid: str, coordinator: str, ops: list, refuse: str = "",
                peers: list = ()) -> tuple:
        """Phase 1 (rules P1-P3): the participant core votes; its effects are made durable.

        ops: [(account number, signed minor units)]. Returns (Vote, reason) once the
        vote's record is on disk. `refuse` is a reason to vote no (the vote-no fault);
        peers: [[name, URL], ...] of the transaction's participants, kept for P9.
        """
        with self._write(("prepare", [txid, coordinator, ops, refuse, list(peers)])) as db:
            txn = self._participant(db, txid)
            effects = self._allowed(txn, "prepare other operations under", lambda: (
                txn.on_prepare(coordinator, ops, self._balances(db, ops), refuse,
                               tuple(tuple(pair) for pair in peers))))
            vote = self._carry_out(db, txn, effects)
            return vote.vote, vote.reason

    def commit(self, txid: str) -> Ack:
        """Phase 2 (rules P4, P3, P7): apply a prepared txn's ops. A repeat changes
        nothing and is acknowledged again (the Ack says so: `again`)."""
        with self._write(("commit", [txid])) as db:
            txn = self._participant(db, txid)
            return self._carry_out(db, txn, self._allowed(txn, "commit", txn.on_commit))

    def abort(self, txid: str, coordinator: str = "") -> Ack:
        """Phase 2 (rules P5, P3, P7): release holds, record 'aborted' (unknown txids
        too). A repeat changes nothing and is acknowledged again."""
        with self._write(("abort", [txid, coordinator])) as db:
            txn = self._participant(db, txid)
            effects = self._allowed(txn, "abort", lambda: txn.on_abort(coordinator))
            return self._carry_out(db, txn, effects)

    def peer_outcome(self, txid: str, asker: str) -> str:
        """P8: what this branch knows of txid, for a peer in doubt: committed, aborted or
        in-doubt. A txid it never voted on is recorded aborted (durably) first."""
        txn = self._participant(self._read(), txid)
        if txn.state is not TxState.UNKNOWN:               # known: a read is enough
            return self._answer_of(txn.on_peer_query(asker)).outcome
        with self._write(("peer_outcome", [txid, asker])) as db:
            txn = self._participant(db, txid)
            return self._carry_out(db, txn, txn.on_peer_query(asker)).outcome

    def heuristic(self, txid: str, outcome: str) -> TxState:
        """P10: the operator forces an in-doubt txid to commit or abort (P7 otherwise)."""
        with self._write(("heuristic", [txid, outcome])) as db:
            txn = self._participant(db, txid)
            effects = self._allowed(txn, "decide heuristically",
                                    lambda: txn.on_heuristic(outcome))
            return self._carry_out(db, txn, effects).state

    def heuristic_damage(self) -> list:
        """Every heuristic decision here (P10) and what the coordinator decided (P11)."""
        rows = self._read().execute("SELECT * FROM txns WHERE heuristic != '' "
                                    "ORDER BY created").fetchall()
        return [self._txn_dict(r) for r in rows]

    @staticmethod
    def _answer_of(effects: list):
        return next(e.message for e in effects if isinstance(e, Reply))

    def waiting(self) -> list:
        """The participant core of every txn waiting for the coordinator's decision,
        oldest first: each prepared one (in doubt here, P6) and each decided
        heuristically and not yet told the coordinator's decision (P11)."""
        db = self._read()
        rows = db.execute("SELECT * FROM txns WHERE state='prepared'").fetchall()
        rows += db.execute("SELECT * FROM txns WHERE heuristic != '' AND told = '' "
                           "AND state != 'prepared'").fetchall()
        return [self._participant_from(r) for r in sorted(rows, key=lambda r: r["created"])]

    def _allowed(self, txn: ParticipantTxn, verb: str, step) -> list:
        """Run a core step; a protocol violation (P7) becomes a refusal for the caller."""
        try:
            return step()
        except ProtocolViolation as exc:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.branch} refuses to {verb} {txn.txid}: it is "
                            f"{txn.state.value} here.") from exc

    def _carry_out(self, db, txn: ParticipantTxn, effects: list):
        """Do what the participant's table decided, in order, inside this one SQLite
        transaction; return the answer. The caller's COMMIT makes it all durable at
        once, and only then does the answer leave the branch (durable before visible)."""
        answer = None
        for effect in effects:
            if isinstance(effect, Hold):
                db.execute("UPDATE accounts SET held = held + ? WHERE number=?",
                           (effect.amount, effect.account))
            elif isinstance(effect, Apply):
                kind = "2pc-debit" if effect.delta < 0 else "2pc-credit"
                self._change_balance(db, effect.account, effect.delta, kind, txid=effect.txid)
            elif isinstance(effect, Record):
                self._save_txn(db, txn, effect)
            elif isinstance(effect, Reply):
                answer = effect.message
            elif isinstance(effect, Send):
                raise AssertionError(f"a ledger step sends nothing: {effect!r}")
            else:
                raise AssertionError(f"a ledger cannot carry out {effect!r}")
        assert answer is not None, "every participant step answers its caller"
        return answer

    def _participant(self, db, txid: str) -> ParticipantTxn:
        """Rebuild the core for txid from its durable row (UNKNOWN if there is none)."""
        row = db.execute("SELECT * FROM txns WHERE txid=?", (txid,)).fetchone()
        return self._participant_from(row) if row else ParticipantTxn(self.branch, txid)

    def _participant_from(self, row) -> ParticipantTxn:
        ops = tuple((op["account"], op["delta"]) for op in json.loads(row["ops"]))
        return ParticipantTxn(self.branch, row["txid"], TxState(row["state"]),
                              row["coordinator"], ops, row["reason"],
                              tuple(tuple(p) for p in json.loads(row["peers"])),
                              row["heuristic"], row["told"])

    @staticmethod
    def _balances(db, ops) -> dict:
        """number -> (balance, held) of the accounts among ops that exist."""
        found = {}
        for number, _ in ops[:MAX_OPS + 1]:
            row = db.execute("SELECT balance, held FROM accounts WHERE number=?",
                             (number,)).fetchone()
            if row is not None:
                found[number] = (row["balance"], row["held"])
        return found

    def _save_txn(self, db, txn: ParticipantTxn, record: Record) -> None:
        """The txns row is the participant's durable state: insert it or move it on."""
        ops_json = json.dumps([{"account": n, "delta": d} for n, d in txn.ops])
        decided = None if record.kind == TxState.PREPARED.value else now()
        db.execute("INSERT INTO txns(txid, coordinator, ops, state, reason, created, decided,"
                   " peers, heuristic, told) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT(txid) DO UPDATE SET state=excluded.state, "
                   "decided=excluded.decided, heuristic=excluded.heuristic, "
                   "told=excluded.told",
                   (txn.txid, txn.coordinator, ops_json, record.kind, record.reason, now(),
                    decided, json.dumps([list(p) for p in txn.peers]), record.heuristic or txn.heuristic,
                    record.told or txn.told))
