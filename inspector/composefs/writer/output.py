"""Putting an image in place atomically.

mkcomposefs creates its output first and leaves a 0-byte file behind on any failure
(format.md §11 quirk 10).  We build the whole image in memory, write it to a temporary file
in the destination directory and rename it over IMAGE only when complete, so a failure leaves
nothing behind and a reader never sees a half-written image.
"""

from __future__ import annotations

import os
import sys
import tempfile

from inspector.errors import InspectError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(data: bytes, dest: str) -> None:
    """Write ``data`` to ``dest`` via a temporary file in the same directory plus rename."""
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".tmp",
                                   dir=directory)
    except OSError as e:
        raise InspectError(f"cannot create output: {e.strerror}", path=dest) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise InspectError(f"cannot write output: {e.strerror}", path=dest) from None
        raise


def write_stdout(data: bytes) -> None:
    """IMAGE ``-``: refuse a terminal (binary garbage), as mkcomposefs does."""
    out = sys.stdout.buffer
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        raise InspectError("refusing to write an image to a terminal", path="-")
    out.write(data)
    out.flush()
