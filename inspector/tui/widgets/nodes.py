"""Plain values the browser shows: directory entries, inode details, places sharing an object.

No Textual and no I/O here; the sources (:mod:`.source`) build these, the widgets render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inspector.analysis.merged import WH_META, WH_OPAQUE, WH_PREFIX


def join(parent: bytes, name: bytes) -> bytes:
    return b"/" + name if parent == b"/" else parent + b"/" + name


def parent_of(path: bytes) -> bytes:
    if path == b"/":
        return b"/"
    head = path.rsplit(b"/", 1)[0]
    return head or b"/"


@dataclass(frozen=True, slots=True)
class Node:
    """One directory entry as the browser shows it (a row of the file list, a tree node)."""

    name: bytes
    path: bytes
    kind: str                    # reg dir lnk chr blk fifo sock, or "error"
    size: int = 0
    mtime: int = 0
    nlink: int = 1
    nid: int | None = None
    layer: str | None = None     # the layer the entry comes from
    payload: str | None = None
    whiteout: bool = False       # overlay whiteout (chr 0/0): deletes the name in lower layers
    opaque: bool = False         # directory marked opaque
    marker: str | None = None    # literal ".wh." file in a layer's own tree: what it does
    error: str | None = None     # one-line problem (unreadable layer, corrupt blob...)

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


@dataclass(frozen=True, slots=True)
class Share:
    """Another place that reads the same object (from the analysis reference index)."""

    image: str | None            # image label (None: a layer no image uses)
    layer: str
    path: bytes
    visible: bool | None = None  # shows in that image's merged view (None: not computed)


@dataclass(slots=True)
class Details:
    """Everything the detail pane shows for one entry; plain values, rendered by the widget."""

    path: bytes
    layer: str | None
    kind: str
    mode: int = 0
    mode_string: str = ""
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    mtime_nsec: int = 0
    nlink: int = 0
    nid: int | None = None
    ino: int | None = None
    layout: str | None = None
    rdev: tuple[int, int] | None = None
    symlink_target: bytes | None = None
    xattrs: list[tuple[bytes, bytes]] = field(default_factory=list)
    machinery_xattrs: list[tuple[bytes, bytes]] = field(default_factory=list)
    payload: str | None = None
    digest: str | None = None
    digest_algorithm: str | None = None
    object_path: Path | None = None
    object_state: str | None = None      # present / missing / not regular / verified / corrupt...
    object_note: str | None = None
    hardlinks: list[bytes] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    marker: str | None = None
    whiteout: bool = False
    opaque: bool = False
    error: str | None = None


def marker_meaning(name: bytes) -> str | None:
    """What a literal ``.wh.`` name does under OCI semantics (shown flagged in layer view)."""
    if name == WH_OPAQUE:
        return "opaque marker: hides lower layers' content of this directory"
    if name.startswith(WH_META):
        return "whiteout metadata (ignored)"
    if name.startswith(WH_PREFIX):
        return f"whiteout: deletes {name[len(WH_PREFIX):].decode('utf-8', 'surrogateescape')!r} below"
    return None


def error_node(path: bytes, layer: str | None, message: str, name: bytes | None = None) -> Node:
    return Node(name if name is not None else b"(unreadable)", path, "error", layer=layer,
                error=" ".join(message.split()))
