"""Lab 15: cooperative termination. A blocked branch asks the other branches.

Goal: see a branch in doubt, cut off from its dead coordinator, end its wait by
asking the other participant of the transaction; and see the case where asking does
not help, because nobody but the dead coordinator knows the decision.
Read first: bank/core/participant.py (P6, P8, P9), bank/branch_termination.py (T1-T4:
resolve_in_doubt, _ask_peers, outcome), bank/twopc_rounds.py (_participants: the
participants a prepare names).

Scenario: the branches here ask their peers after 1 s of coordinator silence
(--ask-peers-after 1; the default is 30 s). First transfer (7.00, Mumbai/1001 ->
Delhi/1002): the coordinator forces "commit", tells Delhi, and dies (crash-mid-commit).
Mumbai is prepared and holds 7.00; the coordinator does not answer, so Mumbai asks
Delhi, which committed: "Delhi says committed". Mumbai commits, the coordinator still
down. Second transfer (8.00, Mumbai/1002 -> Delhi/1001): the coordinator dies right
after forcing "commit", before telling anyone (crash-after-decision). Both branches
are prepared; each asks the other; each answers "in doubt too". Nobody knows, so both
keep waiting and keep their holds (P6). Third: Delhi is asked about a transaction it
never voted on: it records "aborted" first, answers "aborted", and a prepare arriving
late gets a no (P8). Last, the coordinator restarts and finishes the second transfer.

Steps:
  1. Run `python labs/lab15_cooperative_termination.py --step --keep`.
  2. At each pause, read the end of `FOLDER/logs/Mumbai.log` and `FOLDER/logs/Delhi.log`:
     find the lines "asking Delhi about ..." and "Delhi answers ...".
  3. Open `FOLDER/data/Mumbai.db` and read `SELECT txid, state, peers FROM txns`: where
     did Mumbai learn whom to ask?
  4. In bank/core/participant.py, find the row that makes Delhi record "aborted" before
     answering a question about a transaction it never saw.

Questions: Why may Mumbai commit on Delhi's word, although Delhi is not the coordinator?
In the second transfer, why does asking not help, and what would have to be different
for it to help? Why must a branch that has not voted record "aborted" before answering,
and not just answer "I have not voted"? Why does a branch wait some seconds
(--ask-peers-after) before asking its peers, instead of asking them at once?

Run: python labs/lab15_cooperative_termination.py [--step] [--keep]     Handout: labs/lab15_cooperative_termination.md
"""

from labkit import (branch_total, expect, lab_cluster, passed, show, step,
                    transfer_expecting_a_crash, wait_until)


def crash_during(bank, fault: str, src: str, dst: str, amount: str) -> str:
    """Arm `fault` at the coordinator, transfer, see it crash; the txid Mumbai holds."""
    bank.coordinator().call("fault", fault)
    transfer_expecting_a_crash(bank, src, dst, amount)
    [txn] = bank.client("Mumbai").call("in_doubt")
    return txn["txid"]


def narration(bank, name: str, txid: str, words: str) -> list:
    """The lines of a branch's log about txid that contain `words` (its BR5/T3 narration)."""
    text = (bank.home / "logs" / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    return [line.split(" INFO ", 1)[-1] for line in text.splitlines()
            if txid in line and words in line]


def main():
    with lab_cluster("lab15", branch_args=("--ask-every", "0.3",
                                           "--ask-peers-after", "1")) as bank:
        mumbai, delhi = bank.client("Mumbai"), bank.client("Delhi")
        before = branch_total(bank)
        step(f"The bank holds {before}. The coordinator dies after telling only Delhi to commit.")
        t1 = crash_during(bank, "crash-mid-commit", "Mumbai/1001", "Delhi/1002", "7")
        expect(delhi.call("status", t1)["state"] == "committed", "Delhi committed")
        expect(mumbai.call("status", t1)["peers"] == ["Delhi"],
               "Mumbai knows the other participant from the prepare: Delhi")

        step("Mumbai cannot reach the coordinator, so it asks Delhi, and learns the outcome.")
        wait_until(lambda: mumbai.call("status", t1)["state"] == "committed",
                   "Mumbai committed on Delhi's word")
        expect(not bank.members["coordinator"].alive, "the coordinator is still down")
        for line in narration(bank, "Mumbai", t1, f"asking Delhi about {t1}"):
            show(f"Mumbai.log: {line}")
        expect(mumbai.call("account", "1001")["held"] == "0.00", "Mumbai/1001 holds nothing")
        expect(branch_total(bank) == before, f"the total is right ({before}) without the coordinator")

        step("Second transfer: the coordinator dies after deciding, before telling anyone.")
        bank.restart("coordinator")
        t2 = crash_during(bank, "crash-after-decision", "Mumbai/1002", "Delhi/1001", "8")
        wait_until(lambda: narration(bank, "Mumbai", t2, "nobody knows the outcome"),
                   "Mumbai asked Delhi, and nobody knows the outcome")
        for line in narration(bank, "Mumbai", t2, "asking Delhi")[:1]:
            show(f"Mumbai.log: {line}")
        expect(mumbai.call("status", t2)["state"] == "prepared" and
               delhi.call("status", t2)["state"] == "prepared", "both are still prepared")
        expect(mumbai.call("account", "1002")["held"] == "8.00", "Mumbai/1002 still holds 8.00")

        step("Delhi is asked about a transaction it never voted on: it aborts it first.")
        late = "T-lab15-never-prepared"
        answer = delhi.call("outcome", late, "Mumbai")["outcome"]
        expect(answer == "aborted", 'Delhi answers "aborted"')
        expect(delhi.call("status", late)["state"] == "aborted", "and has recorded it aborted")
        vote = delhi.call("prepare", late, bank.coordinator_url,
                          [{"account": "1001", "delta": "-1.00"}])
        expect(vote["vote"] == "no", f"a prepare arriving late votes no ({vote['reason']})")

        step("The coordinator restarts: its log says commit, so both apply the second transfer.")
        bank.restart("coordinator")
        wait_until(lambda: mumbai.call("status", t2)["state"] == "committed" and
                   delhi.call("status", t2)["state"] == "committed", "both committed")
        expect(branch_total(bank) == before, f"the total is right ({before})")
    passed(15, "a branch in doubt may learn the outcome from another branch, but only if one knows it.")


if __name__ == "__main__":
    main()
