"""Durable file operations: what a power cut can and cannot take away.

Role: the few file-system steps that durability depends on, in one place, so that
the recovery log (compaction, history) and the branches (a database set aside when
a replica rejoins) do them the same way.

Rules:
  * Rule 1 - a file's data is on disk only after ``fsync`` of the file.
  * Rule 2 - a file's NAME is on disk only after ``fsync`` of its folder. A rename
    or a new file that is not followed by a folder fsync can vanish in a power cut,
    even though the data it names was synced (POSIX; ext4 and XFS really do this).
  * Rule 3 - ``os.replace`` is atomic: after a crash the name points at the old file
    or the new one, never at half of either.
  * Windows cannot open a folder to fsync it; there NTFS's own journal keeps renames,
    and the folder step is skipped. Windows also refuses to replace a file that another
    program has open at that moment (a reader of it, a virus scanner, the search
    indexer): ``replace`` tries again for about a second before it gives up.
  * On macOS fsync only hands the data to the drive, whose own cache a power cut may
    lose; ``fsync`` here asks the drive to write it (F_FULLFSYNC), as SQLite's
    fullfsync does for the ledgers, and falls back to fsync on a file system that
    cannot (a network share).

Glossary:
  fsync      ask the OS to write a file's data (or a folder's list of names) to disk
             and wait until the disk says it has it
  torn write a write cut short by a crash: only its beginning reached the disk
"""

import os
import pathlib
import time

try:
    from fcntl import F_FULLFSYNC, fcntl   # macOS only (F_FULLFSYNC)
except ImportError:                        # elsewhere; Windows has no fcntl at all
    F_FULLFSYNC = None


def fsync(fd: int) -> None:
    """Make the data of an open file durable (Rule 1), through the drive's cache."""
    if F_FULLFSYNC is not None:
        try:
            fcntl(fd, F_FULLFSYNC)
            return
        except OSError:       # a file system that cannot (SMB, NTFS, ZFS): plain fsync,
            pass              # as SQLite, Go and libuv do
    os.fsync(fd)


def fsync_folder(folder) -> None:
    """Make the names in `folder` durable: new files, renames, removals (Rule 2)."""
    if os.name == "nt":
        return                                   # no folder fsync on Windows
    fd = os.open(folder, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path) -> None:
    """Make the data of the file at `path` durable (Rule 1)."""
    flags = os.O_RDONLY if os.name != "nt" else os.O_RDWR   # Windows needs write access
    fd = os.open(path, flags)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def replace(src, dst) -> None:
    """os.replace (atomic, Rule 3), tried again for about a second on Windows while
    another program holds dst open (PermissionError there, as pip also finds)."""
    for wait in (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, None):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or wait is None:
                raise
            time.sleep(wait)


def durable_replace(src, dst) -> None:
    """Rename src to dst so that a power cut keeps the new name and its data.

    The data is synced before the rename (so the name never points at unsynced
    bytes) and the folder after it (so the rename itself is kept).
    """
    fsync_file(src)
    replace(src, dst)                            # atomic (Rule 3)
    fsync_folder(pathlib.Path(dst).parent)
    if pathlib.Path(src).parent != pathlib.Path(dst).parent:
        fsync_folder(pathlib.Path(src).parent)   # the old name's removal, too


def truncate_to(fd: int, size: int) -> None:
    """Cut an open file back to `size` bytes and make the cut durable."""
    os.ftruncate(fd, size)
    fsync(fd)
