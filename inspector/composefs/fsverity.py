"""fs-verity digests (Linux Documentation/filesystems/fsverity.rst), computed with hashlib.

Only the parameters composefs uses: 4096-byte blocks, no salt, SHA-256 (algorithm 1) or
SHA-512 (algorithm 2).  The Merkle tree is built streaming, one pending block per level, so a
file of any size costs O(levels * 4 KiB) memory.  hashlib releases the GIL on large updates, so
several files can be measured in parallel threads.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import BinaryIO, Iterable

BLOCK_SIZE = 4096
ALGORITHMS = {"sha256": 1, "sha512": 2}
_DESCRIPTOR_HEAD = struct.Struct("<BBBBIQ")
_READ_CHUNK = 1 << 20


class FsVerityHasher:
    """Incremental fs-verity digest: ``update()`` with data, then ``digest()``."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported fs-verity hash {algorithm!r}")
        self.algorithm = algorithm
        self._new = getattr(hashlib, algorithm)
        self._digest_size = self._new().digest_size
        self._pending = bytearray()      # partial data block
        self._levels: list[bytearray] = []  # levels[0] collects hashes of data blocks
        self._counts: list[int] = []        # hashes ever added to each level
        self._size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data)
        self._size += len(mv)
        if self._pending:
            need = BLOCK_SIZE - len(self._pending)
            self._pending += mv[:need]
            mv = mv[need:]
            if len(self._pending) < BLOCK_SIZE:
                return
            _push(self._new, self._levels, self._counts, 0, self._new(self._pending).digest())
            self._pending.clear()
        full = len(mv) - len(mv) % BLOCK_SIZE
        if full:
            # Hash every whole block of this read in one comprehension; only each filled
            # level-0 block climbs the tree through Python code (halves interpreter time per
            # block, which is time a hashing thread holds the GIL).
            new = self._new
            hashes = b"".join([new(mv[off:off + BLOCK_SIZE]).digest() for off in range(0, full, BLOCK_SIZE)])
            levels, counts = self._levels, self._counts
            if not levels:
                levels.append(bytearray())
                counts.append(0)
            lv = levels[0]
            lv += hashes
            counts[0] += full // BLOCK_SIZE
            while len(lv) >= BLOCK_SIZE:
                block = bytes(lv[:BLOCK_SIZE])
                del lv[:BLOCK_SIZE]
                _push(new, levels, counts, 1, new(block).digest())
        if full < len(mv):
            self._pending += mv[full:]

    def root_hash(self) -> bytes:
        """Root of the Merkle tree (all zeros for empty data)."""
        if self._size == 0:
            return bytes(self._digest_size)
        # Finalise on copies so digest() may be called more than once.
        levels = [bytearray(lv) for lv in self._levels]
        counts = list(self._counts)
        if self._pending:
            block = bytes(self._pending).ljust(BLOCK_SIZE, b"\0")
            _push(self._new, levels, counts, 0, self._new(block).digest())
        level = 0
        while True:
            if counts[level] == 1 and level == len(levels) - 1:
                return bytes(levels[level])
            if levels[level]:
                block = bytes(levels[level]).ljust(BLOCK_SIZE, b"\0")
                levels[level].clear()
                _push(self._new, levels, counts, level + 1, self._new(block).digest())
            level += 1

    def digest(self) -> bytes:
        root = self.root_hash()
        desc = (_DESCRIPTOR_HEAD.pack(1, ALGORITHMS[self.algorithm], 12, 0, 0, self._size)
                + root.ljust(64, b"\0") + bytes(32 + 144))
        return self._new(desc).digest()

    def hexdigest(self) -> str:
        return self.digest().hex()


def _push(new, levels: list[bytearray], counts: list[int], level: int, digest: bytes) -> None:
    """Add a hash to *level*; a level block that fills up is hashed into the level above."""
    while True:
        if level == len(levels):
            levels.append(bytearray())
            counts.append(0)
        levels[level] += digest
        counts[level] += 1
        if len(levels[level]) < BLOCK_SIZE:
            return
        digest = new(levels[level]).digest()
        levels[level].clear()
        level += 1


def fsverity_digest(data: bytes | bytearray | memoryview, algorithm: str = "sha256") -> bytes:
    """fs-verity digest of an in-memory byte string."""
    h = FsVerityHasher(algorithm)
    h.update(data)
    return h.digest()


def fsverity_digest_chunks(chunks: Iterable[bytes], algorithm: str = "sha256") -> bytes:
    h = FsVerityHasher(algorithm)
    for c in chunks:
        h.update(c)
    return h.digest()


def fsverity_digest_fileobj(f: BinaryIO, algorithm: str = "sha256") -> bytes:
    h = FsVerityHasher(algorithm)
    while chunk := f.read(_READ_CHUNK):
        h.update(chunk)
    return h.digest()


def fsverity_digest_fd(fd: int, algorithm: str = "sha256") -> bytes:
    """Digest of an open file descriptor's content (read with os.read, never mmap of a store file)."""
    h = FsVerityHasher(algorithm)
    while chunk := os.read(fd, _READ_CHUNK):
        h.update(chunk)
    return h.digest()


def fsverity_digest_path(path: str | os.PathLike, algorithm: str = "sha256") -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:   # O_NOATIME: measuring a store's file must not change its atime (EPERM if not ours)
        fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        fd = os.open(path, flags)
    try:
        return fsverity_digest_fd(fd, algorithm)
    finally:
        os.close(fd)
