"""The shell's files: its activity log, export of CSV files, and clear.

Like tests/test_shell.py (whose cluster fixture and helpers it uses): one local cluster
for the module, each test a fresh BankShell or a `python shell.py` subprocess; waiting is
polling with a deadline, never a bare sleep.
"""

import csv
import pathlib
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import activity  # noqa: E402
from shelltest import run  # noqa: E402
from polling import wait_configured  # noqa: E402
from test_shell import bank, sh, new_account  # noqa: E402,F401  (the module's cluster, helpers)

pytestmark = pytest.mark.slow


# ---- activity log, export, clear -------------------------------------------------------

def test_export_writes_csv_that_reads_back(sh, tmp_path):
    """export ACCT and export journal ACCT write CSV the csv module reads, with the right rows."""
    ref = new_account(sh, "Mumbai", "100")
    run(sh, f"deposit {ref} 5")
    run(sh, f"withdraw {ref} 1000")                       # refused: recorded as not ok
    assert "Wrote 3 activity rows" in run(sh, f"export {ref} {tmp_path / 'a.csv'}")
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["command"].split()[0], r["ok"]) for r in rows] == [
        ("open", "yes"), ("deposit", "yes"), ("withdraw", "no")]
    assert "Insufficient funds" in rows[2]["result"]
    run(sh, f"export journal {ref} {tmp_path / 'j.csv'}")
    with open(tmp_path / "j.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        journal = list(reader)
    assert tuple(reader.fieldnames) == activity.JOURNAL_FIELDS
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in journal] == [
        ("open", "100.00", "100.00"), ("deposit", "5.00", "105.00")]
    assert ref in run(sh, f"log {ref}")


def test_export_never_overwrites_a_file_unless_asked(sh, tmp_path):
    """An existing file is kept: a script is refused without --force; at the prompt the
    shell asks y/N; --force (or a yes) overwrites."""
    target = tmp_path / "kept.csv"
    target.write_text("precious\n", encoding="utf-8")
    out = run(sh, f"export all {target}")
    assert "already exists" in out and "--force" in out and out.count("\n") == 1
    assert target.read_text(encoding="utf-8") == "precious\n" and sh.failures == 1
    sh.interactive, sh.ask = True, lambda prompt: "n"
    assert "is kept as it was" in run(sh, f"export all {target}")
    assert target.read_text(encoding="utf-8") == "precious\n"
    sh.ask = lambda prompt: "y"
    assert "activity rows to" in run(sh, f"export all {target}")
    assert target.read_text(encoding="utf-8").startswith("ts,source,command")
    sh.interactive = False
    assert "Wrote" in run(sh, f"export journal Mumbai/1001 {target} --force")
    assert target.read_text(encoding="utf-8").startswith("seq,ts,branch")


def test_export_into_a_folder_that_does_not_exist_is_refused(sh, tmp_path):
    """A typo in a folder name is not silently turned into new folders: the export is
    refused in one sentence naming the folder, and nothing is created."""
    target = tmp_path / "no-such-folder" / "deeper" / "out.csv"
    out = run(sh, f"export journal all {target}")
    assert out.startswith("Not written: there is no folder") and out.count("\n") == 1, out
    assert str(target.parent) in out
    assert not (tmp_path / "no-such-folder").exists() and sh.failures == 1


def test_export_writes_only_csv_files_even_with_force(sh, tmp_path):
    """Rule E3: an export is a *.csv file; a program, a document or a system file is
    never replaced, even with --force (one sentence, the file as it was)."""
    for name in ("passwd", "notes.txt", "lab.py"):
        target = tmp_path / name
        target.write_text("precious\n", encoding="utf-8")
        out = run(sh, f"export all {target} --force")
        assert out.startswith("Not written:") and ".csv" in out and out.count("\n") == 1, out
        assert target.read_text(encoding="utf-8") == "precious\n"


