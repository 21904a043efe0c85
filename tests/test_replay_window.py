"""The replay window (bank/window/replay.py) on a real Tk under Xvfb.

A run the explorer saved is opened, stepped forward and back, and the state shown at
each step is the state the explorer's replay computes for that step.
"""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank.explorer import cli, search, traces           # noqa: E402
from bank.explorer.world import World                   # noqa: E402
from test_gui import display                            # noqa: E402,F401  (the Xvfb fixture)

tk = pytest.importorskip("tkinter")


@pytest.fixture
def saved_run(tmp_path) -> pathlib.Path:
    """A violation of the broken variant abort-on-restart, saved by the explorer."""
    path = tmp_path / "run.json"
    text, found = cli.explore(["--variant", "abort-on-restart", "--save", str(path)])
    assert found and path.exists(), text
    return path


def test_replay_steps_forward_and_back_showing_each_steps_state(display, saved_run):  # noqa: F811
    """Stepping through a saved run shows, at every step, the parties' state after that
    step as the simulator computes it, and going back shows the earlier state again."""
    from bank.window.replay import Replay, party_states
    config, actions = traces.load(saved_run)
    world = World(config)
    states = search.replay(world, actions)[0]
    root = tk.Tk()
    try:
        view = Replay(root, saved_run)
        assert "nothing has happened yet" in view.diagram.get("1.0", "end")
        shown = []
        for step in range(len(actions) + 1):
            view.show(step)
            root.update()
            expected = party_states(world, states[step])
            for party, lines in expected.items():
                assert all(line in view.state_text() for line in lines), (step, party)
            shown.append(view.state_text())
        assert "violation of" in str(root.winfo_children()[1].cget("text"))
        view.show(len(actions) + 5)                       # past the end: stays at the end
        assert view.step == len(actions)
        view.show(2)
        root.update()
        assert view.state_text() == shown[2]
        marked = view.diagram.get(*view.diagram.tag_ranges("now")[:2])
        notes = search.replay(world, actions)[1][1]       # step 2's lines, and only them
        assert marked.count("\n") == len(notes) and notes[0].label in marked, marked
    finally:
        root.destroy()


def test_a_file_that_is_not_a_run_is_refused_with_a_sentence(display, tmp_path):  # noqa: F811
    """V2: a file that is not a saved run is refused with one sentence, no traceback."""
    from bank.window.replay import open_window
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert open_window(bad) == 2
