"""cluster.ini: the one reader of the kit's configuration file.

Role: turn cluster.ini (see the sample in the repository) into plain values for the
coordinator, the shell and the window. It never starts anything.

Format:
  [coordinator]  name, host, port, log, secret_file, allow_faults
  [branches]     NAME = PRIMARY_URL[, REPLICA_URL...]   (names keep their case)
"""

import configparser


def read_config(path) -> dict:
    """cluster.ini -> options. See cluster.ini in the repository for the format."""
    cp = configparser.ConfigParser()
    if not cp.read(path, encoding="utf-8"):
        raise SystemExit(f"Cannot read the config file {path}.")
    section = cp["coordinator"] if cp.has_section("coordinator") else {}
    branches = dict(cp["branches"]) if cp.has_section("branches") else {}
    # configparser lower-cases keys; keep the names as written in the file.
    names = {k.lower(): k for k in _raw_keys(path, "branches")}
    return {"branches": {names.get(k, k): v.strip() for k, v in branches.items()},
            **{k: v for k, v in section.items()}}


def _raw_keys(path, section_name) -> list:
    keys, inside = [], False
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{section_name}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            keys.append(line.split("=", 1)[0].strip())
    return keys
