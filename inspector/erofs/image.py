"""A read-only EROFS filesystem image: mmap, lazily parsed inodes, cached lookups.

Only the uncompressed layouts (flat-plain, flat-inline, chunk-based) are read; compressed
inodes raise :class:`UnsupportedError`.  Every offset and length derived from the image is
checked against the image size before it is used, and no allocation is sized by an untrusted
field: a read is bounded by the bytes actually present in the file.
"""

from __future__ import annotations

import mmap
import os
from operator import sub as _sub
from typing import Iterator

from inspector.erofs import constants as C
from inspector.erofs.inode import Dirent, Inode, XattrEntry
from inspector.erofs.superblock import ComposefsHeader, Superblock, parse_header, parse_superblock
from inspector.errors import FormatError, UnsupportedError

_COMPACT = C.COMPACT_INODE.unpack_from
_EXTENDED = C.EXTENDED_INODE.unpack_from
_U16 = C.U16.unpack_from
_XHDR = C.XATTR_IBODY_HEADER.unpack_from
_XENT = C.XATTR_ENTRY.unpack_from
_U32 = C.U32.unpack_from
_DIRENT_ITER = C.DIRENT.iter_unpack
_BS = 4096
#: i_format values read: compact/extended x flat-plain, flat-inline, chunk-based.
_VALID_FORMATS = frozenset(layout << 1 | v for layout in C.SUPPORTED_LAYOUTS for v in (0, 1))


