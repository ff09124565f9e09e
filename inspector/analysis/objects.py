"""Object inventory and reference index of a store: the common ground of verify, dedup and refs.

Two independent views are built here, and every analysis compares them:

* the **inventory**: what is physically present in the store's object directories, found
  with ``lstat`` only (a planted symlink is recorded as a symlink, never followed; a FIFO or
  device is never opened);
* the **reference index**: what each layer's composefs blob says it needs (payload, digest,
  size, and the paths that read it), from one walk of the blob through the reader.

Blob walks are cached per blob file identity (device, inode, size, mtime), so verify, dedup,
refs and the merged view of one command share a single walk of each blob.
"""

from __future__ import annotations

import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from inspector.erofs.constants import TYPE_NAMES
from inspector.errors import InspectError
from inspector.stores.fsutil import list_names
from inspector.stores.model import Layer, Store, StoreImage

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_HEX_RE = re.compile("[0-9a-f]+")

#: The object containers/storage writes for empty files; mkcomposefs drops the payload of
#: size-0 files, so no blob ever references it.  Present-but-unreferenced is expected.
EMPTY_SHA256_OBJECT = "e3/b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def file_kind(mode: int) -> str:
    """Short type name as used in JSON and merged views (the reader's table of st_mode types)."""
    return TYPE_NAMES.get(stat.S_IFMT(mode), "unknown")


def is_hex(s: str) -> bool:
    return _HEX_RE.fullmatch(s) is not None


def payload_is_suspicious(payload: str) -> str | None:
    """Why a payload must not be opened (absolute, climbs with ``..``, odd bytes), else None."""
    if not payload:
        return "empty payload"
    if payload.startswith("/"):
        return "absolute payload"
    parts = payload.split("/")
    if any(p == ".." for p in parts):
        return "payload climbs with '..'"
    if any(p in ("", ".") for p in parts):
        return "payload has empty or '.' components"
    if _CONTROL.search(payload):
        return "payload contains control characters"
    return None


@dataclass(frozen=True, slots=True)
class ObjectFile:
    """One directory entry of an object directory, as ``lstat`` saw it."""

    name: str                 # "xx/yyyy..." relative to the object dir
    object_dir: Path
    size: int
    dev: int
    ino: int
    nlink: int
    mode: int
    kind: str                 # file_kind(): "reg" for a normal object

    @property
    def path(self) -> Path:
        return self.object_dir / self.name

    @property
    def identity(self) -> tuple[int, int]:
        return (self.dev, self.ino)


@dataclass(frozen=True, slots=True)
class Object:
    """An object name with every physical copy of it (the inventory's unit of accounting)."""

    name: str
    size: int                                 # of the first copy
    copies: tuple[ObjectFile, ...]            # in object-dir order
    locations: tuple[str, ...]                # ids of the layers whose object dirs hold it
    kind: str                                 # file kind of the first copy

    @property
    def identities(self) -> tuple[tuple[int, int], ...]:
        out: list[tuple[int, int]] = []
        for c in self.copies:
            if c.identity not in out:
                out.append(c.identity)
        return tuple(out)

    @property
    def nlink(self) -> int:
        return max(c.nlink for c in self.copies)


@dataclass(frozen=True, slots=True)
class ScanNote:
    """Something odd found while scanning an object directory (reported by verify)."""

    object_dir: Path
    name: str
    kind: str                 # file kind of the entry, or "error"
    detail: str


@dataclass(frozen=True, slots=True)
class BlobRef:
    """One path of a blob that reads an object."""

    path: bytes
    payload: str
    digest: bytes | None      # metacopy digest (32 or 64 bytes) or None
    size: int                 # the inode's size (what the object must measure)
    mode: int
    nid: int
    hardlink: bool            # a later path of an inode already seen in the walk


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One directory entry of a layer's own tree (input of the merged view)."""

    type: str                 # reg dir lnk chr blk fifo sock
    whiteout: bool = False    # overlay whiteout (chr 0/0), deletes the name in lower layers
    opaque: bool = False      # directory marked trusted.overlay.opaque=y


