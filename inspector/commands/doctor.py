"""``cfs-inspect doctor [PATH]``: is composefs in use on this host, and if not, why?

Exit 0 when nothing needs action, 1 when a finding does (warning or error), 2 on bad input
(an unreadable PATH or --root).  ``--json`` prints the whole report (keys in docs/json.md).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "doctor", parents=[common],
        help="is composefs actually in use on this host, and if not, why?",
        description="Check the containers storage configuration, mkcomposefs, kernel support, "
                    "fs-verity and the store's layers; print a one-line verdict and findings.")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="containers/storage graphroot (or its parent, e.g. /var/lib/containers); "
                        "default: the configured graphroot")
    # --root is also accepted before the subcommand; SUPPRESS keeps that value.
    p.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS,
                   help="examine the system mounted at DIR instead of / (config, /proc, PATH)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspector.analysis.doctor import run_doctor
    from inspector.analysis.doctor.render import render_text

    root = getattr(args, "root", None) or "/"
    report = run_doctor(root=root, store_path=args.path)
    if getattr(args, "json", False):
        # ASCII: names from a store (C1 controls such as U+009B CSI) must not reach a terminal raw
        json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return report.exit_code
