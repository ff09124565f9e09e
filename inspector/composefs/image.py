"""composefs meaning on top of an EROFS image.

Implements what the C loader (``composefs-info``) sees: payloads from
``trusted.overlay.redirect``, fs-verity digests from ``trusted.overlay.metacopy``, the 256 root
whiteout stubs hidden, escaped user whiteouts turned back into chr 0/0, escaped
``trusted.overlay.overlay.*`` xattrs unescaped, composefs machinery hidden, and hardlinks
detected as repeated nids in a sorted depth-first walk.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from inspector.erofs import constants as C
from inspector.erofs.image import ErofsImage
from inspector.erofs.inode import Inode
from inspector.errors import FormatError

PREFIXES = C.XATTR_PREFIXES
_XENT = C.XATTR_ENTRY.unpack_from
_U32 = C.U32.unpack_from
_TRUSTED = 4
_USER = 1
_REDIRECT = b"overlay.redirect"
_METACOPY = b"overlay.metacopy"
_ESCAPED = b"overlay.overlay."
_OVERLAY = b"overlay."
_WHITEOUT = b"overlay.overlay.whiteout"
_WHITEOUTS = b"overlay.overlay.whiteouts"
_USER_HIDDEN = (b"overlay.whiteout", b"overlay.whiteouts")
_K_VISIBLE, _A_REDIRECT, _A_METACOPY, _A_WHITEOUT, _A_HIDE = 0, 1, 2, 3, 4
#: trusted.* suffixes with a composefs meaning (looked up once per xattr on the hot path).
_TRUSTED_ACTIONS = {_REDIRECT: _A_REDIRECT, _METACOPY: _A_METACOPY, _WHITEOUT: _A_WHITEOUT,
                    _WHITEOUTS: _A_HIDE}
_S_IFMT = C.S_IFMT
_S_IFREG = C.S_IFREG
_S_IFCHR = C.S_IFCHR
_S_IFDIR = C.S_IFDIR

#: C loader refuses inline regular-file content larger than this (LCFS_INLINE_CONTENT_MAX).
INLINE_CONTENT_MAX = 5000


def _classify(idx: int, suffix: bytes, value: bytes) -> tuple[int, object]:
    """What the C loader does with one xattr: ``(_K_VISIBLE, (name, value))`` to show it,
    ``(_A_REDIRECT|_A_METACOPY, value)`` to consume it (regular files only),
    ``(_A_WHITEOUT, (name, value))`` for the escaped whiteout marker, ``(_A_HIDE, None)``."""
    if idx == _TRUSTED:
        action = _TRUSTED_ACTIONS.get(suffix)
        if action is None:
            if not suffix.startswith(_OVERLAY):
                return _K_VISIBLE, (b"trusted." + suffix, value)
            if suffix.startswith(_ESCAPED):         # escaped user xattr: strip one "overlay."
                return _K_VISIBLE, (b"trusted." + suffix[8:], value)
            return _A_HIDE, None                     # other trusted.overlay.*: machinery
        if action == _A_WHITEOUT:
            return _A_WHITEOUT, (b"trusted." + suffix[8:], value)
        return action, value
    if idx == _USER and suffix in _USER_HIDDEN:
        return _A_HIDE, None
    return _K_VISIBLE, (PREFIXES[idx] + suffix, value)


class CfsAttrs:
    """What composefs makes of one inode's xattrs.

    A ``__slots__`` class (not a frozen dataclass) because one is built per inode on the dump
    hot path; treat it as immutable.
    """

    __slots__ = ("payload", "metacopy", "xattrs", "whiteout")

    def __init__(self, payload: bytes | None, metacopy: bytes | None,
                 xattrs: tuple[tuple[bytes, bytes], ...], whiteout: bool) -> None:
        self.payload = payload        # redirect minus leading "/" (regular files only)
        self.metacopy = metacopy      # raw metacopy value (b"" = metacopy without digest)
        self.xattrs = xattrs          # user-visible (name, value) in loader order
        self.whiteout = whiteout      # escaped user whiteout (shown as chr 0/0)

    @property
    def digest(self) -> bytes | None:
        """The fs-verity digest (32 bytes sha256, 64 bytes sha512), or None."""
        m = self.metacopy
        if m and len(m) == 36:
            return m[4:36]
        if m and len(m) == 68 and m[3] == 2:
            return m[4:68]
        return None

    @property
    def dump_digest(self) -> bytes | None:
        """DIGEST as composefs-info prints it: only from a 36-byte metacopy (upstream quirk 4)."""
        m = self.metacopy
        return m[4:36] if m and len(m) == 36 else None

    @property
    def digest_algorithm(self) -> str | None:
        d = self.digest
        return None if d is None else ("sha256" if len(d) == 32 else "sha512")


_EMPTY_ATTRS = CfsAttrs(None, None, (), False)


class Entry:
    """One path of the walk.  ``link_primary`` is set on later paths of a hardlinked inode."""

    __slots__ = ("path", "inode", "link_primary", "depth")

    def __init__(self, path: bytes, inode: Inode, link_primary: bytes | None, depth: int) -> None:
        self.path = path
        self.inode = inode
        self.link_primary = link_primary
        self.depth = depth

    def __repr__(self) -> str:
        return f"Entry({self.path!r}, nid={self.inode.nid}{', link' if self.link_primary else ''})"


class ComposefsImage:
    """A composefs (or plain EROFS) image opened for reading."""

    def __init__(self, erofs: ErofsImage) -> None:
        self.erofs = erofs
        self.path = erofs.path
        self.header = erofs.header
        self.sb = erofs.sb
        self._attrs: dict[int, CfsAttrs] = {}
        self._shared_classified: dict[int, tuple[int, object]] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._attrs.clear()
        self.erofs.close()

    def __enter__(self) -> "ComposefsImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_plain_erofs(self) -> bool:
        return self.header is None

    @property
    def composefs_version(self) -> int | None:
        return None if self.header is None else self.header.composefs_version

    # -- inodes --------------------------------------------------------------------------------
    def inode(self, nid: int) -> Inode:
        return self.erofs.inode(nid)

    @property
    def root(self) -> Inode:
        return self.erofs.root

    def attrs(self, inode: Inode, cache: bool = True) -> CfsAttrs:
        """composefs interpretation of the inode's xattrs (cached per nid unless *cache* is
        False: whole-image passes visit each inode once, and a cache would grow with it)."""
        if not cache:
            return self._compute_attrs(inode)
        a = self._attrs.get(inode.nid)
        if a is None:
            a = self._attrs[inode.nid] = self._compute_attrs(inode)
        return a

    def _compute_attrs(self, inode: Inode) -> CfsAttrs:
        icount = inode.xattr_icount
        if icount == 0:
            return _EMPTY_ATTRS
        erofs = self.erofs
        buf = erofs.buf
        start = inode.offset + (32 if inode.compact else 64)
        end = start + 8 + 4 * icount          # = start + 12 + 4 * (icount - 1)
        shared_count = buf[start + 4]
        pos = start + 12 + 4 * shared_count
        if pos > end:
            erofs.xattr_tuples(inode)  # raises the precise error
        # (kind, item) per xattr, in loader order: inline entries, then shared ones.
        classified: list[tuple[int, object]] = []
        add = classified.append
        # Inline entries, parsed straight from the buffer (the dump's hot path).  The C loader's
        # loop runs while pos + 4 < end, so a final 4-byte entry is never seen (quirk 5).
        stop = end - 4
        while pos < stop:
            name_len, idx, value_size = _XENT(buf, pos)
            vstart = pos + 4 + name_len
            vend = vstart + value_size
            if vend > end or idx not in PREFIXES:
                erofs.xattr_tuples(inode)  # raises the precise error
            add(_classify(idx, buf[pos + 4:vstart], buf[vstart:vend]))
            pos = (vend + 3) & ~3
        if shared_count:
            # Shared entries recur across many inodes: classify each table entry once.
            cache = self._shared_classified
            nid = inode.nid
            for p in range(start + 12, start + 12 + 4 * shared_count, 4):
                sid = _U32(buf, p)[0]
                c = cache.get(sid)
                if c is None:
                    e = erofs.shared_xattr(sid, nid)
                    c = cache[sid] = _classify(e[0], e[1], e[2])
                add(c)
        is_reg = inode.mode & _S_IFMT == _S_IFREG
        payload = None
        metacopy = None
        whiteout = False
        out: list[tuple[bytes, bytes]] = []
        for kind, item in classified:
            if kind == _K_VISIBLE:
                out.append(item)
            elif kind == _A_REDIRECT:
                if is_reg:
                    payload = item[1:] if len(item) > 1 and item[:1] == b"/" else item
            elif kind == _A_METACOPY:
                if is_reg:
                    metacopy = item
            elif kind == _A_WHITEOUT:
                if is_reg:
                    whiteout = True
                else:
                    out.append(item)
            # _A_HIDE: machinery (root opaque, whiteouts markers, unknown trusted.overlay.*)
        if whiteout:
            payload = None
            metacopy = None
        return CfsAttrs(payload, metacopy, tuple(out), whiteout)

    def payload(self, inode: Inode) -> bytes | None:
        return self.attrs(inode).payload

    def digest(self, inode: Inode) -> bytes | None:
        return self.attrs(inode).digest

    def xattrs(self, inode: Inode) -> list[tuple[bytes, bytes]]:
        return list(self.attrs(inode).xattrs)

    def raw_xattrs(self, inode: Inode):
        return self.erofs.xattrs(inode)

    def is_whiteout(self, inode: Inode) -> bool:
        """An escaped user whiteout (regular file carrying trusted.overlay.overlay.whiteout)."""
        return self.attrs(inode).whiteout if inode.xattr_icount else False

    def is_hidden_stub(self, inode: Inode) -> bool:
        """chr 0/0 on disk: a root whiteout stub (or any on-disk whiteout, which C skips too)."""
        return inode.mode & _S_IFMT == _S_IFCHR and inode.u == 0

    def is_external(self, inode: Inode) -> bool:
        """Regular file whose content is outside the image (chunk-based, all holes)."""
        return (inode.mode & _S_IFMT == _S_IFREG and inode.size > 0
                and inode.layout == C.LAYOUT_CHUNK_BASED)

    def read_inline(self, inode: Inode) -> bytes:
        """Content stored in the image for a regular file (flat layouts), capped by the C limit."""
        if inode.layout == C.LAYOUT_CHUNK_BASED or inode.size == 0:
            return b""
        if inode.size > INLINE_CONTENT_MAX:
            raise FormatError(f"inode nid {inode.nid}: inline content of {inode.size} bytes exceeds "
                              f"{INLINE_CONTENT_MAX}", path=self.path, offset=inode.offset + 8)
        return self.erofs.read(inode)

    def read_link(self, inode: Inode) -> bytes:
        return self.erofs.read_link(inode)

    def display_mode(self, inode: Inode) -> int:
        """st_mode as composefs shows it (escaped whiteouts become chr)."""
        if inode.xattr_icount and self.attrs(inode).whiteout:
            return (inode.mode & 0o7777) | _S_IFCHR
        return inode.mode

    # -- directories ---------------------------------------------------------------------------
    def listdir(self, inode: Inode) -> list[tuple[bytes, int, int]]:
        """``(name, nid, file_type)`` of a directory, without ``.``/``..``, stubs included."""
        return [d for d in self.erofs.iter_dir_raw(inode) if d[0] != b"." and d[0] != b".."]

    def children(self, inode: Inode) -> list[tuple[bytes, Inode]]:
        """Visible children (as dump shows them): on-disk chr 0/0 entries are hidden."""
        out = []
        for name, nid, _ft in self.listdir(inode):
            child = self.erofs.inode(nid)
            if child.mode & _S_IFMT == _S_IFCHR and child.u == 0:
                continue
            out.append((name, child))
        return out

    def lookup(self, path: bytes | str) -> Inode:
        """Resolve an absolute path without following symlinks."""
        if isinstance(path, str):
            path = os.fsencode(path)
        inode = self.root
        for part in path.split(b"/"):
            if not part or part == b".":
                continue
            if not inode.is_dir():
                raise FileNotFoundError(path.decode("utf-8", "surrogateescape"))
            for name, nid, _ft in self.erofs.iter_dir_raw(inode):
                if name == part:
                    inode = self.erofs.inode(nid)
                    break
            else:
                raise FileNotFoundError(path.decode("utf-8", "surrogateescape"))
        return inode

    # -- walk ------------------------------------------------------------------------------------
    def walk(self, filter_names: Iterable[bytes] | None = None, *, include_stubs: bool = False,
             max_depth: int = C.MAX_DIR_DEPTH) -> Iterator[Entry]:
        """Depth-first pre-order walk in on-disk (sorted) order, as composefs-info dump.

        On-disk chr 0/0 inodes are skipped (the root stubs; C skips them everywhere) unless
        *include_stubs*.  A directory reached twice is a cycle and raises FormatError.
        """
        for path, inode, primary, depth in self.walk_tuples(filter_names, include_stubs=include_stubs,
                                                            max_depth=max_depth):
            yield Entry(path, inode, primary, depth)

    def _first_paths(self, filt, include_stubs: bool, max_depth: int) -> dict[int, bytes]:
        """The first path (sorted DFS order) of every non-directory nid: the hardlink primaries.

        One re-walk for the whole walk (not one per repeated nid, which a hostile image with
        many understated hardlinks would turn quadratic), with the caller's walk options so
        the same entries (stubs included or not) are seen."""
        return {inode.nid: path for path, inode, primary, _d in
                self.walk_tuples(filt, include_stubs=include_stubs, max_depth=max_depth, _keep_all=True)
                if primary is None and not inode.is_dir()}

    def walk_tuples(self, filter_names: Iterable[bytes] | None = None, *, include_stubs: bool = False,
                    max_depth: int = C.MAX_DIR_DEPTH, _keep_all: bool = False
                    ) -> Iterator[tuple[bytes, Inode, bytes | None, int]]:
        """:meth:`walk` as ``(path, inode, link_primary, depth)`` tuples (the dump's fast path)."""
        erofs = self.erofs
        inode_of = erofs.load_inode
        iter_dir = erofs.iter_dir_raw
        root = erofs.root
        if not root.is_dir():
            raise FormatError(f"root inode nid {root.nid} is not a directory", path=self.path,
                              offset=root.offset)
        filt = None if filter_names is None else {os.fsencode(n) if isinstance(n, str) else n
                                                   for n in filter_names}
        yield (b"/", root, None, 0)
        seen_dirs = {root.nid}
        # Hardlink detection by repeated nid.  Paths are kept only for inodes that declare
        # nlink > 1; a bare set remembers the rest (on-disk nlink may understate links in
        # --from-file images, so a repeat there is resolved by a rare re-walk).
        primaries: dict[int, bytes] = {}
        seen_files: set[int] = set()
        # Every dirent of a genuine image is stored once (12 bytes each), so a walk can never
        # meet more than size // 12 of them; more means directories share data blocks, which
        # would multiply the work (and a dump's output) far beyond the image's size.
        budget = erofs.size // C.DIRENT_SIZE
        entries = iter_dir(root)
        budget -= len(entries)
        stack: list[tuple[bytes, Iterator]] = [(b"", iter(entries))]
        skip_stubs = not include_stubs
        while stack:
            prefix, it = stack[-1]
            depth = len(stack)
            pre = prefix + b"/"
            only = filt if depth == 1 else None
            for name, nid, _ft in it:
                if name == b"." or name == b"..":
                    continue
                if only is not None and name not in only:
                    continue
                child = inode_of(nid)
                fmt = child.mode & _S_IFMT
                if fmt == _S_IFCHR and child.u == 0 and skip_stubs:
                    continue
                path = pre + name
                if fmt == _S_IFDIR:
                    if nid in seen_dirs:
                        raise FormatError(f"directory cycle: {path.decode('utf-8', 'surrogateescape')[:200]} "
                                          f"points back to directory nid {nid}", path=self.path,
                                          offset=child.offset)
                    seen_dirs.add(nid)
                    if depth > max_depth:
                        raise FormatError(f"directory nesting deeper than {max_depth} at "
                                          f"{path.decode('utf-8', 'surrogateescape')[:200]}", path=self.path,
                                          offset=child.offset)
                    yield (path, child, None, depth)
                    entries = iter_dir(child)
                    budget -= len(entries)
                    if budget < 0:
                        raise FormatError(f"directory nid {nid}: more directory entries than the image "
                                          "can hold (directories share data blocks)", path=self.path,
                                          offset=child.offset)
                    stack.append((path, iter(entries)))
                    break
                if nid not in seen_files:
                    seen_files.add(nid)
                    if _keep_all or child.nlink > 1:
                        primaries[nid] = path
                    yield (path, child, None, depth)
                else:
                    primary = primaries.get(nid)
                    if primary is None:
                        # nlink understated: find every primary once, then keep all paths
                        primaries = self._first_paths(filt, include_stubs, max_depth)
                        _keep_all = True
                        primary = primaries[nid]
                    yield (path, child, primary, depth)
            else:
                stack.pop()


def open_image(path: str | os.PathLike, *, data: bytes | None = None) -> ComposefsImage:
    """Open a composefs image (or a plain EROFS image: check ``is_plain_erofs``)."""
    return ComposefsImage(ErofsImage(path, data=data))
