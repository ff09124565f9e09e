"""The TUI's shared state: the opened store, its layer readers and the analysis results.

No Textual here.  Every screen reads ``app.session`` (a :class:`Session`); expensive results
(the reference index, dedup, a verify run) are computed by thread workers that call the
``compute_*`` methods and are ``None`` until ready, so a screen always has something to show.

Contract for screens written by others (Objects, Dedup, Problems, Health):
``session.store`` (model), ``session.index`` (:class:`~inspector.analysis.objects.StoreIndex`
or None), ``session.dedup`` (:class:`~inspector.analysis.dedup.DedupReport` or None),
``session.verify_report`` (:class:`~inspector.analysis.verify.VerifyReport` or None), and
``app.jump(image_label_or_None, layer_id_or_None, path_bytes_or_str)`` to open the browser
somewhere.
"""

from __future__ import annotations

import fnmatch
import gc
import os
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from inspector.analysis.objects import StoreIndex, build_index, is_hex
from inspector.analysis.verify import name_hex
from inspector.errors import InspectError
from inspector.stores.model import Layer, Store, StoreImage
from inspector.tui.widgets.nodes import Details, Share
from inspector.tui.widgets.source import (BrowseSource, LayerReader, LayerSource, MergedSource,
                                          object_file)

SEARCH_LIMIT = 2000
#: Layers up to this many inodes may be walked once to find hard links of payload-less files.
HARDLINK_WALK_MAX = 200_000


