"""What the image browser reads: one layer's own tree, or an image's merged (OCI) tree.

No Textual here: these classes are called from thread workers and from tests.  Everything is
lazy and per directory, so opening a million-inode image reads the root directory only:

* :class:`LayerReader` reads one layer's own tree: a composefs blob through the reader
  (directory by directory, inodes parsed only for the directory listed), or a plain overlay
  layer's ``diff/`` with ``lstat`` only (nothing is ever opened or followed).
* :class:`MergedSource` reuses :class:`inspector.analysis.merged.MergedView` (the per-directory
  OCI merge) over :class:`LayerReader` trees instead of the engine's whole-blob walk, so the
  merge of one directory costs one directory listing per contributing layer.

A layer that cannot be read does not raise out of a listing: the affected directory gets one
``Node`` with ``error`` set, which the tree and file list draw as a red problem row.
"""

from __future__ import annotations

import os
import stat as _stat
import threading
from pathlib import Path

from inspector.analysis.merged import MergedView, xattr_opaque
from inspector.analysis.objects import (TreeEntry, file_kind, is_hex, not_a_real_dir, payload_is_suspicious,
                                        unsafe_subdir)
from inspector.composefs.summary import mode_string
from inspector.errors import InspectError
from inspector.stores.fsutil import list_names
from inspector.stores.model import Layer, Store, StoreImage
from inspector.tui.widgets.nodes import (Details, Node, Share, error_node, join,  # noqa: F401
                                         marker_meaning, parent_of)

_S_IFCHR = _stat.S_IFCHR

#: xattrs that are composefs/overlay machinery: hidden unless the user toggles them on (``x``).
MACHINERY_PREFIXES = (b"trusted.overlay.", b"user.overlay.")


