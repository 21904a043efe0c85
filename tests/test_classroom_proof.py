"""Proofs for the classroom: request ids, account numbers and the rpc layer (issues 13, 18).

Rules checked:
  * the replay cache is bounded and costs the same per request whatever the uptime;
  * one request id means one operation and one outcome everywhere the coordinator
    routes it; a reuse for another operation is refused; a definite outcome (also a
    refusal for lack of funds) is repeated, never re-run;
  * an account number the API accepts is the only kind a branch ever opens;
  * a timed-out `open` or same-branch transfer can be retried or looked up by its
    request id.

Real processes on 127.0.0.1 (ports from the OS), real SQLite files; every wait is a
poll with a deadline.
"""

import pathlib
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import ledger as ledger_module, ledger_local     # noqa: E402
from bank import keys, rpc, rpc_signatures                 # noqa: E402
from bank.errors import BankError, FaultCode              # noqa: E402
from bank.local_cluster import LocalCluster               # noqa: E402


# ---- the replay cache (issue 13 item 1) -----------------------------------------------------

class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


def _signed_headers(secret: str, checker, clock, i: int) -> dict:
    return rpc.sign(secret, b"<body/>", checker.server_id, now=clock.now, nonce=f"n{i}")


def test_replay_cache_stays_bounded_and_costs_the_same_per_request():
    """Cost per request is independent of uptime: after hours of signed requests the
    replay cache holds only the nonces of the last 2 * SIGNATURE_WINDOW seconds (and of
    at most one slice of arrivals before them), and each request touches a constant
    number of cache entries (counted, not timed)."""
    secret, clock = "s" * 40, FakeClock()
    checker = rpc.SignatureChecker(secret, "Mumbai@127.0.0.1:9100", clock=clock)
    per_second, seconds = 20, 3 * 2 * rpc.SIGNATURE_WINDOW
    steps_per_window = []
    i = 0
    for second in range(seconds):
        for _ in range(per_second):
            assert checker.problem(_signed_headers(secret, checker, clock, i), b"<body/>") is None
            i += 1
        clock.now += 1
        kept_for = 2 * rpc.SIGNATURE_WINDOW + rpc.RecentNonces.SLICE + 1
        assert len(checker.nonces["student"]) <= per_second * kept_for
        if (second + 1) % (2 * rpc.SIGNATURE_WINDOW) == 0:
            steps_per_window.append(checker.nonces["student"].steps)
    costs = [b - a for a, b in zip([0] + steps_per_window, steps_per_window)]
    window_requests = per_second * 2 * rpc.SIGNATURE_WINDOW
    assert all(cost <= 2 * window_requests for cost in costs), costs   # add + expire, once
    one_slice = per_second * (rpc.RecentNonces.SLICE + 1)   # forgotten a slice at a time
    assert abs(costs[-1] - costs[-2]) <= one_slice, costs    # later windows cost no more


def test_replay_is_refused_even_after_the_cache_overflows(monkeypatch):
    """A flood beyond MAX_NONCES drops the oldest nonces, yet a replay of a dropped one is
    still refused (its timestamp is at or below the cache's floor)."""
    monkeypatch.setattr(rpc_signatures, "MAX_NONCES", 50)
    secret, clock = "s" * 40, FakeClock()
    checker = rpc.SignatureChecker(secret, "Mumbai@127.0.0.1:9100", clock=clock)
    first = _signed_headers(secret, checker, clock, 0)
    assert checker.problem(first, b"<body/>") is None
    for i in range(1, 200):
        clock.now += 0.01
        assert checker.problem(_signed_headers(secret, checker, clock, i), b"<body/>") is None
    assert len(checker.nonces["student"]) <= 50
    assert checker.problem(first, b"<body/>") is not None


def test_a_students_flood_raises_only_the_student_roles_floor(monkeypatch):
    """Each role has its own replay cache: a student's flood stamped two minutes ahead
    overflows the student cache and raises its floor into the future, refusing later
    student requests for a while, but a server's request (2PC, leases) stamped now is
    still accepted, and a replay of any flooded request is still refused."""
    monkeypatch.setattr(rpc_signatures, "MAX_NONCES", 50)
    clock = FakeClock()
    ring = keys.Keyring.from_master("s" * 40)
    checker = rpc.SignatureChecker(ring, "Mumbai@127.0.0.1:9100", clock=clock)
    ahead = clock.now + rpc.SIGNATURE_WINDOW - 1
    flood = [rpc.sign(ring, b"<body/>", checker.server_id, now=ahead, nonce=f"f{i}",
                      role="student") for i in range(200)]
    accepted = [h for h in flood if checker.problem(h, b"<body/>") is None]
    assert len(accepted) > 50                           # the cache overflowed
    assert checker.nonces["student"].floor_ms == int(ahead * 1000)   # its floor: ahead
    server_call = rpc.sign(ring, b"<body/>", checker.server_id, now=clock.now, role="server")
    assert checker.problem(server_call, b"<body/>") is None
    student_call = rpc.sign(ring, b"<body/>", checker.server_id, now=clock.now, role="student")
    assert "too long ago" in checker.problem(student_call, b"<body/>")
    assert checker.problem(flood[0], b"<body/>") is not None


