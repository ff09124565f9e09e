"""The composefs header (offset 0) and the EROFS superblock (offset 1024)."""

from __future__ import annotations

from dataclasses import dataclass

from inspector.erofs import constants as C
from inspector.errors import FormatError, UnsupportedError


@dataclass(frozen=True, slots=True)
class ComposefsHeader:
    magic: int
    version: int
    flags: int
    composefs_version: int

    @property
    def has_acl(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True, slots=True)
class Superblock:
    magic: int
    checksum: int
    feature_compat: int
    blkszbits: int
    sb_extslots: int
    root_nid: int
    inos: int
    build_time: int
    build_time_nsec: int
    blocks: int
    meta_blkaddr: int
    xattr_blkaddr: int
    uuid: bytes
    volume_name: bytes
    feature_incompat: int
    available_compr_algs: int
    extra_devices: int
    devt_slotoff: int
    dirblkbits: int
    xattr_prefix_count: int
    xattr_prefix_start: int
    packed_nid: int
    xattr_filter_reserved: int

    @property
    def block_size(self) -> int:
        return 1 << self.blkszbits

    @property
    def has_xattr_filter(self) -> bool:
        return bool(self.feature_compat & C.COMPAT_XATTR_FILTER) and self.xattr_filter_reserved == 0

    def compat_names(self) -> list[str]:
        return _bit_names(self.feature_compat, C.COMPAT_NAMES)

    def incompat_names(self) -> list[str]:
        return _bit_names(self.feature_incompat, C.INCOMPAT_NAMES)


def _bit_names(value: int, names: dict[int, str]) -> list[str]:
    out = []
    bit = 1
    while bit <= value:
        if value & bit:
            out.append(names.get(bit, f"{bit:#x}"))
        bit <<= 1
    return out


def parse_header(buf, path: str) -> ComposefsHeader | None:
    """Return the composefs header, or None when bytes 0..1023 are all zero (plain EROFS)."""
    magic, version, flags, cfs_version = C.HEADER.unpack_from(buf, 0)
    if magic != C.COMPOSEFS_MAGIC:
        if not any(buf[0:C.EROFS_SUPER_OFFSET]):
            return None
        raise FormatError(f"not a composefs image: bad magic {magic:#010x} (expected {C.COMPOSEFS_MAGIC:#010x})",
                          path=path, offset=0)
    if version != C.COMPOSEFS_HEADER_VERSION:
        raise UnsupportedError(f"unsupported composefs header version {version} (expected 1)",
                               path=path, offset=4)
    return ComposefsHeader(magic, version, flags, cfs_version)


def parse_superblock(buf, path: str) -> Superblock:
    off = C.EROFS_SUPER_OFFSET
    sb = Superblock(*C.SUPERBLOCK.unpack_from(buf, off))
    if sb.magic != C.EROFS_SUPER_MAGIC:
        raise FormatError(f"bad EROFS superblock magic {sb.magic:#010x} (expected {C.EROFS_SUPER_MAGIC:#010x})",
                          path=path, offset=off)
    if sb.blkszbits != 12:
        raise UnsupportedError(f"unsupported block size 2^{sb.blkszbits} (composefs images use 4096)",
                               path=path, offset=off + 0x0C)
    unknown = sb.feature_incompat & ~C.INCOMPAT_ACCEPTED
    if unknown:
        names = ", ".join(_bit_names(unknown, C.INCOMPAT_NAMES))
        raise UnsupportedError(f"unsupported EROFS feature: {names} (feature_incompat {sb.feature_incompat:#x})",
                               path=path, offset=off + 0x50)
    for field, value, rel in (("available_compr_algs", sb.available_compr_algs, 0x54),
                              ("extra_devices", sb.extra_devices, 0x56),
                              ("sb_extslots", sb.sb_extslots, 0x0D),
                              ("packed_nid", sb.packed_nid, 0x60)):
        if value:
            raise UnsupportedError(f"unsupported EROFS feature: {field} = {value} (compression/devices)",
                                   path=path, offset=off + rel)
    size = len(buf)
    if sb.blocks and sb.blocks * sb.block_size > size:
        raise FormatError(f"image truncated: superblock says {sb.blocks} blocks "
                          f"({sb.blocks * sb.block_size} bytes), file has {size}",
                          path=path, offset=off + 0x24)
    return sb
