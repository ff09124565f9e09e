"""`mkimage` (a mkcomposefs-compatible image writer) and `demo` (a small store to explore).

``cfs-inspect mkimage`` takes mkcomposefs's options with the same meaning, so a mkcomposefs
command line works unchanged after it; the image is byte-identical to mkcomposefs 1.0.8's.
Unlike mkcomposefs it never leaves a partial (0-byte) output behind: the image is written to
a temporary file next to IMAGE and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import os
import sys

from inspector.errors import InspectError

VERSION_MAX = 1


def _version(text: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid version {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"invalid version {text!r}")
    return v


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "mkimage", parents=[common],
        help="write a composefs image from a directory or a dump (as mkcomposefs)",
        description="Write a composefs image byte-identical to mkcomposefs 1.0.8. SOURCE is a "
                    "directory, or with --from-file a composefs-dump(5) file ('-' = stdin). "
                    "IMAGE '-' writes to standard output. CFS_PARSE_STRICT=1 turns on "
                    "mkcomposefs's strict dump parsing.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("image", metavar="IMAGE", nargs="?")
    p.add_argument("--from-file", action="store_true",
                   help="SOURCE is a composefs-dump(5) file")
    p.add_argument("--min-version", type=_version, metavar="N", default=None,
                   help="lowest composefs format version to write (default 0)")
    p.add_argument("--max-version", type=_version, metavar="N", default=None,
                   help="highest composefs format version to write (default 1)")
    p.add_argument("--use-epoch", action="store_true", help="set every mtime to 0")
    p.add_argument("--skip-devices", action="store_true",
                   help="drop block and character devices (including whiteouts)")
    p.add_argument("--skip-xattrs", action="store_true", help="drop all xattrs")
    p.add_argument("--user-xattrs", action="store_true", help="keep only user.* xattrs")
    p.add_argument("--digest-store", metavar="DIR",
                   help="copy files over 64 bytes into DIR/xx/<digest> (directory SOURCE)")
    p.add_argument("--print-digest", action="store_true",
                   help="print the image's fs-verity digest")
    p.add_argument("--print-digest-only", action="store_true",
                   help="print the digest and write no image (IMAGE not needed)")
    p.add_argument("--threads", metavar="N", type=int, default=None,
                   help="accepted for compatibility; the output does not depend on it")
    p.set_defaults(func=cmd_mkimage)

    d = subparsers.add_parser(
        "demo", parents=[common],
        help="build a small containers/storage-style demo store and open it",
        description="Build a small, deterministic containers/storage graphroot (three images "
                    "over composefs layers, shared objects, a whiteout, a plain layer) in DIR "
                    "(default: a new temporary directory), then open the TUI on it.")
    d.add_argument("dir", metavar="DIR", nargs="?")
    d.add_argument("--no-open", action="store_true", help="only build the store")
    d.set_defaults(func=cmd_demo)


def versions(min_v: int | None, max_v: int | None) -> tuple[int, int]:
    """mkcomposefs's rules: defaults 0..1; if only one is given the other defaults to 0, and
    a maximum below the minimum is raised to it."""
    if min_v is None and max_v is None:
        return 0, 1
    lo = min_v or 0
    hi = max_v if max_v is not None else 0
    if hi < lo:
        hi = lo
    if lo > VERSION_MAX or hi > VERSION_MAX:
        raise InspectError(f"unsupported composefs version {max(lo, hi)} "
                           f"(this writer supports 0..{VERSION_MAX})")
    return lo, hi


def cmd_mkimage(args) -> int:
    from inspector.composefs.dumpfile import read_dump
    from inspector.composefs.fsverity import fsverity_digest
    from inspector.composefs.writer import WriterOptions, build_image
    from inspector.composefs.writer.output import write_atomic, write_stdout
    from inspector.composefs.writer.source import read_directory

    if args.image is None and not args.print_digest_only:
        print("cfs-inspect mkimage: error: IMAGE is required (unless --print-digest-only)",
              file=sys.stderr)
        return 2
    if args.image is not None and args.print_digest_only:
        print("cfs-inspect mkimage: error: --print-digest-only takes no IMAGE", file=sys.stderr)
        return 2
    lo, hi = versions(args.min_version, args.max_version)
    opts = WriterOptions(min_version=lo, max_version=hi, use_epoch=args.use_epoch,
                         skip_devices=args.skip_devices, skip_xattrs=args.skip_xattrs,
                         user_xattrs=args.user_xattrs)
    if args.image == "-":
        try:
            if sys.stdout.isatty():
                raise InspectError("refusing to write an image to a terminal", path="-")
        except (AttributeError, ValueError):
            pass
    if args.from_file:
        root = read_dump(args.source)
    else:
        if args.source == "-":
            raise InspectError("a directory SOURCE cannot be '-' (use --from-file)")
        root = read_directory(args.source, digest_store=args.digest_store,
                              skip_devices=args.skip_devices, skip_xattrs=args.skip_xattrs,
                              user_xattrs=args.user_xattrs)
    image = build_image(root, opts)
    if args.image == "-":
        write_stdout(image)
    elif args.image is not None:
        write_atomic(image, args.image)
    if args.print_digest or args.print_digest_only:
        sys.stdout.write(fsverity_digest(image).hex() + "\n")
        sys.stdout.flush()
    return 0


def cmd_demo(args) -> int:
    from inspector.stores.demo import build_demo

    path = build_demo(args.dir)
    if args.no_open:
        print(path)
        return 0
    try:
        from inspector.tui.app import run_app
    except ImportError:
        print(path)
        print("(the TUI is not available in this build; inspect the store with "
              f"`cfs-inspect verify {path}` or `cfs-inspect dedup {path}`)", file=sys.stderr)
        return 0
    rc = int(run_app(os.fspath(path)) or 0)
    print(f"demo store kept in {path}", file=sys.stderr)
    return rc
