"""The presumption switch, on real processes: the counters of each presumption against
the table of lab 14, and what a missing record means under each.

Each test starts its own cluster (coordinator and two branches on 127.0.0.1, ports
from the OS, SQLite files and a recovery log in tmp_path) with --presumption, and stops
it. Waiting is polling with a deadline (tests/polling.py).
"""

import importlib
import pathlib
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "labs"))

from bank.txn_counters import branch_writes                   # noqa: E402
from bank.errors import BankError                         # noqa: E402
from bank.local_cluster import LocalCluster               # noqa: E402
from bank.recovery_log import RecoveryLog                 # noqa: E402
from bank.twopc import check_branches_known, check_presumption   # noqa: E402
from bank.clock import txid_second                        # noqa: E402
from bank.core.coordinator import Presumption             # noqa: E402
from polling import wait_for                              # noqa: E402

lab14 = importlib.import_module("lab14_presumptions")


def run_case(bank, case: str) -> dict:
    """One transfer of lab 14's case, finished everywhere; its cells as the lab counts."""
    coord = bank.coordinator()
    result = coord.call("transfer", *lab14.CASES[case])
    outcome = "committed" if case == "commit" else "aborted"
    assert result["outcome"] == outcome
    txid = result["txid"]
    wait_for(lambda: coord.call("transaction", txid)["state"] == outcome and all(
        bank.client(b).call("status", txid)["state"] == outcome for b in ("Mumbai", "Delhi")),
        timeout=20, what=f"{txid} finished everywhere")
    counts = coord.call("transaction", txid)["counts"]
    writes = {b: branch_writes(bank.home / "data" / f"{b}.db", txid) for b in ("Mumbai", "Delhi")}
    return {"txid": txid, **lab14.as_cells({"counts": counts, "writes": writes})}


@pytest.mark.parametrize("presumption", lab14.PRESUMPTIONS)
def test_counters_of_each_presumption_match_the_lab_table(tmp_path, presumption):
    """C1-C13 with N1-N3: under each presumption, a committed and an aborted transfer
    cost exactly the writes (forced and not) and messages lab 14's table says, at the
    coordinator and at each branch."""
    with LocalCluster(home=tmp_path, coordinator_args=["--presumption", presumption]) as bank:
        for case in ("commit", "abort"):
            cells = run_case(bank, case)
            expected = lab14.KIT[(presumption, case)]
            assert (cells["coordinator"], cells["branch"]) == \
                (expected["coordinator"], expected["branch"]), (presumption, case, cells)
            if case == "abort":
                assert cells["no-voter"] == lab14.NO_VOTER_KIT


def test_presumed_commit_logs_no_end_and_presumes_commit_for_unknown_txids(tmp_path):
    """C11, C12: under presumed commit the begin record says so, a committed transfer has
    no end record (its forced commit finishes it), and a txid the coordinator has no
    record of is answered "committed"; under the default it is "aborted" (C8)."""
    with LocalCluster(home=tmp_path, coordinator_args=["--presumption", "commit"]) as bank:
        txid = run_case(bank, "commit")["txid"]
        lines = [l for l in (tmp_path / "logs" / "recovery.log").read_text().splitlines()
                 if txid in l]
        assert [l.split()[1] for l in lines] == ["begin", "commit"]
        assert '"presumption": "commit"' in lines[0]
        assert bank.coordinator().call("decision", "C1-unknown-txid")["decision"] == "committed"


def test_presumed_abort_log_reads_as_before_and_answers_aborted(tmp_path):
    """Presumed abort is unchanged: its begin record names no presumption, the
    transaction ends with an end record, and an unknown txid was aborted (C8)."""
    with LocalCluster(home=tmp_path) as bank:
        txid = run_case(bank, "commit")["txid"]
        lines = [l for l in (tmp_path / "logs" / "recovery.log").read_text().splitlines()
                 if txid in l]
        assert [l.split()[1] for l in lines] == ["begin", "commit", "end"]
        assert "presumption" not in lines[0]
        assert bank.coordinator().call("decision", "C1-unknown-txid")["decision"] == "aborted"


