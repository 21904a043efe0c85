"""The record of a local cluster, and ending its processes by the pids it names.

Role: what lets several programs (cluster.py, shells, the window) share one cluster in
one home: HOME/data/cluster.json names the run and each member's URL and pid; each
server writes its own pid and URL beside it (NAME.pid, NAME.url: bank/rpc.py serve).
This module reads them, finds which members answer, and ends a member another program
started, by the pid those files name. bank/local_cluster.py starts, crashes and
restarts the members and writes the record; the rules are its L1, L5 and L6.

Rules (as bank/local_cluster.py states them):
  * A process is ended by a pid only while a signed ping at the member's URL is
    answered with this home's keys, and a pid file counts only while the server at
    the URL announces the server id written in it (L5, L6): a file left by an ended
    server names nothing, since the system may have reused its pid.
  * A stop rewrites the record first (so its starter knows at once it was stopped
    under it, L1), ends every member the record or their own files name (L6), lists as
    stopped only those that went silent, and removes their files.
  * A record is written whole (a temporary file, then a rename): a reader never sees
    half of one.

Glossary:
  record     HOME/data/cluster.json: the run, the keys file, each member's URL, pid,
             command line and port; "starting" while a start is under way (L6)
  pid file   HOME/data/NAME.pid: the pid and server id a server wrote when it listened
  ours       answers a ping signed with this home's keys
"""

import http.client
import json
import os
import pathlib
import signal
import time

from bank import rpc, storage
from bank.cluster_roles import COORDINATOR
from bank.errors import BankError, FaultCode

START_TIMEOUT = 20.0          # seconds a member may take to start listening


def write_whole(path: pathlib.Path, data) -> None:
    """Write a record as JSON all at once (a new file, then renamed over the old), so
    that another program reading it meanwhile sees the old record or the new one,
    never a half-written one (which read as "the cluster was stopped")."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    storage.replace(tmp, path)        # Windows: a reader may hold the old one a moment


def kept_mark(home) -> pathlib.Path:
    """HOME/data/cluster.kept: another program attached since the start (Rule L1)."""
    return pathlib.Path(home) / "data" / "cluster.kept"


def running_cluster(home):
    """The state of a cluster started earlier from `home`, if any of its members still
    answers with its keys. Its coordinator may be down (a crash a lab asked for): a
    shell attaches all the same, reads the branches directly and can restart it; a
    start would fail on the branches' databases, which the live ones hold."""
    state, secret = _record(home)
    if state is None or COORDINATOR not in state["members"] or state.get("starting"):
        return None                           # (a start under way or cut short: L6)
    members = state["members"]                # the coordinator first: it is the usual one
    urls = [members[COORDINATOR].get("url", "")] + [
        info.get("url", "") for name, info in members.items() if name != COORDINATOR]
    return state if any(is_ours(url, secret) for url in urls) else None


def is_ours(url, secret) -> bool:
    """Does a member of this cluster answer at url (a ping signed with its keys)?"""
    try:
        rpc.Client(url, secret, timeout=2).call("ping")
        return True
    except BankError:
        return False


def stop_running(home, still_running=None) -> list:
    """Stop a cluster started by `python cluster.py start` (by its recorded pids). Its
    record first stops naming its run, so the program that started it, quitting
    meanwhile, knows at once it was stopped under it (stopped_elsewhere); the members
    stay listed until they are ended, so a stop cut short can be run again. Each is ended
    by its own word (NAME.pid, if the server at its URL wrote it: pid_at), and so is a
    server that only its own files name (its launcher was killed before recording it).
    Only a member that stopped answering is listed as stopped; a recorded one that still
    answers (no pid of it known, or still there after it was ended) is added to
    `still_running` ("NAME at URL"), if given (L6)."""
    state, _ = _record(home)
    if state is not None:
        write_whole(pathlib.Path(home) / "data" / "cluster.json", dict(state, run="stopping"))
    stopped = []
    starting = state is not None and state.get("starting")
    secret, members = _members_of(home)
    recorded = recorded_members(home)
    for name, (pid, url) in members.items():
        if not url:                 # not recorded listening, or only its own files name it
            url = _url_written(home, name, wait=START_TIMEOUT / 2 if starting and pid else 0)
        if not url or secret is None or not is_ours(url, secret):
            continue
        pid = pid_at(home, name, url, pid)         # its own word first
        if not pid:                                 # nothing names the process there
            if still_running is not None and name in recorded:
                still_running.append(f"{name} at {url}")
            continue
        kill_pid(pid)
        if _wait_until_silent(url):
            stopped.append(name)
            forget_files(home, name, url)
        elif still_running is not None:             # not the process the pid named
            still_running.append(f"{name} at {url}")
    (pathlib.Path(home) / "data" / "cluster.json").unlink(missing_ok=True)
    kept_mark(home).unlink(missing_ok=True)
    return stopped


