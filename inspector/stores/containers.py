"""containers/storage graphroots (Podman, Buildah, CRI-O) with or without composefs layers.

What is read (docs/stores.md §2): ``overlay-layers/layers.json`` and ``overlay-images/images.json``
for names, parents and digests; per layer ``overlay/<id>/composefs-data/composefs.blob`` (the
composefs image) and ``overlay/<id>/diff`` (its flat object store); and the layer big-data
``zstd-chunked-layer-data`` (``{"format":1}`` = flat) which corroborates the blob.

Whole-store damage (layers.json or images.json missing or garbled) raises StoreError naming the
file, because without it nothing can be attributed.  Damage confined to one layer (a bad entry,
a garbled marker) becomes a problem line on that layer and the rest still loads.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path

from inspector.errors import StoreError
from inspector.stores import fsutil
from inspector.stores.model import Layer, Store, StoreImage

BLOB_REL = Path("composefs-data") / "composefs.blob"
LAYER_DATA_KEY = "zstd-chunked-layer-data"
TOC_KEY = "zstd-chunked-manifest"

_PLAIN_KEY = re.compile(r"^[.0-9a-z]+$")


def bigdata_name(key: str) -> str:
    """On-disk file name of a big-data *key* (``makeBigDataBaseName``).

    Keys made only of ``[.0-9a-z]`` are stored verbatim; anything else as ``=`` + standard
    base64 with padding, so keys containing ``/`` or ``:`` stay one path component.
    """
    if _PLAIN_KEY.match(key):
        return key
    return "=" + base64.b64encode(key.encode("utf-8")).decode("ascii")


def bigdata_key(name: str) -> str | None:
    """Inverse of :func:`bigdata_name`; None when a ``=`` name is not valid base64/UTF-8."""
    if not name.startswith("="):
        return name
    try:
        return base64.b64decode(name[1:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def is_graphroot(path: Path) -> bool:
    """The trio that makes a graphroot: both metadata JSON files and the driver home."""
    return (fsutil.lexists(path / "overlay-layers" / "layers.json")
            and fsutil.lexists(path / "overlay-images" / "images.json")
            and fsutil.is_dir(path / "overlay"))


def looks_like_graphroot(path: Path) -> bool:
    """Weaker test used to give a precise error: any of the trio is there."""
    return any(fsutil.lexists(path / p) for p in ("overlay-layers", "overlay-images"))


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _load_array(path: Path, what: str) -> list:
    if not fsutil.lexists(path):
        raise StoreError(f"{what} is missing", path=path)
    data = fsutil.read_json(path)
    if not isinstance(data, list):
        raise StoreError(f"expected a JSON array of {what} entries, got {type(data).__name__}",
                         path=path)
    return data


def list_bigdata(dirpath: Path) -> dict[str, str]:
    """Big-data key -> on-disk file name for one layer/image big-data directory."""
    out: dict[str, str] = {}
    for name in fsutil.listdir(dirpath):
        key = bigdata_key(name)
        out[key if key is not None else name] = name
    return out


def _layer_data_format(graphroot: Path, layer_id: str) -> tuple[int | None, str | None]:
    """Read the ``{"format":N}`` marker: (format, problem)."""
    path = graphroot / "overlay-layers" / layer_id / bigdata_name(LAYER_DATA_KEY)
    if not fsutil.lexists(path):
        return None, None
    try:
        data = fsutil.read_json(path)
    except StoreError as e:
        return None, f"layer-data marker unreadable: {e}"
    fmt = data.get("format") if isinstance(data, dict) else None
    if _int(fmt) is None:
        return None, f"layer-data marker {path} has no integer \"format\": {json.dumps(data)[:80]}"
    return fmt, None


def _read_layer(graphroot: Path, entry: dict) -> Layer:
    lid = entry["id"]
    problems: list[str] = []
    layer_dir = graphroot / "overlay" / lid
    blob = layer_dir / BLOB_REL
    diff = layer_dir / "diff"
    has_blob = fsutil.lexists(blob)
    if has_blob and not fsutil.is_file(blob):
        problems.append(f"composefs blob {blob} is not a regular file")
    fmt, marker_problem = _layer_data_format(graphroot, lid)
    if marker_problem:
        problems.append(marker_problem)
    if has_blob and fmt is not None and fmt != 1:
        problems.append(f"composefs blob present but layer-data marker says format {fmt} "
                        "(expected 1 = flat)")
    if not has_blob and fmt == 1:
        problems.append("layer-data marker says format 1 (flat, composefs) but "
                        f"{BLOB_REL} is missing")
    if not fsutil.is_dir(layer_dir):
        problems.append(f"layer directory {layer_dir} is missing")
    elif has_blob and not fsutil.is_dir(diff):
        problems.append(f"composefs layer has no object directory {diff}")
    flags = entry.get("flags")
    if isinstance(flags, dict) and flags.get("incomplete"):
        problems.append("layer is incomplete (flags.incomplete): an interrupted pull or commit")
    extra: list[tuple[str, str]] = []
    for key in ("compressed-diff-digest", "compressed-size", "toc-digest", "compression",
                "uidset", "gidset", "flags", "big-data-names", "metadata", "mountlabel"):
        if key in entry:
            v = entry[key]
            extra.append((key, v if isinstance(v, str) else json.dumps(v)))
    if fmt is not None:
        extra.append(("layer-data-format", str(fmt)))
    if not has_blob:
        extra.append(("diff", str(diff)))
    names = entry.get("names")
    return Layer(
        id=lid,
        parent=_str(entry.get("parent")) or None,
        composefs=has_blob,
        blob=blob if has_blob else None,
        object_dir=diff if has_blob and fsutil.is_dir(diff) else None,   # never a symlinked diff/
        names=tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else (),
        created=_str(entry.get("created")),
        diff_digest=_str(entry.get("diff-digest")),
        diff_size=_int(entry.get("diff-size")),
        problems=tuple(fsutil.safe_text(p) for p in problems),   # ids come from JSON
        extra=tuple(extra),
    )


def _chain(store: Store, top: str) -> tuple[tuple[str, ...], list[str]]:
    """Walk ``parent`` from the top layer: (ids top first, problems)."""
    chain: list[str] = []
    problems: list[str] = []
    cur: str | None = top
    while cur is not None:
        if cur in chain:
            problems.append(f"layer parent chain loops at {fsutil.safe_text(cur)}")
            break
        chain.append(cur)
        layer = store.layers.get(cur)
        if layer is None:
            problems.append(f"layer {fsutil.safe_text(cur)} is not in layers.json")
            break
        cur = layer.parent
    return tuple(chain), problems


def open_graphroot(graphroot: Path) -> Store:
    """Load a graphroot (a directory with overlay-layers/, overlay-images/, overlay/)."""
    graphroot = Path(graphroot)
    store = Store(kind="containers-storage", path=graphroot, object_naming="sha256-content")
    layers_json = graphroot / "overlay-layers" / "layers.json"
    images_json = graphroot / "overlay-images" / "images.json"
    layer_entries = _load_array(layers_json, "layers.json")
    image_entries = _load_array(images_json, "images.json")

    for i, entry in enumerate(layer_entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            store.problems.append(f"{layers_json}: entry {i} has no string \"id\", skipped")
            continue
        lid = entry["id"]
        if "/" in lid or "\0" in lid or lid in (".", ".."):
            store.problems.append(f"{layers_json}: entry {i} has an unsafe id "
                                  f"'{fsutil.safe_text(lid)}', skipped")
            continue
        if lid in store.layers:
            store.problems.append(f"{layers_json}: layer {fsutil.safe_text(lid)} listed twice, "
                                  "first kept")
            continue
        store.layers[lid] = _read_layer(graphroot, entry)

    for i, entry in enumerate(image_entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            store.problems.append(f"{images_json}: entry {i} has no string \"id\", skipped")
            continue
        top = _str(entry.get("layer"))
        chain, problems = _chain(store, top) if top else ((), [])
        names = entry.get("names")
        store.images.append(StoreImage(
            id=entry["id"],
            names=tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else (),
            layers=chain,
            digest=_str(entry.get("digest")),
            created=_str(entry.get("created")),
            problems=tuple(problems),
        ))

    for layer in store.layers.values():
        if layer.composefs and layer.object_dir is not None:
            store.object_dirs.append(layer.object_dir)
    n_cfs = sum(1 for layer in store.layers.values() if layer.composefs)
    store.details["composefs_layers"] = n_cfs
    store.details["layers"] = len(store.layers)
    if n_cfs == 0 and store.layers:
        store.notes.append(f"0 composefs layers of {len(store.layers)}"
                           + (" (rootless: containers/storage refuses composefs in user "
                              "namespaces)" if _is_rootless(graphroot) else ""))
    # names in these lines come from the store: escape control bytes for the terminal
    store.problems[:] = [fsutil.safe_text(x) for x in store.problems]
    store.notes[:] = [fsutil.safe_text(x) for x in store.notes]
    return store


def _is_rootless(graphroot: Path) -> bool:
    """A graphroot owned by a non-root user (the rootless default lives in its home)."""
    try:
        return os.lstat(graphroot).st_uid != 0
    except OSError:
        return False


def read_layer_toc(graphroot: Path, layer_id: str) -> dict | None:
    """The layer's zstd:chunked TOC (big-data ``zstd-chunked-manifest``) parsed, or None.

    Read on demand only (the TUI's layer view): TOCs of large layers are megabytes of JSON.
    Raises StoreError when the file exists but is not a JSON object.
    """
    if "/" in layer_id or "\0" in layer_id or layer_id in ("", ".", ".."):
        raise StoreError(f"invalid layer id '{fsutil.safe_text(layer_id)}'")
    path = Path(graphroot) / "overlay-layers" / layer_id / bigdata_name(TOC_KEY)
    if not fsutil.lexists(path):
        return None
    data = fsutil.read_json(path)
    if not isinstance(data, dict):
        raise StoreError("zstd:chunked TOC is not a JSON object", path=path)
    return data
