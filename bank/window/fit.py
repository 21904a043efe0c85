"""How the desktop window fits a small screen: who gives way, and how, so nothing is cut.

Role: from a laptop to a classroom projector at 1024x768 with ``--font-size 14``, the
left column cannot always hold the branches tree, the gauge, a form and the result at
full size, and a line of text may be longer than its room. This file decides who gives
way (``share_left_column``, ``share_columns``), and offers the widgets that give way
gracefully: a form that scrolls (``Scrolled``), notebook tabs that take short names
(``Tabs``), and a label shortened between words (``Shortened``); money never gives way
(``fit_money``). Look only, like look.py: no network, no bank.

Rules:
  * Rule F1 - the left column shares its height in this order: the gauge whole and the
    result (two lines at most: a longer one scrolls, it never grows into the form);
    then the form shown whole, so its button is always in sight; then the branches
    tree, every row when there is room, at least MIN_TREE_ROWS (every member of the
    default cluster and two accounts) unless giving rows up, down to LEAST_TREE_ROWS,
    makes the form whole (1280x720 at font 14); the tree then scrolls. A tab that
    cannot be whole even so (the Lab tab) leaves the tree MIN_TREE_ROWS and scrolls.
    The form asked for is the one shown, not the tallest tab, so no empty room is
    kept from the tree. Every scrolled pane scrolls with the mouse wheel over any of
    its widgets.
  * Rule F2 - a tab label is never cut: when a notebook's labels do not fit its width,
    they take their short names (the long one shows on hover).
  * Rule F3 - a line too long for its room is shortened between words and ends with
    "…", never cut mid-word without a mark; the whole line shows on hover.
  * Rule F4 - a table keeps its most telling column in sight (a transaction's State,
    what a blocked branch waits for): in a narrow panel the long transaction id is
    left out first, then the other columns get narrower (whole on hover). A table
    that knows its cells' whole texts (the transactions list: From → to, State) shows
    a cell too long for its column shortened between words with "…" (F3; by letters
    when not even its first word fits), never cut without a mark; its From → to
    narrows no further than "SOURCE →…", so an account number is never cut.
  * Rule F5 - money is never cut: a Treeview cuts a cell silently at its right, so
    1,234,567,890.12 would read "1,234,567,8". A column that holds money (an amount, or
    a line with amounts in it: the activity log's command and result) is as wide as
    its widest text, in the font its row is drawn in, never narrower than its heading,
    each time its rows change. In a narrow panel F4's columns give way first; a table
    that scrolls sideways (the transactions list, the logs) then scrolls rather than
    narrow its money; the blocked map, which cannot scroll, narrows its money last,
    after the transaction id and the time are left out, and then shows each text's
    first words and "…" (Rule F3): an amount whole or not at all, whole on hover.

Glossary:
  need       the height a widget asks for (winfo_reqheight), plus its gap above
  room       the height (or width) a widget is given
  natural    a column's width before any sharing: its digits (look.column), or its
             widest text for a money column (Rule F5)
  short name the label a tab takes when the long ones do not fit ("Open" for "Open account")
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.window.look import tip_box

MIN_TREE_ROWS = 5           # coordinator, Mumbai, Delhi and two accounts (Rule F1)
LEAST_TREE_ROWS = 3         # the fewest it gives up to, for a form's button (Rule F1)
MONEY_PAD = 1.5             # digits beside a money text: the cell's padding (Rule F5)
ELLIPSIS = "…"


# ---- Rule F1: the left column's height ---------------------------------------------------

def tree_rows(room: int, others: int, overhead: int, row_h: int, wanted: int) -> int:
    """How many rows the branches tree shows in a column `room` high, when the other
    parts need `others` and the tree's box `overhead` (its title, heading, borders):
    every row (`wanted`) if they fit; fewer, down to LEAST_TREE_ROWS, so that the form
    shown is whole (its button in sight); MIN_TREE_ROWS when even that cannot make it
    whole (a tall tab, the Lab's, scrolls instead) (Rule F1)."""
    fits = (room - others - overhead) // max(1, row_h)
    return min(wanted, fits) if fits >= LEAST_TREE_ROWS else MIN_TREE_ROWS


def shown_rows(tree: ttk.Treeview, parent: str = "") -> int:
    """The rows a tree has to show: its items, and the children of the open ones."""
    return sum(1 + (shown_rows(tree, iid) if tree.item(iid, "open") else 0)
               for iid in tree.get_children(parent))


def tab_need(notebook: ttk.Notebook) -> int:
    """The height `notebook` needs to show the tab now selected whole: a notebook asks
    for its tallest tab, so take that one off and put the selected one in (Rule F1)."""
    panes = [notebook.nametowidget(t) for t in notebook.tabs()]
    if not panes or not notebook.select():
        return notebook.winfo_reqheight()
    shown = notebook.nametowidget(notebook.select())
    return (notebook.winfo_reqheight() - max(p.winfo_reqheight() for p in panes)
            + shown.winfo_reqheight())


def share_left_column(column, tree: ttk.Treeview, tree_box, others, notebook, gap: int,
                      set_rows) -> None:
    """Give the branches tree the rows Rule F1 allows in `column` (its height now), with
    `others` (the gauge's and the result's boxes) whole and the notebook's shown tab;
    set_rows(rows, all_rows) applies it. The notebook, packed last, gets the rest."""
    column.update_idletasks()                      # every size asked for is current
    room = column.winfo_height()
    if room < 50:                                  # not laid out yet
        return
    row_h = int(ttk.Style(tree).lookup("Treeview", "rowheight") or 20)
    need = sum(w.winfo_reqheight() + gap for w in others) + tab_need(notebook) + gap
    overhead = tree_box.winfo_reqheight() - int(tree.cget("height")) * row_h
    wanted = shown_rows(tree)
    set_rows(tree_rows(room, need, overhead, row_h, wanted), wanted)


# ---- a form that scrolls when it is given less than it needs (Rule F1) -------------------

NO_WHEEL = ("TCombobox", "Text", "TSpinbox")   # the wheel means something else there


class Scrolled:
    """A frame whose content scrolls up and down when it is given less height than it
    asks for; the scrollbar shows only then. Put the content in ``inner``; add ``outer``
    (to a notebook, or pack it). ``outer`` asks for the content's whole size, or at most
    ``most()`` pixels when that is given (the result box: two lines, then it scrolls).
    The mouse wheel scrolls it over any of its widgets (but a combobox's own)."""

    def __init__(self, parent, padding=0, most=None):
        self.most = most
        self.wheel_tag = f"Wheel{id(self)}"           # one bind tag for all its widgets
        self.outer = ttk.Frame(parent)
        background = ttk.Style(parent).lookup("TFrame", "background") or None
        self.canvas = tk.Canvas(self.outer, highlightthickness=0, borderwidth=0,
                                background=background)
        self.bar = ttk.Scrollbar(self.outer, orient="vertical", command=self.canvas.yview)
        self.canvas.configure(yscrollcommand=self.bar.set)
        self.inner = ttk.Frame(self.canvas, padding=padding)
        self.window = self.canvas.create_window(0, 0, anchor="nw", window=self.inner)
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.outer.rowconfigure(0, weight=1)
        self.outer.columnconfigure(0, weight=1)
        self.inner.bind("<Configure>", lambda e: self._content_changed(), add="+")
        self.canvas.bind("<Configure>", lambda e: self._room_changed(e.width), add="+")
        self.canvas.bind_class(self.wheel_tag, "<Button-4>", lambda e: self.scroll(-1))
        self.canvas.bind_class(self.wheel_tag, "<Button-5>", lambda e: self.scroll(1))
        self.canvas.bind_class(self.wheel_tag, "<MouseWheel>",
                               lambda e: self.scroll(-1 if e.delta > 0 else 1))

    def scroll(self, step: int) -> None:
        if self.bar.winfo_ismapped():
            self.canvas.yview_scroll(step, "units")

    def _wheel_everywhere(self) -> None:
        """Give the wheel's bind tag to the canvas and every widget inside (rows are
        added later, so on every change of the content): the wheel over a label or a
        button scrolled nothing, and the Lab tab's Restart could not be reached."""
        pending = [self.canvas, self.inner]
        while pending:
            widget = pending.pop()
            pending += widget.winfo_children()
            tags = widget.bindtags()
            if self.wheel_tag not in tags and widget.winfo_class() not in NO_WHEEL:
                widget.bindtags((*tags, self.wheel_tag))

    def _content_changed(self) -> None:
        """The content's size changed: ask for all of it (or the most allowed), and
        scroll over all of it."""
        width, height = self.inner.winfo_reqwidth(), self.inner.winfo_reqheight()
        shown = height if self.most is None else min(height, self.most())
        self.canvas.configure(scrollregion=(0, 0, width, height), width=width, height=shown)
        self._wheel_everywhere()
        self._show_bar()

    def _room_changed(self, width: int) -> None:
        """The room given changed: the content takes its width; a bar if it is short."""
        self.canvas.itemconfigure(self.window, width=width)
        self._show_bar()

    def _show_bar(self) -> None:
        """The bar while the content is taller than the room. With `most`, the bar is
        placed beside the canvas rather than gridded: gridded, its own least height (its
        arrows) made the result box taller than two lines, and a cut third line showed."""
        short = self.inner.winfo_reqheight() > self.canvas.winfo_height() + 1
        if short and not self.bar.winfo_ismapped():
            if self.most is None:
                self.bar.grid(row=0, column=1, sticky="ns")
            else:
                self.bar.place(relx=1.0, rely=0.0, relheight=1.0, anchor="ne")
                self.canvas.grid_configure(padx=(0, self.bar.winfo_reqwidth()))
        elif not short and self.bar.winfo_manager():
            if self.most is None:
                self.bar.grid_remove()
            else:
                self.bar.place_forget()
                self.canvas.grid_configure(padx=0)
            self.canvas.yview_moveto(0)


# ---- Rule F4: a table's most telling column stays in sight -------------------------------

def share_columns(tree: ttk.Treeview, width: int, natural: dict, stretch: str,
                  least: int, give_way=(), shrink: str = "", money=(), full=None,
                  marked=()) -> None:
    """Fit `tree`'s columns, at their `natural` widths (column -> pixels), into `width`
    so that `stretch` (what a class must read: a transaction's state) gets at least
    `least` and all the rest: the `give_way` columns are left out first, in order (the
    long transaction id), then `shrink` gets narrower, down to its heading (a cell cut
    short shows in full on hover) (Rule F4). A `money` column is as wide as its widest
    text now; if it is `shrink` (it narrows last), its texts are shortened between
    words, from their whole texts `full(row, col)` (Rule F5). The `marked` columns'
    texts too, by letters if need be (they hold no money): F4; a marked `shrink` is
    as wide as its widest whole text while there is room, so its texts are shortened
    only when it had to give way."""
    shown, drop = list(tree.cget("columns")), list(give_way)
    widths = {c: natural[c] for c in shown if c != stretch}
    widths.update({c: money_width(tree, c, full=full) for c in money})
    if full and shrink in marked and shrink not in money:   # whole while there is room
        widths[shrink] = max(natural[shrink], money_width(tree, shrink, full=full))
    while width - sum(widths[c] for c in shown if c != stretch) < least and drop:
        shown.remove(drop.pop(0))
    short = least - (width - sum(widths[c] for c in shown if c != stretch))
    if shrink and short > 0:
        widths[shrink] = max(tree.column(shrink, "minwidth"), widths[shrink] - short)
    if list(tree.cget("displaycolumns")) != shown and \
            not (tree.cget("displaycolumns") == ("#all",) and shown == list(tree.cget("columns"))):
        tree.configure(displaycolumns=shown)
    for col in shown:
        if col != stretch and tree.column(col, "width") != widths[col]:
            tree.column(col, width=widths[col])
    rest = max(least, width - sum(widths[c] for c in shown if c != stretch))
    if tree.column(stretch, "width") != rest:
        tree.column(stretch, width=rest)
    if shrink in money and full:
        shorten_cells(tree, shrink, full)
    for col in marked if full else ():
        if col in shown:
            shorten_cells(tree, col, full, letters=True)


def keep_columns_shared(tree: ttk.Treeview, stretch: str, least: int, give_way=(),
                        shrink: str = "", money=(), full=None, marked=()):
    """Share `tree`'s width as share_columns says whenever the tree is resized; returns
    the function that shares it again, for when its rows change (a wider amount, F5)."""
    natural = {col: tree.column(col, "width") for col in tree.cget("columns")}

    def share(width: int = 0) -> None:
        width = width or tree.winfo_width()
        if width < 50:                   # not laid out yet: its <Configure> will share it
            return
        room = width - 4                 # inside the tree's border
        share_columns(tree, room, natural, stretch, least, give_way, shrink, money, full,
                      marked)
    tree.bind("<Configure>", lambda e: share(e.width), add="+")
    return share


# ---- Rule F5: money is never cut --------------------------------------------------------

def row_font(tree: ttk.Treeview, iid: str) -> tkfont.Font:
    """The font row `iid` is drawn in: its tag's, if a tag sets one (a member's row in
    the branches tree is bold), else the Treeview's, TkDefaultFont."""
    for tag in tree.item(iid, "tags"):
        font = tree.tag_configure(tag, "font")
        if font:
            return tkfont.nametofont(str(font))
    return tkfont.nametofont("TkDefaultFont")


def cell_pad() -> int:
    """Room beside a cell's text: the cell's own padding, and a little (Rule F5)."""
    return int(MONEY_PAD * tkfont.nametofont("TkDefaultFont").measure("0"))


def money_width(tree: ttk.Treeview, col: str, rows=None, full=None) -> int:
    """The width column `col` needs so that no text of `rows` (the top-level rows unless
    given) is cut: the widest, in its row's font (the whole text `full(row, col)` when
    the cell may show it shortened), with cell_pad; never narrower than the column's
    heading (its minwidth, look.column) (Rule F5)."""
    rows = tree.get_children("") if rows is None else rows
    whole = full or tree.set                       # tree.set(row, col): the cell's text
    widest = max((row_font(tree, iid).measure(whole(iid, col)) for iid in rows), default=0)
    return max(int(tree.column(col, "minwidth")), widest + cell_pad())


def fit_money(tree: ttk.Treeview, columns, rows=None) -> None:
    """Each of `columns` as wide as its widest text (money_width): call it after the
    rows change, a Treeview never widens a column by itself (Rule F5)."""
    for col in columns:
        width = money_width(tree, col, rows)
        if tree.column(col, "width") != width:
            tree.column(col, width=width)


def shorten_cells(tree: ttk.Treeview, col: str, full, letters: bool = False) -> None:
    """Each cell of a narrowed column whole if it fits, else its first words and "…"
    (Rule F3): in a money column an amount has no space in it, so it shows whole or
    not at all, never cut (Rule F5); elsewhere (`letters`) a first word too long is cut
    by letters, with "…". `full(row, col)` is the whole text (the hover shows it)."""
    room = tree.column(col, "width") - cell_pad()
    for iid in tree.get_children(""):
        text = shorten(full(iid, col), room, row_font(tree, iid).measure, letters=letters)
        if tree.set(iid, col) != text:
            tree.set(iid, col, text)


# ---- Rule F2: tab labels that are never cut ------------------------------------------------

class Tabs:
    """Keep every label of `notebook` whole: the long names while they all fit its width,
    else the short ones of `short` (long name -> short name); hovering a tab that has a
    short name shows the long one (Rule F2)."""

    def __init__(self, notebook: ttk.Notebook, short: dict, pad: int):
        self.notebook, self.short, self.pad = notebook, short, pad
        self.long = {}                             # tab id -> its long name
        self.tip, self.tip_tab = None, None
        notebook.bind("<Configure>", lambda e: self.fit(e.width), add="+")
        notebook.bind("<Motion>", self._moved, add="+")
        notebook.bind("<Leave>", lambda e: self._hide(), add="+")

    def names(self) -> dict:
        """Every tab's long name (learnt the first time it is seen)."""
        for tab in self.notebook.tabs():
            self.long.setdefault(tab, self.notebook.tab(tab, "text"))
        return self.long

    def width_of(self, labels) -> int:
        """The width the tabs need for `labels`: the text and its padding on both sides."""
        font = tkfont.nametofont("TkDefaultFont")
        return sum(font.measure(label) + 2 * self.pad for label in labels)

    def fit(self, width: int) -> None:
        names = self.names()
        fits = self.width_of(names.values()) <= width
        for tab, name in names.items():
            label = name if fits else self.short.get(name, name)
            if self.notebook.tab(tab, "text") != label:
                self.notebook.tab(tab, text=label)

    def _moved(self, event) -> None:
        try:
            index = self.notebook.index(f"@{event.x},{event.y}")
        except tk.TclError:
            index = None
        tab = self.notebook.tabs()[index] if isinstance(index, int) else None
        if tab == self.tip_tab:
            return
        self._hide()
        name = self.long.get(tab, "")
        if tab is not None and name and self.notebook.tab(tab, "text") != name:
            self.tip, self.tip_tab = tip_box(self.notebook, name, event.x_root + 12,
                                             event.y_root + 16), tab

    def _hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
        self.tip, self.tip_tab = None, None


# ---- Rule F3: a line shortened between words --------------------------------------------

def shorten(text: str, room: float, measure, sep: str = " ", letters: bool = False) -> str:
    """`text` if measure(text) fits `room`, else its longest run of whole words (parts
    between `sep`) that fits with "…" after it, or "" when not even one does (Rule F3);
    with `letters`, then its longest run of letters that fits with "…"."""
    if measure(text) <= room:
        return text
    words = text.split(sep)
    for count in range(len(words) - 1, 0, -1):
        head = sep.join(words[:count]).rstrip(" ·,;:-")
        if head.strip() and measure(head + ELLIPSIS) <= room:
            return head + ELLIPSIS
    for count in range(len(text) - 1, 0, -1) if letters else ():
        if measure(text[:count] + ELLIPSIS) <= room:
            return text[:count] + ELLIPSIS
    return ""


class Shortened:
    """A ttk.Label that shows its `text` shortened to the room it is given (``fit``),
    with the whole text on hover when shortened (Rule F3)."""

    def __init__(self, label: ttk.Label, text: str):
        self.label, self.full, self.tip = label, text, None
        label.bind("<Enter>", self._enter, add="+")
        label.bind("<Leave>", lambda e: self._hide(), add="+")

    def need(self) -> int:
        return tkfont.nametofont("TkDefaultFont").measure(self.full)

    def fit(self, room: float) -> None:
        text = shorten(self.full, room, tkfont.nametofont("TkDefaultFont").measure)
        if self.label.cget("text") != text:
            self.label.configure(text=text)

    def _enter(self, event) -> None:
        self._hide()
        if self.label.cget("text") != self.full:
            self.tip = tip_box(self.label, self.full, event.x_root + 12, event.y_root + 16)

    def _hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
        self.tip = None


def fit_line(room: float, first: Shortened, second: Shortened, gap: float) -> None:
    """Two texts on one line, `second` more important: both whole if they fit; else
    `first` is shortened, then left out, before `second` is shortened (Rule F3)."""
    rest = room - second.need() - gap
    if rest >= min(first.need(), tkfont.nametofont("TkDefaultFont").measure("0") * 30):
        first.fit(rest)
        second.fit(room)
    else:
        first.fit(0)
        second.fit(room - gap)

