"""Problems screen: the findings of a verify run, each one a jump to where it is.

Shows a :class:`~inspector.analysis.verify.VerifyReport` (given, or produced here): missing,
corrupt, size-mismatch, unreadable, suspicious, orphan, unverifiable objects and warnings,
errors first.  ``V`` runs :func:`~inspector.analysis.verify.verify_store` in a thread worker
with a progress bar; Escape cancels it (the engine stops between 1 MiB chunks and the partial
report is shown, marked cancelled).  Enter on a row posts :class:`JumpTo` with the image,
layer and path the problem is about (an orphan has no path: the jump names its layer and
object only).
"""

from __future__ import annotations

import threading
from collections import Counter

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from inspector.analysis.objects import StoreIndex, build_index
from inspector.analysis.verify import Problem, VerifyReport, verify_store
from inspector.stores.model import Store
from inspector.tui.messages import JumpTo, VerifyFinished
from inspector.tui.screens._common import (SecondaryScreen, first_image_with_layer, image_id,
                                           short_id, txt)
from inspector.tui.widgets.bars import human_bytes

#: Summary order: the kinds a user must act on first.
KIND_ORDER = ("missing", "corrupt", "size-mismatch", "unreadable", "suspicious", "blob-error",
              "store-error", "orphan", "warning-elsewhere", "unverifiable")

_SEV_STYLE = {"error": "bold red", "warning": "yellow"}

#: DataTable stays fast up to ~10k rows (docs/ux-and-textual.md §3.4); a store where every
#: object is missing can have far more problems, so the list is cut (errors come first).
MAX_ROWS = 5000


