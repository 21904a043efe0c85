"""Batched 2PC messages keep every rule of the protocol (bank/batching.py B1-B6).

Rules checked:
  * B1/B2 - at a real branch, the items of one batch() are answered each in its own
    slot: a "no" vote (no funds), a refusal (commit of an unknown txid) and a yes vote
    side by side; only the yes holds money;
  * B2 - a malformed batch is refused whole and changes nothing;
  * B2 - at the coordinator, callers that share a batch each get their own answer or
    their own error, and a failure of the whole call reaches each as a failure (never
    as a "no" or as another caller's answer);
  * B3 - a message with nothing in flight to its branch goes alone, at once;
  * B4 - a batch's items share one COMMIT (one fsync) at the branch, and its
    crash-after faults strike after it: a branch that dies answering a batch of
    prepares comes back with every one of them prepared;
  * B5 - a message for a free line is not posted (the caller sends it at once); one
    for a busy line rides the next batch, its answer goes to its own function, a
    batch of posted messages alone is carried without any caller, and a reader
    waiting for the posted messages returns once they are carried; through a real
    coordinator, each of eight concurrent clients reads its own transfer applied
    right after each answer, and every transaction ends;
  * a branch killed (kill -9) while batched transfers run, then restarted, leaves every
    transfer committed at both branches or at neither, as the coordinator decided, and
    money is conserved;
  * B6 - a held decision rides the next message to its branch, or leaves alone once its
    hold is over; a read sends it at once; a failed or misshapen batch answer fails
    every item and strands none; a batch is never overfilled; the trace says how each
    posted message went; through real processes a transfer is answered at the forced
    decision and costs fewer messages, money it brought in can be spent at once, and a
    coordinator killed with decisions held loses none; --hold-decisions refuses what it
    cannot do in one sentence.
Real processes on 127.0.0.1, real SQLite files; polling with a deadline.
"""

import decimal
import threading

import pytest

from bank.batching import BatchingLink
from bank.errors import BankError, FaultCode
from bank.local_cluster import LocalCluster
from polling import wait_configured, wait_for

COORD = "http://127.0.0.1:1"
PAIR = ("Mumbai/1001", "Delhi/1002")


