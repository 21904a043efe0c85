"""Shared fixtures for the kit's tests: a scratch home folder and real branch processes.

Rules for every test in this folder:
  * Real processes run on 127.0.0.1 only, on ports the OS picks (``--port 0``).
  * A process is ended only by the pid we started (``cluster.Member.kill``), never by name.
  * Waiting is polling with a deadline (``Member.start``, ``Member.wait_exit``), never a
    bare sleep.

Fixtures (all function-scoped, so tests never depend on each other):
  tmp_home       a fresh folder laid out like a cluster home: ``data/`` and ``logs/``
  start_branch   a factory: ``start_branch("Delhi", preload=False)`` -> a started Member;
                 every branch it started is killed at teardown
  branch_member  one started branch "Mumbai" (preloaded: 1001 = 10000.00, 1002 = 5000.00,
                 faults allowed, no secret), as a ``cluster.Member`` you can kill/restart
  branch_url     that branch's URL, e.g. ``http://127.0.0.1:40123``
  branch_client  an ``rpc.Client`` for it (failures arrive as ``BankError``)
  shared_branch_url  module-scoped: one Mumbai like the above, shared by the tests of a
                 module, for tests that change nothing (refusals, introspection). Such a
                 test must compare "before" and "after" itself, never assume a fresh state.
  dead_url       a loopback URL where nothing answers (connection refused at once): a
                 coordinator address for prepares whose decision never comes
"""

import atexit
import gc
import os
import pathlib
import shutil
import socket
import sys
import tempfile

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent


# The suite starts about 900 servers. Where bytecode is not written (PYTHONDONTWRITEBYTECODE,
# set on some CI machines), each of them compiled the kit's 46 modules again: 0.15 s of CPU
# per process, a third of the suite's CPU. The servers this suite starts inherit this
# environment: they cache their bytecode once per run, never in the source tree, in a
# folder of this run's own (mkdtemp: private to this user, so no other user of the machine
# can plant bytecode there for our servers to run, and no earlier run's bytecode of a file
# edited since can be taken for it), removed when the run ends. xdist's workers inherit it.
def _bytecode_folder() -> str:
    folder = tempfile.mkdtemp(prefix="bank-kit-bytecode-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
if "PYTHONPYCACHEPREFIX" not in os.environ:            # (a user's own setting is kept)
    os.environ["PYTHONPYCACHEPREFIX"] = _bytecode_folder()
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

# Ports come from the OS: a shell or cluster.py a test starts in a fresh home never takes
# the default ports (9000, 9100, 9101), which a parallel test's restart may need again
# (bank/local_cluster.py ANY_PORTS).
os.environ["BANK_PORTS"] = "any"

from bank import local_cluster as cluster  # noqa: E402  (needs the kit on sys.path first)
from bank import rpc      # noqa: E402


# A closed window is a web of reference cycles (widgets and their callbacks). Left to the
# cyclic garbage collector, it is freed on whatever thread allocates next, perhaps a worker
# thread of the next window or of an in-process server, where freeing a Tk variable fails
# ("main thread is not in main loop") or ends the process. pytest lets go of a test's
# fixtures only after their teardown, so the window tests' garbage is collected here, once
# the test is over, on the main thread (the Tk one).
WINDOW_TESTS = ("test_gui", "test_replay_window")      # the files' names begin so


def pytest_runtest_logfinish(nodeid, location):
    # By the file's name, not the node id's start, which depends on the rootdir (run
    # from tests/ with its own -c or --rootdir, it has no "tests/").
    if pathlib.PurePath(nodeid.split("::")[0]).name.startswith(WINDOW_TESTS):
        gc.collect()


@pytest.hookimpl(tryfirst=True)         # before pytest-xdist turns "-n N" into --dist load
def pytest_cmdline_main(config):
    """With -n N and no --dist, an idle process takes tests from a busy one (worksteal),
    so a run does not end with one process working through a queue of slow tests. Set
    here, not in pytest.ini's addopts: there, --dist stops pytest from starting at all
    where pytest-xdist is not installed (or is disabled: -p no:xdist)."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "no":
        config.option.dist = "worksteal"


@pytest.fixture
def tmp_home(tmp_path) -> pathlib.Path:
    """A fresh home folder with data/ and logs/, as cluster.Member expects."""
    return make_home(tmp_path)


def make_home(path: pathlib.Path) -> pathlib.Path:
    """Lay out `path` as a cluster home: data/ and logs/."""
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(parents=True, exist_ok=True)
    return path


def launch_branch(home, started: list, name="Mumbai", *, preload=True, allow_faults=True,
                  extra=()) -> cluster.Member:
    """Start ``python branch.py --name NAME --port 0 --db HOME/data/NAME.db --log-dir
    HOME/logs --url-file HOME/data/NAME.url [--preload] [--allow-faults] EXTRA...``.

    The Member is appended to `started` before it starts, so that the caller's teardown
    kills it even if starting fails half-way.
    """
    args = ["--name", name, "--db", str(home / "data" / f"{name}.db"),
            *(["--preload"] if preload else []),
            *(["--allow-faults"] if allow_faults else []), *extra]
    member = cluster.Member(name, "branch.py", args, home)
    started.append(member)
    member.start()
    return member


@pytest.fixture
def start_branch(tmp_home):
    """Factory for real branch processes in tmp_home; all are killed (by pid) at teardown.

    start_branch(name="Mumbai", *, preload=True, allow_faults=True, extra=()) returns the
    started cluster.Member (``.url``, ``.kill()``, ``.start()`` restarts on the same port
    and database, ``.wait_exit()``). See launch_branch for the command line.
    """
    started = []
    yield lambda *args, **kwargs: launch_branch(tmp_home, started, *args, **kwargs)
    for member in started:
        member.kill()


@pytest.fixture
def branch_member(start_branch) -> cluster.Member:
    """One running branch, Mumbai: preloaded, faults allowed, no secret."""
    return start_branch("Mumbai")


@pytest.fixture
def branch_url(branch_member) -> str:
    """The URL of the running branch Mumbai."""
    return branch_member.url


@pytest.fixture
def branch_client(branch_url) -> rpc.Client:
    """An rpc.Client for Mumbai (a restart on the same port keeps it usable)."""
    return rpc.Client(branch_url, timeout=10, label="Mumbai")


@pytest.fixture(scope="module")
def shared_branch_url(tmp_path_factory) -> str:
    """One Mumbai for a whole module, for tests that change nothing; killed at the end."""
    started = []
    try:
        yield launch_branch(make_home(tmp_path_factory.mktemp("shared-home")), started).url
    finally:
        for member in started:
            member.kill()


@pytest.fixture
def dead_url():
    """A loopback URL on a port the OS gave us and that is bound but never listens.

    Connecting to it is refused at once, for as long as the test runs.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
