"""The pure core, tested directly: every row of every table, and illegal steps.

No processes, no files, no sockets: bank/core decides, so its rules can be checked
on their own in well under a second. Each test's docstring is the rule it checks.
"""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank.core import coordinator as C            # noqa: E402
from bank.core import participant as P            # noqa: E402
from bank.core.messages import (Abort, Ack, Apply, Commit, CoordState, DecisionAnswer,  # noqa: E402
                                DecisionQuery, Hold, Outcome, OutcomeAnswer, OutcomeQuery,
                                Prepare, ProtocolViolation,
                                Record, Reply, Send, Silence, TxState, Vote, VoteMsg)

OPS = (("1001", -5000), ("1002", 5000))           # move 50.00 from 1001 to 1002
RICH = {"1001": (10000, 0), "1002": (0, 0)}
POOR = {"1001": (1000, 0), "1002": (0, 0)}


PEERS = (("Mumbai", "http://mumbai"), ("Delhi", "http://delhi"), ("Pune", "http://pune"))


def participant(state=TxState.UNKNOWN, ops=OPS, heuristic=""):
    return P.ParticipantTxn("Mumbai", "T1", state, "http://coord", ops, peers=PEERS,
                            heuristic=heuristic)


# ---- the participant ------------------------------------------------------------------

@pytest.mark.parametrize("key", list(P.PARTICIPANT), ids=lambda k: f"{k[0].value}|{k[1].value}")
def test_every_participant_row_sets_the_state_it_names(key):
    """Each row of the participant's table is the rule: the core moves to exactly the
    next state the row names, and returns effects for exactly the row's effect kinds."""
    state, event = key
    txn = participant(state)
    effects = txn._step(event)
    assert txn.state is P.PARTICIPANT[key].next
    assert effects or not P.PARTICIPANT[key].effects


def test_p1_yes_vote_only_with_the_money_held_and_recorded_first():
    """P1: a valid prepare holds every debit and records 'prepared' durably before the
    yes vote, in that order."""
    txn = participant()
    effects = txn.on_prepare("http://coord", OPS, RICH)
    assert effects == [Hold("1001", 5000), Record("T1", "prepared", forced=True),
                       Reply(VoteMsg("T1", "Mumbai", Vote.YES))]
    assert txn.state is TxState.PREPARED


def test_p2_insufficient_funds_votes_no_with_the_reason_and_holds_nothing():
    """P2: a prepare that cannot be applied records 'aborted' and votes no with a reason."""
    txn = participant()
    effects = txn.on_prepare("http://coord", OPS, POOR)
    assert not [e for e in effects if isinstance(e, Hold)]
    vote = effects[-1].message
    assert vote.vote is Vote.NO and "insufficient funds in Mumbai/1001" in vote.reason
    assert txn.state is TxState.ABORTED


def test_p2_unknown_account_and_refusal_vote_no():
    """P2: an op on an account that does not exist, or a refusal (the vote-no fault),
    votes no."""
    assert "does not exist" in participant().on_prepare("c", OPS, {"1002": (0, 0)})[-1] \
        .message.reason
    assert participant().on_prepare("c", OPS, RICH, refuse="fault")[-1].message.vote is Vote.NO


@pytest.mark.parametrize("state, vote", [(TxState.PREPARED, Vote.YES),
                                         (TxState.COMMITTED, Vote.YES),
                                         (TxState.ABORTED, Vote.NO)])
def test_p3_a_repeated_prepare_gets_the_recorded_vote_and_changes_nothing(state, vote):
    """P3: a prepare for a known txid is answered with the recorded vote; no hold, no record."""
    txn = participant(state)
    assert txn.on_prepare("c", OPS, {}) == [Reply(VoteMsg("T1", "Mumbai", vote,
                                                          f"already {state.value}"))]
    assert txn.state is state


