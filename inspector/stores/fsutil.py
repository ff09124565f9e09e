"""Read-only filesystem helpers shared by the store discovery modules.

Discovery looks at directories an attacker may have shaped (a container image's layer store, a
repository copied from elsewhere), so every helper here obeys the same rules:

* nothing is ever written, locked or created;
* files are opened ``O_RDONLY | O_NOFOLLOW`` (plus ``O_NOATIME`` where permitted) so a symlink
  planted in place of a metadata file cannot redirect a read outside the store;
* symlinks that the layout *does* use (composefs-rs ``images/``, ``streams/`` and their
  ``refs/``) are resolved by hand, one component at a time, and resolution stops as soon as a
  step would leave the store root: the outside target is never even ``lstat``-ed.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Iterator

from inspector.errors import StoreError

#: Metadata files larger than this are refused rather than read into memory.
MAX_METADATA_BYTES = 512 * 1024 * 1024

_O_NOATIME = getattr(os, "O_NOATIME", 0)


def open_ro(path: str | os.PathLike) -> int:
    """Open *path* read-only without following a final symlink; O_NOATIME when allowed.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; callers
    fstat the descriptor and refuse anything that is not a regular file.

    O_NOATIME fails with EPERM when we do not own the file, so fall back without it.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC   # a FIFO never blocks the open
    if _O_NOATIME:
        try:
            return os.open(path, flags | _O_NOATIME)
        except PermissionError:
            pass
    return os.open(path, flags)


def read_bytes(path: Path, limit: int = MAX_METADATA_BYTES) -> bytes:
    """Read a whole small metadata file (refusing symlinks and non-regular files)."""
    try:
        fd = open_ro(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError("is a symlink, refusing to follow it", path=path) from None
        raise StoreError(f"cannot open: {e.strerror}", path=path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError("not a regular file", path=path)
        if st.st_size > limit:
            raise StoreError(f"file too large ({st.st_size} bytes)", path=path)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    except OSError as e:
        raise StoreError(f"cannot read: {e.strerror}", path=path) from None
    finally:
        os.close(fd)


def read_json(path: Path) -> object:
    """Parse a JSON metadata file; any damage becomes a StoreError naming the file and position."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise StoreError(f"not valid UTF-8 JSON: {e.reason}", path=path, offset=e.start) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StoreError(f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})",
                         path=path, offset=e.pos) from None


def lexists(path: Path) -> bool:
    try:
        os.lstat(path)
        return True
    except (OSError, ValueError):      # ValueError: a NUL byte in a name taken from JSON
        return False


def is_dir(path: Path) -> bool:
    """A real directory (not a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    """A real regular file (not a symlink to one)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def list_names(path: str | os.PathLike, follow: bool = False) -> list[str]:
    """Names in a directory (unsorted; raises OSError), read through an ``O_NOATIME``
    descriptor: listing a directory with plain ``os.listdir``/``os.scandir`` updates its
    atime, and the tool must not change timestamps in a store.  Without *follow* a symlink
    is refused (ELOOP/ENOTDIR) rather than listed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = -1
    if _O_NOATIME:
        try:
            fd = os.open(path, flags | _O_NOATIME)
        except PermissionError:
            pass
    if fd < 0:
        fd = os.open(path, flags)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def walk(top: str | os.PathLike) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top, followlinks=False)`` with every directory listed by :func:`list_names`
    (O_NOATIME).  Entries are classified by ``lstat``: a symlink, even to a directory, is in
    the file list and never entered.  Top-down; pruning ``dirnames`` in place is honoured."""
    stack = [os.fspath(top)]
    while stack:
        d = stack.pop()
        try:
            names = list_names(d)
        except (OSError, ValueError):
            continue
        dirs: list[str] = []
        files: list[str] = []
        for n in names:
            try:
                st = os.lstat(os.path.join(d, n))
            except OSError:
                continue
            (dirs if stat.S_ISDIR(st.st_mode) else files).append(n)
        yield d, dirs, files
        stack.extend(os.path.join(d, n) for n in reversed(dirs))


def listdir(path: Path, follow: bool = False) -> list[str]:
    """Sorted entries of a directory, [] when it is missing, unreadable or (unless *follow*)
    a symlink: a store's own subdirectories are never listed through a link."""
    if not follow and not is_dir(path):
        return []
    try:
        return sorted(list_names(path, follow))
    except (OSError, ValueError):
        return []


class Escape(Exception):
    """A symlink resolution would leave the store root (or loops / dangles)."""


def resolve_within(root: Path, path: Path, max_links: int = 40) -> Path:
    """Resolve *path* (inside *root*) following symlinks, never stepping outside *root*.

    *root* must already be a real (symlink-free, absolute) path.  Returns the resolved path;
    raises :class:`Escape` with a short reason when a step leaves the root (an absolute target
    elsewhere, or ``..`` above the root), on a loop, or when a component does not exist.  The
    target of an escaping link is never touched.
    """
    root = Path(root)
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        raise Escape(f"{path} is not inside {root}") from None
    todo = list(rel.parts)
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise Escape("climbs above the store root")
            done.pop()
            continue
        cur = root.joinpath(*done, part)
        try:
            st = os.lstat(cur)
        except OSError as e:
            raise Escape(f"{cur}: {e.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise Escape("too many levels of symbolic links")
            try:
                target = os.readlink(cur)
            except OSError as e:
                raise Escape(f"{cur}: {e.strerror}") from None
            if os.path.isabs(target):
                try:
                    inside = Path(os.path.normpath(target)).relative_to(root)
                except ValueError:
                    raise Escape(f"points outside the store ({target})") from None
                done = []
                todo = list(inside.parts) + todo
            else:
                todo = list(Path(target).parts) + todo
            continue
        done.append(part)
    return root.joinpath(*done)


def link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def safe_text(s: str | bytes) -> str:
    """Escape control characters of an attacker-controlled name for one-line messages."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "backslashreplace")
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out)
