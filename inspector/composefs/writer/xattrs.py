"""Xattr encoding for the writer: prefix table, entries, shared table order, bloom filter.

format.md §6.  The C writer picks the first matching short prefix among ``user.``,
``system.posix_acl_access``, ``system.posix_acl_default``, ``trusted.`` and ``security.``
(anything else is index 0 with the full name), shares every (name, value) pair used by more
than one inode, orders the shared table *descending* by (full name, value length, value), and
fills each inode's 32-bit bloom filter with xxh32 of the suffix seeded by
``0x25BBE08F + prefix index``.
"""

from __future__ import annotations

import struct
from functools import lru_cache

# (index, prefix) in the order the C writer tries them.
PREFIXES: tuple[tuple[int, bytes], ...] = (
    (1, b"user."),
    (2, b"system.posix_acl_access"),
    (3, b"system.posix_acl_default"),
    (4, b"trusted."),
    (6, b"security."),
)
BLOOM_SEED = 0x25BBE08F
_ENTRY_HEAD = struct.Struct("<BBH")

_P1, _P2, _P3, _P4, _P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 (pure Python; names are short, so speed is not an issue)."""
    n = len(data)
    i = 0
    if n >= 16:
        v1 = (seed + _P1 + _P2) & _M
        v2 = (seed + _P2) & _M
        v3 = seed & _M
        v4 = (seed - _P1) & _M
        limit = n - 16
        while i <= limit:
            a, b, c, d = struct.unpack_from("<IIII", data, i)
            v1 = (_rotl((v1 + a * _P2) & _M, 13) * _P1) & _M
            v2 = (_rotl((v2 + b * _P2) & _M, 13) * _P1) & _M
            v3 = (_rotl((v3 + c * _P2) & _M, 13) * _P1) & _M
            v4 = (_rotl((v4 + d * _P2) & _M, 13) * _P1) & _M
            i += 16
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h = (_rotl((h + k * _P3) & _M, 17) * _P4) & _M
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M, 11) * _P1) & _M
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M
    h ^= h >> 13
    h = (h * _P3) & _M
    h ^= h >> 16
    return h


@lru_cache(maxsize=4096)
def split_name(name: bytes) -> tuple[int, bytes]:
    """(prefix index, suffix) as the C writer encodes the full xattr name."""
    for idx, prefix in PREFIXES:
        if name.startswith(prefix):
            return idx, name[len(prefix):]
    return 0, name


@lru_cache(maxsize=4096)
def bloom_bit(name: bytes) -> int:
    idx, suffix = split_name(name)
    return 1 << (xxh32(suffix, BLOOM_SEED + idx) & 31)


def entry_size(name: bytes, value: bytes) -> int:
    _, suffix = split_name(name)
    return (4 + len(suffix) + len(value) + 3) & ~3


def encode_entry(name: bytes, value: bytes) -> bytes:
    """One xattr entry, zero-padded to 4 bytes."""
    idx, suffix = split_name(name)
    raw = _ENTRY_HEAD.pack(len(suffix), idx, len(value)) + suffix + value
    return raw + b"\0" * (-len(raw) % 4)


def shared_sort_key(item: tuple[bytes, bytes]) -> tuple[bytes, int, bytes]:
    name, value = item
    return (name, len(value), value)


def is_acl(name: bytes) -> bool:
    return name in (b"system.posix_acl_access", b"system.posix_acl_default")
