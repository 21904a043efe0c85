"""The README's generated parts: the file map and every role's table and diagram.

Role: write, from the code itself, the parts of README.md that would otherwise drift:
the map of files (each module's first docstring line) and, for each role of the core,
its transition table and its state diagram. ``python -m bank.docs`` rewrites them in
README.md (``--check`` only says whether they are current); tests/test_docs.py fails
when the README's copy differs.

Rules:
  * Only text between ``<!-- BEGIN generated:NAME -->`` and ``<!-- END generated:NAME -->``
    is ever rewritten; everything else in the README is written by people.
"""

import argparse
import ast
import pathlib
import re
import sys

from bank import keys
from bank.core import coordinator, manager, participant, replica

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAMS = ("branch.py", "coordinator.py", "cluster.py", "shell.py", "gui_tk.py", "explore.py")
ROLES = {"participant": participant.PARTICIPANT, "coordinator": coordinator.COORDINATOR,
         "replica": replica.REPLICA}


def first_line(path: pathlib.Path) -> str:
    """The first line of a module's docstring (its role, in one sentence)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0].rstrip(".") if doc.strip() else ""


def file_map() -> str:
    """A table of the programs people run, then every module of the package."""
    rows = ["| file | role |", "|---|---|"]
    for name in PROGRAMS:
        if (ROOT / name).exists():
            rows.append(f"| `{name}` | {first_line(ROOT / name)} |")
    for path in sorted((ROOT / "bank").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" and not first_line(path):
            continue
        rows.append(f"| `{rel}` | {first_line(path)} |")
    rows.append("| `labs/`, `bench/`, `tests/`, `docs/` | the course, benchmarks, the test suite, "
                "pictures |")
    return "\n".join(rows)


def _name(value) -> str:
    return getattr(value, "value", str(value))


def role_table(table: dict) -> str:
    """One role's transition table as aligned text: rule, state, event, next, effects."""
    rows = [("rule", "state", "event", "next state", "effects, in order")]
    for (state, event), step in table.items():
        effects = ", ".join(_name(e) for e in step.effects) or "-"
        rows.append((step.rule, _name(state), _name(event), _name(step.next), effects))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4]
             for r in rows]
    lines.append("(any other step is refused as a protocol violation, changing nothing)")
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```"


def presumption_rows() -> str:
    """The rows each other presumption changes in the coordinator's table (C10-C13):
    presumed abort (above) is the default; the others are the same table but these."""
    parts = []
    for presumption, table in coordinator.TABLES.items():
        if table is coordinator.COORDINATOR:
            continue
        changed = {k: v for k, v in table.items() if coordinator.COORDINATOR.get(k) != v}
        text = role_table(changed).splitlines()[:-2]          # without the closing note
        gone = sorted({_name(k[0]) for k in coordinator.COORDINATOR if k not in table})
        note = f"(every other row as presumed abort{'; never ' + ', '.join(gone) if gone else ''})"
        parts.append(f"Presumed {presumption.value} (`--presumption {presumption.value}`):\n\n"
                     + "\n".join(text + [note, "```"]))
    return "\n\n".join(parts)


def manager_table() -> str:
    """The configuration manager's table: it has one state (the configuration), so its
    rows are keyed by event alone; the guards are in bank/core/manager.py."""
    rows = [("rule", "event", "effects, in order")]
    for event, step in manager.MANAGER.items():
        rows.append((step.rule, _name(event), ", ".join(_name(e) for e in step.effects)))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:2], widths)) + "  " + r[2]
             for r in rows]
    lines.append("(a request the guards refuse changes nothing: not the recorded primary (M2), "
                 "the old lease (M4), not in sync (M5))")
    return "```\n" + "\n".join(line.rstrip() for line in lines) + "\n```"


def role_diagram(table: dict) -> str:
    """One role's state diagram (Mermaid, which GitHub draws): every change of state."""
    edges = {}
    for (state, event), step in table.items():
        if step.next != state:
            edges.setdefault((_name(state), _name(step.next)), []).append(
                f"{step.rule} {_name(event)}")
    ident = lambda s: re.sub(r"\W", "_", s)   # noqa: E731 - Mermaid wants plain names
    lines = ["```mermaid", "stateDiagram-v2"]
    for (a, b), labels in edges.items():
        lines.append(f"    {ident(a)} --> {ident(b)}: {' / '.join(labels)}")
    return "\n".join(lines + ["```"])


ROLE_WHAT = {"student": "banking and every read", "teacher": "the lab controls",
             "server": "the servers among themselves: 2PC, termination, replication, "
                       "fencing, leases"}


def method_roles() -> str:
    """The table of methods by role (bank/keys.py METHOD_ROLES, rule K2)."""
    rows = ["| role | what | methods |", "|---|---|---|"]
    for role in keys.ROLES:
        methods = [m for m, r in keys.METHOD_ROLES.items() if r == role]
        rows.append(f"| `{role}` | {ROLE_WHAT.get(role, '')} | "
                    + ", ".join(f"`{m}`" for m in methods) + " |")
    return "\n".join(rows)


def generated() -> dict:
    """NAME -> the text the README must hold between that NAME's markers."""
    parts = {"file-map": file_map(), "method-roles": method_roles(),
             "manager-table": manager_table(), "presumption-rows": presumption_rows()}
    for role, table in ROLES.items():
        parts[f"{role}-table"] = role_table(table)
        parts[f"{role}-diagram"] = role_diagram(table)
    return parts


def region(text: str, name: str) -> str:
    """The README's current text between NAME's markers ('' if there are none)."""
    m = re.search(rf"<!-- BEGIN generated:{name} -->\n(.*?)<!-- END generated:{name} -->",
                  text, re.S)
    return m.group(1).rstrip("\n") if m else ""


def rewrite(text: str) -> str:
    for name, body in generated().items():
        text = re.sub(rf"(<!-- BEGIN generated:{name} -->\n).*?(<!-- END generated:{name} -->)",
                      lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bank.docs",
        description="Rewrite the README's generated parts (the file map, the role tables "
                    "and diagrams) from the code.")
    parser.add_argument("--check", action="store_true",
                        help="only say whether README.md is current (exit 1 if not); "
                             "write nothing")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = rewrite(old)
    if new == old:
        print("README.md is up to date.")
        return 0
    if args.check:
        print("README.md is out of date: `python -m bank.docs` rewrites its generated parts.")
        return 1
    readme.write_text(new, encoding="utf-8", newline="\n")   # LF on Windows too
    print("README.md rewritten.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
