"""``refs``: which images, layers and paths use an object, and where are its physical copies?

The reverse index composefs/composefs#211 asks for ("which image does a corrupt object
break?").  An object is named by any of:

* its object name ``xx/yyyy…`` or the same without the slash (ostree: ``….file`` included);
* an fs-verity digest found in some blob's metacopy (a containers/storage object is named by
  its content sha256, so its fs-verity digest is a second identifier);
* a unique prefix (at least :data:`MIN_PREFIX` hex digits) of either;
* ``IMAGE:/path``: the object behind a file of an image's merged view.

Every identifier of one object gives the same answer.  A prefix matching several objects is
an error listing the candidates (exit 2); nothing matching is "not found" (exit 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from inspector.analysis.merged import MergedView
from inspector.analysis.objects import StoreIndex, build_index, is_hex
from inspector.errors import InspectError
from inspector.composefs.escape import json_path_text
from inspector.stores.fsutil import safe_text
from inspector.stores.model import Store, StoreImage

MIN_PREFIX = 6
MAX_CANDIDATES = 20


class RefsNotFound(InspectError):
    """Nothing in the store matches the query (the CLI exits 1)."""


class RefsAmbiguous(InspectError):
    """A prefix matches several objects; ``candidates`` lists them (the CLI exits 2)."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


@dataclass(slots=True)
class RefsResult:
    query: str
    object: str
    size: int | None
    fsverity_digests: list[str] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    physical_copies: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"query": self.query, "object": self.object, "size": self.size,
                "fsverity_digests": self.fsverity_digests,
                "answers": [{**a, "path": json_path_text(a["path"])} for a in self.answers],
                "physical_copies": self.physical_copies}


def _strip_slash(name: str) -> str:
    return name[:2] + name[3:] if len(name) > 2 and name[2] == "/" else name


def identifiers(store: Store, idx: StoreIndex) -> dict[str, set[str]]:
    """identifier (lower-case, no slash) -> object names it denotes."""
    out: dict[str, set[str]] = {}
    names = idx.all_names() | idx.referenced_names() | set(store.metadata_objects)
    for n in names:
        out.setdefault(_strip_slash(n).lower(), set()).add(n)
    for b in idx.blobs.values():
        for r in b.refs:
            if r.digest:
                out.setdefault(r.digest.hex(), set()).add(r.payload)
    return out


def find_image(store: Store, spec: str) -> StoreImage | None:
    """An image by name, label, id, or unique id prefix (>= 6 characters)."""
    for im in store.images:
        if spec == im.id or spec == im.label or spec in im.names:
            return im
    if len(spec) >= MIN_PREFIX:
        hits = [im for im in store.images if im.id.startswith(spec)]
        if len(hits) == 1:
            return hits[0]
    return None


def resolve(store: Store, idx: StoreIndex, query: str) -> str:
    """The one object name *query* denotes (see the module docstring)."""
    q = query.strip()
    if ":/" in q:
        spec, _, path = q.rpartition(":/")
        im = find_image(store, spec)
        if im is not None:
            return _resolve_path(store, idx, im, "/" + path)
    key = _strip_slash(q).lower()
    ids = identifiers(store, idx)
    if key in ids:
        names = ids[key]
    else:
        hexpart = key.split(".", 1)[0]
        if not is_hex(hexpart):
            raise InspectError(f"not an object name, fs-verity digest, prefix or IMAGE:/path: "
                               f"{safe_text(query)!r}")
        if len(hexpart) < MIN_PREFIX:
            raise InspectError(f"prefix {safe_text(query)!r} is too short: give at least "
                               f"{MIN_PREFIX} hex digits")
        names = set()
        for ident, ns in ids.items():
            if ident.startswith(key):
                names |= ns
    if not names:
        raise RefsNotFound(f"no object, digest or prefix matches {safe_text(query)!r}")
    if len(names) > 1:
        cands = sorted(names)
        shown = ", ".join(cands[:MAX_CANDIDATES])
        more = f" and {len(cands) - MAX_CANDIDATES} more" if len(cands) > MAX_CANDIDATES else ""
        raise RefsAmbiguous(f"{safe_text(query)!r} is ambiguous: it matches {len(cands)} objects: "
                            f"{shown}{more}", cands)
    return next(iter(names))


def _resolve_path(store: Store, idx: StoreIndex, im: StoreImage, path: str) -> str:
    bpath = os.fsencode(path.rstrip("/") or "/")
    ent = MergedView(store, im).lookup(bpath)
    if ent is None:
        raise RefsNotFound(f"{safe_text(path)} is not in the merged view of {im.label}")
    if ent.type != "reg":
        raise RefsNotFound(f"{safe_text(path)} in {im.label} is a {ent.type}, not a regular file")
    b = idx.blobs.get(ent.layer)
    if b is not None:
        for r in b.refs:
            if r.path == bpath:
                return r.payload
    raise RefsNotFound(f"{safe_text(path)} in {im.label} has no object (empty, inline, or in a "
                       "plain layer)")


def find_refs(store: Store, query: str, index: StoreIndex | None = None) -> RefsResult:
    """Every image/layer/path referencing the object *query* names, and its physical copies."""
    idx = index or build_index(store)
    name = resolve(store, idx, query)
    res = RefsResult(query=query, object=name, size=None)
    digests: list[str] = []
    views: dict[str, MergedView] = {}
    for im in store.images:
        for lid in im.layers:
            b = idx.blobs.get(lid)
            if b is None or name not in b.by_payload:
                continue
            view = views.get(im.id)
            if view is None:
                view = views[im.id] = MergedView(store, im)
            for r in sorted(b.by_payload[name], key=lambda r: r.path):
                ent = view.lookup(r.path)
                res.answers.append({
                    "image": im.label, "layer": lid,
                    "path": r.path.decode("utf-8", "surrogateescape"),
                    "visible": ent is not None and ent.layer == lid and ent.type == "reg",
                })
                if res.size is None:
                    res.size = r.size
                if r.digest and r.digest.hex() not in digests:
                    digests.append(r.digest.hex())
    res.fsverity_digests = digests
    groups: list[tuple[int, int]] = []
    seen_dirs: set[Path] = set()
    ordered_dirs: list[Path] = []
    for layer in store.layers.values():
        if layer.object_dir is not None and layer.object_dir not in seen_dirs:
            seen_dirs.add(layer.object_dir)
            ordered_dirs.append(layer.object_dir)
    for d in store.object_dirs:
        if d not in seen_dirs:
            seen_dirs.add(d)
            ordered_dirs.append(d)
    for d in ordered_dirs:
        f = idx.files.get(d, {}).get(name)
        if f is None:
            continue
        if f.identity not in groups:
            groups.append(f.identity)
        owners = idx.dir_layers(d)
        try:
            rel = str(f.path.relative_to(store.path))
        except ValueError:
            rel = str(f.path)
        res.physical_copies.append({
            "layer": owners[0] if len(owners) == 1 else None,
            "path_in_store": rel,
            "inode_group": groups.index(f.identity) + 1,
            "nlink": f.nlink,
        })
        if len(res.physical_copies) == 1:
            res.size = f.size   # the object as stored wins over what an inode claims
    return res
