"""Lab 16: heuristic decisions. An operator forces an in-doubt branch; the audit shows the damage.

Goal: see why real systems let an operator end a long wait by hand (a heuristic
decision), and what it costs when the operator guesses wrong: the coordinator's
decision arrives later and differs, and the bank no longer adds up.
Read first: bank/core/participant.py (P8, P10, P11), bank/branch_termination.py
(heuristic), bank/ledger_audit.py (the heuristic rows of audit()), bank/views.py
(heuristic_rows: what `check` prints).

Scenario: the coordinator forces "commit" for a 7.00 transfer Mumbai/1001 ->
Delhi/1002 and dies before telling anyone (crash-after-decision). Both branches are
prepared: Mumbai holds 7.00, Delhi waits for its credit. The operator will not wait
and forces Delhi to abort (the shell's `heuristic Delhi TXID abort`): Delhi records
"aborted", marked heuristic. Mumbai asks Delhi and is told "in doubt": a heuristic
guess is not knowledge and is never passed on (P8). The coordinator restarts, reads
"commit" in its log and tells both: Mumbai applies the debit; Delhi cannot undo its
abort, so it records the coordinator's commit next to its heuristic abort (the
damage, P11) and acknowledges. The transfer is finished, and 7.00 has vanished: the
shell's `check` names the transaction, who decided what, and the money out of balance.

Steps:
  1. Run `python labs/lab16_heuristic.py --step --keep`.
  2. At the pause after the heuristic abort, read `SELECT txid, state, heuristic, told
     FROM txns` in `FOLDER/data/Delhi.db`, and the end of `FOLDER/logs/Delhi.log`.
  3. At the last pause (after the restart), in a second terminal run `python shell.py
     --home FOLDER`, type `check`, then `show TXID`: find Delhi's acknowledgement and
     what it says. Do it before pressing Enter: once the lab ends, its coordinator is
     gone, and with it the messages that `show` draws.
  4. In bank/core/participant.py, find why Delhi's abort was not told to Mumbai.

Questions: Who lost the 7.00, and who would have to repair it, by hand? Why does Delhi
acknowledge the commit instead of refusing it forever? Had the operator forced Delhi to
commit instead, what would the audit show? Why must Delhi answer Mumbai "in doubt", and
not "aborted", after its heuristic abort? When is a heuristic decision worth its risk?

Run: python labs/lab16_heuristic.py [--step] [--keep]     Handout: labs/lab16_heuristic.md
"""

import io

from labkit import (branch_total, expect, lab_cluster, passed, show, step,
                    transfer_expecting_a_crash, wait_until)
from bank import shell


def check_report(bank) -> str:
    """What the shell's `check` prints for this cluster (a shell run in this process)."""
    out = io.StringIO()
    sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret), bank,
                         bank.home, stdout=out)
    sh.onecmd("check")
    return out.getvalue()


def main():
    with lab_cluster("lab16", branch_args=("--ask-every", "0.3",
                                           "--ask-peers-after", "1")) as bank:
        mumbai, delhi = bank.client("Mumbai"), bank.client("Delhi")
        before = branch_total(bank)
        step(f"The bank holds {before}. The coordinator decides commit and dies at once.")
        bank.coordinator().call("fault", "crash-after-decision")
        transfer_expecting_a_crash(bank, "Mumbai/1001", "Delhi/1002", "7")
        [txn] = mumbai.call("in_doubt")
        txid = txn["txid"]
        expect(delhi.call("status", txid)["state"] == "prepared", "Delhi is prepared, in doubt")
        expect(mumbai.call("account", "1001")["held"] == "7.00", "Mumbai/1001 holds 7.00")

        step(f"The operator forces Delhi to abort (shell: heuristic Delhi {txid} abort).")
        done = delhi.call("heuristic", txid, "abort")
        expect(done["state"] == "aborted" and done["heuristic"] == "aborted",
               "Delhi recorded aborted, marked heuristic")
        expect(delhi.call("outcome", txid, "Mumbai")["outcome"] == "in-doubt",
               'asked by Mumbai, Delhi says "in-doubt": its guess is not passed on')
        expect(mumbai.call("status", txid)["state"] == "prepared", "Mumbai still waits")

        step("The coordinator restarts: its log says commit. Mumbai commits; Delhi cannot.")
        bank.restart("coordinator")
        wait_until(lambda: mumbai.call("status", txid)["state"] == "committed",
                   "Mumbai applied the commit")
        wait_until(lambda: delhi.call("status", txid)["told"] == "committed",
                   "Delhi recorded the coordinator's commit next to its heuristic abort")
        wait_until(lambda: bank.coordinator().call("transaction", txid)["state"] == "committed",
                   "the coordinator finished the transfer: every branch acknowledged")
        expect(mumbai.call("account", "1001")["balance"] == "9993.00", "Mumbai/1001 is 9993.00")
        expect(delhi.call("account", "1002")["balance"] == "5000.00",
               "Delhi/1002 is still 5000.00: the credit never came")

        step("The audit (the shell's `check`) shows the damage.")
        report = check_report(bank)
        for line in report.splitlines():
            if "heuristic" in line:
                show(" ".join(line.split()))
        expect("Delhi decided aborted (heuristic), the coordinator decided committed" in report,
               "check names the transaction and who decided what")
        expect("-7.00 across branches" in report, "check says 7.00 is missing across branches")
        expect(branch_total(bank) == "29993.00", "the bank holds 29993.00: 7.00 is gone")
    passed(16, "a heuristic decision ends a wait, and when it guesses wrong the money no longer adds up.")


if __name__ == "__main__":
    main()
