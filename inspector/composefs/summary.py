"""Structured summaries of an image and of one inode, shared by `info`, `stat`, JSON and the TUI.

Values are plain Python (ints, bytes, lists) in a stable order; the CLI decides how to render
them.  Bytes stay bytes here so each front end applies its own escaping.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat as _stat
from collections import Counter
from dataclasses import dataclass, field

from inspector.composefs.fsverity import fsverity_digest_path
from inspector.composefs.image import ComposefsImage
from inspector.erofs.inode import Inode
from inspector.errors import FormatError


@dataclass(slots=True)
class ImageInfo:
    path: str
    file_size: int
    kind: str                                  # "composefs" | "plain EROFS"
    header_version: int | None
    composefs_version: int | None
    header_flags: int | None
    has_acl: bool
    block_size: int
    inodes_in_superblock: int
    blocks: int
    root_nid: int
    meta_blkaddr: int
    xattr_blkaddr: int
    feature_compat: list[str]
    feature_incompat: list[str]
    build_time: int
    build_time_nsec: int
    fsverity_digest: str
    entries: int = 0                           # paths, as dump lists them
    distinct_inodes: int = 0
    hardlinked_paths: int = 0
    whiteout_stubs: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_layout: dict[str, int] = field(default_factory=dict)
    compact_inodes: int = 0
    extended_inodes: int = 0
    user_whiteouts: int = 0
    objects: int = 0                           # distinct payloads
    external_files: int = 0
    external_bytes: int = 0
    files_with_digest: int = 0
    inline_files: int = 0
    inline_bytes: int = 0


def format_mtime(sec: int, nsec: int) -> str:
    try:
        t = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc)
        return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{nsec:09d}" if nsec else "") + " UTC"
    except (OverflowError, OSError, ValueError):
        return f"{sec}.{nsec}"


def image_info(img: ComposefsImage) -> ImageInfo:
    sb = img.sb
    hdr = img.header
    info = ImageInfo(
        path=img.path,
        file_size=os.stat(img.path).st_size if os.path.exists(img.path) else img.erofs.size,
        kind="plain EROFS" if hdr is None else "composefs",
        header_version=None if hdr is None else hdr.version,
        composefs_version=None if hdr is None else hdr.composefs_version,
        header_flags=None if hdr is None else hdr.flags,
        has_acl=bool(hdr and hdr.has_acl),
        block_size=sb.block_size,
        inodes_in_superblock=sb.inos,
        blocks=sb.blocks,
        root_nid=sb.root_nid,
        meta_blkaddr=sb.meta_blkaddr,
        xattr_blkaddr=sb.xattr_blkaddr,
        feature_compat=sb.compat_names(),
        feature_incompat=sb.incompat_names(),
        build_time=sb.build_time,
        build_time_nsec=sb.build_time_nsec,
        fsverity_digest=fsverity_digest_path(img.path).hex() if os.path.isfile(img.path) else "",
    )
    by_type: Counter[str] = Counter()
    by_layout: Counter[str] = Counter()
    inodes = 0
    payloads: set[bytes] = set()
    for e in img.walk(include_stubs=True):
        ino = e.inode
        if e.link_primary is not None:     # a later path of an inode already counted
            info.entries += 1
            info.hardlinked_paths += 1
            continue
        inodes += 1
        if e.depth == 1 and img.is_hidden_stub(ino) and len(e.path) == 3:
            info.whiteout_stubs += 1
            continue
        info.entries += 1
        kind = ino.type_name
        a = img.attrs(ino, cache=False)
        if a.whiteout:
            kind = "whiteout"
            info.user_whiteouts += 1
        by_type[kind] += 1
        by_layout[ino.layout_name] += 1
        if ino.compact:
            info.compact_inodes += 1
        else:
            info.extended_inodes += 1
        if ino.is_reg() and ino.size:
            if img.is_external(ino):
                info.external_files += 1
                info.external_bytes += ino.size
                if a.payload is not None:
                    payloads.add(a.payload)
                if a.digest is not None:
                    info.files_with_digest += 1
            else:
                info.inline_files += 1
                info.inline_bytes += ino.size
    info.distinct_inodes = inodes - info.whiteout_stubs
    info.by_type = dict(sorted(by_type.items()))
    info.by_layout = dict(sorted(by_layout.items()))
    info.objects = len(payloads)
    return info


@dataclass(slots=True)
class InodeDetails:
    path: bytes
    nid: int
    offset: int
    inode_kind: str            # compact / extended
    inode_size: int
    layout: str
    format: int
    mode: int
    mode_string: str
    type: str
    nlink: int
    uid: int
    gid: int
    size: int
    mtime: int
    mtime_nsec: int
    ino: int
    rdev: int
    rdev_major_minor: tuple[int, int] | None
    xattr_icount: int
    xattr_size: int
    xattr_filter: int | None
    raw_xattrs: list[dict]
    xattrs: list[tuple[bytes, bytes]]
    payload: bytes | None
    digest: str | None
    digest_algorithm: str | None
    metacopy_size: int | None
    whiteout: bool
    symlink_target: bytes | None
    inline_size: int
    data_segments: list[tuple[int, int | None, int]]
    hardlinks: list[bytes]
    #: why data_segments is empty for an external file whose chunk map is unusable (mkcomposefs
    #: does not reserve the whole map of a huge file with xattrs: fixture bigfile-xattr)
    data_error: str | None = None


def mode_string(mode: int) -> str:
    return _stat.filemode(mode)


def inode_details(img: ComposefsImage, path: bytes, inode: Inode | None = None,
                  hardlinks: list[bytes] | None = None) -> InodeDetails:
    ino = inode if inode is not None else img.lookup(path)
    a = img.attrs(ino)
    raw = []
    for x in img.raw_xattrs(ino):
        raw.append({"name": x.name, "index": x.index, "value": x.value, "shared": x.shared,
                    "offset": x.offset, "shared_id": x.shared_id})
    mode = img.display_mode(ino)
    data_error = None
    try:
        segs = img.erofs.data_segments(ino) if not ino.is_device() else []
    except FormatError as e:
        # An external file's content is in the object store; a bad chunk map should not
        # hide the rest of its details.  Inline or directory data errors still raise.
        if not img.is_external(ino):
            raise
        segs, data_error = [], str(e)
    if hardlinks is None:
        hardlinks = find_hardlinks(img, ino) if not ino.is_dir() and ino.nlink > 1 else [path]
    return InodeDetails(
        path=path, nid=ino.nid, offset=ino.offset,
        inode_kind="compact" if ino.compact else "extended", inode_size=ino.inode_size,
        layout=ino.layout_name, format=ino.format, mode=mode, mode_string=mode_string(mode),
        type="whiteout" if a.whiteout else ino.type_name,
        nlink=ino.nlink, uid=ino.uid, gid=ino.gid, size=0 if a.whiteout else ino.size,
        mtime=ino.mtime, mtime_nsec=ino.mtime_nsec, ino=ino.ino, rdev=ino.rdev,
        rdev_major_minor=ino.rdev_major_minor if ino.is_device() else None,
        xattr_icount=ino.xattr_icount, xattr_size=ino.xattr_size, xattr_filter=img.erofs.xattr_filter(ino),
        raw_xattrs=raw, xattrs=list(a.xattrs), payload=a.payload,
        digest=a.digest.hex() if a.digest is not None else None, digest_algorithm=a.digest_algorithm,
        metacopy_size=len(a.metacopy) if a.metacopy is not None else None, whiteout=a.whiteout,
        symlink_target=img.read_link(ino) if ino.is_lnk() else None,
        inline_size=sum(s[2] for s in segs if s[1] is not None) if ino.is_reg() else 0,
        data_segments=segs, hardlinks=hardlinks, data_error=data_error,
    )


def find_hardlinks(img: ComposefsImage, inode: Inode) -> list[bytes]:
    """Every path of the image that names *inode* (a full walk: only for a single stat)."""
    return [e.path for e in img.walk() if e.inode.nid == inode.nid]
