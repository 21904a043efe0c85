"""The desktop window's panels, and how every window of the kit runs until closed.

Role: the package of the window (gui_tk.py) and the replay windows; this file holds
the one thing they all share, ``run_until_closed``.

Rules:
  * Rule W1 - Ctrl-C in the terminal, or ``kill``, closes any window of the kit as its
    close button does. Tk's loop never gives Python a turn on its own, so a signal
    would wait for the next event (forever, in a replay nobody touches): a short
    timer gives Python a turn to run the handler.
"""

import signal

TURN_MS = 200                   # W1: how often Python gets a turn to see a signal


def run_until_closed(root, close=None) -> None:
    """W1: run the window's loop until it is closed, by its button, Ctrl-C or kill;
    close() (default: root.destroy) does the closing."""
    close = close or root.destroy

    def on_signal(*_):
        root.after_idle(close)

    def turn():
        root.after(TURN_MS, turn)           # nothing to do: the turn itself is the point

    before = {signum: signal.signal(signum, on_signal)
              for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        root.after(TURN_MS, turn)
        root.mainloop()
    finally:                # Ctrl-C works again as usual (while a cluster stops, say)
        for signum, handler in before.items():
            signal.signal(signum, handler)
