"""Image writer: byte-identical to mkcomposefs on every fixture, CLI behaviour, validation."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest

from conftest import IMAGES, SAMPLE
from inspector.cli import main
from inspector.commands.mkimage import versions
from inspector.composefs.dumpfile import Node, parse_dump
from inspector.composefs.fsverity import fsverity_digest
from inspector.composefs.writer import WriterOptions, build_image
from inspector.composefs.writer.source import kernel_rdev, read_directory
from inspector.errors import InspectError

LENIENT = {"longlink", "no-newline"}   # fixture README §1: parsed without CFS_PARSE_STRICT
FIXTURE_INPUTS = (
    [(IMAGES / f"{n}.input.dump", IMAGES / f"{n}.mkcomposefs-args", IMAGES / f"{n}.cfs", n)
     for n in sorted(p.name[:-len(".input.dump")] for p in IMAGES.glob("*.input.dump"))]
    + [(SAMPLE / f"{n}.input.dump", SAMPLE / f"{n}.input.mkcomposefs-args", SAMPLE / f"{n}.cfs", n)
       for n in ("sample", "sample-v0")]
)

TINY = (b"/ 0 40755 2 0 0 0 0.0 - - -\n"
        b"/a 6 100644 1 0 0 0 0.0 - hello\\n - user.x=1\n"
        b"/b 1 100644 1 0 0 0 0.0 bc/e75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557"
        b" - bce75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557 user.x=1\n"
        b"/l 2 120777 1 0 0 0 0.0 /a - -\n")
TINY_SHA256 = "2b9cd322d74fdf629e236166a6d4585d780a1972a36e77003ca18bf2639c906b"
TINY_VERITY = "d877be7fdb809f7b1f044fae5ade2dd09e43a3efaa26295ccc6d0e820e95aec3"


@pytest.mark.parametrize("dump, argfile, expected, name", FIXTURE_INPUTS,
                         ids=[f[3] for f in FIXTURE_INPUTS])
def test_fixture_byte_identical(dump, argfile, expected, name, tmp_path, monkeypatch):
    if name not in LENIENT:
        monkeypatch.setenv("CFS_PARSE_STRICT", "1")
    out = tmp_path / "out.cfs"
    args = argfile.read_text().split()
    assert main(["mkimage", *args, str(dump), str(out)]) == 0
    got = out.read_bytes()
    assert len(got) == expected.stat().st_size
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected.read_bytes()).hexdigest()
    assert os.listdir(tmp_path) == ["out.cfs"]           # no temporary file left behind


def test_special_built_with_defaults_is_v1():
    """format.md §13.2: special.dump with default versions becomes the special_v1 image."""
    img = build_image(parse_dump((IMAGES / "special.input.dump").read_bytes()))
    assert img == (IMAGES / "special_v1.cfs").read_bytes()


def test_sample_v0_input_with_defaults_gives_sample():
    img = build_image(parse_dump((SAMPLE / "sample-v0.input.dump").read_bytes()))
    assert img == (SAMPLE / "sample.cfs").read_bytes()


def test_tiny_golden_vector():
    img = build_image(parse_dump(TINY))
    assert len(img) == 16384
    assert hashlib.sha256(img).hexdigest() == TINY_SHA256
    assert fsverity_digest(img).hex() == TINY_VERITY
    assert img[:16] == bytes.fromhex("9a6278d0 01000000 00000000 00000000".replace(" ", ""))
    sb = img[0x400:0x430]
    assert sb == bytes.fromhex(
        "e2e1f5e0 00000000 06000000 0c00 2400 0401000000000000 0000000000000000"
        " 00000000 04000000 00000000 02000000".replace(" ", ""))
    root = img[0x480:0x480 + 64]
    assert root[:20] == bytes.fromhex("0000 0600 ed41 0200 00100000 00000000 03000000".replace(" ", ""))
    assert root[32:64] == (bytes.fromhex("ffffefff 00 00000000000000 0e040100") + b"overlay.opaque"
                           + b"y\0")
    b = img[216 * 32:216 * 32 + 32 + 160 + 4]
    assert b[:24] == bytes.fromhex("0800 2600 a481 0100 01000000 00000000 00000000 b2000000".replace(" ", ""))
    assert b[32:48] == bytes.fromhex("ffff7d7f 01 00000000000000 88010000")
    assert img[2 * 4096 + 0x188 * 4:2 * 4096 + 0x188 * 4 + 8] == bytes.fromhex("01010100") + b"x1\0\0"
    assert b[48:52] == bytes.fromhex("10042400") and b[52:68] == b"overlay.metacopy"
    assert b[68:72] == bytes.fromhex("00240001") and b[72:104] == bytes.fromhex(
        "bce75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557")
    assert b[104:124] == bytes.fromhex("10044200") + b"overlay.redirect"
    assert b[124:190] == b"/bc/e75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557"
    assert b[192:196] == b"\xff\xff\xff\xff"
    link = img[303 * 32:303 * 32 + 34]
    assert struct.unpack_from("<HHHHI", link) == (0x4, 0, 0o120777, 1, 2)
    assert link[32:34] == b"/a"


def test_stdout_output_and_print_digest(tmp_path, capsysbinary):
    src = tmp_path / "tiny.dump"
    src.write_bytes(TINY)
    assert main(["mkimage", "--from-file", str(src), "-"]) == 0
    out = capsysbinary.readouterr().out
    assert hashlib.sha256(out).hexdigest() == TINY_SHA256
    assert main(["mkimage", "--from-file", "--print-digest", str(src), str(tmp_path / "t.cfs")]) == 0
    assert capsysbinary.readouterr().out == TINY_VERITY.encode() + b"\n"
    assert hashlib.sha256((tmp_path / "t.cfs").read_bytes()).hexdigest() == TINY_SHA256
    assert main(["mkimage", "--from-file", "--print-digest-only", str(src)]) == 0
    assert capsysbinary.readouterr().out == TINY_VERITY.encode() + b"\n"
    assert sorted(os.listdir(tmp_path)) == ["t.cfs", "tiny.dump"]


def test_stdin_source(tmp_path, monkeypatch):
    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(TINY)
    monkeypatch.setattr(sys, "stdin", Stdin)
    out = tmp_path / "x.cfs"
    assert main(["mkimage", "--from-file", "-", str(out), "--min-version=0"]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == TINY_SHA256


def test_replaces_existing_output(tmp_path):
    src = tmp_path / "tiny.dump"
    src.write_bytes(TINY)
    out = tmp_path / "t.cfs"
    out.write_bytes(b"old")
    assert main(["mkimage", "--from-file", str(src), str(out)]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == TINY_SHA256


SHOULD_FAIL = [
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/a 5004 100644 1 0 0 0 0.0 - " + b"x" * 5004 + b" -\n",
     "line 2: Inline content size 5004 exceeds maximum 5000"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @40755 2 0 0 0 0.0 /d - -\n",
     "line 3: Can't hardlink a directory"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/. 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Invalid . or .. in path"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/.. 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Invalid . or .. in path"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/l 0 120777 1 0 0 0 0.0 - - -\n",
     "line 2: Invalid symlink target length 0 (must be 1-4095)"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/l 0 120777 1 0 0 0 0.0 " + b"a" * 7248 + b" - -\n",
     "line 2: Invalid symlink target length 7248 (must be 1-4095)"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 644 1 0 0 0 0.0 - - -\n", "line 2: Invalid mode 644"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 0 1 0 0 0 0.0 - - -\n", "line 2: Invalid mode 0"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 @100644 1 0 0 0 0.0 /f - -\n", "line 2: Invalid self hardlink"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/f 9500000000000000 100644 1 0 0 0 0.0 - - -\n",
     "line 2: File too large"),
    (b"/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - - user." + b"k" * 70000 + b"=v\n",
     "line 2: Too many xattrs (line longer than 65535 bytes)"),
]


@pytest.mark.parametrize("dump, message", SHOULD_FAIL, ids=[m for _, m in SHOULD_FAIL])
def test_validation_exit_2_no_output(dump, message, tmp_path, capsys):
    src = tmp_path / "in.dump"
    src.write_bytes(dump)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = main(["mkimage", "--from-file", str(src), str(out_dir / "x.cfs")])
    assert rc == 2
    assert capsys.readouterr().err == f"cfs-inspect: {src}: {message}\n"
    assert os.listdir(out_dir) == []


def test_oversize_xattr_value_is_refused():
    big = b"v" * 65536
    with pytest.raises(InspectError) as e:
        parse_dump(b"/ 0 40755 2 0 0 0 0.0 - - - user.a=" + big + b"\n", source="d")
    assert str(e.value) == "d: line 1: Too many xattrs (line longer than 65535 bytes)"


def test_version_rules():
    assert versions(None, None) == (0, 1)
    assert versions(1, None) == (1, 1)
    assert versions(None, 0) == (0, 0)
    assert versions(0, None) == (0, 0)
    assert versions(1, 0) == (1, 1)
    with pytest.raises(InspectError) as e:
        versions(None, 2)
    assert str(e.value) == "unsupported composefs version 2 (this writer supports 0..1)"


def test_version_option_forms(tmp_path):
    src = tmp_path / "s.dump"
    src.write_bytes((IMAGES / "special.input.dump").read_bytes())
    v0, v1 = (IMAGES / "special.cfs").read_bytes(), (IMAGES / "special_v1.cfs").read_bytes()
    for args, want in ((["--max-version", "0"], v0), (["--min-version=1"], v1), ([], v1),
                       (["--min-version", "0", "--max-version=0"], v0)):
        out = tmp_path / "o.cfs"
        assert main(["mkimage", *args, "--from-file", str(src), str(out)]) == 0
        assert out.read_bytes() == want, args


def test_use_epoch_and_skip_options():
    dump = (b"/ 0 40755 2 5 6 0 100.5 - - - trusted.t=1 user.u=2\n"
            b"/c 0 20644 1 0 0 0 7.0 - - -\n/b 0 60644 1 0 0 1792 7.0 - - -\n"
            b"/f 0 100644 1 0 0 0 9.9 - - - user.a=1 security.s=2\n")
    plain = build_image(parse_dump(dump))
    assert struct.unpack_from("<I", plain, 12)[0] == 1        # whiteout -> v1
    epoch = build_image(parse_dump(dump), WriterOptions(use_epoch=True))
    assert struct.unpack_from("<QI", epoch, 0x418) == (0, 0)
    nodev = build_image(parse_dump(dump), WriterOptions(skip_devices=True))
    assert struct.unpack_from("<I", nodev, 12)[0] == 0        # the whiteout went with the devices
    assert struct.unpack_from("<Q", nodev, 0x410)[0] == 2 + 256   # root, /f, stubs
    same = build_image(parse_dump(dump.replace(b" trusted.t=1", b"").replace(b" security.s=2", b"")),
                       WriterOptions(user_xattrs=True))
    assert build_image(parse_dump(dump), WriterOptions(user_xattrs=True)) == same
    none = build_image(parse_dump(b"/ 0 40755 2 5 6 0 100.5 - - -\n"
                                  b"/c 0 20644 1 0 0 0 7.0 - - -\n/b 0 60644 1 0 0 1792 7.0 - - -\n"
                                  b"/f 0 100644 1 0 0 0 9.9 - - -\n"))
    assert build_image(parse_dump(dump), WriterOptions(skip_xattrs=True)) == none


def test_kernel_rdev_encoding():
    assert kernel_rdev(os.makedev(7, 0)) == 1792
    assert kernel_rdev(os.makedev(1, 3)) == 259
    assert kernel_rdev(os.makedev(4, 64)) == 1088
    assert kernel_rdev(os.makedev(259, 3)) == 66307
    assert kernel_rdev(os.makedev(1, 0x12345)) == (0x45 | (1 << 8) | (0x12300 << 12))


# --- directory source: rebuild the sample tree for real and compare with mkcomposefs ---------

def _materialize(node: Node, path: Path, objects: Path) -> None:
    """Create the filesystem tree a dump describes (contents from inline data or objects)."""
    fmt = stat.S_IFMT(node.mode)
    if fmt == stat.S_IFDIR:
        if node.parent is not None:
            path.mkdir()
        for name, child in node.children.items():
            _materialize(child, path / os.fsdecode(name), objects)
    elif fmt == stat.S_IFREG:
        data = node.content if node.content is not None else b""
        if node.payload:
            data = (objects / os.fsdecode(node.payload)).read_bytes()
        path.write_bytes(data)
    elif fmt == stat.S_IFLNK:
        os.symlink(os.fsdecode(node.payload), path)
    elif fmt == stat.S_IFIFO:
        os.mkfifo(path)
    else:
        major = (node.rdev >> 8) & 0xFFF
        minor = (node.rdev & 0xFF) | ((node.rdev >> 12) & 0xFFF00)
        os.mknod(path, node.mode, os.makedev(major, minor))
    os.lchown(path, node.uid, node.gid)      # before xattrs: chown drops security.capability
    for key, value in node.xattrs.items():
        os.setxattr(path, os.fsdecode(key), value, follow_symlinks=False)
    if fmt != stat.S_IFLNK:
        os.chmod(path, stat.S_IMODE(node.mode))
    ns = node.mtime_sec * 1_000_000_000 + node.mtime_nsec
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


@pytest.fixture(scope="module")
def sample_source(tmp_path_factory, sample_objects):
    """The sample tree, recreated from sample-v0.input.dump (no v1 markers) and its objects."""
    root = parse_dump((SAMPLE / "sample-v0.input.dump").read_bytes())
    dest = tmp_path_factory.mktemp("sample-src") / "src"
    dest.mkdir()
    _materialize(root, dest, sample_objects)
    return dest


def test_directory_source_matches_mkcomposefs(sample_source, sample_objects, tmp_path):
    store = tmp_path / "objects"
    out = tmp_path / "sample.cfs"
    assert main(["mkimage", "--digest-store", str(store), str(sample_source), str(out)]) == 0
    assert out.read_bytes() == (SAMPLE / "sample.cfs").read_bytes()
    out0 = tmp_path / "sample-v0.cfs"
    assert main(["mkimage", "--max-version=0", "--digest-store", str(store),
                 str(sample_source), str(out0)]) == 0
    assert out0.read_bytes() == (SAMPLE / "sample-v0.cfs").read_bytes()
    # The digest store holds exactly the sample objects, mode 0644, named by fs-verity digest.
    got = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
    want = sorted(str(p.relative_to(sample_objects)) for p in sample_objects.rglob("*")
                  if p.is_file())
    assert got == want and len(got) == 7
    for rel in got:
        p = store / rel
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        assert p.read_bytes() == (sample_objects / rel).read_bytes()
        assert fsverity_digest(p.read_bytes()).hex() == rel.replace("/", "")
    assert not [p for p in store.rglob(".tmp*")]


def test_directory_source_without_store_and_options(sample_source, tmp_path):
    root = read_directory(str(sample_source))
    assert build_image(root) == (SAMPLE / "sample.cfs").read_bytes()
    ext = root.children[b"external"].children[b"65bytes"]
    assert ext.payload == b"dc/bf6197a3e24f44f3a60ed326c5c41ba115fa995d02a6ed15d45a0a9e79ad32"
    assert root.children[b"inline"].children[b"64bytes"].content is not None
    user_only = read_directory(str(sample_source), user_xattrs=True, skip_devices=True)
    assert b"null" not in user_only.children[b"devices"].children
    assert user_only.children[b"xattrs"].children[b"file"].xattrs.get(b"trusted.foo") is None
    assert user_only.children[b"caps"].children[b"ping"].xattrs == {}


def test_directory_source_errors(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_bytes(b"x")
    assert main(["mkimage", str(f), str(tmp_path / "o.cfs")]) == 2
    assert capsys.readouterr().err == (
        f"cfs-inspect: {f}: source is not a directory (use --from-file for a dump)\n")
    assert main(["mkimage", str(tmp_path / "missing"), str(tmp_path / "o.cfs")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "o.cfs").exists()


# --- images made by other real tools: composefs-info dump | mkimage --from-file -----------

def _store_images(root: Path) -> list[Path]:
    found = sorted(root.glob("storage/overlay/*/composefs-data/composefs.blob"))
    found += sorted(root.glob("ostree/deploy/*/deploy/*/.ostree.cfs"))
    found += sorted(p for p in (root / "composefs/images").glob("*") if p.name != "refs") \
        if (root / "composefs/images").is_dir() else []
    return found


@pytest.mark.parametrize("store, count", [("containers-storage", 3), ("ostree", 1),
                                          ("composefs-repo", 2)])
def test_store_images_rebuild_from_their_dump(store, count, store_root, tmp_path):
    """containers/storage blobs, ostree's image and composefs-rs V1 images come back byte for
    byte from their own dump, at their own composefs_version."""
    import io
    from inspector.composefs.dump import dump_image
    from inspector.composefs.image import open_image

    images = _store_images(store_root(store))
    assert len(images) == count
    for path in images:
        original = path.read_bytes()
        version = int.from_bytes(original[12:16], "little")
        out = io.BytesIO()
        with open_image(path) as img:
            dump_image(img, out)
        rebuilt = build_image(parse_dump(out.getvalue(), strict=True),
                              WriterOptions(min_version=version, max_version=version))
        assert rebuilt == original, path


def test_scale_generator_is_deterministic():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))
    from make_scale import scale_tree
    from inspector.composefs.image import open_image

    a = build_image(scale_tree(3000, seed=7))
    assert a == build_image(scale_tree(3000, seed=7))
    assert a != build_image(scale_tree(3000, seed=8))
    assert struct.unpack_from("<Q", a, 0x410)[0] == 3000 + 256
    with open_image("<scale>", data=a) as img:
        entries = list(img.walk())
    regular = sum(1 for e in entries if stat.S_ISREG(e.inode.mode) and e.link_primary is None)
    assert 0.75 < regular / 3000 < 0.85