def test_a_log_naming_a_branch_the_coordinator_was_not_given_is_refused(tmp_path):
    """D6: a coordinator restarted without a branch that its log's unfinished transfers
    name refuses to start, in one sentence naming the branch and the option to add (it
    started, recovery failed with a traceback, and the transfer stayed committing for
    good, answering 500); a branch with nothing unfinished may be left out."""
    log = RecoveryLog(tmp_path / "recovery.log")
    log.begin("T1", {"branches": ["Delhi", "Mumbai"]})
    log.commit("T1")
    with pytest.raises(BankError) as refused:
        check_branches_known(log, {"Mumbai": None})
    message = refused.value.message
    assert "branch Delhi (T1)" in message and "--branch Delhi=URL" in message, message
    assert "\n" not in message
    check_branches_known(log, {"Mumbai": None, "Delhi": None})
    log.end("T1", "committed")
    check_branches_known(log, {"Mumbai": None})
    log.close()


def test_a_new_log_under_presumed_commit_never_presumes_what_the_old_one_left_in_doubt(
        tmp_path):
    """D6's condition for a new log, and C14, on real processes: Delhi voted no and the
    presumed-abort coordinator crashed before deciding; Mumbai holds its yes in doubt.
    Presumed commit is refused on that log (the sentence names the condition: no branch
    in doubt). A presumed-commit coordinator on a new log, against that condition,
    answers "in-doubt" for the old txid (C14), never "committed" (before: 7.00 left
    Mumbai and never reached Delhi); Mumbai then asks Delhi (P9) and aborts."""
    with LocalCluster(home=tmp_path, branch_args=("--ask-every", "0.3",
                                                  "--ask-peers-after", "0.5")) as bank:
        mumbai, delhi = bank.client("Mumbai"), bank.client("Delhi")
        delhi.call("fault", "vote-no")
        bank.coordinator().call("fault", "crash-after-prepare")
        with pytest.raises(BankError):
            bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "7")
        assert bank.members["coordinator"].wait_exit(10) == 86
        [held] = mumbai.call("in_doubt")
        with pytest.raises(RuntimeError) as refused:
            bank.start_member("coordinator", extra=("--presumption", "commit"))
        assert "only once no branch holds a transaction of this one in doubt" in \
            str(refused.value)
        assert "or with a new --log" not in str(refused.value)
        stamp = held["txid"].split("-")[1]      # a new log a second later, at least
        wait_for(lambda: txid_second(time.time()) > stamp, 3, "the txid's second to pass")
        new_log = tmp_path / "logs" / "new.log"
        bank.start_member("coordinator", extra=("--presumption", "commit", "--log", str(new_log)))
        assert bank.coordinator().call("decision", held["txid"])["decision"] == "in-doubt"
        wait_for(lambda: mumbai.call("status", held["txid"])["state"] == "aborted", 20,
                 "Mumbai to learn the abort from Delhi")
        assert mumbai.call("account", "1001")["balance"] == "10000.00"
        assert delhi.call("status", held["txid"])["state"] == "aborted"


def test_a_log_of_another_presumption_is_refused_with_one_sentence(tmp_path):
    """D6: a coordinator asked for one presumption refuses a recovery log that holds
    transactions of another (one sentence naming both), and accepts its own. It does not
    offer a new log as a way round without its condition (no branch in doubt)."""
    log = RecoveryLog(tmp_path / "recovery.log")
    log.begin("T1", {"branches": ["Mumbai"], "presumption": "commit"}, forced=True)
    log.commit("T1")
    with pytest.raises(BankError) as refused:
        check_presumption(log, Presumption.ABORT)
    assert "presumed commit" in refused.value.message and "\n" not in refused.value.message
    assert "or with a new --log" not in refused.value.message
    assert "only once no branch holds a transaction of this one in doubt" in \
        refused.value.message
    check_presumption(log, Presumption.COMMIT)
    assert log.outcome("T1") == "committed" and "T1" not in log.in_flight
    log.close()
