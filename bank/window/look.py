"""The look of the desktop window: theme, fonts, named styles and widths.

Role: set up ttk (theme 'clam', fonts at ``--font-size``, the named styles the panels
use) so the window reads well at 1280x800, and offer the two helpers every panel needs:
``px`` (a width) and ``table`` (a scrolled Treeview).

Rules:
  * Rule L1 - look only: no network, no state of the bank. Panels decide what to show;
    this file decides how it looks.
  * Rule L2 - widths are given in digits of the default font (``px``), so a bigger
    ``--font-size`` keeps every column readable.
  * Rule L3 - a style is named for what it means ("Ok.TLabel" is good news, in green),
    never for its colour, so a panel says what it means and this file picks the colour.

Glossary:
  px       a width in pixels for N digits of the default font
  style    a named ttk style, e.g. "Bad.TLabel" (a refusal) or "Danger.Small.TButton"
  table    a ttk.Treeview with both scrollbars, columns given as (name, heading, digits)
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.window import diagram as draw

TITLE = "Distributed bank - Two-Phase Commit"     # the window's name (tests find it by this)
RIGHT_ALIGNED = ("amount", "balance_after")       # table columns that hold money


class Look:
    """The window's fonts and styles, set once on `root`; ``px`` and ``table`` for panels."""

    def __init__(self, root: tk.Tk, font_size: int):
        self.root, self.font_size = root, font_size
        self._size_window()
        style = ttk.Style(root)
        style.theme_use("clam")
        self._fonts()
        self._styles(style)

    # ---- set up once ------------------------------------------------------------------

    def _size_window(self) -> None:
        self.root.title(TITLE)
        self.root.geometry("1280x800")
        self.root.minsize(960, 620)

    def _fonts(self) -> None:
        size = self.font_size
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkCaptionFont"):
            tkfont.nametofont(name).configure(size=size)
        tkfont.nametofont("TkHeadingFont").configure(size=size, weight="bold")
        tkfont.nametofont("TkFixedFont").configure(size=size - 1)
        default = tkfont.nametofont("TkDefaultFont")
        # Kept on self: Tk forgets a named font when its Python object is collected.
        self.title_font = tkfont.Font(self.root, family=default.actual("family"),
                                      size=size + 4, weight="bold")
        self.char_px = default.measure("0")
        self.line_px = default.metrics("linespace")

    def _styles(self, style: ttk.Style) -> None:
        style.configure("Treeview", rowheight=self.line_px + 7)
        style.configure("Treeview.Heading", font="TkHeadingFont")
        style.configure("TNotebook.Tab", padding=(10, 4))
        style.configure("Title.TLabel", font=self.title_font)
        for name, colour in (("Dim", draw.GREY), ("Ok", draw.GREEN), ("Bad", draw.RED),
                             ("Unknown", draw.AMBER), ("Info", draw.INK)):
            style.configure(f"{name}.TLabel", foreground=colour)
        style.configure("Panel.TLabelframe.Label", font="TkHeadingFont")
        style.configure("Danger.TButton", foreground=draw.RED)
        style.configure("Small.TButton", padding=(4, 1))
        style.configure("Danger.Small.TButton", padding=(4, 1), foreground=draw.RED)
        style.configure("Go.TButton", font="TkHeadingFont")

    # ---- helpers for panels -----------------------------------------------------------

    def px(self, chars: float) -> int:
        """A width in pixels for `chars` digits of the default font (Rule L2)."""
        return int(chars * self.char_px)

    def table(self, parent, columns) -> ttk.Treeview:
        """A Treeview with scrollbars; columns are (name, heading, width in digits)."""
        holder = ttk.Frame(parent)
        holder.pack(fill="both", expand=True, pady=(6, 0))
        tree = ttk.Treeview(holder, columns=[c[0] for c in columns], show="headings")
        for col, heading, width in columns:
            anchor = "e" if col in RIGHT_ALIGNED else "w"
            tree.heading(col, text=heading, anchor=anchor)
            tree.column(col, width=self.px(width), minwidth=self.px(3), anchor=anchor,
                        stretch=False)
        tree.tag_configure("refused", foreground=draw.RED)
        scrolled(holder, tree)
        return tree


def scrolled(holder, widget) -> None:
    """Grid `widget` in `holder` with a vertical and a horizontal scrollbar."""
    vbar = ttk.Scrollbar(holder, orient="vertical", command=widget.yview)
    hbar = ttk.Scrollbar(holder, orient="horizontal", command=widget.xview)
    widget.configure(yscrollcommand=vbar.set, xscrollcommand=hbar.set)
    widget.grid(row=0, column=0, sticky="nsew")
    vbar.grid(row=0, column=1, sticky="ns")
    hbar.grid(row=1, column=0, sticky="we")
    holder.rowconfigure(0, weight=1)
    holder.columnconfigure(0, weight=1)
