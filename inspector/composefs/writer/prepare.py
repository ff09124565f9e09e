"""From a source tree to the list of inodes mkcomposefs writes, in its order (format.md §7).

What happens here, in the C writer's terms:

* build options (``--use-epoch``, ``--skip-devices``, ``--skip-xattrs``, ``--user-xattrs``);
* composefs_version: ``min_version``, raised to 1 when user whiteouts exist and
  ``max_version`` allows it;
* overlay xattrs: user ``trusted.overlay.*`` escaped to ``trusted.overlay.overlay.*``, user
  whiteouts (chr 0/0) turned into escaped regular files with markers on their parent (plus the
  ``opaque=x`` pair in version 1), root ``trusted.overlay.opaque=y``, metacopy/redirect on
  external regular files;
* the 256 root whiteout stubs ``00``..``ff`` (those a real root entry does not shadow);
* inode order: breadth-first over sorted children, hardlinks sharing their target's inode.

The source :class:`~inspector.composefs.dumpfile.Node` tree is never modified.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from inspector.composefs.dumpfile import Node

S_IFMT = 0o170000
OVERLAY = b"trusted.overlay."
ESCAPED = b"trusted.overlay.overlay."
METACOPY = b"trusted.overlay.metacopy"
REDIRECT = b"trusted.overlay.redirect"
OPAQUE = b"trusted.overlay.opaque"
SELINUX = b"security.selinux"
STUB_MODE = stat.S_IFCHR | 0o644


@dataclass(slots=True, frozen=True)
class WriterOptions:
    """mkcomposefs options that change the image (``--threads`` does not)."""

    min_version: int = 0
    max_version: int = 1
    use_epoch: bool = False
    skip_devices: bool = False
    skip_xattrs: bool = False
    user_xattrs: bool = False


class WInode:
    """One inode as it will be written; filled in by prepare, layout and serialise."""

    __slots__ = ("mode", "nlink", "uid", "gid", "rdev", "sec", "nsec", "size", "xattrs",
                 "parent", "entries", "data", "external", "payload", "digest", "ino", "nid",
                 "compact", "layout", "nblocks", "tail", "blkaddr", "xattr_blob", "isize",
                 "chunk_format", "nchunks", "subdirs", "dirblocks")

    def __init__(self, mode: int, nlink: int, uid: int, gid: int, rdev: int, sec: int,
                 nsec: int, size: int) -> None:
        self.mode = mode
        self.nlink = nlink
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.sec = sec
        self.nsec = nsec
        self.size = size
        self.xattrs: dict[bytes, bytes] | list[tuple[bytes, bytes]] = {}
        self.parent: WInode | None = None
        self.entries: list | None = None     # dirs: [(name, WInode)] sorted, without . and ..
        self.data: bytes | None = None       # inline file content or symlink target
        self.external = False
        self.payload: bytes | None = None
        self.digest: bytes | None = None
        self.ino = 0
        self.nid = 0
        self.compact = True
        self.layout = 0
        self.nblocks = 0
        self.tail = 0
        self.blkaddr = 0
        self.xattr_blob = b""
        self.isize = 32
        self.chunk_format = 0
        self.nchunks = 0
        self.subdirs = 0
        self.dirblocks: list[int] | None = None  # dirs: index of the first entry of each block


def _user_xattrs(node: Node, opts: WriterOptions) -> dict[bytes, bytes]:
    if opts.skip_xattrs or not node.xattrs:
        return {}
    if not opts.user_xattrs and not any(k.startswith(OVERLAY) for k in node.xattrs):
        return dict(node.xattrs)        # the common case: nothing to filter or escape
    out = {}
    for k, v in node.xattrs.items():
        if opts.user_xattrs and not k.startswith(b"user."):
            continue
        if k.startswith(OVERLAY):
            k = ESCAPED + k[len(OVERLAY):]
        out[k] = v
    return out


def _is_whiteout(node: Node) -> bool:
    return stat.S_IFMT(node.mode) == stat.S_IFCHR and node.rdev == 0


def _skipped(node: Node, opts: WriterOptions) -> bool:
    return opts.skip_devices and stat.S_IFMT(node.mode) in (stat.S_IFCHR, stat.S_IFBLK)


def has_user_whiteouts(root: Node, opts: WriterOptions) -> bool:
    stack = [root]
    while stack:
        n = stack.pop()
        for child in n.children.values():
            if child.link_to is not None or _skipped(child, opts):
                continue
            if child.children is not None:
                stack.append(child)
            elif _is_whiteout(child):
                return True
    return False


def choose_version(root: Node, opts: WriterOptions) -> int:
    version = opts.min_version
    if version < 1 <= opts.max_version and has_user_whiteouts(root, opts):
        version = 1
    return version


def _make(node: Node, opts: WriterOptions) -> WInode:
    sec, nsec = (0, 0) if opts.use_epoch else (node.mtime_sec, node.mtime_nsec)
    w = WInode(node.mode, node.nlink, node.uid, node.gid, node.rdev, sec, nsec, node.size)
    w.xattrs = _user_xattrs(node, opts)
    fmt = stat.S_IFMT(node.mode)
    if fmt == stat.S_IFREG:
        w.rdev = 0
        if node.content is not None:
            w.data = node.content
            w.size = len(node.content)
        elif node.size > 0:
            w.external = True
            w.payload = node.payload
            w.digest = node.digest
            w.xattrs[METACOPY] = (b"\x00\x24\x00\x01" + node.digest
                                  if node.digest is not None and len(node.digest) == 32 else b"")
            if node.payload:
                w.xattrs[REDIRECT] = b"/" + node.payload
    elif fmt == stat.S_IFLNK:
        w.data = node.payload
        w.size = len(node.payload)
        w.rdev = 0
    elif fmt == stat.S_IFDIR:
        w.entries = []
        w.rdev = 0
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        w.size = 0
    else:
        w.size = 0
        w.rdev = 0
    return w


def build_inodes(root: Node, opts: WriterOptions, version: int) -> list[WInode]:
    """All inodes in breadth-first order (root first, nid order), directories linked."""
    rw = _make(root, opts)
    rw.parent = rw
    rw.xattrs[OPAQUE] = b"y"
    order = [rw]
    node_of: dict[int, WInode] = {id(root): rw}
    pending_links: list[tuple[list, int, Node]] = []
    src = [root]
    i = 0
    while i < len(order):
        w = order[i]
        node = src[i]
        i += 1
        if w.entries is None:
            continue
        names = sorted(node.children)
        if node is root:
            stubs = {b"%02x" % n for n in range(256)} - node.children.keys()
            names = sorted(stubs.union(names))
        entries = w.entries
        whiteouts = False
        for name in names:
            child = node.children.get(name)
            if child is None:  # a root stub
                s = WInode(STUB_MODE, 1, rw.uid, rw.gid, 0, rw.sec, rw.nsec, 0)
                sel = rw.xattrs.get(SELINUX)
                if sel is not None:
                    s.xattrs = {SELINUX: sel}
                s.parent = w
                entries.append((name, s))
                order.append(s)
                src.append(None)
                continue
            if _skipped(child, opts):
                continue
            if child.link_to is not None:
                if _skipped(child.link_to, opts):
                    continue
                pending_links.append((entries, len(entries), child.link_to))
                entries.append((name, None))
                continue
            cw = _make(child, opts)
            if _is_whiteout(child):
                cw.mode = stat.S_IFREG | (child.mode & 0o7777)
                cw.rdev = 0
                cw.size = 0
                cw.xattrs[ESCAPED + b"whiteout"] = b""
                cw.xattrs[b"user.overlay.whiteout"] = b""
                whiteouts = True
            cw.parent = w
            if cw.entries is not None:
                w.subdirs += 1
            entries.append((name, cw))
            node_of[id(child)] = cw
            order.append(cw)
            src.append(child)
        if whiteouts:
            w.xattrs[ESCAPED + b"whiteouts"] = b""
            w.xattrs[b"user.overlay.whiteouts"] = b""
            if version >= 1:
                w.xattrs[ESCAPED + b"opaque"] = b"x"
                w.xattrs[b"user.overlay.opaque"] = b"x"
    for entries, idx, target in pending_links:
        entries[idx] = (entries[idx][0], node_of[id(target)])
    for ino, w in enumerate(order):
        w.ino = ino
        w.xattrs = sorted(w.xattrs.items())
        if w.entries is not None:
            w.nlink = 2 + w.subdirs
    return order
