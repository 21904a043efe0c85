"""The programs' standard streams: UTF-8 on every platform.

Role: make what a program reads from a pipe and writes to a file or pipe UTF-8, as
its terminal already is. Python otherwise uses the platform's encoding for
redirected streams (cp1252 on many Windows machines): a piped script naming "मीरा"
would stop the shell before its first command, and a server's output file could not
hold a home folder's name. Every program (branch.py, coordinator.py, cluster.py,
shell.py, gui_tk.py, explore.py) calls use_utf8() first.

Rules:
  * Reading, a byte that is not UTF-8 becomes U+FFFD (one wrong character, not a
    stopped program); writing, a character that cannot be written becomes an escape.
"""

import io
import sys


def use_utf8() -> None:
    """Read and write sys.stdin, sys.stdout and sys.stderr as UTF-8 (see Rules)."""
    for stream, errors in ((sys.stdin, "replace"), (sys.stdout, "backslashreplace"),
                           (sys.stderr, "backslashreplace")):
        if stream is not None and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(encoding="utf-8", errors=errors)
            except (ValueError, io.UnsupportedOperation):
                pass              # already read from, or not a text stream: as it is
