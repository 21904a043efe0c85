"""The lab panel of the desktop window: the controls that break things on purpose.

Role: the "⚠ Lab" tab of the left notebook. One row per member (the coordinator and each
branch) with its state and buttons: Crash, Restart, and for branches Partition, Heal,
Failover and Rejoin (a server a failover replaced comes back as a replica); in a local
cluster with replicas, a row per replica server too (Crash, Restart, Rejoin); below
them, arming a named fault point, and "Recover now". What each button does is
bank/window/lab_actions.py's (a mixin of the panel).

Rules:
  * Rule A1 - a lab action is an ordinary call, made on a worker (``app.submit``); its
    outcome is explained in the result line and recorded in the activity log, then the
    window refreshes at once to show the damage.
  * Rule A2 - Crash and Restart need the local cluster (they kill and start processes on
    this machine); with a remote coordinator they are shown but disabled.
  * Rule A3 - a member's state label says what its last answer said: armed (a fault is
    set), cut off (a lab partition: on the row of the branch's primary, the server the
    coordinator is cut off from), up, down, or "?" (not heard from yet).
  * Rule A4 - rows are added as members appear (a branch the coordinator reports later
    gets its row then); a row is never removed while the window is open.
  * Rule A5 - no button is out of reach: when a member's buttons do not fit beside its
    name (1024x768 at font 14), they go on lines of their own under it, three to a
    line; the reason a button is disabled has a line of its own under the buttons,
    wrapped, read whole.
  * Rule A6 - one crash, restart or rejoin of a member at a time: pressed again while
    one is under way (a rejoin takes seconds), it is refused with a sentence.
  * Rule A7 - every server of a replicated branch has a row, and its label says what
    that server does now (primary, replica, fenced, down: Seen Rule S5), whatever its
    name. Crash, Restart and Rejoin act on the server of the row; Partition, Heal and
    Failover on the branch, in the row named for it. So a class fails over, rejoins
    and fails back from the window as often as it likes.
  * Rule A8 - a result names a server as its row does (Mumbai-replica1), not by its
    URL alone, and a crash says the role the row showed (Mumbai's primary): the class
    reads the rows, not the ports.

Glossary:
  member       the coordinator or a branch
  fault point  a named step where a member misbehaves once (bank/faults.py), or
               ``delay=SECONDS`` which slows every 2PC step there until disarmed
  partition    the coordinator cannot reach that branch (this window still can)
  failover     promote the branch's in-sync replica to primary, at a higher epoch
  server       one process of a replicated branch: Mumbai, Mumbai-replica1, ...
"""

import tkinter as tk
from tkinter import ttk

from bank import rpc
from bank.core.messages import BRANCH_POINTS, COORDINATOR_POINTS
from bank.local_cluster import COORDINATOR as COORD
from bank.window import diagram as draw
from bank.window.fit import Scrolled
from bank.window.lab_actions import LabActions

DANGER = ("crash", "partition")                    # drawn in red
BRANCH_ONLY = ("partition", "heal", "failover", "rejoin")   # not the coordinator's
BRANCH_WIDE = ("partition", "heal", "failover")  # a branch's, not one server's (A7)
ROLE_COLOURS = {"primary": draw.GREEN, "replica": draw.GREEN, "up": draw.GREEN,
                "fenced": draw.AMBER}              # any other state is drawn red
PING_TIMEOUT = 2              # seconds a server of a replicated branch has to answer
NARROW_PER_LINE = 3           # buttons per line in a narrow column (Rule A5)
NARROW_LINES = 4              # grid lines per member there: name, 2 of buttons, reason
NOTE = ("Crash kills the process, like a power cut. Partition cuts the coordinator off a "
        "branch (this window still sees it).")


