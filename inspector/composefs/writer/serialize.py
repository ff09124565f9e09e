"""Bytes of the image: header, superblock, inodes with xattrs and inline data, table, blocks.

Everything positional was decided by :mod:`layout`; this module only encodes (format.md
§2–§5).  The image is built in one ``bytearray`` of its final size: composefs images are
metadata only (about 100 bytes per inode), so even a million inodes fit comfortably.
"""

from __future__ import annotations

import stat
import struct

from inspector.composefs.writer.layout import BLOCK, LAYOUT_CHUNK, Layout
from inspector.composefs.writer.prepare import WInode
from inspector.composefs.writer.xattrs import is_acl

COMPOSEFS_MAGIC = 0xD078629A
EROFS_MAGIC = 0xE0F5E1E2
FLAG_HAS_ACL = 1
_HEADER = struct.Struct("<IIII16x")
_SB = struct.Struct("<IIIBBHQQIIII16s16sIHHHBBIQB23x")
_COMPACT = struct.Struct("<HHHHIIIIHHI")
_EXTENDED = struct.Struct("<HHHHQIIIIqII16x")
_DIRENT = struct.Struct("<QHBB")
_FTYPES = {stat.S_IFREG: 1, stat.S_IFDIR: 2, stat.S_IFCHR: 3, stat.S_IFBLK: 4,
           stat.S_IFIFO: 5, stat.S_IFSOCK: 6, stat.S_IFLNK: 7}


def _dir_block(entries: list, start: int, end: int) -> bytearray:
    n = end - start
    heads = bytearray()
    names = bytearray()
    nameoff = 12 * n
    for name, target in entries[start:end]:
        heads += _DIRENT.pack(target.nid, nameoff + len(names),
                              _FTYPES[stat.S_IFMT(target.mode)], 0)
        names += name
    return heads + names


def _file_bytes(w: WInode) -> bytes:
    """Full content of a directory, inline file or symlink (before splitting blocks/tail)."""
    if w.dirblocks is None:
        return w.data or b""
    out = bytearray()
    starts = w.dirblocks + [len(w.entries)]
    for i in range(len(starts) - 1):
        blk = _dir_block(w.entries, starts[i], starts[i + 1])
        if i < len(starts) - 2:
            blk += b"\0" * (BLOCK - len(blk))
        out += blk
    return bytes(out)


def serialize(order: list[WInode], lay: Layout, version: int) -> bytearray:
    buf = bytearray(lay.blocks * BLOCK)
    flags = 0
    for w in order:
        if any(is_acl(name) for name, _ in w.xattrs):
            flags |= FLAG_HAS_ACL
            break
    _HEADER.pack_into(buf, 0, COMPOSEFS_MAGIC, 1, flags, version)
    _SB.pack_into(buf, 1024, EROFS_MAGIC, 0, 0x6, 12, 0, order[0].nid, len(order),
                  lay.build_time[0] & 0xFFFFFFFFFFFFFFFF, lay.build_time[1], lay.blocks, 0,
                  lay.xattr_blkaddr, b"", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    t = lay.inodes_end
    buf[t:t + len(lay.shared_table)] = lay.shared_table

    for w in order:
        off = w.nid * 32
        xs = len(w.xattr_blob)
        icount = 0 if xs == 0 else (xs - 12) // 4 + 1
        fmt = stat.S_IFMT(w.mode)
        if w.layout == LAYOUT_CHUNK:
            i_u = w.chunk_format
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            i_u = w.rdev & 0xFFFFFFFF
        elif w.nblocks:
            i_u = w.blkaddr
        else:
            i_u = 0
        i_format = (0 if w.compact else 1) | (w.layout << 1)
        if w.compact:
            _COMPACT.pack_into(buf, off, i_format, icount, w.mode, w.nlink, w.size, 0, i_u,
                               w.ino, w.uid, w.gid, 0)
        else:
            _EXTENDED.pack_into(buf, off, i_format, icount, w.mode, 0, w.size, i_u, w.ino,
                                w.uid, w.gid, w.sec, w.nsec, w.nlink)
        p = off + w.isize
        if xs:
            buf[p:p + xs] = w.xattr_blob
            p += xs
        if w.layout == LAYOUT_CHUNK:
            if w.nblocks:   # map moved out of line (see layout)
                p = w.blkaddr * BLOCK
            buf[p:p + 4 * w.nchunks] = b"\xff" * (4 * w.nchunks)
            continue
        if not w.nblocks and not w.tail:
            continue
        data = _file_bytes(w)
        split = w.nblocks * BLOCK
        if w.tail:
            tail = data[split:]
            buf[p:p + len(tail)] = tail
        if w.nblocks:
            body = data[:split]
            start = w.blkaddr * BLOCK
            buf[start:start + len(body)] = body
    return buf
