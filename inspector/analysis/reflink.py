"""Reflink detection with FIEMAP: do two object files share their data extents?

Different inodes with the same content are either plain copies (reclaimable by hard-linking
them) or reflinked copies (FICLONE: shared extents, no extra space, not reclaimable).  The
kernel tells them apart only through ``FS_IOC_FIEMAP``: every extent of a reflinked file
carries ``FIEMAP_EXTENT_SHARED``.  Filesystems without FIEMAP (tmpfs, overlayfs, NFS...) answer
ENOTTY/EOPNOTSUPP: the answer is then "unknown", never a guess.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

from inspector.stores.fsutil import open_ro

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_SHARED = 0x2000
_HEAD = struct.Struct("=QQIIII")           # start, length, flags, mapped, count, reserved
_EXTENT = struct.Struct("=QQQQQIIII")      # logical, physical, length, res64[2], flags, res32[3]
_BATCH = 64


def extents_shared(path: Path) -> bool | None:
    """True when the file has data and every extent is shared, False when some extent is not,
    None when unknown (no FIEMAP support, unreadable, no extents)."""
    try:
        fd = open_ro(path)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):    # no FIEMAP ioctl on a device or FIFO
            return None
        start = 0
        seen = 0
        while True:
            buf = bytearray(_HEAD.pack(start, 0xFFFFFFFFFFFFFFFF - start, 0, 0, _BATCH, 0)
                            + bytes(_EXTENT.size * _BATCH))
            try:
                fcntl.ioctl(fd, FS_IOC_FIEMAP, buf, True)
            except OSError as e:
                if e.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADR):
                    return None
                return None
            mapped = _HEAD.unpack_from(buf, 0)[3]
            if mapped == 0:
                return None if seen == 0 else True
            last = False
            for i in range(mapped):
                logical, _phys, length, _a, _b, flags, *_ = _EXTENT.unpack_from(
                    buf, _HEAD.size + i * _EXTENT.size)
                seen += 1
                if not flags & FIEMAP_EXTENT_SHARED:
                    return False
                start = logical + length
                if flags & FIEMAP_EXTENT_LAST:
                    last = True
            if last:
                return True
    finally:
        os.close(fd)


def fiemap_supported(path: Path) -> bool:
    """Whether FIEMAP answers at all on the filesystem holding *path* (a regular file)."""
    try:
        fd = open_ro(path)
    except OSError:
        return False
    try:
        buf = bytearray(_HEAD.pack(0, 0xFFFFFFFFFFFFFFFF, 0, 0, 0, 0))
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf, True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
