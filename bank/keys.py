"""Keys and roles: who may call which method of the bank's servers (issue 16).

Role: hold the three role keys, read and write key files, and say for every public
method the one role it belongs to. bank/rpc.py asks this module whether a signed
request may run; bank/rpc_client.py asks it which key to sign a call with.

Rules:
  * K1 - three roles, each with its own key. ``student``: open accounts, deposit,
    withdraw, transfer, and every read. ``teacher``: all a student may do, plus the
    lab controls. ``server``: all a student may do (the coordinator relays students'
    banking to the branches), plus the protocol the servers speak among themselves.
    A teacher key cannot speak the protocol; a server key cannot run the lab.
  * K2 - every method belongs to exactly one role (METHOD_ROLES); a request may run a
    method whose role its key's role includes (INCLUDES), and nothing else. A method
    missing from the table belongs to nobody: it is refused to every key.
  * K3 - the signed text names the key: "TIME\\nNONCE\\nROLE\\nSERVER-ID\\n" + body,
    with the role in the X-Bank-Key header, so a server knows whose key to check.
  * K4 - key files are readable by their owner only (mode 0600 where modes exist).
    A keys file has one line per role, "ROLE KEY". A file with one bare key (a
    classroom secret from before roles) is a master key: the three role keys are
    derived from it, so its holder holds every role.
  * K5 - a client signs each call with the weakest role it holds that may make it
    (least privilege), except a server's upkeep (branch.py, coordinator.py:
    Keyring.as_server): its pings and its reads of replication state and
    configuration (UPKEEP) are signed with the server key. Each role has its own
    replay cache (bank/rpc_signatures.py), so a student who floods a server's student
    cache refuses students only: never the servers' protocol nor their upkeep (the
    coordinator still sees the branch up). The students' banking the coordinator
    relays stays signed as student traffic, so a student flood cannot fill the server
    cache through the coordinator. Likewise student calls may keep only a share of a
    server's connections busy (bank/rpc.py STUDENT_SHARE): the rest is the servers'
    and the teacher's.

Glossary:
  role     student, teacher or server: what a key may do
  key id   the name of a key in a signature: its role
  keyring  the role keys one program holds (a student's shell: one; a server: three)
  master   a single secret from which all three role keys are derived
"""

import hashlib
import hmac
import os
import pathlib
import re
import secrets
import sys

from bank import storage

ROLES = ("student", "teacher", "server")        # weakest first: a client signs with the
INCLUDES = {"student": ("student",),            # first one it holds that may call
            "teacher": ("teacher", "student"),
            "server": ("server", "student")}
MIN_KEY_LENGTH = 16

# K2: every public method of a branch and of the coordinator, with its one role.
METHOD_ROLES = {
    # everyone: who is this, and what may I call
    "ping": "student", "system.listMethods": "student", "system.methodHelp": "student",
    "system.methodSignature": "student",
    # students: banking (through the coordinator, or at one branch)
    "open_account": "student", "deposit": "student", "withdraw": "student",
    "transfer": "student",
    # students: every read
    "account": "student", "accounts": "student", "journal": "student",
    "branches": "student", "transactions": "student", "transaction": "student",
    "status": "student", "in_doubt": "student", "audit": "student",
    "replication": "student", "configuration": "student", "heuristics": "student",
    # the teacher: lab controls
    "fault": "teacher", "partition": "teacher", "heal": "teacher", "failover": "teacher",
    "recover": "teacher", "heuristic": "teacher",
    # servers among themselves: 2PC, termination, replication, fencing
    "prepare": "server", "commit": "server", "abort": "server", "decision": "server",
    "outcome": "server",
    "changes_since": "server", "attach_replica": "server", "caught_up": "server",
    "replicate": "server", "follow": "server", "promote": "server",
    # servers and the configuration manager (the coordinator): leases and the in-sync set
    "lease": "server", "add_replica": "server", "drop_replica": "server",
    "use_manager": "server", "batch": "server",
}
assert set(METHOD_ROLES.values()) <= set(ROLES)

# K5: the student-role methods a server calls for its own upkeep (health, replication
# state, configuration), signed with the server key by a server's keyring.
UPKEEP = ("ping", "replication", "configuration", "status")


def role_of(method: str) -> str:
    """The role a method belongs to, or "" if it belongs to nobody (K2)."""
    return METHOD_ROLES.get(method, "") if isinstance(method, str) else ""


def may_call(role: str, method: str) -> bool:
    """K2: may a request signed with `role`'s key run `method`?"""
    return role_of(method) in INCLUDES.get(role, ())


def refusal(role: str, method: str) -> str:
    """The one sentence a refused caller reads (HTTP 403)."""
    owner = role_of(method)
    whose = f"it is for the {owner} role" if owner else "it belongs to no role"
    return (f"Forbidden: the {role} key may not call {str(method)[:60]}: {whose}. "
            "Nothing was changed.")


# ---- keyrings ---------------------------------------------------------------------------

