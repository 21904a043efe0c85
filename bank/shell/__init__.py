"""The interactive shell: the whole bank from a `cmd` prompt, scriptable for labs.

Role: turn what a person types into calls to the coordinator (for crash and restart,
to the local cluster; for reads while the coordinator is down, to the branches
themselves) and show the answers as tables, sentences and text
sequence diagrams. Most students meet the kit here. shell.py at the top level only
reads the command line, connects, and runs this BankShell.

The shell is split by role; each file holds one group of commands:
    plumbing.py      running one command: output, errors, arguments (the base class)
    banking.py       branches, accounts, open, balance, deposit, withdraw, transfer
    records.py       journal, txns, show, recover, check, counters
    direct.py        reads from the branches themselves while the coordinator is down
    lab.py           crash, restart, fault, partition, heal, failover
    activity_log.py  log, export, clear
    guide.py         help, quit, exit; typo hints and tab completion
What a person is shown (diagrams, the audit, a transfer's state in words) is computed
without I/O in bank/views.py, shared with the window.

Rules:
  * Rule 1 - one ``do_<verb>`` per command; its docstring is its help: the first line
    is "USAGE: what it does", the last line "Example: ...". ``help`` is built from them.
  * Rule 2 - the shell decides nothing about money; the branches and the coordinator do.
  * Rule 3 - never guess an outcome: no answer means "not known", never "aborted".
  * Rule 4 - every error is one sentence and the shell keeps running. A failed command
    (an error, a failed check, an aborted transfer) makes a script exit non-zero.
  * Rule 5 - every command and its result go to the activity log (logs/activity.csv).
    The branch journals are the bank's record; nothing here ever clears them.

Glossary:
  acct          an account as typed: BRANCH/NUMBER, e.g. Mumbai/1001
  node          a cluster member: a branch name or "coordinator" (crash, restart, fault)
  txid          a transfer's 2PC id, e.g. C1-20261125T131733-6cb3c5
  request id    the id the shell sends with a transfer (shell-...); a retry applies once
  activity log  what people did from the shell or the window; a convenience, not a record
  journal       a branch's append-only list of every balance change (the bank's record)
"""

from bank.shell.activity_log import ActivityCommands
from bank.shell.banking import BankingCommands
from bank.shell.direct import DirectReads
from bank.shell.explore import ExploreCommands
from bank.shell.guide import GuideCommands
from bank.shell.lab import LabCommands
from bank.shell.plumbing import (KIT, ShellCore, ShellError, coordinator_client,
                                 doc_parts, sentence)
from bank.shell.records import RecordsCommands

__all__ = ["BankShell", "KIT", "ShellError", "coordinator_client", "doc_parts", "sentence"]


class BankShell(BankingCommands, RecordsCommands, LabCommands, ExploreCommands,
                ActivityCommands, GuideCommands, DirectReads, ShellCore):
    """The bank at a prompt: every command class over the plumbing.

    The order of the bases is the order of `help`. `local` is the LocalCluster (for
    crash and restart), or None when attached to a coordinator by URL.
    """
