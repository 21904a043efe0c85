"""Lab 3: a branch crashes before, then after, its vote.

Goal: see that a branch may forget a transaction it never voted on, but that a yes
vote is a durable promise: it survives a crash of the voter.
Read first: bank/core/participant.py (rules P1 and P6), bank/ledger_2pc.py (prepare),
bank/branch_service.py (prepare_step: where the two fault points sit).

Scenario:
  1. Delhi dies in prepare BEFORE it records anything (crash-before-vote). The
     coordinator hears no vote and aborts. Restarted, Delhi has nothing prepared,
     nothing held, nothing to ask: a branch that never voted may forget.
  2. Delhi records "prepared" in SQLite and dies before its yes reaches the
     coordinator (crash-after-vote). The coordinator hears nothing, so it decides
     abort. Delhi, down, still holds the money in its SQLite file. Restarted, it
     does not decide alone: it asks the coordinator, learns "aborted", and releases.

Steps:
  1. Run `python labs/lab03_branch_crash.py --step --keep`.
  2. At the pause after the second crash (Delhi is down), open Delhi's database yourself:
     `sqlite3 FOLDER/data/Delhi.db "SELECT txid, state FROM txns"` (or Python's `sqlite3`).
  3. Read `FOLDER/logs/Delhi.log` after the restart: find the line where Delhi learns the
     decision ("termination: learned aborted").
  4. Compare with case 1: Delhi crashed with no `txns` row for it (the lab printed "no
     record"). Look at its row now: after the restart the coordinator told it "abort"
     again, and Delhi recorded it for a txid it had never seen. Why is that safe?

Questions: Why must Delhi not simply forget an unanswered prepare after a restart?
What would happen if the coordinator had received the yes just before the crash?
Why is forgetting safe in case 1 but not in case 2?

Run: python labs/lab03_branch_crash.py [--step] [--keep]     Handout: labs/lab03_branch_crash.md
"""

import sqlite3

from labkit import expect, format_amount, lab_cluster, passed, show, step, total_money, wait_until


def txn_on_disk(bank, txid: str) -> tuple:
    """(state of txid, held on Delhi/1001 in paise), read from Delhi's SQLite file itself."""
    db = sqlite3.connect(bank.home / "data" / "Delhi.db")
    try:
        state = db.execute("SELECT state FROM txns WHERE txid=?", (txid,)).fetchone()
        held = db.execute("SELECT held FROM accounts WHERE number='1001'").fetchone()
    finally:
        db.close()
    return (state[0] if state else "no record"), held[0]


def crash_and_transfer(bank, point: str, amount: str) -> dict:
    """Arm `point` on Delhi, transfer Delhi/1001 -> Mumbai/1002; Delhi dies on purpose."""
    bank.client("Delhi").call("fault", point)
    result = bank.coordinator().call("transfer", "Delhi/1001", "Mumbai/1002", amount)
    show(f"the client hears: {result['outcome']} ({result['reason']})")
    expect(result["outcome"] == "aborted", "no vote arrived, so the coordinator aborted")
    expect(bank.members["Delhi"].wait_exit(10) == 86, "Delhi crashed on purpose")
    return result


def main():
    with lab_cluster("lab03", branch_args=("--ask-every", "0.5")) as bank:
        delhi = bank.client("Delhi")
        before = total_money(bank)
        step("Before the vote: arm crash-before-vote on Delhi; transfer 50 Delhi/1001 -> Mumbai/1002.")
        first = crash_and_transfer(bank, "crash-before-vote", "50")
        state, held = txn_on_disk(bank, first["txid"])
        show(f"Delhi's SQLite file: {first['txid']}: {state}; Delhi/1001 held: {format_amount(held)}")
        expect(state == "no record" and held == 0, "Delhi promised nothing, so it has nothing to keep")
        bank.restart("Delhi")
        expect(delhi.call("in_doubt") == [], "restarted, Delhi has nothing in doubt: it may forget")
        wait_until(lambda: delhi.call("status", first["txid"])["state"] == "aborted",
                   "the coordinator told it abort again, and Delhi recorded it "
                   "(the handout's step 4 asks why that is safe)")

        step("After the vote: arm crash-after-vote on Delhi; transfer 75 Delhi/1001 -> Mumbai/1002.")
        result = crash_and_transfer(bank, "crash-after-vote", "75")

        step("Delhi is down. Look inside its SQLite file: the promise is on disk.")
        state, held = txn_on_disk(bank, result["txid"])
        show(f"txns row for {result['txid']}: {state}; Delhi/1001 held: {format_amount(held)}")
        expect(state == "prepared", "the prepared record survived the crash")
        expect(held == 7500, "75.00 is still held for it")

        step("Restart Delhi. It does not decide alone: it asks the coordinator, learns the "
             "decision and releases the hold.")
        bank.restart("Delhi")
        wait_until(lambda: delhi.call("status", result["txid"])["state"] == "aborted",
                   "Delhi aborted, as decided")
        expect(delhi.call("account", "1001")["held"] == "0.00", "nothing is held on Delhi/1001")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    passed(3, "before its vote a branch may forget; after a yes vote it must keep its promise.")


if __name__ == "__main__":
    main()
