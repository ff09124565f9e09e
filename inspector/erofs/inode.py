"""Lazily parsed EROFS inodes.

An :class:`Inode` is created from one ``unpack_from`` of its fixed part; the xattr area, data
location and directory entries are decoded only when asked for.  It is a plain ``__slots__``
class rather than a frozen dataclass because a dump constructs one per entry and frozen
dataclass construction costs several times more; treat instances as immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.erofs import constants as C


@dataclass(frozen=True, slots=True)
class XattrEntry:
    """One on-disk xattr entry, kept raw for inspection (``stat``, TUI raw view)."""

    index: int           # short prefix index (0..6)
    suffix: bytes        # name without the prefix
    value: bytes
    shared: bool         # from the shared xattr table (else inline)
    offset: int          # byte offset of the entry in the image
    shared_id: int | None = None

    @property
    def name(self) -> bytes:
        return C.XATTR_PREFIXES.get(self.index, b"") + self.suffix

    @property
    def entry_size(self) -> int:
        return (4 + len(self.suffix) + len(self.value) + 3) & ~3


@dataclass(frozen=True, slots=True)
class Dirent:
    name: bytes
    nid: int
    file_type: int
    offset: int          # byte offset of the 12-byte dirent in the image


class Inode:
    """The fixed part of an inode plus where its variable parts live."""

    __slots__ = ("nid", "offset", "compact", "format", "layout", "xattr_icount", "mode", "nlink",
                 "size", "u", "ino", "uid", "gid", "mtime", "mtime_nsec")

    def __init__(self, nid: int, offset: int, compact: bool, fmt: int, xattr_icount: int, mode: int,
                 nlink: int, size: int, u: int, ino: int, uid: int, gid: int, mtime: int,
                 mtime_nsec: int) -> None:
        self.nid = nid
        self.offset = offset
        self.compact = compact
        self.format = fmt
        self.layout = (fmt >> 1) & 7
        self.xattr_icount = xattr_icount
        self.mode = mode
        self.nlink = nlink
        self.size = size
        self.u = u
        self.ino = ino
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.mtime_nsec = mtime_nsec

    # -- derived -------------------------------------------------------------------------
    @property
    def inode_size(self) -> int:
        return C.COMPACT_SIZE if self.compact else C.EXTENDED_SIZE

    @property
    def xattr_size(self) -> int:
        return 0 if self.xattr_icount == 0 else 12 + 4 * (self.xattr_icount - 1)

    @property
    def data_offset(self) -> int:
        """Byte offset of the inline tail or chunk map (right after the xattr area)."""
        return self.offset + self.inode_size + self.xattr_size

    @property
    def file_type(self) -> int:
        return self.mode & C.S_IFMT

    @property
    def type_name(self) -> str:
        return C.TYPE_NAMES.get(self.mode & C.S_IFMT, "unknown")

    @property
    def layout_name(self) -> str:
        return C.LAYOUT_NAMES.get(self.layout, f"reserved-{self.layout}")

    def is_dir(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFDIR

    def is_reg(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFREG

    def is_lnk(self) -> bool:
        return self.mode & C.S_IFMT == C.S_IFLNK

    def is_device(self) -> bool:
        return self.mode & C.S_IFMT in (C.S_IFCHR, C.S_IFBLK)

    @property
    def rdev(self) -> int:
        """Raw rdev (Linux new encoding) for character/block devices, else 0."""
        return self.u if self.is_device() else 0

    @property
    def rdev_major_minor(self) -> tuple[int, int]:
        v = self.rdev
        return (v >> 8) & 0xFFF, (v & 0xFF) | ((v >> 12) & 0xFFF00)

    @property
    def raw_blkaddr(self) -> int:
        return self.u

    @property
    def chunk_format(self) -> int:
        return self.u & 0xFFFF

    def __repr__(self) -> str:
        return (f"Inode(nid={self.nid}, mode={self.mode:o}, size={self.size}, "
                f"layout={self.layout_name}, {'compact' if self.compact else 'extended'})")