class LayerReader:
    """One layer's own tree, read lazily and cached per directory (thread-safe)."""

    def __init__(self, store: Store, layer: Layer) -> None:
        self.store = store
        self.layer = layer
        self.error: str | None = None
        self.img = None
        self.diff: Path | None = None
        self._lock = threading.RLock()
        self._dirs: dict[bytes, dict[bytes, Node]] = {}
        self._dir_nid: dict[bytes, int] = {}
        try:
            if layer.blob is not None:
                from inspector.composefs.image import open_image
                self.img = open_image(layer.blob)
                self._dir_nid[b"/"] = self.img.root.nid
                if not self.img.root.is_dir():
                    raise InspectError("root inode is not a directory", path=layer.blob)
            else:
                self.diff = _plain_diff(store, layer)
                if self.diff is None:
                    self.error = f"layer {layer.id[:12]}: no blob and no diff/ directory"
        except (InspectError, OSError) as e:
            self.error = _one_line(e)
            self.img = None

    @property
    def inodes_hint(self) -> int | None:
        return self.img.sb.inos if self.img is not None else None

    def close(self) -> None:
        if self.img is not None:
            self.img.close()

    # -- listings ------------------------------------------------------------------------
    def entries(self, path: bytes) -> dict[bytes, Node] | None:
        """name -> Node of directory *path* in this layer, None if not a directory here.

        Raises InspectError when the layer (or this directory of it) cannot be read.
        """
        with self._lock:
            if path in self._dirs:
                return self._dirs[path]
            if self.error:
                raise InspectError(self.error)
            if self.img is not None:
                out = self._blob_entries(path)
            else:
                out = self._diff_entries(path)
            if out is not None:
                self._dirs[path] = out
            return out

    def listdir(self, path: bytes) -> list[Node]:
        """Entries of *path* for display; a read failure becomes one error Node."""
        try:
            ents = self.entries(path)
        except InspectError as e:
            return [error_node(path, self.layer.id, str(e))]
        return list(ents.values()) if ents else []

    def node(self, path: bytes) -> Node | None:
        if path == b"/":
            return Node(b"/", b"/", "dir", layer=self.layer.id,
                        nid=self._dir_nid.get(b"/"))
        try:
            ents = self.entries(parent_of(path))
        except InspectError:
            return None
        if not ents:
            return None
        return ents.get(path.rsplit(b"/", 1)[1])

    def tree(self) -> "_ReaderTree":
        return _ReaderTree(self)

    def _resolve_dir(self, path: bytes) -> int | None:
        nid = self._dir_nid.get(path)
        if nid is not None:
            return nid
        if path == b"/":
            return None
        parent = self.entries(parent_of(path))
        if not parent:
            return None
        n = parent.get(path.rsplit(b"/", 1)[1])
        if n is None or n.kind != "dir" or n.nid is None:
            return None
        return n.nid

    def _blob_entries(self, path: bytes) -> dict[bytes, Node] | None:
        img = self.img
        nid = self._resolve_dir(path)
        if nid is None:
            return None
        try:
            dino = img.inode(nid)
            if not dino.is_dir():
                return None
            listing = img.listdir(dino)
            out: dict[bytes, Node] = {}
            lid = self.layer.id
            for name, cnid, ft in listing:
                ino = img.inode(cnid)
                mode = ino.mode
                stub = mode & 0o170000 == _S_IFCHR and ino.u == 0
                if stub and path == b"/" and len(name) == 2 and is_hex(name.decode("latin-1")):
                    continue  # one of the 256 root whiteout stubs: composefs machinery
                cpath = join(path, name)
                whiteout = stub or (ino.xattr_icount > 0 and img.is_whiteout(ino))
                kind = "chr" if whiteout else file_kind(mode)
                payload = None
                opaque = False
                if kind == "dir":
                    self._dir_nid[cpath] = cnid
                    if ino.xattr_icount:
                        opaque = any(k == b"trusted.overlay.opaque" and v == b"y"
                                     for k, v in img.xattrs(ino))
                elif kind == "reg" and ino.xattr_icount:
                    p = img.payload(ino)
                    payload = p.decode("utf-8", "surrogateescape") if p is not None else None
                out[name] = Node(name, cpath, kind, 0 if whiteout else ino.size, ino.mtime,
                                 ino.nlink, cnid, lid, payload, whiteout, opaque,
                                 marker_meaning(name))
            return out
        except InspectError as e:
            raise InspectError(f"{_one_line(e)}") from None

    def _diff_entries(self, path: bytes) -> dict[bytes, Node] | None:
        full = os.fsencode(self.diff) + (path if path != b"/" else b"")
        try:
            if not _stat.S_ISDIR(os.lstat(full).st_mode):
                return None
            # O_NOATIME listing: browsing must not change atimes in the store
            names = [os.fsencode(n) for n in list_names(full)]
        except OSError as e:
            raise InspectError(f"{os.fsdecode(full)}: {e.strerror}") from None
        out: dict[bytes, Node] = {}
        for name in names:
            p = os.path.join(full, name)
            try:
                st = os.lstat(p)
            except OSError as e:
                out[name] = error_node(join(path, name), self.layer.id, e.strerror or str(e), name)
                continue
            kind = file_kind(st.st_mode)
            whiteout = kind == "chr" and st.st_rdev == 0
            opaque = kind == "dir" and xattr_opaque(p)
            out[name] = Node(name, join(path, name), kind, st.st_size, int(st.st_mtime),
                             st.st_nlink, None, self.layer.id, None, whiteout, opaque,
                             marker_meaning(name))
        return out

    # -- details -------------------------------------------------------------------------
    def details(self, path: bytes) -> Details:
        node = self.node(path)
        if node is None:
            return Details(path, self.layer.id, "error", error=self.error or "not found in layer")
        if node.error:
            return Details(path, self.layer.id, "error", error=node.error)
        if self.img is not None:
            return self._blob_details(path, node)
        return self._diff_details(path, node)

    def _blob_details(self, path: bytes, node: Node) -> Details:
        from inspector.composefs.summary import inode_details
        img = self.img
        with self._lock:
            try:
                ino = img.inode(node.nid if node.nid is not None else img.root.nid)
                d = inode_details(img, path, ino, hardlinks=[path])
                raw = [(x["name"], x["value"]) for x in d.raw_xattrs]
            except InspectError as e:
                return Details(path, self.layer.id, "error", error=_one_line(e))
        visible = set(d.xattrs)
        machinery = [(k, v) for k, v in raw if (k, v) not in visible
                     and k.startswith(MACHINERY_PREFIXES)]
        machinery += [(k, v) for k, v in raw if (k, v) not in visible
                      and not k.startswith(MACHINERY_PREFIXES) and (k, v) not in machinery]
        return Details(
            path=path, layer=self.layer.id, kind=d.type, mode=d.mode, mode_string=d.mode_string,
            uid=d.uid, gid=d.gid, size=d.size, mtime=d.mtime, mtime_nsec=d.mtime_nsec,
            nlink=d.nlink, nid=d.nid, ino=d.ino, layout=d.layout, rdev=d.rdev_major_minor,
            symlink_target=d.symlink_target, xattrs=list(d.xattrs), machinery_xattrs=machinery,
            payload=d.payload.decode("utf-8", "surrogateescape") if d.payload is not None else None,
            digest=d.digest, digest_algorithm=d.digest_algorithm, hardlinks=[path],
            marker=node.marker, whiteout=node.whiteout or d.whiteout, opaque=node.opaque)

    def _diff_details(self, path: bytes, node: Node) -> Details:
        full = os.fsencode(self.diff) + (path if path != b"/" else b"")
        try:
            st = os.lstat(full)
        except OSError as e:
            return Details(path, self.layer.id, "error", error=f"{os.fsdecode(full)}: {e.strerror}")
        xattrs: list[tuple[bytes, bytes]] = []
        try:
            for n in os.listxattr(full, follow_symlinks=False):
                try:
                    xattrs.append((os.fsencode(n), os.getxattr(full, n, follow_symlinks=False)))
                except OSError:
                    continue
        except OSError:
            pass
        target = None
        if _stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(full)
            except OSError:
                target = None
        dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) \
            if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode) else None
        return Details(
            path=path, layer=self.layer.id, kind=file_kind(st.st_mode), mode=st.st_mode,
            mode_string=mode_string(st.st_mode), uid=st.st_uid, gid=st.st_gid, size=st.st_size,
            mtime=int(st.st_mtime), mtime_nsec=st.st_mtime_ns % 1_000_000_000,
            nlink=st.st_nlink, ino=st.st_ino, layout="plain overlay layer (diff/)", rdev=dev,
            symlink_target=target,
            xattrs=[(k, v) for k, v in xattrs if not k.startswith(MACHINERY_PREFIXES)],
            machinery_xattrs=[(k, v) for k, v in xattrs if k.startswith(MACHINERY_PREFIXES)],
            marker=node.marker, whiteout=node.whiteout, opaque=node.opaque)


