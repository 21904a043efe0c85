"""The coordinator and its participants, as real processes: 2PC under crashes.

Rules checked (design sections 4, 5 and 8):
  * atomicity under every named crash point: all participants end committed, or all
    aborted; the client is never told an outcome that did not happen;
  * money is conserved, nothing stays held or in doubt, every journal reconciles;
  * a participant that voted yes never decides on its own (blocking), and learns the
    decision with no manual step once the coordinator is back (presumed abort);
  * request ids make a retried transfer return its first outcome, across a restart;
  * same-branch transfers use no 2PC; a no vote names its reason;
  * the trace shows the protocol's messages in the protocol's order;
  * a lab partition makes transfers to the cut-off branch abort; heal ends it.

Every test gets its own cluster (Mumbai, Delhi, Chennai, preloaded; a coordinator) in
its own tmp_path, stopped by the fixture. Waiting is polling with a deadline.
"""

import decimal
import pathlib
import re
import sys
import threading
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import coordinator_service as coordinator_module   # noqa: E402
from bank import twopc_memory                           # noqa: E402
from bank.local_cluster import COORDINATOR, LocalCluster  # noqa: E402
from bank.errors import BankError, FaultCode      # noqa: E402
from bank.faults import CRASH_EXIT_CODE
from bank.core.messages import BRANCH_POINTS, COORDINATOR_POINTS, SWITCHES  # noqa: E402
from polling import wait_for                  # noqa: E402

pytestmark = pytest.mark.slow

BRANCHES = ("Mumbai", "Delhi", "Chennai")
OPENING = {"1001": decimal.Decimal("10000.00"), "1002": decimal.Decimal("5000.00")}
TOTAL = sum(OPENING.values()) * len(BRANCHES)           # 45000.00 over the whole bank
SRC, DST = "Mumbai/1001", "Delhi/1002"
SRC_BRANCH, DST_BRANCH, BYSTANDER = "Mumbai", "Delhi", "Chennai"
AMOUNT = decimal.Decimal("250.00")
SETTLE_DEADLINE = 20.0          # seconds for a crashed transfer to finish everywhere


# ---- fixtures and helpers --------------------------------------------------------------

