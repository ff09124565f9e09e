"""Reader structure tests and clean failures on damaged images."""

from __future__ import annotations

import struct

import pytest

from conftest import IMAGES, SAMPLE
from inspector.cli import main
from inspector.composefs.image import open_image
from inspector.composefs.fsverity import fsverity_digest, FsVerityHasher
from inspector.errors import FormatError, PlainErofsError, UnsupportedError

SAMPLE_CFS = SAMPLE / "sample.cfs"


def patched(tmp_path, src, patches, name="img.cfs", truncate=None):
    data = bytearray(src.read_bytes())
    for off, b in patches:
        data[off:off + len(b)] = b
    if truncate is not None:
        data = data[:truncate]
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- structures ------------------------------------------------------------------------------

def test_superblock_and_header_of_sample():
    with open_image(SAMPLE_CFS) as img:
        assert img.header.composefs_version == 1 and img.header.has_acl
        assert (img.sb.root_nid, img.sb.inos, img.sb.blocks, img.sb.xattr_blkaddr) == (36, 1826, 24, 16)
        assert img.sb.compat_names() == ["mtime", "xattr_filter"]
        root = img.root
        assert (root.compact, root.layout_name, root.mode, root.size) == (True, "flat-plain", 0o40755, 4096)
        assert [x.name for x in img.raw_xattrs(root)] == [b"trusted.overlay.opaque"]
        assert img.xattrs(root) == []          # machinery hidden


def test_composefs_semantics_sample():
    with open_image(SAMPLE_CFS) as img:
        ino = img.lookup(b"/external/65bytes")
        assert img.payload(ino) == b"dc/bf6197a3e24f44f3a60ed326c5c41ba115fa995d02a6ed15d45a0a9e79ad32"
        assert img.digest(ino).hex() == "dcbf6197a3e24f44f3a60ed326c5c41ba115fa995d02a6ed15d45a0a9e79ad32"
        assert img.is_external(ino) and ino.layout_name == "chunk-based"
        wh = img.lookup(b"/devices/whiteout")
        assert img.is_whiteout(wh) and oct(img.display_mode(wh)) == "0o20000"
        op = img.lookup(b"/opaque-dir")
        assert img.xattrs(op) == [(b"trusted.overlay.opaque", b"y")]   # escaped user xattr unescaped
        assert [x.name for x in img.raw_xattrs(op)] == [b"trusted.overlay.overlay.opaque"]
        uid = img.lookup(b"/owners/uid100000")
        assert not uid.compact and uid.uid == 100000
        # the root stubs are hidden from the walk but present on disk
        names = {n for n, _nid, _ft in img.listdir(img.root)}
        assert b"00" in names and b"ab" in names
        assert all(e.path != b"/00" for e in img.walk())
        assert sum(1 for _ in img.walk()) == 1571


def test_hardlinks_detected():
    with open_image(IMAGES / "config-with-hard-link.cfs") as img:
        links = [(e.path, e.link_primary) for e in img.walk() if e.link_primary]
    assert links == [(b"/usr/bin/ls-hardlink", b"/usr/bin/ls")]


def test_inline_tail_and_multiblock_dir():
    with open_image(SAMPLE_CFS) as img:
        bigdir = img.lookup(b"/bigdir")
        assert bigdir.size == 25613 and bigdir.layout_name == "flat-inline"
        assert len(img.listdir(bigdir)) == 1500
        assert img.erofs.data_segments(bigdir)[-1][2] == 1037
    with open_image(IMAGES / "special.cfs") as img:
        for name, size, layout in [(b"/inline-large1", 4095, "flat-plain"), (b"/inline-large2", 4096, "flat-plain"),
                                   (b"/inline-large3", 4097, "flat-inline")]:
            ino = img.lookup(name)
            assert (ino.size, ino.layout_name) == (size, layout)
            assert len(img.read_inline(ino)) == size


