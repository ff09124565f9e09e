"""``cfs-inspect open PATH``: the interactive inspector (also ``cfs-inspect PATH``)."""

from __future__ import annotations


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "open", parents=[common],
        help="open the interactive inspector on a store or an image (the default command)",
        description="Open the TUI: a store directory shows the store overview, an image file "
                    "the image browser.  Without PATH the default stores are searched.")
    p.add_argument("path", metavar="PATH", nargs="?", default=None,
                   help="store directory or composefs/EROFS image file")
    p.set_defaults(func=cmd_open)


def cmd_open(args) -> int:
    from inspector.tui.app import run_app

    return run_app(args.path, getattr(args, "basedir", None))
