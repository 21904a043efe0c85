"""Lab 3: a participant crashes right after voting yes.

Goal: see that a yes vote is a durable promise: it survives a crash of the voter.
Read first: ledger.py (prepare, the hold), branch.py (prepare: where the fault sits).

Scenario: Delhi records "prepared" in SQLite and dies before its yes reaches the
coordinator (crash-after-vote). The coordinator hears nothing, so it decides abort.
Delhi restarts with the transaction still prepared (it never forgets a promise),
asks the coordinator, learns "aborted", and releases its side.

Questions: Why must Delhi not simply forget an unanswered prepare after a restart?
What would happen if the coordinator had received the yes just before the crash?

Run: python labs/lab3_participant_crash.py
"""

from labkit import LocalCluster, expect, fresh_home, show, step, total_money, wait_until


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

        step("Restart Delhi: its promise survived the crash.")
        bank.restart("Delhi")
        status = delhi.call("status", result["txid"])
        show(f"Delhi's state for {result['txid']}: {status['state']}")
        expect(status["state"] in ("prepared", "aborted"), "the prepared record survived")

        step("Delhi learns the decision and releases the hold.")
        wait_until(lambda: delhi.call("status", result["txid"])["state"] == "aborted",
                   "Delhi aborted, as decided")
        expect(delhi.call("account", "1001")["held"] == "0.00", "nothing is held on Delhi/1001")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    print("\nLab 3 passed.")


if __name__ == "__main__":
    main()
