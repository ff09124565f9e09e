"""Decide what a PATH is and open it as a :class:`~inspector.stores.model.Store`.

The discovery plan is docs/stores.md §7.  Probing only ``lstat``s and reads small metadata
files: it never writes, never takes a lock, and never follows a symlink inside the store (a
``storage`` or ``composefs`` entry that is a symlink is not probed through).  The PATH the user
typed is taken as given, symlinks included: that choice is theirs.

Order of preference at one directory (mixed hosts are normal; everything else found is listed in
``store.notes`` as "also found: ..."):

1. containers/storage graphroot: PATH, then ``PATH/storage`` (so ``/var/lib/containers`` works);
2. composefs-rs repository: PATH, then ``PATH/composefs`` (bootc's ``/sysroot``);
3. ostree: a sysroot (``PATH/ostree/repo``), the ``ostree`` dir itself (``PATH/repo`` +
   ``PATH/deploy``) or a bare repository (``PATH/config`` + ``objects/``);
4. bootc's graphroot of logically bound images (``<os store>/bootc/storage``), as a secondary find;
5. the same tests one level down (PATH's real subdirectories), when nothing matched at PATH.

A regular file is a single image (composefs magic at 0, or plain EROFS magic at 1024) whose
objects are in ``--basedir``.  With no PATH the per-user defaults are searched
(:func:`default_candidates`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inspector.errors import StoreError
from inspector.stores import fsutil
from inspector.stores.model import Store

#: Root-owned default locations; module attributes so tests can point them elsewhere.
SYSTEM_GRAPHROOT = Path("/var/lib/containers/storage")
SYSTEM_COMPOSEFS = Path("/sysroot/composefs")

COMPOSEFS_MAGIC = bytes.fromhex("9a6278d0")
EROFS_MAGIC = bytes.fromhex("e2e1f5e0")


# --------------------------------------------------------------------------- probes

def is_composefs_repo(path: Path) -> bool:
    """``objects/`` plus ``images/`` or ``streams/`` (meta.json is absent in Gen A/B repos)."""
    return fsutil.is_dir(path / "objects") and (
        fsutil.is_dir(path / "images") or fsutil.is_dir(path / "streams")
        or fsutil.lexists(path / "meta.json"))


def is_ostree_repo(path: Path) -> bool:
    return fsutil.is_file(path / "config") and fsutil.is_dir(path / "objects")


def probe_dir(path: Path) -> list[tuple[str, Path]]:
    """Stores found at *path* itself (not its subdirectories), best first: [(kind, root)].

    For ostree the root is the ``ostree`` directory holding ``repo/`` and ``deploy/`` (or the
    repository itself when there is no sysroot around it).
    """
    from inspector.stores.containers import is_graphroot

    found: list[tuple[str, Path]] = []
    for cand in (path, path / "storage"):
        if (cand == path or fsutil.is_dir(cand)) and is_graphroot(cand):
            found.append(("containers-storage", cand))
            break
    for cand in (path, path / "composefs"):
        if (cand == path or fsutil.is_dir(cand)) and is_composefs_repo(cand):
            found.append(("composefs-rs", cand))
            break
    if fsutil.is_dir(path / "ostree") and is_ostree_repo(path / "ostree" / "repo"):
        found.append(("ostree", path / "ostree"))
    elif is_ostree_repo(path / "repo") and fsutil.is_dir(path / "deploy"):
        found.append(("ostree", path))
    elif is_ostree_repo(path):
        found.append(("ostree", path))
    # bootc keeps logically bound images in a graphroot beside its OS store (stores.md §5)
    for kind, root in list(found):
        if kind in ("composefs-rs", "ostree"):
            bound = root / "bootc" / "storage"
            if fsutil.is_dir(root / "bootc") and fsutil.is_dir(bound) and is_graphroot(bound):
                found.append(("containers-storage", bound))
    return found


def probe(path: Path) -> list[tuple[str, Path]]:
    """Stores at *path*, else in its real subdirectories (depth 2 of the plan counts storage/)."""
    found = probe_dir(path)
    if found:
        return found
    for name in fsutil.listdir(path, follow=True):
        child = path / name
        if fsutil.is_dir(child):
            found.extend(probe_dir(child))
    return found


def image_magic(path: Path) -> str | None:
    """"composefs", "erofs" (plain EROFS) or None for a regular file's first bytes.

    The user named this file, so a final symlink is followed only through the PATH they gave
    (``open_store`` passes the path as typed; O_NOFOLLOW applies to the last component).
    """
    try:
        fd = fsutil.open_ro(path)
    except OSError as e:
        raise StoreError(f"cannot open: {e.strerror}", path=path) from None
    try:
        head = os.pread(fd, 1028, 0)
    except OSError as e:
        raise StoreError(f"cannot read: {e.strerror}", path=path) from None
    finally:
        os.close(fd)
    if head[:4] == COMPOSEFS_MAGIC:
        return "composefs"
    if head[1024:1028] == EROFS_MAGIC:
        return "erofs"
    return None


# --------------------------------------------------------------------------- defaults

def default_candidates() -> list[tuple[str, Path]]:
    """Where a store is looked for when no PATH is given, in search order.

    containers/storage: root uses ``/var/lib/containers/storage``; other users
    ``$XDG_DATA_HOME/containers/storage`` (an absolute XDG_DATA_HOME only, as the spec says),
    else ``~/.local/share/containers/storage``.  composefs-rs: cfsctl's default for this user
    first (``/sysroot/composefs`` for root, ``~/.var/lib/composefs`` otherwise), then the other.
    """
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    user_cfs = home / ".var" / "lib" / "composefs"
    if os.geteuid() == 0:
        return [("containers-storage", SYSTEM_GRAPHROOT),
                ("composefs-rs", SYSTEM_COMPOSEFS), ("composefs-rs", user_cfs)]
    xdg = os.environ.get("XDG_DATA_HOME", "")
    data = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return [("containers-storage", data / "containers" / "storage"),
            ("composefs-rs", user_cfs), ("composefs-rs", SYSTEM_COMPOSEFS)]


def _default_store() -> tuple[str, Path, list[str]]:
    from inspector.stores.containers import is_graphroot

    cands = default_candidates()
    for kind, cand in cands:
        ok = is_graphroot(cand) if kind == "containers-storage" else is_composefs_repo(cand)
        if ok:
            others = [f"{k} at {p}" for k, p in cands if (k, p) != (kind, cand) and (
                is_graphroot(p) if k == "containers-storage" else is_composefs_repo(p))]
            return kind, cand, others
    looked = "; ".join(f"{k} at {p}" for k, p in cands)
    raise StoreError(f"no store found (looked for {looked}); give a PATH")


# --------------------------------------------------------------------------- open

def open_kind(kind: str, root: Path) -> Store:
    if kind == "containers-storage":
        from inspector.stores.containers import open_graphroot
        return open_graphroot(root)
    if kind == "composefs-rs":
        from inspector.stores.composefs_rs import open_repository
        return open_repository(root)
    if kind == "ostree":
        from inspector.stores.ostree import open_ostree
        return open_ostree(root)
    raise StoreError(f"unknown store kind {kind}", path=root)


def open_store(path: str | Path | None, basedir: str | Path | None = None,
               images: list[Path] | None = None) -> Store:
    """Detect what *path* is and load it.

    * a regular file (or *images* given): a bare image store (``kind="image"``) whose object
      directory is *basedir* (may be None: then payloads cannot be checked);
    * a directory: the first store of :func:`probe`, the others noted;
    * None: the per-user defaults (:func:`default_candidates`); StoreError listing them when
      none exists.

    Raises StoreError (never anything else) when PATH is missing or is not a known store.
    """
    from inspector.stores.bare import open_images

    extra = [Path(os.path.abspath(p)) for p in images or []]
    bd = Path(os.path.abspath(basedir)) if basedir is not None else None
    if path is None:
        if extra:
            return open_images(extra, bd)
        kind, root, others = _default_store()
        store = open_kind(kind, root)
        store.notes.extend(f"also found: {o}" for o in others)
        if bd is not None:
            store.notes.append(f"--basedir {bd} ignored: no image given")
        return store

    p = Path(os.path.abspath(path))
    try:
        st = os.stat(p)
    except OSError as e:
        raise StoreError(f"cannot access: {e.strerror}", path=p) from None
    if stat.S_ISREG(st.st_mode):
        magic = image_magic(p)
        if magic is None:
            raise StoreError("not a composefs image (no composefs or EROFS magic) and not a "
                             "store directory", path=p)
        return open_images([p, *extra], bd)
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError("neither a directory nor a regular file", path=p)
    if extra:
        return open_images(extra, bd if bd is not None else p)

    found = probe(p)
    if not found:
        from inspector.stores.containers import looks_like_graphroot
        for name in ("storage", "composefs", "ostree"):
            if os.path.islink(p / name):
                raise StoreError(f"{name} is a symlink to {fsutil.link_target(p / name)}, not "
                                 "followed: give that directory as PATH", path=p)
        if looks_like_graphroot(p) or (fsutil.is_dir(p / "storage")
                                       and looks_like_graphroot(p / "storage")):
            gr = p if looks_like_graphroot(p) else p / "storage"
            raise StoreError("incomplete containers/storage graphroot: needs "
                             "overlay-layers/layers.json, overlay-images/images.json and "
                             "overlay/", path=gr)
        raise StoreError("no store found here (looked for a containers/storage graphroot at "
                         "PATH and PATH/storage, a composefs-rs repository at PATH and "
                         "PATH/composefs, an ostree sysroot or repository, and the same one "
                         "directory level down)", path=p)
    kind, root = found[0]
    store = open_kind(kind, root)
    store.notes.extend(f"also found: {k} at {r}" for k, r in found[1:])
    if bd is not None:
        store.notes.append(f"--basedir {bd} ignored: the store names its own object directories")
    return store


def open_all(path: str | Path) -> list[Store]:
    """Every store found at *path* (mixed hosts), in :func:`probe` order.

    Unlike :func:`open_store`, a store that fails to load does not hide the others: it is
    returned as an empty Store of its kind carrying the error as its only problem.
    """
    p = Path(os.path.abspath(path))
    out: list[Store] = []
    for kind, root in probe(p):
        try:
            out.append(open_kind(kind, root))
        except StoreError as e:
            broken = Store(kind=kind, path=root, object_naming="unknown")  # type: ignore[arg-type]
            broken.problems.append(str(e))
            out.append(broken)
    return out


# --------------------------------------------------------------------------- summary

def _p(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def store_summary(store: Store) -> dict:
    """A JSON-able description of a discovered store (for ``--json`` and tests).

    Keys: kind, path, object_naming, orphans_apply, object_dirs, details, problems, notes,
    images (id, names, label, digest, created, layers top first, problems), layers (id, parent,
    names, composefs, blob, object_dir, created, diff_digest, diff_size, problems, extra),
    streams (name, object, generation, content_type, content_type_text, stream_size,
    object_refs, stream_refs, named_refs {name: digest hex}, inline_chunks, external_chunks,
    problems), refs (name, kind, target, path), metadata_objects (sorted).
    """
    return {
        "kind": store.kind,
        "path": str(store.path),
        "object_naming": store.object_naming,
        "orphans_apply": store.orphans_apply,
        "object_dirs": [str(d) for d in store.object_dirs],
        "details": store.details,
        "problems": list(store.problems),
        "notes": list(store.notes),
        "images": [{
            "id": im.id, "names": list(im.names), "label": im.label, "digest": im.digest,
            "created": im.created, "layers": list(im.layers), "problems": list(im.problems),
        } for im in store.images],
        "layers": [{
            "id": layer.id, "parent": layer.parent, "names": list(layer.names),
            "composefs": layer.composefs, "blob": _p(layer.blob),
            "object_dir": _p(layer.object_dir), "created": layer.created,
            "diff_digest": layer.diff_digest, "diff_size": layer.diff_size,
            "problems": list(layer.problems), "extra": dict(layer.extra),
        } for layer in store.layers.values()],
        "streams": [{
            "name": s.name, "object": str(s.object), "generation": s.generation,
            "content_type": s.content_type, "content_type_text": s.content_type_text,
            "stream_size": s.stream_size, "object_refs": list(s.object_refs),
            "stream_refs": list(s.stream_refs), "named_refs": dict(s.named_refs),
            "inline_chunks": s.inline_chunks, "external_chunks": s.external_chunks,
            "problems": list(s.problems),
        } for s in store.streams],
        "refs": [{"name": r.name, "kind": r.kind, "target": r.target, "path": _p(r.path)}
                 for r in store.refs],
        "metadata_objects": sorted(store.metadata_objects),
    }
