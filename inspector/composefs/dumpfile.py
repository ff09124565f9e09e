"""composefs-dump(5) text parser: dump lines to a tree of :class:`Node` (format.md §9).

This is the reading side of the format ``composefs-info dump`` prints and
``mkcomposefs --from-file`` reads.  It follows mkcomposefs's parser, because the writer must
reproduce its images byte for byte and must refuse what it refuses:

* escapes ``\\\\ \\n \\r \\t \\xHH`` (hex in either case); any other escape and NUL bytes are
  errors; ``-`` alone means "absent" in PAYLOAD, CONTENT and DIGEST;
* MODE is octal, truncated to 16 bits (``20720777`` is a symlink), ``@MODE`` marks a hardlink
  whose PAYLOAD names the target (the target may come later in the file);
* lenient by default (missing trailing fields read as empty, the last line may lack ``\\n``);
  ``strict=True`` (or ``CFS_PARSE_STRICT=1``) adds mkcomposefs's strict checks.  The mode never
  changes the resulting tree, only what is accepted.

Normalisation that mkcomposefs applies at parse time (symlink SIZE = target length, device
SIZE 0, directory RDEV/PAYLOAD/CONTENT ignored) is done here so the tree is what gets written.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from inspector.composefs.escape import display
from inspector.errors import DumpParseError

#: mkcomposefs limits (libcomposefs names in brackets).
MAX_NAME = 255                 # NAME_MAX
MAX_XATTR_NAME = 255           # XATTR_NAME_MAX
MAX_XATTR_VALUE = 65535        # XATTR_SIZE_MAX
MAX_INLINE_CONTENT = 5000      # LCFS_INLINE_CONTENT_MAX
MAX_SYMLINK = 4095             # PATH_MAX - 1
MAX_LINE = 65535
MAX_CHUNKS = 1024              # chunk map entries the C writer allows for one file
MAX_XATTR_SPACE = 32767        # names + values of one inode

_VALID_TYPES = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFBLK, stat.S_IFCHR,
                stat.S_IFSOCK, stat.S_IFIFO)
_ESCAPE_RE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.?)", re.DOTALL)
_VALID_ESCAPES = re.compile(rb"(?:[^\\]|\\(?:x[0-9a-fA-F]{2}|[\\nrt]))*", re.DOTALL)
_SIMPLE = {b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


@dataclass(slots=True, eq=False)
class Node:
    """One inode of a tree to be written (or just parsed).

    Mutable on purpose: parsing fills it in place, the writer annotates it.  ``children`` is
    keyed by name (bytes) for directories; ``link_to`` is set on hardlink entries, which carry
    no metadata of their own (all of it comes from the target, as in mkcomposefs).
    """

    mode: int
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    mtime_sec: int = 0
    mtime_nsec: int = 0
    size: int = 0
    payload: bytes | None = None
    content: bytes | None = None
    digest: bytes | None = None
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    children: dict[bytes, "Node"] | None = None
    link_to: "Node | None" = None
    name: bytes = b""
    parent: "Node | None" = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def add_child(self, name: bytes, child: "Node") -> None:
        if self.children is None:
            raise ValueError("not a directory")
        child.name = name
        child.parent = self
        self.children[name] = child

    def path(self) -> bytes:
        parts = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return b"/" + b"/".join(reversed(parts))

    def resolved(self) -> "Node":
        """The inode this entry stands for (the target of a hardlink, else itself)."""
        return self.link_to if self.link_to is not None else self


def new_dir(mode: int = 0o40755, **kw) -> Node:
    return Node(mode=mode, nlink=2, children={}, **kw)


def _unescape_one(m: re.Match) -> bytes:
    e = m.group(1)
    if e[:1] == b"x" and len(e) == 3:
        return bytes([int(e[1:], 16)])
    out = _SIMPLE.get(e)
    if out is None:
        raise ValueError(f"invalid escape \\{display(e)}")
    return out


def unescape(raw: bytes, *, binary: bool = False) -> bytes:
    """Undo dump escaping; raises ValueError on an unknown escape.

    Strings that end up as C strings (paths, payloads, xattr names) may not contain NUL;
    ``binary`` values (inline content, xattr values) may.
    """
    if b"\\" in raw:
        if _VALID_ESCAPES.fullmatch(raw):
            # Only \\ \n \r \t \xHH are present: the codec decodes exactly those in C.
            raw = codecs.escape_decode(raw)[0]
        else:
            raw = _ESCAPE_RE.sub(_unescape_one, raw)   # raises with the offending escape
    if not binary and b"\0" in raw:
        raise ValueError("NUL byte not allowed")
    return raw


def _optional(raw: bytes, binary: bool = False) -> bytes | None:
    if raw == b"-" or raw == b"":
        return None
    return unescape(raw, binary=binary)


def strict_from_env() -> bool:
    return os.environ.get("CFS_PARSE_STRICT") == "1"


@dataclass(slots=True, frozen=True)
class DumpEntry:
    """One parsed dump line, before it is linked into a tree."""

    lineno: int
    path: bytes
    size: int
    mode: int
    hardlink: bool
    nlink: int
    uid: int
    gid: int
    rdev: int
    mtime_sec: int
    mtime_nsec: int
    payload: bytes | None
    content: bytes | None
    digest: bytes | None
    xattrs: tuple[tuple[bytes, bytes], ...]


class _Fail(Exception):
    pass


def _int(raw: bytes, what: str, base: int = 10, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
    """A number field within [lo, hi] (the width the image stores it in)."""
    try:
        if not raw or raw.strip() != raw or raw[:1] in b"+":
            raise ValueError
        v = int(raw, base)
        if not lo <= v <= hi:
            raise ValueError
    except ValueError:
        raise _Fail(f"Invalid {what} {raw.decode('ascii', 'backslashreplace')!r}") from None
    return v


def parse_line(line: bytes, lineno: int, strict: bool) -> DumpEntry:
    """Parse one line (without its newline)."""
    if len(line) > MAX_LINE:
        raise _Fail("Too many xattrs (line longer than 65535 bytes)")
    fields = line.split(b" ")
    if len(fields) < 11:
        if strict or len(fields) < 8:
            raise _Fail(f"Too few fields ({len(fields)}, need 11)")
        fields += [b""] * (11 - len(fields))
    try:
        path = unescape(fields[0])
    except ValueError as e:
        raise _Fail(f"Invalid path: {e}") from None
    if not path:
        raise _Fail("Invalid empty path")
    size = _int(fields[1], "size", hi=2**64 - 1)
    mode_raw = fields[2]
    hardlink = mode_raw.startswith(b"@")
    if hardlink:
        mode_raw = mode_raw[1:]
    mode = _int(mode_raw, "mode", 8)
    mode &= 0xFFFF
    if stat.S_IFMT(mode) not in _VALID_TYPES:
        raise _Fail(f"Invalid mode {mode:o}")
    nlink = _int(fields[3], "nlink")
    uid = _int(fields[4], "uid")
    gid = _int(fields[5], "gid")
    rdev = _int(fields[6], "rdev")   # stored as the 32-bit i_u
    mt = fields[7].split(b".")
    if len(mt) != 2:
        raise _Fail(f"Invalid mtime {fields[7].decode('ascii', 'backslashreplace')!r}")
    sec = _int(mt[0], "mtime", lo=-2**63, hi=2**63 - 1)
    nsec = _int(mt[1], "mtime")
    try:
        payload = _optional(fields[8])
        content = _optional(fields[9], binary=True)
    except ValueError as e:
        raise _Fail(f"Invalid payload or content: {e}") from None
    digest = None
    if fields[10] not in (b"-", b""):
        try:
            digest = bytes.fromhex(fields[10].decode("ascii"))
        except ValueError:
            raise _Fail("Invalid digest") from None
        if len(digest) not in (32, 64):
            raise _Fail("Invalid digest length")
    xattrs = []
    for raw in fields[11:]:
        key_raw, eq, val_raw = raw.partition(b"=")
        try:
            key = unescape(key_raw)
            val = unescape(val_raw, binary=True)
        except ValueError as e:
            raise _Fail(f"Invalid xattr: {e}") from None
        if not eq and not key_raw:
            continue  # trailing space
        if not key or len(key) > MAX_XATTR_NAME:
            raise _Fail(f"Can't set xattr {key_raw.decode('ascii', 'backslashreplace')!r}: "
                        "name must be 1-255 bytes")
        if len(val) > MAX_XATTR_VALUE:
            raise _Fail("Can't set xattr: value longer than 65535 bytes")
        xattrs.append((key, val))
    if strict and not hardlink:
        ftype = stat.S_IFMT(mode)
        if rdev != 0 and ftype not in (stat.S_IFCHR, stat.S_IFBLK):
            raise _Fail("Non-zero rdev on a non-device")
        if ftype == stat.S_IFLNK:
            if content is not None:
                raise _Fail("Symlink with content")
            if payload is not None and size != len(payload):
                raise _Fail(f"Symlink size {size} does not match target length {len(payload)}")
    return DumpEntry(lineno, path, size, mode, hardlink, nlink, uid, gid, rdev, sec, nsec,
                     payload, content, digest, tuple(xattrs))


def iter_entries(data: bytes, *, strict: bool, source: str = "<dump>") -> Iterator[DumpEntry]:
    """Yield the entries of a whole dump text, raising :class:`DumpParseError` on bad lines."""
    if strict and data and not data.endswith(b"\n"):
        raise DumpParseError("missing newline at end of file", path=source)
    lineno = 0
    for line in data.split(b"\n"):
        lineno += 1
        if not line:
            continue
        try:
            yield parse_line(line, lineno, strict)
        except _Fail as e:
            raise DumpParseError(f"line {lineno}: {e}", path=source) from None


def _check_name(name: bytes) -> None:
    if name in (b".", b".."):
        raise _Fail("Invalid . or .. in path")
    if not name:
        raise _Fail("Can't add child: empty name")
    if len(name) > MAX_NAME:
        raise _Fail("Can't add child: name longer than 255 bytes")


def chunk_count(size: int) -> int:
    """Chunks the C writer needs for an external file (format.md §4.6)."""
    if size <= 0:
        return 0
    bits = min(max(12, (size - 1).bit_length()), 12 + 31)
    return (size + (1 << bits) - 1) >> bits


def xattr_space_error(xattrs: dict[bytes, bytes]) -> str | None:
    """mkcomposefs refuses an inode whose xattr names and values exceed 32767 bytes."""
    total = sum(len(k) + len(v) for k, v in xattrs.items())
    if total > MAX_XATTR_SPACE:
        return f"Too many xattrs ({total} bytes of names and values, maximum {MAX_XATTR_SPACE})"
    return None


def _entry_node(e: DumpEntry) -> Node:
    ftype = stat.S_IFMT(e.mode)
    node = Node(mode=e.mode, nlink=e.nlink, uid=e.uid, gid=e.gid, rdev=e.rdev,
                mtime_sec=e.mtime_sec, mtime_nsec=e.mtime_nsec, size=e.size)
    for k, v in e.xattrs:
        node.xattrs.pop(k, None)   # last one wins, in its own position
        node.xattrs[k] = v
    err = xattr_space_error(node.xattrs)
    if err:
        raise _Fail(err)
    if ftype == stat.S_IFDIR:
        node.children = {}
        node.size = 0
        node.rdev = 0
        node.nlink = 2
    elif ftype == stat.S_IFLNK:
        target = e.payload
        if not target or len(target) > MAX_SYMLINK:
            raise _Fail("Invalid symlink target length "
                        f"{len(target) if target else 0} (must be 1-{MAX_SYMLINK})")
        node.payload = target
        node.size = len(target)
    elif ftype == stat.S_IFREG:
        if e.content is not None:
            if len(e.content) != e.size:
                raise _Fail(f"Content length {len(e.content)} does not match size {e.size}")
            if e.size > MAX_INLINE_CONTENT:
                raise _Fail(f"Inline content size {e.size} exceeds maximum {MAX_INLINE_CONTENT}")
            node.content = e.content
        elif e.size > 0:
            if chunk_count(e.size) > MAX_CHUNKS:
                raise _Fail("File too large")
            node.payload = e.payload
            node.digest = e.digest
    else:
        node.size = 0
    return node


def build_tree(entries: Iterator[DumpEntry], source: str = "<dump>") -> Node:
    """Link parsed entries into a tree; resolve hardlinks after the last line."""
    root: Node | None = None
    by_path: dict[bytes, Node] = {}
    links: list[tuple[DumpEntry, Node]] = []
    e: DumpEntry | None = None
    try:
        for e in entries:
            path = e.path.rstrip(b"/") if e.path != b"/" else b"/"
            if not path.startswith(b"/"):
                raise _Fail("Path must be absolute")
            if root is None:
                if path != b"/" or e.hardlink:
                    raise _Fail("The first entry must be the root directory /")
                node = _entry_node(e)
                if not node.is_dir:
                    raise _Fail("The root must be a directory")
                root = node
                by_path[b"/"] = root
                continue
            parent_path, _, name = path.rpartition(b"/")
            _check_name(name)
            for comp in parent_path.split(b"/")[1:]:
                _check_name(comp)
            parent = by_path.get(parent_path or b"/")
            if parent is None or not parent.is_dir:
                raise _Fail("Parent directory missing")
            if name in parent.children:
                raise _Fail("Can't add child: path already exists")
            if e.hardlink:
                if not e.payload:
                    raise _Fail("Hardlink without a target")
                node = Node(mode=e.mode)
                links.append((e, node))
            else:
                node = _entry_node(e)
            parent.add_child(name, node)
            by_path[path] = node
    except _Fail as err:
        where = f"line {e.lineno}: " if e is not None else ""
        raise DumpParseError(f"{where}{err}", path=source) from None
    if root is None:
        raise DumpParseError("no entries (the root / is missing)", path=source)
    for e, node in links:
        target_path = e.payload.rstrip(b"/") or b"/"
        target = by_path.get(target_path)
        seen = {id(node)}
        while target is not None and target.link_to is not None and id(target) not in seen:
            seen.add(id(target))
            target = target.link_to
        msg = None
        if target is None:
            msg = "Hardlink target does not exist"
        elif target is node or id(target) in seen and target.link_to is not None:
            msg = "Invalid self hardlink"
        elif target.is_dir:
            msg = "Can't hardlink a directory"
        if msg:
            raise DumpParseError(f"line {e.lineno}: {msg}", path=source)
        node.link_to = target
        node.mode = target.mode
    return root


def parse_dump(data: bytes, *, strict: bool | None = None, source: str = "<dump>") -> Node:
    """Parse a whole dump text into a tree and return its root."""
    if strict is None:
        strict = strict_from_env()
    return build_tree(iter_entries(data, strict=strict, source=source), source)


def read_dump(path: str, *, strict: bool | None = None) -> Node:
    """Parse a dump file; ``-`` reads standard input."""
    import sys
    if path == "-":
        data = sys.stdin.buffer.read()
        return parse_dump(data, strict=strict, source="<stdin>")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DumpParseError(f"cannot read: {e.strerror}", path=display(path)) from None
    return parse_dump(data, strict=strict, source=display(path))


def read_dump_stream(f: BinaryIO, *, strict: bool | None = None, source: str = "<dump>") -> Node:
    return parse_dump(f.read(), strict=strict, source=source)
