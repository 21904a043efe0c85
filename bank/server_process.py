"""One server process of the kit: its command-line checks, its log, and serving until Ctrl-C.

Role: what branch.py and coordinator.py share around their XML-RPC server
(bank/rpc.py): options read into plain values with one sentence for a bad one (a port,
a URL, a folder, a time), the refusal to serve beyond this machine without keys, one
process per database or recovery log (a lock file held for the process's life), the
log on the terminal and in a file, and serving until Ctrl-C with the URL and pid
written for a launcher (bank/cluster_record.py reads them). Its names are re-exported
by bank/rpc.py (rpc.serve, rpc.check_bind, rpc.setup_logging, ...).

Rules:
  * A non-loopback address without keys is refused, with how to make them
    (check_bind); a server's keys file must hold all three role keys.
  * One process per file: a second server on the same database or recovery log
    refuses to start (hold_exclusive).
  * A launcher is told a server's pid before its URL, each file written whole (serve).
  * A log file stays bounded: past LOG_FILE_LIMIT bytes it becomes NAME.log.1 (an
    older one is replaced) and a new NAME.log starts, so a class that runs the bank
    all day, or a benchmark, never fills the disk.

Glossary:
  url file   HOME/data/NAME.url, written once the server listens
  pid file   HOME/data/NAME.pid: its pid and server id, written just before
  quiet      a server started by cluster.py has no terminal: its output goes to
             logs/NAME.out, so only warnings and errors are copied there (the log
             file has every line)
"""

import argparse
import ipaddress
import logging
import math
import os
import pathlib
import sys
import time

from bank import keys, storage
from bank.errors import BankError, check_url

LOG_FILE_LIMIT = 16 * 1024 * 1024   # bytes in NAME.log before it becomes NAME.log.1


def serve(server, on_stop=None, url_file=None) -> None:
    """Serve until Ctrl-C, then stop cleanly (the database is closed by on_stop).
    server: a bank.rpc.Server.

    url_file: where to write our URL once we listen, for a launcher (cluster.py); our
    process id goes beside it first (the same name, .pid), so that a launcher killed
    before it recorded our pid leaves no server that `cluster.py stop` cannot end. The
    .pid file's second line is our server id (NAME@HOST:PORT#RUN, new at every start):
    a launcher takes the pid only while the server at the URL announces that id, so a
    file left by an ended server (its pid maybe another program's by now) names nothing.
    """
    if url_file:
        try:
            _write_url_file(pathlib.Path(url_file), server)
        except OSError as exc:             # a folder, or a place it may not write: a sentence
            server.server_close()
            if on_stop:
                on_stop()
            raise SystemExit(f"Cannot write the URL file {url_file}: "
                             f"{exc.strerror or exc}. Give --url-file a file name in a "
                             "folder this program may write to.") from None
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    finally:
        server.server_close()
        if on_stop:
            on_stop()


def _write_url_file(path: pathlib.Path, server) -> None:
    """Our pid and server id beside the URL file (NAME.pid), then the URL file itself."""
    for where, text in ((path.with_suffix(".pid"), f"{os.getpid()}\n{server.server_id}"),
                        (path, server.url)):
        tmp = where.with_suffix(".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        storage.replace(tmp, where)        # atomic: a launcher never sees half a file


def check_bind(host: str, secret, insecure: bool) -> None:
    """Refuse to serve beyond this machine without a secret (unless told loudly)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False                     # a host name: it may be reachable by anyone
    if loopback or secret or insecure:
        return
    raise SystemExit(
        f"Refusing to serve on {host} without a shared secret (keys): anyone on the "
        "network could move money.\nMake keys with `python cluster.py secret classroom.keys`, "
        "start every server with --secret-file classroom.keys, and give students only "
        "`python cluster.py secret student.keys --role student --from classroom.keys`.\n"
        "(To do it anyway on a trusted network, add --insecure-no-auth.)")


def check_server_keys(secret, path) -> None:
    """Refuse to serve with a keys file that lacks a role's key. A server checks the
    signatures of all three roles (a student's deposit, a teacher's fault, another
    server's prepare), so it needs all three keys; with student.keys alone it would
    start and then answer every server and teacher call with 401."""
    if secret is None:
        return
    missing = [role for role in keys.ROLES if role not in secret.keys]
    if missing:
        held = " and ".join(secret.roles)
        raise SystemExit(
            f"{path} holds only the {held} key: a server checks the signatures of all "
            f"three roles, so it needs the {' and '.join(missing)} key"
            f"{'s' if len(missing) > 1 else ''} too. Start it with the classroom's keys "
            "file (--secret-file classroom.keys, made by `python cluster.py secret "
            "classroom.keys`); student.keys and teacher.keys are for shells and windows.")


_HELD_LOCKS = []              # lock files held for the life of the process


def hold_exclusive(path, what: str) -> None:
    """Refuse to run if another process already uses `path` (a database, a log).

    Two coordinators appending to one recovery log, or two branches serving one
    database, would each believe they own it. The lock is released when the process
    ends, however it ends (the OS drops it), so a crash never leaves it stuck.
    """
    lock_path = pathlib.Path(str(path) + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as exc:                   # a sentence, never a traceback
        raise SystemExit(f"Cannot use {path} as this program's {what}: {exc.strerror or exc} "
                         f"({exc.filename or lock_path}). Give it a file in a folder this "
                         "program may create and write to (--db / --log).")
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SystemExit(f"Another process is already using {path} as its {what}. Stop it "
                         "first (a local cluster: python cluster.py stop), or give this one "
                         "its own file (--db / --log).")
    _HELD_LOCKS.append(handle)


def port_arg(text: str) -> int:
    """argparse type for --port: 0 (any free port) to 65535."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port from 0 (any free one) to 65535, not {text!r}")
    return int(text)


def url_arg(text: str) -> str:
    """argparse type for a server's URL: http://HOST:PORT (a port it can be dialled on)."""
    try:
        url = check_url(text, "URL")
    except BankError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")[2]
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"a URL like http://127.0.0.1:9000, with its port, "
                                         f"not {text!r}")
    return url