class _ReaderTree:
    """The LayerTree protocol of :mod:`inspector.analysis.merged` over a LayerReader."""

    def __init__(self, reader: LayerReader) -> None:
        self.reader = reader

    def listdir(self, path: bytes) -> dict[bytes, TreeEntry] | None:
        ents = self.reader.entries(path)   # an unreadable layer raises: the merge reports it
        if ents is None:
            return None
        return {n: TreeEntry(e.kind, e.whiteout, e.opaque) for n, e in ents.items()}


class _LazyMergedView(MergedView):
    """MergedView over given per-layer trees (the engine's own __init__ walks whole blobs)."""

    def __init__(self, store: Store, image: StoreImage, trees: list[tuple[str, object]]) -> None:
        self.store = store
        self.image = image
        self.layers = trees
        roots = []
        for i, (_, t) in enumerate(self.layers):
            try:
                if t.listdir(b"/") is not None:
                    roots.append(i)
            except InspectError:
                continue
        self._contrib = {b"/": roots}
        self._cache = {}


def _plain_diff(store: Store, layer: Layer) -> Path | None:
    if layer.object_dir is not None and not layer.composefs:
        return layer.object_dir
    if store.kind == "containers-storage":
        for base in (store.path, store.path / "storage"):
            cand = base / "overlay" / layer.id / "diff"
            if cand.is_dir():
                return cand
    return None


def _one_line(e: BaseException) -> str:
    s = str(e) if isinstance(e, InspectError) else (
        f"{getattr(e, 'filename', '') or ''}: {e.strerror}" if isinstance(e, OSError) and e.strerror
        else str(e))
    return " ".join(s.split())