@pytest.mark.parametrize("state", [TxState.PREPARED, TxState.COMMITTED, TxState.ABORTED])
def test_p7_a_prepare_reusing_a_known_txid_for_other_ops_is_refused(state):
    """P7 (with P3): a prepare under a txid known here for other ops is refused and
    changes nothing; answering it the recorded vote would say "yes" to a second
    transaction for money it never held. A txid recorded without ops (aborted before
    any prepare, P5) still answers a late prepare with its "no"."""
    txn = participant(state)
    with pytest.raises(ProtocolViolation, match="P7"):
        txn.on_prepare("c", (("1001", -100), ("1002", 100)), RICH)
    assert txn.state is state and txn.ops == OPS
    assert participant(TxState.PREPARED).on_prepare("c", OPS[::-1], {})[-1].message.vote \
        is Vote.YES                                          # same ops, another order
    late = participant(TxState.ABORTED, ops=())
    assert late.on_prepare("c", OPS, RICH)[-1].message.vote is Vote.NO


def test_p4_commit_releases_holds_applies_ops_records_then_acks():
    """P4: commit releases the holds, applies every op, records 'committed', then acks."""
    effects = participant(TxState.PREPARED).on_commit()
    assert effects == [Hold("1001", -5000), Apply("1001", -5000, "T1"), Apply("1002", 5000, "T1"),
                       Record("T1", "committed", forced=True),
                       Reply(Ack("T1", "Mumbai", TxState.COMMITTED))]


def test_p3_a_repeated_decision_is_acknowledged_again_and_does_nothing():
    """P3: a commit of a committed txid, or an abort of an aborted one, has no effect
    but its acknowledgement, which says it is a repeat (so a trace can say nothing was
    done twice)."""
    assert participant(TxState.COMMITTED).on_commit() == [
        Reply(Ack("T1", "Mumbai", TxState.COMMITTED, again=True))]
    assert participant(TxState.ABORTED).on_abort() == [
        Reply(Ack("T1", "Mumbai", TxState.ABORTED, again=True))]
    assert not participant(TxState.PREPARED).on_commit()[-1].message.again


def test_p11_the_coordinators_decision_after_a_heuristic_one_is_new_once_then_a_repeat():
    """P11 then P3: the coordinator's decision reaching a txid decided heuristically is
    recorded beside it and acknowledged; the same decision sent again is acknowledged
    again, recording nothing more. The acknowledgement names the operator's decision,
    so the branch's log says the operator applied it, not the coordinator's commit."""
    txn = participant(TxState.PREPARED)
    txn.on_heuristic("committed")
    first = txn.on_commit()
    assert isinstance(first[0], Record) and not first[-1].message.again
    assert first[-1].message.heuristic == "committed"
    assert participant(TxState.PREPARED).on_commit()[-1].message.heuristic == ""
    assert txn.on_commit() == [Reply(Ack("T1", "Mumbai", TxState.COMMITTED, again=True,
                                         heuristic="committed"))]


def test_p5_abort_releases_holds_and_an_unknown_txid_is_remembered_aborted():
    """P5: abort releases holds; an abort for an unknown txid is recorded, so a late
    prepare votes no (P3)."""
    assert participant(TxState.PREPARED).on_abort()[0] == Hold("1001", -5000)
    txn = participant()
    assert isinstance(txn.on_abort("c")[0], Record)
    assert txn.on_prepare("c", OPS, RICH)[-1].message.vote is Vote.NO


def test_p6_a_prepared_participant_never_decides_alone():
    """P6: on a timeout or a restart a prepared participant keeps its holds and asks the
    coordinator; a 'pending' answer changes nothing."""
    txn = participant(TxState.PREPARED)
    assert txn.on_timeout() == [Send("http://coord", DecisionQuery("T1", "Mumbai"))]
    assert txn.on_restart() == [Send("http://coord", DecisionQuery("T1", "Mumbai"))]
    assert txn.on_decision("pending") == [] and txn.state is TxState.PREPARED
    assert txn.on_decision("committed")[-1].message.state is TxState.COMMITTED


@pytest.mark.parametrize("state, step", [(TxState.UNKNOWN, "on_commit"),
                                         (TxState.ABORTED, "on_commit"),
                                         (TxState.COMMITTED, "on_abort"),
                                         (TxState.UNKNOWN, "on_timeout"),
                                         (TxState.COMMITTED, "on_restart")])
