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
    step as the simulator computes it, and going back shows the earlier state again; a
    diagram wider than the window scrolls sideways (V4)."""
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
        view.show(len(actions))                           # V4: a wide diagram scrolls
        root.geometry("300x400")
        root.update()
        assert view.diagram.xview()[1] < 1.0             # wider than the window: not cut,
        view.diagram.xview_moveto(1.0)                    # but scrolled to
        root.update()
        assert view.diagram.xview()[1] == 1.0
    finally:
        root.destroy()


def test_a_file_that_is_not_a_run_is_refused_with_a_sentence(display, tmp_path):  # noqa: F811
    """V2: a file that is not a saved run is refused with one sentence, no traceback."""
    from bank.window.replay import open_window
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    assert open_window(bad) == 2


# ---- a transfer's own trace (bank/window/trace_replay.py) ----------------------------------

def _row(ms, src, dst, msg, detail=""):
    return {"at": "", "ms": ms, "from": src, "to": dst, "msg": msg, "detail": detail}


TRACE = {"txid": "C1-20261128T225709-5c0926", "state": "committed", "outcome": "committed",
         "src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "1200.00", "reason": "",
         "participants": ["Delhi", "Mumbai"], "waiting_for": [], "trace": [
             _row(0, "coordinator", "log", "begin", "Mumbai/1001 -> Delhi/1002 1200.00"),
             _row(0, "coordinator", "Delhi", "prepare", "1002 +1200.00"),
             _row(1, "coordinator", "Mumbai", "prepare", "1001 -1200.00"),
             _row(16, "Delhi", "coordinator", "vote", "yes"),
             _row(20, "Mumbai", "coordinator", "vote", "yes"),
             _row(20, "coordinator", "log", "decision", "commit (forced to disk)"),
             _row(21, "coordinator", "Delhi", "commit"),
             _row(21, "coordinator", "Mumbai", "commit"),
             _row(25, "Delhi", "coordinator", "ack", "commit"),
             _row(25, "Mumbai", "coordinator", "ack", "commit"),
             _row(25, "coordinator", "log", "end", "every participant acknowledged")]}

# step -> lines the parties panel must show after it (Rule RP1)
EXPECTED = {
    0: ["recovery log: empty", "durable state: nothing yet"],
    1: ["recovery log: begin", "doing: asking for votes"],
    4: ["Delhi\n    durable state: prepared (durable): waiting for the decision\n    held: 0.00",
        "Mumbai\n    durable state: nothing yet\n    held: 0.00"],
    5: ["Mumbai\n    durable state: prepared (durable): waiting for the decision\n"
        "    held: 1,200.00\n    balance change: none yet"],
    6: ["recovery log: begin, commit (forced)", "doing: decided commit: telling the branches",
        "held: 1,200.00"],
    9: ["Delhi\n    durable state: committed (durable)\n    held: 0.00\n"
        "    balance change: 1002 +1,200.00",
        "Mumbai\n    durable state: prepared (durable): waiting for the decision\n"
        "    held: 1,200.00"],
    11: ["recovery log: begin, commit (forced), end", "balance change: 1001 -1,200.00",
         "doing: finished: every branch acknowledged"],
}


def test_a_saved_trace_steps_forward_and_back_with_every_partys_state(display, tmp_path):  # noqa: F811
    """RP1: stepping through a transfer's saved trace shows, after each message, the
    state the messages imply (a vote yes: prepared and holding the debit; the logged
    commit: the decision in the recovery log; an ack: committed, hold released, balance
    changed), the step's arrow marked; going back shows the earlier state again. Step 0
    says it is the start, not that the coordinator kept no message (it has 11)."""
    from bank.window.trace_replay import START, TraceReplay, load_trace, save_trace
    path = save_trace(TRACE, tmp_path / "trace.json")
    root = tk.Tk()
    try:
        view = TraceReplay(root, load_trace(path))
        root.update()
        seen = {}
        for step in range(len(TRACE["trace"]) + 1):
            view.show(step)
            root.update()
            seen[step] = view.state_text()
            for line in EXPECTED.get(step, []):
                assert line in seen[step], (step, line, seen[step])
            assert bool(view.diagram.find_withtag("now")) == (step > 0)
            assert len(view.diagram.find_withtag("arrow")) <= step
        assert "step 11: coordinator → log   end" in view.where.cget("text")
        view.show(99)                                   # past the end: stays at the end
        assert view.step == len(TRACE["trace"])
        for step in (6, 5, 0):                          # back: the same states again
            view.show(step)
            root.update()
            assert view.state_text() == seen[step], step
        assert view.diagram.find_withtag("decision-box") == ()     # not decided at step 0
        notes = [view.diagram.itemcget(i, "text") for i in view.diagram.find_withtag("note")]
        assert notes == [START] and "No messages kept" not in " ".join(notes), notes
    finally:
        root.destroy()


@pytest.mark.parametrize("content", [
    "{}", "not json", '{"txid": "x", "trace": [1]}',
    '{"txid": "x", "trace": [{"from": "a", "to": "b", "msg": "prepare", "ms": 0}]}',
    '{"txid": "x", "trace": [{"from": "a", "to": "b", "msg": "prepare", "detail": "",'
    ' "ms": "abc"}]}'], ids=["empty", "not-json", "a-number", "no-detail", "ms-text"])
def test_a_file_that_is_not_a_trace_is_refused_with_a_sentence(display, tmp_path, content,  # noqa: F811
                                                              capsys):
    """RP2: gui_tk.py --replay on a file that is neither a trace nor an explorer run
    (or a trace with rows missing their detail or time, edited by hand) answers one
    sentence and exit code 2, never a traceback (a missing detail raised KeyError at
    the first step)."""
    from bank.window.trace_replay import open_file
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    assert open_file(bad, 10) == 2
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "trace" in out and "Traceback" not in out


def test_screenshot_of_a_trace_replay(display, tmp_path):  # noqa: F811
    """A replay stopped at the commit point (step 6) can be captured. With
    BANK_SCREENSHOT=1 it replaces docs/trace-replay.png for the README."""
    import os
    import struct
    from test_gui import X11, until
    from bank.window.look import Look
    from bank.window.trace_replay import TraceReplay
    x11 = X11.open(display)
    if x11 is None:
        pytest.skip("libX11 cannot be loaded here: no screenshot")
    root = tk.Tk()
    try:
        Look(root, 12)
        root.geometry("1280x600+0+0")
        view = TraceReplay(root, TRACE)
        view.show(6)
        until(root, lambda: root.winfo_ismapped() and root.winfo_width() == 1280
              and view.diagram.find_withtag("decision-box"), "the replay drawn")
        root.update()
        png = x11.screenshot(0, 0, 1280, 600)
        assert struct.unpack(">II", png[16:24]) == (1280, 600)
        target = pathlib.Path(__file__).resolve().parent.parent / "docs" / "trace-replay.png" \
            if os.environ.get("BANK_SCREENSHOT") == "1" else tmp_path / "replay.png"
        target.write_bytes(png)
    finally:
        root.destroy()


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT (Ctrl-C) to the window")
@pytest.mark.parametrize("kind", ["trace", "explorer-run"])
def test_ctrl_c_closes_a_replay_window(display, saved_run, tmp_path, kind):  # noqa: F811
    """Rule W1 (bank/window/__init__.py): Ctrl-C in the terminal closes a replay window
    nobody touches (a saved trace, or an explorer's run), as it closes the main window;
    Tk's loop alone never let the signal's handler run."""
    import json
    import signal
    import subprocess
    from polling import wait_for
    from x11shot import X11
    from bank.window import replay, trace_replay
    x11 = X11.open(display)
    if x11 is None:
        pytest.skip("libX11 cannot be loaded here: cannot see the window open")
    path, title = saved_run, f"{replay.TITLE}: {saved_run}"
    if kind == "trace":
        path, title = tmp_path / "trace.json", f"{trace_replay.TITLE}: {TRACE['txid']}"
        path.write_text(json.dumps(TRACE), encoding="utf-8")
    root_dir = pathlib.Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, str(root_dir / "gui_tk.py"), "--replay", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Tk makes the X window when its loop maps it: the handlers are in place by then
        wait_for(lambda: proc.poll() is None and x11.find_window(title), 30,
                 "the replay window to open")
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: proc.poll() is not None, 15, "the window to close on Ctrl-C")
        assert proc.returncode == 0, proc.stdout.read().decode()
    finally:
        x11.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
