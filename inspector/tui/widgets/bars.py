"""Text bars: proportions drawn with block characters, safe in any terminal and in SVGs.

A bar is a :class:`rich.text.Text`, so it can go in a DataTable cell or a Static next to
escaped names without any markup being parsed.
"""

from __future__ import annotations

from rich.text import Text

FULL = "█"
LIGHT = "░"


def split_bar(parts: list[tuple[int, str]], total: int, width: int) -> Text:
    """One bar of *width* cells, each part (value, style) taking its share of *total*.

    Rounding never hides a non-zero part completely (it gets at least one cell when the bar
    has room), and the cells always add up to *width* so bars of one table line up.
    """
    width = max(width, 1)
    out = Text(no_wrap=True)
    if total <= 0:
        out.append(LIGHT * width, style="dim")
        return out
    cells = [round(v * width / total) if v > 0 else 0 for v, _ in parts]
    for i, (v, _) in enumerate(parts):
        if v > 0 and cells[i] == 0:
            cells[i] = 1
    used = sum(cells)
    # give or take cells from the largest part so the bar is exactly `width` (or less when
    # the parts do not fill the total)
    want = min(width, round(sum(v for v, _ in parts) * width / total))
    if used != want and any(cells):
        big = max(range(len(cells)), key=lambda i: cells[i])
        cells[big] = max(cells[big] + want - used, 0)
    for n, (_, style) in zip(cells, parts):
        out.append(FULL * n, style=style)
    rest = width - sum(cells)
    if rest > 0:
        out.append(LIGHT * rest, style="dim")
    return out


def shared_unique_bar(shared: int, unique: int, width: int, scale: int | None = None) -> Text:
    """Shared bytes (green) then unique bytes (blue) of one layer.  With *scale* (the largest
    layer's bytes) bar lengths compare layers; without it every bar is full width."""
    total = shared + unique if scale is None else max(scale, shared + unique)
    return split_bar([(shared, "bold green"), (unique, "blue")], total, width)


def ratio_bar(value: int, total: int, width: int, style: str = "green") -> Text:
    return split_bar([(value, style)], total, width)


def human_bytes(n: int | None) -> str:
    """Compact binary size for table cells: ``900 B``, ``11.7 KiB``, ``3.2 GiB``."""
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"   # pragma: no cover


def exact_bytes(n: int | None) -> str:
    """Exact figure with thousands separators, for detail panes: ``13,100 bytes``."""
    return "?" if n is None else f"{n:,} bytes"