def test_a_nonce_longer_than_the_limit_is_refused():
    """A nonce is at most MAX_NONCE_LENGTH characters of a plain alphabet, so the replay
    cache's memory stays bounded whatever a client sends."""
    secret, clock = "s" * 40, FakeClock()
    checker = rpc.SignatureChecker(secret, "Mumbai@127.0.0.1:9100", clock=clock)
    long_nonce = "a" * (rpc_signatures.MAX_NONCE_LENGTH + 1)
    headers = rpc.sign(secret, b"<body/>", checker.server_id, now=clock.now, nonce=long_nonce)
    assert "malformed nonce" in checker.problem(headers, b"<body/>")
    assert len(checker.nonces["student"]) == 0


# ---- account numbers (issue 18 item 8) ------------------------------------------------------

def test_a_branch_only_opens_numbers_the_api_accepts(branch_client):
    """After an account is opened as 999999999999 (the largest number the API takes), a
    branch still chooses numbers every other call accepts: the smallest free one from
    1001, never a 13-digit one; a 13-digit number is refused and changes nothing."""
    top = branch_client.call("open_account", "Top Number", "5", "999999999999")
    assert top["number"] == "999999999999"
    chosen = branch_client.call("open_account", "Next Customer", "7")
    assert chosen["number"] == "1003"                    # 1001 and 1002 are preloaded
    assert branch_client.call("deposit", chosen["number"], "1")["balance"] == "8.00"
    assert branch_client.call("account", top["number"])["balance"] == "5.00"
    before = branch_client.call("accounts")
    with pytest.raises(BankError) as err:
        branch_client.call("open_account", "Too Long", "1", "1000000000000")
    assert err.value.code == FaultCode.BAD_INPUT and "account number" in err.value.message
    assert branch_client.call("accounts") == before


def test_a_number_with_a_leading_zero_is_refused(branch_client):
    """An account number never starts with 0: "01001" would look like 1001 in a list,
    and a student who opened it could catch transfers meant for 1001. Refused with a
    sentence, nothing opened."""
    before = branch_client.call("accounts")
    for number in ("01001", "0"):
        with pytest.raises(BankError) as err:
            branch_client.call("open_account", "Look Alike", "1", number)
        assert err.value.code == FaultCode.BAD_INPUT and "starting with 0" in err.value.message
    assert branch_client.call("accounts") == before


def test_a_full_number_range_is_refused_with_a_sentence(tmp_path, monkeypatch):
    """When every number of the range is taken, opening one more is refused with one
    sentence and changes nothing (a tiny range stands in for 12 digits)."""
    monkeypatch.setattr(ledger_local, "LAST_NUMBER", 1003)
    ledger = ledger_module.Ledger(tmp_path / "Pune.db", "Pune")
    try:
        numbers = [ledger.open_account("Owner", 0)["number"] for _ in range(3)]
        assert numbers == ["1001", "1002", "1003"]
        with pytest.raises(BankError) as err:
            ledger.open_account("One Too Many", 0)
        assert "no free account number" in err.value.message
        assert ledger.count_accounts() == 3
    finally:
        ledger.close()


# ---- request ids at a branch (issue 18 items 7 and 9) -----------------------------------------

def test_a_branch_remembers_a_refusal_as_the_outcome_of_its_request_id(branch_client):
    """A local transfer refused for lack of funds stays refused when retried with the same
    request id, even after a deposit made it affordable: the first outcome is the only one."""
    with pytest.raises(BankError) as first:
        branch_client.call("transfer", "1002", "1001", "6000", "rid-poor")
    assert first.value.code == FaultCode.INSUFFICIENT_FUNDS
    branch_client.call("deposit", "1002", "2000")
    with pytest.raises(BankError) as again:
        branch_client.call("transfer", "1002", "1001", "6000", "rid-poor")
    assert (again.value.code, again.value.message) == (first.value.code, first.value.message)
    assert branch_client.call("account", "1002")["balance"] == "7000.00"