def test_p7_illegal_steps_are_refused_and_change_nothing(state, step):
    """P7: commit of an unknown or aborted txid, abort of a committed one, and a timeout of
    a txid not in doubt are protocol violations naming the role, state and event."""
    txn = participant(state)
    with pytest.raises(ProtocolViolation) as refused:
        getattr(txn, step)()
    assert txn.state is state
    assert "participant Mumbai" in str(refused.value) and state.value in str(refused.value)


def test_p8_a_peer_gets_what_we_know_and_an_unvoted_txid_is_aborted_first():
    """P8: committed and aborted are answered as they are, prepared answers in-doubt and
    changes nothing; a txid never voted on is recorded aborted (durably) BEFORE the
    answer, and a prepare arriving later votes no (so the answer stays true)."""
    for state, known in ((TxState.COMMITTED, "committed"), (TxState.ABORTED, "aborted"),
                         (TxState.PREPARED, "in-doubt")):
        txn = participant(state)
        assert txn.on_peer_query("Delhi") == [Reply(OutcomeAnswer("T1", "Mumbai", known))]
        assert txn.state is state
    txn = P.ParticipantTxn("Mumbai", "T1")
    effects = txn.on_peer_query("Delhi")
    assert isinstance(effects[0], Record) and effects[0].kind == "aborted" and effects[0].forced
    assert effects[1] == Reply(OutcomeAnswer("T1", "Mumbai", "aborted"))
    assert txn.on_prepare("c", OPS, RICH)[-1].message.vote is Vote.NO


def test_p9_cut_off_from_the_coordinator_ask_the_peers_and_apply_what_one_knows():
    """P9: an in-doubt participant that cannot reach its coordinator asks every other
    participant named in the prepare (never itself); a committed or aborted answer goes
    through P4 or P5; in-doubt answers change nothing: it keeps its holds (P6)."""
    txn = participant(TxState.PREPARED)
    assert txn.on_coordinator_unreachable() == [Send("Delhi", OutcomeQuery("T1", "Mumbai")),
                                                Send("Pune", OutcomeQuery("T1", "Mumbai"))]
    assert txn.on_peer_answer("in-doubt") == [] and txn.state is TxState.PREPARED
    assert txn.on_peer_answer("") == [] and txn.state is TxState.PREPARED
    effects = txn.on_peer_answer("committed")
    assert Apply("1001", -5000, "T1") in effects and txn.state is TxState.COMMITTED
    aborted = participant(TxState.PREPARED)
    assert aborted.on_peer_answer("aborted")[0] == Hold("1001", -5000)
    assert aborted.state is TxState.ABORTED
    with pytest.raises(ProtocolViolation):
        participant(TxState.COMMITTED).on_coordinator_unreachable()


def test_p9_a_coordinator_in_doubt_itself_sends_a_waiting_participant_to_its_peers():
    """P9 (C9, C14): a coordinator that answers "in-doubt" does not know the outcome
    either: a prepared participant, or a heuristic one not yet told (P11), asks every
    other participant, as if the coordinator could not be reached; one that knows its
    outcome asks nobody and changes nothing."""
    asks = [Send("Delhi", OutcomeQuery("T1", "Mumbai")),
            Send("Pune", OutcomeQuery("T1", "Mumbai"))]
    txn = participant(TxState.PREPARED)
    assert txn.on_decision("in-doubt") == asks and txn.state is TxState.PREPARED
    assert participant(TxState.ABORTED, heuristic="aborted").on_decision("in-doubt") == asks
    done = participant(TxState.COMMITTED)
    assert done.on_decision("in-doubt") == [] and done.state is TxState.COMMITTED


def test_p9_prepare_keeps_the_other_participants():
    """P9: the prepare's participants are kept with the txid, without the branch itself."""
    txn = P.ParticipantTxn("Mumbai", "T1")
    txn.on_prepare("c", OPS, RICH, peers=PEERS)
    assert txn.peers == (("Delhi", "http://delhi"), ("Pune", "http://pune"))


@pytest.mark.parametrize("outcome, state", [("committed", TxState.COMMITTED),
                                            ("aborted", TxState.ABORTED)])