class Session:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._readers: dict[str, LayerReader] = {}
        self._merged: dict[str, MergedSource] = {}
        self.index: StoreIndex | None = None
        self.index_error: str | None = None
        self.dedup = None
        self.dedup_error: str | None = None
        self.verify_report = None
        self._refcount: Counter[str] | None = None
        self._hardlinks: dict[tuple[str, int], list[bytes]] = {}
        self._index_lock = threading.Lock()
        #: a single image opened with --basedir whose object naming is not decided yet
        self.naming_pending = False
        #: object file path -> (state, note) from `v` / `V`
        self.object_states: dict[Path, tuple[str, str | None]] = {}

    # -- basics ------------------------------------------------------------------------------
    @property
    def single_image(self) -> bool:
        return self.store.kind == "image"

    def image_by_label(self, label: str) -> StoreImage | None:
        for im in self.store.images:
            if label in (im.label, im.id) or label in im.names:
                return im
        return None

    def reader(self, layer_id: str) -> LayerReader:
        with self._lock:
            r = self._readers.get(layer_id)
            if r is None:
                layer = self.store.layers.get(layer_id)
                if layer is None:   # an image names a layer the store does not have
                    r = LayerReader(self.store, Layer(id=layer_id, parent=None, composefs=False,
                                                      blob=None, object_dir=None))
                    r.error = f"layer {layer_id[:12]} is not in the store"
                else:
                    r = LayerReader(self.store, layer)
                self._readers[layer_id] = r
            return r

    def is_plain_erofs(self, layer_id: str) -> bool:
        r = self.reader(layer_id)
        return r.img is not None and r.img.is_plain_erofs

    def source(self, image: StoreImage, layer_id: str | None = None) -> BrowseSource:
        """The merged view of *image* (layer_id None) or one layer's own tree."""
        if layer_id is not None or self.single_image:
            lid = layer_id or image.layers[0]
            pos = image.layers.index(lid) + 1 if lid in image.layers else 0
            title = (f"{image.label}" if self.single_image else
                     f"{image.label} · layer {lid[:12]} ({pos}/{len(image.layers)}, own tree)")
            return LayerSource(self.reader(lid), title)
        with self._lock:
            m = self._merged.get(image.id)
            if m is None:
                readers = {lid: self.reader(lid) for lid in image.layers}
                m = self._merged[image.id] = MergedSource(
                    self.store, image, readers, f"{image.label} · merged ({len(image.layers)} layers)")
            return m

    def close(self) -> None:
        for r in self._readers.values():
            r.close()

    # -- analysis (called from thread workers) -------------------------------------------------
    def decide_naming(self) -> None:
        """How a single image's payloads are named (one walk); see :func:`open_store_fast`."""
        from inspector.stores.bare import naming_for_images
        self.store.object_naming = naming_for_images([la.blob for la in self.store.layers.values()
                                                      if la.blob is not None])
        self.naming_pending = False

    def ensure_index(self) -> StoreIndex:
        """The index, building it once; concurrent callers wait for the same build."""
        with self._index_lock:
            return self.index if self.index is not None else self.compute_index()

    def compute_index(self) -> StoreIndex:
        """A fresh index (scan + blob walks), which becomes ``self.index``."""
        with _gc_paused():
            idx = build_index(self.store)
        rc: Counter[str] = Counter()
        for b in idx.blobs.values():
            for name, refs in b.by_payload.items():
                rc[name] += len(refs)
        with self._lock:
            self.index = idx
            self._refcount = rc
        return idx

    def compute_dedup(self):
        from inspector.analysis.dedup import dedup_store
        idx = self.ensure_index()
        rep = dedup_store(self.store, idx)
        self.dedup = rep
        return rep

    def refcount(self, payload: str | None) -> int | None:
        if payload is None:
            return 0
        rc = self._refcount
        return None if rc is None else rc.get(payload, 0)

    # -- details -----------------------------------------------------------------------------
    def details(self, source: BrowseSource, image: StoreImage | None, path: bytes) -> Details:
        """The source's inode details plus object location/state, hardlinks and sharing."""
        d = source.details(path)
        if d.kind == "error" or d.layer is None:
            return d
        layer = self.store.layers.get(d.layer)
        if d.payload is not None:
            op, state, note = object_file(self.store, layer, d.payload, image)
            d.object_path, d.object_state, d.object_note = op, state, note
            if op is not None and op in self.object_states:
                d.object_state, d.object_note = self.object_states[op]
            elif op is not None and self.verify_report is not None and state == "present":
                d.object_state, d.object_note = self._state_from_report(d.payload, d.layer)
        idx = self.index
        if idx is not None:
            b = idx.blobs.get(d.layer)
            if b is not None and d.nid is not None and d.nlink > 1 and d.kind != "dir":
                sib = [r.path for r in b.refs if r.nid == d.nid]
                if sib:
                    d.hardlinks = sorted(set(sib) | {path})
            if d.payload is not None:
                d.shares = self.shares(d.payload, d.layer, path,
                                       image.label if image is not None else None)
        if d.nlink > 1 and d.kind != "dir" and len(d.hardlinks) <= 1:
            try:
                links = self._walk_hardlinks(d)
            except (InspectError, OSError):
                links = None
            if links:
                d.hardlinks = sorted(set(links) | {path})
        return d

    def _walk_hardlinks(self, d: Details) -> list[bytes] | None:
        """Every path of the layer naming *d*'s inode, by one walk of a small layer (the
        index only knows hard links of files with a payload); None when too big to walk."""
        r = self.reader(d.layer)
        if r.img is None or d.nid is None or (r.inodes_hint or 0) > HARDLINK_WALK_MAX:
            return None
        key = (d.layer, d.nid)
        if key not in self._hardlinks:
            # a private instance: the walk must not hold up the browser's reads of this layer
            from inspector.composefs.image import open_image
            from inspector.composefs.summary import find_hardlinks
            with open_image(r.layer.blob) as img:
                self._hardlinks[key] = find_hardlinks(img, img.inode(d.nid))
        return self._hardlinks[key]

    def _state_from_report(self, payload: str, layer: str) -> tuple[str, str | None]:
        rep = self.verify_report
        # containers/storage: one object store per layer, problems are per (layer, object);
        # elsewhere one object directory serves every image, so the object alone decides
        per_layer = self.store.kind == "containers-storage"
        for p in rep.problems:
            if p.object == payload and p.severity == "error" and \
                    (not per_layer or not p.layer or p.layer == layer):
                return p.kind, p.detail
        if rep.cancelled:
            return "present", "verify run was cancelled before this object"
        return "verified", "checked by the last verify run"

    def shares(self, payload: str, layer: str | None = None, path: bytes | None = None,
               image: str | None = None) -> list[Share]:
        """Every (image, layer, path) reading *payload* except the entry itself in *image*."""
        idx = self.index
        if idx is None:
            return []
        out: list[Share] = []
        for lid, ref in idx.payload_refs(payload):
            for im in self.store.images_using(lid) or [None]:
                label = im.label if im is not None else None
                if lid == layer and ref.path == path and (image is None or label == image):
                    continue
                visible = None
                if im is not None:
                    n = self.source(im).node(ref.path)
                    visible = n is not None and n.layer == lid and n.kind == "reg"
                out.append(Share(label, lid, ref.path, visible))
        out.sort(key=lambda s: (s.layer == layer, s.image or "", s.layer, s.path))
        return out

    # -- verify ------------------------------------------------------------------------------
    def verify_object(self, d: Details, cancel: threading.Event | None = None) -> tuple[str, str | None]:
        """Hash the selection's object and judge it like ``verify`` does (adapter: the engine
        judges whole stores only).  Records the state for the detail pane."""
        from inspector.analysis.hashing import HashJob, hash_file
        if d.object_path is None or d.object_state in ("missing", "suspicious", "no object"):
            return d.object_state or "no object", d.object_note
        try:
            st = os.lstat(d.object_path)
        except OSError as e:
            return "missing", e.strerror
        algs: set[str] = set()
        naming = self.store.object_naming
        hexname = name_hex(d.payload or "", naming)
        if hexname is not None:
            algs.add({"sha256-content": "sha256", "fsverity-sha256": "fsverity-sha256",
                      "fsverity-sha512": "fsverity-sha512"}[naming])
        if d.digest:
            algs.add("fsverity-sha256" if len(d.digest) == 64 else "fsverity-sha512")
        if not algs:
            res_state = ("present", "nothing to check against: no DIGEST and the name is not a digest")
            self.object_states[d.object_path] = res_state
            return res_state
        res = hash_file(HashJob(d.object_path, (st.st_dev, st.st_ino), frozenset(algs), st.st_size),
                        cancel)
        if res.error is not None:
            state = (res.error_kind or "unreadable", res.error)
        else:
            reasons = []
            if res.size != d.size:
                reasons.append(f"object has {res.size} bytes, the image expects {d.size}")
            if hexname is not None:
                alg = "sha256" if naming == "sha256-content" else naming
                got = res.get(alg)
                if got is not None and got != hexname:
                    reasons.append(f"{'content sha256' if alg == 'sha256' else 'fs-verity digest'} "
                                   f"{got} does not match the object name")
            if d.digest:
                got = res.get("fsverity-sha256" if len(d.digest) == 64 else "fsverity-sha512")
                if got != d.digest:
                    reasons.append(f"fs-verity digest {got} does not match the image DIGEST")
            state = ("corrupt", "; ".join(reasons)) if reasons else \
                ("verified", "+".join(sorted(algs)) + " match")
        if state[0] != "cancelled":
            self.object_states[d.object_path] = state
        return state

    # -- search ------------------------------------------------------------------------------
    def search(self, source: BrowseSource, image: StoreImage | None, query: str,
               cancel: threading.Event | None = None) -> list[tuple[bytes, str]]:
        """Paths of *source* matching a glob (or plain substring), or objects by digest prefix.

        A query of hex digits (optionally ``xx/`` style, at least 4) is a digest/object prefix;
        it needs the index and matches payload names and metacopy digests.  Anything else is a
        glob: with a ``/`` it matches the whole path, else the name; a query without glob
        characters matches as a substring of the name.  Returns (path, why).
        """
        q = query.strip()
        if not q:
            return []
        key = q.replace("/", "").lower()
        out: list[tuple[bytes, str]] = []
        if len(key) >= 4 and is_hex(key) and "*" not in q:
            out = self._search_digest(source, image, key)
            if out:
                return out
        pat = q if any(c in q for c in "*?[") else f"*{q}*"
        whole = "/" in q
        bpat = os.fsencode(pat)
        stack = [b"/"]
        while stack:
            if cancel is not None and cancel.is_set():
                break
            d = stack.pop()
            for n in sorted(source.listdir(d), key=lambda n: n.name, reverse=True):
                if n.kind == "error":
                    continue
                target = n.path if whole else n.name
                if fnmatch.fnmatchcase(target, bpat):
                    out.append((n.path, n.kind))
                    if len(out) >= SEARCH_LIMIT:
                        return sorted(out)
                if n.kind == "dir":
                    stack.append(n.path)
        return sorted(out)

    def _search_digest(self, source: BrowseSource, image: StoreImage | None,
                       key: str) -> list[tuple[bytes, str]]:
        idx = self.ensure_index()
        layers = [n for n in (image.layers if image is not None else [])]
        if isinstance(source, LayerSource):
            layers = [source.reader.layer.id]
        out: list[tuple[bytes, str]] = []
        seen: set[bytes] = set()
        for lid in layers:
            b = idx.blobs.get(lid)
            if b is None:
                continue
            for r in b.refs:
                name = r.payload.replace("/", "").lower()
                dig = r.digest.hex() if r.digest else ""
                if name.startswith(key) or dig.startswith(key):
                    if r.path in seen:
                        continue
                    n = source.node(r.path)
                    if n is None or n.layer != lid:
                        continue   # hidden in the merged view
                    seen.add(r.path)
                    out.append((r.path, f"object {r.payload}"))
        return sorted(out)

    # -- overview (figures in .store_rows) ---------------------------------------------------
    def totals(self):
        from inspector.tui.widgets.store_rows import totals
        return totals(self)

    def image_rows(self):
        from inspector.tui.widgets.store_rows import image_rows
        return image_rows(self)

    def layer_rows(self, inode_counts: dict[str, int] | None = None):
        from inspector.tui.widgets.store_rows import layer_rows
        return layer_rows(self, inode_counts)

    def count_inodes(self, layer_id: str) -> int | None:
        from inspector.tui.widgets.store_rows import count_inodes
        return count_inodes(self, layer_id)


