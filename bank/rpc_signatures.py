"""Signed requests, checked: who may call, and that no request is played twice.

Role: the server half of the kit's signatures (bank/rpc.py asks it about every
request before parsing it; the client half, which signs, is rpc_client.sign). It
holds the role keys of a keys file, checks a request's HMAC, learns its role, and
remembers the nonces of recent requests so that a captured one cannot be replayed.

Rules:
  * A request is signed with one role's key over its time, a nonce, the role, the id
    of the server it is for (NAME@HOST:PORT#RUN) and its body. It is refused if any
    part is missing, the key is not one this server holds, the time is more than
    SIGNATURE_WINDOW seconds away, the MAC is wrong, or the nonce was seen already (a
    replay).
  * RUN is new at every start of a server, and the replay cache is not kept across a
    restart: a request signed for an earlier run names another id, so its MAC fails
    here, however its time was stamped (a client whose clock runs ahead could
    otherwise have a captured request replayed once the server restarted).
  * Two refusals are not attacks, and are logged as info: a first call that names no
    server id yet (FIRST_CALL), and a call signed for an earlier run of this server
    (EARLIER_RUN; the client names the id it signed for in X-Bank-Server). In both,
    the client learns the id from the refusal's header and signs for it.
  * The replay cache is bounded and its cost per request flat, whatever the uptime
    (issue 13): nonces expire in time order, a slice of arrivals at a time
    (RecentNonces); a flood beyond MAX_NONCES drops the oldest slice and raises the
    floor below which every timestamp is refused, so no replay slips through.
  * A signature is 64 hex digits (HMAC-SHA256, as sign() writes it); anything else is
    refused as malformed (401) before it is compared: hmac.compare_digest raises on
    text that is not ASCII, which dropped the connection with a traceback in the log.
  * Each role has its own replay cache, and a nonce is at most MAX_NONCE_LENGTH
    characters: a student who floods a server with requests stamped far ahead raises
    only the student role's floor (refusing students for a while), never the floor of
    the servers' own 2PC and lease calls or of the teacher's; and long nonces cannot
    make the cache outgrow its memory.

Glossary:
  nonce     a string used once (a random prefix per process and a count), so that a
            captured request cannot be replayed
  server id who a signature is for: NAME@HOST:PORT#RUN, as the server announces it
  run       a random word new at every start of a server
  floor     the newest timestamp among forgotten nonces: anything signed at or before
            it is refused, as its nonce can no longer be checked
"""

import collections
import hmac
import re
import threading
import time

from bank import keys
from bank.rpc_client import SERVER_HEADER

SIGNATURE_WINDOW = 120         # seconds a signed request stays valid
MAX_NONCES = 100_000           # nonces remembered per role at most (about 13 MB each)
MAX_NONCE_LENGTH = 64          # characters; letters, digits and _ . : + / = -
_NONCE = re.compile(r"[A-Za-z0-9_.:+/=-]{1,%d}" % MAX_NONCE_LENGTH)
_SIGNATURE = re.compile(r"[0-9A-Fa-f]{64}")      # hex HMAC-SHA256


def new_secret() -> str:
    """A fresh random key: 64 hex characters."""
    return keys.new_key()


def load_secret(path) -> keys.Keyring:
    """Read a keys file (or an old single-secret file); refuse a bad one in a sentence."""
    return keys.load_keys(path)


def write_secret(path) -> keys.Keyring:
    """Create a keys file with three fresh role keys, readable by its owner only."""
    return keys.write_keys(path, keys.new_keyring())


