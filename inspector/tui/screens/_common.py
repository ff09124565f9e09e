"""Small helpers shared by the secondary screens (Objects, Dedup, Problems, Health).

Everything a user sees from the store goes through :func:`txt`, which escapes control bytes
with :func:`inspector.composefs.escape.display` and wraps the result in a ``Text`` so markup
characters stay literal (docs/ux-and-textual.md §3.2).
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from inspector.composefs.escape import display
from inspector.stores.model import Store


def txt(value: object, style: str = "") -> Text:
    """A terminal-safe, markup-free cell for any store-derived value."""
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, (bytes, str)):
        return Text(display(value), style=style)
    return Text(display(str(value)), style=style)


def short_id(layer_id: str | None) -> str:
    return "-" if not layer_id else layer_id[:12]


def layer_label(store: Store, layer_id: str | None) -> str:
    """A layer's short id, with its first name when the store gives it one."""
    if not layer_id:
        return "-"
    layer = store.layers.get(layer_id)
    if layer is not None and layer.names:
        return f"{layer.names[0]} ({layer_id[:12]})"
    return layer_id[:12]


def image_id(store: Store, label_or_id: str | None) -> str | None:
    """The StoreImage.id behind a label the engine reported (engine results use labels)."""
    if not label_or_id:
        return None
    for im in store.images:
        if label_or_id in (im.id, im.label) or label_or_id in im.names:
            return im.id
    return None


def first_image_with_layer(store: Store, layer_id: str | None) -> str | None:
    if not layer_id:
        return None
    for im in store.images:
        if layer_id in im.layers:
            return im.id
    return None


class WorkerCancel:
    """A ``threading.Event``-like view of the current thread worker's cancellation, so engine
    functions that take ``cancel=`` stop when Textual cancels the worker."""

    def __init__(self) -> None:
        self._worker = get_current_worker()
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or self._worker.is_cancelled


class SecondaryScreen(Screen):
    """Escape closes the screen when something is under it (the app decides what that is).

    Every heavy step runs in a ``@work(thread=True, exit_on_error=False)`` worker; if one
    fails anyway (an engine bug, an OSError the engine did not expect) the error becomes a
    notification and :meth:`worker_failed` lets the screen replace its "loading" state with
    the message, so the app never crashes and never spins forever.
    """

    BINDINGS = [Binding("escape", "close", "Back", show=True)]

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1 and self.app.screen is self:
            self.app.pop_screen()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        err = event.worker.error
        message = f"{type(err).__name__}: {err}"
        self.notify(Text(display(message)), severity="error", timeout=8)
        self.worker_failed(event.worker.group, message)
        event.stop()

    def worker_failed(self, group: str, message: str) -> None:
        """Show *message* (raw: escape it with :func:`txt`) where the failed worker's result
        would have gone (override)."""
