"""Write composefs images byte-identical to mkcomposefs 1.0.8 (format.md §4–§7).

``build_image(root, options)`` turns a :class:`~inspector.composefs.dumpfile.Node` tree (from
a dump via :mod:`inspector.composefs.dumpfile`, from a directory via :mod:`.source`, or built
in memory) into the image bytes.  The pipeline is split by concern:

* :mod:`.prepare` — options, version choice, overlay xattrs, whiteout stubs, BFS inode order;
* :mod:`.layout` — data layouts, compact/extended, nids, shared xattr table, block numbers;
* :mod:`.serialize` — encoding into bytes;
* :mod:`.xattrs` — prefix table, entries and the xxh32 bloom filter;
* :mod:`.source` — reading a real directory tree and filling a digest store;
* :mod:`.output` — atomic writes (temporary file in the destination directory, rename).
"""

from __future__ import annotations

from inspector.composefs.dumpfile import Node
from inspector.composefs.writer.layout import compute_layout
from inspector.composefs.writer.prepare import WriterOptions, build_inodes, choose_version
from inspector.composefs.writer.serialize import serialize

__all__ = ["WriterOptions", "build_image"]


def build_image(root: Node, options: WriterOptions | None = None) -> bytes:
    """The complete image for the tree rooted at ``root``."""
    opts = options or WriterOptions()
    version = choose_version(root, opts)
    order = build_inodes(root, opts, version)
    lay = compute_layout(order)
    return bytes(serialize(order, lay, version))
