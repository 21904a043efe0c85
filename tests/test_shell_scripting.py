"""The shell as a program: -c, scripts on stdin, its options and its own cluster.

Most tests run `python shell.py` as a subprocess, on the module's cluster (the fixture
of tests/test_shell.py) or on a home of their own that the shell starts and stops.
Waiting is polling with a deadline, never a bare sleep.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import config  # noqa: E402
from bank import local_cluster as cluster   # noqa: E402
from polling import wait_for  # noqa: E402
from test_shell import bank, sh, shell_cli  # noqa: E402,F401  (the module's cluster, helpers)

pytestmark = pytest.mark.slow


# ---- scripting ---------------------------------------------------------------------------

def test_dash_c_runs_commands_echoes_them_and_exits_zero(bank):
    """python shell.py -c "a; b" echoes each command after the prompt; all ok -> exit 0."""
    done = shell_cli(bank, "-c", "deposit Mumbai/1002 1; balance Mumbai/1002")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bank> deposit Mumbai/1002 1\nDeposited 1.00 into Mumbai/1002" in done.stdout
    assert "bank> balance Mumbai/1002\nMumbai/1002 (Vikram Shah)" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_script_on_stdin_exits_non_zero_when_a_command_fails(bank):
    """python shell.py < script runs every line, echoes comments, exits 1 if one failed."""
    script = "# a lab\nbalance Mumbai/9999\n\nbalance Mumbai/1001\n"
    done = shell_cli(bank, stdin=script)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "# a lab\nbank> balance Mumbai/9999\nError: There is no account" in done.stdout
    assert "bank> balance Mumbai/1001\nMumbai/1001 (Asha Rao)" in done.stdout


def test_a_piped_script_is_read_and_answered_in_utf8_whatever_the_platform(bank):
    """bank/console.py: a script piped into the shell is UTF-8, and so is what the shell
    writes to a pipe, even where Python's default for redirected streams is not (here
    PYTHONIOENCODING=cp1252, as on many Windows machines): an owner named in Devanagari
    is opened under its own name and listed, not a UnicodeDecodeError (nor a garbled
    name) before the first command."""
    script = "open Mumbai चाँद राव 5\naccounts Mumbai\n".encode("utf-8")   # ँ: byte 0x81
    done = subprocess.run([sys.executable, str(KIT / "shell.py"), "--home", str(bank.home)],
                          input=script, capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "cp1252"})
    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, out + done.stderr.decode("utf-8", "replace")
    ref = re.search(r"Opened (Mumbai/\d+)", out).group(1)
    assert bank.coordinator().call("account", ref)["owner"] == "चाँद राव"
    assert out.count("चाँद राव") >= 2


def test_the_client_address_comes_from_the_one_config_reader(tmp_path):
    """bank.config.coordinator_address: a coordinator on 0.0.0.0 is dialled on loopback, a
    relative secret_file is found beside the file, and a file without [coordinator] is
    refused with a sentence."""
    (tmp_path / "secret.txt").write_text("s" * 40, encoding="utf-8")
    ini = tmp_path / "cluster.ini"
    ini.write_text("[coordinator]\nhost = 0.0.0.0\nport = 9123\nsecret_file = secret.txt\n"
                   "[branches]\nMumbai = http://127.0.0.1:9100\n", encoding="utf-8")
    assert config.coordinator_address(ini) == ("http://127.0.0.1:9123",
                                               str(tmp_path / "secret.txt"))
    ini.write_text("[branches]\nMumbai = http://127.0.0.1:9100\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="Cannot read a \\[coordinator\\] section"):
        config.coordinator_address(ini)


def test_coordinator_option_attaches_by_url(bank):
    """--coordinator URL --secret-file F attaches to a running coordinator."""
    done = shell_cli(bank, "--coordinator", bank.coordinator_url, "--secret-file",
                     str(bank.secret_file), "-c", "branches")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Mumbai\s+http://127.0.0.1:\d+\s+up", done.stdout)
    assert "crash and restart are unavailable here" in done.stderr


def test_a_fresh_home_starts_a_cluster_runs_the_tour_and_stops_it(tmp_path):
    """With no cluster running, the shell starts one, runs labs/shell_tour.txt, stops it."""
    tour = (KIT / "labs" / "shell_tour.txt").read_text(encoding="utf-8")
    done = subprocess.run([sys.executable, str(KIT / "shell.py"), "--home", str(tmp_path)],
                          input=tour, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Starting a local cluster" in done.stderr and "Stopped the local cluster" in done.stderr
    assert done.stdout.count("Outcome: committed") == 2 and "All checks passed" in done.stdout
    assert cluster.running_cluster(tmp_path) is None


def test_a_shell_whose_cluster_was_stopped_from_outside_says_so_when_it_quits(tmp_path):
    """A shell that started the local cluster, which `cluster.py stop` then stopped while
    the shell ran, says so when it quits, instead of "Stopped the local cluster this
    shell started", and leaves nothing running. (A branch slowed with delay=3 keeps
    the shell's transfer, and so the shell, running while the cluster is stopped.)"""
    script = tmp_path / "script.txt"
    script.write_text("fault Mumbai delay=3\ntransfer Mumbai/1001 Delhi/1002 1\n")
    with script.open() as commands:
        shell_run = subprocess.Popen(
            [sys.executable, str(KIT / "shell.py"), "--home", str(tmp_path)],
            stdin=commands, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: cluster.running_cluster(tmp_path), 60, "the shell's cluster")
        cluster.stop_running(tmp_path)           # what `python cluster.py stop` does
        out, err = shell_run.communicate(timeout=60)
    finally:
        if shell_run.poll() is None:
            shell_run.kill()
    assert "was stopped already" in err, out + err
    assert "Stopped the local cluster this shell started" not in err
    assert cluster.running_cluster(tmp_path) is None


def test_quit_with_extra_words_is_a_usage_error_not_a_quit(sh):
    """`quit now` or `exit please` is refused like any command with extra words (it
    quit, and in a script skipped every command after it with exit status 0)."""
    for line in ("quit now", "exit please"):
        sh.stdout.seek(0)
        sh.stdout.truncate()
        assert not sh.onecmd(line)
        assert sh.stdout.getvalue().startswith("Usage: ")
    assert sh.onecmd("quit") and sh.onecmd("exit")
