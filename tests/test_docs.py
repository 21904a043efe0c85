"""Docs that cannot rot: the README documents what the code serves."""

import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bank import docs                                       # noqa: E402
from bank.branch_service import Branch                         # noqa: E402
from bank.coordinator_service import Coordinator               # noqa: E402
from bank.errors import FaultCode                      # noqa: E402
from bank.shell import BankShell                 # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_run_and_test_commands():
    """The README's first code block takes a fresh clone to a running kit and to a test run."""
    first_block = README.split("```")[1]
    assert "python shell.py" in first_block
    assert "python -m pytest" in first_block


def test_every_public_method_is_documented():
    """Every public XML-RPC method of a branch and of the coordinator appears in the README."""
    methods = set(Branch.PUBLIC_METHODS) | {"fault"}
    methods |= set(Coordinator.PUBLIC_METHODS) | set(Coordinator.LAB_METHODS)
    missing = [m for m in sorted(methods) if f"`{m}(" not in README and f" `{m}(" not in README]
    assert not missing, f"undocumented methods: {missing}"


def test_every_public_method_has_help_text():
    """system.methodHelp has something to say about every public method."""
    for cls in (Branch, Coordinator):
        for name in cls.PUBLIC_METHODS:
            assert (getattr(cls, name).__doc__ or "").strip(), f"{cls.__name__}.{name}"


def test_every_fault_code_is_in_the_table():
    """The README's fault-code table lists every stable code with its name."""
    for code in FaultCode:
        assert re.search(rf"\| {int(code)} \| {code.name} \|", README), code.name


@pytest.mark.parametrize("name", sorted(docs.generated()))
def test_generated_parts_of_the_readme_match_the_code(name):
    """The README's file map and every role's table and diagram are generated from the
    code (`python -m bank.docs`): the README's copy is identical, so it cannot drift."""
    assert f"<!-- BEGIN generated:{name} -->" in README, name
    assert docs.region(README, name) == docs.generated()[name], \
        f"README.md's {name} is out of date: run python -m bank.docs"


def test_every_shell_command_is_in_the_readme_table():
    """Every shell command (one do_<verb> each) has a row in the README's command table,
    and its help text ends with an example line."""
    verbs = [name[3:] for name in dir(BankShell) if name.startswith("do_") and name != "do_EOF"]
    missing = [v for v in verbs if f"| `{v}" not in README]
    assert not missing, f"shell commands missing from the README: {missing}"
    for verb in verbs:
        doc = getattr(BankShell, "do_" + verb).__doc__ or ""
        assert "Example:" in doc.strip().splitlines()[-1], verb