class RecentNonces:
    """The nonces seen lately, forgotten oldest first: a replay cache of bounded size.

    A nonce is kept for at least 2 * SIGNATURE_WINDOW after it arrived: a request
    signed at time s is accepted only until s + SIGNATURE_WINDOW, and arrives no earlier
    than s - SIGNATURE_WINDOW, so after that no replay of it can pass the time check.
    Nonces are kept in slices of arrival time (a set per SLICE seconds, oldest first),
    and a slice is forgotten whole once the next one began that long ago (so every
    nonce in it arrived before): each nonce is added once and forgotten once, whatever
    the uptime (issue 13), and holds no time, stamp or tuple of its own, which halves
    the cache's memory (a nonce is kept at most SLICE seconds longer for it).
    At most ``limit`` are kept; when a flood exceeds it, the oldest slice is dropped
    and ``floor_ms`` rises to the newest timestamp in it, so that a replay of any of
    them is still refused. A slice never holds more than limit // SLICES_AT_LIMIT
    nonces, so a flood drops a small part of the cache at a time.
    """

    SLICE = 10.0                 # seconds of arrivals per slice
    SLICES_AT_LIMIT = 16         # a full cache is at least this many slices

    def __init__(self, keep_for: float, limit: int):
        self.keep_for, self.limit = keep_for, limit
        self._slices = collections.deque()   # [first arrival, newest stamp ms, nonces]
        self._count = 0
        self.floor_ms = 0                     # stamps at or below this are refused
        self.steps = 0                        # nonces added or forgotten: the cost is flat

    def __len__(self):
        return self._count

    def add(self, nonce: str, stamp_ms: int, now: float) -> bool:
        """Remember nonce; False if it was seen already (a replay)."""
        self._expire(now)
        for _, _, nonces in self._slices:
            if nonce in nonces:
                return False
        newest = self._slices[-1] if self._slices else None
        if newest is None or now >= newest[0] + self.SLICE or \
                len(newest[2]) >= max(1, self.limit // self.SLICES_AT_LIMIT):
            newest = [now, 0, set()]
            self._slices.append(newest)
        newest[1] = max(newest[1], stamp_ms)
        newest[2].add(nonce)
        self._count += 1
        self.steps += 1
        while self._count > self.limit:
            self._drop_oldest()
        return True

    def _expire(self, now: float) -> None:
        """Forget the slices whose every nonce arrived more than keep_for ago."""
        while len(self._slices) > 1 and self._slices[1][0] <= now - self.keep_for:
            self._drop_oldest()               # the next slice began after its last arrival

    def _drop_oldest(self) -> None:
        _, newest_ms, nonces = self._slices.popleft()
        self._count -= len(nonces)
        self.floor_ms = max(self.floor_ms, newest_ms)
        self.steps += len(nonces)


FIRST_CALL = "signed for no server id yet"      # a client's first call: normal, not an attack
EARLIER_RUN = "signed for an earlier run of this server (it restarted)"   # normal too
UNSIGNED = "unsigned request"          # no signature header at all: how a client in
                                       # another language learns the id (README): normal


class SignatureChecker:
    """Verifies signed requests, learns their role, and refuses replays."""

    def __init__(self, secret, server_id: str, clock=time.time):
        self.keyring = keys.as_keyring(secret)
        self.server_id, self.clock = server_id, clock
        self.nonces = {role: RecentNonces(2 * SIGNATURE_WINDOW, MAX_NONCES)
                       for role in keys.ROLES}
        self._lock = threading.Lock()

    def problem(self, headers, body: bytes):
        """None if the request is properly signed, else why not (for the log)."""
        return self.verify(headers, body)[0]

    def verify(self, headers, body: bytes) -> tuple:
        """(None, role) if the request is properly signed with role's key, else (why, "")."""
        stamp, nonce = headers.get("X-Bank-Time", ""), headers.get("X-Bank-Nonce", "")
        given, role = headers.get("X-Bank-Signature", ""), headers.get("X-Bank-Key", "")
        if not (stamp or nonce or given or role):
            return UNSIGNED, ""
        if not (stamp and nonce and given and role):
            return "a signature header is missing (X-Bank-Time, -Nonce, -Signature, -Key)", ""
        if not _NONCE.fullmatch(nonce):
            return f"malformed nonce (at most {MAX_NONCE_LENGTH} letters, digits or _.:+/=-)", ""
        if not _SIGNATURE.fullmatch(given):
            return "malformed signature (not 64 hex digits)", ""
        key = self.keyring.keys.get(role)
        if key is None:
            return f"signed with a key this server does not hold ({role[:20]!r})", ""
        now = self.clock()
        if not _is_count(stamp) or abs(now * 1000 - int(stamp)) > SIGNATURE_WINDOW * 1000:
            return "stale or malformed timestamp", ""
        signed = (stamp, nonce, role)
        if not _mac_matches(key, signed, self.server_id, body, given):
            claimed = headers.get(SERVER_HEADER, "")           # the id it was signed for
            return self._why_not(key, signed, body, given, claimed), ""
        nonces = self.nonces[role]
        with self._lock:
            if int(stamp) <= nonces.floor_ms:
                return "signed too long ago for its nonce to be checked (a possible replay)", ""
            if not nonces.add(nonce, int(stamp), now):
                return "replayed request", ""
        return None, role


    def _why_not(self, key: str, signed: tuple, body: bytes, given: str, claimed: str) -> str:
        """Why a MAC did not match: signed for no id yet (FIRST_CALL), for an earlier
        run of this server (EARLIER_RUN: the id it claims is ours but for the run, and
        the MAC matches that id), or simply wrong."""
        if _mac_matches(key, signed, "", body, given):
            return FIRST_CALL
        if _earlier_run_of(claimed, self.server_id) and \
                _mac_matches(key, signed, claimed, body, given):
            return EARLIER_RUN
        return "wrong signature"


def _mac_matches(key: str, signed: tuple, server_id: str, body: bytes, given: str) -> bool:
    """Does `given` sign (time, nonce, role) = `signed`, for `server_id`, and body?"""
    return hmac.compare_digest(keys.mac(key, keys.signed_text(*signed, server_id, body)),
                               given)


def _earlier_run_of(claimed: str, server_id: str) -> bool:
    """Is `claimed` this server's id with another RUN (NAME@HOST:PORT#RUN)?"""
    return claimed != server_id and claimed.partition("#")[0] == server_id.partition("#")[0]


def _is_count(text: str) -> bool:
    """A plain ASCII whole number of at most 15 digits (str.isdigit() accepts '²')."""
    return bool(re.fullmatch(r"[0-9]{1,15}", text))
