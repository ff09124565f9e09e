"""Reading a real directory tree the way ``mkcomposefs DIR`` does (format.md §7.2, §7.9).

* every entry is ``lstat``-ed (symlinks are never followed), xattrs come from
  ``listxattr``/``getxattr`` without following symlinks;
* regular files of 1–64 bytes are stored inline; larger ones are external, named by their
  fs-verity SHA-256 digest (payload ``xx/<62 hex>``, metacopy digest set);
* hardlinks are not detected: every path is its own inode with nlink 1 (like mkcomposefs);
* with a digest store, each external file is copied to ``STORE/xx/<62 hex>`` through a
  temporary file in the same directory (mode 0644, then rename), unless the object exists.

Files are opened read-only with O_NOFOLLOW (and O_NOATIME when permitted), so the source is
never modified and a symlink swapped in during the walk is refused rather than followed.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from inspector.composefs.dumpfile import (MAX_CHUNKS, MAX_NAME, Node, chunk_count,
                                          xattr_space_error)
from inspector.composefs.escape import display
from inspector.composefs.fsverity import FsVerityHasher
from inspector.errors import InspectError

INLINE_MAX = 64        # LCFS_RECOMMENDED_INLINE_CONTENT_MAX
_READ = 1 << 20


def kernel_rdev(dev: int) -> int:
    """st_rdev (glibc dev_t) to the 32-bit encoding stored in EROFS (Linux new_encode_dev)."""
    major, minor = os.major(dev), os.minor(dev)
    return ((minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)) & 0xFFFFFFFF


def _open_ro(path: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass
    return os.open(path, flags)


def _xattrs(path: str, skip: bool, user_only: bool) -> dict[bytes, bytes]:
    if skip:
        return {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out = {}
    for name in sorted(names):
        if user_only and not name.startswith("user."):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENODATA:   # removed meanwhile
                continue
            raise
        out[os.fsencode(name)] = value
    return out


class DigestStore:
    """``--digest-store DIR``: objects named ``xx/<62 hex>`` by fs-verity digest."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def add(self, src_fd: int, digest_hex: str) -> None:
        subdir = os.path.join(self.root, digest_hex[:2])
        dest = os.path.join(subdir, digest_hex[2:])
        if os.path.lexists(dest):
            return
        os.makedirs(subdir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp", dir=subdir)
        try:
            os.lseek(src_fd, 0, os.SEEK_SET)
            while True:
                chunk = os.read(src_fd, _READ)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            os.fchmod(fd, 0o644)
            os.close(fd)
            fd = -1
            os.rename(tmp, dest)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _regular(path: str, st: os.stat_result, node: Node, store: DigestStore | None) -> None:
    size = st.st_size
    if size == 0:
        return
    if chunk_count(size) > MAX_CHUNKS:
        raise InspectError("File too large", path=display(path))
    fd = _open_ro(path)
    try:
        if size <= INLINE_MAX:
            data = os.read(fd, size + 1)
            node.content = data[:size]
            node.size = len(node.content)
            return
        hasher = FsVerityHasher("sha256")
        total = 0
        while True:
            chunk = os.read(fd, _READ)
            if not chunk:
                break
            hasher.update(chunk)
            total += len(chunk)
        digest = hasher.digest()
        node.size = total
        node.digest = digest
        hexd = digest.hex()
        node.payload = f"{hexd[:2]}/{hexd[2:]}".encode()
        if store is not None:
            store.add(fd, hexd)
    finally:
        os.close(fd)


def _node_for(path: str, st: os.stat_result, skip_xattrs: bool, user_xattrs: bool) -> Node:
    node = Node(mode=st.st_mode & 0xFFFF, nlink=1, uid=st.st_uid, gid=st.st_gid,
                mtime_sec=st.st_mtime_ns // 1_000_000_000,
                mtime_nsec=st.st_mtime_ns % 1_000_000_000)
    node.xattrs = _xattrs(path, skip_xattrs, user_xattrs)
    err = xattr_space_error(node.xattrs)
    if err:
        raise InspectError(err, path=display(path))
    fmt = stat.S_IFMT(st.st_mode)
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        node.rdev = kernel_rdev(st.st_rdev)
    elif fmt == stat.S_IFDIR:
        node.children = {}
        node.nlink = 2
    return node


def read_directory(root: str, *, digest_store: str | None = None, skip_devices: bool = False,
                   skip_xattrs: bool = False, user_xattrs: bool = False) -> Node:
    """The tree under ``root`` as mkcomposefs reads it (objects copied to ``digest_store``)."""
    store = DigestStore(digest_store) if digest_store else None
    try:
        st = os.lstat(root)
        if not stat.S_ISDIR(st.st_mode):
            raise InspectError("source is not a directory (use --from-file for a dump)",
                               path=display(root))
        top = _node_for(root, st, skip_xattrs, user_xattrs)
        stack = [(root, top)]
        while stack:
            dpath, dnode = stack.pop()
            with os.scandir(dpath) as it:
                names = sorted(os.fsencode(e.name) for e in it)
            for name in names:
                if len(name) > MAX_NAME:
                    raise InspectError("name longer than 255 bytes", path=display(dpath))
                path = os.path.join(dpath, os.fsdecode(name))
                st = os.lstat(path)
                fmt = stat.S_IFMT(st.st_mode)
                if skip_devices and fmt in (stat.S_IFCHR, stat.S_IFBLK):
                    continue
                node = _node_for(path, st, skip_xattrs, user_xattrs)
                if fmt == stat.S_IFREG:
                    _regular(path, st, node, store)
                elif fmt == stat.S_IFLNK:
                    target = os.fsencode(os.readlink(path))
                    if not target or len(target) > 4095:
                        raise InspectError("symlink target longer than 4095 bytes",
                                           path=display(path))
                    node.payload = target
                    node.size = len(target)
                dnode.add_child(name, node)
                if node.children is not None:
                    stack.append((path, node))
    except OSError as e:
        raise InspectError(f"cannot read source: {e.strerror}",
                           path=display(os.fsdecode(e.filename or root))) from None
    return top
