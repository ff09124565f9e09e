"""Byte escaping of the composefs-dump(5) format, and terminal-safe display of names.

``escape`` reproduces composefs-info byte for byte (isgraph test, ``\\xNN`` lowercase);
``escape_ls`` is the ``ls`` variant that keeps spaces (isprint test).  ``display`` turns
attacker-controlled bytes into a ``str`` that is safe to print on a terminal or put in a TUI
widget: every control byte, DEL, and non-UTF-8 byte becomes a visible escape.
"""

from __future__ import annotations

import re

_SPECIAL = {0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}


def _table(extra: bytes = b"") -> dict[bytes, bytes]:
    table = {}
    for b in range(256):
        key = bytes([b])
        if b in _SPECIAL:
            table[key] = _SPECIAL[b]
        elif b < 0x21 or b > 0x7E or key in extra:
            table[key] = b"\\x%02x" % b
    return table


_GRAPH_RE = re.compile(rb"[^\x21-\x5b\x5d-\x7e]")
_GRAPH_EQ_RE = re.compile(rb"[^\x21-\x3c\x3e-\x5b\x5d-\x7e]")
_PRINT_RE = re.compile(rb"[^\x20-\x5b\x5d-\x7e]")
_TABLE = _table()
_TABLE_EQ = _table(b"=")
_TABLE_PRINT = {k: v for k, v in _TABLE.items() if k != b" "}


# Bytes that never need escaping; ``data.translate(None, OK)`` is empty iff data is clean,
# which is several times cheaper than a regex search on the dump's hot path.
_OK_GRAPH = bytes(b for b in range(0x21, 0x7F) if b != 0x5C)
_OK_GRAPH_EQ = bytes(b for b in range(0x21, 0x7F) if b not in (0x5C, 0x3D))
_OK_PRINT = bytes(b for b in range(0x20, 0x7F) if b != 0x5C)


def _sub(table):
    return lambda m: table[m.group()]


_SUB = _sub(_TABLE)
_SUB_EQ = _sub(_TABLE_EQ)
_SUB_PRINT = _sub(_TABLE_PRINT)


def escape(data: bytes) -> bytes:
    """Dump-format escaping of a PATH, PAYLOAD or CONTENT (``=`` kept literal)."""
    if not data.translate(None, _OK_GRAPH):
        return data
    return _GRAPH_RE.sub(_SUB, data)


def escape_xattr(data: bytes) -> bytes:
    """Dump-format escaping of an xattr key or value (``=`` becomes ``\\x3d``)."""
    if not data.translate(None, _OK_GRAPH_EQ):
        return data
    return _GRAPH_EQ_RE.sub(_SUB_EQ, data)


def escape_ls(data: bytes) -> bytes:
    """``composefs-info ls`` path escaping: as dump but spaces stay literal."""
    if not data.translate(None, _OK_PRINT):
        return data
    return _PRINT_RE.sub(_SUB_PRINT, data)


def escape_optional(data: bytes | None) -> bytes:
    """PAYLOAD/CONTENT field: ``-`` when absent, ``\\x2d`` for a lone dash."""
    if data is None:
        return b"-"
    if data == b"-":
        return b"\\x2d"
    if not data.translate(None, _OK_GRAPH):
        return data
    return _GRAPH_RE.sub(_SUB, data)


_UNSAFE_TEXT_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\udc80-\udcff]")


def _display_sub(m: re.Match) -> str:
    ch = m.group()
    o = ord(ch)
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if 0xDC80 <= o <= 0xDCFF:  # a non-UTF-8 byte, kept by surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def display(data: bytes | str) -> str:
    """Terminal-safe text for a name, target or value: valid UTF-8 shown as is, everything
    that could drive a terminal (C0/C1 controls, DEL, escapes) or is not UTF-8 shown escaped.
    Backslashes are doubled so the result is unambiguous.  Never contains markup semantics:
    callers that render with Rich/Textual must still wrap it in ``Text``."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    if _UNSAFE_TEXT_RE.search(data) is None:
        return data
    return _UNSAFE_TEXT_RE.sub(_display_sub, data)


def display_value(data: bytes) -> str:
    """An xattr value or content for humans: text when it is clean UTF-8, else dump escaping."""
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return escape(data).decode("ascii")
    if _UNSAFE_TEXT_RE.search(s) is not None:
        return escape(data).decode("ascii")
    return s


def json_path_text(path: str | bytes | None) -> str | None:
    """A path for JSON as docs/json.md specifies: clean UTF-8 as is, anything with a control
    byte, a backslash or non-UTF-8 bytes in dump escaping (never a lone surrogate or a raw
    control character, which strict JSON consumers and terminals would choke on)."""
    if path is None:
        return None
    if isinstance(path, str):
        path = path.encode("utf-8", "surrogateescape")
    try:
        s = path.decode("utf-8")
    except UnicodeDecodeError:
        return escape(path).decode("ascii")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in s):
        return escape(path).decode("ascii")
    return s
