"""A virtualised, read-only table for lists far beyond DataTable's comfort zone.

DataTable measures every cell before its first paint (≈5 s for 100k rows, see
docs/ux-and-textual.md §3.4).  The Objects screen must list every object of a store, so this
widget follows the Line API pattern instead: it keeps only a row *count* and a callback that
builds one row's cells on demand, and renders just the visible lines (with a small cache).
Sorting and filtering happen on plain Python lists outside the widget; the widget is told the
new count with :meth:`reset`.

Cells are always :class:`rich.text.Text` built by the caller from escaped strings, so a file
name can never be interpreted as markup.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True, slots=True)
class Column:
    """A fixed-width column; ``width`` 0 means "take what is left"."""

    title: str
    width: int
    justify: str = "left"      # "left" | "right"


RowFn = Callable[[int], Sequence[Text]]


class VirtualTable(ScrollView, can_focus=True):
    """Rows built on demand by ``row_fn(index)``; one header line; a row cursor."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=True),
    ]

    COMPONENT_CLASSES = {"virtual-table--header", "virtual-table--cursor"}

    DEFAULT_CSS = """
    VirtualTable { height: 1fr; }
    VirtualTable > .virtual-table--header { text-style: bold; background: $panel; }
    VirtualTable > .virtual-table--cursor { background: $accent 40%; }
    VirtualTable:focus > .virtual-table--cursor { background: $accent; color: $text; }
    """

    cursor = reactive(0, init=False)

    class Highlighted(Message):
        """The cursor moved to ``index`` (-1 when the table is empty)."""

        def __init__(self, table: "VirtualTable", index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

        @property
        def control(self) -> "VirtualTable":
            return self.table

    class Selected(Highlighted):
        """Enter or a click on the row under the cursor."""

    def __init__(self, columns: Sequence[Column], row_fn: RowFn | None = None, count: int = 0,
                 *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self._row_fn: RowFn = row_fn or (lambda i: ())
        self._count = count
        self._cache: OrderedDict[int, list[Segment]] = OrderedDict()
        self._cache_width = -1

    # ------------------------------------------------------------------ data
    @property
    def row_count(self) -> int:
        return self._count

    def reset(self, count: int, row_fn: RowFn | None = None, cursor: int = 0) -> None:
        """New rows (after a sort or a filter): drop caches, move the cursor, repaint."""
        if row_fn is not None:
            self._row_fn = row_fn
        self._count = count
        self._cache.clear()
        self.virtual_size = Size(self.size.width, count + 1)
        self.set_reactive(VirtualTable.cursor, max(0, min(cursor, count - 1)) if count else 0)
        self.scroll_to(y=0, animate=False, immediate=True)
        self._scroll_cursor_visible()
        self.refresh()
        self.post_message(self.Highlighted(self, self.cursor if count else -1))

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self._cache.clear()
        self.refresh()

    # ------------------------------------------------------------------ rendering
    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self._count + 1)
        self._cache.clear()

    def _widths(self, width: int) -> list[int]:
        fixed = sum(c.width for c in self.columns if c.width) + max(len(self.columns) - 1, 0)
        flex = [c for c in self.columns if not c.width]
        rest = max(width - fixed, 8)
        each = rest // len(flex) if flex else 0
        return [c.width or each for c in self.columns]

    def _line(self, cells: Sequence[Text], width: int) -> list[Segment]:
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        for i, (col, w) in enumerate(zip(self.columns, self._widths(width))):
            cell = cells[i].copy() if i < len(cells) else Text("")
            cell.no_wrap = True
            if cell.cell_len > w:
                cell.truncate(max(w - 1, 0))
                cell.append("…")
            else:
                cell.pad_left(w - cell.cell_len) if col.justify == "right" else cell.pad_right(
                    w - cell.cell_len)
            if i:
                out.append(" ")
            out.append_text(cell)
        return list(out.render(self.app.console))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if width != self._cache_width:
            self._cache.clear()
            self._cache_width = width
        if y == 0:
            header = [Text(c.title) for c in self.columns]
            style = self.get_component_rich_style("virtual-table--header")
            segs = self._line(header, width)
            return Strip(segs).crop_extend(0, width, base + style).apply_style(base + style)
        index = self.scroll_offset.y + y - 1
        if index >= self._count:
            return Strip.blank(width, base)
        segs = self._cache.get(index)
        if segs is None:
            segs = self._line(self._row_fn(index), width)
            self._cache[index] = segs
            if len(self._cache) > 512:
                self._cache.popitem(last=False)
        strip = Strip(segs).crop_extend(0, width, base)
        if index == self.cursor:
            style = self.get_component_rich_style("virtual-table--cursor")
            strip = strip.apply_style(style)
        return strip

    # ------------------------------------------------------------------ cursor
    @property
    def _page(self) -> int:
        return max(self.size.height - 2, 1)

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_visible()
        self.refresh()
        self.post_message(self.Highlighted(self, new if self._count else -1))

    def _scroll_cursor_visible(self) -> None:
        top = self.scroll_offset.y
        visible = max(self.size.height - 1, 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def move_cursor(self, index: int) -> None:
        if self._count:
            self.cursor = max(0, min(index, self._count - 1))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self._count - 1)

    def action_select(self) -> None:
        if self._count:
            self.post_message(self.Selected(self, self.cursor))

    def on_click(self, event: Click) -> None:
        if event.y == 0:
            return
        index = self.scroll_offset.y + event.y - 1
        if 0 <= index < self._count:
            was = self.cursor
            self.move_cursor(index)
            if was == index or event.chain >= 2:
                self.post_message(self.Selected(self, index))
