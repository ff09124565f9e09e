"""``/`` search, in the browser (this image) or the overview (the whole store).

* Image browser: a path glob (or name substring) or a digest/object prefix, across the image
  being browsed (:meth:`Session.search`).  Selecting a hit dismisses with its path.
* Store overview: an object name, fs-verity digest, unique prefix or ``IMAGE:/path`` answered
  by the refs engine (:func:`inspector.analysis.refs.find_refs`: every image, layer and path
  that reads the object), or a glob searched in every image's merged view.  Selecting a hit
  dismisses with a :class:`Share` (image, layer, path) and the app jumps there.

The search runs in a thread worker that stops when the query changes or the screen closes;
at most :data:`~inspector.tui.widgets.session.SEARCH_LIMIT` hits are listed.
"""

from __future__ import annotations

import threading
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from inspector.analysis.objects import is_hex
from inspector.composefs.escape import display
from inspector.stores.model import StoreImage
from inspector.tui.widgets.nodes import Share
from inspector.tui.widgets.session import SEARCH_LIMIT, Session
from inspector.tui.widgets.source import BrowseSource

#: (query, cancel) -> [(result, label)]
SearchFn = Callable[[str, threading.Event], list[tuple[object, Text]]]


def image_search(session: Session, source: BrowseSource, image: StoreImage | None) -> SearchFn:
    def run(query: str, cancel: threading.Event) -> list[tuple[object, Text]]:
        out = []
        for path, why in session.search(source, image, query, cancel):
            t = Text(display(path))
            t.append("  " + display(why), style="dim")
            out.append((path, t))
        return out
    return run


def store_search(session: Session) -> SearchFn:
    """Objects through the refs engine; anything else as a glob over every image."""
    def run(query: str, cancel: threading.Event) -> list[tuple[object, Text]]:
        from inspector.analysis.refs import find_refs
        q = query.strip()
        key = q.replace("/", "").split(".", 1)[0].lower()
        out: list[tuple[object, Text]] = []
        if ":/" in q or (len(key) >= 6 and is_hex(key)):
            idx = session.ensure_index()
            res = find_refs(session.store, q, idx)   # InspectError: shown by the screen
            for a in res.answers:
                s = Share(a["image"], a["layer"], a["path"].encode("utf-8", "surrogateescape"),
                          a["visible"])
                out.append((s, _share_text(s, "")))
            return out
        for im in session.store.images:
            if cancel.is_set():
                break
            src = session.source(im)
            for path, kind in session.search(src, im, q, cancel):
                n = src.node(path)
                s = Share(im.label, n.layer if n is not None else im.layers[0], path, True)
                out.append((s, _share_text(s, kind)))
                if len(out) >= SEARCH_LIMIT:
                    return out
        return out
    return run


def _share_text(s: Share, why: str) -> Text:
    t = Text(display(s.image or "(no image)"), style="bold")
    t.append("  " + s.layer[:12] + "  ", style="dim")
    t.append(display(s.path))
    if s.visible is False:
        t.append("  (hidden in merged view)", style="yellow")
    if why:
        t.append("  " + display(why), style="dim")
    return t


class SearchScreen(ModalScreen[object]):
    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, title: str, search: SearchFn, query: str = "",
                 placeholder: str = "glob (*.so, /usr/*/ping), name, or digest prefix (hex, ≥4)"
                 ) -> None:
        super().__init__(classes="search-screen")
        self.title_text = title
        self.search_fn = search
        self.initial = query
        self.placeholder = placeholder
        self.results: list[object] = []
        self._cancel: threading.Event | None = None

    @classmethod
    def for_image(cls, session: Session, source: BrowseSource,
                  image: StoreImage | None) -> "SearchScreen":
        return cls("Search " + display(source.title), image_search(session, source, image))

    @classmethod
    def for_store(cls, session: Session) -> "SearchScreen":
        return cls("Search the store", store_search(session),
                   placeholder="object name / digest / prefix (≥6 hex), IMAGE:/path, or glob")

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Static(Text(self.title_text, style="bold"), id="search-title")
            yield Input(value=self.initial, placeholder=self.placeholder, id="search-input")
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
            res = self.search_fn(query, cancel)
            err = None
        except Exception as e:  # noqa: BLE001 - shown in the screen, never a traceback
            res, err = [], " ".join(str(e).split())
        if not cancel.is_set():
            self.app.call_from_thread(self._show, query, res, err)

    def _show(self, query: str, res: list[tuple[object, Text]], err: str | None) -> None:
        self.results = [r for r, _ in res]
        ol = self.query_one("#search-results", OptionList)
        ol.clear_options()
        ol.add_options([Option(label, id=str(i)) for i, (_, label) in enumerate(res)])
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
            self.dismiss(self.results[i])

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self.dismiss(None)
