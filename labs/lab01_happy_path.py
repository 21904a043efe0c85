"""Lab 1: the happy path. A transfer between two branches, read in the logs.

Goal: follow one Two-Phase Commit from start to end in the four places it leaves a
trace: the coordinator's recovery log, each branch's process log, each branch's
journal, and the coordinator's message trace (the diagram the shell draws).
Read first: the README's section "Two-Phase Commit in this kit",
bank/core/messages.py (the vocabulary), bank/core/coordinator.py (C1-C4),
bank/core/participant.py (P1, P3).

Scenario: transfer an amount (from --seed) from Mumbai/1001 to Delhi/1002. The
coordinator writes "begin", asks both branches to prepare, each holds or reserves
the money and votes yes, the coordinator forces "commit" to disk, tells both, and
writes "end" once both acknowledged. Then a deposit, which is local: no 2PC at all.

Steps:
  1. Run `python labs/lab01_happy_path.py --step --keep`. It prints its folder: note it.
  2. At each pause, open the file the step names in the folder (`logs/recovery.log`,
     `logs/Mumbai.log`, `logs/Delhi.log`) in an editor or with `cat`, and find the txid.
  3. In a second terminal, attach the shell to the lab's cluster while it runs:
     `python shell.py --home FOLDER`, then `show last` and `journal Mumbai/1001`.
  4. After the lab its cluster is stopped and the files stay (because of `--keep`):
     `python shell.py --home FOLDER` would start a new cluster on them, with the same
     accounts and logs. Delete the folder when you are done.

Questions: Which of the three recovery-log records is forced (fsynced) and why is it
the only one? In the trace, what happens between the last vote and the first commit?
Why does the deposit leave no line in logs/recovery.log?

Run: python labs/lab01_happy_path.py [--step] [--seed N] [--keep]     Handout: labs/lab01_happy_path.md
"""

from labkit import (expect, format_amount, lab_cluster, passed, rng, show, show_log, step,
                    total_money)


def branch_log_lines(bank, name: str, txid: str) -> list:
    """The lines of logs/NAME.log that mention txid (a branch's own narration)."""
    text = (bank.home / "logs" / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if txid in line]


def main():
    with lab_cluster("lab01") as bank:
        coord = bank.coordinator()
        before = total_money(bank)
        amount = format_amount(rng.randrange(1, 500) * 100)        # whole rupees, from --seed
        step(f"The bank holds {before} in all. Transfer {amount} from Mumbai/1001 to Delhi/1002.")
        result = coord.call("transfer", "Mumbai/1001", "Delhi/1002", amount)
        txid = result["txid"]
        show(f"the client hears: {result['outcome']}   txid {txid}")
        expect(result["outcome"] == "committed", "the transfer committed")

        step("The coordinator's recovery log: begin, commit (forced), end.")
        show_log(bank, txid)
        kinds = [line.split()[1] for line in (bank.home / "logs" / "recovery.log")
                 .read_text(encoding="utf-8").splitlines() if txid in line]
        expect(kinds == ["begin", "commit", "end"], "three records: begin, commit, end")

        step("The messages, in order (what `show last` draws in the shell).")
        for m in coord.call("transaction", txid)["trace"]:
            show(f"+{m['ms']:>3} ms  {m['from']:>11} -> {m['to']:<11} {m['msg']:<8} {m['detail']}")

        step("Each branch's own log (logs/Mumbai.log, logs/Delhi.log): prepare, vote, commit.")
        for name in ("Mumbai", "Delhi"):
            lines = branch_log_lines(bank, name, txid)
            for line in lines:
                show(f"{name}: {line}")
            expect(len(lines) == 2, f"{name} logged its vote and its commit")

        step("Each branch's journal: the money moved once, under the txid.")
        for name, number in (("Mumbai", "1001"), ("Delhi", "1002")):
            row = bank.client(name).call("journal", number)[-1]
            show(f"{name}/{number}: {row['kind']} {row['amount']} -> balance {row['balance_after']}")
            expect(row["txid"] == txid, f"{name}'s journal names {txid}")
        expect(total_money(bank) == before, f"money is conserved ({before})")

        step("A deposit is local to one branch: no prepare, no vote, no recovery-log record.")
        log = bank.home / "logs" / "recovery.log"
        lines_before = len(log.read_text(encoding="utf-8").splitlines())
        coord.call("deposit", "Mumbai/1002", "25")
        lines_after = len(log.read_text(encoding="utf-8").splitlines())
        expect(lines_after == lines_before, "the recovery log did not grow")
    passed(1, "one transfer, read in the recovery log, the trace, the branches' logs and journals.")


if __name__ == "__main__":
    main()
