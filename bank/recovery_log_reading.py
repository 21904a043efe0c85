"""Reading the recovery log back at start: a torn tail is cut, damage is faced (Rule 6).

Role: the half of bank/recovery_log.py that runs once, when the coordinator starts:
read every line, check its checksum and grammar (Rule 3), check that it can follow
the lines before it, and rebuild what the log says (transactions in flight, the
finished ones, each branch's configuration). RecoveryLog inherits ReadAtStart and
calls ``_read_existing`` from its constructor; the rules are in recovery_log.py.

Rules (Rule 6, in short): only the LAST writes can be cut short by a crash, and a disk
loses whole sectors: so the trailing lines that lack their end of line, or whose zero
bytes each run from a 512-byte sector's start (or the line's) to a sector's end (or
the file's), are a torn tail: never acknowledged, cut (kept in the history file). Any
other bad line is damage: the log refuses to open (LogDamaged), or, accepted by an
operator, keeps every transaction the damage could touch in doubt. Some tails are
not simply cut, because cutting them could change history (a forced record damaged
after a branch acted on it looks like one a crash cut short):
  * a last line whose only flaw is its missing end of line (its checksum and grammar
    are good) is a whole record: it is kept.
  * a torn line that reads as the commit of a transaction in flight and undecided,
    its whole txid legible, no longer than a commit, is that commit: it is kept
    (replayed; compaction at start writes it whole). Keeping a commit is safe
    whichever tore it: a commit is written only after every yes vote, and one whose
    half line could not be cut off again stops the coordinator before anyone hears
    otherwise (bank/twopc.py). A torn line longer than its commit held another record
    (maybe an acknowledged commit): damage.
  * a torn begin under presumed commit (forced: C11; a txid with no record would be
    presumed committed), its whole txid legible, is kept too: with no decision after
    it, recovery aborts it (C13), right whichever tore it.
  * a torn commit or begin whose txid is cut short (more than one may match), or a torn
    config of a branch configured before, is damage: which transaction, or which
    configuration, cannot be told; they are kept in doubt.
  * a damaged line's kind is not trusted: a damaged end of line joins two records,
    so it may hide a decision, a config or a request id (accepted, all are kept in
    doubt). A bad line is excused only right before the record Rule 6 wrote again
    for it, which says so in its checksummed data (REWRITE).
  * The limits: damage that leaves the last line unreadable as to its kind or its id
    in a crash's shape (a cut before them, zeros on whole sectors) is cut; a crash
    cannot do that to a record after its fsync returned, only damage can. And zeros
    in a line followed by whole lines (a middle sector lost while later writes got
    through) are refused as damage, not cut: only trailing lines are a torn tail.

Glossary:
  torn tail  the last line, cut short by a crash in the middle of its write
  damage     a line that was written whole and is wrong now
  problem    one damaged line, said for the operator: its number and what is wrong
"""

import json
import logging
import os
import pathlib
import re
import zlib

from bank.errors import BankError, FaultCode
from bank import storage
from bank.storage import truncate_to

KINDS = "begin|commit|abort|end|done|config|created"      # of records (the module's docstring)
_LINE = re.compile(rf"^(\S+) ({KINDS}) +(\S+) (\{{.*\}}) crc=([0-9a-f]{{8}})$")
_LEGIBLE = re.compile(rf"^\S+ ({KINDS}) +([A-Za-z0-9_.:-]{{1,64}}) ".encode())
_START = re.compile(rf"^\S+ ({KINDS}) +([A-Za-z0-9_.:-]{{0,64}})".encode())
FORCED_KINDS = ("commit", "config", "begin", "done")   # a torn one may not be cut (Rule 6)
SECTOR = 512               # the least a disk writes, or loses, at once
REWRITE = "rewrites_torn"  # in a record Rule 6 kept torn and wrote again whole


def _start_of(raw: bytes) -> tuple:
    """(kind, its id as far as it can be read) of a line, or ("", "") if no kind reads."""
    start = _START.match(raw)
    return (start.group(1).decode(), start.group(2).decode()) if start else ("", "")

log = logging.getLogger("recovery-log")


class LogDamaged(BankError):
    """The recovery log holds damage (Rule 6): the coordinator must not serve on it."""

    def __init__(self, message: str):
        super().__init__(FaultCode.INTERNAL, message)