def test_bigfile_logical_size_drives_no_read():
    with open_image(IMAGES / "bigfile.cfs") as img:
        (e,) = [e for e in img.walk() if e.depth == 1]
        assert e.inode.size == 9000000000000000
        segs = img.erofs.data_segments(e.inode)
        assert segs == [(0, None, 9000000000000000)]
        with pytest.raises(FormatError, match="refusing to materialise"):
            img.erofs.read(e.inode)


def test_rdev_decoding():
    with open_image(SAMPLE_CFS) as img:
        assert img.lookup(b"/devices/loop0").rdev_major_minor == (7, 0)
        assert img.lookup(b"/devices/null").rdev == 259


# -- fs-verity ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data,alg,want", [
    (b"", "sha256", "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"),
    (b"", "sha512", "ccf9e5aea1c2a64efa2f2354a6024b90dffde6bbc017825045dce374474e13d10adb9dadcc6ca8e17a3c075fbd31336e8f266ae6fa93a6c3bed66f9e784e5abf"),
    (b"a", "sha256", "bce75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557"),
    (b"hello\n", "sha256", "9c76eecc7b76fcb46199cb27b90cf59a660e10575bb0412128905129d5b1c2aa"),
    (b"hello world\n", "sha256", "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92"),
    (b"foo bar baz\n", "sha256", "91e7d88cb7bc9cf6d8db3b0ecf89af4abf204bef5b3ade5113d5b62ef374e70b"),
    (b"hello world, this is a test file with more than sixty-four bytes of content!!\n", "sha256",
     "7e6afbfda4799fe0d02f1cc3207dd7951a0c6ed48bfa93aa3b9f364e6ad11d7d"),
    (b"hello world, this is a test file with more than sixty-four bytes of content!!\n", "sha512",
     "985adf9d6251d6612e7aa6c025b815004a570638134621f4e445f2a74f90311a1e6eb0c69cb9068c6468b05f53b8f6d5f14e6f2f0a70ae5021435576cf760804"),
])
def test_fsverity_vectors(data, alg, want):
    assert fsverity_digest(data, alg).hex() == want


def test_fsverity_streaming_equals_oneshot():
    data = bytes(range(256)) * 4100   # 1049600 bytes: two tree levels, odd chunking
    h = FsVerityHasher()
    for i in range(0, len(data), 999):
        h.update(data[i:i + 999])
    assert h.digest() == fsverity_digest(data)
    assert h.digest() == h.digest()   # digest() does not consume state


# -- composefs_version 2 and sha512 (byte-patched; no fixture exists) --------------------------

def test_composefs_version_2_header_is_displayed(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(12, struct.pack("<I", 2))])
    with open_image(p) as img:
        assert img.composefs_version == 2
    code, out, _ = cli(capsys, "dump", p)
    assert code == 0 and out == (SAMPLE / "sample.dump").read_text(errors="surrogateescape")


def test_sha512_metacopy_algo_byte(tmp_path):
    """A 36-byte metacopy whose algorithm byte says sha512 is not a sha512 digest (needs 68 bytes)."""
    with open_image(SAMPLE_CFS) as img:
        ino = img.lookup(b"/external/65bytes")
        (meta,) = [x for x in img.raw_xattrs(ino) if x.name == b"trusted.overlay.metacopy"]
    value_off = meta.offset + 4 + len(meta.suffix)
    p = patched(tmp_path, SAMPLE_CFS, [(value_off + 3, b"\x02")])
    with open_image(p) as img:
        a = img.attrs(img.lookup(b"/external/65bytes"))
        assert a.digest_algorithm == "sha256" and a.dump_digest is not None  # C ignores algo byte


# -- clean failures ------------------------------------------------------------------------------

