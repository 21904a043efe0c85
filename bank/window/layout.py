"""The widgets of the desktop window: what is where, and how it looks.

Role: build every panel of gui_tk.py's window (branches, money gauge, operation forms,
lab controls, transactions and diagram, activity log, journals) with ttk, theme
'clam', at a size that reads well at 1280x800.

Rules:
  * Rule 1 - layout only: no network, no logic. Buttons call App methods
    (``self.do_transfer``...) that gui_tk.py defines; this mixin only places widgets
    and keeps references to the ones the App (and the tests) use.
  * Widths are given in digits of the default font (``px``), so a bigger
    ``--font-size`` keeps every column readable.

Glossary:
  picker   a ttk.Combobox of accounts (BRANCH/NUMBER  owner) or branches
  form     one tab of the operations notebook: labels, entries, a button
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.window import diagram as draw
from bank.local_cluster import COORDINATOR as COORD
from bank.faults import BRANCH_POINTS, COORDINATOR_POINTS
from bank.window.calls import ALL

TITLE = "Distributed bank - Two-Phase Commit"


class Layout:
    """Mixin for gui_tk.App: builds the widgets. Needs self.root, self.font_size,
    self.routes, self.cluster and the App's do_* methods."""

    # ---- look -------------------------------------------------------------------------

    def _style(self) -> None:
        root = self.root
        root.title(TITLE)
        root.geometry("1280x800")
        root.minsize(960, 620)
        style = ttk.Style(root)
        style.theme_use("clam")
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkCaptionFont"):
            tkfont.nametofont(name).configure(size=self.font_size)
        tkfont.nametofont("TkHeadingFont").configure(size=self.font_size, weight="bold")
        tkfont.nametofont("TkFixedFont").configure(size=self.font_size - 1)
        self.title_font = tkfont.Font(root, family=tkfont.nametofont("TkDefaultFont")
                                      .actual("family"), size=self.font_size + 4,
                                      weight="bold")
        self.char_px = tkfont.nametofont("TkDefaultFont").measure("0")
        line = tkfont.nametofont("TkDefaultFont").metrics("linespace")
        style.configure("Treeview", rowheight=line + 7)
        style.configure("Treeview.Heading", font="TkHeadingFont")
        style.configure("TNotebook.Tab", padding=(10, 4))
        style.configure("Title.TLabel", font=self.title_font)
        style.configure("Dim.TLabel", foreground=draw.GREY)
        style.configure("Ok.TLabel", foreground=draw.GREEN)
        style.configure("Bad.TLabel", foreground=draw.RED)
        style.configure("Unknown.TLabel", foreground=draw.AMBER)
        style.configure("Info.TLabel", foreground=draw.INK)
        style.configure("Panel.TLabelframe.Label", font="TkHeadingFont")
        style.configure("Danger.TButton", foreground=draw.RED)
        style.configure("Small.TButton", padding=(4, 1))
        style.configure("Danger.Small.TButton", padding=(4, 1), foreground=draw.RED)
        style.configure("Go.TButton", font="TkHeadingFont")

    def px(self, chars: float) -> int:
        """A width in pixels for `chars` digits of the default font."""
        return int(chars * self.char_px)

    # ---- layout -----------------------------------------------------------------------

    def _build(self, source: str) -> None:
        root = self.root
        top = ttk.Frame(root, padding=(10, 6, 10, 2))
        top.pack(fill="x")
        ttk.Label(top, text="Distributed bank", style="Title.TLabel").pack(side="left")
        ttk.Label(top, text="  branches, balances and the Two-Phase Commit protocol, live",
                  style="Dim.TLabel").pack(side="left")
        self.source_label = ttk.Label(top, text=source, style="Dim.TLabel")
        self.source_label.pack(side="right")
        self.status = ttk.Label(root, padding=(10, 2), style="Dim.TLabel",
                                text="Connecting...")
        self.status.pack(side="bottom", fill="x")
        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.pack(fill="both", expand=True, padx=8, pady=4)
        left, right = ttk.Frame(panes), ttk.Frame(panes)
        panes.add(left, weight=0)             # the left column keeps its natural width
        panes.add(right, weight=1)
        self.panes = panes
        self._build_result(left)              # bottom up: the tree takes what is left
        self._build_operations(left)
        self._build_branches(left)
        notebook = ttk.Notebook(right)
        notebook.pack(fill="both", expand=True)
        self.right_tabs = notebook
        self._build_transactions(notebook)
        self._build_activity(notebook)
        self._build_journals(notebook)

    def _build_branches(self, parent) -> None:
        box = ttk.LabelFrame(parent, text="Branches and accounts", style="Panel.TLabelframe",
                             padding=4)
        columns = ("owner", "balance", "held", "available")
        tree = ttk.Treeview(box, columns=columns, height=5, selectmode="browse")
        tree.heading("#0", text="Branch", anchor="w")
        tree.column("#0", width=self.px(14), stretch=False)
        for col, text, width in (("owner", "Owner / state", 19), ("balance", "Balance", 11),
                                 ("held", "Held", 9), ("available", "Available", 11)):
            tree.heading(col, text=text, anchor="w" if col == "owner" else "e")
            tree.column(col, width=self.px(width), anchor="w" if col == "owner" else "e",
                        stretch=col == "owner")
        tree.tag_configure("up", foreground=draw.GREEN, font="TkHeadingFont")
        tree.tag_configure("down", foreground=draw.RED, font="TkHeadingFont")
        tree.tag_configure("cut", foreground=draw.AMBER, font="TkHeadingFont")
        tree.tag_configure("stale", foreground="#9a9a9a")
        tree.tag_configure("holding", foreground=draw.AMBER)
        tree.pack(fill="both", expand=True)
        self.branch_tree = tree
        gauge_box = ttk.LabelFrame(parent, text="All the money in the bank",
                                   style="Panel.TLabelframe", padding=2)
        gauge_box.pack(side="bottom", fill="x", pady=(6, 0))
        box.pack(side="top", fill="both", expand=True)
        self.gauge = tk.Canvas(gauge_box, height=82, background=draw.PAPER,
                               highlightthickness=0)
        self.gauge.pack(fill="x")
        self.gauge.bind("<Configure>", lambda e: self._draw_gauge())
        self.split = draw.money_split({})

    def _build_operations(self, parent) -> None:
        tabs = ttk.Notebook(parent)
        tabs.pack(side="bottom", fill="x", pady=(6, 0))
        self.left_tabs = tabs
        self.pickers, self.branch_pickers = [], []
        # transfer
        form = self._form(tabs, "Transfer")
        self.transfer_src = self._picker(form, 0, "From account")
        self.transfer_dst = self._picker(form, 1, "To account")
        self.transfer_amount = self._entry(form, 2, "Amount")
        self.transfer_button = self._go(form, 3, "Transfer", self.do_transfer)
        # deposit and withdraw
        form = self._form(tabs, "Deposit")
        self.deposit_acct = self._picker(form, 0, "Account")
        self.deposit_amount = self._entry(form, 1, "Amount")
        self.deposit_button = self._go(form, 2, "Deposit", self.do_deposit)
        form = self._form(tabs, "Withdraw")
        self.withdraw_acct = self._picker(form, 0, "Account")
        self.withdraw_amount = self._entry(form, 1, "Amount")
        self.withdraw_button = self._go(form, 2, "Withdraw", self.do_withdraw)
        # open an account
        form = self._form(tabs, "Open account")
        self.open_branch = self._picker(form, 0, "Branch", branches=True)
        self.open_owner = self._entry(form, 1, "Owner")
        self.open_initial = self._entry(form, 2, "Opening deposit")
        self.open_initial.set("0")
        self.open_button = self._go(form, 3, "Open account", self.do_open_account)
        self._build_lab(tabs)

    def _build_result(self, parent) -> None:
        """The answer to the last operation, in plain words (packed first: never cut)."""
        box = ttk.LabelFrame(parent, text="Result", style="Panel.TLabelframe", padding=4)
        box.pack(side="bottom", fill="x", pady=(6, 0))
        self.result = ttk.Label(box, text="Choose an operation above; its result is "
                                "explained here.", style="Dim.TLabel", wraplength=500,
                                justify="left")
        self.result.pack(fill="x")
        box.bind("<Configure>", lambda e: self.result.configure(
            wraplength=max(200, e.width - 16)))

    def _form(self, tabs, title: str):
        frame = ttk.Frame(tabs, padding=8)
        frame.columnconfigure(1, weight=1)
        tabs.add(frame, text=title)
        return frame

    def _picker(self, form, row: int, label: str, branches=False):
        ttk.Label(form, text=label).grid(row=row, column=0, sticky="w", pady=3, padx=(0, 8))
        var = tk.StringVar()
        box = ttk.Combobox(form, textvariable=var, width=30)
        box.grid(row=row, column=1, sticky="we", pady=3)
        (self.branch_pickers if branches else self.pickers).append(box)
        return var

    def _entry(self, form, row: int, label: str):
        ttk.Label(form, text=label).grid(row=row, column=0, sticky="w", pady=3, padx=(0, 8))
        var = tk.StringVar()
        ttk.Entry(form, textvariable=var, width=32).grid(row=row, column=1, sticky="we",
                                                          pady=3)
        return var

    def _go(self, form, row: int, text: str, command):
        button = ttk.Button(form, text=text, command=command, style="Go.TButton")
        button.grid(row=row, column=1, sticky="e", pady=(6, 0))
        return button

    def _build_lab(self, tabs) -> None:
        frame = ttk.Frame(tabs, padding=(8, 4))
        tabs.add(frame, text="⚠ Lab")
        ttk.Label(frame, text="Lab controls: these break things on purpose.",
                  foreground=draw.RED, font="TkHeadingFont").pack(anchor="w")
        self.lab_rows = ttk.Frame(frame)
        self.lab_rows.pack(fill="x", pady=(2, 0))
        self.lab_buttons, self.lab_labels = {}, {}
        arm = ttk.Frame(frame)
        arm.pack(fill="x", pady=(6, 0))
        ttk.Label(arm, text="Fault point").pack(side="left")
        self.fault_member = tk.StringVar(value=COORD)
        member_box = ttk.Combobox(arm, textvariable=self.fault_member, width=11,
                                  state="readonly")
        member_box.pack(side="left", padx=4)
        member_box.bind("<<ComboboxSelected>>", lambda e: self._fault_choices())
        self.fault_member_box = member_box
        self.fault_point = tk.StringVar(value=COORDINATOR_POINTS[1])
        self.fault_point_box = ttk.Combobox(arm, textvariable=self.fault_point, width=18)
        self.fault_point_box.pack(side="left", padx=(0, 4))
        self.arm_button = ttk.Button(arm, text="Arm", style="Danger.Small.TButton", width=6,
                                     command=self.do_arm)
        self.arm_button.pack(side="left")
        ttk.Button(arm, text="Disarm", style="Small.TButton", width=7,
                   command=lambda: self.do_arm(disarm=True)).pack(side="left", padx=(4, 0))
        bottom = ttk.Frame(frame)
        bottom.pack(fill="x", pady=(6, 0))
        ttk.Button(bottom, text="Recover now", style="Small.TButton",
                   command=self.do_recover).pack(side="left", anchor="n")
        note = ("Crash kills the process, like a power cut. Partition cuts the coordinator "
                "off a branch (this window still sees it).")
        if self.cluster is None:
            note = "Crash and restart need the local cluster. " + note
        ttk.Label(bottom, text=note, style="Dim.TLabel", wraplength=380).pack(
            side="left", padx=8)
        self._fault_choices()
        self._lab_rows([COORD, *self.routes])

    def _lab_rows(self, names) -> None:
        """One row per member: its state and its buttons (added as members appear)."""
        for name in names:
            if name in self.lab_buttons:
                continue
            row = len(self.lab_buttons)
            ttk.Label(self.lab_rows, text=name, font="TkHeadingFont", width=11).grid(
                row=row, column=0, sticky="w")
            state = ttk.Label(self.lab_rows, text="?", width=8)
            state.grid(row=row, column=1, sticky="w")
            self.lab_labels[name] = state
            buttons = {}
            local = "normal" if self.cluster is not None else "disabled"
            for col, (key, text, command, enabled) in enumerate((
                    ("crash", "Crash", self.do_crash, local),
                    ("restart", "Restart", self.do_restart, local),
                    ("partition", "Partition", self.do_partition, "normal"),
                    ("heal", "Heal", self.do_heal, "normal"),
                    ("failover", "Failover", self.do_failover, "normal")), start=2):
                if name == COORD and key in ("partition", "heal", "failover"):
                    continue
                button = ttk.Button(self.lab_rows, text=text, width=7, state=enabled,
                                    style="Danger.Small.TButton" if key in ("crash",
                                                                            "partition")
                                    else "Small.TButton", command=lambda c=command,
                                    n=name: c(n))
                button.grid(row=row, column=col, padx=2, pady=2)
                buttons[key] = button
            self.lab_buttons[name] = buttons
        self.fault_member_box.configure(values=list(self.lab_buttons))

    def _fault_choices(self) -> None:
        branch = self.fault_member.get() != COORD
        points = [*BRANCH_POINTS, "delay=3"] if branch else list(COORDINATOR_POINTS)
        self.fault_point_box.configure(values=points)
        if self.fault_point.get() not in points:
            self.fault_point.set(points[0])

    def _build_transactions(self, notebook) -> None:
        panes = ttk.PanedWindow(notebook, orient="vertical")
        notebook.add(panes, text="Transactions")
        top = ttk.Frame(panes, padding=4)
        columns = ("txid", "transfer", "amount", "state")
        tree = ttk.Treeview(top, columns=columns, height=5, selectmode="browse",
                            show="headings")
        for col, text, width in (("txid", "Transaction id", 25), ("transfer", "From → to", 24),
                                 ("amount", "Amount", 10), ("state", "State", 26)):
            tree.heading(col, text=text, anchor="e" if col == "amount" else "w")
            tree.column(col, width=self.px(width), anchor="e" if col == "amount" else "w",
                        stretch=col == "state")
        for category, colour in draw.STATE_BG.items():
            tree.tag_configure(category, background=colour)
        scroll = ttk.Scrollbar(top, orient="vertical", command=tree.yview)
        tree.configure(yscrollcommand=scroll.set)
        tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="left", fill="y")
        tree.bind("<<TreeviewSelect>>", lambda e: self._on_select_txn())
        self.txn_tree = tree
        bottom = ttk.Frame(panes, padding=4)
        self.diagram_title = ttk.Label(bottom, text="Select a transaction to see its "
                                       "messages.", style="Dim.TLabel")
        self.diagram_title.pack(fill="x")
        bottom.bind("<Configure>", lambda e: self.diagram_title.configure(
            wraplength=max(300, e.width - 16)))
        holder = ttk.Frame(bottom)
        holder.pack(fill="both", expand=True)
        canvas = tk.Canvas(holder, background=draw.PAPER, highlightthickness=1,
                           highlightbackground="#c8c8c8")
        vbar = ttk.Scrollbar(holder, orient="vertical", command=canvas.yview)
        hbar = ttk.Scrollbar(holder, orient="horizontal", command=canvas.xview)
        canvas.configure(yscrollcommand=vbar.set, xscrollcommand=hbar.set)
        canvas.grid(row=0, column=0, sticky="nsew")
        vbar.grid(row=0, column=1, sticky="ns")
        hbar.grid(row=1, column=0, sticky="we")
        holder.rowconfigure(0, weight=1)
        holder.columnconfigure(0, weight=1)
        canvas.bind("<Configure>", lambda e: self._draw_diagram())
        canvas.bind("<MouseWheel>", lambda e: canvas.yview_scroll(-e.delta // 120, "units"))
        canvas.bind("<Button-4>", lambda e: canvas.yview_scroll(-2, "units"))
        canvas.bind("<Button-5>", lambda e: canvas.yview_scroll(2, "units"))
        canvas.create_text(16, 16, anchor="nw", fill=draw.GREY, tags=("note",),
                           text="Make a transfer between two branches, or select one above:\n"
                                "its Two-Phase Commit is drawn here, one arrow per message,\n"
                                "with the time each one was sent (ms after it began).")
        self.diagram = canvas
        panes.add(top, weight=1)
        panes.add(bottom, weight=4)

    def _build_activity(self, notebook) -> None:
        frame = ttk.Frame(notebook, padding=6)
        notebook.add(frame, text="Activity log")
        ttk.Label(frame, text="What people did from the shell and this window. A "
                  "convenience, not the bank's record: that is the branch journals.",
                  style="Dim.TLabel", wraplength=620).pack(anchor="w")
        bar = ttk.Frame(frame)
        bar.pack(fill="x", pady=(4, 0))
        ttk.Label(bar, text="Account").pack(side="left")
        self.activity_filter = tk.StringVar(value=ALL)
        box = ttk.Combobox(bar, textvariable=self.activity_filter, width=24)
        box.pack(side="left", padx=4)
        box.bind("<<ComboboxSelected>>", lambda e: self.show_activity())
        box.bind("<Return>", lambda e: self.show_activity())
        self.activity_filter_box = box
        self.export_activity_button = ttk.Button(bar, text="Export CSV...", width=12,
                                                 command=self.export_activity)
        self.export_activity_button.pack(side="left", padx=4)
        self.clear_activity_button = ttk.Button(bar, text="Clear...", width=8,
                                                style="Danger.TButton",
                                                command=self.clear_activity)
        self.clear_activity_button.pack(side="left")
        self.activity_tree = self._table(frame, (
            ("ts", "time (UTC)", 15), ("source", "from", 5), ("command", "command", 30),
            ("ok", "ok", 4), ("result", "result", 60)))

    def _build_journals(self, notebook) -> None:
        frame = ttk.Frame(notebook, padding=6)
        notebook.add(frame, text="Branch journals")
        ttk.Label(frame, text="Every balance change, append-only, in each branch's own "
                  "database: the bank's record (never cleared).",
                  style="Dim.TLabel", wraplength=620).pack(anchor="w")
        bar = ttk.Frame(frame)
        bar.pack(fill="x", pady=(4, 0))
        ttk.Label(bar, text="Journal of").pack(side="left")
        self.journal_scope = tk.StringVar(value=ALL)
        box = ttk.Combobox(bar, textvariable=self.journal_scope, width=24)
        box.pack(side="left", padx=4)
        box.bind("<<ComboboxSelected>>", lambda e: self.load_journal())
        self.journal_scope_box = box
        ttk.Label(bar, text="last").pack(side="left")
        self.journal_limit = tk.StringVar(value="100")
        ttk.Spinbox(bar, from_=10, to=10000, increment=50, width=6,
                    textvariable=self.journal_limit).pack(side="left", padx=4)
        ttk.Button(bar, text="Load", width=6, command=self.load_journal).pack(side="left")
        self.export_journal_button = ttk.Button(bar, text="Export CSV...", width=12,
                                                command=self.export_journal)
        self.export_journal_button.pack(side="left", padx=4)
        self.journal_tree = self._table(frame, (
            ("ts", "time (UTC)", 19), ("branch", "branch", 8), ("account", "account", 8),
            ("kind", "kind", 9), ("amount", "amount", 10), ("balance_after", "balance", 10),
            ("txid", "transaction id", 25), ("detail", "detail", 20)))
        notebook.bind("<<NotebookTabChanged>>", lambda e: self._on_tab())

    def _table(self, parent, columns):
        """A Treeview with scrollbars; columns are (name, heading, width in digits)."""
        holder = ttk.Frame(parent)
        holder.pack(fill="both", expand=True, pady=(6, 0))
        tree = ttk.Treeview(holder, columns=[c[0] for c in columns], show="headings")
        for col, heading, width in columns:
            right = col in ("amount", "balance_after")
            tree.heading(col, text=heading, anchor="e" if right else "w")
            tree.column(col, width=self.px(width), minwidth=self.px(3),
                        anchor="e" if right else "w", stretch=False)
        tree.tag_configure("refused", foreground=draw.RED)
        vbar = ttk.Scrollbar(holder, orient="vertical", command=tree.yview)
        hbar = ttk.Scrollbar(holder, orient="horizontal", command=tree.xview)
        tree.configure(yscrollcommand=vbar.set, xscrollcommand=hbar.set)
        tree.grid(row=0, column=0, sticky="nsew")
        vbar.grid(row=0, column=1, sticky="ns")
        hbar.grid(row=1, column=0, sticky="we")
        holder.rowconfigure(0, weight=1)
        holder.columnconfigure(0, weight=1)
        return tree