def test_p10_a_heuristic_decision_applies_and_is_recorded_as_heuristic(outcome, state):
    """P10: the operator forces an in-doubt txn: released (and applied for commit),
    recorded durably as heuristic; only a prepared txn may be decided so (P7)."""
    txn = participant(TxState.PREPARED)
    effects = txn.on_heuristic(outcome)
    record = next(e for e in effects if isinstance(e, Record))
    assert record.forced and record.heuristic == outcome and record.kind == outcome
    assert txn.state is state and txn.heuristic == outcome
    assert (Apply("1001", -5000, "T1") in effects) is (state is TxState.COMMITTED)
    for other in (TxState.UNKNOWN, TxState.COMMITTED, TxState.ABORTED):
        with pytest.raises(ProtocolViolation):
            participant(other).on_heuristic(outcome)
    with pytest.raises(ProtocolViolation):
        participant(TxState.PREPARED).on_heuristic("maybe")


def test_p11_the_coordinators_decision_after_a_heuristic_one_is_recorded_and_acked():
    """P11: after a heuristic abort, the coordinator's commit is not refused: it is
    recorded durably next to the heuristic one (the damage), nothing is applied, and it
    is acknowledged; an agreeing decision is recorded too; without a heuristic decision
    a commit of an aborted txn is still P7."""
    txn = participant(TxState.ABORTED, heuristic="aborted")
    effects = txn.on_commit()
    assert [type(e) for e in effects] == [Record, Reply]
    assert effects[0].told == "committed" and effects[0].heuristic == "aborted"
    assert effects[0].forced and txn.state is TxState.ABORTED and txn.told == "committed"
    txn = participant(TxState.COMMITTED, heuristic="committed")
    assert txn.on_abort()[0].told == "aborted" and txn.state is TxState.COMMITTED
    agreeing = participant(TxState.ABORTED, heuristic="aborted")
    effects = agreeing.on_abort()
    assert effects[0].told == "aborted" and not [e for e in effects if isinstance(e, Apply)]
    with pytest.raises(ProtocolViolation):                   # no heuristic: still P7
        participant(TxState.ABORTED).on_commit()


@pytest.mark.parametrize("state", [TxState.COMMITTED, TxState.ABORTED])
def test_p11_a_heuristic_txn_asks_the_coordinator_until_it_is_told(state):
    """P11: a txn decided heuristically and not yet told the coordinator's decision
    times out like a prepared one (P6): it asks the coordinator, changing nothing (a
    coordinator under presumed commit never tells it again, C12). Once told, or
    without a heuristic decision, a decided txn has nothing to ask (P7)."""
    txn = participant(state, heuristic=state.value)
    assert txn.on_timeout() == [Send("http://coord", DecisionQuery("T1", "Mumbai"))]
    assert txn.state is state
    txn.on_decision("committed")
    with pytest.raises(ProtocolViolation):
        txn.on_timeout()
    with pytest.raises(ProtocolViolation):
        participant(state).on_timeout()


def test_p11_a_heuristic_txn_asks_its_peers_where_p9_would_and_records_their_answer():
    """P11 with P9: a heuristic txn not yet told, whose coordinator is silent or in doubt
    itself (a log that is gone, C14), asks the other participants as a prepared one
    does; a peer's committed is recorded beside the heuristic abort (the damage),
    nothing is applied. (It asked the coordinator only: in doubt for good, so the
    damage was never recorded.) Once told, it has nobody to ask (P7)."""
    txn = participant(TxState.ABORTED, heuristic="aborted")
    assert txn.on_coordinator_unreachable() == [
        Send("Delhi", OutcomeQuery("T1", "Mumbai")), Send("Pune", OutcomeQuery("T1", "Mumbai"))]
    assert txn.on_peer_answer("in-doubt") == []
    effects = txn.on_peer_answer("committed")
    assert [type(e) for e in effects] == [Record, Reply]
    assert effects[0].told == "committed" and effects[0].heuristic == "aborted"
    assert txn.state is TxState.ABORTED
    with pytest.raises(ProtocolViolation):
        txn.on_coordinator_unreachable()


def test_p8_a_heuristic_decision_is_not_told_to_peers_as_knowledge():
    """P8 with P10: a heuristically decided txn answers a peer "in-doubt" until the
    coordinator's decision is known; then it answers the coordinator's decision."""
    txn = participant(TxState.ABORTED, heuristic="aborted")
    assert txn.on_peer_query("Delhi")[0].message.outcome == "in-doubt"
    txn.on_commit()
    assert txn.on_peer_query("Delhi")[0].message.outcome == "committed"