def folder_arg(text: str) -> str:
    """argparse type for a folder the program keeps files in (--home): it exists, or
    can be made now."""
    try:
        pathlib.Path(text).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot use {text!r} as a folder: "
                                         f"{exc.strerror or exc}") from None
    return text


def file_arg(text: str) -> str:
    """argparse type for a file the program writes (--url-file): not a folder, in a
    folder that exists or can be made now. Checked before the server starts, so that
    it never announces a URL it then cannot record."""
    path = pathlib.Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name, "
                                         "like data/Mumbai.url")
    folder_arg(str(path.parent))
    return text


def time_arg(least: float, most: float, unit: str = "seconds"):
    """argparse type for a time (never money) from `least` to `most` units; nan and inf
    are refused: a loop waiting 0 or nan seconds would spin."""
    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"{least:g} to {most:g} {unit}, not {text!r}")
        return value
    return read


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The options every server shares for what it writes: its log and its URL."""
    parser.add_argument("--log-dir", default="logs",
                        help="where the log file goes (NAME.log; coordinator.log)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only warnings and errors here; the log file keeps "
                             "every line (cluster.py starts its servers so)")
    parser.add_argument("--url-file", type=file_arg,
                        help="write the served URL here once listening")


def setup_logging(name: str, log_dir="logs", verbose=False, quiet=False) -> pathlib.Path:
    """Log to stderr and to logs/<name>.log (runtime logs live in logs/). Quiet: only
    warnings and errors go to stderr (a launcher's output file, not a person)."""
    log_dir = pathlib.Path(log_dir)
    path = log_dir / f"{name}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = _TerminalAndFile(path, logging.WARNING if quiet else logging.DEBUG)
    except OSError as exc:
        raise SystemExit(f"Cannot write the log file {path}: {exc.strerror or exc}. Give a "
                         "folder this program may write to with --log-dir.")
    handler.setFormatter(_LineFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)
    # Branches narrate every 2PC step at INFO (the course reads it). Our format uses
    # no caller, thread or process fields, so skip collecting them on every line, as
    # the Logging HOWTO's "Optimization" section suggests.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return path


class _LineFormatter(logging.Formatter):
    """logging's own format, with the date and time of day formatted once a second.

    A branch narrates two lines per transfer, and the standard formatTime converts
    and formats the time of every line (a third of a line's formatting, issue 13);
    the text is the same: "2026-11-29 17:20:01,123", local time.
    """

    _second = (None, "")        # (whole second, its text): replaced whole, never edited

    def formatTime(self, record, datefmt=None):
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        whole = int(record.created)
        cached = self._second
        if cached[0] != whole:
            text = time.strftime(self.default_time_format, self.converter(whole))
            cached = self._second = (whole, text)
        return self.default_msec_format % (cached[1], record.msecs)


class _TerminalAndFile(logging.Handler):
    """Writes each log line to the terminal (stderr) and to the log file.

    One handler, so a line is formatted once: a branch narrates every 2PC step, and
    two handlers formatted each line twice (issue 13). The file is written as bytes,
    counted as they go, so bounding it costs no call per line.
    """

    def __init__(self, path: pathlib.Path, terminal_level: int):
        super().__init__()
        self.path, self.terminal_level = path, terminal_level
        self.file, self.size = self._open()
        self.limit = LOG_FILE_LIMIT

    def _open(self):
        file = open(self.path, "ab")
        return file, file.seek(0, os.SEEK_END)

    def emit(self, record):
        try:
            line = self.format(record) + "\n"
            if sys.stderr is not None and record.levelno >= self.terminal_level:
                sys.stderr.write(line)           # stderr is None under pythonw
                sys.stderr.flush()
            if self.file is None:                # (the folder refused a new file)
                return
            data = line.encode("utf-8", "replace")
            self.file.write(data)
            self.file.flush()
            self.size += len(data)
            if self.size >= self.limit:
                self._start_afresh()
        except Exception:
            self.handleError(record)

    def _start_afresh(self):
        """NAME.log becomes NAME.log.1 and a new NAME.log begins. Where the rename is
        refused (on Windows, while an editor holds the file), keep writing, and try
        again one limit later. Where even a new file is refused (the folder removed, or
        made read-only), say so once on the terminal, and log there alone."""
        self.file.close()
        try:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.limit = LOG_FILE_LIMIT
        except OSError:
            self.limit = self.size + LOG_FILE_LIMIT
        try:
            self.file, self.size = self._open()
        except OSError as exc:
            self.file = None
            if sys.stderr is not None:
                sys.stderr.write(f"Cannot write the log file {self.path} any more "
                                 f"({exc.strerror or exc}); log lines go to the terminal "
                                 "alone from now on.\n")
