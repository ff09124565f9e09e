"""Hostile images: one named regression test per class of corruption in issue 6.

Each test damages a valid image in one precise way and checks that the reader raises its own
error (:class:`FormatError` or :class:`UnsupportedError`) with the exact message and byte
offset, and that ``cfs-inspect dump`` prints exactly that one line and exits 2.  The images are
the ``special`` fixture and a small image built by the writer (``BUILT_DUMP`` in
``tests/fuzz/cfs_fuzz.py``: nested directories, hardlinks, shared xattrs, chunk-based files).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fuzz.cfs_fuzz import BUILT_DUMP, built_images, check_case, read_everything
from inspector.cli import main
from inspector.composefs.dumpfile import parse_dump
from inspector.composefs.image import open_image
from inspector.composefs.writer import build_image
from inspector.erofs import constants as C
from inspector.errors import FormatError, UnsupportedError

from conftest import IMAGES

SPECIAL = (IMAGES / "special.cfs").read_bytes()
BUILT = built_images()[0][1]          # composefs v0 image of BUILT_DUMP
SB = 1024


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, offset, value)
    return bytes(buf)


def dirent(data: bytes, dirpath: bytes, name: bytes):
    img = open_image("<t>", data=data)
    for d in img.erofs.readdir(img.lookup(dirpath)):
        if d.name == name:
            return d
    raise KeyError(name)


def inode_of(data: bytes, path: bytes):
    return open_image("<t>", data=data).lookup(path)


def expect(tmp_path: Path, data: bytes, cls: type, offset: int, message: str, capsys,
           argv: tuple[str, ...] = ("dump",)) -> None:
    """The whole read path raises exactly ``cls(message)`` at ``offset``; the CLI (``dump``, or
    *argv* for damage only ``stat`` reads) prints it on one line and exits 2."""
    with pytest.raises(FormatError) as ei:
        read_everything(data, name=str(tmp_path / "bad.cfs"))
    check_error(ei.value, cls, offset, message)
    path = tmp_path / "bad.cfs"
    path.write_bytes(data)
    capsys.readouterr()
    assert main([argv[0], str(path), *argv[1:]]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err == f"cfs-inspect: {path}: offset {offset:#x}: {message}\n"


def check_error(err: FormatError, cls: type, offset: int, message: str) -> None:
    assert type(err) is cls
    assert (err.message, err.offset) == (message, offset)


def expect_chunk_map(tmp_path: Path, data: bytes, cls: type, offset: int, message: str, capsys) -> None:
    """Damage to an external file's chunk map: the reader raises it when asked for the data
    segments; ``stat`` shows it as one line of the details (the content is in the object
    store, so the rest of the inode is still worth showing)."""
    path = tmp_path / "bad.cfs"
    path.write_bytes(data)
    img = open_image(path)
    with pytest.raises(FormatError) as ei:
        img.erofs.data_segments(img.lookup(b"/x"))
    check_error(ei.value, cls, offset, message)
    capsys.readouterr()
    assert main(["stat", str(path), "/x"]) == 0
    assert (f"  data        chunk map unusable: {path}: offset {offset:#x}: {message}"
            in capsys.readouterr().out.splitlines())


# -- truncated anywhere ---------------------------------------------------------------------

def test_truncated_below_superblock(tmp_path, capsys):
    expect(tmp_path, SPECIAL[:1100], FormatError, 1100, "file too small for an EROFS image (1100 bytes)", capsys)


def test_truncated_inside_image_is_caught_by_block_count(tmp_path, capsys):
    expect(tmp_path, SPECIAL[:12300], FormatError, SB + 0x24,
           "image truncated: superblock says 7 blocks (28672 bytes), file has 12300", capsys)


def test_truncated_with_block_count_zeroed_inside_root_directory(tmp_path, capsys):
    # With blocks = 0 the size check cannot help: each structure must check its own bounds.
    data = patch(SPECIAL, SB + 0x24, "I", 0)[:12300]
    root = inode_of(SPECIAL, b"/")
    expect(tmp_path, data, FormatError, root.offset + 0x10,
           f"inode nid {root.nid}: data blocks 3.. (4096 bytes) run past end of image", capsys)


def test_truncated_inside_inode_table(tmp_path, capsys):
    data = patch(SPECIAL, SB + 0x24, "I", 0)[:0x480 + 20]      # root inode cut after 20 bytes
    expect(tmp_path, data, FormatError, 0x480, "inode nid 36 out of range", capsys)


def test_truncation_at_every_boundary_never_escapes(tmp_path):
    """Every structure boundary of the built image, with and without the block count fixed."""
    from fuzz.cfs_fuzz import build_map
    m = build_map(BUILT)
    cuts = sorted(b for b in m.boundaries if b < len(BUILT))
    assert len(cuts) > 150
    ok = 0
    for cut in cuts:
        for fix in (False, True):
            data = BUILT[:cut]
            if fix and cut >= SB + 0x28:
                data = patch(data, SB + 0x24, "I", 0)
            ok += check_case(data).ok       # raises AssertionError on a violation
    assert ok == 0


# -- bad magic, block size -------------------------------------------------------------------

def test_bad_composefs_magic(tmp_path, capsys):
    expect(tmp_path, patch(SPECIAL, 0, "I", 0x12345678), FormatError, 0,
           "not a composefs image: bad magic 0x12345678 (expected 0xd078629a)", capsys)


def test_bad_erofs_magic(tmp_path, capsys):
    expect(tmp_path, patch(SPECIAL, SB, "I", 0xE0F5E1E3), FormatError, SB,
           "bad EROFS superblock magic 0xe0f5e1e3 (expected 0xe0f5e1e2)", capsys)


@pytest.mark.parametrize("bits", [0, 9, 16, 255])
def test_bad_block_size(tmp_path, capsys, bits):
    expect(tmp_path, patch(SPECIAL, SB + 0x0C, "B", bits), UnsupportedError, SB + 0x0C,
           f"unsupported block size 2^{bits} (composefs images use 4096)", capsys)


# -- nids out of range -----------------------------------------------------------------------

def test_root_nid_out_of_range(tmp_path, capsys):
    expect(tmp_path, patch(SPECIAL, SB + 0x0E, "H", 0xFFFF), FormatError, 0xFFFF * 32,
           "inode nid 65535 out of range", capsys)


def test_dirent_nid_out_of_range(tmp_path, capsys):
    d = dirent(BUILT, b"/a/b", b"link")
    nid = 1 << 40
    expect(tmp_path, patch(BUILT, d.offset, "Q", nid), FormatError, nid * 32,
           f"inode nid {nid} out of range", capsys)


def test_meta_blkaddr_out_of_range(tmp_path, capsys):
    expect(tmp_path, patch(SPECIAL, SB + 0x28, "I", 0xFFFFFFFF), FormatError, 0xFFFFFFFF * 4096 + 36 * 32,
           "inode nid 36 out of range", capsys)


# -- unknown layout, i_format ----------------------------------------------------------------

@pytest.mark.parametrize("layout,what", [(1, "compressed"), (3, "compressed"), (5, "unknown"),
                                         (6, "unknown"), (7, "unknown")])
def test_unknown_layout(tmp_path, capsys, layout, what):
    ino = inode_of(BUILT, b"/a/b/c/deep")
    names = {1: "compressed-full", 3: "compressed-compact"}
    expect(tmp_path, patch(BUILT, ino.offset, "H", layout << 1), UnsupportedError, ino.offset,
           f"inode nid {ino.nid}: {what} data layout {layout} ({names.get(layout, 'reserved')}) not supported",
           capsys)


def test_invalid_i_format_bits(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a/b/c/deep")
    expect(tmp_path, patch(BUILT, ino.offset, "H", 0x24), FormatError, ino.offset,
           f"inode nid {ino.nid}: invalid i_format 0x24", capsys)


# -- inode and xattr sizes past the end ------------------------------------------------------

def test_extended_inode_past_end(tmp_path, capsys):
    # the last inode slot of a blocks=0 image, flagged extended: 64 bytes do not fit
    last = len(SPECIAL) - 32
    data = patch(patch(SPECIAL, SB + 0x24, "I", 0), last, "H", 1)
    data = patch(data, SB + 0x0E, "H", last // 32)      # make it the root so the walk reaches it
    expect(tmp_path, data, FormatError, last, f"inode nid {last // 32}: extended inode past end of image", capsys)


def test_xattr_icount_past_end(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a/b/c/deep")
    expect(tmp_path, patch(BUILT, ino.offset + 2, "H", 0xFFFF), FormatError, ino.offset + 2,
           f"inode nid {ino.nid}: xattr area ({12 + 4 * 0xFFFE} bytes) runs past end of image", capsys)


def test_shared_count_overflows_xattr_area(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a/b/c")
    start = ino.offset + 32
    expect(tmp_path, patch(BUILT, start + 4, "B", 255), FormatError, start + 4,
           f"inode nid {ino.nid}: 255 shared xattr ids overflow the xattr area", capsys)


def test_inline_xattr_value_size_past_area(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a/b/hard")
    x = open_image("<t>", data=BUILT).erofs.xattrs(ino)[0]
    expect(tmp_path, patch(BUILT, x.offset + 2, "H", 0xFFFF), FormatError, x.offset,
           f"inode nid {ino.nid}: xattr entry ({len(x.suffix)}+65535 bytes) runs past its area", capsys)


def test_shared_xattr_value_size_near_64k_at_end_of_image(tmp_path, capsys):
    # The shared table is the last metadata of the built image: a value_size of 65535 there
    # must not read (or allocate) past the end.
    img = open_image("<t>", data=BUILT)
    ino = img.lookup(b"/a")
    x = [x for x in img.erofs.xattrs(ino) if x.shared][0]
    data = patch(BUILT, x.offset + 2, "H", 0xFFFF)
    expect(tmp_path, data, FormatError, x.offset,
           f"inode nid {img.root.nid}: xattr entry ({len(x.suffix)}+65535 bytes) runs past its area", capsys)


def test_shared_xattr_id_out_of_range(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a")
    sid_at = ino.offset + 32 + 12
    off = 2 * 4096 + 4 * 0xFFFFFFFF
    img = open_image("<t>", data=BUILT)
    expect(tmp_path, patch(BUILT, sid_at, "I", 0xFFFFFFFF), FormatError, off,
           f"inode nid {ino.nid}: shared xattr entry past end of its area", capsys)
    del img


def test_unknown_xattr_prefix_index(tmp_path, capsys):
    ino = inode_of(BUILT, b"/a/b/hard")
    x = open_image("<t>", data=BUILT).erofs.xattrs(ino)[0]
    expect(tmp_path, patch(BUILT, x.offset + 1, "B", 9), FormatError, x.offset + 1,
           f"inode nid {ino.nid}: unknown xattr prefix index 9", capsys)


# -- directory entries: nameoff, empty and unterminated names --------------------------------

def test_first_nameoff_outside_block(tmp_path, capsys):
    b = inode_of(BUILT, b"/a/b")
    d = dirent(BUILT, b"/a/b", b".")
    expect(tmp_path, patch(BUILT, d.offset + 8, "H", 0xFFF0), FormatError, d.offset + 8,
           f"directory nid {b.nid}: bad first nameoff {0xFFF0} in a {b.size}-byte block", capsys)


def test_nameoff_outside_block(tmp_path, capsys):
    b = inode_of(BUILT, b"/a/b")
    c = dirent(BUILT, b"/a/b", b"c")
    d = dirent(BUILT, b"/a/b", b"hard")
    c_off = struct.unpack_from("<H", BUILT, c.offset + 8)[0]
    # the name of "c" now ends at 4096, far past the 89-byte block
    expect(tmp_path, patch(BUILT, d.offset + 8, "H", 0x1000), FormatError, c.offset + 8,
           f"directory nid {b.nid}: entry 2 has bad name bounds [{c_off}, 4096) in a {b.size}-byte block", capsys)


def test_empty_name(tmp_path, capsys):
    b = inode_of(BUILT, b"/a/b")
    dh = dirent(BUILT, b"/a/b", b"hard")
    dh2 = dirent(BUILT, b"/a/b", b"hard2")
    nameoff = struct.unpack_from("<H", BUILT, dh.offset + 8)[0]
    data = patch(BUILT, dh2.offset + 8, "H", nameoff)       # "hard" now spans 0 bytes
    expect(tmp_path, data, FormatError, dh.offset + 8,
           f"directory nid {b.nid}: entry 3 has bad name bounds [{nameoff}, {nameoff}) in a {b.size}-byte block",
           capsys)


def test_unterminated_name_longer_than_name_max(tmp_path, capsys):
    """The last name of a block ends at the first NUL or the block end; without a NUL it may
    not run past NAME_MAX."""
    # BUILT_DUMP without /x and /y: the 255-byte name is the last of the one-block root
    dump = b"".join(ln for ln in BUILT_DUMP.splitlines(True) if not ln.startswith((b"/x ", b"/y ")))
    data = build_image(parse_dump(dump))
    img = open_image("<t>", data=data)
    root = img.root
    (_f, blk, n), = img.erofs.data_segments(root)
    assert n == 4096
    ents = img.erofs.readdir(root)
    last = ents[-1]
    assert last.name == b"n" * 255
    lastoff = struct.unpack_from("<H", data, last.offset + 8)[0]
    assert 4096 - lastoff > 255
    buf = bytearray(data)
    buf[blk + lastoff: blk + 4096] = b"n" * (4096 - lastoff)      # no terminating NUL
    expect(tmp_path, bytes(buf), FormatError, last.offset + 8,
           f"directory nid {root.nid}: entry {len(ents) - 1} has bad name bounds [{lastoff}, 4096) "
           f"in a 4096-byte block", capsys)


def test_unterminated_name_up_to_block_end_is_valid():
    """A last name that fills the block exactly needs no NUL (the kernel and C agree)."""
    img = open_image("<t>", data=BUILT)
    last = img.erofs.readdir(img.root)[-1]
    lastoff = struct.unpack_from("<H", BUILT, last.offset + 8)[0]
    buf = bytearray(BUILT)
    buf[3 * 4096 + lastoff: 4 * 4096] = b"y" * (4096 - lastoff)
    img = open_image("<t>", data=bytes(buf))
    assert img.listdir(img.root)[-1][0] == b"y" * (4096 - lastoff)


def test_hole_in_directory(tmp_path, capsys):
    # a chunk-based directory whose chunk is a hole: no entries to read
    b = inode_of(BUILT, b"/a/b")
    data = patch(BUILT, b.offset, "H", C.LAYOUT_CHUNK_BASED << 1)
    data = patch(data, b.offset + 16, "I", 0)
    data = patch(data, b.data_offset, "I", 0xFFFFFFFF)
    expect(tmp_path, data, FormatError, b.offset, f"directory nid {b.nid}: hole in directory data", capsys)


# -- directory cycles ------------------------------------------------------------------------

def test_directory_entry_pointing_at_itself(tmp_path, capsys):
    c = inode_of(BUILT, b"/a/b/c")
    d = dirent(BUILT, b"/a/b/c", b"deep")
    data = patch(patch(BUILT, d.offset, "Q", c.nid), d.offset + 10, "B", 2)
    expect(tmp_path, data, FormatError, c.offset,
           f"directory cycle: /a/b/c/deep points back to directory nid {c.nid}", capsys)


def test_directory_entry_pointing_at_ancestor(tmp_path, capsys):
    root = inode_of(BUILT, b"/")
    d = dirent(BUILT, b"/a/b", b"c")
    expect(tmp_path, patch(BUILT, d.offset, "Q", root.nid), FormatError, root.offset,
           f"directory cycle: /a/b/c points back to directory nid {root.nid}", capsys)


def chain(n: int) -> bytes:
    lines = [b"/ 4096 40755 2 0 0 0 0.0 - - -"]
    for k in range(1, n + 1):
        lines.append(b"/d" * k + b" 4096 40755 2 0 0 0 0.0 - - -")
    return b"\n".join(lines) + b"\n"


def test_directory_depth_2048_is_allowed():
    img = open_image("<t>", data=build_image(parse_dump(chain(2048))))
    entries = list(img.walk())
    assert (len(entries), entries[-1].depth) == (2049, 2048)


def test_directory_deeper_than_2048(tmp_path, capsys):
    """A chain of 2049 directories (legal to build, refused to walk: the kernel-style cap)."""
    data = build_image(parse_dump(chain(2049)))
    img = open_image("<t>", data=data)
    deepest = list(img.walk(max_depth=4096))[-1]
    assert deepest.depth == 2049
    expect(tmp_path, data, FormatError, deepest.inode.offset,
           f"directory nesting deeper than 2048 at {(b'/d' * 2049).decode()[:200]}", capsys)
