"""Where everything goes: data layouts, compact/extended inodes, nids, shared xattrs, blocks.

The C writer's rules (format.md §4–§6), all of which change bytes:

* directory entries (``.`` and ``..`` sorted with the rest) are packed greedily into 4096-byte
  blocks; a final partial block over 2048 bytes becomes a full block, otherwise it is stored
  inline after the inode (FLAT_INLINE);
* inline regular-file content follows the same 2048 rule for its last partial block;
  symlinks stay inline unless inode + xattrs + target would not fit in one block;
* external regular files are CHUNK_BASED with one NULL entry per chunk;
* an inode is compact iff its mtime equals the image-wide minimum (build_time) and nlink,
  uid, gid fit 16 bits and the size 32 bits;
* inodes follow each other 32-byte aligned from 0x480; one carrying an inline tail starts on
  the next block when the tail would otherwise cross a block boundary;
* the shared xattr table follows the inodes, ordered descending; data blocks follow, in inode
  order.
"""

from __future__ import annotations

import stat
from collections import Counter
from dataclasses import dataclass

from inspector.composefs.writer.prepare import WInode
from inspector.composefs.writer.xattrs import bloom_bit, encode_entry, entry_size, shared_sort_key

BLOCK = 4096
INODES_START = 1024 + 128
MAX_SHARED_PER_INODE = 128
LAYOUT_PLAIN, LAYOUT_INLINE, LAYOUT_CHUNK = 0, 2, 4


@dataclass(slots=True)
class Layout:
    """Image-wide results of :func:`compute_layout`."""

    build_time: tuple[int, int]
    inodes_end: int
    xattr_blkaddr: int
    shared_table: bytes
    blocks: int


def _dir_blocks(w: WInode) -> None:
    entries = w.entries
    entries.append((b".", w))
    entries.append((b"..", w.parent))
    entries.sort(key=lambda e: e[0])
    starts = [0]
    used = 0
    for i, (name, _) in enumerate(entries):
        esz = 12 + len(name)
        if used + esz > BLOCK:
            starts.append(i)
            used = 0
        used += esz
    w.dirblocks = starts
    full = len(starts) - 1
    if used > BLOCK // 2:
        full += 1
        used = 0
    w.nblocks = full
    w.tail = used
    w.size = full * BLOCK + used


def _chunking(size: int) -> tuple[int, int]:
    bits = min(max(12, (size - 1).bit_length()), 12 + 31)
    return bits - 12, (size + (1 << bits) - 1) >> bits


def _data_layout(w: WInode) -> None:
    fmt = stat.S_IFMT(w.mode)
    if fmt == stat.S_IFDIR:
        _dir_blocks(w)
    elif w.external:
        w.layout = LAYOUT_CHUNK
        w.chunk_format, w.nchunks = _chunking(w.size)
        return
    elif w.data is not None and fmt == stat.S_IFREG:
        full, tail = divmod(len(w.data), BLOCK)
        if tail > BLOCK // 2:
            full += 1
            tail = 0
        w.nblocks, w.tail = full, tail
    elif fmt == stat.S_IFLNK:
        w.nblocks, w.tail = 0, len(w.data)   # may move to a block in compute_layout
    w.layout = LAYOUT_INLINE if w.tail else LAYOUT_PLAIN


def _xattr_sizes(order: list[WInode], shared: dict) -> list[int]:
    sizes = []
    for w in order:
        if not w.xattrs:
            sizes.append(0)
            continue
        n_shared = 0
        size = 12
        for item in w.xattrs:
            if item in shared and n_shared < MAX_SHARED_PER_INODE:
                n_shared += 1
                size += 4
            else:
                name, value = item
                size += entry_size(name, value)
        sizes.append(size)
    return sizes


def compute_layout(order: list[WInode]) -> Layout:
    """Fill in every inode's layout, nid and blocks; return the image-wide values."""
    build_time = min((w.sec, w.nsec) for w in order)
    for w in order:
        _data_layout(w)
        w.compact = ((w.sec, w.nsec) == build_time and w.nlink <= 0xFFFF and w.uid <= 0xFFFF
                     and w.gid <= 0xFFFF and w.size <= 0xFFFFFFFF)
        w.isize = 32 if w.compact else 64

    counts = Counter(item for w in order for item in w.xattrs)
    shared_items = sorted((item for item, c in counts.items() if c > 1),
                          key=shared_sort_key, reverse=True)
    shared: dict[tuple[bytes, bytes], int] = {item: 0 for item in shared_items}
    xsizes = _xattr_sizes(order, shared)

    pos = INODES_START
    for w, xs in zip(order, xsizes):
        base = w.isize + xs
        extent = w.tail or 4 * w.nchunks
        if extent and stat.S_ISLNK(w.mode):
            # A symlink target must share one block with its inode: move the inode to the
            # next block, and if even a whole block is too small, store the target in a block.
            if pos % BLOCK + base + extent > BLOCK:
                pos += -pos % BLOCK
                if base + extent > BLOCK:
                    w.nblocks, w.tail, w.layout = 1, 0, LAYOUT_PLAIN
                    extent = 0
        elif extent and (pos + base) % BLOCK + extent > BLOCK:
            # Other inline parts (directory or file tail, chunk map) must not cross a block
            # boundary: pad before the inode so that the inline part starts a block.
            start = pos + base
            moved = start + (-start % BLOCK) - base
            moved += -moved % 32
            if (moved + base) % BLOCK + extent <= BLOCK:
                pos = moved
            else:
                # It cannot fit even there: the inode starts a block and the inline part goes
                # to data blocks of its own.  For a chunk map the C writer does this too
                # (the bigfile-xattr fixture): the map lands in a data block the kernel never
                # reads, and the inode carries no map.
                pos += -pos % BLOCK
                extent = 0
                if w.layout == LAYOUT_CHUNK:
                    w.nblocks = (4 * w.nchunks + BLOCK - 1) // BLOCK
                else:
                    w.nblocks += 1
                    w.tail = 0
                    w.layout = LAYOUT_PLAIN
                    if w.dirblocks is not None:
                        w.size = w.nblocks * BLOCK
        w.nid = pos // 32
        pos += base + extent
        pos += -pos % 32
    inodes_end = pos

    xattr_blkaddr = inodes_end // BLOCK
    table = bytearray()
    base_off = inodes_end - xattr_blkaddr * BLOCK
    for item in shared_items:
        shared[item] = (base_off + len(table)) // 4
        table += encode_entry(*item)

    for w, xs in zip(order, xsizes):
        if xs:
            w.xattr_blob = _xattr_blob(w, shared)
    end = inodes_end + len(table)
    blk = (end + BLOCK - 1) // BLOCK
    for w in order:
        if w.nblocks:
            w.blkaddr = blk
            blk += w.nblocks
    return Layout(build_time, inodes_end, xattr_blkaddr, bytes(table), blk)


def _xattr_blob(w: WInode, shared: dict) -> bytes:
    ids = []
    inline = []
    bits = 0
    for item in w.xattrs:
        bits |= bloom_bit(item[0])
        sid = shared.get(item)
        if sid is not None and len(ids) < MAX_SHARED_PER_INODE:
            ids.append(sid)
        else:
            inline.append(encode_entry(*item))
    head = (0xFFFFFFFF & ~bits).to_bytes(4, "little") + bytes([len(ids)]) + b"\0" * 7
    return head + b"".join(i.to_bytes(4, "little") for i in ids) + b"".join(inline)
