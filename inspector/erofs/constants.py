"""EROFS on-disk constants and precompiled structs (Linux fs/erofs/erofs_fs.h).

Everything here is little-endian and read with ``struct.Struct.unpack_from`` on the image's
memoryview, so no per-field slicing or copying happens on the hot path.
"""

from __future__ import annotations

import struct

EROFS_SUPER_OFFSET = 1024
EROFS_SUPER_MAGIC = 0xE0F5E1E2
COMPOSEFS_MAGIC = 0xD078629A
COMPOSEFS_HEADER_VERSION = 1

#: composefs header: magic, version, flags, composefs_version, 4 unused u32
HEADER = struct.Struct("<IIII16x")
#: superblock fields up to and including packed_nid / xattr_filter_reserved
SUPERBLOCK = struct.Struct("<IIIBBHQQIII I16s16sIHHHBBIQB")
SUPERBLOCK_SIZE = 128

COMPACT_INODE = struct.Struct("<HHHHIIIIHHI")      # 32 bytes
EXTENDED_INODE = struct.Struct("<HHHHQIIIIqII16x")  # 64 bytes
COMPACT_SIZE = 32
EXTENDED_SIZE = 64

XATTR_IBODY_HEADER = struct.Struct("<IB7x")   # name_filter, shared_count
XATTR_ENTRY = struct.Struct("<BBH")           # name_len, name_index, value_size
DIRENT = struct.Struct("<QHBB")               # nid, nameoff, file_type, reserved
DIRENT_SIZE = 12
U32 = struct.Struct("<I")
U16 = struct.Struct("<H")
CHUNK_INDEX = struct.Struct("<HHI")           # advise/startblk_hi, device_id, blkaddr

NULL_ADDR = 0xFFFFFFFF

# i_format
LAYOUT_FLAT_PLAIN = 0
LAYOUT_COMPRESSED_FULL = 1
LAYOUT_FLAT_INLINE = 2
LAYOUT_COMPRESSED_COMPACT = 3
LAYOUT_CHUNK_BASED = 4
LAYOUT_NAMES = {
    0: "flat-plain",
    1: "compressed-full",
    2: "flat-inline",
    3: "compressed-compact",
    4: "chunk-based",
}
SUPPORTED_LAYOUTS = (LAYOUT_FLAT_PLAIN, LAYOUT_FLAT_INLINE, LAYOUT_CHUNK_BASED)

CHUNK_FORMAT_BLKBITS_MASK = 0x1F
CHUNK_FORMAT_INDEXES = 0x20
CHUNK_FORMAT_48BIT = 0x40

# feature bits
COMPAT_SB_CHKSUM = 0x1
COMPAT_MTIME = 0x2
COMPAT_XATTR_FILTER = 0x4
COMPAT_NAMES = {0x1: "sb_chksum", 0x2: "mtime", 0x4: "xattr_filter", 0x10: "plain_xattr_pfx",
                0x20: "ishare_xattrs"}
INCOMPAT_ZERO_PADDING = 0x1
INCOMPAT_CHUNKED_FILE = 0x4
INCOMPAT_NAMES = {0x1: "zero_padding", 0x2: "compr_cfgs", 0x4: "chunked_file", 0x8: "device_table",
                  0x10: "ztailpacking", 0x20: "fragments", 0x40: "xattr_prefixes", 0x80: "48bit",
                  0x100: "metabox"}
#: Incompatible features a reader of uncompressed composefs-style images can accept.
INCOMPAT_ACCEPTED = INCOMPAT_ZERO_PADDING | INCOMPAT_CHUNKED_FILE

# dirent file types
FT_NAMES = {0: "unknown", 1: "reg", 2: "dir", 3: "chr", 4: "blk", 5: "fifo", 6: "sock", 7: "lnk"}

# xattr prefixes by short index
XATTR_PREFIXES = {
    0: b"",
    1: b"user.",
    2: b"system.posix_acl_access",
    3: b"system.posix_acl_default",
    4: b"trusted.",
    5: b"lustre.",
    6: b"security.",
}

# st_mode
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000
MODE_TO_FT = {S_IFREG: 1, S_IFDIR: 2, S_IFCHR: 3, S_IFBLK: 4, S_IFIFO: 5, S_IFSOCK: 6, S_IFLNK: 7}
TYPE_NAMES = {S_IFREG: "reg", S_IFDIR: "dir", S_IFCHR: "chr", S_IFBLK: "blk", S_IFIFO: "fifo",
              S_IFSOCK: "sock", S_IFLNK: "lnk"}

#: Kernel limits used as caps on untrusted sizes.
PATH_MAX = 4096
NAME_MAX = 255
XATTR_SIZE_MAX = 65536
MAX_DIR_DEPTH = 2048
