"""The file list of the current directory: every entry, sortable by name, size, mtime, refs.

A DataTable stays fast up to ~10-20k rows (docs/ux-and-textual.md §3.4), so a directory is
sorted in full in Python and only the first :data:`MAX_ROWS` rows are put in the table, with
a last row saying how many are left out (``/`` search reaches them).  Cells are ``Text``.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from inspector.composefs.escape import display
from inspector.composefs.summary import format_mtime
from inspector.tui.widgets.fmt import human
from inspector.tui.widgets.source import Node

MAX_ROWS = 5000
SORTS = ("name", "size", "mtime", "refs")

_KIND_FLAG = {"dir": "d", "reg": "-", "lnk": "l", "chr": "c", "blk": "b", "fifo": "p",
              "sock": "s", "error": "!"}


def sort_nodes(nodes: list[Node], key: str, refcount) -> list[Node]:
    """Directories first for name order; size/mtime/refs descending, then name."""
    if key == "size":
        return sorted(nodes, key=lambda n: (-n.size, n.name))
    if key == "mtime":
        return sorted(nodes, key=lambda n: (-n.mtime, n.name))
    if key == "refs":
        return sorted(nodes, key=lambda n: (-(refcount(n.payload) or 0), n.name))
    return sorted(nodes, key=lambda n: (n.kind != "error", n.kind != "dir", n.name))


class FileList(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.nodes: list[Node] = []
        self.more = 0
        self.show_layer = False

    def on_mount(self) -> None:
        self._columns()

    def _columns(self) -> None:
        self.clear(columns=True)
        self.add_column(" ", key="t", width=1)
        self.add_column("Name", key="name")
        self.add_column("Size", key="size")
        self.add_column("Modified", key="mtime")
        self.add_column("Refs", key="refs")
        if self.show_layer:
            self.add_column("Layer", key="layer")

    def fill(self, nodes: list[Node], sort: str, refcount, show_layer: bool,
             select: bytes | None = None) -> None:
        """Replace the rows with *nodes* sorted by *sort*; move the cursor to *select*."""
        if show_layer != self.show_layer:
            self.show_layer = show_layer
            self._columns()
        else:
            self.clear()
        ordered = sort_nodes(nodes, sort, refcount)
        self.more = max(0, len(ordered) - MAX_ROWS)
        self.nodes = ordered[:MAX_ROWS]
        rows = [self._row(n, refcount) for n in self.nodes]
        if self.more:
            rows.append([Text("…"), Text(f"{self.more} more entries not listed: use / to search",
                                         style="dim italic"), Text(""), Text(""), Text("")]
                        + ([Text("")] if show_layer else []))
        self.add_rows(rows)
        if select is not None:
            for i, n in enumerate(self.nodes):
                if n.path == select:
                    self.move_cursor(row=i, animate=False)
                    break

    def _row(self, n: Node, refcount) -> list[Text]:
        if n.kind == "error":
            row = [Text("!", style="bold red"),
                   Text(display(n.error or "unreadable"), style="bold red"),
                   Text(""), Text(""), Text("")]
            return row + ([Text(n.layer[:12] if n.layer else "")] if self.show_layer else [])
        name = Text(display(n.name) + ("/" if n.kind == "dir" else ""),
                    style="bold blue" if n.kind == "dir" else "")
        if n.whiteout:
            name.append("  [whiteout]", style="yellow")
        if n.marker:
            name.stylize("yellow")
            name.append(f"  ⚑ {n.marker}", style="yellow italic")
        rc = refcount(n.payload) if n.payload is not None else None
        row = [
            Text(_KIND_FLAG.get(n.kind, "?")),
            name,
            Text(human(n.size) if n.kind != "dir" else "", justify="right"),
            Text(format_mtime(n.mtime, 0).replace(" UTC", "")),
            Text("" if rc is None else str(rc), justify="right"),
        ]
        if self.show_layer:
            row.append(Text(n.layer[:12] if n.layer else ""))
        return row

    def selected(self) -> Node | None:
        if not self.nodes:
            return None
        r = self.cursor_row
        if 0 <= r < len(self.nodes):
            return self.nodes[r]
        return None