def forget_files(home, name: str, url: str) -> None:
    """A server ended and silent: remove the URL and pid files it wrote (NAME.url,
    NAME.pid), unless a later server of that name has written its own since, so that
    the next start has no stale address to ask (a refused connection can take seconds
    on Windows)."""
    data = pathlib.Path(home) / "data"
    try:
        if (data / f"{name}.url").read_text(encoding="utf-8").strip() != url:
            return
    except OSError:
        return
    for suffix in (".url", ".pid"):
        (data / f"{name}{suffix}").unlink(missing_ok=True)


def _members_of(home) -> tuple:
    """(the home's keys, name -> (pid, url)) of every member HOME/data/cluster.json
    names, and of every server that wrote its URL in HOME/data (NAME.url, its own pid
    in NAME.pid): a launcher killed between spawning a server and recording it (L6)
    leaves a server only its own files name."""
    state, secret = _record(home)
    if secret is None:
        try:
            secret = rpc.load_secret(pathlib.Path(home) / "data" / "cluster.keys")
        except (OSError, ValueError, SystemExit):
            secret = None
    members = recorded_members(home)
    for written in sorted((pathlib.Path(home) / "data").glob("*.url")):
        members.setdefault(written.stem, (None, ""))
    return secret, members


def pid_at(home, name: str, url: str, recorded=None):
    """The pid of the process answering at `url` for member `name`, or None. Its own
    word first: the pid in HOME/data/NAME.pid, whose second line is the id of the
    server that wrote it (rpc.serve), new at every start, taken only if the server at
    `url` announces that id now. A file left by a server that has ended (its pid may be
    another program's by now) names nothing, and neither does the record then: what
    answers there is not what this home started last. Only with no such file (a server
    of an older kit) is it `recorded`, the pid the record names."""
    try:
        text = (pathlib.Path(home) / "data" / f"{name}.pid").read_text(encoding="utf-8")
        pid, server_id = text.split()
        pid = int(pid)
    except (OSError, ValueError):
        return recorded
    try:
        return pid if rpc.server_id_at(url, timeout=2) == server_id else None
    except (OSError, http.client.HTTPException):
        return None


def answering_members(home) -> dict:
    """name -> (pid, url) of each member HOME/data/cluster.json or its own files in
    HOME/data (NAME.url, NAME.pid) name that answers with the cluster's keys: a running
    cluster's, or those of a start under way or cut short (a program killed while
    starting it, L6)."""
    secret, members = _members_of(home)
    found = {}
    for name, (pid, url) in members.items():
        url = url or _url_written(home, name)
        if url and secret is not None and is_ours(url, secret):
            found[name] = (pid_at(home, name, url, pid), url)
    return found


def _url_written(home, name, wait: float = 0) -> str:
    """The URL a member wrote to HOME/data/NAME.url once it listened ("" if none, after
    waiting up to `wait` seconds for a member still starting: its starter was killed)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            path = pathlib.Path(home) / "data" / f"{name}.url"
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.05)                # polling for a file, with a deadline


def _record(home) -> tuple:
    """(HOME/data/cluster.json's state, the cluster's keys), or (None, None) if there is
    no readable record."""
    try:
        record = pathlib.Path(home) / "data" / "cluster.json"
        state = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(state.get("members"), dict):
            return None, None
        return state, rpc.load_secret(state["secret_file"])
    except (OSError, ValueError, KeyError, AttributeError, SystemExit):
        return None, None


def recorded_members(home) -> dict:
    """member name -> (pid, url), from HOME/data/cluster.json ({} if there is none)."""
    state, _ = _record(home)
    try:
        return {n: (info.get("pid"), info["url"]) for n, info in state["members"].items()}
    except (TypeError, KeyError, AttributeError):
        return {}


def end_recorded(pid, url, secret) -> bool:
    """End a member we did not start ourselves, by its recorded pid, if it still answers
    at its URL with this cluster's keys (so neither a reused pid of some other program
    nor another cluster now on that port is ever touched)."""
    if not pid or secret is None or not is_ours(url, secret):
        return False
    kill_pid(pid)
    return _wait_until_silent(url)


def answers_at(url) -> bool:
    """Does anything answer HTTP at url? (Any answer, even 401, means it is up.)"""
    try:
        rpc.Client(url, None, timeout=2).call("ping")
        return True
    except BankError as exc:
        return exc.code != FaultCode.UNAVAILABLE or "HTTP" in exc.message


def kill_pid(pid: int) -> None:
    """End a process we did not start ourselves (its pid is in cluster.json)."""
    try:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))  # TerminateProcess on Windows
    except OSError:
        pass


def _wait_until_silent(url, timeout: float = 10.0) -> bool:
    """Wait until nothing answers at url; True if so within timeout."""
    deadline = time.monotonic() + timeout
    while answers_at(url):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