class LabPanel(LabActions):
    """The lab tab: ``buttons`` (member -> key -> Button), ``labels``, the fault arming."""

    def __init__(self, tabs: ttk.Notebook, app):
        self.app, self.seen = app, app.seen
        scrolled = Scrolled(tabs, padding=(8, 4))  # scrolls when the column is short (F1)
        tabs.add(scrolled.outer, text="⚠ Lab")
        frame = scrolled.inner
        ttk.Label(frame, text="Lab controls: these break things on purpose.",
                  foreground=draw.RED, font="TkHeadingFont").pack(anchor="w")
        self.rows = ttk.Frame(frame)
        self.rows.pack(fill="x", pady=(2, 0))
        self.buttons, self.labels, self.reasons, self.names = {}, {}, {}, {}
        self.busy = {}                             # member -> its crash/restart/rejoin (A6)
        self.servers = {}                          # server -> rpc.Client at its address (A7)
        self.narrow = False                        # the layout for a narrow column (A5)
        self.rows.bind("<Configure>", lambda e: self.fit(e.width), add="+")
        self._build_arming(frame)
        self._build_recover(frame)
        self._fault_choices()
        self.add_rows(self.members(self.seen.routes))

    # ---- the servers of replicated branches (Rule A7) -------------------------------------

    def members(self, branches) -> list:
        """The coordinator, then each branch followed by its replica servers (a local
        cluster's; none without one)."""
        cluster = self.app.cluster
        return [COORD, *(m for b in branches for m in
                         (b, *(cluster.replica_names(b) if cluster is not None else ())))]

    def ask_servers(self) -> None:
        """Ping each server of a replicated branch at its own address (Seen Rule S5),
        skipping one still answering the last time."""
        cluster = self.app.cluster
        for name in self.buttons:
            if cluster is None or name == COORD or name not in cluster.members or \
                    not cluster.replica_names(cluster.branch_of(name)):
                continue
            url = cluster.members[name].url
            if name not in self.servers or self.servers[name].url != url:
                self.servers[name] = rpc.Client(url, self.app.secret, timeout=PING_TIMEOUT,
                                                label=f"server {name}")
            self.app.start(f"server:{name}", self.servers[name].call, ("ping",),
                           lambda ping, error, n=name: self._got_server(n, ping, error))

    def _got_server(self, name: str, ping, error) -> None:
        self.seen.got_server(name, ping, error)
        self.render()

    def _build_arming(self, frame) -> None:
        """Fault point: [member] [point] [Arm] [Disarm]."""
        line = ttk.Frame(frame)
        line.pack(fill="x", pady=(6, 0))
        arm, press = ttk.Frame(line), ttk.Frame(line)   # press: beside, or under (A5)
        arm.grid(row=0, column=0, sticky="w")
        press.grid(row=0, column=1, sticky="w")
        self.arm_line = (arm, press)
        ttk.Label(arm, text="Fault point").pack(side="left")
        self.fault_member = tk.StringVar(value=COORD)
        self.fault_member_box = ttk.Combobox(arm, textvariable=self.fault_member, width=11,
                                             state="readonly")
        self.fault_member_box.pack(side="left", padx=4)
        self.fault_member_box.bind("<<ComboboxSelected>>", lambda e: self._fault_choices())
        self.fault_point = tk.StringVar(value=COORDINATOR_POINTS[1])
        self.fault_point_box = ttk.Combobox(arm, textvariable=self.fault_point, width=18)
        self.fault_point_box.pack(side="left", padx=(0, 4))
        self.arm_button = ttk.Button(press, text="Arm", style="Danger.Small.TButton",
                                     width=6, command=self.arm)
        self.arm_button.pack(side="left")
        ttk.Button(press, text="Disarm", style="Small.TButton", width=7,
                   command=lambda: self.arm(disarm=True)).pack(side="left", padx=(4, 0))

    def _build_recover(self, frame) -> None:
        bottom = ttk.Frame(frame)
        bottom.pack(fill="x", pady=(6, 0))
        button = ttk.Button(bottom, text="Recover now", style="Small.TButton",
                            command=self.recover)
        button.pack(side="left", anchor="n")
        note = NOTE if self.app.cluster is not None else \
            "Crash and restart need the local cluster. " + NOTE     # Rule A2
        label = ttk.Label(bottom, text=note, style="Dim.TLabel", wraplength=380)
        label.pack(side="left", padx=8)
        bottom.bind("<Configure>", lambda e: label.configure(     # as wide as there is room
            wraplength=max(150, e.width - button.winfo_reqwidth() - 20)), add="+")

    # ---- one row per member (Rule A4) -----------------------------------------------------

    def add_rows(self, names) -> None:
        """A row for each member that has none yet: its name, state and buttons."""
        for name in names:
            if name not in self.buttons:
                self._add_row(name, len(self.buttons))
        self.fault_member_box.configure(values=[n for n in self.buttons if n == COORD
                                                or n in self.seen.routes])

    def _add_row(self, name: str, row: int) -> None:
        self.names[name] = ttk.Label(self.rows, text=name, font="TkHeadingFont",
                                     width=-11)    # at least 11: Mumbai-replica1 is longer
        self.labels[name] = ttk.Label(self.rows, text="?", width=8)
        local = "normal" if self.app.cluster is not None else "disabled"    # Rule A2
        actions = (("crash", "Crash", self.crash, local),
                   ("restart", "Restart", self.restart, local),
                   ("partition", "Partition", self.partition, "normal"),
                   ("heal", "Heal", self.heal, "normal"),
                   ("failover", "Failover", self.failover, "normal"),
                   ("rejoin", "Rejoin", self.rejoin, local))
        buttons = {}
        replica = name != COORD and name not in self.seen.routes    # a replica server
        for key, text, command, state in actions:
            if (name == COORD and key in BRANCH_ONLY) or (replica and key in BRANCH_WIDE):
                continue
            buttons[key] = ttk.Button(
                self.rows, text=text, width=7, state=state, command=lambda c=command: c(name),
                style="Danger.Small.TButton" if key in DANGER else "Small.TButton")
        self.buttons[name] = buttons
        self.reasons[name] = ttk.Label(self.rows, text="", style="Dim.TLabel")
        self._place_row(name, row)

    def _place_row(self, name: str, row: int) -> None:
        """A member's name, state and buttons on one line, its reason for a disabled
        button on the line under them (wrapped to the column, so it is read whole); in
        a narrow column (Rule A5) the buttons go on lines of their own under the name,
        three to a line, and the reason under them."""
        buttons, reason = list(self.buttons[name].values()), self.reasons[name]
        if not self.narrow:
            self.names[name].grid(row=2 * row, column=0, sticky="w")
            self.labels[name].grid(row=2 * row, column=1, sticky="w")
            for col, button in enumerate(buttons, start=2):
                button.grid(row=2 * row, column=col, padx=2, pady=2)
            reason.grid(row=2 * row + 1, column=0, columnspan=2 + len(buttons), sticky="w",
                        padx=4)
            self._show_reason(reason)
            return
        top = NARROW_LINES * row                   # name, two lines of buttons, reason
        self.names[name].grid(row=top, column=0, columnspan=2, sticky="w")
        self.labels[name].grid(row=top, column=2, columnspan=NARROW_PER_LINE - 2, sticky="w")
        for at, button in enumerate(buttons):
            button.grid(row=top + 1 + at // NARROW_PER_LINE, column=at % NARROW_PER_LINE,
                        padx=2, pady=2)
        reason.grid(row=top + NARROW_LINES - 1, column=0, columnspan=NARROW_PER_LINE,
                    sticky="w", padx=4)
        self._show_reason(reason)

    def fit(self, width: int) -> None:
        """Rule A5: one line per member while it fits `width`, else the narrow layout."""
        wide_need = _widest(self.names.values()) + _widest(self.labels.values()) + \
            max((sum(b.winfo_reqwidth() + 4 for b in bs.values())
                 for bs in self.buttons.values()), default=0)
        narrow = wide_need > width
        if narrow != self.narrow:
            self.narrow = narrow
            for widget in self.rows.grid_slaves():
                widget.grid_forget()
            for row, name in enumerate(self.buttons):
                self._place_row(name, row)
        for reason in self.reasons.values():
            reason.configure(wraplength=max(150, width - 8))
            self._show_reason(reason)
        arm, press = self.arm_line
        beside = arm.winfo_reqwidth() + press.winfo_reqwidth() <= width
        press.grid(row=0 if beside else 1, column=1 if beside else 0, sticky="w",
                   pady=0 if beside else (4, 0))

    def _show_reason(self, reason) -> None:
        """An empty reason takes no line of its own."""
        if not reason.cget("text"):
            reason.grid_remove()
        elif not reason.winfo_manager():
            reason.grid()

    def _fault_choices(self) -> None:
        """The points the chosen member knows (a branch's, or the coordinator's)."""
        branch = self.fault_member.get() != COORD
        points = [*BRANCH_POINTS, "delay=3"] if branch else list(COORDINATOR_POINTS)
        self.fault_point_box.configure(values=points)
        if self.fault_point.get() not in points:
            self.fault_point.set(points[0])

    def render(self) -> None:
        """Each member's state label, from its last answer (Rule A3); Failover and
        Rejoin disabled, with the reason under them, for a branch that has no replica."""
        for name, buttons in self.buttons.items():
            if "failover" in buttons:
                why = self.seen.failover_refusal(name)
                buttons["failover"].configure(state="disabled" if why else "normal")
                if self.app.cluster is not None:        # Rule A2: else always disabled
                    buttons["rejoin"].configure(state="disabled" if why else "normal")
                self.reasons[name].configure(text=why)
                self._show_reason(self.reasons[name])
        for name, label in self.labels.items():
            server = name in self.seen.servers              # Rule A7: its own role
            state = (self.seen.server_state(name) if server else
                     self.seen.branch_state(name)) or "?"
            if self.seen.armed(name):
                label.configure(text="armed", foreground=draw.AMBER)
            elif self._cut_off(name) and state not in ("down", "?"):
                label.configure(text="cut off", foreground=draw.AMBER)
            else:
                label.configure(text=state, foreground=ROLE_COLOURS.get(state, draw.RED))

    def _cut_off(self, name: str) -> bool:
        """Is this row's server the one a lab partition cuts the coordinator off from: the
        primary of a partitioned branch (after a failover, Mumbai-replica1's row, not
        the fenced Mumbai's)?"""
        cluster = self.app.cluster
        if cluster is None or name not in cluster.members or name == COORD:
            return bool(self.seen.partitioned.get(name))
        branch = cluster.branch_of(name)
        return bool(self.seen.partitioned.get(branch)) and \
            self.seen.routes.get(branch) == cluster.members[name].url


def _widest(widgets) -> int:
    """The width a grid column of these widgets takes: its widest one's, with padding."""
    return max((w.winfo_reqwidth() + 4 for w in widgets), default=0)
