"""What a cluster's home holds on disk, read while the cluster is stopped (Rule L2).

Role: the launcher (bank/local_cluster.py) asks this module how many replicas a home's
data holds, whether a branch's own database is still its primary's (no failover since),
and on which ports the members ran last. It reads files only; it starts nothing.

Rules:
  * Rule L2 - a home's data keeps its layout: started without ``--replicas``, a
    cluster has as many replicas per branch as its data folder holds databases for
    (none for a new home; ``replicas_in``). Fewer replicas than the data holds is
    allowed only while no failover happened: every branch's own database still says
    it is the primary at its newest epoch, and the coordinator's recovery log records
    no newer epoch (a failover whose promote never arrived changes no database):
    ``why_replaced``. After a failover a replica serves the branch (or is to) and the
    old primary's database is fenced (or will be, at its first lease), so fewer is
    refused with a sentence (``python cluster.py reset`` starts a new bank). In a home
    with replicas, its members start again on the ports of the last run where they
    are free (HOME/data/cluster.ports, which keeps the port of a member left out of a
    run with fewer replicas): a replica promoted there knows its old primary by that
    address.

Glossary:
  home     the folder that holds a cluster's data/ and logs/
  replica  data/NAME-replicaK.db: the K-th replica of branch NAME
  epoch    the generation of a branch's primaries; a failover raises it
           (bank/branch_roles.py records it in the database, the configuration
           manager in the coordinator's recovery log)
"""

import contextlib
import json
import pathlib
import sqlite3

from bank.recovery_log_reading import read_lines

DEFAULT_BRANCHES = ("Mumbai", "Delhi")
MAX_REPLICAS = 3              # per branch, at most


def replica_name(branch: str, k: int = 1) -> str:
    """The K-th replica of a branch, as a member of the cluster: "Mumbai-replica1"."""
    return f"{branch}-replica{k}"


def replica_dbs(data: pathlib.Path, branch: str) -> dict:
    """K -> data/BRANCH-replicaK.db, for each replica database the folder holds."""
    paths = {k: data / f"{replica_name(branch, k)}.db" for k in range(1, MAX_REPLICAS + 1)}
    return {k: path for k, path in paths.items() if path.exists()}


def replicas_in(home, branches=DEFAULT_BRANCHES) -> int:
    """L2: how many replicas per branch a home's data holds databases for (0: none)."""
    data = pathlib.Path(home) / "data"
    return max((k for name in branches for k in replica_dbs(data, name)), default=0)


def why_replaced(home, branches=DEFAULT_BRANCHES, recovery_log=None) -> dict:
    """L2: branch -> why its own database (data/NAME.db) may no longer be its primary's:
    it says it is not the primary, or is at an older epoch than one of its replicas'
    databases (a replica took over), or the configuration manager recorded a newer
    epoch in the coordinator's recovery log (HOME/logs/recovery.log unless said
    otherwise): a failover whose promote never arrived leaves every database as it
    was, but the manager names the replica, so the old primary would be fenced at its
    first lease. A database or log that cannot be read counts as replaced. Read while
    the cluster is stopped."""
    data = pathlib.Path(home) / "data"
    log_path = pathlib.Path(recovery_log or pathlib.Path(home) / "logs" / "recovery.log")
    recorded, log_problem = recorded_epochs(log_path)
    why = {}
    for name in branches:
        role, epoch = role_on_disk(data / f"{name}.db")
        newest = max((role_on_disk(db)[1] for db in replica_dbs(data, name).values()),
                     default=0)
        if not role:
            why[name] = f"{name}.db cannot be read or records no role"
        elif role != "primary":
            why[name] = f"{name}.db is {role} at epoch {epoch}"
        elif epoch < newest:
            why[name] = f"{name}.db is at epoch {epoch}, a replica's database at {newest}"
        elif log_problem:
            why[name] = log_problem
        elif recorded.get(name, 0) > epoch:
            why[name] = (f"the coordinator recorded {name} at epoch {recorded[name]}, "
                         f"{name}.db is at {epoch}")
    return why


def recorded_epochs(path: pathlib.Path) -> tuple:
    """({branch: epoch as its configuration manager last recorded it}, "") from the
    coordinator's recovery log (config records: bank/config_manager.py), or ({}, why it
    cannot be read); ({}, "") if there is no log yet."""
    if not path.exists():
        return {}, ""
    try:
        records, _, damage, _, _ = read_lines(path)
    except OSError as exc:
        return {}, f"the recovery log {path} cannot be read ({exc.strerror or exc})"
    if damage:
        return {}, f"the recovery log {path} is damaged (its failovers cannot be read)"
    return {branch: record["epoch"] for _, kind, branch, record in records
            if kind == "config" and isinstance(record.get("epoch"), int)}, ""


def role_on_disk(db: pathlib.Path) -> tuple:
    """(role, epoch) as a branch's database records them (branch_roles.py), or ("", 0)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta "
                                     "WHERE key IN ('role', 'epoch')").fetchall())
        return meta.get("role", ""), int(meta.get("epoch") or 0)
    except (sqlite3.Error, ValueError):
        return "", 0


def ports_file(home) -> pathlib.Path:
    """HOME/data/cluster.ports: each member's port in the last run (Rule L2)."""
    return pathlib.Path(home) / "data" / "cluster.ports"


def ports_of(home) -> dict:
    """member name -> its port in the home's last run ({} if none is known)."""
    try:
        ports = json.loads(ports_file(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {n: p for n, p in ports.items() if isinstance(p, int)} \
        if isinstance(ports, dict) else {}
