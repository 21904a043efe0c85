"""Lab 7: a partition between the coordinator and a branch that voted yes.

Goal: see that a network cut is not a crash: both sides keep running, but the
branch cannot learn the decision, so it holds the money and keeps asking; healing
the cut delivers the decision at once.
Read first: bank/coordinator_lab.py (partition, heal), bank/coordinator_service.py
(decision: a partitioned branch's questions are refused), bank/twopc.py (D4: the
decision is retried in the background), bank/core/participant.py (P6).

Scenario: Mumbai answers every 2PC call one second late (fault delay=1), so the
transfer stays open long enough to act. Delhi votes yes at once; then the
coordinator is cut off from Delhi (partition). Mumbai votes yes, the coordinator
forces commit and tells Mumbai; it cannot tell Delhi. The client already hears
"committed" (the decision is durable); Delhi is prepared, holds nothing on a credit,
but has not applied it, and its questions go unanswered. Heal: Delhi commits.

Steps:
  1. Run `python labs/lab07_partition.py --step --keep`.
  2. At the pause after the partition, read `FOLDER/logs/coordinator.log`: the partition line,
     and the commit to Delhi that could not be sent.
  3. Note what the client heard, and its `waiting_for`.
  4. After healing, find in the coordinator's log how quickly the decision was retried.

Questions: The client heard "committed" while Delhi had not applied anything: is
that a lie? What would the client see if Delhi had been the debit side? Delhi cannot
tell a partition from a dead coordinator: why does it not matter for what it does?

Run: python labs/lab07_partition.py [--step] [--keep]     Handout: labs/lab07_partition.md
"""

import threading

from labkit import BankError, expect, lab_cluster, passed, show, step, total_money, wait_until


def main():
    # Blocking, as 2PC alone has it: no asking the other branch here, even at a long
    # --step pause (that is cooperative termination, lab 15).
    with lab_cluster("lab07", branch_args=("--ask-every", "0.5",
                                             "--ask-peers-after", "3600")) as bank:
        coord, delhi = bank.coordinator(), bank.client("Delhi")
        before = total_money(bank)
        step("Arm delay=1 on Mumbai; start a transfer of 100 Mumbai/1001 -> Delhi/1002; "
             "the moment Delhi has voted yes, cut the coordinator off from Delhi.")
        bank.client("Mumbai").call("fault", "delay=1")
        heard = {}
        worker = threading.Thread(target=lambda: heard.update(coord.call(
            "transfer", "Mumbai/1001", "Delhi/1002", "100", "lab07-t1")))
        worker.start()
        wait_until(lambda: len(delhi.call("in_doubt")) == 1, "Delhi voted yes (it is prepared)")
        txid = delhi.call("in_doubt")[0]["txid"]
        coord.call("partition", "Delhi")     # no pause before: Mumbai votes within a second
        show("cut: the coordinator and Delhi no longer reach each other")
        worker.join(30)
        show(f"the client hears: {heard.get('outcome')} (waiting for {heard.get('waiting_for')})")
        expect(heard.get("outcome") == "committed", "the decision is commit, and durable")
        expect(bank.client("Mumbai").call("status", txid)["state"] == "committed",
               "Mumbai committed")

        step("Delhi is cut off: prepared, the credit not applied, its questions unanswered.")
        try:                                         # ask exactly as Delhi does, every 0.5 s
            coord.call("decision", txid, "Delhi")
            expect(False, "Delhi's question to be refused")
        except BankError as exc:
            show(f"decision({txid}, asker Delhi) -> {exc.message}")
        expect(delhi.call("status", txid)["state"] == "prepared", "Delhi is still prepared")
        expect(delhi.call("account", "1002")["balance"] == "5000.00", "Delhi/1002 is still 5000.00")

        step("Heal the partition: the coordinator retries the decision at once.")
        coord.call("heal", "Delhi")
        wait_until(lambda: delhi.call("status", txid)["state"] == "committed", "Delhi committed")
        expect(delhi.call("account", "1002")["balance"] == "5100.00", "Delhi/1002 is 5100.00")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    passed(7, "a partitioned yes voter waits, holding its promise; healing delivers the decision.")


if __name__ == "__main__":
    main()
