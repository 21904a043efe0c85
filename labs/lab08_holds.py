"""Lab 8: concurrency and holds. Prepared money cannot be spent twice.

Goal: see what a yes vote reserves. When a branch votes yes on a debit it puts the
amount on hold: the balance is unchanged, but the money is no longer available,
so a second transfer (or a withdrawal) that would need it is refused, at once,
instead of waiting for the first one to finish.
Read first: bank/core/participant.py (P1: vote yes only with the money held;
problem_with: the check a prepare must pass), bank/ledger.py (_require_available:
available = balance - held), bank/ledger_local.py (withdraw), bank/ledger_2pc.py (prepare:
the check and the hold in one SQLite write).

Scenario: Mumbai/1002 holds 5000.00. Delhi answers every 2PC call one second late
(fault delay=1), so transfer T1 of A (A from --seed, more than half of 5000.00) from
Mumbai/1002 stays open: Mumbai has voted yes and holds A. Meanwhile a second
transfer T2 of A from the same account is refused by Mumbai's no vote (only
5000.00 - A is free), a withdrawal of more than what is free is refused, and a
withdrawal of what is free succeeds. Then T1 commits.

Steps:
  1. Run `python labs/lab08_holds.py --step`, then again with `--seed 7`: the amounts
     change, the lesson does not.
  2. At the first pause, note balance, held and available for Mumbai/1002.
  3. At each next pause, predict the answer before pressing Enter.
  4. Read `bank/ledger.py` (`_require_available`) for where `available` is computed, and
     `problem_with` in `bank/core/participant.py` for where a prepare is refused.

Questions: Why does the branch refuse T2 rather than make it wait for T1? If T1 had
aborted, would T2 have been wrong to be refused? What would happen without holds
(check the balance at prepare time only)? Where exactly is "available" computed?

Run: python labs/lab08_holds.py [--step] [--seed N] [--keep]     Handout: labs/lab08_holds.md
"""

import threading

from labkit import (BankError, expect, format_amount, lab_cluster, passed, rng, show, step,
                    total_money, wait_until)


def main():
    amount = rng.randrange(2600, 4001, 100) * 100             # paise: more than half of 5000.00
    free = 500000 - amount
    text, free_text = format_amount(amount), format_amount(free)
    with lab_cluster("lab08") as bank:
        coord, mumbai = bank.coordinator(), bank.client("Mumbai")
        before = total_money(bank)
        step(f"Arm delay=1 on Delhi; start T1: {text} from Mumbai/1002 (5000.00) to Delhi/1001.")
        bank.client("Delhi").call("fault", "delay=1")
        first = {}
        worker = threading.Thread(target=lambda: first.update(coord.call(
            "transfer", "Mumbai/1002", "Delhi/1001", text)))
        worker.start()
        wait_until(lambda: mumbai.call("account", "1002")["held"] == text,
                   f"Mumbai voted yes on T1 and holds {text}")
        row = mumbai.call("account", "1002")
        show(f"Mumbai/1002: balance {row['balance']}, held {row['held']}: {free_text} is free")

        step(f"T2: the same {text} from the same account, while T1 is open.")
        second = coord.call("transfer", "Mumbai/1002", "Delhi/1001", text)
        show(f"the client hears: {second['outcome']} ({second['reason']})")
        expect(second["outcome"] == "aborted", "T2 aborted: Mumbai voted no, the money is held")

        step(f"Withdraw more than is free ({format_amount(free + 10000)}), then exactly {free_text}.")
        try:
            coord.call("withdraw", "Mumbai/1002", format_amount(free + 10000))
            expect(False, "the withdrawal to be refused")
        except BankError as exc:
            show(f"refused: {exc.message}")
        coord.call("withdraw", "Mumbai/1002", free_text)
        show(f"withdrew {free_text}")

        step("T1 finishes.")
        worker.join(30)
        show(f"T1: {first.get('outcome')}")
        expect(first.get("outcome") == "committed", "T1 committed")
        wait_until(lambda: mumbai.call("account", "1002")["held"] == "0.00",
                   "nothing is held any more")
        expect(mumbai.call("account", "1002")["balance"] == "0.00",
               "Mumbai/1002 is 0.00: T1 and the withdrawal, never more than it had")
        expect(total_money(bank) == format_amount(3000000 - free),
               f"the bank lost only the {free_text} withdrawn (before: {before})")
    passed(8, "a yes vote holds the money: a second spender is refused, never overdrawn.")


if __name__ == "__main__":
    main()
