"""Number formatting for the core screens (sizes humanized the same way everywhere)."""

from __future__ import annotations

import humanize


def human(n: int | None) -> str:
    """``1.2 KiB`` style; ``-`` when unknown."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    return humanize.naturalsize(n, binary=True, format="%.1f")


def exact(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def human_exact(n: int | None) -> str:
    """``9.0 KiB (9,000 bytes)``: the humanized size and the exact byte count."""
    if n is None:
        return "-"
    return f"{human(n)} ({n:,} bytes)" if n >= 1024 else f"{n:,} bytes"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"
