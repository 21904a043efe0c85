"""The look of the desktop window: theme, fonts, named styles and widths.

Role: set up ttk (theme 'clam', fonts at ``--font-size``, the named styles the panels
use) so the window reads well from a laptop (1024x768) to a classroom wall (a projector
at 1920x1080, ``--font-size 14``), and offer the helpers every panel needs: ``px`` (a
width), ``columns`` (headings that are never cut), ``table`` (a scrolled Treeview) and
``Hover`` (a cell cut short shows in full under the pointer) and ``CanvasHover`` (the
same for a diagram's shortened labels and its boxes).

Rules:
  * Rule L1 - look only: no network, no state of the bank. Panels decide what to show;
    this file decides how it looks.
  * Rule L2 - widths are given in digits of the default font (``px``), so a bigger
    ``--font-size`` keeps every column readable.
  * Rule L4 - projector mode: every size follows the font. The window opens at 1280x800
    scaled by font-size / 10 (never larger than the screen); a column is never narrower
    than its heading; a cell too long for its column shows in full on hover.
  * Rule L3 - a style is named for what it means ("Ok.TLabel" is good news, in green),
    never for its colour, so a panel says what it means and this file picks the colour.

Glossary:
  px       a width in pixels for N digits of the default font
  style    a named ttk style, e.g. "Bad.TLabel" (a refusal) or "Danger.Small.TButton"
  table    a ttk.Treeview with both scrollbars, columns given as (name, heading, digits)
  scale    font-size / 10: how much bigger than the default everything is drawn
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.window import diagram as draw

TITLE = "Distributed bank - Two-Phase Commit"     # the window's name (tests find it by this)
RIGHT_ALIGNED = ("amount", "balance_after")       # table columns that hold money
BASE_FONT = 10                                    # the size the window was laid out for
BASE_SIZE = (1280, 800)                           # the window at BASE_FONT (Rule L4)


class Look:
    """The window's fonts and styles, set once on `root`; ``px`` and ``table`` for panels."""

    def __init__(self, root: tk.Tk, font_size: int):
        self.root, self.font_size = root, font_size
        self.scale = font_size / BASE_FONT
        self._size_window()
        style = ttk.Style(root)
        style.theme_use("clam")
        self._fonts()
        self._styles(style)

    # ---- set up once ------------------------------------------------------------------

    def _size_window(self) -> None:
        """1280x800 at the default font, scaled with it, never past the screen (L4)."""
        self.root.title(TITLE)
        self.size = window_size(self.scale, (self.root.winfo_screenwidth(),
                                             self.root.winfo_screenheight()))
        self.root.geometry("{}x{}".format(*self.size))
        self.root.minsize(min(960, self.size[0]), min(620, self.size[1]))

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
        self.heading_font = tkfont.nametofont("TkHeadingFont")

    def _styles(self, style: ttk.Style) -> None:
        style.configure("Treeview", rowheight=self.line_px + 7)
        style.configure("Treeview.Heading", font="TkHeadingFont")
        style.configure("TNotebook.Tab", padding=(self.px(1), 4))
        self.tab_pad = self.px(1) + 3       # each side of a tab's label, with its border
        style.configure("Title.TLabel", font=self.title_font)
        for name, colour in (("Dim", draw.GREY), ("Ok", draw.GREEN), ("Bad", draw.RED),
                             ("Unknown", draw.AMBER), ("Info", draw.INK)):
            style.configure(f"{name}.TLabel", foreground=colour)
        style.configure("Panel.TLabelframe.Label", font="TkHeadingFont")
        style.configure("Result.TFrame", background=draw.GREY)    # its thin border
        style.configure("Danger.TButton", foreground=draw.RED)
        style.configure("Small.TButton", padding=(4, 1))
        style.configure("Danger.Small.TButton", padding=(4, 1), foreground=draw.RED)
        style.configure("Go.TButton", font="TkHeadingFont")

    # ---- helpers for panels -----------------------------------------------------------

    def px(self, chars: float) -> int:
        """A width in pixels for `chars` digits of the default font (Rule L2)."""
        return int(chars * self.char_px)

    def heading_px(self, heading: str) -> int:
        """The least width of a column headed `heading`: the bold text and its padding."""
        return self.heading_font.measure(heading) + self.px(2)

    def column(self, tree, col: str, heading: str, digits: float, anchor: str = "w",
               stretch: bool = False) -> None:
        """Set up one column: `digits` wide, and never narrower than its heading (L4)."""
        least = self.heading_px(heading)
        tree.heading(col, text=heading, anchor=anchor)
        tree.column(col, width=max(self.px(digits), least), minwidth=least, anchor=anchor,
                    stretch=stretch)

    def table(self, parent, columns) -> ttk.Treeview:
        """A Treeview with scrollbars; columns are (name, heading, width in digits)."""
        holder = ttk.Frame(parent)
        holder.pack(fill="both", expand=True, pady=(6, 0))
        tree = ttk.Treeview(holder, columns=[c[0] for c in columns], show="headings")
        for col, heading, width in columns:
            self.column(tree, col, heading, width, "e" if col in RIGHT_ALIGNED else "w")
        tree.tag_configure("refused", foreground=draw.RED)
        scrolled(holder, tree)
        Hover(tree)
        return tree


