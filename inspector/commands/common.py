"""Helpers shared by the command modules: opening images, output streams, JSON."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterable

from inspector.composefs.escape import escape_xattr, json_path_text
from inspector.composefs.image import ComposefsImage, open_image


def open_images(paths: Iterable[str]) -> list[ComposefsImage]:
    return [open_image(p) for p in paths]


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def out_bytes() -> Any:
    """Binary stdout (compat commands write bytes exactly as composefs-info)."""
    return sys.stdout.buffer


def json_text(b: bytes | None) -> str | None:
    """A byte string for JSON: UTF-8 text as is when it decodes and has no control bytes,
    otherwise the dump format's escaping (so the value is always printable and reversible)."""
    return json_path_text(b)


def json_xattr_text(b: bytes) -> str:
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return escape_xattr(b).decode("ascii")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in s):
        return escape_xattr(b).decode("ascii")
    return s


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=True) + "\n")


def fs_path(p: bytes) -> str:
    return os.fsdecode(p)