def open_store_fast(target: str | None, basedir: str | None) -> tuple[Store, bool]:
    """open_store, minus the whole-image walk it does for a single image with --basedir.

    ``bare.open_images`` reads every payload of the image to decide how objects are named
    (14.7 s on a 1M-inode image) before anything can be shown.  Here the image opens without
    a basedir (instant), the basedir is attached, and the caller decides the naming later in
    a worker (:meth:`Session.decide_naming`).  Returns (store, naming_pending).  Adapter for a
    gap in the store layer: a lazy naming decision there would make this unnecessary.
    """
    from inspector.stores.discover import open_store
    if target is None or basedir is None or not os.path.isfile(target):
        return open_store(target, basedir), False
    store = open_store(target, None)
    if store.kind != "image":
        return open_store(target, basedir), False
    bd = Path(os.path.abspath(basedir))
    for lid, layer in list(store.layers.items()):
        store.layers[lid] = replace(layer, object_dir=bd)
    store.object_dirs.append(bd)
    store.notes = [n for n in store.notes if not n.startswith("no --basedir")]
    store.details["basedir"] = str(bd)
    return store, True


_GC_LOCK = threading.Lock()
_GC_DEPTH = 0


@contextmanager
def _gc_paused():
    """No cyclic GC while an index of millions of small objects is built in a thread.

    Each gen-2 collection would traverse everything built so far while holding the GIL (on a
    1M-inode image: pauses up to 1.3 s that freeze the interface, 8 s in total); the index
    holds no reference cycles.  Afterwards the survivors are frozen out of future collections.
    """
    global _GC_DEPTH
    with _GC_LOCK:
        if _GC_DEPTH == 0:
            gc.disable()
        _GC_DEPTH += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_DEPTH -= 1
            if _GC_DEPTH == 0:
                gc.freeze()
                gc.enable()