class ErofsImage:
    """An opened image file.  Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike, *, data: bytes | None = None) -> None:
        self.path = os.fspath(path)
        self._file = None
        self._mmap = None
        if data is None:
            # O_NONBLOCK: a FIFO planted where an image is expected must not block the open
            # (the fstat below then refuses it); regular files ignore the flag.
            flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
            try:
                try:   # O_NOATIME fails with EPERM on files we do not own: retry without
                    fd = os.open(self.path, flags | getattr(os, "O_NOATIME", 0))
                except PermissionError:
                    fd = os.open(self.path, flags)
            except OSError as e:  # EACCES of the retry included
                raise FormatError(f"cannot open: {e.strerror}", path=self.path) from None
            try:
                st = os.fstat(fd)
                import stat as _stat
                if not _stat.S_ISREG(st.st_mode):
                    raise FormatError("not a regular file", path=self.path)
                if st.st_size < C.EROFS_SUPER_OFFSET + C.SUPERBLOCK_SIZE:
                    raise FormatError(f"file too small for an EROFS image ({st.st_size} bytes)",
                                      path=self.path, offset=st.st_size)
                self._mmap = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except OSError as e:
                raise FormatError(f"cannot read: {e.strerror}", path=self.path) from None
            finally:
                os.close(fd)
            # Slicing the mmap itself yields bytes in one step (a memoryview would need a copy).
            self.buf = self._mmap
        else:
            if len(data) < C.EROFS_SUPER_OFFSET + C.SUPERBLOCK_SIZE:
                raise FormatError(f"file too small for an EROFS image ({len(data)} bytes)",
                                  path=self.path, offset=len(data))
            self.buf = bytes(data)
        self.size = len(self.buf)
        self.header: ComposefsHeader | None = parse_header(self.buf, self.path)
        self.sb: Superblock = parse_superblock(self.buf, self.path)
        self.meta_base = self.sb.meta_blkaddr * _BS
        self.xattr_base = self.sb.xattr_blkaddr * _BS
        self._inodes: dict[int, Inode] = {}
        self._shared_cache: dict[int, XattrEntry] = {}
        self.root_nid = self.sb.root_nid
        # Compact inodes take their mtime from the superblock build time, which writers store
        # as the (possibly negative) minimum mtime: read it as signed, as libcomposefs does.
        bt = self.sb.build_time
        self.epoch = bt - (1 << 64) if bt >= 1 << 63 else bt

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._inodes.clear()
        if self._mmap is not None:
            self.buf = b""
            self._mmap.close()
            self._mmap = None

    def __enter__(self) -> "ErofsImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_plain_erofs(self) -> bool:
        return self.header is None

    # -- inodes ------------------------------------------------------------------------------
    def _error(self, msg: str, offset: int | None) -> FormatError:
        return FormatError(msg, path=self.path, offset=offset)

    def inode(self, nid: int) -> Inode:
        """The inode with number *nid* (cached: lookups and the TUI revisit inodes)."""
        ino = self._inodes.get(nid)
        if ino is None:
            ino = self._inodes[nid] = self.load_inode(nid)
        return ino

    def load_inode(self, nid: int) -> Inode:
        """Parse inode *nid* without caching it (full walks of huge images use this, so their
        memory does not grow with the inode count)."""
        off = self.meta_base + nid * 32
        if nid < 0 or off + 32 > self.size:
            raise self._error(f"inode nid {nid} out of range", off if nid >= 0 else None)
        buf = self.buf
        raw = _COMPACT(buf, off)     # the first 32 bytes: a whole compact inode
        fmt = raw[0]
        if fmt not in _VALID_FORMATS:
            self._bad_format(nid, off, fmt)
        if fmt & 1:
            if off + 64 > self.size:
                raise self._error(f"inode nid {nid}: extended inode past end of image", off)
            (f, xc, mode, _r, size, u, ino_n, uid, gid, mtime, nsec, nlink) = _EXTENDED(buf, off)
            inode = Inode(nid, off, False, f, xc, mode, nlink, size, u, ino_n, uid, gid, mtime, nsec)
            isize = 64
        else:
            (f, xc, mode, nlink, size, mt, u, ino_n, uid, gid, _r2) = raw
            inode = Inode(nid, off, True, f, xc, mode, nlink, size, u, ino_n, uid, gid,
                          self.epoch + mt, self.sb.build_time_nsec)
            isize = 32
        if off + isize + (12 + 4 * (xc - 1) if xc else 0) > self.size:
            raise self._error(f"inode nid {nid}: xattr area ({inode.xattr_size} bytes) runs past end of image",
                              off + 2)
        return inode

    def _bad_format(self, nid: int, off: int, fmt: int) -> None:
        """Raise the precise error for an i_format outside the accepted set."""
        if fmt & ~0x1F:
            raise self._error(f"inode nid {nid}: invalid i_format {fmt:#x}", off)
        if fmt & 0x10:
            raise UnsupportedError(f"inode nid {nid}: newer-kernel inode flag (i_format bit 4) not supported",
                                   path=self.path, offset=off)
        layout = (fmt >> 1) & 7
        what = "compressed" if layout in (1, 3) else "unknown"
        raise UnsupportedError(f"inode nid {nid}: {what} data layout {layout} "
                               f"({C.LAYOUT_NAMES.get(layout, 'reserved')}) not supported",
                               path=self.path, offset=off)

    @property
    def root(self) -> Inode:
        return self.inode(self.root_nid)

    # -- xattrs ------------------------------------------------------------------------------
    def xattr_filter(self, inode: Inode) -> int | None:
        if inode.xattr_icount == 0:
            return None
        return _U32(self.buf, inode.offset + inode.inode_size)[0]

    def xattrs(self, inode: Inode) -> list[XattrEntry]:
        """Raw xattr entries in the C loader's order: inline entries, then shared ones."""
        return [XattrEntry(idx, suffix, value, shared, off, sid)
                for idx, suffix, value, shared, off, sid in self.xattr_tuples(inode)]

    def xattr_tuples(self, inode: Inode, c_loader: bool = False
                     ) -> list[tuple[int, bytes, bytes, bool, int, int | None]]:
        """Fast path of :meth:`xattrs`: ``(index, suffix, value, shared, offset, shared_id)``.

        With *c_loader*, mimic libcomposefs's inline loop (``while pos + 4 < end``), which never
        sees a final inline entry of exactly 4 bytes (upstream quirk 5).
        """
        if inode.xattr_icount == 0:
            return []
        buf = self.buf
        start = inode.offset + inode.inode_size
        end = start + inode.xattr_size
        _filter, shared_count = _XHDR(buf, start)
        pos = start + 12
        ids_end = pos + 4 * shared_count
        if ids_end > end:
            raise self._error(f"inode nid {inode.nid}: {shared_count} shared xattr ids overflow the xattr area",
                              start + 4)
        out = []
        ids = [_U32(buf, p)[0] for p in range(pos, ids_end, 4)] if shared_count else ()
        pos = ids_end
        nid = inode.nid
        stop = end - 4 if c_loader else end
        prefixes = C.XATTR_PREFIXES
        while pos < stop:
            if pos + 4 > end:
                raise self._error(f"inode nid {nid}: inline xattr entry past end of its area", pos)
            name_len, index, value_size = _XENT(buf, pos)
            vstart = pos + 4 + name_len
            vend = vstart + value_size
            if vend > end or index not in prefixes:
                self._xattr_entry(pos, end, False, None, nid)  # raises the precise error
            out.append((index, buf[pos + 4:vstart], buf[vstart:vend], False, pos, None))
            pos = (vend + 3) & ~3
        for sid in ids:
            out.append(self.shared_xattr(sid, nid))
        return out

    def shared_xattr(self, sid: int, nid: int) -> tuple[int, bytes, bytes, bool, int, int | None]:
        """Entry *sid* of the shared xattr table (cached: many inodes share the same ids)."""
        entry = self._shared_cache.get(sid)
        if entry is None:
            entry = self._xattr_entry(self.xattr_base + 4 * sid, self.size, True, sid, nid)
            self._shared_cache[sid] = entry
        return entry

    def _xattr_entry(self, pos: int, limit: int, shared: bool, sid: int | None, nid: int):
        if pos + 4 > limit:
            raise self._error(f"inode nid {nid}: {'shared ' if shared else 'inline '}xattr entry past end "
                              f"of its area", pos)
        name_len, index, value_size = _XENT(self.buf, pos)
        if index & 0x80:
            raise UnsupportedError(f"inode nid {nid}: long xattr name prefix (index {index:#x}) not supported",
                                   path=self.path, offset=pos + 1)
        if index not in C.XATTR_PREFIXES:
            raise self._error(f"inode nid {nid}: unknown xattr prefix index {index}", pos + 1)
        nstart = pos + 4
        vstart = nstart + name_len
        vend = vstart + value_size
        if vend > limit:
            raise self._error(f"inode nid {nid}: xattr entry ({name_len}+{value_size} bytes) runs past its area",
                              pos)
        buf = self.buf
        return (index, buf[nstart:vstart], buf[vstart:vend], shared, pos, sid)

    # -- data --------------------------------------------------------------------------------
    def data_segments(self, inode: Inode) -> list[tuple[int, int | None, int]]:
        """Where the file data lives: ``(file_offset, image_offset or None for a hole, length)``.

        Describes without reading; the number of segments is bounded by the image size
        (one per chunk-map entry actually present in the file, or per block run).
        """
        size = inode.size
        if size == 0:
            return []
        layout = inode.layout
        if layout == C.LAYOUT_CHUNK_BASED:
            return self._chunk_segments(inode)
        if layout == C.LAYOUT_FLAT_PLAIN:
            full = size
            tail = 0
        else:  # FLAT_INLINE
            tail = size % _BS
            full = size - tail
            if tail == 0:
                # degenerate: C and rs readers use size % bs, so nothing is inline
                pass
        segs: list[tuple[int, int | None, int]] = []
        if full:
            start = inode.raw_blkaddr * _BS
            if start + full > self.size:
                raise self._error(f"inode nid {inode.nid}: data blocks {inode.raw_blkaddr}.. "
                                  f"({full} bytes) run past end of image", inode.offset + 0x10)
            segs.append((0, start, full))
        if tail:
            at = inode.data_offset
            if at + tail > self.size:
                raise self._error(f"inode nid {inode.nid}: inline tail of {tail} bytes runs past end of image", at)
            if (at % _BS) + tail > _BS:
                raise self._error(f"inode nid {inode.nid}: inline tail of {tail} bytes crosses a block boundary",
                                  at)
            segs.append((full, at, tail))
        return segs

    def _chunk_segments(self, inode: Inode) -> list[tuple[int, int | None, int]]:
        fmt = inode.chunk_format
        if fmt & C.CHUNK_FORMAT_48BIT or fmt & ~0x7F:
            raise UnsupportedError(f"inode nid {inode.nid}: chunk format {fmt:#x} not supported",
                                   path=self.path, offset=inode.offset + 0x10)
        chunkbits = 12 + (fmt & C.CHUNK_FORMAT_BLKBITS_MASK)
        chunk = 1 << chunkbits
        nchunks = (inode.size + chunk - 1) >> chunkbits
        unit = 8 if fmt & C.CHUNK_FORMAT_INDEXES else 4
        base = (inode.data_offset + unit - 1) & ~(unit - 1)
        if base + unit * nchunks > self.size:
            raise self._error(f"inode nid {inode.nid}: chunk map of {nchunks} entries runs past end of image",
                              base)
        segs: list[tuple[int, int | None, int]] = []
        buf = self.buf
        for i in range(nchunks):
            p = base + unit * i
            if unit == 4:
                blk = _U32(buf, p)[0]
            else:
                _adv, _dev, blk = C.CHUNK_INDEX.unpack_from(buf, p)
            foff = i << chunkbits
            length = min(chunk, inode.size - foff)
            if blk == C.NULL_ADDR:
                if segs and segs[-1][1] is None:
                    f0, _, l0 = segs[-1]
                    segs[-1] = (f0, None, l0 + length)
                else:
                    segs.append((foff, None, length))
            else:
                start = blk * _BS
                if start + length > self.size:
                    raise self._error(f"inode nid {inode.nid}: chunk {i} at block {blk} runs past end of image", p)
                segs.append((foff, start, length))
        return segs

    def has_stored_data(self, inode: Inode) -> bool:
        """True when some byte of the file is stored in the image (not all holes)."""
        return any(s[1] is not None for s in self.data_segments(inode))

    def read(self, inode: Inode, offset: int = 0, length: int | None = None) -> bytes:
        """Read file data; holes read as zeros.  *length* is capped at what the image can hold."""
        size = inode.size
        if length is None:
            length = size - offset
        end = min(size, offset + max(0, length))
        if end <= offset:
            return b""
        segs = self.data_segments(inode)
        if end - offset > self.size and any(s[1] is None for s in segs):
            raise self._error(f"inode nid {inode.nid}: refusing to materialise {end - offset} bytes of holes",
                              inode.offset)
        out = bytearray()
        buf = self.buf
        for foff, ioff, seglen in segs:
            s = max(offset, foff)
            e = min(end, foff + seglen)
            if s >= e:
                continue
            if len(out) < s - offset:
                out += bytes(s - offset - len(out))
            if ioff is None:
                out += bytes(e - s)
            else:
                out += buf[ioff + (s - foff): ioff + (e - foff)]
        if len(out) < end - offset:
            out += bytes(end - offset - len(out))
        return bytes(out)

    # -- directories -------------------------------------------------------------------------
    def dir_blocks(self, inode: Inode) -> Iterator[tuple[int, bytes]]:
        """Yield ``(image_offset, block bytes)`` for each directory block (the last may be short).

        A block listed twice (chunk-based directory whose chunks repeat a block address) is
        refused: it would multiply the entries, and memory, far beyond the image's size."""
        seen: set[int] = set()
        for foff, ioff, seglen in self.data_segments(inode):
            if ioff is None:
                raise self._error(f"directory nid {inode.nid}: hole in directory data", inode.offset)
            pos = 0
            while pos < seglen:
                if ioff + pos in seen:
                    raise self._error(f"directory nid {inode.nid}: data block at {ioff + pos:#x} listed "
                                      "twice", inode.offset)
                seen.add(ioff + pos)
                n = min(_BS, seglen - pos)
                yield ioff + pos, self.buf[ioff + pos: ioff + pos + n]
                pos += n

    def readdir(self, inode: Inode) -> list[Dirent]:
        """All entries of a directory, in on-disk (sorted) order, including ``.`` and ``..``."""
        out: list[Dirent] = []
        for boff, block in self.dir_blocks(inode):
            out.extend(self._parse_dir_block(inode, boff, block))
        return out

    def iter_dir_raw(self, inode: Inode) -> list[tuple[bytes, int, int]]:
        """Fast path: ``(name, nid, file_type)`` per entry (``.``/``..`` included), no Dirent objects."""
        segs = self.data_segments(inode)
        if len(segs) == 1 and segs[0][1] is not None and segs[0][2] <= _BS:
            _f, ioff, n = segs[0]     # the common case: one block or one inline tail
            return self._parse_dir_block_raw(inode, ioff, self.buf[ioff:ioff + n])
        out: list[tuple[bytes, int, int]] = []
        for boff, block in self.dir_blocks(inode):
            out.extend(self._parse_dir_block_raw(inode, boff, block))
        return out

    def _parse_dir_block_raw(self, inode: Inode, boff: int, block: bytes) -> list[tuple[bytes, int, int]]:
        blen = len(block)
        if blen < C.DIRENT_SIZE:
            raise self._error(f"directory nid {inode.nid}: directory block of {blen} bytes is too short", boff)
        first_nameoff = _U16(block, 8)[0]
        if first_nameoff < C.DIRENT_SIZE or first_nameoff % C.DIRENT_SIZE or first_nameoff >= blen:
            raise self._error(f"directory nid {inode.nid}: bad first nameoff {first_nameoff} "
                              f"in a {blen}-byte block", boff + 8)
        ents = list(_DIRENT_ITER(block[:first_nameoff]))
        # name i spans [nameoff_i, nameoff_{i+1}); the last one ends at the first NUL or block end.
        # Validation uses C-level map/max over whole columns: this is the walk's hot loop.
        nids, offs, ftypes, _res = zip(*ents)
        last_off = offs[-1]
        z = block.find(b"\0", last_off) if last_off < blen else -1
        ends = offs[1:] + (z if z >= 0 else blen,)
        if (min(map(_sub, ends, offs)) <= 0 or max(map(_sub, ends, offs)) > C.NAME_MAX
                or ends[-1] > blen):
            for i, (o, e) in enumerate(zip(offs, ends)):
                if e <= o or e - o > C.NAME_MAX or e > blen:
                    raise self._error(f"directory nid {inode.nid}: entry {i} has bad name bounds "
                                      f"[{o}, {e}) in a {blen}-byte block", boff + i * 12 + 8)
        if max(nids) >> 63:
            nids = [n & ~(1 << 63) for n in nids]
        return list(zip([block[o:e] for o, e in zip(offs, ends)], nids, ftypes))

    def _parse_dir_block(self, inode: Inode, boff: int, block: bytes) -> list[Dirent]:
        return [Dirent(name, nid, ft, boff + i * C.DIRENT_SIZE)
                for i, (name, nid, ft) in enumerate(self._parse_dir_block_raw(inode, boff, block))]

    def read_link(self, inode: Inode) -> bytes:
        size = inode.size
        if size >= C.PATH_MAX:
            raise self._error(f"symlink nid {inode.nid}: target of {size} bytes exceeds PATH_MAX",
                              inode.offset + 8)
        if inode.layout == C.LAYOUT_FLAT_INLINE and size:
            # fast path: the whole target is the inline tail right after the xattrs
            at = inode.data_offset
            if at + size <= self.size and (at % _BS) + size <= _BS:
                return self.buf[at:at + size]
        return self.read(inode)
