"""ostree sysroots and repositories with composefs deployments (docs/stores.md §4).

A sysroot's ``ostree/`` directory holds ``repo/`` and ``deploy/<stateroot>/deploy/<commit>.<serial>/``;
each deployment that has a ``.ostree.cfs`` is one image with one layer whose blob is that file
and whose object directory is ``repo/objects`` (payloads are ``xx/<62 hex>.file``).  A bare
repository without a sysroot around it has refs and commits but no composefs images.

Objects belong to commits (commit -> dirtree/dirmeta -> file), and symlink or empty ``.file``
objects are never payloads, so there is no orphan scan here: ``orphans_apply=False``.  The
object name is ostree's checksum over a header plus content, so objects are checked through the
image's fs-verity DIGEST only (``object_naming="ostree"``).
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

from inspector.errors import StoreError
from inspector.stores import fsutil
from inspector.stores.model import Layer, Ref, Store, StoreImage

CFS_NAME = ".ostree.cfs"
_DEPLOY = re.compile(r"^([0-9a-f]{64})\.([0-9]+)$")
_COMMIT = re.compile(r"^[0-9a-f]{64}$")


def _ini(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    data = fsutil.read_bytes(path, limit=1 << 20)
    try:
        cp.read_string(data.decode("utf-8", "replace"), source=str(path))
    except configparser.Error as e:
        raise StoreError(f"unreadable key file: {str(e).splitlines()[0]}", path=path) from None
    return cp


class _GVariantError(ValueError):
    pass


def _osz(n: int) -> int:
    """GVariant framing-offset size for a container of n bytes."""
    return 1 if n <= 0xFF else 2 if n <= 0xFFFF else 4 if n <= 0xFFFFFFFF else 8


def _off(data: bytes, at: int, osz: int) -> int:
    v = int.from_bytes(data[at:at + osz], "little")
    if v > len(data):
        raise _GVariantError(f"framing offset {v} beyond {len(data)} bytes")
    return v


def _align(n: int, a: int) -> int:
    return (n + a - 1) & ~(a - 1)


def _asv(data: bytes) -> dict[str, tuple[str, bytes]]:
    """Decode a serialized ``a{sv}``: key -> (value type string, serialized value)."""
    out: dict[str, tuple[str, bytes]] = {}
    if not data:
        return out
    osz = _osz(len(data))
    table = _off(data, len(data) - osz, osz)
    if (len(data) - table) % osz:
        raise _GVariantError("bad a{sv} offset table")
    start = 0
    for i in range(table, len(data), osz):
        end = _off(data, i, osz)
        entry = data[_align(start, 8):end]
        start = end
        if len(entry) < 1 + _osz(len(entry)):
            raise _GVariantError("truncated dict entry")
        eosz = _osz(len(entry))
        key_end = _off(entry, len(entry) - eosz, eosz)
        key = entry[:key_end].rstrip(b"\0").decode("utf-8", "replace")
        var = entry[_align(key_end, 8):len(entry) - eosz]
        zero = var.rfind(b"\0")
        if zero < 0:
            raise _GVariantError("variant without type string")
        out[key] = (var[zero + 1:].decode("ascii", "replace"), var[:zero])
    return out


def read_commit(path: Path) -> dict[str, object]:
    """The facts of an ostree commit object worth showing: subject, timestamp, parent, and the
    composefs digest of its metadata (``ostree.composefs.digest.v0``, 32-byte fs-verity sha256).

    The commit is the GVariant ``(a{sv}aya(say)sstayay)``; only framing offsets are needed.
    Raises StoreError when the object is missing or malformed.
    """
    data = fsutil.read_bytes(path, limit=64 << 20)
    try:
        osz = _osz(len(data))
        if len(data) < 6 * osz + 8:
            raise _GVariantError("too short for a commit")
        ends = [_off(data, len(data) - (i + 1) * osz, osz) for i in range(6)]
        meta = _asv(data[:ends[0]])
        parent = data[ends[0]:ends[1]]
        subject = data[ends[2]:ends[3]].rstrip(b"\0").decode("utf-8", "replace")
        ts_at = _align(ends[4], 8)
        timestamp = int.from_bytes(data[ts_at:ts_at + 8], "big")   # ostree stores it big-endian
    except _GVariantError as e:
        raise StoreError(f"malformed commit object: {e}", path=path) from None
    out: dict[str, object] = {"subject": subject, "timestamp": timestamp,
                              "parent": parent.hex() if len(parent) == 32 else None}
    typ, val = meta.get("ostree.composefs.digest.v0", ("", b""))
    out["composefs_digest_v0"] = val.hex() if typ == "ay" and len(val) == 32 else None
    return out


def _read_refs(repo: Path, store: Store) -> None:
    """refs/heads/** (local) and refs/remotes/<remote>/** (as ``remote:ref``)."""
    for sub, prefix_depth in (("heads", 0), ("remotes", 1)):
        top = repo / "refs" / sub
        if not fsutil.is_dir(top):
            continue
        for dirpath, dirnames, filenames in fsutil.walk(top):     # O_NOATIME listing
            dirnames.sort()
            for fn in sorted(filenames):
                path = Path(dirpath) / fn
                rel = path.relative_to(top).as_posix()
                if prefix_depth:
                    remote, _, rest = rel.partition("/")
                    rel = f"{remote}:{rest}"
                try:
                    commit = fsutil.read_bytes(path, limit=4096).decode("ascii", "replace").strip()
                except StoreError as e:
                    store.problems.append(str(e))
                    continue
                if not _COMMIT.match(commit):
                    store.problems.append(f"{path}: ref does not hold a commit checksum")
                    continue
                store.refs.append(Ref(name=rel, target=commit, kind="commit", path=path))


def open_ostree(root: Path) -> Store:
    """*root*: the ``ostree`` directory of a sysroot (``repo/`` + ``deploy/``) or a repository."""
    root = Path(os.path.abspath(root))
    if fsutil.is_file(root / "repo" / "config"):
        repo, deploy = root / "repo", root / "deploy"
    elif fsutil.is_file(root / "config"):
        repo, deploy = root, None
    else:
        raise StoreError("not an ostree sysroot or repository (no repo/config or config)",
                         path=root)
    store = Store(kind="ostree", path=root, object_naming="ostree", orphans_apply=False)
    objects = repo / "objects"
    store.object_dirs.append(objects)
    cfg = _ini(repo / "config")
    store.details["repo"] = str(repo)
    store.details["repo_mode"] = cfg.get("core", "mode", fallback=None)
    if cfg.has_section("ex-integrity"):
        store.details["ex-integrity"] = dict(cfg.items("ex-integrity"))
    _read_refs(repo, store)
    by_commit: dict[str, list[str]] = {}
    for r in store.refs:
        by_commit.setdefault(r.target, []).append(r.name)

    deployments: list[dict[str, object]] = []
    if deploy is not None:
        for stateroot in fsutil.listdir(deploy):
            ddir = deploy / stateroot / "deploy"
            for entry in fsutil.listdir(ddir):
                m = _DEPLOY.match(entry)
                if not m or not fsutil.is_dir(ddir / entry):
                    continue
                commit, serial = m.group(1), int(m.group(2))
                _add_deployment(store, objects, ddir / entry, stateroot, commit, serial,
                                by_commit, deployments)
    store.details["deployments"] = deployments
    if deploy is None:
        store.notes.append("bare ostree repository: no deployments, so no composefs images")
    elif not store.images:
        store.notes.append("no deployment has a .ostree.cfs composefs image")
    # names in these lines come from the store: escape control bytes for the terminal
    store.problems[:] = [fsutil.safe_text(x) for x in store.problems]
    store.notes[:] = [fsutil.safe_text(x) for x in store.notes]
    return store


def _add_deployment(store: Store, objects: Path, dpath: Path, stateroot: str, commit: str,
                    serial: int, by_commit: dict[str, list[str]],
                    deployments: list[dict[str, object]]) -> None:
    origin = dpath.parent / f"{dpath.name}.origin"
    refspec = None
    if fsutil.is_file(origin):
        try:
            refspec = _ini(origin).get("origin", "refspec", fallback=None)
        except StoreError as e:
            store.problems.append(str(e))
    cfs = dpath / CFS_NAME
    has_cfs = fsutil.is_file(cfs)
    record: dict[str, object] = {"stateroot": stateroot, "commit": commit, "serial": serial,
                                 "path": str(dpath), "origin_refspec": refspec,
                                 "composefs_image": str(cfs) if has_cfs else None}
    deployments.append(record)
    if not has_cfs:
        if fsutil.lexists(cfs):
            store.problems.append(f"{cfs}: not a regular file; not followed")
        else:
            store.notes.append(f"deployment {stateroot}/{dpath.name} has no {CFS_NAME}")
        return
    problems = []
    commit_info: dict[str, object] = {}
    commit_obj = objects / commit[:2] / f"{commit[2:]}.commit"
    if not fsutil.lexists(commit_obj):
        problems.append(f"commit object {commit[:2]}/{commit[2:]}.commit is missing from the repo")
    else:
        try:
            commit_info = read_commit(commit_obj)
            record["subject"] = commit_info["subject"]
        except StoreError as e:
            problems.append(str(e))
    # the digest the commit promises for this image (signed boots compare it with .ostree.cfs)
    record["composefs_digest_v0"] = commit_info.get("composefs_digest_v0")
    lid = f"{stateroot}/{dpath.name}"
    names = [f"{stateroot}:{commit}"] + sorted(by_commit.get(commit, []))
    if refspec and refspec not in names:
        names.append(refspec)
    extra = (("stateroot", stateroot), ("commit", commit), ("serial", str(serial)),
             ("deployment", str(dpath)), ("origin-refspec", refspec or ""),
             ("subject", str(commit_info.get("subject", ""))),
             ("composefs-digest-v0", str(commit_info.get("composefs_digest_v0") or "")))
    store.layers[lid] = Layer(id=lid, parent=None, composefs=True, blob=cfs, object_dir=objects,
                              problems=tuple(fsutil.safe_text(x) for x in problems),
                              extra=extra)
    store.images.append(StoreImage(id=lid, names=tuple(names), layers=(lid,), digest=commit))