@pytest.fixture
def bank(tmp_path):
    """A fresh local cluster: three preloaded branches asking about in-doubt txns every
    0.3 s, and a coordinator; every process is ended (by its pid) at teardown."""
    cluster = LocalCluster(home=tmp_path, branches=BRANCHES,
                           branch_args=("--ask-every", "0.3"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def call(bank, member, method, *args, timeout=10):
    """One RPC to a member (a branch name or COORDINATOR), with a fresh client."""
    return bank.client(member, timeout=timeout).call(method, *args)




def money(text) -> decimal.Decimal:
    return decimal.Decimal(text)


def balance(bank, acct) -> decimal.Decimal:
    branch, number = acct.split("/")
    return money(call(bank, branch, "account", number)["balance"])


def txid_rows(bank, branch, txid) -> list:
    return [r for r in call(bank, branch, "journal", "", 10_000) if r["txid"] == txid]


def assert_bank_is_consistent(bank) -> None:
    """Money is conserved, nothing held or in doubt, no balance negative, and every
    account's journal adds up to its balance."""
    total = decimal.Decimal("0")
    for branch in BRANCHES:
        assert call(bank, branch, "in_doubt") == [], f"{branch} still has txns in doubt"
        for acct in call(bank, branch, "accounts"):
            where = f"{branch}/{acct['number']}"
            assert money(acct["held"]) == 0, f"{where} still holds {acct['held']}"
            assert money(acct["balance"]) >= 0, f"{where} is negative"
            rows = call(bank, branch, "journal", acct["number"], 10_000)
            assert len(rows) < 10_000, "journal longer than one page: cannot reconcile"
            journal_total = sum((money(r["amount"]) for r in rows), decimal.Decimal("0"))
            assert journal_total == money(acct["balance"]), \
                f"{where}: journal adds up to {journal_total}, balance is {acct['balance']}"
            total += money(acct["balance"])
    assert total == TOTAL, f"money not conserved: {total} instead of {TOTAL}"


def settled(bank, txid):
    """The participants' final states if txid is finished everywhere, else None.

    Finished means: no branch has it (or anything) prepared, and the coordinator has
    logged end (every participant acknowledged).
    """
    states = {b: call(bank, b, "status", txid)["state"] for b in BRANCHES}
    if "prepared" in states.values():
        return None
    if any(call(bank, b, "in_doubt") for b in BRANCHES):
        return None
    if call(bank, COORDINATOR, "transaction", txid)["state"] not in ("committed", "aborted"):
        return None
    return states


def assert_outcome_everywhere(bank, txid, outcome: str) -> None:
    """Both participants agree on `outcome`, money moved exactly once or not at all,
    the bystander never heard of txid, and the bank is consistent."""
    states = wait_for(lambda: settled(bank, txid), SETTLE_DEADLINE, f"{txid} to settle")
    coordinator_view = call(bank, COORDINATOR, "transaction", txid)
    assert coordinator_view["outcome"] == outcome
    assert call(bank, COORDINATOR, "decision", txid)["decision"] == outcome
    assert states[BYSTANDER] == "unknown"
    src_rows, dst_rows = txid_rows(bank, SRC_BRANCH, txid), txid_rows(bank, DST_BRANCH, txid)
    if outcome == "committed":
        assert states[SRC_BRANCH] == states[DST_BRANCH] == "committed", states
        assert [(r["account"], money(r["amount"])) for r in src_rows] == [("1001", -AMOUNT)]
        assert [(r["account"], money(r["amount"])) for r in dst_rows] == [("1002", AMOUNT)]
        assert balance(bank, SRC) == OPENING["1001"] - AMOUNT
        assert balance(bank, DST) == OPENING["1002"] + AMOUNT
    else:
        # 'unknown' is acceptable only for an abort: a branch that never saw prepare.
        assert states[SRC_BRANCH] in ("aborted", "unknown"), states
        assert states[DST_BRANCH] in ("aborted", "unknown"), states
        assert src_rows == [] and dst_rows == []
        assert balance(bank, SRC) == OPENING["1001"]
        assert balance(bank, DST) == OPENING["1002"]
    assert_bank_is_consistent(bank)


# ---- the crash matrix ---------------------------------------------------------------------

# What each crash point must lead to (the coordinator's crash points leave the client
# without an answer; the coordinator still answers when a branch crashes).
EXPECTED = {
    "crash-after-prepare": "aborted",     # no commit record: presumed abort
    "crash-after-decision": "committed",  # commit record on disk: recovery re-sends it
    "crash-mid-commit": "committed",
    "vote-no": "aborted",
    "crash-before-vote": "aborted",       # no vote is a no
    "crash-after-vote": "aborted",        # the yes never arrived: the coordinator aborts
    "crash-before-commit": "committed",   # decided: the branch commits after its restart
    "crash-after-commit": "committed",
}
TWO_PC_POINTS = [p for p in BRANCH_POINTS if p not in SWITCHES]   # cut-replication: not 2PC
assert set(EXPECTED) == set(TWO_PC_POINTS) | set(COORDINATOR_POINTS)

CASES = ([pytest.param(COORDINATOR, p, id=p) for p in COORDINATOR_POINTS] +
         [pytest.param(branch, p, id=f"{role}-{p}")
          for p in TWO_PC_POINTS for role, branch in (("source", SRC_BRANCH),
                                                      ("destination", DST_BRANCH))])


@pytest.mark.parametrize("member, point", CASES)
def test_crash_matrix_all_or_nothing(bank, member, point):
    """Atomicity: whichever process crashes at whichever protocol step, once it restarts
    every participant ends in the same state (all committed or all aborted), the client
    was told that outcome if it was told one (never a wrong one), money is conserved,
    nothing is held or in doubt, and every journal reconciles."""
    before = {r["txid"] for r in call(bank, COORDINATOR, "transactions", 50)}
    call(bank, member, "fault", point)
    told = None
    try:
        told = bank.coordinator().call("transfer", SRC, DST, str(AMOUNT))
    except BankError as exc:
        assert member == COORDINATOR, f"the coordinator failed to answer: {exc.message}"
        assert exc.code == FaultCode.UNAVAILABLE, exc
    if member == COORDINATOR:
        assert told is None, f"the coordinator answered {told} despite crashing at {point}"

    in_doubt_at_source = []
    if point.startswith("crash-"):
        assert bank.members[member].wait_exit(10) == CRASH_EXIT_CODE
        if member == COORDINATOR:   # the source voted yes and waits: find the txid there
            in_doubt_at_source = [t["txid"] for t in call(bank, SRC_BRANCH, "in_doubt")]
        bank.restart(member)

    if told is not None:
        txid = told["txid"]
        assert told["outcome"] == EXPECTED[point], told
    else:
        new = wait_for(lambda: [r["txid"] for r in call(bank, COORDINATOR, "transactions", 50)
                                if r["txid"] not in before],
                       10, "the coordinator to list the interrupted transfer")
        assert len(new) == 1, new
        txid = new[0]
        assert in_doubt_at_source == [txid]
    assert_outcome_everywhere(bank, txid, EXPECTED[point])


# ---- blocking and the termination protocol ------------------------------------------------

def test_prepared_branch_blocks_until_coordinator_returns_then_presumed_abort(bank):
    """A participant that voted yes never aborts on its own: while the coordinator is
    down its funds stay held and the txid stays in doubt. When the coordinator comes
    back, the branch learns the decision with no manual step: no commit record, so
    aborted (presumed abort)."""
    call(bank, COORDINATOR, "fault", "crash-after-prepare")
    with pytest.raises(BankError) as info:
        bank.coordinator().call("transfer", SRC, DST, "100.00")
    assert info.value.code == FaultCode.UNAVAILABLE
    assert bank.members[COORDINATOR].wait_exit(10) == CRASH_EXIT_CODE

    in_doubt = call(bank, SRC_BRANCH, "in_doubt")
    assert len(in_doubt) == 1
    txid = in_doubt[0]["txid"]
    assert call(bank, SRC_BRANCH, "account", "1001")["held"] == "100.00"
    assert call(bank, SRC_BRANCH, "account", "1001")["available"] == "9900.00"
    assert [t["txid"] for t in call(bank, DST_BRANCH, "in_doubt")] == [txid]

    # Negative check: for about a second (several --ask-every rounds) nothing changes.
    window_end = time.monotonic() + 1.0
    checks = 0
    while time.monotonic() < window_end or checks < 2:
        assert [t["txid"] for t in call(bank, SRC_BRANCH, "in_doubt")] == [txid]
        assert call(bank, SRC_BRANCH, "status", txid)["state"] == "prepared"
        assert call(bank, SRC_BRANCH, "account", "1001")["held"] == "100.00"
        checks += 1
        time.sleep(0.25)

    bank.restart(COORDINATOR)
    for branch in (SRC_BRANCH, DST_BRANCH):
        wait_for(lambda: call(bank, branch, "in_doubt") == [], 15,
                 f"{branch} to learn the decision by itself")
        assert call(bank, branch, "status", txid)["state"] == "aborted"
    assert call(bank, SRC_BRANCH, "account", "1001")["held"] == "0.00"
    assert balance(bank, SRC) == OPENING["1001"]
    assert balance(bank, DST) == OPENING["1002"]
    assert_bank_is_consistent(bank)


def test_decision_for_unknown_txid_is_aborted(tmp_path):
    """Presumed abort: the coordinator answers 'aborted' for a txid it has no commit
    record of (a branch asking about a txn the coordinator never logged must abort)."""
    coord = coordinator_module.Coordinator(
        "C1", {"Mumbai": "http://127.0.0.1:9", "Delhi": "http://127.0.0.1:9"},
        tmp_path / "recovery.log")
    try:
        answer = coord.decision("C1-29990101T000000-abcdef", "Mumbai")
        assert answer == {"txid": "C1-29990101T000000-abcdef", "decision": "aborted"}
    finally:
        coord.close()


def test_c14_a_txid_from_before_the_log_was_created_is_in_doubt(tmp_path):
    """C14 (recovery log Rule 9): a log presumes only about its own transactions. The
    old log was deleted while Mumbai held one of its transactions prepared, which it
    had committed and Delhi had applied: the new log answers "in-doubt" for that txid
    (before, "aborted": Mumbai would have released 5.00 that Delhi had credited), and
    still presumes about txids of its own time; its txids are never stamped before it."""
    log_path = tmp_path / "recovery.log"
    old = coordinator_module.Coordinator("C1", {"Mumbai": "http://127.0.0.1:9"}, log_path)
    old.close()
    first_line = log_path.read_text().splitlines()[0]
    assert " created log " in first_line and "txids_from" in first_line
    log_path.unlink()                                      # an operator "starts afresh"
    new = coordinator_module.Coordinator("C1", {"Mumbai": "http://127.0.0.1:9"}, log_path)
    try:
        created = new.twopc.log.created
        assert new.decision("C1-20000101T000000-00abcd", "Mumbai")["decision"] == "in-doubt"
        assert new.decision("C1-29990101T000000-00abcd", "Mumbai")["decision"] == "aborted"
        with new.twopc._lock:
            assert new.twopc._new_txid().split("-")[1] >= created
    finally:
        new.close()


def test_c14_a_txid_stamped_in_the_second_its_new_log_was_made_is_in_doubt(tmp_path):
    """C14 (recovery log Rule 9): the old log was deleted and the coordinator started
    again on a new one within the very second the old coordinator stamped a transaction
    a branch holds in doubt (a script restarts it in well under a second). The new log
    answers "in-doubt" for that txid too: it names the second after its creation. (It
    named its own second, so it presumed "aborted": with Delhi's credit applied,
    Mumbai released its debit and the bank held 7.00 more.) Its own txids, stamped
    from that next second, are still presumed about."""
    log_path = tmp_path / "recovery.log"
    before = time.time()                    # the old coordinator stamps its txid now
    new = coordinator_module.Coordinator("C1", {"Mumbai": "http://127.0.0.1:9"}, log_path)
    try:
        second = time.strftime("%Y%m%dT%H%M%S", time.gmtime(before))
        old_txid = f"C1-{second}-00abcd"    # the log was made in this second, or later
        assert new.decision(old_txid, "Mumbai")["decision"] == "in-doubt"
        with new.twopc._lock:
            own = new.twopc._new_txid()     # never sent: a begin lost with its prepare
        assert own.split("-")[1] > second
        assert new.decision(own, "Mumbai")["decision"] == "aborted"
    finally:
        new.close()


def test_no_two_transactions_get_the_same_txid(tmp_path):
    """D7: 200,000 txids drawn as fast as the coordinator can (far more than a second's
    worth of transfers) are all different and readable, C1-<UTC second>-<6 hex>; and an
    id this coordinator already holds is never given out again. (Random digits alone
    gave about a thousand repeats here; a branch answers a known txid with its recorded
    vote, P3, so a repeated id is a transfer told "committed" and never applied.)"""
    coord = coordinator_module.Coordinator(
        "C1", {"Mumbai": "http://127.0.0.1:9", "Delhi": "http://127.0.0.1:9"},
        tmp_path / "recovery.log")
    try:
        driver = coord.twopc
        with driver._lock:
            txids = [driver._new_txid() for _ in range(200_000)]
        assert len(set(txids)) == len(txids)
        assert all(re.fullmatch(r"C1-\d{8}T\d{6}-[0-9a-f]{6}", t) for t in txids[:1000])
        start = next(driver._serials)
        held = {f"C1-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(time.time() + dt))}-"
                f"{(start + 1) % twopc_memory.TXID_SERIALS:06x}" for dt in (0, 1)}           # this second and the next
        for txid in held:
            driver.txns[txid] = None
        with driver._lock:
            fresh = driver._new_txid()
        assert fresh not in held and fresh.endswith(f"{(start + 2) % twopc_memory.TXID_SERIALS:06x}")
    finally:
        coord.close()


def test_decision_for_unknown_txid_is_aborted_over_rpc(bank):
    """Presumed abort, on the wire: decision(txid) for a txid never seen is 'aborted';
    for a committed one it is 'committed'."""
    assert call(bank, COORDINATOR, "decision", "C1-29990101T000000-abcdef")["decision"] \
        == "aborted"
    done = bank.coordinator().call("transfer", SRC, DST, "1")
    assert call(bank, COORDINATOR, "decision", done["txid"])["decision"] == "committed"


def test_a_read_of_the_wrong_type_is_refused_not_read_as_all(bank):
    """A read's scope is text, "" for all: a list, a number or a struct is refused with
    one sentence (journal([], 5) returned every branch's journal, and accounts(0) every
    account), while "" and a branch's name read as before."""
    coordinator = bank.coordinator()
    for call in (("journal", [], 5), ("journal", 7), ("accounts", []), ("accounts", 0),
                 ("accounts", {"branch": "Mumbai"})):
        with pytest.raises(BankError, match=r"must be text \(\"\" for all\)") as info:
            coordinator.call(*call)
        assert info.value.code == FaultCode.BAD_INPUT, call
    assert len(coordinator.call("journal", "", 2)) == 2
    assert {a["branch"] for a in coordinator.call("accounts", "Mumbai")} == {"Mumbai"}


# ---- request ids ---------------------------------------------------------------------------

def test_request_id_makes_a_retried_transfer_apply_once(bank):
    """A retried transfer with the same request id returns the first txid and outcome
    and moves money once, even after a coordinator restart; the same id with different
    arguments is refused (BAD_INPUT) and changes nothing."""
    first = bank.coordinator().call("transfer", SRC, DST, "100.00", "lab-try-1")
    assert first["outcome"] == "committed" and first["txid"]
    again = bank.coordinator().call("transfer", SRC, DST, "100", "lab-try-1")
    assert (again["txid"], again["outcome"]) == (first["txid"], "committed")

    with pytest.raises(BankError) as info:
        bank.coordinator().call("transfer", SRC, DST, "200.00", "lab-try-1")
    assert info.value.code == FaultCode.BAD_INPUT
    assert balance(bank, SRC) == OPENING["1001"] - 100
    assert balance(bank, DST) == OPENING["1002"] + 100

    bank.restart(COORDINATOR)
    after = bank.coordinator().call("transfer", SRC, DST, "100.00", "lab-try-1")
    assert (after["txid"], after["outcome"]) == (first["txid"], "committed")
    with pytest.raises(BankError) as info:
        bank.coordinator().call("transfer", SRC, "Chennai/1002", "100.00", "lab-try-1")
    assert info.value.code == FaultCode.BAD_INPUT
    assert balance(bank, SRC) == OPENING["1001"] - 100
    assert balance(bank, DST) == OPENING["1002"] + 100
    assert len(txid_rows(bank, SRC_BRANCH, first["txid"])) == 1
    assert_bank_is_consistent(bank)


@pytest.mark.parametrize("point", ["crash-after-prepare", "crash-after-decision"])
def test_request_id_retry_after_coordinator_crash_returns_the_decided_outcome(bank, point):
    """A client left without an answer by a coordinator crash retries with the same
    request id and learns the outcome the log decided (presumed abort without a commit
    record, committed with one); the retry never starts a second transfer."""
    call(bank, COORDINATOR, "fault", point)
    with pytest.raises(BankError) as info:
        bank.coordinator().call("transfer", SRC, DST, str(AMOUNT), "lab-crash-1")
    assert info.value.code == FaultCode.UNAVAILABLE
    assert bank.members[COORDINATOR].wait_exit(10) == CRASH_EXIT_CODE
    bank.restart(COORDINATOR)

    retry = bank.coordinator().call("transfer", SRC, DST, str(AMOUNT), "lab-crash-1")
    assert retry["outcome"] == EXPECTED[point], retry
    assert [r["txid"] for r in call(bank, COORDINATOR, "transactions", 50)] == [retry["txid"]]
    assert_outcome_everywhere(bank, retry["txid"], EXPECTED[point])


# ---- local transfers and no votes -----------------------------------------------------

def test_same_branch_transfer_uses_no_two_phase_commit(bank):
    """A transfer inside one branch is that branch's local transaction: no txid, no
    prepare, outcome committed at once, and the coordinator lists no 2PC transaction."""
    result = bank.coordinator().call("transfer", "Mumbai/1001", "Mumbai/1002", "10.50")
    assert result["txid"] == "" and result["outcome"] == "committed"
    assert balance(bank, "Mumbai/1001") == OPENING["1001"] - money("10.50")
    assert balance(bank, "Mumbai/1002") == OPENING["1002"] + money("10.50")
    assert call(bank, COORDINATOR, "transactions", 50) == []
    rows = call(bank, SRC_BRANCH, "journal", "", 100)
    assert [(r["kind"], r["txid"]) for r in rows if r["kind"].startswith("transfer")] == \
        [("transfer-out", ""), ("transfer-in", "")]
    assert not any(r["txid"] for r in rows)          # no 2PC step touched the ledger
    assert_bank_is_consistent(bank)


def test_insufficient_funds_cross_branch_aborts_with_a_reason(bank):
    """The source votes no when available < amount; the coordinator aborts and the
    reason names the branch and the amount available. Nothing moves, nothing is held."""
    result = bank.coordinator().call("transfer", SRC, DST, "10000.01")
    assert result["outcome"] == "aborted" and result["txid"]
    assert "Mumbai" in result["reason"], result
    assert "10000.00" in result["reason"], result
    states = wait_for(lambda: settled(bank, result["txid"]), 10, "the abort to finish")
    assert states[SRC_BRANCH] == "aborted" and states[DST_BRANCH] == "aborted", states
    assert_bank_is_consistent(bank)
    assert balance(bank, SRC) == OPENING["1001"]


# ---- the trace -------------------------------------------------------------------------------

def test_trace_shows_the_protocol_in_order(bank):
    """The trace of a committed transfer has, for both participants, prepare -> vote,
    then ONE decision forced to the log after all votes, then commit -> ack for each,
    then end: the sequence diagram of 2PC."""
    result = bank.coordinator().call("transfer", SRC, DST, "5")
    assert result["outcome"] == "committed"
    txn = wait_for(lambda: (lambda t: t if t["state"] == "committed" else None)(
        call(bank, COORDINATOR, "transaction", result["txid"])), 10, "end to be logged")
    trace = txn["trace"]
    assert txn["votes"] == {SRC_BRANCH: "yes", DST_BRANCH: "yes"}

    def index(msg, sender, receiver):
        found = [i for i, m in enumerate(trace)
                 if (m["msg"], m["from"], m["to"]) == (msg, sender, receiver)]
        assert len(found) == 1, (msg, sender, receiver, trace)
        return found[0]

    decision = index("decision", "coordinator", "log")
    assert trace[decision]["detail"].startswith("commit")
    for branch in (SRC_BRANCH, DST_BRANCH):
        prepare = index("prepare", "coordinator", branch)
        vote = index("vote", branch, "coordinator")
        commit = index("commit", "coordinator", branch)
        ack = index("ack", branch, "coordinator")
        assert index("begin", "coordinator", "log") < prepare < vote < decision < commit < ack
        assert trace[vote]["detail"] == "yes"
        assert trace[vote]["ms"] <= trace[decision]["ms"] <= trace[commit]["ms"]
    protocol_messages = [m["msg"] for m in trace if m["msg"] != "query"]  # branch asks
    assert protocol_messages[-1] == "end"
    assert not any(m["to"] == BYSTANDER or m["from"] == BYSTANDER for m in trace)


# ---- partitions ------------------------------------------------------------------------------

def test_partition_aborts_then_heal_lets_transfers_commit(bank):
    """While the coordinator cannot reach a branch, a transfer to it aborts (no vote is
    a no) and the source's hold is released; after heal the next transfer commits and
    nothing stays held or in doubt anywhere."""
    call(bank, COORDINATOR, "partition", DST_BRANCH)
    cut = bank.coordinator().call("transfer", SRC, DST, "300")
    assert cut["outcome"] == "aborted"
    assert DST_BRANCH in cut["reason"], cut
    assert call(bank, SRC_BRANCH, "status", cut["txid"])["state"] == "aborted"
    assert call(bank, SRC_BRANCH, "account", "1001")["held"] == "0.00"
    assert call(bank, DST_BRANCH, "status", cut["txid"])["state"] == "unknown"
    assert balance(bank, SRC) + balance(bank, DST) == OPENING["1001"] + OPENING["1002"]

    call(bank, COORDINATOR, "heal", DST_BRANCH)
    ok = bank.coordinator().call("transfer", SRC, DST, "300")
    assert ok["outcome"] == "committed"
    wait_for(lambda: settled(bank, cut["txid"]) and settled(bank, ok["txid"]), 10,
             "both transfers to finish after heal")
    assert call(bank, DST_BRANCH, "status", cut["txid"])["state"] in ("aborted", "unknown")
    assert call(bank, COORDINATOR, "transactions", 50, "in-doubt") == []
    assert balance(bank, SRC) == OPENING["1001"] - 300
    assert balance(bank, DST) == OPENING["1002"] + 300
    assert_bank_is_consistent(bank)


def test_partition_during_phase_two_blocks_then_heal_commits(bank):
    """While votes are still coming in, decision(txid) answers 'pending', never a guess.
    A participant cut off after voting yes stays prepared (in doubt) even though the
    client was told committed: it cannot learn the decision and never decides alone.
    After heal, the coordinator's retries commit it with no manual step."""
    call(bank, DST_BRANCH, "fault", "delay=1.5")      # Delhi's vote takes 1.5 s to leave
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        bank.coordinator().call("transfer", SRC, DST, "40")))
    worker.start()
    try:
        def source_has_voted():
            """The trace, once Mumbai's vote is back (so Delhi's prepare is on its way)."""
            rows = call(bank, COORDINATOR, "transactions", 50)
            trace = call(bank, COORDINATOR, "transaction", rows[0]["txid"])["trace"] \
                if rows else []
            return rows and any((m["msg"], m["from"]) == ("vote", SRC_BRANCH) for m in trace)

        wait_for(source_has_voted, 5, "Mumbai to vote", interval=0.02)
        call(bank, COORDINATOR, "partition", DST_BRANCH)   # while Delhi's vote is in flight
        row = call(bank, COORDINATOR, "transactions", 50)[0]
        # Before the commit point the coordinator never guesses (no presumed abort yet).
        assert call(bank, COORDINATOR, "decision", row["txid"])["decision"] == "pending"
        staged = call(bank, COORDINATOR, "transaction", row["txid"])["trace"]
        assert not any(m["from"] == DST_BRANCH for m in staged), \
            "staging failed: Delhi answered before the partition"
    finally:
        worker.join(30)
    call(bank, DST_BRANCH, "fault", "")
    assert result["outcome"] == "committed", result
    assert result["waiting_for"] == [DST_BRANCH], result
    txid = result["txid"]

    window_end = time.monotonic() + 1.0
    while time.monotonic() < window_end:               # several --ask-every rounds
        assert call(bank, DST_BRANCH, "status", txid)["state"] == "prepared"
        assert [t["txid"] for t in call(bank, DST_BRANCH, "in_doubt")] == [txid]
        time.sleep(0.25)
    assert call(bank, SRC_BRANCH, "status", txid)["state"] == "committed"

    call(bank, COORDINATOR, "heal", DST_BRANCH)
    wait_for(lambda: call(bank, DST_BRANCH, "status", txid)["state"] == "committed", 10,
             "Delhi to commit after heal")
    wait_for(lambda: settled(bank, txid), 10, "the coordinator to log end")
    assert balance(bank, DST) == OPENING["1002"] + 40
    assert_bank_is_consistent(bank)
