"""Lab 3: a participant crashes right after voting yes.

Goal: see that a yes vote is a durable promise: it survives a crash of the voter.
Read first: bank/core/participant.py (rule P1), bank/ledger_2pc.py (prepare), bank/branch_service.py (prepare: where the fault sits).

Scenario: Delhi records "prepared" in SQLite and dies before its yes reaches the
coordinator (crash-after-vote). The coordinator hears nothing, so it decides abort.
Delhi restarts with the transaction still prepared (it never forgets a promise),
asks the coordinator, learns "aborted", and releases its side.

Questions: Why must Delhi not simply forget an unanswered prepare after a restart?
What would happen if the coordinator had received the yes just before the crash?

Run: python labs/lab3_participant_crash.py
"""

import pathlib
import sqlite3

from labkit import (LocalCluster, expect, format_amount, fresh_home, show, step, total_money,
                    wait_until)


def main():
    with LocalCluster(home=fresh_home("lab3"), branch_args=("--ask-every", "0.5")) as bank:
        coord, delhi = bank.coordinator(), bank.client("Delhi")
        before = total_money(bank)
        step("Arm crash-after-vote on Delhi; transfer 75 Delhi/1001 -> Mumbai/1002.")
        delhi.call("fault", "crash-after-vote")
        result = coord.call("transfer", "Delhi/1001", "Mumbai/1002", "75")
        show(f"the client hears: {result['outcome']} ({result['reason']})")
        expect(result["outcome"] == "aborted", "no vote arrived, so the coordinator aborted")
        expect(bank.members["Delhi"].wait_exit(10) == 86, "Delhi crashed on purpose")

        step("Delhi is down. Look inside its SQLite file: the promise is on disk.")
        db = sqlite3.connect(pathlib.Path(bank.home) / "data" / "Delhi.db")
        state = db.execute("SELECT state FROM txns WHERE txid=?", (result["txid"],)).fetchone()
        held = db.execute("SELECT held FROM accounts WHERE number='1001'").fetchone()
        db.close()
        show(f"txns row for {result['txid']}: {state[0]}; Delhi/1001 held: "
             f"{format_amount(held[0])}")
        expect(state[0] == "prepared", "the prepared record survived the crash")
        expect(held[0] == 7500, "75.00 is still held for it")

        step("Restart Delhi. It does not decide alone: it asks the coordinator, learns the "
             "decision and releases the hold.")
        bank.restart("Delhi")
        wait_until(lambda: delhi.call("status", result["txid"])["state"] == "aborted",
                   "Delhi aborted, as decided")
        expect(delhi.call("account", "1001")["held"] == "0.00", "nothing is held on Delhi/1001")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    print("\nLab 3 passed.")


if __name__ == "__main__":
    main()