def test_open_account_with_a_request_id_opens_one_account(branch_client):
    """open_account(owner, initial, number, request_id): a retry with the same id answers
    the same account and opens no second one; the id reused for another opening is refused."""
    first = branch_client.call("open_account", "Meera Iyer", "500", "", "rid-open")
    again = branch_client.call("open_account", "Meera Iyer", "500", "", "rid-open")
    assert again == first
    assert [a["owner"] for a in branch_client.call("accounts")].count("Meera Iyer") == 1
    with pytest.raises(BankError) as err:
        branch_client.call("open_account", "Someone Else", "500", "", "rid-open")
    assert err.value.code == FaultCode.BAD_INPUT


# ---- request ids at the coordinator (issue 18 items 7 and 9) ----------------------------------

@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Mumbai and Delhi (preloaded: 1001 = 10000.00, 1002 = 5000.00) and a coordinator."""
    cluster = LocalCluster(home=tmp_path_factory.mktemp("proof"),
                           branches=("Mumbai", "Delhi")).start()
    yield cluster
    cluster.stop()


def _code(call, *args):
    with pytest.raises(BankError) as err:
        call(*args)
    return err.value.code


def test_one_request_id_is_one_operation_on_every_route(bank):
    """A request id used for a cross-branch transfer is refused for a local transfer and
    for a deposit (and so on, whichever route came first); the refusals change nothing."""
    coord = bank.coordinator()
    first = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "1.00", "rid-route")
    assert first["outcome"] == "committed"
    before = [coord.call("account", a) for a in ("Mumbai/1001", "Mumbai/1002", "Delhi/1001")]
    assert _code(coord.call, "transfer", "Mumbai/1001", "Mumbai/1002", "1.00",
                 "rid-route") == FaultCode.BAD_INPUT
    assert _code(coord.call, "deposit", "Delhi/1001", "1.00", "rid-route") == FaultCode.BAD_INPUT
    assert _code(coord.call, "open_account", "Delhi", "X", "1", "rid-route") == FaultCode.BAD_INPUT
    assert [coord.call("account", a) for a in ("Mumbai/1001", "Mumbai/1002", "Delhi/1001")] \
        == before
    assert coord.call("transfer", "Mumbai/1001", "Delhi/1002", "1.00", "rid-route") == first
    coord.call("deposit", "Delhi/1001", "2.00", "rid-deposit")
    assert _code(coord.call, "transfer", "Mumbai/1001", "Delhi/1002", "2.00",
                 "rid-deposit") == FaultCode.BAD_INPUT


def test_a_refused_local_transfer_stays_aborted_when_retried(bank):
    """A same-branch transfer aborted for lack of funds is answered "aborted" again when
    retried with its request id after a deposit, as a cross-branch one is: never re-run."""
    coord = bank.coordinator()
    coord.call("open_account", "Mumbai", "Poor Owner", "0", "rid-open-poor")
    poor = [a for a in coord.call("accounts", "Mumbai") if a["owner"] == "Poor Owner"][0]
    acct = f"Mumbai/{poor['number']}"
    first = coord.call("transfer", acct, "Mumbai/1001", "50", "rid-local-poor")
    assert first["outcome"] == "aborted"
    coord.call("deposit", acct, "100")
    again = coord.call("transfer", acct, "Mumbai/1001", "50", "rid-local-poor")
    assert (again["outcome"], again["reason"]) == ("aborted", first["reason"])
    assert coord.call("account", acct)["balance"] == "100.00"


def test_show_request_id_knows_local_operations(bank):
    """The coordinator remembers local operations by request id: transaction(REQUEST_ID)
    answers the outcome of a same-branch transfer and of a deposit (txid "", local)."""
    coord = bank.coordinator()
    coord.call("transfer", "Delhi/1001", "Delhi/1002", "3.00", "rid-show-local")
    shown = coord.call("transaction", "rid-show-local")
    assert (shown["txid"], shown["outcome"], shown["local"]) == ("", "committed", True)
    assert (shown["src"], shown["dst"], shown["amount"]) == ("Delhi/1001", "Delhi/1002", "3.00")
    assert [m["msg"] for m in shown["trace"]] == ["transfer", "done"]
    coord.call("deposit", "Delhi/1002", "4.00", "rid-show-deposit")
    assert coord.call("transaction", "rid-show-deposit")["outcome"] == "committed"


def test_open_through_the_coordinator_with_a_request_id_opens_once(bank):
    """open_account(branch, owner, initial, request_id) at the coordinator: a retry (as
    after a timeout) answers the same account and opens no second one."""
    coord = bank.coordinator()
    first = coord.call("open_account", "Delhi", "Retry Owner", "10", "rid-open-once")
    assert coord.call("open_account", "Delhi", "Retry Owner", "10", "rid-open-once") == first
    owners = [a["owner"] for a in coord.call("accounts", "Delhi")]
    assert owners.count("Retry Owner") == 1
