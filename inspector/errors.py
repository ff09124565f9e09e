"""Error types shared by every layer.

Every failure caused by input data (an image, a dump, a store) is an :class:`InspectError`
subclass carrying *where* it happened, so the CLI can print one line and exit 2 and the TUI can
show the problem in place.  No other exception type may escape the reader on bad data.
"""

from __future__ import annotations

import os


class InspectError(Exception):
    """Base class: a problem with the input, not a bug in cfs-inspect."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.offset = offset

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.offset is not None:
            where.append(f"offset {self.offset:#x}")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class FormatError(InspectError):
    """The image bytes violate the EROFS/composefs format (carries a byte offset)."""


class UnsupportedError(FormatError):
    """The image is valid EROFS but uses a feature cfs-inspect does not read (compression...)."""


class PlainErofsError(FormatError):
    """The image is plain EROFS without a composefs header (composefs-info rejects it)."""


class DumpParseError(InspectError):
    """A composefs-dump(5) text could not be parsed or fails mkcomposefs validation."""


class StoreError(InspectError):
    """A store (graphroot, repository, sysroot) is unreadable or inconsistent."""
