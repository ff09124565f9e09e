"""Bare composefs images with an object directory given by ``--basedir`` (``kind="image"``).

Each image file is one StoreImage with one Layer (id = the file path as given, blob = the file,
object_dir = basedir).  Nothing says how the payloads are named, so ``object_naming`` is decided
from the payloads themselves (:func:`decide_object_naming`): ``fsverity-sha256`` when every
payload has the shape ``xx/<62 hex>`` that ``mkcomposefs --digest-store`` writes *and* every
DIGEST present equals the name (so verify can also check names), ``fsverity-sha512`` likewise
for ``xx/<126 hex>``, else ``unknown`` (verify checks DIGESTs only).  A containers/storage blob
given with ``--basedir`` has the same shape but content-sha256 names: its DIGESTs differ from
the names, so it is ``unknown``, never wrongly condemned.  The decision reads each image once
with the composefs reader at open time; when the image is damaged it stays ``unknown`` and the
analysis, which opens the image anyway, reports the damage.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from inspector.errors import InspectError, StoreError
from inspector.stores.model import Layer, ObjectNaming, Store, StoreImage

_SHA256_NAME = re.compile(rb"^[0-9a-f]{2}/[0-9a-f]{62}$")
_SHA512_NAME = re.compile(rb"^[0-9a-f]{2}/[0-9a-f]{126}$")


def decide_object_naming(payloads: Iterable[tuple[bytes, bytes | None]]) -> ObjectNaming:
    """``fsverity-sha256``/``-sha512`` when every payload is a digest path, else ``unknown``.

    *payloads* yields ``(payload, metacopy digest or None)``.  The shape alone is not enough:
    containers/storage blobs have the same ``xx/<62 hex>`` shape but name objects by content
    sha256.  So every payload that carries a digest must also equal it, and at least one must
    carry one; otherwise (or for an image without payloads) ``unknown``: verify then checks
    DIGESTs only and never condemns an object for its name.
    """
    kinds: set[str] = set()
    confirmed = False
    for p, digest in payloads:
        if digest is not None:
            if digest.hex().encode() != p.replace(b"/", b""):
                return "unknown"
            confirmed = True
        if _SHA256_NAME.match(p):
            kinds.add("fsverity-sha256")
        elif _SHA512_NAME.match(p):
            kinds.add("fsverity-sha512")
        else:
            return "unknown"
        if len(kinds) > 1:
            return "unknown"
    if not confirmed or not kinds:
        return "unknown"
    return kinds.pop()  # type: ignore[return-value]


def _image_payloads(path: Path) -> Iterable[tuple[bytes, bytes | None]]:
    from inspector.composefs.image import open_image  # the reader; may not exist yet

    img = open_image(path)
    for e in img.walk():
        if e.link_primary is not None:
            continue
        p = img.payload(e.inode)
        if p:
            yield p, img.digest(e.inode) or None


def naming_for_images(paths: list[Path]) -> ObjectNaming:
    def all_payloads() -> Iterable[tuple[bytes, bytes | None]]:
        for p in paths:
            yield from _image_payloads(p)
    try:
        return decide_object_naming(all_payloads())
    except (InspectError, OSError, ImportError):  # damaged image: the analysis reports it
        return "unknown"


def open_images(paths: list[Path], basedir: Path | None) -> Store:
    """A store of bare image files sharing one object directory (which may be None)."""
    paths = [Path(p) for p in paths]
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as e:
            raise StoreError(f"cannot access image: {e.strerror}", path=p) from None
        if not stat.S_ISREG(st.st_mode):
            raise StoreError("image is not a regular file", path=p)
    if basedir is not None and not os.path.isdir(basedir):
        raise StoreError("--basedir is not a directory", path=basedir)
    store = Store(kind="image", path=paths[0] if paths else (basedir or Path(".")),
                  object_naming="unknown")
    seen: set[str] = set()
    for p in paths:
        lid = str(p)
        if lid in seen:
            continue
        seen.add(lid)
        store.layers[lid] = Layer(id=lid, parent=None, composefs=True, blob=p,
                                  object_dir=basedir)
        store.images.append(StoreImage(id=lid, names=(p.name,), layers=(lid,)))
    if basedir is not None:
        store.object_dirs.append(basedir)
        store.object_naming = naming_for_images(paths)
    else:
        store.notes.append("no --basedir: payload objects cannot be located")
    store.details["basedir"] = str(basedir) if basedir is not None else None
    return store
