"""A server's log: every line in logs/NAME.log, bounded; its launcher's copy quiet.

Rules checked (bank/server_process.py):
  * A log file past LOG_FILE_LIMIT becomes NAME.log.1 (an older one replaced) and a
    new NAME.log starts: the disk a server uses for its log does not grow with uptime.
  * A server started by cluster.py (--quiet) copies only warnings and errors to its
    output file logs/NAME.out; logs/NAME.log still narrates every 2PC step.
"""

import logging
import sys

import pytest

from bank import rpc, server_process


def logger_to(path, terminal_level: int, name: str):
    """A logger of its own that writes through the servers' handler to `path` (and to
    the terminal from `terminal_level` up); (logger, handler)."""
    handler = server_process._TerminalAndFile(path, terminal_level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test_server_logs.{name}")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    return logger, handler


def test_a_log_file_past_its_limit_becomes_log_1_and_a_new_one_starts(tmp_path, monkeypatch):
    """Rotation: with a 4,000-byte limit, 200 lines of 95 bytes leave two files,
    NAME.log and NAME.log.1, each within the limit and one line, no third; the newest
    line is in NAME.log and the one just before the last rotation in NAME.log.1."""
    monkeypatch.setattr(server_process, "LOG_FILE_LIMIT", 4000)
    logger, handler = logger_to(tmp_path / "Mumbai.log", logging.CRITICAL, "rotation")
    try:
        for n in range(200):
            logger.info("line %03d %s", n, "x" * 85)      # 95 bytes a line
    finally:
        logger.removeHandler(handler)
        handler.file.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Mumbai.log", "Mumbai.log.1"]
    newest = (tmp_path / "Mumbai.log").read_text().splitlines()
    older = (tmp_path / "Mumbai.log.1").read_text().splitlines()
    assert newest[-1].startswith("line 199 ")
    assert int(older[-1].split()[1]) + 1 == int(newest[0].split()[1])   # no line lost
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 4000 + 100


def test_a_server_started_quiet_narrates_in_its_log_file_and_not_on_its_output(
        start_branch, tmp_home):
    """--quiet (how cluster.py starts servers): a deposit's INFO narration is in
    logs/Mumbai.log and not in logs/Mumbai.out, which keeps only warnings, errors and
    the start-up lines."""
    member = start_branch("Mumbai")
    client = rpc.Client(member.url, timeout=10, label="Mumbai")
    client.call("deposit", "1001", "1.00")
    log = (tmp_home / "logs" / "Mumbai.log").read_text(encoding="utf-8")
    out = (tmp_home / "logs" / "Mumbai.out").read_text(encoding="utf-8")
    assert " INFO " in log
    assert " INFO " not in out, out


@pytest.mark.skipif(sys.platform == "win32", reason="Windows keeps an open file's folder")
def test_a_log_folder_that_refuses_a_new_file_leaves_the_terminal_alone_logging(
        tmp_path, monkeypatch, capsys):
    """Rotation where the folder is gone by then (removed under the server): the
    handler says once, on the terminal, that the log file cannot be written any more,
    and later lines go on to the terminal with no "Logging error" traceback."""
    monkeypatch.setattr(server_process, "LOG_FILE_LIMIT", 200)
    folder = tmp_path / "logs"
    folder.mkdir()
    logger, handler = logger_to(folder / "Mumbai.log", logging.DEBUG, "folder_gone")
    try:
        logger.info("first line %s", "x" * 80)
        for path in folder.iterdir():         # the folder removed under the server
            path.unlink()
        folder.rmdir()
        for n in range(5):
            logger.info("line %d %s", n, "x" * 80)
    finally:
        logger.removeHandler(handler)
    said = capsys.readouterr().err
    assert said.count("Cannot write the log file") == 1, said
    assert "line 4 " in said and "Logging error" not in said and "Traceback" not in said