# ---- the coordinator ------------------------------------------------------------------

PLAN = {"Mumbai": (("1001", -5000),), "Delhi": (("1002", 5000),)}


def coordinator_at(state):
    txn = C.CoordinatorTxn("T1", PLAN, "http://coord")
    txn.state = state
    return txn


@pytest.mark.parametrize("key", list(C.COORDINATOR), ids=lambda k: f"{k[0].value}|{k[1].value}")
def test_every_coordinator_row_sets_the_state_it_names(key):
    """Each row of the coordinator's table moves to exactly the state it names."""
    state, event = key
    txn = coordinator_at(state)
    txn._step(event)
    assert txn.state is C.COORDINATOR[key].next


def test_c1_begin_logs_unforced_then_sends_prepare_to_all():
    """C1: begin is logged (not forced) before prepare goes to every participant."""
    effects = C.CoordinatorTxn("T1", PLAN, "http://coord").begin()
    assert effects[0] == Record("T1", "begin", forced=False)
    assert {e.to for e in effects[1:]} == {"Mumbai", "Delhi"}
    assert all(isinstance(e.message, Prepare) for e in effects[1:])


def test_c3_commit_is_forced_before_any_commit_is_sent_or_the_client_told():
    """C3: with every vote yes, the forced commit record comes first, then the commits,
    then the client's answer."""
    txn = coordinator_at(CoordState.PREPARING)
    for branch in PLAN:
        assert txn.on_vote(branch, Vote.YES) == []          # C2: votes never decide alone
    effects = txn.decide()
    assert effects[0] == Record("T1", "commit", forced=True)
    assert [type(e.message) for e in effects[1:3]] == [Commit, Commit]
    assert effects[3] == Reply(Outcome("T1", "committed", ""))


@pytest.mark.parametrize("silence", list(Silence))
def test_c4_a_missing_vote_aborts_but_is_never_recorded_as_a_no(silence):
    """C4: a vote that did not arrive (timeout, unreachable, cut off, error) means abort;
    the vote is kept as what it was, never as a no."""
    txn = coordinator_at(CoordState.PREPARING)
    txn.on_vote("Mumbai", Vote.YES)
    txn.on_vote("Delhi", silence, "slow")
    effects = txn.decide()
    assert effects[0] == Record("T1", "abort", forced=False, reason=txn.reason)
    assert txn.votes["Delhi"] is silence and silence.value in txn.reason
    assert effects[-1].message.outcome == "aborted"


def test_c4_no_vote_at_all_aborts():
    """C4: phase 1 over with a participant that never answered is an abort."""
    txn = coordinator_at(CoordState.PREPARING)
    txn.on_vote("Mumbai", Vote.YES)
    txn.decide()
    assert txn.state is CoordState.ABORTING and "Delhi" in txn.reason


def test_c5_end_is_logged_after_the_last_ack_only():
    """C5: end is logged once every participant acknowledged, not before; repeats are
    harmless."""
    txn = coordinator_at(CoordState.COMMITTING)
    assert txn.on_ack("Mumbai") == []
    assert txn.on_ack("Delhi") == [Record("T1", "end", forced=False)]
    assert txn.on_ack("Delhi") == [] and txn.state is CoordState.COMMITTED


def test_c6_retries_go_only_to_those_that_have_not_acknowledged():
    """C6: a retry tells the decision again to exactly the participants still waiting."""
    txn = coordinator_at(CoordState.ABORTING)
    txn.on_ack("Mumbai")
    assert txn.on_retry() == [Send("Delhi", Abort("T1"))]


@pytest.mark.parametrize("state, answer", [(CoordState.PREPARING, "pending"),
                                           (CoordState.COMMITTING, "committed"),
                                           (CoordState.ABORTED, "aborted"),
                                           (CoordState.IN_DOUBT, "in-doubt")])
def test_c7_c9_queries_get_only_a_durable_decision(state, answer):
    """C7/C9: a query gets 'pending' until the decision is made, and 'in-doubt' while the
    records are damaged: never a guess."""
    assert coordinator_at(state).on_query() == [Reply(DecisionAnswer("T1", answer))]