class BrowseSource:
    """Common face of the two views: ``listdir``, ``node``, ``details``, a title."""

    title: str = ""
    merged: bool = False
    #: stable identity for caches keyed by source (never ``id()``, which Python reuses)
    key: tuple[str, str] = ("", "")

    def listdir(self, path: bytes) -> list[Node]:
        raise NotImplementedError

    def node(self, path: bytes) -> Node | None:
        raise NotImplementedError

    def details(self, path: bytes) -> Details:
        raise NotImplementedError

    def layer_of(self, path: bytes) -> str | None:
        n = self.node(path)
        return n.layer if n is not None else None


class LayerSource(BrowseSource):
    def __init__(self, reader: LayerReader, title: str) -> None:
        self.reader = reader
        self.title = title
        self.key = ("layer", reader.layer.id)

    def listdir(self, path: bytes) -> list[Node]:
        return self.reader.listdir(path)

    def node(self, path: bytes) -> Node | None:
        return self.reader.node(path)

    def details(self, path: bytes) -> Details:
        return self.reader.details(path)


class MergedSource(BrowseSource):
    merged = True

    def __init__(self, store: Store, image: StoreImage, readers: dict[str, LayerReader],
                 title: str) -> None:
        self.store = store
        self.image = image
        self.readers = readers
        self.title = title
        self.key = ("merged", image.id)
        self.problems: list[Node] = []
        trees = []
        for lid in image.layers:
            r = readers.get(lid)
            if r is None:
                continue
            if r.error:
                self.problems.append(error_node(b"/", lid, f"layer {lid[:12]}: {r.error}"))
                continue
            trees.append((lid, r.tree()))
        self._lock = threading.RLock()
        self.view = _LazyMergedView(store, image, trees)

    def listdir(self, path: bytes) -> list[Node]:
        with self._lock:
            try:
                ents = self.view.listdir(path)
            except InspectError as e:
                return [error_node(path, None, str(e))]
            out: list[Node] = list(self.problems) if path == b"/" else []
            if not ents:
                return out
            for name, ent in ents.items():
                n = self.readers[ent.layer].node(join(path, name))
                if n is not None:
                    out.append(n)
            return out

    def node(self, path: bytes) -> Node | None:
        with self._lock:
            try:
                ent = self.view.lookup(path)
            except InspectError:
                return None
            if ent is None:
                return None
            if path == b"/":
                return Node(b"/", b"/", "dir", layer=ent.layer)
            return self.readers[ent.layer].node(path)

    def details(self, path: bytes) -> Details:
        lid = self.layer_of(path)
        if lid is None:
            return Details(path, None, "error", error="not in the merged view")
        return self.readers[lid].details(path)


def object_file(store: Store, layer: Layer | None, payload: str | None,
                image: StoreImage | None = None) -> tuple[Path | None, str, str | None]:
    """Where the object of *payload* lives and its state from ``lstat`` only.

    Returns (path or None, state, note).  containers/storage may serve an object from another
    composefs layer of the image stack (data-only lowers): that is found and noted.
    """
    if payload is None:
        return None, "no object", None
    why = payload_is_suspicious(payload)
    if why:
        return None, "suspicious", f"{why}: never opened"
    if layer is None or layer.object_dir is None:
        return None, "unknown", "no object directory known (give --basedir)"
    dirs = [layer.object_dir]
    if image is not None:
        dirs += [d for d in store.object_search_dirs(image) if d not in dirs]
    for i, d in enumerate(dirs):
        p = d / payload
        # never look through a symlinked object dir or xx/ subdirectory: it leads outside
        why = not_a_real_dir(d)
        if why is not None and why.startswith("cannot list"):
            continue              # no such object directory: the object is not there
        bad = unsafe_subdir(d, payload.rpartition("/")[0]) if why is None and "/" in payload else None
        if why or bad:
            return p, "suspicious", f"{why or bad[2]}: never opened"
        try:
            st = os.lstat(p)
        except OSError:
            continue
        note = None if i == 0 else "not in the layer's own object directory; served from another layer"
        if not _stat.S_ISREG(st.st_mode):
            return p, "suspicious", f"not a regular file ({file_kind(st.st_mode)}): never opened"
        return p, "present", note
    return dirs[0] / payload, "missing", None
