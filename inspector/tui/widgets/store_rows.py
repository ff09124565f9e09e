"""The overview's figures: store totals, one row per image and per layer, inode counts.

Built from the session's reference index and dedup report (None until computed, then the
figures show as "-"); plain functions over a :class:`~inspector.tui.widgets.session.Session`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from inspector.errors import InspectError
from inspector.stores.fsutil import walk
from inspector.stores.model import Layer, StoreImage


@dataclass(frozen=True, slots=True)
class ImageRow:
    image: StoreImage
    label: str
    layers: int
    logical: int | None
    unique: int | None
    shared: int | None
    digests: str             # "38/38", "none", "-"
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LayerRow:
    layer: Layer
    kind: str                # composefs / plain / plain EROFS
    inodes: int | None
    objects: int | None
    bytes: int | None
    shared_pct: float | None
    images: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Totals:
    physical: int
    logical: int
    saved: int
    reclaimable: int


def totals(session) -> Totals | None:
    rep = session.dedup
    if rep is None:
        return None
    d = rep.data
    if rep.mode == "layers":
        t = d["totals"]
        return Totals(t["physical_bytes"], t["logical_bytes"], t["saved_by_sharing_bytes"],
                      t["reclaimable_bytes"])
    return Totals(d["physical_bytes"], d["logical_bytes"], d["saved_by_sharing_bytes"],
                  d["reclaimable_bytes"])


def image_rows(session) -> list[ImageRow]:
    idx, rep = session.index, session.dedup
    rows = []
    payloads_of: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    if idx is not None:
        for f in idx.files.values():
            for name, of in f.items():
                sizes.setdefault(name, of.size)
        for im in session.store.images:
            s: set[str] = set()
            for lid in im.layers:
                b = idx.blobs.get(lid)
                if b is not None:
                    s.update(b.by_payload)
                    for name, refs in b.by_payload.items():
                        sizes.setdefault(name, refs[0].size)
            payloads_of[im.id] = s
    for im in session.store.images:
        logical = unique = shared = None
        if rep is not None and rep.mode == "layers":
            pi = rep.data["per_image"].get(im.label)
            if pi is not None:
                logical = pi["logical_bytes"]
                shared = pi["shared_with_other_images_bytes"]
                unique = sum(o["size"] for o in rep.data["objects"].values()
                             if o["images"] == [im.label])
        elif rep is not None and idx is not None:
            mine = payloads_of.get(im.id, set())
            others = set().union(*(v for k, v in payloads_of.items() if k != im.id)) \
                if len(payloads_of) > 1 else set()
            logical = sum(sizes.get(n, 0) for n in mine)
            shared = sum(sizes.get(n, 0) for n in mine & others)
            unique = logical - shared
        digests = "-"
        if idx is not None:
            n_ref = n_dig = 0
            for lid in im.layers:
                b = idx.blobs.get(lid)
                if b is not None and not b.error:
                    n_ref += len(b.by_payload)
                    n_dig += b.digests_present
            digests = f"{n_dig}/{n_ref}" if n_ref else "-"
        probs = list(im.problems)
        for lid in im.layers:
            la = session.store.layers.get(lid)
            if la is None:
                probs.append(f"layer {lid[:12]} not in the store")
            else:
                probs.extend(la.problems)
                if idx is not None and lid in idx.blobs and idx.blobs[lid].error:
                    probs.append(idx.blobs[lid].error)
        rows.append(ImageRow(im, im.label, len(im.layers), logical, unique, shared, digests,
                             tuple(probs)))
    return rows


def layer_rows(session, inode_counts: dict[str, int] | None = None) -> list[LayerRow]:
    idx, rep = session.index, session.dedup
    rows = []
    for lid, la in session.store.layers.items():
        kind = "composefs" if la.composefs and la.blob is not None else "plain"
        objects = nbytes = None
        pct = None
        if rep is not None and rep.mode == "layers" and lid in rep.data["per_layer"]:
            pl = rep.data["per_layer"][lid]
            objects, nbytes = pl["objects"], pl["bytes"]
            pct = 100.0 * pl["shared_bytes"] / nbytes if nbytes else 0.0
        elif idx is not None and lid in idx.blobs and not idx.blobs[lid].error:
            b = idx.blobs[lid]
            objects = len(b.by_payload)
            nbytes = sum(refs[0].size for refs in b.by_payload.values())
            if rep is not None:
                others: set[str] = set()
                for olid, ob in idx.blobs.items():
                    if olid != lid:
                        others.update(ob.by_payload)
                sb = sum(refs[0].size for n, refs in b.by_payload.items() if n in others)
                pct = 100.0 * sb / nbytes if nbytes else 0.0
        probs = list(la.problems)
        if idx is not None and lid in idx.blobs and idx.blobs[lid].error:
            probs.append(idx.blobs[lid].error)
        rows.append(LayerRow(la, kind, (inode_counts or {}).get(lid), objects, nbytes, pct,
                             tuple(im.label for im in session.store.images_using(lid)),
                             tuple(probs)))
    return rows


def count_inodes(session, layer_id: str) -> int | None:
    """Distinct inodes of a layer's own tree (root included, hardlinks once, root stubs
    excluded); a plain layer counts ``diff/`` and everything in it."""
    la = session.store.layers[layer_id]
    r = session.reader(layer_id)
    if r.error:
        return None
    if r.img is not None:
        # a private instance: the walk must not hold up the browser's reads of this layer
        from inspector.composefs.image import open_image
        seen: set[int] = set()
        try:
            with open_image(la.blob) as img:
                for e in img.walk():
                    seen.add(e.inode.nid)
        except (InspectError, OSError):
            return None
        return len(seen)
    n = 0
    seen_ino: set[tuple[int, int]] = set()
    for dirpath, dirs, files in walk(r.diff):     # O_NOATIME listings, symlinks not entered
        for name in [*dirs, *files, None]:
            p = os.path.join(dirpath, name) if name else dirpath
            if name is None and dirpath != str(r.diff):
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen_ino:
                seen_ino.add((st.st_dev, st.st_ino))
                n += 1
    del la
    return n
