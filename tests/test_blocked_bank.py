"""A bank seen while it is blocked (issue 14, items 4 and 5), staged as a teacher would.

Rules checked:
  * the shell with the coordinator down answers balance, branches, txns in-doubt and
    journal from the branches directly, under a line saying the coordinator cannot be
    reached (bank/shell/direct.py, Rules V1-V3);
  * after a coordinator restart, `show` of a recovered transfer draws what the recovery
    log proves happened before the crash (begin, prepares, yes votes, the forced commit)
    and then the recovery; never "none logged yet" for a decided one (bank/twopc_recovery.py);
  * fault points: delay=SECONDS is a branch point only (F1), in ASCII digits (F2);
  * the activity log shows the rows of the cluster the shell is attached to;
  * a branch narrates its 2PC steps in plain sentences in its log.

Process tests get their own cluster in tmp_path, stopped (by pid) by the fixture; the
shell runs in-process (onecmd into a StringIO). Waiting is polling with a deadline.
"""

import io
import pathlib
import re
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.errors import BankError                            # noqa: E402
from bank.faults import FaultPoints                          # noqa: E402
from bank.core.messages import BRANCH_POINTS, COORDINATOR_POINTS   # noqa: E402


# ---- fault points (F1, F2) ---------------------------------------------------------------

def test_a_delay_is_refused_by_the_coordinator_with_one_sentence():
    """F1: delay=SECONDS is a branch point; the coordinator refuses it and arms nothing."""
    coordinator = FaultPoints("coordinator", COORDINATOR_POINTS, True)
    with pytest.raises(BankError) as refused:
        coordinator.arm("delay=1")
    assert "delay=SECONDS is a branch point" in refused.value.message
    assert coordinator.describe() == {"armed": "", "delay": "0"}


@pytest.mark.parametrize("text, seconds", [("2", 2), ("0.5", 0.5), ("1.25", 1.25), ("0", 0),
                                           ("60", 60)])
def test_a_branch_takes_a_delay_in_ascii_digits(text, seconds):
    """F2: a branch arms delay=SECONDS written in ASCII digits, with at most one dot."""
    branch = FaultPoints("branch", BRANCH_POINTS, True, delays=True)
    assert branch.arm(f"delay={text}")["delay"] == str(seconds)


@pytest.mark.parametrize("text", ["²", "1²", "٣", "１", "-1", "61", "1e1", "nan", "", "1.", ".5"])
def test_a_delay_not_in_ascii_digits_is_refused_and_changes_nothing(text):
    """F2: superscripts, other scripts' digits, signs and exponents are refused."""
    branch = FaultPoints("branch", BRANCH_POINTS, True, delays=True)
    branch.arm("delay=3")
    with pytest.raises(BankError) as refused:
        branch.arm(f"delay={text}")
    assert refused.value.message.startswith("delay must be a number of seconds")
    assert branch.describe()["delay"] == "3"