class ProblemsScreen(SecondaryScreen):
    """Verify results for *store*.  *report*: show an existing run; *autostart*: verify now."""

    BINDINGS = [
        Binding("V", "verify", "Verify all"),
        Binding("escape", "cancel_or_close", "Cancel / back"),
    ]

    def __init__(self, store: Store, report: VerifyReport | None = None,
                 index: StoreIndex | None = None, *, autostart: bool = False,
                 jobs: int | None = None, session: object | None = None,
                 name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id, classes="secondary-screen problems-screen")
        self.store = store
        #: the app's session (optional): a verify run the app makes while this screen is
        #: open (command palette, modal) is picked up when the screen comes back
        self.session = session
        if report is None and session is not None:
            report = getattr(session, "verify_report", None)
        self.report = report
        self.index = index
        self.autostart = autostart
        self.jobs = jobs
        self.running = False
        self._cancel = threading.Event()
        self._phase = ""
        self._progress: tuple[int, int, int] = (0, 0, 0)
        self.problems: list[Problem] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(""), id="problems-summary")
        yield Static(Text(""), id="problems-status")
        yield ProgressBar(id="problems-progress", show_eta=True)
        table = DataTable(id="problems-table", cursor_type="row", zebra_stripes=True)
        table.add_column("Severity", key="severity")
        table.add_column("Kind", key="kind")
        table.add_column("Path", key="path")
        table.add_column("Layer", key="layer")
        table.add_column("Object", key="object")
        table.add_column("Images", key="images")
        table.add_column("Detail", key="detail")
        yield table
        yield Static(Text(""), id="problems-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#problems-progress", ProgressBar).display = False
        self.set_interval(0.1, self._tick)
        if self.report is not None:
            self._show(self.report)
        else:
            self._show_empty()
            if self.autostart:
                self.action_verify()

    def on_screen_resume(self) -> None:
        latest = getattr(self.session, "verify_report", None)
        if latest is not None and latest is not self.report and not self.running:
            self.report = latest
            self._show(latest)

    # ------------------------------------------------------------------ verify run
    def action_verify(self) -> None:
        if self.running:
            return
        self.running = True
        self._cancel = threading.Event()
        self._phase = "scanning object directories and blobs…"
        self._progress = (0, 0, 0)
        bar = self.query_one("#problems-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self._tick()
        self._run_verify(self._cancel)

    @work(thread=True, exit_on_error=False, group="verify", exclusive=True)
    def _run_verify(self, cancel: threading.Event) -> None:
        try:
            idx = build_index(self.store)   # always fresh: a verify must see the disk as it is
            self.index = idx
            self._phase = "hashing"

            def progress(done: int, total: int, nbytes: int) -> None:
                self._progress = (done, total, nbytes)   # read by _tick on the UI thread

            rep = verify_store(self.store, jobs=self.jobs, progress=progress, cancel=cancel,
                               index=idx)
        except Exception as e:   # an engine bug must not kill the app: show it in place
            self.app.call_from_thread(self._failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._finished, rep)

    def _tick(self) -> None:
        if not self.running:
            return
        done, total, nbytes = self._progress
        status = self.query_one("#problems-status", Static)
        bar = self.query_one("#problems-progress", ProgressBar)
        if self._phase == "hashing" and total:
            bar.update(total=total, progress=done)
            status.update(Text(f"Verifying: {done:,} of {total:,} objects hashed, "
                               f"{human_bytes(nbytes)} read  —  Esc cancels"))
        else:
            status.update(Text(f"Verifying: {self._phase}  —  Esc cancels"))

    def _finished(self, rep: VerifyReport) -> None:
        self.running = False
        self.report = rep
        self.query_one("#problems-progress", ProgressBar).display = False
        self._show(rep)
        self.post_message(VerifyFinished(rep))

    def _failed(self, message: str) -> None:
        self.running = False
        self.query_one("#problems-progress", ProgressBar).display = False
        self.query_one("#problems-status", Static).update(
            txt(f"Verify failed: {message}", style="bold red"))

    def action_cancel_or_close(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#problems-status", Static).update(Text("Cancelling…"))
            return
        self.action_close()

    def on_unmount(self) -> None:
        self._cancel.set()

    # ------------------------------------------------------------------ display
    def _show_empty(self) -> None:
        self.query_one("#problems-summary", Static).update(
            Text("No verify run yet: press V to check every object of the store "
                 "(presence, size, content digests, orphans)."))

    def _show(self, rep: VerifyReport) -> None:
        self.problems = list(rep.problems)
        counts = Counter(p.kind for p in rep.problems)
        t = Text()
        if rep.cancelled:
            t.append("Verify CANCELLED: results are partial.  ", style="bold yellow")
        errors = sum(1 for p in rep.problems if p.severity == "error")
        warnings = len(rep.problems) - errors
        if not rep.problems:
            t.append("No problems found. ", style="bold green")
        else:
            t.append(f"{errors} error(s), {warnings} warning(s). ",
                     style="bold red" if errors else "bold yellow")
        t.append(f"{rep.objects_checked:,} objects checked, {rep.files_hashed:,} files "
                 f"hashed ({human_bytes(rep.bytes_hashed)}).")
        kinds = [k for k in KIND_ORDER if counts.get(k)] + sorted(
            k for k in counts if k not in KIND_ORDER)
        if kinds:
            t.append("\n")
            for i, k in enumerate(kinds):
                if i:
                    t.append("  ")
                t.append(f"{k} {counts[k]}", style=_SEV_STYLE.get(
                    "error" if k in KIND_ORDER[:7] else "warning", ""))
        if rep.orphans and self.store.kind == "composefs-rs":
            t.append(f"\n{len(rep.orphans)} unreferenced object(s): GC leftovers, "
                     "not problems in a composefs-rs repository.", style="dim")
        self.query_one("#problems-summary", Static).update(t)
        self.query_one("#problems-status", Static).update(
            Text("Enter jumps to the problem's place; V verifies again.", style="dim"))
        if len(rep.problems) > MAX_ROWS:
            t.append(f"\nThe first {MAX_ROWS:,} are listed (errors first); "
                     "`cfs-inspect verify --json PATH` lists them all.", style="dim")
            self.query_one("#problems-summary", Static).update(t)
        table = self.query_one("#problems-table", DataTable)
        table.clear()
        for i, p in enumerate(rep.problems[:MAX_ROWS]):
            images = (p.images[0] + (f" +{len(p.images) - 1}" if len(p.images) > 1 else "")
                      if p.images else None)
            table.add_row(Text(p.severity, style=_SEV_STYLE.get(p.severity, "")),
                          Text(p.kind, style="bold"), txt(p.path),
                          txt(short_id(p.layer) if p.layer else None), txt(_short(p.object)),
                          txt(images), txt(_short(p.detail, 60)), key=str(i))
        if rep.problems:
            table.move_cursor(row=0)
            table.focus()
        self._detail(0 if rep.problems else None)

    def _detail(self, i: int | None) -> None:
        d = self.query_one("#problems-detail", Static)
        if i is None or i >= len(self.problems):
            d.update(Text(""))
            return
        p = self.problems[i]
        t = Text()
        t.append(f"{p.severity.upper()} {p.kind}", style=_SEV_STYLE.get(p.severity, ""))
        for label, value in (("images", ", ".join(p.images) or None), ("layer", p.layer),
                             ("path", p.path), ("object", p.object)):
            t.append(f"\n{label:<7}", style="bold")
            t.append_text(txt(value))
        t.append("\n")
        t.append_text(txt(p.detail))
        d.update(t)

    @on(DataTable.RowHighlighted, "#problems-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._detail(int(event.row_key.value))

    @on(DataTable.RowSelected, "#problems-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is None:
            return
        p = self.problems[int(event.row_key.value)]
        self.post_message(jump_for(self.store, p))


def jump_for(store: Store, p: Problem) -> JumpTo:
    """Where a problem is: the first image that shows it, its layer, its path."""
    im = image_id(store, p.images[0]) if p.images else None
    if im is None:
        im = first_image_with_layer(store, p.layer)
    return JumpTo(image=im, layer=p.layer, path=p.path, object=p.object)


def _short(name: str | None, width: int = 20) -> str | None:
    if name is None or len(name) <= width:
        return name
    return name[:width - 2] + "…"