@pytest.fixture
def bank(tmp_path):
    cluster = LocalCluster(home=tmp_path, branch_args=("--ask-every", "0.3"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_each_item_of_a_batch_gets_its_own_answer(bank):
    """B1/B2: yes, no and a refusal in one batch, each in its own slot; only the yes
    vote holds money; the refused commit changed nothing."""
    mumbai = bank.client("Mumbai")
    slots = mumbai.call("batch", [
        ["prepare", ["t-yes", COORD, [{"account": "1001", "delta": "-10.00"}]]],
        ["prepare", ["t-no", COORD, [{"account": "1002", "delta": "-99999.00"}]]],
        ["commit", ["t-never-prepared"]],
        ["prepare", ["t-bad-arity"]]])
    assert slots[0] == {"result": {"vote": "yes", "reason": ""}}
    assert slots[1]["result"]["vote"] == "no"
    assert slots[2]["fault"] == int(FaultCode.PROTOCOL_VIOLATION), slots[2]
    assert slots[3]["fault"] == int(FaultCode.BAD_INPUT), slots[3]
    assert mumbai.call("account", "1001")["held"] == "10.00"
    assert mumbai.call("account", "1002")["held"] == "0.00"
    assert mumbai.call("status", "t-never-prepared")["state"] == "unknown"


def test_a_batch_shares_one_fsync_and_crashes_only_after_it(bank):
    """B4: four prepares in one batch cost the branch one fsync. Then, with
    crash-after-vote armed, a batch of two prepares kills the branch while it answers:
    after a restart both are prepared (their shared COMMIT came before any answer)."""
    mumbai = bank.client("Mumbai")
    wait_configured(bank)      # the start's configuration writes: a COMMIT at Mumbai too
    fsyncs = lambda: mumbai.call("ping")["counters"]["fsyncs"]              # noqa: E731
    before = fsyncs()
    slots = mumbai.call("batch", [["prepare", [f"t-{k}", COORD, [
        {"account": "1001", "delta": "-1.00"}]]] for k in range(4)])
    assert slots == [{"result": {"vote": "yes", "reason": ""}}] * 4
    assert fsyncs() - before == 1
    mumbai.call("fault", "crash-after-vote")
    with pytest.raises(BankError):
        mumbai.call("batch", [["prepare", [f"t-crash-{k}", COORD, [
            {"account": "1001", "delta": "-1.00"}]]] for k in range(2)])
    bank.restart("Mumbai")
    mumbai = bank.client("Mumbai")
    assert [mumbai.call("status", f"t-crash-{k}")["state"] for k in range(2)] == \
        ["prepared", "prepared"]
    assert mumbai.call("account", "1001")["held"] == "6.00"


def test_a_malformed_batch_is_refused_whole(bank):
    """B2: a batch with an item that is not prepare/commit/abort is refused in one
    sentence before anything runs; the good item in it did nothing."""
    mumbai = bank.client("Mumbai")
    with pytest.raises(BankError) as refused:
        mumbai.call("batch", [["prepare", ["t1", COORD, [{"account": "1001",
                                                          "delta": "-1.00"}]]],
                              ["deposit", ["1001", "5.00"]]])
    assert refused.value.code == FaultCode.BAD_INPUT and "batch item" in refused.value.message
    assert mumbai.call("status", "t1")["state"] == "unknown"
    assert mumbai.call("account", "1001")["balance"] == "10000.00"


class SlowLink:
    """A stand-in BranchLink: the first call waits until released; records every call."""

    def __init__(self, fail_batches=False):
        self.urls, self.calls = ["http://127.0.0.1:1"], []
        self.release, self.first_in = threading.Event(), threading.Event()
        self.fail_batches = fail_batches

    def call(self, method, *args):
        self.calls.append((method, args))
        if len(self.calls) == 1:
            self.first_in.set()
            assert self.release.wait(10)
        if method == "batch":
            if self.fail_batches:
                raise BankError(FaultCode.UNAVAILABLE, "Delhi cannot be reached (timed out).")
            return [{"fault": int(FaultCode.PROTOCOL_VIOLATION), "message": f"no {a[0]}"}
                    if a[0].startswith("bad") else {"result": {"vote": "yes", "txid": a[0]}}
                    for _, a in args[0]]
        return {"vote": "yes", "txid": args[0]}

    def send(self, method, *args, then=None):
        """A call sent now: made when its reply is finished (as a real one is read)."""
        return SlowReply(lambda: self.call(method, *args), then)


class SlowReply:
    def __init__(self, answer, then):
        self.answer, self.then = answer, then

    def finish(self):
        try:
            return self.answer()
        finally:
            if self.then is not None:
                self.then()


def run_behind_a_slow_call(link, txids):
    """Send txids[0] alone (held in flight), queue the others behind it, release."""
    batching, answers = BatchingLink(link), {}

    def send(txid):
        try:
            answers[txid] = batching.call("prepare", txid, COORD, [])
        except BankError as exc:
            answers[txid] = exc
    first = threading.Thread(target=send, args=(txids[0],))
    first.start()
    assert link.first_in.wait(10)
    rest = [threading.Thread(target=send, args=(t,)) for t in txids[1:]]
    for t in rest:
        t.start()
    wait_for(lambda: len(batching._waiting) == len(rest), 10, "the others to queue")
    link.release.set()
    for t in [first, *rest]:
        t.join(10)
    return answers


def test_callers_sharing_a_batch_get_their_own_answers():
    """B2/B3: the first message goes alone; the three queued behind it share one batch
    call; the one the branch refused gets its own error, the others their own votes."""
    link = SlowLink()
    answers = run_behind_a_slow_call(link, ["t0", "t1", "bad2", "t3"])
    assert [m for m, _ in link.calls] == ["prepare", "batch"]
    assert answers["t0"] == {"vote": "yes", "txid": "t0"}
    assert answers["t1"] == {"vote": "yes", "txid": "t1"}
    assert answers["t3"] == {"vote": "yes", "txid": "t3"}
    assert isinstance(answers["bad2"], BankError)
    assert answers["bad2"].code == FaultCode.PROTOCOL_VIOLATION


def test_a_failed_batch_call_is_a_failure_for_each_never_a_no():
    """B2: when the batch call itself fails (timeout), each of its callers gets that
    failure as an error (the 2PC driver counts it as silence), never a vote."""
    link = SlowLink(fail_batches=True)
    answers = run_behind_a_slow_call(link, ["t0", "t1", "t2"])
    assert answers["t0"] == {"vote": "yes", "txid": "t0"}
    for txid in ("t1", "t2"):
        assert isinstance(answers[txid], BankError)
        assert answers[txid].code == FaultCode.UNAVAILABLE


def test_a_message_is_posted_only_behind_a_message_in_flight():
    """B3 and B5: on a free line send_or_post() sends the message now, and the line
    stays busy until its reply is read; behind it a prepare, a commit and an abort are
    posted to ride the next batch, each answer reaches its own function, and no thread
    waited for them; a read (not a 2PC message) is never posted."""
    link = SlowLink()
    batching, answers = BatchingLink(link), {}
    link.release.set()
    reply = batching.send_or_post("prepare", ("t1", COORD, []), None)
    assert reply is not None and batching._in_flight
    for method, args in (("prepare", ("t2", COORD, [])), ("commit", ("t3",)),
                         ("abort", ("t4",))):
        assert batching.send_or_post(method, args, lambda answer, exc, t=args[0]:
                                     answers.update({t: (answer, exc)})) is None
    assert batching.send_or_post("account", ("1001",), None) is not None
    assert link.calls == []
    assert reply.finish() == {"vote": "yes", "txid": "t1"}
    wait_for(lambda: len(answers) == 3, 10, "the posted messages' answers")
    assert [m for m, _ in link.calls] == ["prepare", "batch"]
    assert [item[0] for item in link.calls[1][1][0]] == ["prepare", "commit", "abort"]
    for txid in ("t2", "t3", "t4"):
        assert answers[txid] == ({"vote": "yes", "txid": txid}, None)
    wait_for(lambda: not batching._in_flight, 10, "the line to be free again")


def test_a_read_waits_until_the_decisions_posted_before_it_are_carried():
    """B5: wait_for_posted() returns at once when nothing is posted, and otherwise only
    after the batch carrying the posted decision has come back."""
    link = SlowLink()
    batching = BatchingLink(link)
    batching.wait_for_posted(0)                       # nothing posted: no wait
    first = threading.Thread(target=batching.call, args=("prepare", "t1", COORD, []))
    first.start()
    assert link.first_in.wait(10)
    assert batching.send_or_post("commit", ("t1",), lambda answer, exc: None) is None
    reader_done = threading.Event()
    reader = threading.Thread(target=lambda: (batching.wait_for_posted(10),
                                              reader_done.set()))
    reader.start()
    assert not reader_done.wait(0.2)                  # the commit is still waiting
    link.release.set()
    assert reader_done.wait(10)
    assert [m for m, _ in link.calls] == ["prepare", "commit"]
    first.join(10)
    reader.join(10)


def test_a_read_through_the_coordinator_sees_every_answered_transfer(bank):
    """B5 through real processes: eight clients, each with its own pair of accounts,
    transfer at once, so decisions ride busy lines and some answers name a branch in
    waiting_for; yet each client's read of its own account through the coordinator,
    made right after each answer, already shows that transfer applied. Every
    transaction then ends with both acknowledgements."""
    answers, wrong, lock = [], [], threading.Lock()

    def client(k):
        coordinator = bank.coordinator()
        mine = coordinator.call("open_account", "Mumbai", f"Client {k}", "100")["number"]
        theirs = coordinator.call("open_account", "Delhi", f"Client {k}", "100")["number"]
        here, there = f"Mumbai/{mine}", f"Delhi/{theirs}"
        expected = decimal.Decimal(100)
        for n in range(25):
            src, dst = (here, there) if n % 2 else (there, here)
            try:
                answer = coordinator.call("transfer", src, dst, "1.00")
                expected += 1 if dst == here else -1
                seen = decimal.Decimal(coordinator.call("account", here)["balance"])
            except BankError as exc:
                wrong.append((src, dst, exc))
                return
            with lock:
                answers.append(answer)
                if seen != expected:
                    wrong.append((answer, seen, expected))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert wrong == []
    assert len(answers) == 200 and all(a["outcome"] == "committed" for a in answers)
    assert any(a["waiting_for"] for a in answers)             # some decisions rode
    wait_for(lambda: bank.coordinator().call("transactions", 1000, "in-doubt") == [], 30,
             "every transaction to end")


def test_a_branch_crash_during_batched_transfers_leaves_all_or_nothing(bank):
    """A kill -9 of Delhi while eight clients run batched transfers, then a restart:
    every transfer the coordinator decided is applied at both branches or at neither,
    exactly as decided; nothing stays held; money is conserved."""
    stop, told, errors = threading.Event(), [], []

    def client(k):
        coordinator = bank.coordinator()
        pair = ("Mumbai/1001", "Delhi/1002")
        n = 0
        while not stop.is_set():
            src, dst = pair if (n + k) % 2 else pair[::-1]
            try:
                told.append(coordinator.call("transfer", src, dst, "1.00"))
            except BankError as exc:
                errors.append(exc)
            n += 1
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    counters = lambda: bank.coordinator().call("ping")["counters"]            # noqa: E731
    wait_for(lambda: counters().get("transfers", 0) >= 60, 60, "60 transfers")
    c = counters()
    assert c["rpcs_sent"] < 4 * c["transfers"], c         # batches did form
    bank.kill("Delhi")
    wait_for(lambda: len(told) + len(errors) >= c["transfers"] + 10, 30,
             "transfers to go on while Delhi is down")
    bank.restart("Delhi")
    wait_for(lambda: len(told) >= c["transfers"] + 40, 60, "transfers after the restart")
    stop.set()
    for t in threads:
        t.join(30)
    wait_for(lambda: not bank.client("Mumbai").call("in_doubt")
             and not bank.client("Delhi").call("in_doubt")
             and bank.coordinator().call("transactions", 10_000, "in-doubt") == [],
             60, "every transfer to finish")
    journals = {b: bank.client(b).call("journal", "", 10_000) for b in ("Mumbai", "Delhi")}
    applied = {b: {r["txid"] for r in rows if r["txid"]} for b, rows in journals.items()}
    assert applied["Mumbai"] == applied["Delhi"]          # both or neither, for every txid
    for answer in told:
        decided = bank.coordinator().call("decision", answer["txid"])["decision"]
        assert decided == answer["outcome"], answer
        assert (answer["txid"] in applied["Mumbai"]) == (decided == "committed"), answer
    total = decimal.Decimal(0)
    for branch in ("Mumbai", "Delhi"):
        for acct in bank.client(branch).call("accounts"):
            assert acct["held"] == "0.00", acct
            total += decimal.Decimal(acct["balance"])
    assert total == decimal.Decimal("30000.00")
    assert all(e.code == FaultCode.UNAVAILABLE for e in errors), errors[:3]


# ---- B6: decisions held for company (coordinator.py --hold-decisions) -----------------

def test_a_held_decision_rides_the_next_message_to_its_branch():
    """B6: on a free line a held commit is not sent; the next prepare to that branch
    takes it along in ONE batch call, read by the prepare's own reply (the commit's
    answer reaches its function); the line is free again afterwards."""
    link = SlowLink()
    link.release.set()
    batching, answers, notes = BatchingLink(link, hold=60.0), {}, []
    assert batching.send_or_post("commit", ("t1",), lambda answer, exc:
                                 answers.update(t1=(answer, exc)), notes.append) is None
    assert link.calls == [] and not batching._in_flight          # held, line free
    assert notes == ["held"]
    reply = batching.send_or_post("prepare", ("t2", COORD, []), None)
    assert reply is not None and reply.finish() == {"vote": "yes", "txid": "t2"}
    assert [m for m, _ in link.calls] == ["batch"]
    assert [item[0] for item in link.calls[0][1][0]] == ["commit", "prepare"]
    assert answers == {"t1": ({"vote": "yes", "txid": "t1"}, None)}
    assert notes == ["held", "left"]                 # its trace time: when it left
    assert not batching._in_flight


def test_a_held_decision_with_no_company_leaves_alone_in_time():
    """B6: a held decision that no message comes to take along leaves by itself once
    its hold is over, as a plain call; its answer reaches its function."""
    link = SlowLink()
    link.release.set()
    batching, answers = BatchingLink(link, hold=0.05), {}
    batching.send_or_post("abort", ("t1",), lambda answer, exc: answers.update(t1=answer))
    wait_for(lambda: "t1" in answers, 10, "the held abort to leave alone")
    assert [m for m, _ in link.calls] == ["abort"]


def test_a_read_sends_the_held_decisions_at_once():
    """B6 with B5: a read waiting for the posted messages sends the held ones now
    instead of waiting out their hold (here a minute): it returns with the commit
    carried."""
    link = SlowLink()
    link.release.set()
    batching = BatchingLink(link, hold=60.0)
    batching.send_or_post("commit", ("t1",), lambda answer, exc: None)
    batching.wait_for_posted(30)
    assert [m for m, _ in link.calls] == ["commit"]
    assert batching._carried == batching._posted == 1


def two_held_then_a_prepare(link):
    """Hold commits t1 and t2 (B6), then send prepare t3, which takes them along; the
    line, the held decisions' answers, and what the prepare's reply raised."""
    link.release.set()
    batching, answers = BatchingLink(link, hold=60.0), {}
    for txid in ("t1", "t2"):
        batching.send_or_post("commit", (txid,), lambda answer, exc, t=txid:
                              answers.update({t: (answer, exc)}))
    reply = batching.send_or_post("prepare", ("t3", COORD, []), None)
    with pytest.raises(BankError) as failed:
        reply.finish()
    return batching, answers, failed.value


def test_a_failed_call_fails_the_held_decisions_it_carried_never_as_an_ack():
    """B6 with B2: when the batch call that carries held decisions fails as a whole,
    each held decision gets that failure (no acknowledgement: it is retried, C6), and
    the message that took them along gets it too."""
    batching, answers, failed = two_held_then_a_prepare(SlowLink(fail_batches=True))
    assert failed.code == FaultCode.UNAVAILABLE
    for txid in ("t1", "t2"):
        answer, exc = answers[txid]
        assert answer is None and exc.code == FaultCode.UNAVAILABLE
    assert not batching._in_flight


def test_held_decisions_through_a_real_coordinator(tmp_path):
    """B6 and D3 through real processes (--hold-decisions 10000): a transfer is answered
    at the forced decision, both branches in waiting_for; each commit rides the next
    transfer's prepare to its branch, so ten transfers in a row take fewer than three
    messages each (four without holding); a read through the coordinator sees every
    transfer applied; every transaction ends, and money is conserved."""
    cluster = LocalCluster(home=tmp_path, coordinator_args=("--hold-decisions", "10000"))
    try:
        cluster.start()
        coordinator = cluster.coordinator()
        before = coordinator.call("ping")["counters"].get("rpcs_sent", 0)
        balances = {a: coordinator.call("account", a)["balance"] for a in PAIR}
        for n in range(10):
            src, dst = PAIR[::1 if n % 2 else -1]
            answer = coordinator.call("transfer", src, dst, "1.00")
            assert answer["outcome"] == "committed"
            assert answer["waiting_for"] == ["Delhi", "Mumbai"], answer
        sent = coordinator.call("ping")["counters"]["rpcs_sent"] - before
        assert sent < 3 * 10, sent
        assert {a: coordinator.call("account", a)["balance"] for a in PAIR} == balances
        wait_for(lambda: coordinator.call("transactions", 100, "in-doubt") == [], 30,
                 "every transaction to end")
        for branch in ("Mumbai", "Delhi"):
            assert not cluster.client(branch).call("in_doubt")
    finally:
        cluster.stop()


def test_a_coordinator_crash_with_decisions_held_loses_none(tmp_path):
    """B6 is safe: the decision is durable before it is held (D1). A coordinator killed
    right after answering, its commit still held (both branches still prepared, with
    a hold of ten seconds), sends it once restarted (C8): the
    transfer is applied at both branches, nothing stays held, money is conserved."""
    cluster = LocalCluster(home=tmp_path, coordinator_args=("--hold-decisions", "10000"))
    try:
        cluster.start()
        balances = {a: cluster.coordinator().call("account", a)["balance"] for a in PAIR}
        answer = cluster.coordinator().call("transfer", *PAIR, "5.00")
        assert answer["outcome"] == "committed"
        for branch in ("Mumbai", "Delhi"):                     # the commit is held
            assert cluster.client(branch).call("status", answer["txid"])["state"] == \
                "prepared"
        cluster.kill("coordinator")
        cluster.restart("coordinator")
        wait_for(lambda: all(cluster.client(b).call("status", answer["txid"])["state"]
                             == "committed" for b in ("Mumbai", "Delhi")), 30,
                 "the held commit to reach both branches after the restart")
        after = {a: cluster.coordinator().call("account", a)["balance"] for a in PAIR}
        assert {a: decimal.Decimal(after[a]) - decimal.Decimal(balances[a]) for a in PAIR} \
            == {"Mumbai/1001": -5, "Delhi/1002": 5}
        for branch in ("Mumbai", "Delhi"):
            assert all(a["held"] == "0.00" for a in cluster.client(branch).call("accounts"))
    finally:
        cluster.stop()


def test_money_a_transfer_brought_in_can_be_spent_at_once(tmp_path):
    """B6 with B5: with decisions held for ten seconds, a withdrawal through the
    coordinator of all that a transfer just brought in succeeds right after the
    transfer's answer (the held commit is sent first), and so does a local transfer."""
    cluster = LocalCluster(home=tmp_path, coordinator_args=("--hold-decisions", "10000"))
    try:
        cluster.start()
        coordinator = cluster.coordinator()
        had = decimal.Decimal(coordinator.call("account", "Delhi/1002")["balance"])
        assert coordinator.call("transfer", *PAIR, "5.00")["outcome"] == "committed"
        coordinator.call("withdraw", "Delhi/1002", str(had + 5))        # all of it
        assert coordinator.call("account", "Delhi/1002")["balance"] == "0.00"
        assert coordinator.call("transfer", "Mumbai/1002", "Delhi/1002",
                                "7.00")["outcome"] == "committed"
        other = coordinator.call("open_account", "Delhi", "Asha", "0")["number"]
        moved = coordinator.call("transfer", "Delhi/1002", f"Delhi/{other}", "7.00")
        assert moved["outcome"] == "committed" and moved["local"]
    finally:
        cluster.stop()


class ShortBatches(SlowLink):
    """A stand-in branch that answers a batch with one slot, whatever it was sent."""

    def call(self, method, *args):
        answer = super().call(method, *args)
        return answer[:1] if method == "batch" else answer


def test_a_batch_answer_of_the_wrong_shape_fails_each_item_never_strands_one():
    """B2 with B6: a batch answered with fewer slots than items (another version of
    the kit, say) is a failure of the whole call for every item: each held decision
    and the message that took them along get an answer, none another's."""
    batching, answers, failed = two_held_then_a_prepare(ShortBatches())
    assert failed.code == FaultCode.INTERNAL
    assert sorted(answers) == ["t1", "t2"]
    assert all(answer is None and exc.code == FaultCode.INTERNAL
               for answer, exc in answers.values())
    assert batching._carried == batching._posted == 2


def test_held_decisions_never_overfill_a_batch():
    """B6 with MAX_BATCH: a message takes held decisions along only while the batch
    has room; with a batch of one, the prepare leaves alone and the held commit
    follows it; at a stop the line's hold thread ends."""
    link = SlowLink()
    link.release.set()
    batching, answers = BatchingLink(link, max_batch=1, hold=60.0), {}
    batching.send_or_post("commit", ("t1",), lambda answer, exc: answers.update(t1=answer))
    reply = batching.send_or_post("prepare", ("t2", COORD, []), None)
    assert reply.finish() == {"vote": "yes", "txid": "t2"}
    wait_for(lambda: "t1" in answers, 10, "the held commit to follow")
    assert [m for m, _ in link.calls] == ["prepare", "commit"]
    batching.stop_holding()
    batching.hold_thread.join(10)
    assert not batching.hold_thread.is_alive()


def test_a_posted_messages_trace_row_says_how_it_went_and_when_it_left():
    """B5 and B6 in the trace (D5: say what is known): a message posted behind a busy
    line is noted "queued", a held decision "held", each "left" when its batch leaves;
    the shell's and the window's diagrams say so, and the row's own text (read by the
    window's replay) is left as it was."""
    from bank.views import message_label
    link = SlowLink()
    batching, notes = BatchingLink(link, hold=60.0), []
    link.release.set()
    reply = batching.send_or_post("prepare", ("t1", COORD, []), None)
    batching.send_or_post("prepare", ("t2", COORD, []), lambda a, e: None,
                          lambda how: notes.append(("t2", how)))
    assert notes == [("t2", "queued")]
    reply.finish()
    wait_for(lambda: ("t2", "left") in notes, 10, "the queued prepare to leave")
    row = {"msg": "prepare", "to": "Delhi", "detail": "1002 +1.00", "rides": "queued",
           "left": True}
    assert message_label(row) == ("prepare", "Delhi/1002 +1.00; rode a batch behind a "
                                  "busy line (B5)", ">")
    row = {"msg": "commit", "to": "Delhi", "detail": "", "rides": "held"}
    assert message_label(row)[1] == "held for company (B6): not sent yet"
    assert message_label(dict(row, left=True))[1] == "held for company, then sent (B6)"
    from bank.window.diagram import _label            # the window's arrow says it too
    assert _label(row, 1, 0) == "commit (held, B6)"
    from bank.twopc_txn import Txn                    # and its row moves to when it left
    txn = Txn("t", {"Delhi": []}, {})
    held = txn.note("coordinator", "Delhi", "commit")
    txn.note("Delhi", "coordinator", "decision?")
    txn.rides(held, "held")
    assert [r["msg"] for r in txn.trace] == ["commit", "decision?"]
    txn.rides(held, "left")
    assert [r["msg"] for r in txn.trace] == ["decision?", "commit"]
    assert txn.trace[-1]["left"] and txn.trace[-1]["rides"] == "held"


@pytest.mark.parametrize("extra, says", [
    (["--hold-decisions", "-1"], "--hold-decisions: 0 to 60000 milliseconds, not '-1'"),
    (["--hold-decisions", "soon"], "--hold-decisions: 0 to 60000 milliseconds"),
    (["--hold-decisions", "100000"], "--hold-decisions: 0 to 60000 milliseconds"),
    (["--hold-decisions", "nan"], "--hold-decisions: 0 to 60000 milliseconds"),
    (["--no-batching", "--hold-decisions", "2"], "--hold-decisions needs batching")])
def test_hold_decisions_refuses_what_it_cannot_do_in_one_sentence(extra, says, capsys):
    """B6's option: a hold out of range, or holding without batching (a held decision
    rides a batch), is refused before anything starts, in one sentence."""
    import coordinator as coordinator_main
    with pytest.raises(SystemExit):
        coordinator_main.parse_args(["--branch", "Mumbai=http://127.0.0.1:1", *extra])
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert coordinator_main.parse_args(["--branch", "Mumbai=http://127.0.0.1:1",
                                        "--hold-decisions", "2"]).hold_decisions == 2


def test_cluster_start_refuses_a_hold_out_of_range_before_starting_anything(tmp_path, capsys):
    """cluster.py start --hold-decisions takes the coordinator's range (B6); a value out
    of it is refused in one sentence and nothing is started (no cluster state written)."""
    import cluster as cluster_main
    with pytest.raises(SystemExit):
        cluster_main.main(["start", "--home", str(tmp_path), "--hold-decisions", "-3"])
    err = capsys.readouterr().err
    assert "--hold-decisions: 0 to 60000 milliseconds, not '-3'" in err
    assert "Traceback" not in err and not (tmp_path / "data").exists()


def test_hold_decisions_says_where_it_cannot_apply(tmp_path, capsys):
    """B6 holds decisions only on batching lines, and a branch with replicas gets every
    message alone: cluster.py start refuses --hold-decisions with --replicas (nothing
    started), and coordinator.py names the replicated branches it does not apply to."""
    import cluster as cluster_main
    import coordinator as coordinator_main
    with pytest.raises(SystemExit):
        cluster_main.main(["start", "--home", str(tmp_path), "--replicas", "1",
                           "--hold-decisions", "3"])
    assert "--hold-decisions works only for branches without replicas" in \
        capsys.readouterr().err
    assert not (tmp_path / "data").exists()
    coordinator_main.parse_args(["--branch", "Mumbai=http://127.0.0.1:1,http://127.0.0.1:2",
                                 "--branch", "Delhi=http://127.0.0.1:3",
                                 "--hold-decisions", "3"])
    assert "--hold-decisions does not apply to Mumbai" in capsys.readouterr().out
