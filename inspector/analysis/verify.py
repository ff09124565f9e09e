"""``verify``: is every object an image needs present, readable, the right size and content?

Checks, per store kind (see docs/stores.md and issue 3):

* every payload a blob references exists in the layer's object directory (containers/storage:
  the layer's own ``diff/``; found only in another composefs layer of an image stack that
  contains the layer is a *warning*: the data-only lower still serves it);
* the object is a regular file (a symlink or special file is *suspicious* and is never
  followed or opened), readable, and as large as the inode that reads it;
* content: the fs-verity digest equals the metacopy DIGEST where there is one; the name equals
  the content sha256 (containers/storage) or the fs-verity digest (composefs-rs, digest
  stores).  Every present object of a digest-named store is checked by name, referenced or not;
* orphans: containers/storage and bare ``--basedir`` stores report unreferenced objects as
  problems (the empty object ``e3/b0c4…`` excepted); composefs-rs lists them separately as
  GC leftovers, not problems; ostree has no orphans;
* blobs that carry no DIGEST at all are *unverifiable*.

A containers/storage problem is reported once per (layer, object) with every image that
contains the layer; in single-directory stores once per object with every image reading it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from inspector.analysis.hashing import HashJob, HashResult, Progress, hash_all
from inspector.analysis.objects import (EMPTY_SHA256_OBJECT, BlobRef, ObjectFile, StoreIndex,
                                        build_index, is_hex, payload_is_suspicious)
from inspector.composefs.escape import json_path_text
from inspector.stores.fsutil import safe_text
from inspector.stores.model import Store

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding.  ``kind``: missing, corrupt, size-mismatch, unreadable, suspicious, orphan,
    unverifiable, warning-elsewhere, blob-error, store-error."""

    kind: str
    severity: str
    images: tuple[str, ...]
    layer: str | None
    path: str | None          # first image path that reads the object (None if unreferenced)
    object: str | None
    detail: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "images": list(self.images),
                "layer": self.layer, "path": json_path_text(self.path), "object": self.object,
                "detail": self.detail}


@dataclass(slots=True)
class VerifyReport:
    store: Store
    problems: list[Problem] = field(default_factory=list)
    #: Unreferenced objects (all kinds where orphans apply), also when they are not problems.
    orphans: list[dict] = field(default_factory=list)
    per_layer: dict[str, dict] = field(default_factory=dict)
    objects_checked: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    cancelled: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.problems or self.cancelled else 0

    def to_json(self) -> dict:
        return {
            "store": {"kind": self.store.kind, "path": str(self.store.path),
                      "object_naming": self.store.object_naming},
            "exit_code": self.exit_code,
            "problems": [p.to_json() for p in self.problems],
            "orphans": self.orphans,
            "per_layer": self.per_layer,
            "objects_checked": self.objects_checked,
            "files_hashed": self.files_hashed,
            "bytes_hashed": self.bytes_hashed,
            "blobs_without_any_digest": sorted(
                lid for lid, v in self.per_layer.items() if v["digest_coverage"] == "none"),
            "images_with_digestless_blobs": sorted({
                im for v in self.per_layer.values() if v["digest_coverage"] == "none"
                for im in v["images"]}),
            "cancelled": self.cancelled,
        }


@dataclass(slots=True)
class _Unit:
    """What one problem line is about: an object as seen by one layer (or one object dir)."""

    name: str
    object_dir: Path
    layers: list[str] = field(default_factory=list)
    refs: list[BlobRef] = field(default_factory=list)
    file: ObjectFile | None = None
    elsewhere: bool = False


