"""The detail pane: everything about the selected inode, and where else its object is used.

:func:`render_details` is pure (``Details`` -> ``Text``) so tests can check the exact text.
Every value from the image goes through :func:`display` / :func:`display_value` and into a
``Text``, never into markup.  The "shared with" list is an ``OptionList``: selecting a row
posts :class:`DetailPane.JumpRequest`, which the browser turns into a jump.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from inspector.composefs.escape import display, display_value
from inspector.composefs.summary import format_mtime
from inspector.tui.widgets.fmt import human_exact
from inspector.tui.widgets.source import Details, Share

_STATE_STYLE = {"present": "green", "verified": "bold green", "missing": "bold red",
                "corrupt": "bold red", "size-mismatch": "bold red", "unreadable": "bold red",
                "suspicious": "bold red", "unknown": "yellow", "no object": "dim",
                "verifying…": "yellow"}

_KIND_NAME = {"reg": "regular file", "dir": "directory", "lnk": "symlink",
              "chr": "character device", "blk": "block device", "fifo": "fifo",
              "sock": "socket", "whiteout": "whiteout (chr 0/0)"}


def _line(t: Text, key: str, value: str | Text, style: str = "") -> None:
    t.append(f"{key:<12}", style="bold")
    if isinstance(value, Text):
        t.append_text(value)
    else:
        t.append(value, style=style)
    t.append("\n")


def render_details(d: Details, show_machinery: bool = False, refcount: int | None = None,
                   image: str | None = None) -> Text:
    """The detail pane's whole text for *d* (the share list is rendered separately)."""
    head, tail = render_parts(d, show_machinery, refcount, image)
    return head + tail


def render_parts(d: Details, show_machinery: bool = False, refcount: int | None = None,
                 image: str | None = None) -> tuple[Text, Text]:
    """(head, tail): identity, metadata and object first; hardlinks and xattrs after the
    "Shared with" list, so the sharing answer is visible without scrolling."""
    t = Text()
    _line(t, "Path", display(d.path))
    if d.error:
        _line(t, "Problem", display(d.error), "bold red")
        return t, Text()
    kind = _KIND_NAME.get(d.kind, d.kind)
    if d.whiteout and d.kind != "whiteout":
        kind += " — overlay whiteout (deletes this name in lower layers)"
    _line(t, "Type", kind)
    if d.marker:
        _line(t, "Marker", display(d.marker), "yellow")
    if d.opaque:
        _line(t, "Opaque", "yes: hides lower layers' content of this directory", "yellow")
    _line(t, "Mode", f"{d.mode_string}  ({d.mode & 0o7777:04o})")
    _line(t, "Size", human_exact(d.size))
    if d.layer:
        _line(t, "Layer", d.layer[:12] + (f"  in {display(image)}" if image else ""))
    if d.symlink_target is not None:
        _line(t, "Target", display(d.symlink_target))
    if d.kind == "reg":
        _line(t, "Payload", display(d.payload) if d.payload is not None else "-")
        dig = d.digest if d.digest else "-"
        if d.digest_algorithm and d.digest:
            dig += f"  (fs-verity {d.digest_algorithm})"
        _line(t, "Digest", dig)
        if d.payload is not None:
            st = d.object_state or "unknown"
            state = Text(st, style=_STATE_STYLE.get(st, "bold red"))
            if d.object_note:
                state.append("  " + display(d.object_note), style="dim")
            _line(t, "State", state)
            if refcount is not None:
                _line(t, "References", f"{refcount} path(s) in the store read this object")
    head = t
    t = Text()
    _line(t, "Owner", f"uid {d.uid}  gid {d.gid}")
    _line(t, "Modified", format_mtime(d.mtime, d.mtime_nsec))
    _line(t, "Links", str(d.nlink))
    ident = []
    if d.nid is not None:
        ident.append(f"nid {d.nid}")
    if d.ino is not None:
        ident.append(f"ino {d.ino}")
    if ident:
        _line(t, "Inode", "  ".join(ident))
    if d.layout:
        _line(t, "Layout", d.layout)
    if d.rdev is not None:
        _line(t, "Device", f"{d.rdev[0]}:{d.rdev[1]}")
    if d.kind == "reg" and d.payload is not None:
        _line(t, "Object", display(str(d.object_path)) if d.object_path else "-")
    if len(d.hardlinks) > 1:
        t.append("Hardlinks\n", style="bold")
        for p in d.hardlinks:
            t.append("  " + display(p) + ("  (this)" if p == d.path else "") + "\n")
    xs = d.xattrs + (d.machinery_xattrs if show_machinery else [])
    t.append(f"Xattrs ({len(d.xattrs)}" + (f" + {len(d.machinery_xattrs)} composefs"
                                          if d.machinery_xattrs else "") + ")", style="bold")
    if d.machinery_xattrs and not show_machinery:
        t.append("  x: show composefs xattrs", style="dim")
    t.append("\n")
    machinery = set(d.machinery_xattrs)
    for k, v in xs:
        t.append("  " + display(k), style="dim" if (k, v) in machinery else "cyan")
        t.append(" = ")
        val = display_value(v)
        if len(val) > 400:
            val = val[:400] + f"… ({len(v)} bytes)"
        t.append(val + "\n", style="dim" if (k, v) in machinery else "")
    return head, t


def share_label(s: Share) -> Text:
    t = Text()
    t.append(display(s.image) if s.image else "(no image)", style="bold")
    t.append("  " + s.layer[:12] + "  ", style="dim")
    t.append(display(s.path))
    if s.visible is False:
        t.append("  (hidden in merged view)", style="yellow")
    return t


class DetailPane(VerticalScroll):
    """Static text plus the selectable "shared with" list."""

    class JumpRequest(Message):
        def __init__(self, share: Share) -> None:
            super().__init__()
            self.share = share

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.details: Details | None = None
        self.shares: list[Share] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("Select an entry", style="dim"), id="detail-body")
        yield Static(Text(""), id="detail-shares-title")
        yield OptionList(id="detail-shares")
        yield Static(Text(""), id="detail-tail")

    def show(self, d: Details | None, parts: tuple[Text, Text],
             share_note: str | None = None) -> None:
        self.details = d
        self.query_one("#detail-body", Static).update(parts[0])
        self.query_one("#detail-tail", Static).update(parts[1])
        title = self.query_one("#detail-shares-title", Static)
        ol = self.query_one("#detail-shares", OptionList)
        ol.clear_options()
        self.shares = list(d.shares) if d is not None else []
        if d is None or d.kind != "reg" or d.payload is None:
            title.update(Text(""))
            ol.display = False
            return
        if share_note is not None:
            title.update(Text(share_note, style="dim"))
            ol.display = False
            return
        if not self.shares:
            title.update(Text("Shared with: no other layer or image reads this object",
                              style="bold"))
            ol.display = False
            return
        title.update(Text(f"Shared with ({len(self.shares)}) — Enter jumps there", style="bold"))
        ol.add_options([Option(share_label(s), id=str(i)) for i, s in enumerate(self.shares)])
        ol.display = True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        i = int(event.option.id or 0)
        if 0 <= i < len(self.shares):
            self.post_message(self.JumpRequest(self.shares[i]))
