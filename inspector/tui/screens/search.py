"""``/`` search: a path glob (or name substring) or a digest/object prefix, across the image.

The walk runs in a thread worker that stops when the query changes or the screen closes; at
most :data:`~inspector.tui.widgets.session.SEARCH_LIMIT` hits are listed.  Selecting a hit
dismisses the screen with its path, and the browser jumps there.
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from inspector.composefs.escape import display
from inspector.stores.model import StoreImage
from inspector.tui.widgets.session import SEARCH_LIMIT, Session
from inspector.tui.widgets.source import BrowseSource


class SearchScreen(ModalScreen[bytes | None]):
    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, session: Session, source: BrowseSource, image: StoreImage | None,
                 query: str = "") -> None:
        super().__init__(classes="search-screen")
        self.session = session
        self.source = source
        self.image = image
        self.initial = query
        self.results: list[tuple[bytes, str]] = []
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Static(Text("Search " + display(self.source.title), style="bold"),
                         id="search-title")
            yield Input(value=self.initial, placeholder="glob (*.so, /usr/*/ping), name, or "
                        "digest prefix (hex, ≥4)", id="search-input")
            yield Static(Text("Enter to search · ↓ to the results · Esc to close", style="dim"),
                         id="search-status")
            yield OptionList(id="search-results")

    def on_mount(self) -> None:
        self.query_one("#search-input", Input).focus()
        if self.initial:
            self.run_search(self.initial)

    @on(Input.Submitted, "#search-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.run_search(event.value)

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one("#search-input", Input):
            ol = self.query_one("#search-results", OptionList)
            if ol.option_count:
                ol.focus()
                event.stop()

    def run_search(self, query: str) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self._cancel = threading.Event()
        self.query_one("#search-status", Static).update(Text("Searching…", style="yellow"))
        self._search(query, self._cancel)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search(self, query: str, cancel: threading.Event) -> None:
        try:
            res = self.session.search(self.source, self.image, query, cancel)
            err = None
        except Exception as e:  # noqa: BLE001 - shown in the screen, never a traceback
            res, err = [], " ".join(str(e).split())
        if not cancel.is_set():
            self.app.call_from_thread(self._show, query, res, err)

    def _show(self, query: str, res: list[tuple[bytes, str]], err: str | None) -> None:
        self.results = res
        ol = self.query_one("#search-results", OptionList)
        ol.clear_options()
        opts = []
        for i, (path, why) in enumerate(res):
            t = Text(display(path))
            t.append("  " + display(why), style="dim")
            opts.append(Option(t, id=str(i)))
        ol.add_options(opts)
        status = self.query_one("#search-status", Static)
        if err:
            status.update(Text(display(err), style="bold red"))
        elif not res:
            status.update(Text(f"No match for {display(query)}", style="yellow"))
        else:
            more = f" (first {SEARCH_LIMIT})" if len(res) >= SEARCH_LIMIT else ""
            status.update(Text(f"{len(res)} match(es){more} · Enter on one jumps there",
                               style="green"))
        if res:
            ol.highlighted = 0

    @on(OptionList.OptionSelected, "#search-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        i = int(event.option.id or 0)
        if 0 <= i < len(self.results):
            self.dismiss(self.results[i][0])

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self.dismiss(None)
