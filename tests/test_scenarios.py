"""Scenario files: every lab's scenario plays and grades as expected; bad files and wrong
expectations are reported line by line, never with a traceback.

Each scenario starts its own small cluster (real processes on loopback, ports from the
OS, a fresh temporary folder) and the runner removes the folder afterwards.
"""

import io
import pathlib

import pytest

from bank import scenario

SCENARIOS = sorted((pathlib.Path(__file__).resolve().parent.parent / "labs" / "scenarios")
                   .glob("*.ini"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_plays_as_written(path):
    """Every step of the lab's scenario goes as written and every expected balance and
    transaction state holds at the end: the grade is full marks."""
    out = io.StringIO()
    ok = scenario.run_file(path, out=out)
    text = out.getvalue()
    assert ok, text
    assert "FAIL" not in text
    total = len(scenario.Scenario(path).steps) + len(scenario.Scenario(path).expect)
    assert f"Grade: {total} of " in text and "see FAIL" not in text, text


def test_a_wrong_expectation_is_graded_fail_with_what_was_found(tmp_path):
    """A line that does not hold is marked FAIL with the value found; the others are still
    graded, and the scenario does not pass."""
    path = tmp_path / "wrong.ini"
    path.write_text("[steps]\nrun =\n    transfer Mumbai/1001 Delhi/1002 100 -> committed\n"
                    "    check Mumbai/1001 = 9000\n    check T1 on Delhi = committed\n"
                    "[expect]\nDelhi/1002 = 5100\ntotal = 30000\n")
    out = io.StringIO()
    assert scenario.run_file(path, out=out) is False
    text = out.getvalue()
    assert "FAIL  2. check Mumbai/1001 = 9000\n         expected 9000.00, found 9900.00" in text
    assert "--   check T1 on Delhi = committed   (not reached)" in text
    assert "ok   Delhi/1002 = 5100" in text and "ok   total = 30000" in text
    assert "Grade: 3 of 5 lines as expected" in text


def test_a_log_step_on_a_running_coordinator_is_refused_and_counts_are_graded(tmp_path):
    """The log steps touch the recovery log only while the coordinator is down: on a running
    one the step is FAIL with the reason and the log is left alone; a transfer's counters
    are graded with the number found."""
    path = tmp_path / "log.ini"
    path.write_text("[cluster]\nask_every = 3600\n"       # no decision query: it counts (N2)
                    "[steps]\nrun =\n    transfer Mumbai/1001 Delhi/1002 1 -> committed\n"
                    "    wait T1 on coordinator = committed\n    tear-log\n"
                    "[expect]\nT1 coordinator forced = 2\nT1 messages = 8\n"
                    "torn tail cut = 0\n")
    out = io.StringIO()
    assert scenario.run_file(path, out=out) is False
    text = out.getvalue()
    assert "FAIL  3. tear-log\n         the coordinator is running: kill it" in text
    assert "FAIL T1 coordinator forced = 2\n         expected 2, found 1" in text
    assert "ok   T1 messages = 8" in text and "ok   torn tail cut = 0" in text
    assert "Grade: 4 of 6 lines as expected" in text


def test_a_restart_expected_refused_that_starts_is_graded_fail(tmp_path):
    """`restart MEMBER -> refused` holds only if the member exits while starting; a
    coordinator that starts (its log is whole) is FAIL, and the member is a primary again,
    not refused."""
    path = tmp_path / "restart.ini"
    path.write_text("[steps]\nrun =\n    kill coordinator\n    check coordinator = down\n"
                    "    restart coordinator -> refused\n[expect]\ncoordinator = coordinator\n")
    out = io.StringIO()
    assert scenario.run_file(path, out=out) is False
    text = out.getvalue()
    assert "FAIL  3. restart coordinator -> refused\n         the restart of coordinator " \
           "was started, expected refused" in text
    assert "ok   coordinator = coordinator" in text


@pytest.mark.parametrize("text, sentence", [
    ("[steps]\nrun = tranfer Mumbai/1001 Delhi/1002 1\n", "is not a step"),
    ("[steps]\nrun = check Mumbai/1001 9000\n", "is not a check of the form KEY = VALUE"),
    ("[steps]\nrun = transfer Mumbai/1001 Delhi/1002 1 -> done\n", "the outcome must be one of"),
    ("[cluster]\nreplicas = two\n", "replicas must be a whole number"),
    ("[expect]\nthe money of Mumbai = 1\n", "is not a check this runner knows"),
    ("not an ini file\n", "cannot be read as an INI file"),
    ("[cluster]\npresumption = never\n", "presumption must be one of nothing, abort, commit"),
    ("[steps]\nrun = restart coordinator --fast\n", "the only option a restart takes"),
    ("[steps]\nrun = damage-log T1 vote\n", "the record must be one of begin, commit"),
])
def test_a_bad_file_is_refused_before_anything_starts(tmp_path, capsys, text, sentence):
    """A scenario file with a bad line is refused with one sentence naming the line, before
    any process is started, and the runner exits non-zero."""
    path = tmp_path / "bad.ini"
    path.write_text(text)
    assert scenario.main([str(path)]) == 1
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert not list(pathlib.Path(tmp_path).glob("bank-*"))
