"""Objects screen: every object of the store, sortable and filterable, and where each is used.

The list is a :class:`VirtualTable` (Line API) so a store with 100k+ objects opens as fast
as a small one: rows are built on demand from plain lists, and sorting/filtering run in a
thread worker.  The right pane shows the highlighted object's facts and the paths that read
it, straight from the reference index (instant); Enter asks the ``refs`` engine for the full
answer (visibility of each path in each image's merged view, physical copies and their inode
groups).  Enter on a path posts :class:`JumpTo` for the app to open the image browser there.

Rows come from :mod:`objects_model`, a thin adapter over the engine's ``StoreIndex``: the
engine has no flat per-object inventory for every store kind.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, ProgressBar, Static

from inspector.analysis.objects import StoreIndex, build_index
from inspector.analysis.refs import RefsResult, find_refs
from inspector.analysis.verify import Problem, VerifyReport
from inspector.errors import InspectError
from inspector.stores.model import Store
from inspector.tui.messages import JumpTo
from inspector.tui.screens._common import (SecondaryScreen, WorkerCancel, image_id, layer_label,
                                           short_id, txt)
from inspector.tui.screens.objects_model import (SORTS, ObjectRow, apply, build_rows,
                                                 describe_filter, sort_rows)
from inspector.tui.widgets.bars import exact_bytes, human_bytes
from inspector.tui.widgets.virtual_table import Column, VirtualTable

COLUMNS = [
    Column("Size", 9, "right"),
    Column("Refs", 4, "right"),
    Column("Copies", 6, "right"),
    Column("State", 8),
    Column("Object", 14),
    Column("Used by", 0),
]

#: Above this many objects a filter runs when typing pauses, not on every key.
DEBOUNCE_ROWS = 20_000

#: The refs table lists at most this many paths (an object of a base layer can be read by
#: thousands of paths across images; the count of the rest is shown).
MAX_REFS_SHOWN = 500

_STATE_STYLE = {"present": "", "unreferenced": "yellow", "missing": "bold red",
                "metadata-missing": "bold red", "unlocated": "dim"}
_STATE_SHORT = {"present": "ok", "unreferenced": "unref", "missing": "MISSING",
                "metadata-missing": "MISSING", "lnk": "symlink", "unlocated": "no dir"}


class ObjectsScreen(SecondaryScreen):
    """All objects of *store*; pass a prebuilt *index* to skip the scan."""

    #: Below 100 columns the detail pane goes under the list instead of beside it.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("slash", "focus_filter", "Filter"),
    ]

    def __init__(self, store: Store, index: StoreIndex | None = None, *,
                 verify_report: VerifyReport | None = None, session: object | None = None,
                 name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id, classes="secondary-screen objects-screen")
        self.store = store
        self.index = index
        # The latest verify run (given, or the app session's) marks objects it found bad.
        if verify_report is None and session is not None:
            verify_report = getattr(session, "verify_report", None)
        self.verdicts: dict[str, Problem] = {}
        if verify_report is not None:
            for p in verify_report.problems:
                if p.object and p.severity == "error" and p.object not in self.verdicts:
                    self.verdicts[p.object] = p
        self.rows: list[ObjectRow] = []
        self.view: list[int] = []
        self.sort_key = "size"
        self.query_text = ""
        self.refs: RefsResult | None = None      # the refs engine's answer, after Enter
        self.answers: list[dict] = []              # rows of the refs table
        self._focus_refs = False
        self._debounce: Timer | None = None
        self._filter_timer: Timer | None = None
        self.loaded = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Objects: scanning the store…"), id="objects-title", classes="title")
        yield Input(placeholder="digest prefix, path glob (/usr/lib/*.so) or file name  —  "
                    "/ to focus, Esc to leave", id="objects-filter")
        yield ProgressBar(id="objects-progress", show_eta=False)
        with Horizontal(id="objects-body"):
            yield VirtualTable(COLUMNS, id="objects-table")
            with VerticalScroll(id="objects-detail"):
                yield Static(Text("Select an object to see where it is used."),
                             id="objects-info")
                refs = DataTable(id="objects-refs", cursor_type="row", zebra_stripes=True)
                refs.add_columns("Path", "Image", "Layer", "Visible")
                yield refs
                yield Static(Text(""), id="objects-copies")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#objects-table", VirtualTable).loading = True
        self._load()

    # ------------------------------------------------------------------ loading
    @work(thread=True, exit_on_error=False, group="objects-load", exclusive=True)
    def _load(self) -> None:
        cancel = WorkerCancel()
        idx = self.index or build_index(self.store)
        self.index = idx

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, done, total)

        rows = build_rows(idx, cancel, progress)
        if cancel.is_set():
            return
        order = sort_rows(rows, self.sort_key)
        self.app.call_from_thread(self._loaded, rows, order)

    def worker_failed(self, group: str, message: str) -> None:
        if group == "objects-load":
            self.query_one("#objects-progress", ProgressBar).display = False
            self.query_one("#objects-table", VirtualTable).loading = False
            self.query_one("#objects-title", Static).update(
                txt(f"Objects: cannot list the store: {message}", style="bold red"))
        elif group == "objects-refs":
            self.query_one("#objects-copies", Static).update(txt(message, style="red"))

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#objects-progress", ProgressBar).update(total=total, progress=done)

    def _loaded(self, rows: list[ObjectRow], order: list[int]) -> None:
        self.rows = rows
        self.loaded = True
        self.query_one("#objects-progress", ProgressBar).display = False
        table = self.query_one("#objects-table", VirtualTable)
        table.loading = False
        self._show(order)
        if self.query_text:                 # typed while the store was being scanned
            self._refilter()
        else:
            table.focus()

    # ------------------------------------------------------------------ sort / filter
    def _show(self, view: list[int]) -> None:
        self.view = view
        table = self.query_one("#objects-table", VirtualTable)
        table.reset(len(view), self._row_cells)
        self._update_title()

    def _update_title(self) -> None:
        total = len(self.rows)
        t = Text()
        t.append("Objects ", style="bold")
        t.append(f"{len(self.view):,} of {total:,}" if self.query_text else f"{total:,} objects")
        t.append(f"  ·  sorted by {self.sort_key}")
        t.append("  ·  ")
        t.append(display_filter(self.query_text))
        self.query_one("#objects-title", Static).update(t)

    def _row_cells(self, i: int) -> list[Text]:
        r = self.rows[self.view[i]]
        if r.first_path is not None:
            used = r.first_path
        elif r.name in self.store.metadata_objects:
            used = "(repository metadata)"
        else:
            used = "-"
        if r.refs > 1:
            used += f"  (+{r.refs - 1})"
        bad = self.verdicts.get(r.name)
        state = (Text(bad.kind, style="bold red") if bad is not None and r.state == "present"
                 else Text(_STATE_SHORT.get(r.state, r.state),
                           style=_STATE_STYLE.get(r.state, "bold magenta")))
        return [Text(human_bytes(r.size)), Text(str(r.refs)),
                Text(str(r.inodes), style="bold yellow" if r.inodes > 1 else ""), state,
                txt(r.name), txt(used)]

    def action_cycle_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self._refilter()

    def action_focus_filter(self) -> None:
        self.query_one("#objects-filter", Input).focus()

    @on(Input.Changed, "#objects-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        if len(self.rows) > DEBOUNCE_ROWS:      # big store: filter once typing pauses
            self._filter_timer = self.set_timer(0.25, self._refilter)
        else:
            self._refilter()

    @on(Input.Submitted, "#objects-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#objects-table", VirtualTable).focus()

    def _refilter(self) -> None:
        if self.loaded:
            self._compute_view(self.sort_key, self.query_text)

    @work(thread=True, exit_on_error=False, group="objects-view", exclusive=True)
    def _compute_view(self, key: str, query: str) -> None:
        view = apply(self.rows, sort_rows(self.rows, key), query)
        if key == self.sort_key and query == self.query_text:
            self.app.call_from_thread(self._show, view)

    def on_key(self, event) -> None:
        """Escape steps back to the list from the filter or the refs table; from the list
        it leaves the screen (SecondaryScreen's binding)."""
        if event.key == "escape" and self.focused in (
                self.query_one("#objects-filter", Input),
                self.query_one("#objects-refs", DataTable)):
            self.query_one("#objects-table", VirtualTable).focus()
            event.stop()
            event.prevent_default()

    # ------------------------------------------------------------------ detail
    def selected_row(self) -> ObjectRow | None:
        table = self.query_one("#objects-table", VirtualTable)
        if not self.view or table.cursor >= len(self.view):
            return None
        return self.rows[self.view[table.cursor]]

    @on(VirtualTable.Highlighted, "#objects-table")
    def _highlighted(self, event: VirtualTable.Highlighted) -> None:
        if isinstance(event, VirtualTable.Selected):
            return
        row = self.selected_row() if event.index >= 0 else None
        self._show_info(row)
        if self._debounce is not None:
            self._debounce.stop()
        if row is not None:
            self._debounce = self.set_timer(0.1, lambda: self._quick_refs(row.name))
        else:
            self._clear_refs()

    @on(VirtualTable.Selected, "#objects-table")
    def _selected(self, event: VirtualTable.Selected) -> None:
        row = self.selected_row()
        if row is None:
            return
        if self.refs is not None and self.refs.object == row.name:
            self._focus_refs_table()
            return
        self._focus_refs = True
        self.query_one("#objects-copies", Static).update(
            Text("Resolving visibility and physical copies…", style="dim"))
        self._load_refs(row.name)

    def _show_info(self, row: ObjectRow | None) -> None:
        info = self.query_one("#objects-info", Static)
        if row is None:
            info.update(Text("No object matches." if self.rows else ""))
            return
        t = Text()
        t.append("Object  ", style="bold")
        t.append_text(txt(row.name))
        t.append("\nSize    ", style="bold")
        t.append(f"{human_bytes(row.size)}  ({exact_bytes(row.size)})")
        t.append("\nState   ", style="bold")
        t.append(row.state, style=_STATE_STYLE.get(row.state, "bold magenta"))
        bad = self.verdicts.get(row.name)
        if bad is not None:
            t.append("\nVerify  ", style="bold")
            t.append(bad.kind, style="bold red")
            t.append(": ")
            t.append_text(txt(bad.detail))
        t.append("\nCopies  ", style="bold")
        t.append(f"{row.copies} file(s), {row.inodes} inode(s)")
        t.append("\nLayers  ", style="bold")
        t.append_text(txt(", ".join(short_id(x) for x in row.layers) or "-"))
        for d in row.digests:
            t.append("\nVerity  ", style="bold")
            t.append_text(txt(d))
        info.update(t)

    # -- where is it used: a cheap list on highlight, the refs engine's full answer on Enter
    def _clear_refs(self) -> None:
        self.refs = None
        self.answers = []
        self.query_one("#objects-refs", DataTable).clear()
        self.query_one("#objects-copies", Static).update(Text(""))

    def _quick_refs(self, name: str) -> None:
        """Paths that read *name*, from the reference index (no merged views: instant even
        with thousands of paths).  Visibility and copies come with Enter."""
        row = self.selected_row()
        if row is None or row.name != name or self.index is None:
            return
        if self.refs is not None and self.refs.object == name:
            return
        by_layer: dict[str, list[bytes]] = {}
        for lid, ref in self.index.payload_refs(name):
            by_layer.setdefault(lid, []).append(ref.path)
        answers: list[dict] = []
        for im in self.store.images:
            for lid in im.layers:
                for path in sorted(by_layer.get(lid, ())):
                    answers.append({"image": im.label, "layer": lid,
                                    "path": path.decode("utf-8", "surrogateescape"),
                                    "visible": None})
        used = {lid for im in self.store.images for lid in im.layers}
        for lid, paths in by_layer.items():
            if lid not in used:
                for path in sorted(paths):
                    answers.append({"image": None, "layer": lid,
                                    "path": path.decode("utf-8", "surrogateescape"),
                                    "visible": None})
        self.refs = None
        self._fill_refs(answers)
        hint = Text("Enter: visibility in each image and physical copies", style="dim")
        if not answers:
            hint = Text("No image reads this object.", style="yellow")
        self.query_one("#objects-copies", Static).update(hint)

    @work(thread=True, exit_on_error=False, group="objects-refs", exclusive=True)
    def _load_refs(self, name: str) -> None:
        try:
            res: RefsResult | str = find_refs(self.store, name, self.index)
        except InspectError as e:
            res = str(e)
        self.app.call_from_thread(self._show_refs, name, res)

    def _fill_refs(self, answers: list[dict]) -> None:
        self.answers = answers
        table = self.query_one("#objects-refs", DataTable)
        table.clear()
        for i, a in enumerate(answers[:MAX_REFS_SHOWN]):
            vis = a["visible"]
            table.add_row(txt(a["path"]), txt(a["image"]),
                          txt(layer_label(self.store, a["layer"])),
                          Text("…" if vis is None else "yes" if vis else "hidden",
                               style="dim" if vis is None else "" if vis else "yellow"),
                          key=str(i))

    def _show_refs(self, name: str, res: RefsResult | str) -> None:
        row = self.selected_row()
        if row is None or row.name != name:
            return
        copies = self.query_one("#objects-copies", Static)
        if isinstance(res, str):
            self.refs = None
            copies.update(txt(res, style="red"))
            return
        self.refs = res
        self._fill_refs(res.answers)
        t = Text()
        if len(res.answers) > MAX_REFS_SHOWN:
            t.append(f"{len(res.answers) - MAX_REFS_SHOWN:,} more paths not listed\n",
                     style="dim")
        if not res.answers:
            t.append("No image reads this object.\n", style="yellow")
        t.append("Physical copies", style="bold")
        if not res.physical_copies:
            t.append("\n  none", style="red")
        for c in res.physical_copies:
            t.append(f"\n  #{c['inode_group']} nlink {c['nlink']}  ")
            t.append_text(txt(c["path_in_store"]))
        copies.update(t)
        if self._focus_refs:
            self._focus_refs_table()
        self._focus_refs = False

    def _focus_refs_table(self) -> None:
        if self.answers:
            self.query_one("#objects-refs", DataTable).focus()

    @on(DataTable.RowSelected, "#objects-refs")
    def _jump(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is None:
            return
        a = self.answers[int(event.row_key.value)]
        row = self.selected_row()
        self.post_message(JumpTo(image=image_id(self.store, a["image"]), layer=a["layer"],
                                 path=a["path"], object=row.name if row else None))


def display_filter(query: str) -> Text:
    return txt(describe_filter(query), style="dim")
