"""composefs-info compatible commands: dump, ls, objects, missing-objects, measure-file.

Written to a pipe or file, their output is byte-identical to composefs-info.  Written to a
terminal, ``objects``/``missing-objects`` escape control bytes (composefs-info prints payloads
raw, quirk 6); dump and ls are already fully escaped by the format itself.
"""

from __future__ import annotations

import argparse
import os
import sys

from inspector.composefs.dump import (collect_objects, dump_image, ls_lines, missing_objects,
                                      payload_refs, check_filter)
from inspector.composefs.escape import escape
from inspector.composefs.fsverity import fsverity_digest_fd
from inspector.commands.common import json_text, open_images, out_bytes, print_json, stdout_is_tty
from inspector.errors import InspectError

EXIT_BAD = 2


def _filters(args) -> list[bytes] | None:
    f = getattr(args, "filter", None)
    if not f:
        return None
    try:
        return check_filter(f)
    except ValueError as e:
        raise InspectError(str(e)) from None


def cmd_dump(args) -> int:
    filt = _filters(args)
    out = out_bytes()
    for img in open_images(args.images):
        with img:
            dump_image(img, out, filt)
    out.flush()
    return 0


def _ls_entry_json(img, e) -> dict:
    ino = e.inode
    d = {"path": json_text(e.path)}
    if e.link_primary is not None:
        d["type"] = "hardlink"
        d["target"] = json_text(e.link_primary)
        return d
    mode = img.display_mode(ino)
    d["type"] = {0o040000: "dir", 0o120000: "lnk", 0o100000: "reg", 0o020000: "chr", 0o060000: "blk",
                 0o010000: "fifo", 0o140000: "sock"}.get(mode & 0o170000, "unknown")
    if img.is_whiteout(ino):
        d["type"] = "whiteout"
    if ino.is_lnk():
        d["target"] = json_text(img.read_link(ino))
    elif ino.is_reg():
        p = img.payload(ino)
        if p is not None and not img.is_whiteout(ino):
            d["payload"] = json_text(p)
    return d


def cmd_ls(args) -> int:
    filt = _filters(args)
    images = open_images(args.images)
    if args.json:
        result = []
        for img in images:
            from inspector.composefs.dump import require_composefs
            require_composefs(img)
            entries = [_ls_entry_json(img, e) for e in img.walk(filt) if e.depth > 0]
            result.append({"image": img.path, "entries": entries})
        print_json(result)
        return 0
    out = out_bytes()
    for img in images:
        with img:
            buf = []
            for line in ls_lines(img, filt):
                buf.append(line)
                if len(buf) >= 4096:
                    out.write(b"".join(buf))
                    buf.clear()
            out.write(b"".join(buf))
    out.flush()
    return 0


def _write_payloads(payloads: list[bytes]) -> None:
    out = out_bytes()
    tty = stdout_is_tty()
    out.write(b"".join((escape(p) if tty else p) + b"\n" for p in payloads))
    out.flush()


def _objects_json(images, payloads: list[bytes], filt) -> list[dict]:
    wanted = set(payloads)
    paths: dict[bytes, list[str]] = {p: [] for p in payloads}
    for img in images:
        for payload, e in payload_refs(img, filt):
            if payload in wanted:
                paths[payload].append(f"{img.path}:{json_text(e.path)}")
    return [{"object": json_text(p), "paths": paths[p]} for p in payloads]


def cmd_objects(args) -> int:
    filt = _filters(args)
    images = open_images(args.images)
    payloads = collect_objects(images, filt)
    if args.json:
        print_json(_objects_json(images, payloads, filt))
    else:
        _write_payloads(payloads)
    return 0


def cmd_missing(args) -> int:
    filt = _filters(args)
    images = open_images(args.images)
    missing = missing_objects(images, args.basedir, filt)
    if args.json:
        print_json({"basedir": args.basedir, "missing": _objects_json(images, missing, filt)})
    else:
        _write_payloads(missing)
    return 1 if missing else 0


def cmd_measure(args) -> int:
    if not args.files:
        print("No files specified", file=sys.stderr)
        return EXIT_BAD
    out = out_bytes()
    status = 0
    results = []
    for name in args.files:
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            print(f"cfs-inspect: failed to measure '{name}': {e.strerror}", file=sys.stderr)
            status = EXIT_BAD
            continue
        try:
            import stat
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                print(f"cfs-inspect: failed to measure '{name}': not a regular file", file=sys.stderr)
                status = EXIT_BAD
                continue
            digest = fsverity_digest_fd(fd).hex()
        except OSError as e:
            print(f"cfs-inspect: failed to measure '{name}': {e.strerror}", file=sys.stderr)
            status = EXIT_BAD
            continue
        finally:
            os.close(fd)
        if args.json:
            results.append({"file": name, "fsverity_sha256": digest})
        else:
            out.write(digest.encode() + b"\n")
    if args.json:
        print_json(results)
    out.flush()
    return status


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dump", parents=[common], help="composefs-dump(5) text of images (as composefs-info dump)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("ls", parents=[common], help="list paths, link targets and payloads (as composefs-info ls)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("objects", parents=[common], help="sorted unique payloads of all images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_objects)

    p = sub.add_parser("missing-objects", parents=[common],
                       help="payloads absent from --basedir (exit 1 when any is missing)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_missing)

    p = sub.add_parser("measure-file", parents=[common], help="fs-verity sha256 digest of files")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.set_defaults(func=cmd_measure)