def test_export_never_writes_a_servers_files_even_with_force(sh, bank):
    """The recovery log, a branch database and anything in data/ are never export targets."""
    recovery_log = bank.home / "logs" / "recovery.log"
    wait_configured(bank)        # the start's config lines: written by then, not meanwhile
    before = recovery_log.read_bytes()
    for target in (recovery_log, bank.home / "data" / "Mumbai.db",
                   bank.home / "data" / "new.csv", bank.home / "logs" / "activity.csv"):
        out = run(sh, f"export journal all {target} --force")
        assert out.startswith("Not written:") and out.count("\n") == 1, out
    assert recovery_log.read_bytes() == before
    assert not (bank.home / "data" / "new.csv").exists()
    assert "Mumbai/1001 (Asha Rao)" in run(sh, "balance Mumbai/1001")


def test_a_bare_export_name_goes_to_the_homes_logs_folder(sh, bank, tmp_path, monkeypatch):
    """`export all FILE` with a bare name writes HOME/logs/FILE, as the help says."""
    monkeypatch.chdir(tmp_path)
    name = f"bare-{tmp_path.name}.csv"
    assert "Wrote" in run(sh, f"export all {name}")
    assert (bank.home / "logs" / name).exists() and not (tmp_path / name).exists()


def test_export_journal_all_names_a_branch_that_is_down(sh, bank, tmp_path):
    """export journal all with a branch down writes what it can and says which is missing."""
    assert run(sh, "crash Delhi").startswith("Crashed Delhi")
    try:
        out = run(sh, f"export journal all {tmp_path / 'j.csv'}")
    finally:
        run(sh, "restart Delhi")
    assert "without the journals of Delhi" in out and sh.failures == 1, out
    with open(tmp_path / "j.csv", newline="", encoding="utf-8") as f:
        assert {r["branch"] for r in csv.DictReader(f)} == {"Mumbai"}


def test_write_csv_refuses_an_existing_file_unless_forced(tmp_path):
    """activity.write_csv keeps an existing file (force=False) and never writes a .db."""
    target = tmp_path / "x.csv"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(activity.ExportRefused) as refused:
        activity.write_csv([], target)
    assert refused.value.exists and target.read_text(encoding="utf-8") == "old"
    assert activity.write_csv([], target, force=True) == 0
    with pytest.raises(activity.ExportRefused) as refused:
        activity.write_csv([], tmp_path / "bank.db", force=True)
    assert not refused.value.exists and not (tmp_path / "bank.db").exists()
    assert activity.write_csv([], tmp_path / "out" / "activity.csv") == 0   # not a home's logs/


def test_clear_asks_first_and_keeps_the_journals(sh, bank):
    """clear needs a yes (or --yes in a script); it empties the activity log only."""
    ref = new_account(sh, "Delhi", "7")
    assert "Not cleared" in run(sh, "clear") and sh.failures == 1      # a script: no prompt
    sh.interactive, sh.ask = True, lambda prompt: "n"
    assert "Not cleared." in run(sh, "clear") and sh.activity.rows()

    def ctrl_c(prompt):
        raise KeyboardInterrupt
    sh.ask = ctrl_c                       # Ctrl-C at the question is a no, not "Interrupted"
    out = run(sh, "clear")
    assert "Not cleared." in out and "Interrupted" not in out and sh.activity.rows()
    sh.ask = lambda prompt: "y"
    assert "Cleared the activity log" in run(sh, "clear")
    assert sh.activity.rows() == []
    assert len(bank.coordinator().call("journal", ref, 10)) == 1


def test_a_request_too_large_to_read_is_an_error_not_an_unknown_outcome(sh, bank):
    """An opening whose owner name makes the request larger than a server reads (413) was
    refused before anything ran: the shell says Error with the server's reason and that
    nothing was done, never "Outcome not known ... may still take effect"; no account
    is opened."""
    before = len(bank.coordinator().call("accounts", "Mumbai"))
    out = run(sh, "open Mumbai " + "x" * 300_000 + " 5")
    assert out.startswith("Error: ") and "Request too large" in out, out[:300]
    assert "Nothing was done." in out and "Outcome not known" not in out, out[:300]
    assert len(bank.coordinator().call("accounts", "Mumbai")) == before
