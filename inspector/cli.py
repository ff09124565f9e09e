"""Command line: one argparse synopsis, global options before or after the subcommand.

Each area registers its subcommands from a module in :mod:`inspector.commands` (``register``
adds a subparser whose ``func(args) -> int`` runs it).  This file owns only what is common:
argument pre-processing (``cfs-inspect PATH`` opens the TUI), the shared options, one-line
errors and exit codes.

Exit codes: 0 success, 1 the check found problems, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from inspector.errors import InspectError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2

#: Modules under inspector.commands, each with ``register(subparsers, common)``.
COMMAND_MODULES = (
    "compat",     # dump ls objects missing-objects measure-file  (composefs-info compatible)
    "info",       # info stat
    "store",      # verify dedup refs
    "doctor",     # doctor
    "mkimage",    # mkimage demo
    "tui",        # open
)

#: Global options that take a value, so the pre-scan can skip their argument.
VALUE_OPTIONS = {"--basedir", "--filter", "--root"}


def common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand.

    The subcommand's copy uses SUPPRESS defaults so it never overwrites a value given before
    the subcommand (the standard argparse parent-parser trick).
    """
    p = argparse.ArgumentParser(add_help=False)
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--basedir", metavar="DIR", default=d(None),
                   help="object directory for image payloads (as composefs-info --basedir)")
    p.add_argument("--filter", metavar="NAME", action="append", default=d(None),
                   help="only this top-level name and its subtree (repeatable)")
    p.add_argument("--json", action="store_true", default=d(False),
                   help="machine-readable output (keys in docs/json.md)")
    return p


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cfs-inspect",
        description="Inspect composefs images and stores. `cfs-inspect PATH` opens the TUI.",
        parents=[common_options(False)],
    )
    # --root only matters to `doctor` (which also accepts it after the subcommand)
    parser.add_argument("--root", metavar="DIR", default="/",
                        help="host root prefix for `doctor` probes (default /)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = common_options(True)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"inspector.commands.{name}")
        except ModuleNotFoundError as e:  # an area not built yet
            if e.name == f"inspector.commands.{name}":
                continue
            raise
        mod.register(sub, common)
    return parser


def _subcommand_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def preprocess(argv: list[str], commands: set[str]) -> list[str]:
    """Insert ``open`` when the first positional word is not a subcommand (``cfs-inspect PATH``)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            break
        if word.startswith("-"):
            if word in VALUE_OPTIONS:
                i += 2
            else:
                i += 1
            continue
        if word in commands:
            return argv
        return argv[:i] + ["open"] + argv[i:]
    if "open" in commands and not any(a in ("-h", "--help") for a in argv):
        return argv[:i] + ["open"] + argv[i:]
    return argv


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL[0x0A] = "\\n"
_CONTROL[0x09] = "\\t"


def one_line(message: str) -> str:
    """An error message safe for a terminal: control bytes (from attacker-chosen names that
    reach a message) are shown escaped, and the message stays on one line."""
    return message.translate(_CONTROL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    argv = preprocess(argv, _subcommand_names(parser))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except InspectError as e:
        print(f"cfs-inspect: {one_line(str(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # Output closed early (e.g. `| head`): not an error of ours.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