class Problem:
    """What is wrong with one line of the log, for the operator."""

    def __init__(self, line_no: int, what: str, raw: bytes = b"", txid: str = "",
                 kind: str = "", named: bool = False):
        legible, (kind_read, start) = _LEGIBLE.match(raw), _start_of(raw)
        self.line_no, self.what = line_no, what
        self.named = named      # what it is about is known for sure (its checksum held,
                                # or a torn tail's candidates): it hides no other decision
        # A line whose checksum failed may be any record, or several (a damaged end of
        # line joins two): its kind counts as unknown; what it reads as is only said.
        self.kind = kind if named else ""
        self.read_as = kind or kind_read
        self.txid = txid or (legible.group(2).decode() if legible else "")
        self.start = self.txid or start                                # its id, maybe cut

    def __str__(self):
        about = f" ({self.read_as or 'a record'} of {self.txid}, as far as it can be read)" \
            if self.txid else ""
        return f"line {self.line_no}: {self.what}{about}"


def read_lines(path: pathlib.Path):
    """(records, torn, damage, good_size, unended) from the log file at `path`.

    records: [(line_no, kind, txid, data)] of the well-formed lines, in order (checked
    for contradictions later); torn: [(line_no, raw)] of the torn tail's lines; damage:
    [Problem]; good_size: the file's length without its torn tail; unended: the last
    record is whole but lacks its end of line (it is kept).
    """
    data = path.read_bytes() if path.exists() else b""
    lines = data.splitlines(keepends=True)
    unended = bool(lines) and _whole_but_unended(lines[-1])
    if unended:
        lines[-1] += b"\n"
    starts = [0]
    for raw in lines:
        starts.append(starts[-1] + len(raw))
    tail_start = len(lines)
    while tail_start > 0 and _looks_torn(lines[tail_start - 1], starts[tail_start - 1],
                                         len(data)):
        tail_start -= 1
    records, damage = [], []
    for i, raw in enumerate(lines[:tail_start], start=1):
        record, problem = parse_line(raw)
        if problem and not _written_again(raw, lines[i:i + 1]):
            damage.append(Problem(i, problem, raw))
        elif not problem:
            records.append((i, *record))
    good_size = sum(len(raw) for raw in lines[:tail_start])
    torn = list(enumerate(lines[tail_start:], start=tail_start + 1))
    return records, torn, damage, good_size, unended


def _written_again(raw: bytes, after: list) -> bool:
    """Is this bad line a torn record that Rule 6 kept and wrote again whole, right after
    it? Then it hides nothing: it is not damage. The record written again says so in
    its own checksummed data (REWRITE), and names the same kind and transaction as
    what can be read of the bad line; a whole line whose checksum fails is damage even
    when the line after it names the same transaction (one changed character of a
    txid can make a commit name the next one)."""
    again = after and parse_line(after[0])[0]
    return bool(again and again[2].get(REWRITE) is True
                and _start_of(raw) == (again[0], again[1]))


def _looks_torn(raw: bytes, start: int, size: int) -> bool:
    """A write that never finished: no end of line, or zero bytes the disk never got.

    A disk loses whole sectors: the zeros of a crash run from a sector's start, or
    from where the file ended before (a line's start), to a sector's end or the end of
    the file. Any other zero bytes are damage (a zero byte in place of an end of line,
    or inside a whole record). `start` is the line's offset in the file, `size` the
    file's length."""
    for zeros in re.finditer(rb"\0+", raw):
        first, end = start + zeros.start(), start + zeros.end()
        if not (zeros.start() == 0 or first % SECTOR == 0) or \
                not (end % SECTOR == 0 or end == size):
            return False
    return not raw.endswith(b"\n") or b"\0" in raw


def _begin_as_far_as_read(raw: bytes) -> dict:
    """A kept torn begin under presumed commit: its branches if the tear left them whole
    (recovery tells them the abort and waits for their acknowledgements, C13)."""
    branches = re.search(rb'"branches": \[((?:"[A-Za-z0-9_ -]{1,80}"(?:, )?)*)\]', raw)
    data = {"presumption": "commit"}
    if branches:
        data["branches"] = json.loads(b"[" + branches.group(1) + b"]")
    return data