def expect_error(capsys, path, message, offset=None):
    code, out, err = cli(capsys, "dump", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    where = f"{path}: offset {offset:#x}: " if offset is not None else f"{path}: "
    assert err == f"cfs-inspect: {where}{message}\n"


def test_empty_file(tmp_path, capsys):
    p = tmp_path / "empty.cfs"
    p.write_bytes(b"")
    expect_error(capsys, p, "file too small for an EROFS image (0 bytes)", 0)


def test_truncated_halfway(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [], truncate=40960)
    expect_error(capsys, p, "image truncated: superblock says 24 blocks (98304 bytes), file has 40960", 0x424)


def test_bad_composefs_magic(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(0, b"XXXX")])
    expect_error(capsys, p, "not a composefs image: bad magic 0x58585858 (expected 0xd078629a)", 0)


def test_header_version(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(4, struct.pack("<I", 2))])
    expect_error(capsys, p, "unsupported composefs header version 2 (expected 1)", 4)


def test_bad_superblock_magic(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(1024, b"\0\0\0\0")])
    expect_error(capsys, p, "bad EROFS superblock magic 0x00000000 (expected 0xe0f5e1e2)", 0x400)


def test_bad_block_size(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(1024 + 12, b"\x0d")])
    expect_error(capsys, p, "unsupported block size 2^13 (composefs images use 4096)", 0x40C)


def test_unknown_incompat_feature(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(1024 + 0x50, struct.pack("<I", 0x40))])
    expect_error(capsys, p, "unsupported EROFS feature: xattr_prefixes (feature_incompat 0x40)", 0x450)


def test_root_nid_out_of_range(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(1024 + 0x0E, struct.pack("<H", 0xFFFF))])
    expect_error(capsys, p, "inode nid 65535 out of range", 0xFFFF * 32)


def test_compressed_layout(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(36 * 32, struct.pack("<H", 1 << 1))])
    expect_error(capsys, p, "inode nid 36: compressed data layout 1 (compressed-full) not supported", 36 * 32)


def test_directory_cycle(tmp_path, capsys):
    with open_image(SAMPLE_CFS) as img:
        (ab,) = [d for d in img.erofs.readdir(img.root) if d.name == b"ab"]
    p = patched(tmp_path, SAMPLE_CFS, [(ab.offset, struct.pack("<Q", 36))])
    expect_error(capsys, p, "directory cycle: /ab points back to directory nid 36", 36 * 32)


def test_nameoff_outside_block(tmp_path, capsys):
    with open_image(SAMPLE_CFS) as img:
        first = img.erofs.readdir(img.root)[0]
    p = patched(tmp_path, SAMPLE_CFS, [(first.offset + 8, struct.pack("<H", 5000))])
    expect_error(capsys, p, "directory nid 36: bad first nameoff 5000 in a 4096-byte block", first.offset + 8)


def test_plain_erofs_is_refused_by_compat_commands_but_opens(tmp_path, capsys):
    p = patched(tmp_path, SAMPLE_CFS, [(0, bytes(32))])
    expect_error(capsys, p, "plain EROFS image without a composefs header (composefs-info rejects it; "
                            "`cfs-inspect info` and `stat` can read it)", 0)
    assert main(["ls", str(p)]) == 2 and "plain EROFS" in capsys.readouterr().err
    with open_image(p) as img, pytest.raises(PlainErofsError):
        list(__import__("inspector.composefs.dump", fromlist=["x"]).ls_lines(img))
    code, out, _ = cli(capsys, "info", p)
    assert code == 0 and out.splitlines()[0] == f"{p}: plain EROFS"
    code, out, _ = cli(capsys, "stat", p, "/external/65bytes")
    assert code == 0 and "payload     dc/bf6197" in out


def test_unsupported_is_a_format_error():
    assert issubclass(UnsupportedError, FormatError)