def window_size(scale: float, screen: tuple) -> tuple:
    """The window's size: BASE_SIZE times `scale`, within the screen (Rule L4)."""
    return tuple(min(int(base * scale), room) for base, room in zip(BASE_SIZE, screen))


class Hover:
    """Show a Treeview cell in full in a small box under the pointer when its column is
    too narrow for it (Treeview itself cuts long text without a mark) (Rule L4)."""

    def __init__(self, tree: ttk.Treeview, full=None):
        self.tree, self.tip, self.cell = tree, None, None
        self.full = full          # (row, col) -> the whole text of a cell shown shortened
        tree.bind("<Motion>", self._moved, add="+")
        tree.bind("<Leave>", lambda _e: self.hide(), add="+")

    def full_text(self, row: str, col: str) -> str:
        """The cell's text if it is wider than its column, else ''."""
        tree = self.tree
        if not row or not col:
            return ""
        whole = self.full(row, col) if self.full else ""
        if col == "#0":
            text = tree.item(row, "text")
        else:                  # "#N" counts the columns shown: ask Tk which one it is
            text = str(tree.set(row, tree.column(col, "id")))
        if whole and whole != text:
            return whole
        width = tree.column(col, "width")
        font = tkfont.nametofont("TkDefaultFont")
        return text if font.measure(text) + 12 > width else ""

    def _moved(self, event) -> None:
        row = self.tree.identify_row(event.y)
        col = self.tree.identify_column(event.x)
        if (row, col) == self.cell:
            return
        self.hide()
        self.cell = (row, col)
        text = self.full_text(row, col)
        if text:
            self.show(text, event.x_root + 12, event.y_root + 16)

    def show(self, text: str, x: int, y: int) -> None:
        self.tip = tip_box(self.tree, text, x, y)

    def hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
        self.tip, self.cell = None, None


class CanvasHover:
    """Show the full text of a diagram's item (a shortened label, a box) in a small box
    under the pointer (Rule L4); the drawing keeps the texts (diagram.tip, tip_at)."""

    def __init__(self, canvas: tk.Canvas):
        self.canvas, self.tip, self.text = canvas, None, ""
        canvas.bind("<Motion>", self._moved, add="+")
        canvas.bind("<Leave>", lambda _e: self.hide(), add="+")

    def text_at(self, x: int, y: int) -> str:
        """The hover text at window point (x, y) of the canvas (scrolled or not), or ''."""
        return draw.tip_at(self.canvas, self.canvas.canvasx(x), self.canvas.canvasy(y))

    def _moved(self, event) -> None:
        text = self.text_at(event.x, event.y)
        if text == self.text:
            return
        self.hide()
        self.text = text
        if text:
            self.tip = tip_box(self.canvas, text, event.x_root + 12, event.y_root + 16)

    def hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
        self.tip, self.text = None, ""


def tip_box(widget, text: str, x: int, y: int) -> tk.Toplevel:
    """A small yellow box with `text` at screen point (x, y), moved left or up as far
    as it must to stay whole on the screen (a hover near the right edge was cut)."""
    tip = tk.Toplevel(widget)
    tip.wm_overrideredirect(True)
    tk.Label(tip, text=text, background="#ffffe0", foreground=draw.INK,  # dark text: in
             relief="solid", borderwidth=1, justify="left",              # macOS dark mode
             wraplength=widget.winfo_screenwidth() // 2).pack()          # Tk's is white
    tip.update_idletasks()                          # its size, before it is placed
    x = max(0, min(x, widget.winfo_screenwidth() - tip.winfo_reqwidth()))
    y = max(0, min(y, widget.winfo_screenheight() - tip.winfo_reqheight()))
    tip.wm_geometry(f"+{x}+{y}")
    return tip


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