class Keyring:
    """The role keys a program holds: {role: key}. Signs each call with the weakest
    role it holds that may make it (least privilege)."""

    def __init__(self, keys: dict, prefer: str = ""):
        unknown = set(keys) - set(ROLES)
        assert not unknown, f"unknown roles {unknown}"
        assert all(len(k) >= MIN_KEY_LENGTH for k in keys.values())
        self.keys = dict(keys)
        self.prefer = prefer if prefer in self.keys else ""   # K5: a server's own role

    def as_server(self) -> "Keyring":
        """K5: the same keys, signing a server's upkeep calls (UPKEEP) with the server
        key (a server's keyring); as it was if it holds no server key."""
        return Keyring(self.keys, prefer="server")

    @classmethod
    def from_master(cls, master: str) -> "Keyring":
        """K4: the three role keys derived from one classroom secret."""
        return cls({role: hmac.new(master.encode(), f"bank-kit role {role}".encode(),
                                   hashlib.sha256).hexdigest() for role in ROLES})

    @classmethod
    def parse(cls, text: str, where: str = "the key text") -> "Keyring":
        """A keys file's text: "ROLE KEY" lines (# starts a comment), or one bare key."""
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln]
        if len(lines) == 1 and len(lines[0].split()) == 1:
            return cls.from_master(_checked_key(lines[0], where))
        keys = {}
        for line in lines:
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ROLES:
                raise ValueError(f"{where}: each line must be 'ROLE KEY' with ROLE one of "
                                 f"{', '.join(ROLES)}; found {line[:40]!r}.")
            keys[parts[0]] = _checked_key(parts[1], where)
        if not keys:
            raise ValueError(f"{where} holds no key.")
        return cls(keys)

    @property
    def roles(self) -> tuple:
        return tuple(r for r in ROLES if r in self.keys)

    def only(self, role: str) -> "Keyring":
        """The same keyring cut down to one role (what to hand to that role)."""
        if role not in self.keys:
            raise ValueError(f"This keyring has no {role} key.")
        return Keyring({role: self.keys[role]})

    def role_for(self, method: str) -> str:
        """The weakest role held that may call `method`; the weakest held if none may
        (the server then refuses it with a sentence naming role and method). A
        server's keyring signs its upkeep with the server key (K5)."""
        if self.prefer and method in UPKEEP:
            return self.prefer
        for role in self.roles:
            if may_call(role, method):
                return role
        return self.roles[0]

    def text(self) -> str:
        """This keyring as a keys file (K4)."""
        lines = ["# Bank kit keys: one line per role, 'ROLE KEY'. Keep this file private."]
        lines += [f"{role} {self.keys[role]}" for role in self.roles]
        return "\n".join(lines) + "\n"


def as_keyring(secret):
    """None, a Keyring, or a key text (a keys file's content or a bare master key)."""
    if secret is None or isinstance(secret, Keyring):
        return secret
    return Keyring.parse(str(secret))


def _checked_key(key: str, where: str) -> str:
    if len(key) < MIN_KEY_LENGTH or not re.fullmatch(r"[!-~]+", key):
        raise ValueError(f"A key in {where} is too short or not plain text (at least "
                         f"{MIN_KEY_LENGTH} printable characters); make keys with: "
                         "python cluster.py secret classroom.keys")
    return key


# ---- key files -------------------------------------------------------------------------

def new_key() -> str:
    """A fresh random key: 64 hex characters."""
    return secrets.token_hex(32)


def new_keyring() -> Keyring:
    """Three fresh, independent role keys (not derived from one another)."""
    return Keyring({role: new_key() for role in ROLES})


_WARNED = set()              # keys files already said to be readable by others (K4)


def load_keys(path) -> Keyring:
    """Read a keys file (or an old single-secret file); refuse a bad one in a sentence."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"Cannot read the keys file {path}: {exc.strerror}.")
    except UnicodeDecodeError:
        raise SystemExit(f"{path} is not a keys file: it is not text (UTF-8). Make one "
                         "with `python cluster.py secret FILE`.") from None
    try:
        keyring = Keyring.parse(text, str(path))
    except ValueError as exc:
        raise SystemExit(str(exc))
    if os.name != "nt" and path.stat().st_mode & 0o077 and path not in _WARNED:   # K4:
        _WARNED.add(path)                                                # said, once
        print(f"Warning: the keys file {path} can be read by other users of this machine "
              f"(mode {path.stat().st_mode & 0o777:o}); `chmod 600 {path}` makes it "
              "private again.", file=sys.stderr)
    return keyring


def write_keys(path, keyring: Keyring) -> Keyring:
    """K4: write a keys file readable by its owner only (mode 0600 where modes exist)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    # O_BINARY (Windows only): without it os.open's file is in text mode, and the C
    # library turns each "\r\n" Python writes into "\r\r\n".
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(keyring.text())
    storage.replace(tmp, path)
    return keyring


# ---- the signed text (K3): what a client in another language computes ------------------

def signed_text(stamp: str, nonce: str, role: str, server_id: str, body: bytes) -> bytes:
    """TIME, NONCE, ROLE (the key id) and SERVER-ID, each ending in a newline, then the
    body exactly as sent. The signature is HMAC-SHA256 of this under the role's key."""
    return f"{stamp}\n{nonce}\n{role}\n{server_id}\n".encode() + body


def mac(key: str, text: bytes) -> str:
    return hmac.new(key.encode(), text, hashlib.sha256).hexdigest()
