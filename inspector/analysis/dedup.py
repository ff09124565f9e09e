"""``dedup``: how much do shared objects save, and what would deleting an image free?

Two accountings, matching the two ways stores hold objects (definitions in the fixtures'
expected.json ``definitions`` blocks, repeated in docs/json.md):

* **per-layer object stores** (containers/storage): every composefs layer's ``diff/`` is its
  own object store, and the same content may be there several times: as one inode (hard
  links), as reflinked copies (shared extents), or as plain copies (reclaimable).  Accounting
  is by *presence* of object files, whether or not a blob references them.
* **one object directory** (composefs-rs, ostree, bare ``--basedir``): each object is stored
  once; sharing is logical (several images reference one object), so the figures are the
  images' payload sets.

Every physical file is counted once by ``(st_dev, st_ino)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from inspector.analysis.objects import (EMPTY_SHA256_OBJECT, ObjectFile, StoreIndex,
                                        build_index)
from inspector.analysis.reflink import extents_shared
from inspector.stores.model import Store

TOP_N = 10
#: Up to this many composefs layers the matrix lists every pair (zeros included); above it,
#: only pairs that share something, to keep the JSON proportional to the sharing.
MATRIX_FULL_MAX = 64


@dataclass(slots=True)
class DedupReport:
    store: Store
    mode: str                       # "layers" (per-layer stores) or "images" (one object dir)
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"store": {"kind": self.store.kind, "path": str(self.store.path)},
                "mode": self.mode, **self.data}


def dedup_store(store: Store, index: StoreIndex | None = None,
                reflinks: bool = True) -> DedupReport:
    idx = index or build_index(store)
    if store.kind == "containers-storage":
        return DedupReport(store, "layers", _layers(store, idx, reflinks))
    return DedupReport(store, "images", _images(store, idx))


# --------------------------------------------------------------------------- per-layer stores


def _layers(store: Store, idx: StoreIndex, reflinks: bool) -> dict:
    layers = [la.id for la in store.layers.values() if la.composefs and la.object_dir is not None]
    files: dict[str, dict[str, ObjectFile]] = {lid: idx.layer_files(lid) for lid in layers}
    holders: dict[str, list[tuple[str, ObjectFile]]] = defaultdict(list)
    for lid in layers:
        for name, f in files[lid].items():
            holders[name].append((lid, f))
    size_of = {name: h[0][1].size for name, h in holders.items()}
    inode_layers: dict[tuple[int, int], set[str]] = defaultdict(set)
    inode_size: dict[tuple[int, int], int] = {}
    for lid in layers:
        for f in files[lid].values():
            inode_layers[f.identity].add(lid)
            inode_size[f.identity] = f.size

    # reflinks: among names held by several inodes, which copies share all their extents?
    reflinked: dict[str, list[tuple[int, int]]] = {}
    reflink_status = "none"
    if reflinks:
        unknown = False
        for name, h in holders.items():
            ids = {f.identity: f for _, f in h}
            if len(ids) < 2 or size_of[name] == 0:
                continue
            shared = []
            for ident, f in ids.items():
                # never open a planted FIFO or device (open/ioctl can have side effects)
                r = extents_shared(f.path) if f.kind == "reg" else None
                if r is None:
                    unknown = True
                elif r:
                    shared.append(ident)
            if len(shared) >= 2:
                reflinked[name] = shared
        reflink_status = "found" if reflinked else ("unknown" if unknown else "none")
    else:
        reflink_status = "not-checked"

    distinct_bytes = sum(size_of.values())
    physical_bytes = sum(inode_size.values())
    logical_files = sum(len(files[lid]) for lid in layers)
    logical_bytes = sum(f.size for lid in layers for f in files[lid].values())
    multi = {n: h for n, h in holders.items() if len({lid for lid, _ in h}) >= 2}
    kinds = {"hardlinked": 0, "copied": 0, "partially_hardlinked": 0}
    for name, h in multi.items():
        n_inodes = len({f.identity for _, f in h})
        if n_inodes == 1:
            kinds["hardlinked"] += 1
        elif n_inodes == len(h):
            kinds["copied"] += 1
        else:
            kinds["partially_hardlinked"] += 1
    reclaimable = 0
    reflinked_bytes = 0
    for name, h in holders.items():
        n_inodes = len({f.identity for _, f in h})
        r = len(reflinked.get(name, ()))
        effective = n_inodes - r + (1 if r else 0)
        reclaimable += (effective - 1) * size_of[name]
        reflinked_bytes += max(r - 1, 0) * size_of[name]

    per_layer = {}
    for lid in layers:
        uo = ub = so = sb = hl = cp = 0
        for name, f in files[lid].items():
            others = [(ol, g) for ol, g in holders[name] if ol != lid]
            if others:
                so += 1
                sb += f.size
            else:
                uo += 1
                ub += f.size
            if inode_layers[f.identity] - {lid}:
                hl += 1
            if any(g.identity != f.identity for _, g in others):
                cp += 1
        per_layer[lid] = {
            "objects": len(files[lid]),
            "bytes": sum(f.size for f in files[lid].values()),
            "unique_objects": uo, "unique_bytes": ub,
            "shared_objects": so, "shared_bytes": sb,
            "hardlinked_to_other_layer": hl, "copied_in_other_layer": cp,
        }

    # per image: cost proportional to the objects of the image's own layers, not to the store
    layer_images: dict[str, set[str]] = defaultdict(set)
    for im in store.images:
        for lid in im.layers:
            layer_images[lid].add(im.id)
    name_images: dict[str, set[str]] = defaultdict(set)
    for name, h in holders.items():
        for lid, _ in h:
            name_images[name] |= layer_images[lid]
    per_image = {}
    for im in store.images:
        im_layers = [lid for lid in im.layers if lid in files]
        exclusive = [lid for lid in im_layers if layer_images[lid] == {im.id}]
        excl = set(exclusive)
        freed_ids: dict[tuple[int, int], int] = {}
        for lid in exclusive:
            for f in files[lid].values():
                if f.identity not in freed_ids and inode_layers[f.identity] <= excl:
                    freed_ids[f.identity] = f.size
        mine = {n for lid in im_layers for n in files[lid]}
        per_image[im.label] = {
            "image": im.id,
            "layers": im_layers,
            "exclusive_layers": exclusive,
            "logical_bytes": sum(per_layer[lid]["bytes"] for lid in im_layers),
            "freed_if_deleted_bytes": sum(freed_ids.values()),
            "shared_with_other_images_bytes": sum(size_of[n] for n in mine
                                                  if name_images[n] - {im.id}),
        }

    # matrix from the names held by several layers: O(sum of k^2) instead of O(layers^2 * n)
    pair: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for name, h in multi.items():
        lids = list(dict.fromkeys(lid for lid, _ in h))
        for x in lids:
            for y in lids:
                if x != y:
                    cell = pair[(x, y)]
                    cell[0] += 1
                    cell[1] += size_of[name]
    full = len(layers) <= MATRIX_FULL_MAX
    matrix: dict[str, dict[str, dict]] = {}
    for a in layers:
        row = {}
        for b in layers:
            if a == b:
                continue
            cell = pair.get((a, b))
            if cell is not None or full:
                row[b] = {"objects": cell[0] if cell else 0, "bytes": cell[1] if cell else 0}
        if row or full:
            matrix[a] = row

    referenced = idx.referenced_names()
    unref_expected, unreferenced = [], []
    for name in sorted(holders):
        if name in referenced:
            continue
        entry = {"object": name, "size": size_of[name],
                 "layers": [lid for lid, _ in holders[name]]}
        if name == EMPTY_SHA256_OBJECT:
            entry["reason"] = ("empty content; mkcomposefs drops the payload of size-0 files, "
                               "so no blob references it")
            unref_expected.append(entry)
        else:
            unreferenced.append(entry)

    top = []
    for name, h in multi.items():
        n_inodes = len({f.identity for _, f in h})
        r = len(reflinked.get(name, ()))
        top.append({
            "object": name, "size": size_of[name],
            "layers": [lid for lid, _ in h],
            "inodes": n_inodes,
            "kind": ("hardlinked" if n_inodes == 1 else
                     "copied" if n_inodes == len(h) else "partially_hardlinked"),
            "reflinked_copies": r,
            "logical_bytes": size_of[name] * len(h),
            "reclaimable_bytes": (n_inodes - r + (1 if r else 0) - 1) * size_of[name],
        })
    top.sort(key=lambda t: (-t["reclaimable_bytes"], -t["logical_bytes"], t["object"]))

    objects = {}
    for name in sorted(holders):
        h = holders[name]
        lids = [lid for lid, _ in h]
        groups: list[tuple[int, int]] = []
        for _, f in h:
            if f.identity not in groups:
                groups.append(f.identity)
        paths = {}
        for lid in lids:
            b = idx.blobs.get(lid)
            if b is not None and name in b.by_payload:
                paths[lid] = [r.path.decode("utf-8", "surrogateescape") for r in b.by_payload[name]]
        objects[name] = {
            "size": size_of[name],
            "layers": lids,
            "inode_groups": [groups.index(f.identity) + 1 for _, f in h],
            "images": [im.label for im in store.images if any(lid in im.layers for lid in lids)],
            "paths": paths,
        }

    return {
        "totals": {
            "composefs_layers": len(layers),
            "distinct_objects": len(holders), "distinct_bytes": distinct_bytes,
            "physical_files": len(inode_size), "physical_bytes": physical_bytes,
            "logical_files": logical_files, "logical_bytes": logical_bytes,
            "objects_in_2plus_layers": len(multi),
            "objects_in_2plus_layers_bytes": sum(size_of[n] for n in multi),
            "objects_in_2plus_layers_by_kind": kinds,
            "saved_by_sharing_bytes": logical_bytes - physical_bytes,
            "reclaimable_bytes": reclaimable,
            "reflinked_bytes": reflinked_bytes,
        },
        "reflinks": {"status": reflink_status,
                     "objects": sorted(reflinked), "bytes": reflinked_bytes},
        "per_layer": per_layer,
        "per_image": per_image,
        "matrix": matrix,
        "unreferenced_expected": unref_expected,
        "unreferenced": unreferenced,
        "top_duplicated": top[:TOP_N],
        "objects": objects,
    }


# --------------------------------------------------------------------------- one object dir


def _images(store: Store, idx: StoreIndex) -> dict:
    per_image = {}
    union: dict[str, int] = {}
    by_image: dict[str, set[str]] = {}
    files_by_name: dict[str, ObjectFile] = {}
    for d, files in idx.files.items():
        for name, f in files.items():
            files_by_name.setdefault(name, f)
    for im in store.images:
        payloads: dict[str, int] = {}
        paths = 0
        by_path = 0
        for lid in im.layers:
            b = idx.blobs.get(lid)
            if b is None:
                continue
            for name, refs in b.by_payload.items():
                f = files_by_name.get(name)
                size = f.size if f is not None else refs[0].size
                payloads[name] = size
                paths += len(refs)
                by_path += size * len(refs)
        by_image[im.id] = set(payloads)
        union.update(payloads)
        per_image[im.label] = {
            "image": im.id,
            "payload_objects": len(payloads),
            "payload_bytes": sum(payloads.values()),
            "payload_paths": paths,
            "file_bytes_by_path": by_path,
        }
    idents: dict[tuple[int, int], int] = {}
    for name in union:
        f = files_by_name.get(name)
        if f is not None:
            idents[f.identity] = f.size
    physical = sum(idents.values())
    logical = sum(v["payload_bytes"] for v in per_image.values())
    count: dict[str, int] = defaultdict(int)
    for names in by_image.values():
        for n in names:
            count[n] += 1
    shared = sorted(n for n, c in count.items() if c >= 2)
    top = sorted(({"object": n, "size": union[n], "images": count[n],
                   "logical_bytes": union[n] * count[n]} for n in shared),
                 key=lambda t: (-t["logical_bytes"], t["object"]))
    missing = sorted(n for n in union if n not in files_by_name)
    return {
        "per_image": per_image,
        "logical_bytes": logical,
        "distinct_objects": len(union),
        "distinct_bytes": sum(union.values()),
        "physical_files": len(idents),
        "physical_bytes": physical,
        "saved_by_sharing_bytes": logical - physical if not missing else logical - sum(union.values()),
        "reclaimable_bytes": max(physical - sum(union[n] for n in union if n in files_by_name), 0),
        "shared_by_multiple_images": {"objects": len(shared),
                                      "bytes": sum(union[n] for n in shared), "list": shared},
        "missing_objects": missing,
        "top_duplicated": top[:TOP_N],
    }