@dataclass(slots=True)
class BlobIndex:
    """Everything one walk of a blob yields: payload references and the directory tree."""

    blob: Path
    refs: list[BlobRef] = field(default_factory=list)
    by_payload: dict[str, list[BlobRef]] = field(default_factory=dict)
    dirs: dict[bytes, dict[bytes, TreeEntry]] = field(default_factory=dict)
    regular_files: int = 0
    error: str | None = None

    @property
    def digests_present(self) -> int:
        """Distinct payloads with at least one DIGEST."""
        return sum(1 for refs in self.by_payload.values() if any(r.digest for r in refs))


_BLOB_CACHE: dict[tuple, BlobIndex] = {}
_BLOB_CACHE_MAX = 64


def _blob_key(path: Path) -> tuple | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def blob_index(path: Path) -> BlobIndex:
    """Walk a composefs blob once (cached): payload references and the per-directory tree.

    A blob that cannot be read yields a BlobIndex with ``error`` set rather than raising, so
    one damaged layer does not hide the state of every other layer.
    """
    key = _blob_key(path)
    if key is not None and key in _BLOB_CACHE:
        return _BLOB_CACHE[key]
    idx = BlobIndex(blob=path)
    try:
        _walk_blob(path, idx)
    except InspectError as e:
        idx.error = str(e)
    except OSError as e:
        idx.error = f"{path}: {e.strerror}"
    if key is not None:
        if len(_BLOB_CACHE) >= _BLOB_CACHE_MAX:
            _BLOB_CACHE.pop(next(iter(_BLOB_CACHE)))
        _BLOB_CACHE[key] = idx
    return idx


def _walk_blob(path: Path, idx: BlobIndex) -> None:
    from inspector.composefs.image import open_image  # the lead's reader

    img = open_image(path)
    try:
        idx.dirs[b"/"] = {}
        # include_stubs: on-disk chr 0/0 entries are real overlay whiteouts below the root
        # (composefs-rs V2 images keep them unescaped); only the 256 root stubs are skipped.
        for e in img.walk(include_stubs=True):
            ino = e.inode
            if e.path == b"/":
                continue
            parent, _, name = e.path.rpartition(b"/")
            parent = parent or b"/"
            if img.is_hidden_stub(ino):
                if parent == b"/" and len(name) == 2 and is_hex(name.decode("latin-1")):
                    continue
                idx.dirs.setdefault(parent, {})[name] = TreeEntry("chr", True, False)
                continue
            whiteout = img.is_whiteout(ino)
            kind = "chr" if whiteout else file_kind(ino.mode)
            opaque = False
            if kind == "dir":
                opaque = any(k == b"trusted.overlay.opaque" and v == b"y"
                             for k, v in img.xattrs(ino))
                idx.dirs.setdefault(e.path, {})
            idx.dirs.setdefault(parent, {})[name] = TreeEntry(kind, whiteout, opaque)
            if kind != "reg":
                continue
            idx.regular_files += 1
            payload = img.payload(ino)
            if payload is None:
                continue
            payload_s = payload.decode("utf-8", "surrogateescape")
            ref = BlobRef(path=e.path, payload=payload_s, digest=img.digest(ino) or None,
                          size=ino.size, mode=ino.mode, nid=ino.nid,
                          hardlink=e.link_primary is not None)
            idx.refs.append(ref)
            idx.by_payload.setdefault(payload_s, []).append(ref)
    finally:
        img.close()


def clear_cache() -> None:
    _BLOB_CACHE.clear()


# --------------------------------------------------------------------------- inventory


