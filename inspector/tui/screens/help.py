"""``?``: every key, what it does and where it applies."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str, str]] = [
    ("Everywhere", "?", "this help"),
    ("", "q / ctrl+q", "quit"),
    ("", "ctrl+p", "command palette: every action, every image and layer"),
    ("", "V", "verify the whole store (progress bar; Escape cancels)"),
    ("", "o d p H", "Objects, Dedup, Problems, Health screens"),
    ("", "tab / shift+tab", "move focus between panes; the mouse works too"),
    ("Store overview", "↑ ↓ j k", "move in the images / layers table"),
    ("", "enter", "open the image (merged view) or the layer (its own tree)"),
    ("", "/", "search the store: object name, digest or prefix (≥6 hex) → every image, "
              "layer and path reading it; IMAGE:/path; or a glob over every image"),
    ("Image browser", "↑ ↓ j k", "move in the tree or the file list"),
    ("", "← →", "tree: collapse / expand"),
    ("", "enter", "open a directory; on a file: to its 'Shared with' list; there: jump"),
    ("", "backspace / h", "up to the parent directory"),
    ("", "/", "search: glob (*.so, /usr/*/ping), name, or digest prefix (≥4 hex)"),
    ("", "s", "sort the file list: name → size → mtime → refs"),
    ("", "l", "toggle merged view ↔ each layer's own tree (.wh. files flagged)"),
    ("", "x", "show / hide composefs xattrs (trusted.overlay.*)"),
    ("", "v", "verify the selected file's object (fs-verity / sha256)"),
    ("", "escape", "back to the store overview"),
]

NOTES = ("Vim keys: j/k move; h goes up a directory. l is taken by the layer toggle, so use "
         "→ or enter to open. Names are shown literally: control bytes appear as \\xNN, \\n, "
         "\\t; markup is never interpreted.")


def help_table() -> Table:
    t = Table(box=None, show_header=True, header_style="bold", expand=True, pad_edge=False)
    t.add_column("Where", style="bold cyan", no_wrap=True)
    t.add_column("Key", style="bold", no_wrap=True)
    t.add_column("Action")
    for where, key, what in KEYS:
        t.add_row(Text(where), Text(key), Text(what))
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close"),
                Binding("q", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("cfs-inspect — keys", style="bold"), id="help-title")
            yield Static(help_table(), id="help-table")
            yield Static(Text(NOTES, style="dim"), id="help-notes")

    def action_dismiss(self, result=None) -> None:  # type: ignore[override]
        self.dismiss(None)
