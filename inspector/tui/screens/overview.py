"""Store overview: totals, images and layers; Enter opens the image browser.

The tables are filled at once from the store model (names, layer counts, ids, parents); the
figures that need the reference index and dedup (bytes, shared %, digests, inode counts) are
computed by app-level thread workers and filled in when ready, so a big store shows its
structure immediately.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from inspector.composefs.escape import display
from inspector.stores.model import StoreImage
from inspector.tui.widgets.fmt import human, pct
from inspector.tui.widgets.session import Session


def _t(v: object, style: str = "", justify: str = "left") -> Text:
    return Text(display(str(v)) if v is not None else "-", style=style, justify=justify)


class OverviewScreen(Screen):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("slash", "search", "Search store"),
        Binding("V", "app.verify_all", "Verify all"),
        Binding("o", "app.open_secondary('objects')", "Objects"),
        Binding("d", "app.open_secondary('dedup')", "Dedup"),
        Binding("p", "app.open_secondary('problems')", "Problems"),
        Binding("H", "app.open_secondary('health')", "Health"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(classes="overview-screen")
        self.session = session
        self.inode_counts: dict[str, int] = {}
        self.image_keys: list[StoreImage] = []
        self.layer_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Vertical(id="overview-body"):
            yield Static(id="overview-totals")
            yield Static(Text("Images", style="bold"), classes="overview-caption")
            yield DataTable(id="overview-images", cursor_type="row")
            yield Static(Text("Layers", style="bold"), classes="overview-caption")
            yield DataTable(id="overview-layers", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        st = self.session.store
        self.sub_title = display(f"{st.kind} · {st.path}")
        im = self.query_one("#overview-images", DataTable)
        for key, label in (("name", "Image"), ("layers", "Layers"), ("logical", "Logical"),
                           ("unique", "Unique"), ("shared", "Shared"), ("digests", "Verity digests"),
                           ("problems", "Problems")):
            im.add_column(label, key=key)
        la = self.query_one("#overview-layers", DataTable)
        for key, label in (("id", "Layer"), ("parent", "Parent"), ("kind", "Kind"),
                           ("inodes", "Inodes"), ("objects", "Objects"), ("bytes", "Bytes"),
                           ("shared", "Shared"), ("images", "Used by")):
            la.add_column(label, key=key)
        self.refresh_tables()
        self.watch(self.app, "analysis_version", lambda _v: self.refresh_tables(), init=False)
        im.focus()
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        start = getattr(self.app, "start_analysis", None)
        if start is not None:
            start()
        self.run_worker(self._count_inodes(), group="inodes", exit_on_error=False)

    async def _count_inodes(self) -> None:
        for lid in list(self.session.store.layers):
            n = await asyncio.to_thread(self.session.count_inodes, lid)
            if n is not None:
                self.inode_counts[lid] = n
        self.refresh_tables()

    def refresh_tables(self) -> None:
        s = self.session
        totals = s.totals()
        t = Text()
        st = s.store
        t.append(f"{display(st.kind)}  ", style="bold")
        t.append(display(str(st.path)) + "\n", style="dim")
        t.append(f"{len(st.images)} images · {len(st.layers)} layers   ")
        if totals is None:
            msg = s.dedup_error or s.index_error
            t.append("computing totals…" if not msg else f"totals unavailable: {display(msg)}",
                     style="yellow" if not msg else "bold red")
        else:
            t.append("physical ", style="dim")
            t.append(human(totals.physical), style="bold")
            t.append("  logical ", style="dim")
            t.append(human(totals.logical), style="bold")
            t.append("  saved by sharing ", style="dim")
            t.append(human(totals.saved), style="bold green")
            t.append("  reclaimable ", style="dim")
            t.append(human(totals.reclaimable), style="bold yellow")
        for p in st.problems:
            t.append("\n⚠ " + display(p), style="bold red")
        self.query_one("#overview-totals", Static).update(t)

        im = self.query_one("#overview-images", DataTable)
        cur = im.cursor_row
        im.clear()
        self.image_keys = []
        for r in s.image_rows():
            probs = "; ".join(r.problems)
            im.add_row(_t(r.label, "bold red" if probs else "bold"), _t(r.layers, justify="right"),
                       _t(human(r.logical) if r.logical is not None else None, justify="right"),
                       _t(human(r.unique) if r.unique is not None else None, justify="right"),
                       _t(human(r.shared) if r.shared is not None else None, justify="right"),
                       _t(r.digests, justify="right"),
                       _t(probs or "", "bold red"))
            self.image_keys.append(r.image)
        if self.image_keys:
            im.move_cursor(row=min(cur, len(self.image_keys) - 1), animate=False)

        la = self.query_one("#overview-layers", DataTable)
        cur = la.cursor_row
        la.clear()
        self.layer_keys = []
        for r in s.layer_rows(self.inode_counts):
            probs = "; ".join(r.problems)
            kind = r.kind
            if r.kind == "composefs" and s._readers.get(r.layer.id) is not None \
                    and s.is_plain_erofs(r.layer.id):
                kind = "plain EROFS"
            used = ", ".join(r.images) if r.images else "(no image)"
            la.add_row(_t(r.layer.id[:12], "bold red" if probs else "bold"),
                       _t(r.layer.parent[:12] if r.layer.parent else "-"),
                       _t(kind),
                       _t(r.inodes, justify="right"),
                       _t(r.objects, justify="right"),
                       _t(human(r.bytes) if r.bytes is not None else None, justify="right"),
                       _t(pct(r.shared_pct), justify="right"),
                       _t(("⚠ " + probs) if probs else used, "bold red" if probs else ""))
            self.layer_keys.append(r.layer.id)
        if self.layer_keys:
            la.move_cursor(row=min(cur, len(self.layer_keys) - 1), animate=False)

    def action_search(self) -> None:
        """Store-wide search: the refs engine for objects, a glob over every image."""
        from inspector.tui.screens.search import SearchScreen

        def done(share) -> None:
            if share is not None:
                self.app.jump(share.image, share.layer if share.visible is False else None,
                              share.path)
        self.app.push_screen(SearchScreen.for_store(self.session), done)

    def action_cursor_down(self) -> None:
        w = self.focused
        if isinstance(w, DataTable):
            w.action_cursor_down()

    def action_cursor_up(self) -> None:
        w = self.focused
        if isinstance(w, DataTable):
            w.action_cursor_up()

    @on(DataTable.RowSelected, "#overview-images")
    def _open_image(self, event: DataTable.RowSelected) -> None:
        i = event.cursor_row
        if 0 <= i < len(self.image_keys):
            self.app.open_browser(self.image_keys[i])

    @on(DataTable.RowSelected, "#overview-layers")
    def _open_layer(self, event: DataTable.RowSelected) -> None:
        i = event.cursor_row
        if 0 <= i < len(self.layer_keys):
            lid = self.layer_keys[i]
            self.app.open_layer(lid)