def _p(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


def verify_store(store: Store, jobs: int | None = None, progress: Progress | None = None,
                 cancel: threading.Event | None = None,
                 index: StoreIndex | None = None) -> VerifyReport:
    """Check every object of *store* (read-only); see the module docstring for what is checked."""
    idx = index or build_index(store)
    rep = VerifyReport(store=store)
    per_layer_store = store.kind == "containers-storage"

    def images_of(layers: list[str]) -> tuple[str, ...]:
        out: list[str] = []
        for im in store.images:
            if any(lid in im.layers for lid in layers) and im.label not in out:
                out.append(im.label)
        return tuple(out)

    def add(kind: str, sev: str, layers: list[str], obj: str | None, detail: str,
            path: bytes | None = None, images: tuple[str, ...] | None = None) -> None:
        rep.problems.append(Problem(kind, sev, images_of(layers) if images is None else images,
                                    layers[0] if layers else None,
                                    _p(path) if path is not None else None,
                                    obj, detail))

    for msg in store.problems:
        rep.problems.append(Problem("store-error", ERROR, (), None, None, None, safe_text(msg)))
    for lid, layer in store.layers.items():
        for msg in layer.problems:
            add("store-error", ERROR, [lid], None, safe_text(msg))
    for st in store.streams:
        for msg in st.problems:
            rep.problems.append(Problem("store-error", ERROR, (), None, None, None,
                                        safe_text(f"stream {st.name}: {msg}")))
    for im in store.images:
        for msg in im.problems:
            rep.problems.append(Problem("store-error", ERROR, (im.label,), None, None, None,
                                        safe_text(msg)))

    # ---- units: one per (layer, payload) in containers/storage, per (dir, payload) elsewhere
    units: dict[tuple, _Unit] = {}
    for lid, blob in idx.blobs.items():
        layer = store.layers[lid]
        if blob.error:
            add("blob-error", ERROR, [lid], None, f"cannot read composefs blob: {safe_text(blob.error)}")
            continue
        n_ref = len(blob.by_payload)
        n_dig = blob.digests_present
        cov = "none" if n_ref and not n_dig else ("all" if n_dig == n_ref else "some")
        rep.per_layer[lid] = {
            "images": list(images_of([lid])),
            "referenced_objects": n_ref,
            "referencing_paths": len(blob.refs),
            "with_verity_digest": n_dig,
            "without_digest": n_ref - n_dig,
            "digest_coverage": cov,
        }
        if store.object_naming in ("fsverity-sha256", "fsverity-sha512"):
            # composefs-rs / digest stores: the DIGEST must be the name (a mismatch also shows
            # up as a corrupt object, since the content cannot match both)
            rep.per_layer[lid]["digest_equals_object_name"] = all(
                r.digest is None or r.digest.hex() == name_hex(p, store.object_naming)
                for p, rs in blob.by_payload.items() for r in rs)
        if cov == "none":
            add("unverifiable", WARNING, [lid], None,
                f"the blob carries no fs-verity digest for any of its {n_ref} objects: content "
                "can be checked only through object names, and the kernel cannot enforce verity")
        if layer.object_dir is None:
            if n_ref:
                add("missing", ERROR, [lid], None,
                    f"no object directory known for {n_ref} referenced objects (give --basedir)")
            continue
        for payload, refs in blob.by_payload.items():
            key = (lid, payload) if per_layer_store else (layer.object_dir, payload)
            u = units.setdefault(key, _Unit(payload, layer.object_dir))
            if lid not in u.layers:
                u.layers.append(lid)
            u.refs.extend(refs)

    # ---- resolve each referenced unit to a file
    for u in units.values():
        path0 = u.refs[0].path
        why = payload_is_suspicious(u.name)
        if why:
            add("suspicious", ERROR, u.layers, safe_text(u.name), f"{why}: never opened", path0)
            continue
        f = idx.files.get(u.object_dir, {}).get(u.name)
        if f is None and per_layer_store:
            # The mount appends every composefs layer's diff/ of the image's stack as a
            # data-only lower: per image, the object may still be served by another layer.
            served: dict[str, ObjectFile] = {}
            unresolved: list[str] = []
            for im in store.images_using(u.layers[0]):
                g = None
                for d in store.object_search_dirs(im):
                    if d != u.object_dir:
                        g = idx.files.get(d, {}).get(u.name)
                        if g is not None:
                            break
                if g is not None:
                    served.setdefault(im.label, g)
                elif im.label not in unresolved:
                    unresolved.append(im.label)
            if served:
                f = next(iter(served.values()))
                u.elsewhere = True
                owners = sorted({lid for g in served.values() for lid in idx.dir_layers(g.object_dir)})
                add("warning-elsewhere", WARNING, u.layers, safe_text(u.name),
                    "missing from the layer's own object directory; the mount serves it from "
                    f"layer {', '.join(owners)}", path0, tuple(served))
            if unresolved or not served:
                add("missing", ERROR, u.layers, safe_text(u.name),
                    f"object not found in {u.object_dir} nor in any other layer of the "
                    "image stack", path0, tuple(unresolved) if unresolved else None)
            if not served:
                continue
        elif f is None:
            add("missing", ERROR, u.layers, safe_text(u.name),
                f"object not found in {u.object_dir}", path0)
            continue
        u.file = f

    # ---- unreferenced present objects (name checks) and orphans
    digest_named = store.object_naming in ("sha256-content", "fsverity-sha256", "fsverity-sha512")
    referenced_here = _referenced_by_dir(store, idx)
    for d, files in idx.files.items():
        owners = idx.dir_layers(d)
        for name, f in files.items():
            key = ((owners[0] if owners else d) if per_layer_store else d, name)
            if key not in units:
                # present but not read by this layer's own blob: checked by name only
                units[key] = _Unit(name, d, list(owners) if per_layer_store else [], [], f)
            needed = referenced_here.get(d, set())
            if needed is None or name in needed:
                continue
            if not store.orphans_apply or (name == EMPTY_SHA256_OBJECT and per_layer_store):
                continue
            rep.orphans.append({"object": name, "size": f.size, "object_dir": str(d),
                                "layers": list(owners) if per_layer_store else []})
            if store.kind in ("containers-storage", "image"):
                add("orphan", WARNING, owners if per_layer_store else [], safe_text(name),
                    f"present in {d} but referenced by no image")
    if store.kind == "composefs-rs":
        present = set().union(*idx.files.values()) if idx.files else set()
        payloads = {u.name for u in units.values() if u.refs}
        for name in sorted(store.metadata_objects - present - payloads):
            add("missing", ERROR, [], name, "referenced by repository metadata (images/, streams/ "
                "or a splitstream) but not in objects/")

    # ---- scan notes: odd entries in object directories
    for note in idx.notes:
        add("suspicious" if note.kind != "error" else "unreadable",
            ERROR, idx.dir_layers(note.object_dir) if per_layer_store else [],
            safe_text(note.name) or None, f"{note.object_dir}: {note.detail}"
            + (f" ({note.kind})" if note.kind != "error" else ""))

    # ---- non-regular files: reported, never opened
    jobs_by_id: dict[tuple[int, int], HashJob] = {}
    checkable: list[_Unit] = []
    for u in units.values():
        f = u.file
        if f is None:
            continue
        if f.kind != "reg":
            what = "a symlink" if f.kind == "lnk" else f"not a regular file ({f.kind})"
            if store.kind == "ostree" and not u.refs:
                continue
            add("suspicious", ERROR, u.layers, safe_text(u.name),
                f"object is {what}: not followed, not opened", u.refs[0].path if u.refs else None)
            continue
        algs: set[str] = set()
        if digest_named and name_hex(u.name, store.object_naming):
            algs.add({"sha256-content": "sha256", "fsverity-sha256": "fsverity-sha256",
                      "fsverity-sha512": "fsverity-sha512"}[store.object_naming])
        for r in u.refs:
            if r.digest:
                algs.add("fsverity-sha256" if len(r.digest) == 32 else "fsverity-sha512")
        if not algs and not u.refs:
            continue
        job = jobs_by_id.get(f.identity)
        if job is None:
            jobs_by_id[f.identity] = HashJob(f.path, f.identity, frozenset(algs), f.size)
        else:
            jobs_by_id[f.identity] = HashJob(job.path, job.identity, job.algs | algs, job.size)
        checkable.append(u)

    results = hash_all(jobs_by_id.values(), jobs, progress, cancel)
    rep.files_hashed = sum(1 for r in results.values() if r.error is None)
    rep.bytes_hashed = sum(r.size or 0 for r in results.values())
    if cancel is not None and cancel.is_set():
        rep.cancelled = True

    for u in checkable:
        res = results.get(u.file.identity)
        if res is None or res.error_kind == "cancelled":
            continue
        if res.error is None:
            rep.objects_checked += 1
        _judge(u, res, store, add)
    order = {"error": 0, "warning": 1}
    rep.problems.sort(key=lambda p: (order.get(p.severity, 2), p.kind, p.object or "",
                                     p.layer or "", p.path or ""))
    return rep


def name_hex(name: str, naming: str) -> str | None:
    """The hex a digest-store name encodes, or None when the name does not have that shape."""
    if len(name) < 4 or name[2] != "/":
        return None
    h = name[:2] + name[3:]
    want = {"sha256-content": 64, "fsverity-sha256": 64, "fsverity-sha512": 128}.get(naming)
    if want is None or len(h) != want or not is_hex(h):
        return None
    return h


def _referenced_by_dir(store: Store, idx: StoreIndex) -> dict[Path, set[str] | None]:
    """Names each object dir must keep: payloads of blobs that may be served from it.

    None for a directory served to a blob that could not be read: what it needs is unknown,
    so nothing there may be called an orphan.
    """
    out: dict[Path, set[str] | None] = {}
    for lid, blob in idx.blobs.items():
        layer = store.layers[lid]
        dirs: set[Path] = set()
        if store.kind == "containers-storage":
            for im in store.images_using(lid):
                dirs.update(store.object_search_dirs(im))
        if layer.object_dir is not None:
            dirs.add(layer.object_dir)
        for d in dirs:
            if blob.error:
                out[d] = None
            elif out.setdefault(d, set()) is not None:
                out[d].update(blob.by_payload)
    for d in idx.files:
        if out.setdefault(d, set()) is not None:
            out[d].update(store.metadata_objects)
    return out


def _judge(u: _Unit, res: HashResult, store: Store, add) -> None:
    f = u.file
    assert f is not None
    path0 = u.refs[0].path if u.refs else None
    if res.error is not None:
        add(res.error_kind or "unreadable", ERROR, u.layers, safe_text(u.name),
            f"{f.path}: {res.error}", path0)
        return
    reasons: list[str] = []
    kind = "corrupt"
    sizes = sorted({r.size for r in u.refs})
    bad_sizes = [s for s in sizes if s != res.size]
    if bad_sizes:
        kind = "size-mismatch"
        reasons.append(f"object has {res.size} bytes, the image expects {bad_sizes[0]}")
    hexname = name_hex(u.name, store.object_naming)
    if hexname is not None:
        alg = "sha256" if store.object_naming == "sha256-content" else store.object_naming
        got = res.get(alg)
        if got is not None and got != hexname:
            what = "content sha256" if alg == "sha256" else "fs-verity digest"
            reasons.append(f"{what} {got} does not match the object name")
    for dig in sorted({r.digest for r in u.refs if r.digest}):
        alg = "fsverity-sha256" if len(dig) == 32 else "fsverity-sha512"
        got = res.get(alg)
        if got is not None and got != dig.hex():
            reasons.append(f"fs-verity digest {got} does not match the image DIGEST {dig.hex()}")
    if reasons:
        add(kind, ERROR, u.layers, safe_text(u.name), "; ".join(reasons), path0)
