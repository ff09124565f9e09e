"""The merged view of an image's layer stack under OCI image-layer semantics.

What an image *means*, applied bottom layer first: a higher layer wins a path; ``.wh.<name>``
(a literal file, as containers/storage blobs keep them) and an overlay whiteout (chr 0/0)
delete ``<name>`` and its subtree from the lower layers; ``.wh..wh..opq`` or
``trusted.overlay.opaque=y`` on a directory hide everything the lower layers have below it; a
non-directory replacing a directory removes the lower subtree.  Marker files are not shown.

The computation is done top-down and one directory at a time (:meth:`MergedView.listdir`),
so the TUI's image browser can expand a directory without merging the whole tree; the
full-tree :func:`merged_view` is built on it.  For each merged directory we remember which
layers still contribute to it (top first); a child directory inherits that list, cut at the
first layer that whites it out, replaces it with a non-directory, or makes it opaque.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from inspector.analysis.objects import TreeEntry, blob_index, file_kind
from inspector.errors import StoreError
from inspector.stores.fsutil import list_names
from inspector.stores.model import Layer, Store, StoreImage

WH_PREFIX = b".wh."
WH_OPAQUE = b".wh..wh..opq"
WH_META = b".wh..wh."


class LayerTree(Protocol):
    def listdir(self, path: bytes) -> dict[bytes, TreeEntry] | None:
        """Entries of directory *path* in this layer alone, or None if it is not a directory."""


class BlobTree:
    """A composefs layer's own tree, from the (cached) blob walk."""

    def __init__(self, blob: Path) -> None:
        idx = blob_index(blob)
        if idx.error:
            raise StoreError(idx.error, path=blob)
        self._dirs = idx.dirs

    def listdir(self, path: bytes) -> dict[bytes, TreeEntry] | None:
        return self._dirs.get(path)


class DirTree:
    """A plain overlay layer: its ``diff/`` directory, read with lstat only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def listdir(self, path: bytes) -> dict[bytes, TreeEntry] | None:
        full = os.fsencode(self.root) + (path if path != b"/" else b"")
        try:
            if not stat.S_ISDIR(os.lstat(full).st_mode):
                return None
            # O_NOATIME listing: browsing must not touch atimes (names come back as str)
            names = [os.fsencode(n) for n in list_names(full)]
        except OSError:
            return None
        out: dict[bytes, TreeEntry] = {}
        for name in names:
            p = os.path.join(full, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            kind = file_kind(st.st_mode)
            whiteout = kind == "chr" and st.st_rdev == 0
            opaque = False
            if kind == "dir":
                opaque = xattr_opaque(p)
            out[name] = TreeEntry(kind, whiteout, opaque)
        return out


def xattr_opaque(path: str | bytes) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def layer_tree(store: Store, layer: Layer) -> LayerTree | None:
    """The tree a layer contributes: its blob when composefs, else its diff/ directory."""
    if layer.composefs and layer.blob is not None:
        return BlobTree(layer.blob)
    if layer.blob is not None:
        return BlobTree(layer.blob)
    diff = layer.object_dir
    if diff is None and store.kind == "containers-storage":
        for base in (store.path, store.path / "storage"):
            cand = base / "overlay" / layer.id / "diff"
            if cand.is_dir():
                diff = cand
                break
    if diff is None:
        return None
    return DirTree(diff)


@dataclass(frozen=True, slots=True)
class MergedEntry:
    name: bytes
    type: str
    layer: str


class MergedView:
    """Lazy merged tree of one image: ``listdir(path)`` merges one directory across layers."""

    def __init__(self, store: Store, image: StoreImage) -> None:
        self.store = store
        self.image = image
        self.layers: list[tuple[str, LayerTree]] = []
        #: Layers left out because their tree could not be read (one line each).
        self.problems: list[str] = []
        for layer in store.image_layers(image):
            try:
                tree = layer_tree(store, layer)
            except StoreError as e:
                self.problems.append(f"layer {layer.id}: {e}")
                continue
            if tree is not None:
                self.layers.append((layer.id, tree))
        roots = [i for i, (_, t) in enumerate(self.layers) if t.listdir(b"/") is not None]
        self._contrib: dict[bytes, list[int]] = {b"/": roots}
        self._cache: dict[bytes, dict[bytes, MergedEntry]] = {}

    def root_layer(self) -> str | None:
        roots = self._contrib[b"/"]
        return self.layers[roots[0]][0] if roots else None

    def listdir(self, path: bytes = b"/") -> dict[bytes, MergedEntry] | None:
        """Merged entries of directory *path* (None if it is not a visible directory)."""
        if path in self._cache:
            return self._cache[path]
        if path not in self._contrib:
            if self.lookup(path) is None or path not in self._contrib:
                return None
        result: dict[bytes, MergedEntry] = {}
        closed: set[bytes] = set()           # names lower layers may no longer provide
        child_contrib: dict[bytes, list[int]] = {}
        for li in self._contrib[path]:
            lid, tree = self.layers[li]
            listing = tree.listdir(path)
            if listing is None:
                continue
            whiteouts: list[bytes] = []
            opaque_here = False
            for name, ent in listing.items():
                if name == WH_OPAQUE:
                    opaque_here = True
                    continue
                if name.startswith(WH_META):
                    continue
                if name.startswith(WH_PREFIX):
                    whiteouts.append(name[len(WH_PREFIX):])
                    continue
                if ent.whiteout:
                    whiteouts.append(name)
                    continue
                if name in closed:
                    continue
                if name not in result:
                    result[name] = MergedEntry(name, ent.type, lid)
                    if ent.type == "dir":
                        child_contrib[name] = [li]
                        if ent.opaque:
                            closed.add(name)
                    else:
                        closed.add(name)
                elif result[name].type == "dir" and ent.type == "dir":
                    child_contrib[name].append(li)
                    if ent.opaque:
                        closed.add(name)
                else:
                    closed.add(name)  # a non-directory below a directory ends the merge
            closed.update(whiteouts)
            if opaque_here:
                break
        for name, contrib in child_contrib.items():
            self._contrib[_join(path, name)] = contrib
        self._cache[path] = result
        return result

    def lookup(self, path: bytes) -> MergedEntry | None:
        """The merged entry at *path* (``/`` gives the root), or None when not visible."""
        if path == b"/":
            rl = self.root_layer()
            return MergedEntry(b"/", "dir", rl) if rl is not None else None
        parts = [p for p in path.split(b"/") if p]
        cur = b"/"
        ent: MergedEntry | None = None
        for i, part in enumerate(parts):
            listing = self.listdir(cur)
            if listing is None or part not in listing:
                return None
            ent = listing[part]
            cur = _join(cur, part)
            if i < len(parts) - 1 and ent.type != "dir":
                return None
        return ent

    def walk(self) -> Iterator[tuple[bytes, str, str]]:
        """(path, type, layer) for every visible entry, depth first (not sorted)."""
        rl = self.root_layer()
        if rl is None:
            return
        yield (b"/", "dir", rl)
        stack = [b"/"]
        while stack:
            d = stack.pop()
            for name, ent in (self.listdir(d) or {}).items():
                p = _join(d, name)
                yield (p, ent.type, ent.layer)
                if ent.type == "dir":
                    stack.append(p)


def _join(parent: bytes, name: bytes) -> bytes:
    return (parent.rstrip(b"/") + b"/" + name) if parent != b"/" else b"/" + name


def merged_view(store: Store, image: StoreImage) -> list[tuple[bytes, str, str]]:
    """The whole merged tree of *image*: sorted (bytewise) list of (path, type, layer id)."""
    return sorted(MergedView(store, image).walk())