@pytest.mark.parametrize("decision, state, logs_abort", [("commit", CoordState.COMMITTING, False),
                                                         ("abort", CoordState.ABORTING, False),
                                                         ("", CoordState.ABORTING, True)])
def test_c8_recovery_presumes_abort_without_a_commit_record(decision, state, logs_abort):
    """C8: after a restart a logged commit is re-sent; anything without one is aborted,
    and a txid with no record at all was aborted."""
    txn = C.CoordinatorTxn("T1", PLAN)
    effects = txn.on_restart(decision)
    assert txn.state is state and bool(effects) is logs_abort
    assert txn.on_retry()[0].message == (Commit("T1") if decision == "commit" else Abort("T1"))
    assert C.presumed_outcome() == "aborted"


def test_coordinator_illegal_steps_are_refused_and_change_nothing():
    """A step the coordinator's table does not list (deciding twice, a restart of a live
    transaction) is refused and changes nothing."""
    txn = coordinator_at(CoordState.COMMITTING)
    for step in (txn.decide, lambda: txn.on_restart("abort"), txn.begin):
        with pytest.raises(ProtocolViolation):
            step()
        assert txn.state is CoordState.COMMITTING


# ---- the presumptions (C10-C13): one table each ---------------------------------------------

ALL_ROWS = [(pr, key) for pr, table in C.TABLES.items() for key in table]


@pytest.mark.parametrize("presumption, key", ALL_ROWS,
                         ids=lambda v: v.value if isinstance(v, C.Presumption)
                         else f"{v[0].value}|{v[1].value}")
def test_every_row_of_every_presumption_sets_the_state_it_names(presumption, key):
    """Each row of each presumption's table moves to exactly the state it names."""
    txn = C.CoordinatorTxn("T1", PLAN, "http://coord", presumption)
    txn.state = key[0]
    txn._step(key[1])
    assert txn.state is C.TABLES[presumption][key].next


def test_presumed_abort_is_the_default_and_its_table_is_the_one_of_c1_c9():
    """Presumed abort stays the default: a core built without a presumption uses the
    table COORDINATOR, and no row of it names C10-C13."""
    assert C.CoordinatorTxn("T1", PLAN).table is C.COORDINATOR
    assert C.TABLES[C.Presumption.ABORT] is C.COORDINATOR
    assert {s.rule for s in C.COORDINATOR.values()} <= {f"C{i}" for i in range(1, 10)}


def run_to_decision(presumption, votes):
    """Begin, feed the votes, decide: (effects of begin, effects of the decision, txn)."""
    txn = C.CoordinatorTxn("T1", PLAN, "http://coord", presumption)
    begun = txn.begin()
    for branch, vote in votes.items():
        txn.on_vote(branch, vote)
    return begun, txn.decide(), txn


YES = {"Mumbai": Vote.YES, "Delhi": Vote.YES}
ONE_NO = {"Mumbai": Vote.NO, "Delhi": Vote.YES}


def test_c10_presumed_nothing_forces_every_abort_and_awaits_its_acks():
    """C10: presumed nothing forces the abort record like a commit, sends abort to every
    participant, and logs end only after every acknowledgement."""
    _, effects, txn = run_to_decision(C.Presumption.NOTHING, ONE_NO)
    assert effects[0] == Record("T1", "abort", forced=True, reason=txn.reason)
    assert {e.to for e in effects if isinstance(e, Send)} == {"Mumbai", "Delhi"}
    assert txn.on_ack("Mumbai") == [] and txn.state is CoordState.ABORTING
    assert txn.on_ack("Delhi") == [Record("T1", "end", forced=False, reason=txn.reason)]
    restarted = C.CoordinatorTxn("T1", PLAN, presumption=C.Presumption.NOTHING)
    assert restarted.on_restart("") == [Record("T1", "abort", forced=True)]


def test_c11_presumed_commit_forces_begin_before_any_prepare():
    """C11: under presumed commit the begin record is forced, and it comes before every
    prepare."""
    begun, _, _ = run_to_decision(C.Presumption.COMMIT, YES)
    assert begun[0] == Record("T1", "begin", forced=True)
    assert all(isinstance(e, Send) and isinstance(e.message, Prepare) for e in begun[1:])


