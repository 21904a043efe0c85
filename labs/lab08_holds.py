"""Lab 8: concurrency and holds. Prepared money cannot be spent twice.

Goal: see what a yes vote reserves. When a branch votes yes on a debit it puts the
amount on hold: the balance is unchanged, but the money is no longer available,
so a second transfer (or a withdrawal) that would need it is refused, at once,
instead of waiting for the first one to finish.
Read first: bank/core/participant.py (P1: vote yes only with the money held;
problem_with: the check a prepare must pass), bank/ledger.py (_require_available:
available = balance - held), bank/ledger_local.py (withdraw), bank/ledger_2pc.py (prepare:
the check and the hold in one SQLite write).

Scenario: Mumbai/1002 holds 5000.00. Delhi answers every 2PC call three seconds late
(fault delay=3, well within the coordinator's 5 s wait for a vote), so transfer T1 of A (A
from --seed, more than half of 5000.00) from Mumbai/1002 to Delhi stays open: Mumbai
has voted yes and holds A. Meanwhile a second transfer T2 of A from the same account
(to a third branch, Chennai, which answers at once) is refused by Mumbai's no vote
(only 5000.00 - A is free), a withdrawal of more than what is free is refused, and a
withdrawal of what is free succeeds. Then T1 commits.

Steps:
  1. Run `python labs/lab08_holds.py --step`, then again with `--seed 7`: the amounts
     change, the lesson does not.
  2. At the first pause, predict what T2 and the two withdrawals will get (T1 is not
     started yet). The lab does not pause while T1 is open: Mumbai holds the money
     about three seconds (until Delhi's late vote), and the client hears T1's outcome
     about three seconds after that (Delhi acknowledges the commit late too).
  3. Compare the printed balance, held and free amounts with your prediction, and
     find the words "held by" in the refusals: the hold, not the balance, refused them.
  4. Read `bank/ledger.py` (`_require_available`) for where `available` is computed, and
     `problem_with` in `bank/core/participant.py` for where a prepare is refused.

Questions: Why does the branch refuse T2 rather than make it wait for T1? If T1 had
aborted, would T2 have been wrong to be refused? What would happen without holds
(check the balance at prepare time only)? Where exactly is "available" computed?

Run: python labs/lab08_holds.py [--step] [--seed N] [--keep]     Handout: labs/lab08_holds.md
"""

import threading

from labkit import (BankError, expect, format_amount, lab_cluster, minor, passed, pause, rng,
                    show, step, total_money, wait_until)


def main():
    with lab_cluster("lab08", branches=("Mumbai", "Delhi", "Chennai")) as bank:
        amount = rng.randrange(2600, 4001, 100) * 100     # paise: more than half of 5000.00
        free = 500000 - amount                             # (drawn once --seed is read)
        text, free_text = format_amount(amount), format_amount(free)
        coord, mumbai = bank.coordinator(), bank.client("Mumbai")
        before = total_money(bank)
        step("Arm delay=3 on Delhi. Next, with no pause while it is open: T1, "
             f"{text} from Mumbai/1002 (5000.00) to Delhi/1001.")
        pause(f"predict what T2 ({text} more) and the withdrawals will get; T1 starts next")
        bank.client("Delhi").call("fault", "delay=3")
        first = {}
        worker = threading.Thread(target=lambda: first.update(coord.call(
            "transfer", "Mumbai/1002", "Delhi/1001", text)))
        worker.start()
        wait_until(lambda: mumbai.call("account", "1002")["held"] == text,
                   f"Mumbai voted yes on T1 and holds {text}")
        row = mumbai.call("account", "1002")
        show(f"Mumbai/1002: balance {row['balance']}, held {row['held']}: {free_text} is free")

        step(f"T2: the same {text} from the same account to Chennai/1001, while T1 is open.",
             wait=False)
        second = coord.call("transfer", "Mumbai/1002", "Chennai/1001", text)
        show(f"the client hears: {second['outcome']} ({second['reason']})")
        expect(second["outcome"] == "aborted" and "held by" in second["reason"],
               "T2 aborted: Mumbai voted no, the money is held")

        step(f"Withdraw more than is free ({format_amount(free + 10000)}), then exactly "
             f"{free_text}, while T1 is open.", wait=False)
        try:
            coord.call("withdraw", "Mumbai/1002", format_amount(free + 10000))
            expect(False, "the withdrawal to be refused")
        except BankError as exc:
            show(f"refused: {exc.message}")
            expect("held by" in exc.message, "refused: the held money is not available")
        coord.call("withdraw", "Mumbai/1002", free_text)
        show(f"withdrew {free_text}")
        expect(mumbai.call("account", "1002")["held"] == text, f"T1 still holds {text}")

        step("T1 finishes: Delhi acknowledges the commit three seconds late too, so its "
             "outcome comes about six seconds after it began.")
        worker.join(30)
        show(f"T1: {first.get('outcome')}")
        expect(first.get("outcome") == "committed", "T1 committed")
        wait_until(lambda: mumbai.call("account", "1002")["held"] == "0.00",
                   "nothing is held any more")
        expect(mumbai.call("account", "1002")["balance"] == "0.00",
               "Mumbai/1002 is 0.00: T1 and the withdrawal, never more than it had")
        expect(total_money(bank) == format_amount(minor(before) - free),
               f"the bank lost only the {free_text} withdrawn (before: {before})")
    passed(8, "a yes vote holds the money: a second spender is refused, never overdrawn.")


if __name__ == "__main__":
    main()
