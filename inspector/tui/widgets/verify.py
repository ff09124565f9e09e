"""``V``: verify the whole store in a thread worker, with a progress bar; Escape cancels.

Runs :func:`inspector.analysis.verify.verify_store` with a ``cancel`` event and a progress
callback.  The callback is called from the hashing pool's threads, so it is throttled to a
few updates a second and reaches the UI through ``call_from_thread``.  The modal dismisses
with the report (``cancelled`` set when the user stopped it).
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static

from inspector.composefs.escape import display
from inspector.tui.widgets.fmt import human
from inspector.tui.widgets.session import Session


class VerifyScreen(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session: Session) -> None:
        super().__init__(classes="verify-screen")
        self.session = session
        self.cancel = threading.Event()
        self._last = 0.0

    def compose(self) -> ComposeResult:
        with Vertical(id="verify-box"):
            yield Static(Text("Verifying every object of the store", style="bold"))
            yield ProgressBar(total=None, show_eta=True, id="verify-progress")
            yield Static(Text("Indexing…", style="dim"), id="verify-status")
            yield Static(Text("Escape cancels", style="dim"))

    def on_mount(self) -> None:
        self._run()

    @work(thread=True, exclusive=True, group="verify-all", exit_on_error=False)
    def _run(self) -> None:
        from inspector.analysis.verify import verify_store
        s = self.session
        try:
            idx = s.compute_index()   # fresh: a verify must see the disk as it is now
            rep = verify_store(s.store, progress=self._progress, cancel=self.cancel, index=idx)
        except Exception as e:  # noqa: BLE001 - shown to the user, never a traceback
            msg = " ".join(str(e).split())
            self.app.call_from_thread(self._failed, msg)
            return
        self.app.call_from_thread(self.dismiss, rep)

    def _progress(self, done: int, total: int, nbytes: int) -> None:
        now = time.monotonic()
        if done != total and now - self._last < 0.1:
            return
        self._last = now
        try:
            self.app.call_from_thread(self._update, done, total, nbytes)
        except RuntimeError:
            pass  # app shutting down

    def _update(self, done: int, total: int, nbytes: int) -> None:
        self.query_one("#verify-progress", ProgressBar).update(total=total, progress=done)
        self.query_one("#verify-status", Static).update(
            Text(f"{done}/{total} files hashed · {human(nbytes)}", style="dim"))

    def _failed(self, msg: str) -> None:
        self.query_one("#verify-status", Static).update(Text(f"verify failed: {display(msg)}",
                                                             style="bold red"))

    def action_cancel(self) -> None:
        if self.cancel.is_set():
            self.dismiss(None)
            return
        self.cancel.set()
        self.query_one("#verify-status", Static).update(Text("Cancelling…", style="yellow"))
