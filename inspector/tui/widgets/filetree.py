"""A lazy directory tree over a browse source (directories only; the file list shows files).

Follows the lazy pattern of docs/ux-and-textual.md §3.3: a directory node starts empty with
``allow_expand=True``; expanding it fetches the listing through an async ``fetch`` callable
(the browser runs the read in a thread worker and caches it) and adds children in chunks of
:data:`CHUNK` with a yield to the event loop between chunks, so a directory with 100k
subdirectories never freezes the interface.  Every label is a ``rich.text.Text`` built from
:func:`inspector.composefs.escape.display`: names are attacker-controlled.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from inspector.composefs.escape import display
from inspector.tui.widgets.source import Node, parent_of

CHUNK = 250

Fetch = Callable[[bytes], Awaitable[list[Node]]]


def node_label(n: Node, root_title: str | None = None) -> Text:
    """Tree label: name (escaped, literal), flagged when a marker, red with the error."""
    if n.kind == "error":
        return Text("⚠ " + display(n.error or "unreadable"), style="bold red")
    if root_title is not None:
        return Text(display(root_title), style="bold")
    t = Text(display(n.name))
    if n.opaque:
        t.append(" (opaque)", style="yellow")
    if n.marker:
        t.stylize("yellow")
    return t


class FileTree(Tree[Node]):
    """Directory tree; ``NodeHighlighted`` tells the browser which directory is current."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("backspace", "go_parent", "Up dir", show=False),
    ]

    def __init__(self, title: str, fetch: Fetch, *, id: str | None = None,
                 classes: str | None = None) -> None:
        # *title* is already terminal-safe (the browser builds it with display())
        root = Node(b"/", b"/", "dir")
        super().__init__(Text(title, style="bold"), data=root, id=id, classes=classes)
        self.fetch = fetch
        self.guide_depth = 2
        self._loaded: dict[bytes, asyncio.Event] = {}
        self.by_path: dict[bytes, TreeNode[Node]] = {b"/": self.root}

    def on_mount(self) -> None:
        self.root.expand()

    def set_title(self, title: str) -> None:
        self.root.set_label(Text(title, style="bold"))

    @on(Tree.NodeExpanded)
    async def _expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        if node.data is not None and node.data.kind == "dir":
            self.run_worker(self.load(node), group=f"load-{id(node)}", exit_on_error=False)

    async def load(self, node: TreeNode[Node]) -> None:
        """Fill *node*'s children once; concurrent callers wait for the first load."""
        path = node.data.path
        ev = self._loaded.get(path)
        if ev is not None:
            await ev.wait()
            return
        ev = self._loaded[path] = asyncio.Event()
        try:
            nodes = await self.fetch(path)
            dirs = sorted((n for n in nodes if n.kind in ("dir", "error")),
                          key=lambda n: (n.kind != "error", n.name))
            for i in range(0, len(dirs), CHUNK):
                for n in dirs[i:i + CHUNK]:
                    if n.kind == "error":
                        node.add_leaf(node_label(n), data=n)
                        continue
                    child = node.add(node_label(n), data=n, allow_expand=True)
                    self.by_path[n.path] = child
                if i + CHUNK < len(dirs):
                    await asyncio.sleep(0)
            if not dirs:
                node.allow_expand = False
        finally:
            ev.set()

    async def reveal(self, path: bytes) -> TreeNode[Node] | None:
        """Expand every ancestor of directory *path*, load it, and move the cursor there."""
        parts = [p for p in path.split(b"/") if p]
        node = self.root
        await self.load(node)
        node.expand()
        cur = b""
        for p in parts:
            cur += b"/" + p
            child = self.by_path.get(cur)
            if child is None:
                break
            node = child
            await self.load(node)
            node.expand()
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)
        return node

    def action_go_parent(self) -> None:
        node = self.cursor_node
        if node is not None and node.parent is not None:
            self.move_cursor(node.parent)

    def current_path(self) -> bytes:
        node = self.cursor_node
        if node is None or node.data is None:
            return b"/"
        n = node.data
        return parent_of(n.path) if n.kind == "error" else n.path
