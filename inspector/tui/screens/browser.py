"""Image browser: lazy directory tree, file list of the current directory, detail pane.

The view is the image's merged tree under OCI semantics (``MergedSource``) or, toggled with
``l``, one layer's own tree where literal ``.wh.`` files show flagged.  Every read (directory
listing, inode details, verify) runs off the UI thread; the screen keeps per-source listing
caches so moving around never re-reads a directory.
"""

from __future__ import annotations

import asyncio
from functools import partial

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, Tree
from textual.worker import Worker, WorkerState

from inspector.composefs.escape import display
from inspector.stores.model import StoreImage
from inspector.tui.widgets.details import DetailPane, render_parts
from inspector.tui.widgets.filelist import SORTS, FileList
from inspector.tui.widgets.filetree import FileTree
from inspector.tui.widgets.session import Session
from inspector.tui.widgets.source import BrowseSource, Details, Node, parent_of


class BrowserScreen(Screen):
    """Browse *image* of the session (merged, or *layer*'s own tree), starting at *path*."""

    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("l", "toggle_layer", "Layer/merged"),
        Binding("x", "toggle_xattrs", "Xattrs"),
        Binding("v", "verify_selection", "Verify sel."),
        Binding("V", "app.verify_all", "Verify all"),
        Binding("backspace", "go_up", "Up", show=False),
        Binding("h", "go_up", "Up", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, session: Session, image: StoreImage, layer: str | None = None,
                 path: bytes = b"/", *, plain_erofs: bool = False) -> None:
        super().__init__(classes="browser-screen")
        self.session = session
        self.image = image
        self.layer_id = layer
        self.start_path = path
        self.plain_erofs = plain_erofs
        self.source: BrowseSource = session.source(image, layer)
        self.cwd: bytes = b"/"
        self.sort = "name"
        self.show_machinery = False
        self.selected: bytes | None = None
        self.details: Details | None = None
        self._cache: dict[tuple[tuple[str, str], bytes], list[Node]] = {}
        self._navigating = 0
        self.ready = asyncio.Event()

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="browser-body"):
            self._tree = FileTree(self._title(), self.fetch, classes="browser-tree")
            yield self._tree
            with Vertical(id="browser-right"):
                yield Static(id="browser-status")
                yield FileList(id="browser-list")
                yield DetailPane(id="browser-details")
        yield Footer()

    def _title(self) -> str:
        """Terminal-safe title (an image file name is attacker-controlled too)."""
        t = display(self.source.title)
        if self.plain_erofs:
            t += " (plain EROFS, not composefs)"
        return t

    @property
    def tree(self) -> FileTree:
        return self._tree

    @property
    def filelist(self) -> FileList:
        return self.query_one("#browser-list", FileList)

    @property
    def pane(self) -> DetailPane:
        return self.query_one("#browser-details", DetailPane)

    async def on_mount(self) -> None:
        self.sub_title = self._title()
        self.watch(self.app, "analysis_version", self._analysis_changed, init=False)
        self.run_worker(self._start(self.start_path), group="start", exit_on_error=False)

    async def _start(self, path: bytes) -> None:
        try:
            await self.goto(path)
        finally:
            self.ready.set()
        self.filelist.focus()
        start = getattr(self.app, "start_analysis", None)
        if start is not None:
            start()

    def _analysis_changed(self, _value: int) -> None:
        if self.cwd is not None and self.filelist.nodes:
            self._refill(select=self.selected)
        if self.selected is not None:
            self.show_details(self.selected)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed read or navigation becomes a notification, never a crash."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(display(f"{type(err).__name__}: {' '.join(str(err).split())}"), markup=False,
                        severity="error", timeout=8)

    # -- data --------------------------------------------------------------------------------
    async def fetch(self, path: bytes) -> list[Node]:
        key = (self.source.key, path)
        nodes = self._cache.get(key)
        if nodes is None:
            source = self.source
            nodes = await asyncio.to_thread(source.listdir, path)
            self._cache[(source.key, path)] = nodes
        return nodes

    # -- navigation --------------------------------------------------------------------------
    async def goto(self, path: bytes | str) -> bool:
        """Show *path*: its directory in the tree and list, the entry selected and detailed."""
        if isinstance(path, str):
            path = path.encode("utf-8", "surrogateescape")
        path = b"/" + path.strip(b"/") if path.strip(b"/") else b"/"
        self._navigating += 1
        try:
            return await self._goto(path)
        finally:
            self._navigating -= 1

    async def _goto(self, path: bytes) -> bool:
        node = await asyncio.to_thread(self.source.node, path)
        if node is None:
            self.notify(f"{display(path)} is not in {display(self.source.title)}", markup=False,
                        severity="warning")
            if path == b"/":
                return False
            await self._goto(parent_of(path))
            return False
        d = path if node.is_dir else parent_of(path)
        self.cwd = d
        await self.tree.reveal(d)
        await self.open_dir(d, select=None if node.is_dir else path)
        return True

    async def open_dir(self, path: bytes, select: bytes | None = None) -> None:
        self.cwd = path
        nodes = await self.fetch(path)
        if self.cwd != path:
            return
        self._refill(nodes, select)
        sel = select if select is not None else path
        self.show_details(sel)

    def _refill(self, nodes: list[Node] | None = None, select: bytes | None = None) -> None:
        if nodes is None:
            nodes = self._cache.get((self.source.key, self.cwd), [])
        self.filelist.fill(nodes, self.sort, self.session.refcount, self.source.merged, select)
        self._status(len(nodes))

    def _status(self, count: int | None = None) -> None:
        if count is None:
            count = len(self._cache.get((self.source.key, self.cwd), []))
        t = Text()
        t.append(display(self.cwd), style="bold")
        t.append(f"  ·  {count} entries  ·  sort: {self.sort}", style="dim")
        if self.session.index is None:
            t.append("  ·  indexing store…", style="yellow")
        self.query_one("#browser-status", Static).update(t)

    @on(Tree.NodeHighlighted)
    def _tree_highlight(self, event: Tree.NodeHighlighted) -> None:
        if event.control is not self._tree:
            return
        n = event.node.data
        if n is None:
            return
        if n.kind == "error":
            self.show_error_node(n)
            return
        if n.path == self.cwd or self._navigating:
            return
        self.run_worker(partial(self.open_dir, n.path), group="cwd", exclusive=True, exit_on_error=False)

    @on(DataTable.RowHighlighted, "#browser-list")
    def _row_highlight(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self.filelist.cursor_row:
            return   # stale: the cursor moved again (fill() selects after adding rows)
        n = self.filelist.selected()
        if n is None:
            return
        if n.kind == "error":
            self.show_error_node(n)
            return
        if n.path != self.selected:
            self.show_details(n.path)

    @on(DataTable.RowSelected, "#browser-list")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        n = self.filelist.selected()
        if n is not None and n.kind == "dir":
            self.navigate(n.path)
        elif n is not None:
            shares = self.pane.query_one("#detail-shares")
            if shares.display:
                if shares.highlighted is None and shares.option_count:
                    shares.highlighted = 0
                shares.focus()       # Enter again jumps to the highlighted share

    def action_go_up(self) -> None:
        if self.cwd == b"/":
            return
        old = self.cwd
        parent = parent_of(old)

        self.navigate(old)   # its parent directory, with *old* selected

    def navigate(self, path: bytes) -> None:
        """goto() in a worker; a newer navigation cancels an older one."""
        self.run_worker(partial(self.goto, path), group="nav", exclusive=True, exit_on_error=False)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # -- details -----------------------------------------------------------------------------
    def show_error_node(self, n: Node) -> None:
        self.selected = n.path
        d = Details(n.path, n.layer, "error", error=n.error)
        self.details = d
        self.pane.show(d, render_parts(d))

    def show_details(self, path: bytes) -> None:
        self.selected = path
        self.run_worker(partial(self._details, path), group="details", exclusive=True,
                        exit_on_error=False)

    async def _details(self, path: bytes) -> None:
        d = await asyncio.to_thread(self.session.details, self.source, self.image, path)
        if self.selected != path:
            return
        self.details = d
        self.render_pane()

    def render_pane(self) -> None:
        d = self.details
        if d is None:
            return
        rc = self.session.refcount(d.payload) if d.payload is not None else None
        note = "Shared with: indexing the store…" if self.session.index is None else None
        self.pane.show(d, render_parts(d, self.show_machinery, rc, self.image.label), note)

    @on(DetailPane.JumpRequest)
    def _jump(self, event: DetailPane.JumpRequest) -> None:
        s = event.share
        self.app.jump(s.image, s.layer if not s.visible else None, s.path)

    async def switch_to(self, image: StoreImage, layer: str | None, path: bytes) -> None:
        """Re-point this browser (another image, or layer view) and select *path*."""
        self._navigating += 1
        try:
            self.image = image
            self.layer_id = layer
            self.source = self.session.source(image, layer)
            self.sub_title = self._title()
            old = self._tree
            new = FileTree(self._title(), self.fetch, classes="browser-tree")
            await self.query_one("#browser-body", Horizontal).mount(new, before=old)
            self._tree = new
            await old.remove()
            await self.goto(path)
        finally:
            self._navigating -= 1

    # -- actions -----------------------------------------------------------------------------
    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._refill(select=self.selected)
        self.notify(f"Sorted by {self.sort}", timeout=2)

    def action_toggle_xattrs(self) -> None:
        self.show_machinery = not self.show_machinery
        self.render_pane()

    def action_toggle_layer(self) -> None:
        if self.session.single_image:
            self.notify("A single image has one tree: nothing to toggle", timeout=3)
            return
        cycle: list[str | None] = [None, *(lid for lid in self.image.layers
                                            if lid in self.session.store.layers)]
        nxt = cycle[(cycle.index(self.layer_id) + 1) % len(cycle)] \
            if self.layer_id in cycle else None
        keep = self.selected or self.cwd
        self.run_worker(partial(self.switch_to, self.image, nxt, keep), group="nav", exclusive=True,
                        exit_on_error=False)

    def action_verify_selection(self) -> None:
        d = self.details
        if d is None or d.kind != "reg" or d.payload is None:
            self.notify("Select a regular file with an object to verify", severity="warning")
            return
        self.run_worker(partial(self._verify, d), group="verify-one", exclusive=True, exit_on_error=False)

    async def _verify(self, d: Details) -> None:
        d.object_state, d.object_note = "verifying…", None
        self.render_pane()
        state, note = await asyncio.to_thread(self.session.verify_object, d)
        d.object_state, d.object_note = state, note
        if self.details is d:
            self.render_pane()
        sev = "information" if state == "verified" else "error"
        self.notify(f"{display(d.path)}: {state}" + (f" — {display(note)}" if note else ""),
                    markup=False,
                    severity=sev, timeout=5)

    def action_search(self) -> None:
        from inspector.tui.screens.search import SearchScreen

        def done(path: bytes | None) -> None:
            if path is not None:
                self.navigate(path)
        self.app.push_screen(SearchScreen.for_image(self.session, self.source, self.image), done)