def test_c12_presumed_commit_is_finished_once_commit_is_forced():
    """C12: commit is forced, sent, and the transaction is finished at once: nobody is
    waited for, an acknowledgement logs nothing, a restart re-sends nothing, and an
    unknown txid was committed."""
    _, effects, txn = run_to_decision(C.Presumption.COMMIT, YES)
    assert effects[0] == Record("T1", "commit", forced=True)
    assert [type(e.message) for e in effects[1:3]] == [Commit, Commit]
    assert txn.state is CoordState.COMMITTED and txn.waiting_for() == []
    assert txn.on_ack("Mumbai") == [] and txn.on_query()[0].message.outcome == "committed"
    restarted = C.CoordinatorTxn("T1", PLAN, presumption=C.Presumption.COMMIT)
    assert restarted.on_restart("commit") == [] and restarted.state is CoordState.COMMITTED
    assert C.presumed_outcome(C.Presumption.COMMIT) == "committed"
    assert C.presumed_outcome(C.Presumption.NOTHING) == "aborted"


@pytest.mark.parametrize("presumption", list(C.Presumption))
def test_c14_a_txid_from_before_the_log_is_never_presumed(presumption):
    """C14: under every presumption, a txid stamped before its log was created is
    answered in-doubt; one stamped since (or of another shape, or on a log that does
    not know its creation) is presumed as before (C8, C12)."""
    created = "20261130T120000"
    assert C.begun_before("C1-20261130T115959-00002a", created)
    assert not C.begun_before("C1-20261130T120000-00002a", created)
    assert not C.begun_before("C1-unknown-txid", created)
    assert not C.begun_before("C1-20261130T115959-00002a", "")
    assert C.presumed_outcome(presumption, before_this_log=True) == "in-doubt"
    assert C.presumed_outcome(presumption) in ("aborted", "committed")
    answer = C.CoordinatorTxn.answer_unknown            # what both drivers ask (twopc, explorer)
    assert answer("C1-20261130T115959-00002a", presumption, created) == "in-doubt"
    assert answer("C1-20261130T120000-00002a", presumption, created) == \
        C.presumed_outcome(presumption)


def test_c13_presumed_commit_forces_abort_and_awaits_every_ack():
    """C13: under presumed commit an abort is forced and acknowledged by everyone before
    end; a restart that finds begin without a decision forces an abort."""
    _, effects, txn = run_to_decision(C.Presumption.COMMIT, ONE_NO)
    assert effects[0] == Record("T1", "abort", forced=True, reason=txn.reason)
    txn.on_ack("Mumbai")
    assert txn.waiting_for() == ["Delhi"]
    assert txn.on_ack("Delhi")[0].kind == "end"
    restarted = C.CoordinatorTxn("T1", PLAN, presumption=C.Presumption.COMMIT)
    assert restarted.on_restart("") == [Record("T1", "abort", forced=True)]
    assert restarted.on_retry() == [Send("Delhi", Abort("T1")), Send("Mumbai", Abort("T1"))]


def test_c3_under_presumed_commit_an_unwritten_commit_means_a_forced_abort():
    """C3 with C13: if the commit record could not be written, the transaction aborts
    (forced) and nothing says commit."""
    _, _, txn = run_to_decision(C.Presumption.COMMIT, YES)
    effects = txn.on_commit_not_logged("disk full")
    assert effects[0] == Record("T1", "abort", forced=True, reason=txn.reason)
    assert all(isinstance(e.message, (Abort, Outcome)) for e in effects[1:])


def test_c3_a_commit_record_that_cannot_be_written_means_abort():
    """C3: if the forced commit record certainly did not reach the log (a full disk),
    nobody has seen a commit: the coordinator aborts and tells the client so."""
    txn = coordinator_at(CoordState.COMMITTING)
    effects = txn.on_commit_not_logged("disk full")
    assert txn.state is CoordState.ABORTING and effects[0].kind == "abort"
    assert effects[-1].message.outcome == "aborted" and "disk full" in txn.reason