def ends_a_line(path: pathlib.Path) -> bool:
    """Does the file end with an end of line (or hold nothing)?"""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(size - 1, 0))
        return size == 0 or f.read(1) == b"\n"


def _whole_but_unended(raw: bytes) -> bool:
    """The last line lacks only its end of line: checksum and grammar are good."""
    return not raw.endswith(b"\n") and b"\0" not in raw and not parse_line(raw + b"\n")[1]


def forced_record_in(raw: bytes, in_flight: dict, configs: dict, presumed_commit: bool):
    """(kind, [what it may be about]) for a torn line that reads as a forced record
    (Rule 6): a commit's candidates are the txids in flight and undecided that start
    with what can be read of its txid; a config's, the branches configured before whose
    name starts so; a begin's, under presumed commit (C11: forced, and a txid with no
    record is presumed committed), its txid as far as it can be read. ("", []) if it
    can be none (then cutting it changes nothing: a branch's first config only records
    the primary that asked, which asks again; an unforced begin may be lost)."""
    kind, start = _start_of(raw)
    if kind not in FORCED_KINDS or not start:
        return "", []
    if kind == "commit":
        return kind, sorted(t for t, e in in_flight.items()
                            if t.startswith(start) and e["decision"] is None)
    if kind == "begin":
        return kind, [start] if presumed_commit or b'"presumption": "commit"' in raw else []
    if kind == "done":                  # written only by compaction, into a file on disk
        return kind, [start]            # before it replaced the log: no crash tears one
    return kind, sorted(b for b in configs if b.startswith(start))


def _commit_length(raw: bytes) -> int:
    """How long the commit line that `raw` begins is, with its end of line (a commit
    record's data is {}; its time is as wide as this line's first word): a torn line
    longer than that holds more than one record."""
    stamp, _, _ = raw.partition(b" ")
    _, txid = _start_of(raw)
    return len(stamp) + len(f" {'commit':<6} {txid} {{}} crc=00000000\n")


def _names_whole(raw: bytes, candidates: list) -> bool:
    """Does the torn record name exactly one candidate, by its whole txid? (A begin's
    txid is whole when the space after it was written.)"""
    kind, start = _start_of(raw)
    if len(candidates) != 1 or start != candidates[0]:
        return False
    return kind != "begin" or bool(_LEGIBLE.match(raw))    # the space after its id came


def parse_line(raw: bytes):
    """((kind, txid, data), "") from one complete line, or (None, what is wrong)."""
    body, sep, crc = raw.rstrip(b"\n").rpartition(b" crc=")
    if not sep:
        return None, "it has no checksum (crc=)"
    if f"{zlib.crc32(body):08x}".encode() != crc:
        if crc.endswith(b"\r") and f"{zlib.crc32(body):08x}".encode() == crc[:-1]:
            return None, ("it ends in a carriage return (\\r\\n): was the log saved with "
                          "Windows line endings? The kit writes \\n only")
        return None, "its checksum does not match its text (a changed or garbled byte)"
    try:
        match = _LINE.match(raw.decode("utf-8").rstrip("\n"))
        data = json.loads(match.group(4)) if match else None
    except (UnicodeDecodeError, ValueError):
        match = data = None
    if match is None or not isinstance(data, dict):
        return None, "its checksum matches but it is not a record of this log"
    return (match.group(2), match.group(3), data), ""


def config_contradiction(branch: str, data: dict, before: dict) -> str:
    """Why this config record cannot follow `before` (the branch's last one), or "" (Rule 8)."""
    if not all(isinstance(data.get(k), int) for k in ("epoch", "version")) \
            or not isinstance(data.get("primary"), str) \
            or not isinstance(data.get("in_sync"), list):
        return f"a config for {branch} without primary, in_sync, epoch and version"
    if before and (data["version"] <= before["version"] or data["epoch"] < before["epoch"]):
        return (f"a config for {branch} at version {data['version']}, epoch {data['epoch']}, "
                f"after version {before['version']}, epoch {before['epoch']}")
    return ""


def created_contradiction(data: dict, before: str) -> str:
    """Why this created record is wrong here, or "" (Rule 9): one per log, naming the
    second its txids start from."""
    if before:
        return "a second created record (a log is created once)"
    if not re.fullmatch(r"\d{8}T\d{6}", str(data.get("txids_from", ""))):
        return "a created record without the second its txids start from"
    return ""


