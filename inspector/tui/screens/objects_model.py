"""Rows of the Objects screen, built from the engine's :class:`StoreIndex` (no Textual here).

The analysis engine has the two views every figure comes from (the lstat inventory and the
blob reference index) but no flat "one row per object" list: ``dedup`` keeps per-object data
only for per-layer stores, and ``refs`` answers one object at a time.  This adapter joins the
two views into rows the screen can sort and filter quickly — it only counts, it judges
nothing (verify does that).  Sorting and filtering run on plain lists so a store with 100k+
objects stays responsive.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass
from typing import Callable

from inspector.analysis.objects import StoreIndex, is_hex

#: sort key name -> description shown in the header; `s` cycles in this order.
SORTS = ("size", "refs", "copies", "name")


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One object of the store: present in some object dir, referenced by some blob, or both."""

    name: str                      # "xx/yyyy..." as the store names it
    size: int | None               # the file's size; what an inode expects when it is missing
    refs: int                      # paths (over every layer's blob) that read it
    layers: tuple[str, ...]        # layers whose blob reads it or whose object dir holds it
    copies: int                    # physical files with this name (one per object dir)
    inodes: int                    # distinct inodes among them (hard links count once)
    state: str                     # "present", "missing", "unreferenced", "unlocated", or a
                                   # file kind ("lnk"...) when the object is not a regular file
    first_path: str | None         # a path that reads it (for display), surrogateescape str
    paths: tuple[str, ...]         # every path that reads it (for glob filters)
    digests: tuple[str, ...]       # fs-verity digests (hex) the blobs record for it

    @property
    def key(self) -> str:
        """The name without its slash, lower case: what a digest prefix is matched against."""
        n = self.name
        return (n[:2] + n[3:] if len(n) > 2 and n[2] == "/" else n).lower()

    @property
    def duplicates(self) -> int:
        """Extra physical copies a hard link could fold (copies held by distinct inodes)."""
        return max(self.inodes - 1, 0)


def build_rows(idx: StoreIndex, cancel: threading.Event | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[ObjectRow]:
    """One row per distinct object name, in name order."""
    refs_by_name: dict[str, list[tuple[str, bytes, bytes | None, int]]] = {}
    for lid, blob in idx.blobs.items():
        for payload, refs in blob.by_payload.items():
            lst = refs_by_name.setdefault(payload, [])
            for r in refs:
                lst.append((lid, r.path, r.digest, r.size))
    files_by_name: dict[str, list] = {}
    for d, files in idx.files.items():
        owners = idx.dir_layers(d)
        for name, f in files.items():
            files_by_name.setdefault(name, []).append((f, owners))
    metadata = idx.store.metadata_objects
    no_dir = {lid for lid, la in idx.store.layers.items() if la.object_dir is None}
    names = sorted(set(refs_by_name) | set(files_by_name) | set(metadata))
    total = len(names)
    rows: list[ObjectRow] = []
    append = rows.append
    empty: list = []
    for i, name in enumerate(names):
        if not i & 4095:
            if cancel is not None and cancel.is_set():
                break
            if progress is not None:
                progress(i, total)
        refs = refs_by_name.get(name, empty)
        held = files_by_name.get(name, empty)
        if len(refs) == 1 and len(held) <= 1:       # the common case, kept cheap
            lid, path, digest, rsize = refs[0]
            layers = (lid,) if not held or held[0][1] in ([lid], []) else tuple(
                dict.fromkeys([lid, *held[0][1]]))
            paths = (path.decode("utf-8", "surrogateescape"),)
            digests = (digest.hex(),) if digest else ()
        else:
            layers = tuple(dict.fromkeys([r[0] for r in refs]
                                         + [lid for _, owners in held for lid in owners]))
            paths = tuple(sorted({p.decode("utf-8", "surrogateescape") for _, p, _, _ in refs}))
            digests = tuple(sorted({d.hex() for _, _, d, _ in refs if d}))
        if held:
            f0 = held[0][0]
            if len(held) == 1:
                kind, inodes = f0.kind, 1
                odd = kind != "reg"
            else:
                kinds = {f.kind for f, _ in held}
                odd = bool(kinds - {"reg"})
                kind = sorted(kinds - {"reg"})[0] if odd else "reg"
                inodes = len({f.identity for f, _ in held})
            if odd:
                state = kind
            elif not refs and name not in metadata:
                state = "unreferenced"
            else:
                state = "present"
            size = f0.size
        else:
            inodes = 0
            if refs and all(r[0] in no_dir for r in refs):
                state = "unlocated"     # no object directory known (bare image, no --basedir)
            else:
                state = "missing" if refs else "metadata-missing"
            size = refs[0][3] if refs else None
        append(ObjectRow(name, size, len(refs), layers, len(held), inodes, state,
                         paths[0] if paths else None, paths, digests))
    if progress is not None:
        progress(total, total)
    return rows


def sort_rows(rows: list[ObjectRow], key: str) -> list[int]:
    """Indices of *rows* in display order for a sort key (biggest first, then by name)."""
    if key == "size":
        k = lambda i: (-(rows[i].size or 0), rows[i].name)          # noqa: E731
    elif key == "refs":
        k = lambda i: (-rows[i].refs, -(rows[i].size or 0), rows[i].name)   # noqa: E731
    elif key == "copies":
        k = lambda i: (-rows[i].inodes, -rows[i].copies, -(rows[i].size or 0),  # noqa: E731
                       rows[i].name)
    else:
        k = lambda i: rows[i].name                                    # noqa: E731
    return sorted(range(len(rows)), key=k)


_WILD = re.compile(r"[*?\[]")


def describe_filter(query: str) -> str:
    """How :func:`make_filter` reads *query* (shown under the input)."""
    q = query.strip()
    if not q:
        return "all objects"
    if _is_digest_query(q):
        return f"digest prefix {q}"
    if "/" in q:
        return f"path glob {q}"
    return f"file name {'glob' if _WILD.search(q) else 'containing'} {q}"


def _is_digest_query(q: str) -> bool:
    key = (q[:2] + q[3:] if len(q) > 2 and q[2] == "/" else q).lower()
    return len(key) >= 2 and is_hex(key)


def make_filter(query: str) -> Callable[[ObjectRow], bool] | None:
    """A predicate for *query*, None for "everything".

    * hex digits (an object name with or without its slash, or a prefix of it, or of an
      fs-verity digest a blob records): digest prefix;
    * containing ``/``: a glob over the full path (``fnmatch``: ``*`` also crosses ``/``); a
      pattern without wildcards matches that path and everything below it;
    * otherwise a glob over the file name; without wildcards, names containing the text.
    """
    q = query.strip()
    if not q:
        return None
    if _is_digest_query(q):
        key = (q[:2] + q[3:] if len(q) > 2 and q[2] == "/" else q).lower()
        return lambda r: r.key.startswith(key) or any(d.startswith(key) for d in r.digests)
    if "/" in q:
        pat = q if _WILD.search(q) else q.rstrip("/") + "*"
        if not pat.startswith("/") and not pat.startswith("*"):
            pat = "*/" + pat
        rx = re.compile(fnmatch.translate(pat))
        return lambda r: any(rx.match(p) for p in r.paths)
    pat = q if _WILD.search(q) else f"*{q}*"
    rx = re.compile(fnmatch.translate(pat))
    return lambda r: any(rx.match(p.rsplit("/", 1)[-1]) for p in r.paths)


def apply(rows: list[ObjectRow], order: list[int], query: str) -> list[int]:
    pred = make_filter(query)
    if pred is None:
        return order
    return [i for i in order if pred(rows[i])]
