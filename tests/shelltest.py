"""Helpers for the tests that drive the shell: a shell on a cluster, and one command."""

import io

from bank import shell


def shell_on(bank) -> shell.BankShell:
    """A fresh shell on the LocalCluster `bank`, writing to a StringIO."""
    client = shell.coordinator_client(bank.coordinator_url, bank.secret)
    return shell.BankShell(client, bank, bank.home, stdout=io.StringIO())


def run(sh, line: str) -> str:
    """Run one command; return what it printed."""
    sh.stdout.seek(0)
    sh.stdout.truncate()
    sh.onecmd(line)
    return sh.stdout.getvalue()