def test_hardlink_whose_inode_declares_nlink_1(tmp_path, capsys):
    """--from-file images store the dump's NLINK verbatim, so a hardlinked inode may say nlink 1;
    the walk must still report the later path as a link to the first one in sorted order."""
    from inspector.composefs.dumpfile import parse_dump
    from inspector.composefs.writer import build_image

    dump = (b"/ 0 40755 2 0 0 0 0.0 - - -\n"
            b"/z 5 100644 1 0 0 0 0.0 - hello -\n"
            b"/a 0 @100644 1 0 0 0 0.0 /z - -\n"
            b"/d 0 40755 2 0 0 0 0.0 - - -\n"
            b"/d/x 0 @100644 1 0 0 0 0.0 /z - -\n")
    p = tmp_path / "links.cfs"
    p.write_bytes(build_image(parse_dump(dump)))
    with open_image(p) as img:
        assert img.lookup(b"/a").nlink == 1
        assert [(e.path, e.link_primary) for e in img.walk()][1:] == [
            (b"/a", None), (b"/d", None), (b"/d/x", b"/a"), (b"/z", b"/a")]
    assert cli(capsys, "dump", p)[1].splitlines()[3:] == [
        "/d/x 5 @100644 1 0 0 0 0.0 /a hello -", "/z 5 @100644 1 0 0 0 0.0 /a hello -"]


def test_negative_build_time_is_signed(tmp_path, capsys):
    from inspector.composefs.dumpfile import parse_dump
    from inspector.composefs.writer import build_image

    dump = b"/ 0 40755 2 0 0 0 -7.5 - - -\n/f 0 100644 1 0 0 0 -7.5 - - -\n"
    p = tmp_path / "neg.cfs"
    p.write_bytes(build_image(parse_dump(dump)))
    with open_image(p) as img:
        assert img.lookup(b"/f").compact and img.lookup(b"/f").mtime == -7
    assert cli(capsys, "dump", p)[1].splitlines()[1] == "/f 0 100644 1 0 0 0 -7.5 - - -"


def test_sha512_metacopy_68_bytes_byte_patched(tmp_path, capsys):
    """composefs-rs sha512 repositories write a 68-byte metacopy (algo 2).  No fixture has one,
    so an image is built with a same-sized user xattr that is then byte-patched into
    ``trusted.overlay.metacopy``: the digest is read as sha512, and ``dump`` prints DIGEST ``-``
    exactly as composefs-info does (it only takes 36-byte metacopies, upstream quirk 4)."""
    from inspector.composefs.dumpfile import parse_dump
    from inspector.composefs.writer import build_image

    digest = bytes(range(64))
    value = b"\x00\x44\x00\x02" + digest
    dump = (b"/ 0 40755 2 0 0 0 0.0 - - -\n/f 100 100644 1 0 0 0 0.0 98/5adf - - user.PPPPPPPPPPPPPPPP="
            + b"".join(b"\\x%02x" % c for c in value) + b"\n")
    data = bytearray(build_image(parse_dump(dump)))
    with open_image("built", data=bytes(data)) as img:
        (x,) = [x for x in img.raw_xattrs(img.lookup(b"/f")) if x.name == b"user.PPPPPPPPPPPPPPPP"]
    assert data[x.offset:x.offset + 4] == bytes([16, 1, 68, 0])
    data[x.offset + 1] = 4                                   # prefix index: trusted.
    data[x.offset + 4:x.offset + 20] = b"overlay.metacopy"
    p = tmp_path / "sha512.cfs"
    p.write_bytes(bytes(data))
    with open_image(p) as img:
        a = img.attrs(img.lookup(b"/f"))
        assert a.digest == digest and a.digest_algorithm == "sha512"
        assert a.payload == b"98/5adf" and a.xattrs == ()
    code, out, _ = cli(capsys, "dump", p)
    assert out.splitlines()[1] == "/f 100 100644 1 0 0 0 0.0 98/5adf - -"
    code, out, _ = cli(capsys, "stat", p, "/f", "--json")
    d = __import__("json").loads(out)
    assert d["digest"] == digest.hex() and d["digest_algorithm"] == "sha512" and d["metacopy_size"] == 68
