"""Lab 11: storage faults. A torn tail is cut; a damaged record stops the coordinator.

Goal: tell the two apart, as the recovery log does. A crash can only cut the LAST
write short (a torn tail): it was never acknowledged, so cutting it is safe (unless
it reads as the commit of a transaction in flight: then it is kept, Rule 6). A line
that was written whole and is wrong now (damage) may have been a commit that a
branch already applied: reading on as if it were absent would abort the other
branch, and money would appear out of nowhere.
Read first: bank/recovery_log.py (Rules 6 and 7), README "The recovery log".

Scenario:
  1. A torn tail: half a line at the end of logs/recovery.log (as a crash mid-write
     leaves it). The coordinator cuts it, says so in ping(), and serves.
  2. Damage: Delhi has committed a 7.00 credit, Mumbai holds the debit prepared, and
     the coordinator crashed (crash-mid-commit). One character of the commit record
     is changed, as a student with an editor might. The coordinator refuses to start,
     naming the line. With --accept-damaged-log it starts, shows the transaction in
     doubt, and Mumbai keeps waiting instead of aborting. Restoring the file lets
     recovery commit Mumbai: the bank's total is what it was.

Steps:
  1. Run `python labs/lab11_storage_faults.py --step --keep`.
  2. At the first pause, look at the end of `FOLDER/logs/recovery.log`: the torn half-line is gone.
  3. At the damage step, compare the changed line with the original (the lab prints it).
  4. Read the coordinator's refusal: it names the line. Then read how `--accept-damaged-log`
     keeps that transaction in doubt rather than presuming abort.
  5. Play the same lesson without Python:
     `python -m bank.scenario labs/scenarios/lab11_storage_faults.ini`. Its steps
     `tear-log` and `damage-log T1 commit` do to the log what this lab does by hand.

Questions: Why is cutting the torn tail safe, but skipping the damaged line not?
Which transactions must stay in doubt when a damaged line hides its txid?

Run: python labs/lab11_storage_faults.py [--step] [--keep]     Handout: labs/lab11_storage_faults.md
"""

from labkit import BankError, branch_total, expect, lab_cluster, passed, show, step, wait_until


def main():
    with lab_cluster("lab11", branch_args=("--ask-every", "0.3")) as bank:
        log_path = bank.home / "logs" / "recovery.log"
        before = branch_total(bank)

        step("A torn tail: half a line at the end of the log, then a restart.")
        bank.kill("coordinator")
        with open(log_path, "ab") as f:
            f.write(b"2026-11-25T13:01:02.999+00:00 commit C1-20261125T1301")
        bank.restart("coordinator")
        found = bank.coordinator().call("ping")["log"]
        show(f"ping()['log'] = {found}")
        expect(found["torn_tail_cut"] == 1 and not found["damaged"],
               "the torn tail was cut and reported, and nothing is called damage")

        step("Damage: Delhi commits a 7.00 credit, then the coordinator crashes.")
        coord = bank.coordinator()
        coord.call("fault", "crash-mid-commit")
        try:
            coord.call("transfer", "Mumbai/1001", "Delhi/1002", "7.00")
        except BankError as exc:
            show(f"the client hears: {exc.message}")
        expect(bank.members["coordinator"].wait_exit(10) == 86, "the coordinator crashed")
        [txn] = bank.client("Mumbai").call("in_doubt")
        txid = txn["txid"]
        original = log_path.read_bytes()
        lines = original.splitlines(keepends=True)
        i = next(k for k, raw in enumerate(lines) if raw.split()[1] == b"commit")
        show(f"line {i + 1} as written:    {lines[i].decode().rstrip()}")
        lines[i] = lines[i].replace(txid.encode(), txid[:-1].encode() + b"#", 1)
        log_path.write_bytes(b"".join(lines))
        show(f"one character changed: {lines[i].decode().rstrip()}")

        step("Restart the coordinator on the damaged log: it refuses, naming the line.")
        try:
            bank.start_member("coordinator")
            expect(False, "the coordinator to refuse a damaged log")
        except RuntimeError as exc:
            refusal = [t for t in str(exc).splitlines() if "damaged at line" in t]
            show(refusal[0] if refusal else str(exc)[-300:])
            expect(bool(refusal) and f"line {i + 1}:" in refusal[0],
                   "a refusal naming the changed line")
        expect(bank.client("Mumbai").call("status", txid)["state"] == "prepared",
               "Mumbai still holds the debit prepared (nothing was presumed aborted)")

        step("Start with --accept-damaged-log: the transaction is shown in doubt.")
        bank.start_member("coordinator", extra=("--accept-damaged-log",))
        coord = bank.coordinator()
        found = coord.call("ping")["log"]
        show(f"ping()['log'] = {found}")
        expect(txid in found["in_doubt"], f"{txid} is in doubt")
        expect(coord.call("decision", txid)["decision"] == "in-doubt",
               "decision() answers in-doubt, not aborted")
        wait_until(lambda: any(m["msg"] == "query" and m["from"] == "Mumbai"
                               for m in coord.call("transaction", txid)["trace"]),
                   "Mumbai asked for the decision")
        expect(bank.client("Mumbai").call("status", txid)["state"] == "prepared",
               "Mumbai keeps waiting, prepared")

        step("The operator restores the log; recovery commits Mumbai.")
        bank.kill("coordinator")
        log_path.write_bytes(original)
        bank.start_member("coordinator")
        wait_until(lambda: bank.client("Mumbai").call("status", txid)["state"] == "committed",
                   "Mumbai committed")
        expect(branch_total(bank) == before, f"the bank's total is unchanged ({before})")
    passed(11, "a torn tail is cut; damage stops the coordinator, and nothing is presumed.")


if __name__ == "__main__":
    main()