def contradiction(kind: str, txid: str, data: dict, in_flight: dict, finished) -> str:
    """Why this record cannot follow the ones before it, or "" if it can.

    In a log this program wrote, a txid's records come in order: begin, one decision
    (repeated only after a restart), end; compaction keeps begin and the decision of
    txns in flight and one ``done`` for finished ones. Anything else is damage.
    """
    known = txid in in_flight or txid in finished
    decision = in_flight.get(txid, {}).get("decision")
    if kind in ("begin", "done") and known:
        return f"a {kind} for {txid}, which the log already holds"
    if kind in ("commit", "abort", "end") and txid not in in_flight:
        return (f"a {kind} for {txid}, which " +
                ("had already ended" if txid in finished else "was never begun"))
    if kind in ("commit", "abort") and decision not in (None, kind):
        return f"a {kind} for {txid}, which was already decided {decision}"
    if kind == "end" and (data.get("outcome") == "committed") != (decision == "commit") \
            and not (data.get("outcome") == "aborted" and decision is None):
        return f"an end saying {data.get('outcome')!r} for {txid}, decided {decision}"
    return ""


class ReadAtStart:
    """Mixed into RecoveryLog: read the existing file once, at start (Rule 6)."""

    def _read_existing(self, accept_damage: bool) -> None:
        records, torn, self.damage, good_size, unended = read_lines(self.path)
        begun_at = {}                      # txid -> the line of its begin
        for line_no, kind, txid, data in records:
            if kind == "config":
                problem = config_contradiction(txid, data, self.configs.get(txid, {}))
            elif kind == "created":
                problem = created_contradiction(data, self.created)
            else:
                problem = contradiction(kind, txid, data, self.in_flight, self.finished)
            if problem:
                self.damage.append(Problem(line_no, problem, txid=txid, kind=kind, named=True))
                if kind != "created":              # (which names no transaction: Rule 9)
                    self.in_doubt.add(txid)
            else:
                self._replay(kind, txid, data)
                begun_at.setdefault(txid, line_no)
        kept, risky = self._face_torn_forced_records(torn, begun_at)
        self.damage += risky
        self.damage.sort(key=lambda p: p.line_no)
        if self.damage:
            self._face_damage(accept_damage, begun_at)
        if torn and not (kept or risky):
            self._cut_torn_tail([raw for _, raw in torn], good_size)
        elif self.damage and (torn or unended) and not kept:  # evidence, no compaction
            self._end_last_line()       # now (kept records end it: recovery_log.py)

    def _face_torn_forced_records(self, torn: list, begun_at: dict) -> tuple:
        """(kept, [Problem]) for the torn lines that read as forced records (Rule 6).
        Cutting one could presume a commit aborted, a transfer committed (presumed
        commit: a txid with no record), or bring back a config older than the one its
        branch was told. A commit of one txid in flight, or a begin under presumed
        commit, read with its whole txid, is replayed (kept: a begin with no decision
        after it is aborted by recovery, C13); one whose txid is cut short, or a config,
        is damage, and what it may be about is kept in doubt."""
        kept, problems = False, []
        infos = [e["info"] for e in self.in_flight.values()] + list(self.finished.values())
        presumed_commit = self.presumed_commit or any(i.get("presumption") == "commit"
                                                      for i in infos)
        for line_no, raw in torn:
            kind, candidates = forced_record_in(raw, self.in_flight, self.configs,
                                                presumed_commit)
            whole = _names_whole(raw, candidates)
            if whole and kind == "commit" and len(raw) > _commit_length(raw):
                problems.append(Problem(line_no, (    # it hid another record: anything
                    "its last line is longer than the commit it begins, so it holds what "
                    "was another record (damage, not a crash)"), raw))
                self.in_doubt.add(candidates[0])
                continue
            if whole and kind in ("commit", "begin"):
                data = {} if kind == "commit" else _begin_as_far_as_read(raw)
                self._replay(kind, candidates[0], data)
                self.torn_kept.append((kind, candidates[0], data))
                begun_at.setdefault(candidates[0], line_no)
                log.warning("line %d, the last, is the %s of %s cut short: kept (Rule 6)",
                            line_no, kind, candidates[0])
                kept = True
                continue
            for about in candidates:
                problems.append(Problem(line_no, (
                    "its last record is cut short and may be a forced one: a crash during "
                    "its write (never acknowledged) and damage after it was on disk (maybe "
                    "already acted on) cannot be told apart"), raw, txid=about, kind=kind,
                    named=True))
                self.in_doubt.add(about)
        return kept, problems

    def _end_last_line(self) -> None:
        """Give the last line its end of line, so the next record starts a line of its own."""
        if not ends_a_line(self.path):
            with open(self.path, "ab") as f:
                f.write(b"\n")
                f.flush()
                storage.fsync(f.fileno())

    def _face_damage(self, accept_damage: bool, begun_at: dict) -> None:
        """Refuse a damaged log, or keep what it may hide in doubt (Rule 6): each
        undecided transaction begun before a damaged line (which may be its decision),
        each txid a damaged line names, and each branch whose config it may be (all of
        them if its kind cannot be read)."""
        first, more = self.damage[0], self.damage[1:]
        others = f" (and {len(more)} more damaged line(s): " \
                 f"{', '.join(str(p.line_no) for p in more)})" if more else ""
        if not accept_damage:
            raise LogDamaged(
                f"The recovery log {self.path} is damaged at {first}{others}. Reading "
                "on could abort a transaction a branch already committed, so the "
                "coordinator will not start. Restore the file as it was when the "
                "coordinator stopped (never an older backup: a commit written since "
                "would be presumed aborted), or start "
                "with --accept-damaged-log to keep every transaction this damage may "
                "touch in doubt (never presumed aborted) until an operator settles it.")
        decisions = [p.line_no for p in self.damage            # lines that may hide a
                     if not p.named and p.kind in ("commit", "abort", "")]   # decision
        last = max(decisions, default=0)
        self.in_doubt |= {t for t, e in self.in_flight.items()
                          if e["decision"] is None and begun_at.get(t, 0) < last}
        self.in_doubt |= {p.txid for p in self.damage if p.txid and p.txid not in
                          self.in_flight and p.txid not in self.finished
                          and p.read_as != "created"}       # names no transaction
        for p in self.damage:
            if p.kind in ("config", ""):
                self.in_doubt |= {b for b in self.configs if b.startswith(p.start)
                                  or not p.kind}
        txids, configs = self.doubts()
        log.critical("recovery log %s is damaged at %s%s; accepted: %d transaction(s) "
                     "kept in doubt: %s%s", self.path, first, others, len(txids),
                     ", ".join(txids) or "none known",
                     f"; and the configuration of {', '.join(configs)}" if configs else "")

    def doubts(self) -> tuple:
        """(txids, branches): what is kept in doubt, the transactions and the branches
        whose configuration the damage may touch (in_doubt holds both: a config record
        names its branch where a transaction record names its txid)."""
        configs = sorted(b for b in self.in_doubt if b in self.configs)
        return sorted(t for t in self.in_doubt if t not in self.configs), configs

    def _cut_torn_tail(self, torn: list, good_size: int) -> None:
        """Cut the unfinished last write off (it was never acknowledged), keeping a
        copy in the history file for whoever wants to look."""
        self.torn = len(torn)
        with open(self.history_path, "ab") as history:
            history.write(b"".join(raw.rstrip(b"\n") + b"  (torn tail, cut)\n"
                                   for raw in torn))
            history.flush()
            storage.fsync(history.fileno())
        with open(self.path, "r+b") as f:
            truncate_to(f.fileno(), good_size)
        log.warning("cut a torn tail of %d line(s) from %s: a write cut short by a "
                    "crash, never acknowledged", self.torn, self.path)

    def _replay(self, kind: str, txid: str, data: dict) -> None:
        data = {k: v for k, v in data.items() if k != REWRITE}     # (only a mark)
        if kind == "begin":
            self.in_flight[txid] = {"info": data, "decision": None}
        elif kind in ("commit", "abort"):
            self._entry(txid)["decision"] = kind
            if kind == "commit":
                self._finish_if_presumed_commit(txid, ended="")   # its time is in the line
        elif kind == "end":
            entry = self.in_flight.pop(txid, {"info": {}})
            self._remember_finished(txid, dict(entry["info"], **data))
        elif kind == "done":
            self._remember_finished(txid, data)
        elif kind == "created":
            self.created = data["txids_from"]
        elif kind == "config":
            self.configs[txid] = data
        self.records += 1
