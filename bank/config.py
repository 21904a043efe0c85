"""cluster.ini: the one reader of the kit's configuration file.

Role: turn cluster.ini (see the sample in the repository) into plain values for the
coordinator (``read_config``), the shell and the window (``coordinator_address``).
It never starts anything, and no other module parses the file.

Format:
  [coordinator]  name, host, port, log, secret_file, allow_faults
  [branches]     NAME = PRIMARY_URL[, REPLICA_URL...]   (names keep their case)
"""

import configparser
import pathlib


def read_config(path) -> dict:
    """cluster.ini -> options. See cluster.ini in the repository for the format.

    A file that cannot be read as such (not UTF-8, a line outside a section, a name
    given twice, a port that is not one) stops the program with one sentence naming
    the file, never a traceback. Values are taken as written: no %(name)s expansion
    (a "%" in a URL or a path is just a character)."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        if not cp.read(path, encoding="utf-8"):
            raise SystemExit(f"Cannot read the config file {path}.")
    except UnicodeDecodeError:
        raise SystemExit(f"Cannot read the config file {path}: it is not UTF-8 text.") from None
    except configparser.Error as exc:
        raise SystemExit(f"Cannot read the config file {path}: {_problem(exc)}.") from None
    section = cp["coordinator"] if cp.has_section("coordinator") else {}
    port = section.get("port", "0").strip()
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise SystemExit(f"Cannot use the config file {path}: port = {port!r} is not a "
                         "port (0, any free one, to 65535).")
    branches = dict(cp["branches"]) if cp.has_section("branches") else {}
    # configparser lower-cases keys; keep the names as written in the file.
    names = {k.lower(): k for k in _raw_keys(path, "branches")}
    return {"branches": {names.get(k, k): v.strip() for k, v in branches.items()},
            **{k: v for k, v in section.items()}}


def coordinator_address(path) -> tuple:
    """cluster.ini -> (the coordinator's URL as a client dials it, its secret file or None).

    A coordinator listening on every interface (0.0.0.0, ::) is dialled on loopback;
    a relative secret_file is looked up beside the config file if not found here.
    """
    config = read_config(path)
    if set(config) == {"branches"}:
        raise SystemExit(f"Cannot read a [coordinator] section from {path}.")
    host = config.get("host", "127.0.0.1").strip()
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    secret_file = config.get("secret_file", "").strip() or None
    beside = pathlib.Path(path).resolve().parent / (secret_file or "")
    if secret_file and not pathlib.Path(secret_file).exists() and beside.exists():
        secret_file = str(beside)
    return f"http://{host}:{config.get('port', '9000').strip()}", secret_file


def _problem(exc: configparser.Error) -> str:
    """What is wrong in the file, in words (configparser's own text spans lines)."""
    line = getattr(exc, "lineno", "?")
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return (f"line {line} comes before any [section] (the file has [coordinator] "
                "and [branches] sections)")
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"{exc.option} is given twice in [{exc.section}] (line {line}); give it once"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"[{exc.section}] is given twice (line {line}); give it once"
    if isinstance(exc, configparser.ParsingError):
        return "a line there is not NAME = VALUE, a [section] or a # comment"
    return str(exc).splitlines()[0].rstrip(".")


def _raw_keys(path, section_name) -> list:
    keys, inside = [], False
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{section_name}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            keys.append(line.split("=", 1)[0].strip())
    return keys
