"""Bad command lines of the kit's programs (branch.py, coordinator.py, cluster.py).

Rule checked: a program given a bad option value, a folder where a file belongs, or a
configuration file it cannot read stops at once with a non-zero exit and one sentence
naming what is wrong; it prints no traceback, never says it is serving, and leaves no
database behind that remembers the bad value.

Each program runs in its own scratch folder (tmp_path) with --port 0, so nothing here
binds a default port; one that starts serving by mistake is killed by the pid we
started, and the test fails.
"""

import pathlib
import subprocess
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent


def run_program(folder: pathlib.Path, script: str, *args) -> tuple:
    """(exit code, stdout, stderr) of `python SCRIPT ARGS` run in `folder`."""
    proc = subprocess.Popen([sys.executable, str(KIT / script), *args], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()                                # by the pid we started
        out, err = proc.communicate()
        pytest.fail(f"BUG: {script} {' '.join(args)} kept running: {out[-300:]}")
    return proc.returncode, out, err


def assert_refused(folder, script, *args, says: str) -> str:
    """The program refuses its command line: non-zero exit, no traceback, not serving,
    and the last line of what it printed says `says`."""
    code, out, err = run_program(folder, script, *args)
    last = (err.strip() or out.strip()).splitlines()[-1]
    assert code != 0, (out, err)
    assert "serving at" not in out, out
    assert "Traceback" not in err, err
    assert says in last, last
    return last


# ---- branch.py ---------------------------------------------------------------------------

@pytest.mark.parametrize("option, url, says", [
    ("--replica-of", "notaurl", "must start with http://"),
    ("--replica-of", "ftp://x", "must start with http://"),
    ("--replica-of", "http://127.0.0.1:99999", "with its port"),
    ("--coordinator", "http://x:y", "with its port"),
])
def test_a_branch_refuses_a_bad_url_before_opening_its_database(tmp_path, option, url, says):
    """A branch started with a URL that cannot be dialled (--replica-of, --coordinator)
    stops with one sentence before it opens its database. (It accepted them: a replica
    remembers the primary it was started to follow, so `--replica-of notaurl` stayed in
    its database and it retried "invalid literal for int()" for ever, even when started
    again without the option.)"""
    db = tmp_path / "data" / "Mumbai.db"
    assert_refused(tmp_path, "branch.py", "--name", "Mumbai", "--port", "0", "--db", str(db),
                   option, url, says=says)
    assert not db.exists()


@pytest.mark.parametrize("script, args", [
    ("branch.py", ["--name", "Mumbai", "--db", "data/Mumbai.db"]),
    ("coordinator.py", ["--log", "logs/recovery.log", "--branch", "Mumbai=http://127.0.0.1:1"]),
])
def test_a_folder_as_the_url_file_is_refused_before_serving(tmp_path, script, args):
    """--url-file naming a folder is refused before the server starts, with a sentence.
    (It was a traceback, IsADirectoryError, after the program had said it was serving.)"""
    (tmp_path / "a-folder").mkdir()
    assert_refused(tmp_path, script, *args, "--port", "0", "--url-file", "a-folder",
                   says="is a folder; give a file name")


# ---- coordinator.py --config (bank/config.py, the one reader of cluster.ini) ---------------

BRANCHES = "[branches]\nMumbai = http://127.0.0.1:1\n"
CONFIGS = {
    "not-utf-8": (b"[branches]\nMumbai = http://127.0.0.1:1\n# \xff\xfe\n", "is not UTF-8 text"),
    "no-section": (b"garbage\n", "comes before any [section]"),
    "name-twice": (BRANCHES.encode() + b"Mumbai = http://127.0.0.1:2\n", "is given twice"),
    "section-twice": ((BRANCHES * 2).encode(), "is given twice"),
    "percent-sign": (b"[coordinator]\nport = 0\nname = C%(x)s\n" + BRANCHES.encode(),
                     "1 to 16 letters"),             # read as written, then refused as a name
    "port-not-a-number": (b"[coordinator]\nport = abc\n" + BRANCHES.encode(), "is not a port"),
    "port-too-big": (b"[coordinator]\nport = 99999\n" + BRANCHES.encode(), "is not a port"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_config_file_the_coordinator_cannot_read_is_refused_in_a_sentence(tmp_path, case):
    """A cluster.ini that is not UTF-8, has a line outside a section, a name or section
    given twice, a %(name)s in a value, or a port that is not one: one sentence naming
    the file. (Each was a configparser or int() traceback, or OverflowError at bind.)"""
    text, says = CONFIGS[case]
    (tmp_path / "cluster.ini").write_bytes(text)
    assert_refused(tmp_path, "coordinator.py", "--config", "cluster.ini", "--log",
                   "logs/recovery.log", says=says)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://x:y", "http://127.0.0.1"])
def test_a_branch_url_without_a_port_it_can_dial_is_refused(tmp_path, url):
    """--branch NAME=URL needs a port from 1 to 65535, as every other URL option does
    (rpc.url_arg). (The coordinator started, then failed every call to that branch.)"""
    assert_refused(tmp_path, "coordinator.py", "--port", "0", "--log", "logs/recovery.log",
                   "--branch", f"Mumbai={url}", says="with its port")


# ---- cluster.py ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["start", "stray"], "start takes no file name"),
    (["status", "stray"], "status takes no file name"),
    (["start", "--home", "a-file"], "as a folder"),
])
def test_cluster_refuses_a_stray_word_or_a_file_as_its_home(tmp_path, args, says):
    """Only `secret` takes a file name, and --home is a folder: `cluster.py start stray`
    started a cluster in the kit's folder on the default ports (the word was ignored),
    and `--home a-file` was a NotADirectoryError traceback."""
    (tmp_path / "a-file").write_text("not a folder\n")
    home = [] if "--home" in args else ["--home", str(tmp_path / "home")]
    try:
        assert_refused(tmp_path, "cluster.py", *args, *home, says=says)
        assert not (tmp_path / "home" / "data").exists()
    finally:                           # a cluster started by mistake ends with the test
        if (tmp_path / "home" / "data").exists():
            run_program(tmp_path, "cluster.py", "stop", "--home", str(tmp_path / "home"))


# ---- small refusals found by the input fuzzer ---------------------------------------------

def test_a_coordinator_named_nothing_is_refused(tmp_path):
    """coordinator.py --name "": a coordinator's name goes into every txid, so an empty
    one is refused in one sentence (it silently became C1)."""
    assert_refused(tmp_path, "coordinator.py", "--name", "", "--port", "0",
                   "--branch", "Mumbai=http://127.0.0.1:9100", says="not ''")


def test_a_recovery_log_that_is_a_folder_is_named(tmp_path):
    """coordinator.py --log FOLDER: the sentence names the folder and what to give
    instead (it said only "Is a directory.")."""
    (tmp_path / "logs").mkdir()
    assert_refused(tmp_path, "coordinator.py", "--log", "logs", "--port", "0",
                   "--branch", "Mumbai=http://127.0.0.1:9100",
                   says="--log 'logs' is a folder; give the recovery log's file")


def test_a_keys_file_that_is_not_text_is_named_as_such(tmp_path):
    """cluster.py secret --from FILE where FILE is not UTF-8 text: one sentence naming
    the file (it printed Python's codec error)."""
    (tmp_path / "garbage.keys").write_bytes(b"\xff\xfe\xf3\x00 not a key")
    assert_refused(tmp_path, "cluster.py", "secret", "student.keys", "--role", "student",
                   "--from", "garbage.keys", says="garbage.keys is not a keys file")
    assert not (tmp_path / "student.keys").exists()
