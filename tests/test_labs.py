"""Every lab script runs on its own and passes: the labs cannot drift from the kit."""

import pathlib
import subprocess
import sys

import pytest

LABS = sorted((pathlib.Path(__file__).resolve().parent.parent / "labs").glob("lab[0-9]*.py"))


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_lab_passes(lab):
    """A lab stages its failure, the kit keeps its guarantees, and the script exits 0."""
    done = subprocess.run([sys.executable, str(lab)], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