def not_a_real_dir(path: Path) -> str | None:
    """Why *path* must not be listed or entered (a symlink could lead out of the store)."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot list: {e.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return "object directory is a symlink: not followed"
    if not stat.S_ISDIR(st.st_mode):
        return f"object directory is not a directory ({file_kind(st.st_mode)})"
    return None


def scan_object_dir(object_dir: Path, notes: list[ScanNote] | None = None,
                    digest_store: bool = True) -> dict[str, ObjectFile]:
    """All entries ``xx/<rest>`` of one object directory, by ``lstat`` only.

    Entries of the top level that are not two-hex-digit directories are noted (in a digest
    store they are not objects and should not be there); nothing is ever opened or followed.
    """
    out: dict[str, ObjectFile] = {}
    why = not_a_real_dir(object_dir)
    if why:
        if notes is not None:
            notes.append(ScanNote(object_dir, "", "lnk" if "symlink" in why else "error", why))
        return out
    # Listing through O_NOATIME descriptors (list_names): plain scandir would update the
    # atime of every object directory.
    try:
        top = sorted(list_names(object_dir))
    except OSError as e:
        if notes is not None:
            notes.append(ScanNote(object_dir, "", "error", f"cannot list: {e.strerror}"))
        return out
    for dname in top:
        try:
            st = os.lstat(object_dir / dname)
        except OSError as e:
            if notes is not None:
                notes.append(ScanNote(object_dir, dname, "error", e.strerror or str(e)))
            continue
        if not (len(dname) == 2 and is_hex(dname) and stat.S_ISDIR(st.st_mode)):
            if notes is not None and digest_store:
                notes.append(ScanNote(object_dir, dname, file_kind(st.st_mode),
                                      "unexpected entry in object directory"))
            continue
        try:
            entries = sorted(list_names(object_dir / dname))
        except OSError as e:
            if notes is not None:
                notes.append(ScanNote(object_dir, dname, "error", f"cannot list: {e.strerror}"))
            continue
        for fname in entries:
            try:
                fst = os.lstat(object_dir / dname / fname)
            except OSError as e:
                if notes is not None:
                    notes.append(ScanNote(object_dir, f"{dname}/{fname}", "error",
                                          e.strerror or str(e)))
                continue
            name = f"{dname}/{fname}"
            out[name] = ObjectFile(name=name, object_dir=object_dir, size=fst.st_size,
                                   dev=fst.st_dev, ino=fst.st_ino, nlink=fst.st_nlink,
                                   mode=fst.st_mode, kind=file_kind(fst.st_mode))
    return out


def layer_owners(store: Store) -> dict[Path, list[str]]:
    """object dir -> ids of the layers that own it (composefs-rs: all images share one)."""
    owners: dict[Path, list[str]] = {}
    for lid, layer in store.layers.items():
        if layer.object_dir is not None and (layer.composefs or store.kind != "containers-storage"):
            owners.setdefault(layer.object_dir, []).append(lid)
    for d in store.object_dirs:
        owners.setdefault(d, [])
    return owners


@dataclass(slots=True)
class StoreIndex:
    """Inventory plus reference index of one store, built once per command."""

    store: Store
    #: object dir -> name -> ObjectFile (digest stores; ostree: only referenced objects)
    files: dict[Path, dict[str, ObjectFile]] = field(default_factory=dict)
    owners: dict[Path, list[str]] = field(default_factory=dict)
    notes: list[ScanNote] = field(default_factory=list)
    blobs: dict[str, BlobIndex] = field(default_factory=dict)      # layer id -> index

    # ---- inventory helpers
    def layer_files(self, layer_id: str) -> dict[str, ObjectFile]:
        layer = self.store.layers.get(layer_id)
        if layer is None or layer.object_dir is None:
            return {}
        return self.files.get(layer.object_dir, {})

    def dir_layers(self, object_dir: Path) -> list[str]:
        return self.owners.get(object_dir, [])

    def all_names(self) -> set[str]:
        out: set[str] = set()
        for files in self.files.values():
            out.update(files)
        return out

    def copies(self, name: str) -> list[ObjectFile]:
        """Every present file with this name, in object-dir order."""
        return [files[name] for files in self.files.values() if name in files]

    def objects(self) -> dict[str, Object]:
        """name -> Object, names sorted; the layers holding each name as ``locations``."""
        copies: dict[str, list[ObjectFile]] = {}
        for files in self.files.values():
            for name, f in files.items():
                copies.setdefault(name, []).append(f)
        out: dict[str, Object] = {}
        for name in sorted(copies):
            cs = copies[name]
            locs: list[str] = []
            for c in cs:
                for lid in self.owners.get(c.object_dir, []):
                    if lid not in locs:
                        locs.append(lid)
            out[name] = Object(name, cs[0].size, tuple(cs), tuple(locs), cs[0].kind)
        return out

    # ---- reference helpers
    def composefs_layers(self) -> list[Layer]:
        return [la for la in self.store.layers.values() if la.composefs and la.blob is not None]

    def blob(self, layer_id: str) -> BlobIndex | None:
        return self.blobs.get(layer_id)

    def payload_refs(self, name: str) -> list[tuple[str, BlobRef]]:
        """(layer id, ref) for every blob path that reads *name*."""
        out = []
        for lid, b in self.blobs.items():
            for r in b.by_payload.get(name, ()):
                out.append((lid, r))
        return out

    def referenced_names(self) -> set[str]:
        out: set[str] = set()
        for b in self.blobs.values():
            out.update(b.by_payload)
        return out

    def images_with_layer(self, layer_id: str) -> list[StoreImage]:
        return self.store.images_using(layer_id)


def object_store_is_digest(store: Store) -> bool:
    """Object dirs whose every entry should be a regular ``xx/<hex>`` object file."""
    return store.kind != "ostree"


def build_index(store: Store) -> StoreIndex:
    """Scan object dirs (lstat only) and walk every composefs blob once."""
    idx = StoreIndex(store=store, owners=layer_owners(store))
    for lid, layer in store.layers.items():
        if layer.composefs and layer.blob is not None:
            idx.blobs[lid] = blob_index(layer.blob)
    if object_store_is_digest(store):
        for d in idx.owners:
            idx.files[d] = scan_object_dir(d, idx.notes)
    else:
        # ostree: the repo holds every kind of object (.commit, .dirtree, symlink .file...);
        # only what the images reference matters, looked up one by one.
        for d in idx.owners:
            files: dict[str, ObjectFile] = {}
            idx.files[d] = files
            why = not_a_real_dir(d)
            if why:
                idx.notes.append(ScanNote(d, "", "lnk" if "symlink" in why else "error", why))
                continue
            bad_subdirs: set[str] = set()
            for b in idx.blobs.values():
                for payload in b.by_payload:
                    if payload in files or payload_is_suspicious(payload):
                        continue
                    # every directory on the way must be real: an ``xx`` symlink leads out
                    sub = payload.rpartition("/")[0]
                    if sub and (sub in bad_subdirs or _symlinked_subdir(d, sub, idx.notes)):
                        bad_subdirs.add(sub)
                        continue
                    try:
                        st = os.lstat(d / payload)
                    except OSError:
                        continue
                    files[payload] = ObjectFile(payload, d, st.st_size, st.st_dev, st.st_ino,
                                                st.st_nlink, st.st_mode, file_kind(st.st_mode))
    return idx


def unsafe_subdir(d: Path, sub: str) -> tuple[Path, str, str] | None:
    """``(component, kind, reason)`` when a component of ``d/sub`` is a symlink or not a
    directory (an ``xx`` symlink would lead a lookup out of the store), else None."""
    cur = d
    for part in sub.split("/"):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except OSError:
            return None           # absent: the object is simply missing
        if not stat.S_ISDIR(st.st_mode):
            kind = file_kind(st.st_mode)
            return cur, kind, ("symlinked directory: not followed" if kind == "lnk" else "not a directory")
    return None


def _symlinked_subdir(d: Path, sub: str, notes: list[ScanNote]) -> bool:
    """True (and a note) when a component of ``d/sub`` is a symlink or not a directory."""
    bad = unsafe_subdir(d, sub)
    if bad is None:
        return False
    cur, kind, why = bad
    notes.append(ScanNote(d, str(cur.relative_to(d)), kind, why))
    return True


def group_by_identity(files: list[ObjectFile]) -> dict[tuple[int, int], list[ObjectFile]]:
    out: dict[tuple[int, int], list[ObjectFile]] = defaultdict(list)
    for f in files:
        out[f.identity].append(f)
    return out
