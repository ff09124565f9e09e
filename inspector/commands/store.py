"""``verify``, ``dedup`` and ``refs``: the store-level questions admins ask.

Text output is for people (humanized sizes next to exact bytes, control bytes of names
escaped); ``--json`` carries the same figures (keys in docs/json.md).  Progress goes to stderr
only when stderr is a terminal, so pipes and logs stay clean.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from inspector.stores.fsutil import safe_text

#: Informational lists (not problems) are cut here in text output; --json has everything.
MAX_LISTED = 20

try:
    import humanize
except ImportError:  # pragma: no cover - humanize is a runtime dependency
    humanize = None


def register(subparsers, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "verify", parents=[common],
        help="check every referenced object: present, readable, size, content digests",
        description="Check the objects of a store (or of IMAGE files sharing --basedir): "
                    "presence, readability, size, sha256 names, fs-verity digests; report "
                    "orphans and suspicious entries. Exit 1 when any problem is found.")
    p.add_argument("path", metavar="PATH", help="store directory, or an image file")
    p.add_argument("images", metavar="IMAGE", nargs="*",
                   help="more image files sharing --basedir")
    p.add_argument("--jobs", "-j", type=int, metavar="N", default=None,
                   help="hashing threads (default: one per CPU)")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser(
        "dedup", parents=[common],
        help="shared objects between layers/images: what sharing saves, what deleting frees",
        description="Account for objects shared between layers and images: distinct, "
                    "physical and logical bytes, hard links, reflinks and reclaimable copies.")
    p.add_argument("path", metavar="PATH", help="store directory, or an image file")
    p.add_argument("images", metavar="IMAGE", nargs="*", help="more image files (with --basedir)")
    p.add_argument("--all-objects", action="store_true",
                   help="list every object in the text output (JSON always has them)")
    p.set_defaults(func=cmd_dedup)

    p = subparsers.add_parser(
        "refs", parents=[common],
        help="which images, layers and paths use an object, and where its copies are",
        description="OBJECT is an object name (xx/yyyy..., with or without the slash), an "
                    "fs-verity digest, a unique prefix of either (>= 6 hex digits), or "
                    "IMAGE:/path. Exit 1 when nothing matches, 2 when the prefix is ambiguous.")
    p.add_argument("path", metavar="PATH", help="store directory, or an image file")
    p.add_argument("object", metavar="OBJECT")
    p.set_defaults(func=cmd_refs)


# --------------------------------------------------------------------------- helpers


def size(n: int | None) -> str:
    """'12.8 KiB (13,100 bytes)': humanized for reading, exact for checking."""
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} bytes"
    human = humanize.naturalsize(n, binary=True) if humanize else f"{n / 1024:.1f} KiB"
    return f"{human} ({n:,} bytes)"


def short(lid: str | None) -> str:
    if lid is None:
        return "-"
    return lid[:12] if len(lid) == 64 else safe_text(lid)


def _open(args):
    from inspector.stores.discover import open_store
    return open_store(args.path, basedir=getattr(args, "basedir", None),
                      images=getattr(args, "images", None) or None)


def _emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _blob_errors(idx) -> list[dict]:
    """Layers whose composefs blob could not be read: dedup and refs still answer from the
    other layers, and say which ones they could not see (verify reports them as problems)."""
    return [{"layer": lid, "error": b.error} for lid, b in idx.blobs.items() if b.error]


def _write_blob_errors(out, errors: list[dict]) -> None:
    for e in errors:
        out.write(f"Warning: layer {short(e['layer'])}: {safe_text(e['error'])} "
                  "(its references are not counted)\n")


def _store_line(store) -> str:
    naming = {"sha256-content": "objects named by content sha256",
              "fsverity-sha256": "objects named by fs-verity sha256",
              "fsverity-sha512": "objects named by fs-verity sha512",
              "ostree": "ostree content objects",
              "unknown": "object names not digests"}.get(store.object_naming, store.object_naming)
    return f"{store.kind} at {safe_text(str(store.path))} ({naming})"


class _Progress:
    """A one-line, throttled progress indicator on a terminal stderr."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, nbytes: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        human = humanize.naturalsize(nbytes, binary=True) if humanize else f"{nbytes} B"
        sys.stderr.write(f"\rverifying: {done}/{total} files, {human} hashed\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# --------------------------------------------------------------------------- verify


def cmd_verify(args) -> int:
    from inspector.analysis.verify import verify_store   # the engine loads only when used
    if args.jobs is not None and args.jobs < 1:
        print("cfs-inspect: verify: --jobs must be at least 1", file=sys.stderr)
        return 2
    store = _open(args)
    prog = _Progress() if sys.stderr.isatty() else None
    cancel = threading.Event()
    try:
        rep = verify_store(store, jobs=args.jobs, progress=prog, cancel=cancel)
    finally:
        if prog:
            prog.finish()
    if args.json:
        _emit_json(rep.to_json())
        return rep.exit_code
    out = sys.stdout
    out.write(f"Store: {_store_line(store)}\n")
    out.write(f"Checked {rep.objects_checked} objects; hashed {rep.files_hashed} files, "
              f"{size(rep.bytes_hashed)}\n")
    for lid, v in rep.per_layer.items():
        imgs = ", ".join(safe_text(i) for i in v["images"]) or "no image"
        out.write(f"  layer {short(lid)} [{imgs}]: {v['referenced_objects']} objects referenced, "
                  f"{v['with_verity_digest']} with fs-verity digest ({v['digest_coverage']})\n")
    if rep.orphans and not any(p.kind == "orphan" for p in rep.problems):
        total = sum(o["size"] for o in rep.orphans)
        out.write(f"Unreferenced objects (not a problem here, collectable by GC): "
                  f"{len(rep.orphans)}, {size(total)}\n")
        for o in rep.orphans[:MAX_LISTED]:
            out.write(f"  {safe_text(o['object'])}  {size(o['size'])}\n")
        if len(rep.orphans) > MAX_LISTED:
            out.write(f"  ... and {len(rep.orphans) - MAX_LISTED} more (--json lists all)\n")
    if rep.cancelled:
        out.write("Verification was interrupted: results are incomplete.\n")
    if not rep.problems:
        out.write("No problems found.\n")
        return rep.exit_code
    errors = sum(1 for p in rep.problems if p.severity == "error")
    out.write(f"Problems: {len(rep.problems)} ({errors} errors, "
              f"{len(rep.problems) - errors} warnings)\n")
    for p in rep.problems:
        where = []
        if p.layer:
            where.append(f"layer {short(p.layer)}")
        if p.path:
            where.append(safe_text(p.path))
        if p.images:
            where.append("images: " + ", ".join(safe_text(i) for i in p.images))
        out.write(f"  {p.severity:<7} {p.kind:<17} {safe_text(p.object or '-')}\n")
        if where:
            out.write(f"          {'; '.join(where)}\n")
        out.write(f"          {safe_text(p.detail)}\n")
    return rep.exit_code


# --------------------------------------------------------------------------- dedup


def cmd_dedup(args) -> int:
    from inspector.analysis.dedup import dedup_store
    from inspector.analysis.objects import build_index
    store = _open(args)
    idx = build_index(store)
    rep = dedup_store(store, idx)
    errors = _blob_errors(idx)
    if args.json:
        _emit_json({**rep.to_json(), "blob_errors": errors})
        return 0
    out = sys.stdout
    d = rep.data
    out.write(f"Store: {_store_line(store)}\n")
    _write_blob_errors(out, errors)
    if rep.mode == "layers":
        _dedup_layers_text(out, store, d, args.all_objects)
    else:
        _dedup_images_text(out, d)
    return 0


def _dedup_layers_text(out, store, d: dict, all_objects: bool) -> None:
    t = d["totals"]
    k = t["objects_in_2plus_layers_by_kind"]
    rows = [
        ("composefs layers", str(t["composefs_layers"]), ""),
        ("distinct objects", str(t["distinct_objects"]), size(t["distinct_bytes"])),
        ("physical files", str(t["physical_files"]), size(t["physical_bytes"])),
        ("logical (all layers)", str(t["logical_files"]), size(t["logical_bytes"])),
        ("in 2+ layers", str(t["objects_in_2plus_layers"]),
         f"{size(t['objects_in_2plus_layers_bytes'])}: {k['hardlinked']} hard-linked, "
         f"{k['copied']} copied, {k['partially_hardlinked']} partially hard-linked"),
        ("saved by sharing", "", size(t["saved_by_sharing_bytes"])),
        ("reclaimable copies", "", size(t["reclaimable_bytes"])),
    ]
    rf = d["reflinks"]
    rows.append(("reflinked copies", "", {"unknown": "unknown (no FIEMAP on this filesystem)",
                                          "none": "none",
                                          "not-checked": "not checked"}.get(rf["status"], size(rf["bytes"]))))
    out.write("Totals\n")
    for label, n, extra in rows:
        out.write(f"  {label:<22} {n:>8}  {extra}\n")
    out.write("Per layer (objects, bytes; unique / shared with other layers)\n")
    for lid, v in d["per_layer"].items():
        out.write(f"  {short(lid)}  {v['objects']:>6} objects {size(v['bytes'])}\n"
                  f"      unique {v['unique_objects']} {size(v['unique_bytes'])}; shared "
                  f"{v['shared_objects']} {size(v['shared_bytes'])}; hard-linked to another layer "
                  f"{v['hardlinked_to_other_layer']}; copied in another layer "
                  f"{v['copied_in_other_layer']}\n")
    out.write("Per image\n")
    for label, v in d["per_image"].items():
        out.write(f"  {safe_text(label)}: layers {', '.join(short(x) for x in v['layers']) or '-'}"
                  f" (exclusive: {', '.join(short(x) for x in v['exclusive_layers']) or 'none'})\n"
                  f"      logical {size(v['logical_bytes'])}; freed if deleted "
                  f"{size(v['freed_if_deleted_bytes'])}; shared with other images "
                  f"{size(v['shared_with_other_images_bytes'])}\n")
    if d["matrix"]:
        out.write("Sharing matrix (objects in common / bytes)\n")
        for a, row in d["matrix"].items():
            cells = "  ".join(f"{short(b)}: {c['objects']} / {c['bytes']:,}" for b, c in row.items())
            out.write(f"  {short(a)}  {cells}\n")
    if d["top_duplicated"]:
        out.write("Top duplicated objects\n")
        for o in d["top_duplicated"]:
            out.write(f"  {o['object']}  {size(o['size'])} in {len(o['layers'])} layers, "
                      f"{o['inodes']} inode(s), {o['kind']}; reclaimable "
                      f"{size(o['reclaimable_bytes'])}\n")
    for o in d["unreferenced_expected"]:
        out.write(f"Unreferenced (expected): {o['object']} in {len(o['layers'])} layers: "
                  f"{o['reason']}\n")
    for o in d["unreferenced"]:
        out.write(f"Unreferenced: {safe_text(o['object'])} {size(o['size'])} in layers "
                  f"{', '.join(short(x) for x in o['layers'])}\n")
    if all_objects:
        out.write("Objects\n")
        for name, o in d["objects"].items():
            out.write(f"  {safe_text(name)}  {size(o['size'])}  layers "
                      f"{', '.join(short(x) for x in o['layers'])}  inode groups "
                      f"{o['inode_groups']}\n")


def _dedup_images_text(out, d: dict) -> None:
    out.write("Per image (distinct payload objects; bytes counted once per object / per path)\n")
    for label, v in d["per_image"].items():
        out.write(f"  {safe_text(label)}: {v['payload_objects']} objects, "
                  f"{size(v['payload_bytes'])}; {v['payload_paths']} paths, "
                  f"{size(v['file_bytes_by_path'])}\n")
    out.write(f"Logical (sum over images)  {size(d['logical_bytes'])}\n")
    out.write(f"Distinct objects           {d['distinct_objects']}, {size(d['distinct_bytes'])}\n")
    out.write(f"Physical files             {d['physical_files']}, {size(d['physical_bytes'])}\n")
    out.write(f"Saved by sharing           {size(d['saved_by_sharing_bytes'])}\n")
    out.write(f"Reclaimable                {size(d['reclaimable_bytes'])}\n")
    s = d["shared_by_multiple_images"]
    out.write(f"Shared by 2+ images        {s['objects']} objects, {size(s['bytes'])}\n")
    if d["missing_objects"]:
        out.write(f"Missing objects            {len(d['missing_objects'])} (run verify)\n")


# --------------------------------------------------------------------------- refs


def cmd_refs(args) -> int:
    from inspector.analysis.objects import build_index
    from inspector.analysis.refs import RefsAmbiguous, RefsNotFound, find_refs
    store = _open(args)
    idx = build_index(store)
    try:
        res = find_refs(store, args.object, idx)
    except RefsAmbiguous as e:
        if args.json:
            _emit_json({"query": args.object, "error": str(e), "candidates": e.candidates,
                        "answers": [], "physical_copies": []})
        print(f"cfs-inspect: {e}", file=sys.stderr)
        return 2
    except RefsNotFound as e:
        if args.json:
            _emit_json({"query": args.object, "error": str(e), "answers": [],
                        "physical_copies": []})
        print(f"cfs-inspect: {e}", file=sys.stderr)
        return 1
    errors = _blob_errors(idx)
    if args.json:
        _emit_json({**res.to_json(), "blob_errors": errors})
        return 0
    out = sys.stdout
    _write_blob_errors(out, errors)
    out.write(f"Object {safe_text(res.object)}  {size(res.size)}\n")
    for dg in res.fsverity_digests:
        out.write(f"  fs-verity digest {dg}\n")
    if res.answers:
        out.write(f"Referenced by {len(res.answers)} path(s):\n")
        for a in res.answers:
            vis = "" if a["visible"] else "  (hidden in the image's merged view)"
            out.write(f"  {safe_text(a['image'])}  layer {short(a['layer'])}  "
                      f"{safe_text(a['path'])}{vis}\n")
    else:
        out.write("Referenced by no image path.\n")
    if res.physical_copies:
        out.write("Physical copies (same group = same inode):\n")
        for c in res.physical_copies:
            out.write(f"  group {c['inode_group']}  nlink {c['nlink']}  "
                      f"{safe_text(c['path_in_store'])}\n")
    else:
        out.write("No physical copy present.\n")
    return 0
