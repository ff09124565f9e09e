"""Store part of the doctor: per image composefs vs plain layers, blob health, digest coverage.

The doctor needs little from a store, described by the :class:`StoreLike` protocol below; the
shared store engine (:mod:`inspector.stores.containers`, model in :mod:`inspector.stores.model`)
satisfies it, and :func:`open_containers_store` is the one adapter between them.  Blobs are
read with the composefs reader to count payloads with and without an fs-verity DIGEST: blobs
made by containers/storage before container-libs PR #816 carry none, so nothing in them can be
verified (stores.md §2.5).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Protocol, Sequence

from inspector.errors import InspectError, StoreError
from inspector.stores.fsutil import list_names

from .model import Finding, ImageSummary, LayerSummary, StoreSummary

_S_IFMT = 0o170000
_S_IFREG = 0o100000


class LayerLike(Protocol):
    id: str
    composefs: bool
    blob: Path | None
    object_dir: Path | None
    problems: tuple[str, ...]
    extra: tuple[tuple[str, str], ...]


class ImageLike(Protocol):
    id: str
    names: tuple[str, ...]
    layers: tuple[str, ...]          # top first


class StoreLike(Protocol):
    path: Path
    images: Sequence[ImageLike]
    layers: Mapping[str, LayerLike]
    problems: list[str]


def resolve_graphroot(path: Path) -> Path:
    """PATH itself or PATH/storage (``cfs-inspect doctor /var/lib/containers``)."""
    from inspector.stores.containers import is_graphroot
    if is_graphroot(path):
        return path
    if is_graphroot(path / "storage"):
        return path / "storage"
    raise StoreError("not a containers/storage graphroot (no overlay-layers/layers.json, "
                     "overlay-images/images.json and overlay/)", path=path)


def open_containers_store(path: str | os.PathLike) -> StoreLike:
    """Adapter to the store engine: a loaded containers/storage graphroot."""
    from inspector.stores.containers import open_graphroot
    return open_graphroot(resolve_graphroot(Path(path)))


@dataclass(frozen=True, slots=True)
class BlobCount:
    status: str            # "ok", "missing", "unreadable", "invalid"
    with_digest: int
    without_digest: int
    error: str = ""


def count_digests(blob: Path) -> BlobCount:
    """Distinct payloads of a blob's regular files, split by whether they carry a DIGEST."""
    from inspector.composefs.image import open_image
    try:
        st = os.lstat(blob)
    except FileNotFoundError:
        return BlobCount("missing", 0, 0, "no such file")
    except OSError as e:
        return BlobCount("unreadable", 0, 0, e.strerror or str(e))
    if not stat.S_ISREG(st.st_mode):
        return BlobCount("invalid", 0, 0, "not a regular file")
    try:
        fd = os.open(blob, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        os.close(fd)
    except OSError as e:
        return BlobCount("unreadable", 0, 0, e.strerror or str(e))
    with_d: set[bytes] = set()
    all_p: set[bytes] = set()
    try:
        with open_image(blob) as img:
            if img.is_plain_erofs:
                return BlobCount("invalid", 0, 0, "plain EROFS image without a composefs header")
            for e in img.walk():
                if e.link_primary is not None or e.inode.mode & _S_IFMT != _S_IFREG:
                    continue
                p = img.payload(e.inode)
                if not p:
                    continue
                all_p.add(p)
                if img.digest(e.inode):
                    with_d.add(p)
    except InspectError as e:
        return BlobCount("invalid", 0, 0, str(e))
    except OSError as e:
        return BlobCount("unreadable", 0, 0, e.strerror or str(e))
    return BlobCount("ok", len(with_d), len(all_p) - len(with_d))


def _rel(store: StoreLike, p: Path | None) -> str | None:
    if p is None:
        return None
    try:
        return str(Path(p).relative_to(store.path))
    except ValueError:
        return str(p)


def _marked_flat(layer: LayerLike) -> bool:
    return ("layer-data-format", "1") in tuple(getattr(layer, "extra", ()) or ())


def summarize(store: StoreLike, source: str) -> StoreSummary:
    layers: list[LayerSummary] = []
    for lid, layer in store.layers.items():
        if layer.composefs and layer.blob is not None:
            c = count_digests(Path(layer.blob))
            layers.append(LayerSummary(lid, True, _rel(store, layer.blob), c.status,
                                       c.with_digest, c.without_digest))
        elif _marked_flat(layer):
            # Flat (composefs) layer-data marker but no blob: the layer cannot be mounted.
            blob = Path(store.path) / "overlay" / lid / "composefs-data" / "composefs.blob"
            layers.append(LayerSummary(lid, True, _rel(store, blob), "missing", 0, 0))
        else:
            layers.append(LayerSummary(lid, False, None, "none", 0, 0))
    by_id = {l.id: l for l in layers}
    images = []
    for im in store.images:
        n = sum(1 for lid in im.layers if lid in by_id and by_id[lid].usable)
        images.append(ImageSummary(im.id, tuple(im.names), tuple(im.layers), n))
    return StoreSummary(str(store.path), source, tuple(images), tuple(layers))


def _short(ids: Iterable[str], limit: int = 8) -> str:
    ids = list(ids)
    s = ", ".join(i[:12] for i in ids[:limit])
    return s + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def findings(summary: StoreSummary, store: StoreLike | None, configured: bool,
             rootless: bool) -> list[Finding]:
    """Store findings; ``configured`` = use_composefs is effectively true."""
    out: list[Finding] = []
    src = summary.path
    n = len(summary.layers)
    c = summary.composefs_layer_count
    if n == 0:
        out.append(Finding("info", "store", "the store has no layers", src))
    else:
        out.append(Finding(
            "ok" if c else "info", "store",
            f"{c} of {n} layers are composefs (usable blob); {summary.fully_composefs_images} of "
            f"{len(summary.images)} images are composefs in every layer", src))
    if rootless and n and c == 0:
        out.append(Finding("info", "store",
                           "0 composefs layers: rootless storage (containers/storage refuses "
                           "composefs in user namespaces, container-libs#117)", src))
    for im in summary.images:
        label = im.names[0] if im.names else im.id[:12]
        plain = len(im.layers) - im.composefs_layers
        if im.composefs_layers and plain:
            out.append(Finding(
                "info", "store",
                f"image {label}: {im.composefs_layers} composefs and {plain} plain layers", src,
                "a mixed stack mounts fine; re-pull the image (zstd:chunked, or convert_images "
                "= \"true\") to convert the plain layers" if configured else ""))
        elif plain and configured and c:
            out.append(Finding(
                "info", "store", f"image {label}: all {plain} layers are plain", src,
                "pulled before use_composefs, or not through the zstd:chunked path: re-pull "
                "with enable_partial_images and convert_images = \"true\""))
    bad = {"missing": [], "unreadable": [], "invalid": []}
    none_, some = [], []
    for l in summary.layers:
        if l.blob_status in bad:
            bad[l.blob_status].append(l)
        elif l.digest_coverage == "none":
            none_.append(l)
        elif l.digest_coverage == "some":
            some.append(l)
    why = {"missing": "is missing", "unreadable": "cannot be read", "invalid": "is not a composefs image"}
    for status, ls in bad.items():
        for l in ls:
            out.append(Finding(
                "error", "store", f"layer {l.id[:12]}: composefs blob {why[status]}",
                f"{src}/{l.blob}",
                "the layer cannot be mounted as composefs: remove the images using it and "
                "pull them again"))
    if none_:
        out.append(Finding(
            "warning", "store",
            (f"{len(none_)} composefs blobs carry" if len(none_) > 1 else "1 composefs blob carries")
            + f" no fs-verity digests, so nothing in them can be verified: "
            f"{_short(l.id for l in none_)}",
            src,
            "blobs written before container-libs PR #816 (2026-05) have DIGEST \"-\"; after "
            "updating containers/storage, re-pull these images on a filesystem with fs-verity"))
    for l in some:
        out.append(Finding(
            "info", "store",
            f"layer {l.id[:12]}: {l.payloads_with_digest} of "
            f"{l.payloads_with_digest + l.payloads_without_digest} objects carry an fs-verity "
            "digest in the blob", f"{src}/{l.blob}",
            "objects hard-linked from other layers get no digest; verify them through their "
            "sha256 names (cfs-inspect verify)"))
    if store is not None:
        for p in store.problems:
            out.append(Finding("warning", "store", p, src))
        for lid, layer in store.layers.items():
            for p in layer.problems:
                if "composefs.blob" in p and "is missing" in p and _marked_flat(layer):
                    continue   # already reported as a missing blob
                out.append(Finding("warning", "store", f"layer {lid[:12]}: {p}", src))
    return out


def verity_samples(store: StoreLike, limit_objects: int = 64) -> list[tuple[str, str]]:
    """Existing files worth probing for fs-verity: every blob, then some objects."""
    out: list[tuple[str, str]] = []
    for layer in store.layers.values():
        if layer.composefs and layer.blob is not None:
            out.append((str(layer.blob), _rel(store, layer.blob) or str(layer.blob)))
    n = 0
    for layer in store.layers.values():
        if n >= limit_objects:
            break
        if not layer.composefs or layer.object_dir is None:
            continue
        try:
            subdirs = sorted(list_names(layer.object_dir))   # O_NOATIME listing
        except OSError:
            continue
        for sd in subdirs:
            if n >= limit_objects:
                break
            d = Path(layer.object_dir) / sd
            try:
                if not stat.S_ISDIR(os.lstat(d).st_mode):
                    continue
                names = sorted(list_names(d))
            except OSError:
                continue
            for name in names[:4]:
                p = d / name
                out.append((str(p), _rel(store, p) or str(p)))
                n += 1
                if n >= limit_objects:
                    break
    return out
