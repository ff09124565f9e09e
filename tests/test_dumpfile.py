"""composefs-dump(5) parser: escapes, fields, normalisation, hardlinks, lenient/strict."""

from __future__ import annotations

import pytest

from conftest import IMAGES, SAMPLE
from inspector.composefs.dumpfile import parse_dump, unescape
from inspector.errors import DumpParseError

ROOT = b"/ 0 40755 2 0 0 0 0.0 - - -\n"


def test_unescape_sequences():
    assert unescape(rb"a\\b\x41\x3d\n\r\t") == b"a\\bA=\n\r\t"
    assert unescape(rb"\xe9\xFF", binary=True) == b"\xe9\xff"
    assert unescape(rb"\x00", binary=True) == b"\0"


@pytest.mark.parametrize("raw, message", [
    (rb"a\q", "invalid escape \\q"),
    (b"a\\", "invalid escape \\"),
    (rb"\x4", "invalid escape \\x"),
    (rb"\x00", "NUL byte not allowed"),
])
def test_unescape_errors(raw, message):
    with pytest.raises(ValueError) as e:
        unescape(raw)
    assert str(e.value) == message


def test_fields_and_normalisation():
    root = parse_dump(
        b"/ 4096 40755 9 0 0 7 5.7 - - - user.r=1\n"
        b"/dir\\x20sp 0 40700 5 1 2 0 -3.500000000 - - -\n"
        b"/dir\\x20sp/f 3 100644 2 1000 100 0 1.1 - a\\x3db - user.k\\x3d=v\\x20w user.e=\n"
        b"/ext 70000 100600 1 0 0 0 0.0 ab/cdef - " + b"ab" * 32 + b"\n"
        b"/lnk 99 120777 1 0 0 0 0.0 /target - -\n"
        b"/chr 12 20644 1 0 0 259 0.0 - - -\n")
    assert root.nlink == 2 and root.rdev == 0 and root.size == 0
    assert root.xattrs == {b"user.r": b"1"}
    assert (root.mtime_sec, root.mtime_nsec) == (5, 7)
    d = root.children[b"dir sp"]
    assert (d.mode, d.uid, d.gid, d.mtime_sec, d.mtime_nsec) == (0o40700, 1, 2, -3, 500000000)
    f = d.children[b"f"]
    assert (f.content, f.size, f.nlink, f.uid, f.gid) == (b"a=b", 3, 2, 1000, 100)
    assert f.xattrs == {b"user.k=": b"v w", b"user.e": b""}
    assert f.path() == b"/dir sp/f"
    ext = root.children[b"ext"]
    assert (ext.payload, ext.content, ext.digest) == (b"ab/cdef", None, bytes([0xab]) * 32)
    lnk = root.children[b"lnk"]
    assert (lnk.payload, lnk.size) == (b"/target", 7)      # SIZE replaced by target length
    chr_ = root.children[b"chr"]
    assert (chr_.size, chr_.rdev) == (0, 259)               # device SIZE forced to 0


def test_mode_truncated_to_16_bits_and_nine_field_line():
    # honggfuzz-longlink-unterminated: 9 fields, MODE 20720777 is a symlink.
    root = parse_dump(ROOT + b"/l 0 20720777 1 0 0 0 0.0 " + b"x" * 4095, strict=False)
    node = root.children[b"l"]
    assert node.mode == 0o120777 and node.size == 4095


def test_duplicate_xattr_last_wins():
    root = parse_dump(ROOT + b"/f 0 100644 1 0 0 0 0.0 - - - user.a=1 user.b=2 user.a=3\n")
    assert list(root.children[b"f"].xattrs.items()) == [(b"user.b", b"2"), (b"user.a", b"3")]


def test_hardlink_target_later_in_file():
    root = parse_dump(ROOT +
                      b"/a 0 @100644 0 0 0 0 0.0 /z - -\n"
                      b"/z 5 100644 2 0 0 0 0.0 - hello - user.x=1\n")
    a, z = root.children[b"a"], root.children[b"z"]
    assert a.link_to is z and a.resolved() is z and a.mode == 0o100644


@pytest.mark.parametrize("body, message", [
    (b"/. 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Invalid . or .. in path"),
    (b"/a/.. 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Invalid . or .. in path"),
    (b"/a 0 644 1 0 0 0 0.0 - - -\n", "line 2: Invalid mode 644"),
    (b"/a 0 0 1 0 0 0 0.0 - - -\n", "line 2: Invalid mode 0"),
    (b"/a 0 @0 1 0 0 0 0.0 /b - -\n", "line 2: Invalid mode 0"),
    (b"/a 0 @100644 1 0 0 0 0.0 /a - -\n", "line 2: Invalid self hardlink"),
    (b"/d 0 40755 1 0 0 0 0.0 - - -\n/a 0 @40755 1 0 0 0 0.0 /d - -\n",
     "line 3: Can't hardlink a directory"),
    (b"/a 0 @100644 1 0 0 0 0.0 /missing - -\n", "line 2: Hardlink target does not exist"),
    (b"/a 5004 100644 1 0 0 0 0.0 - " + b"x" * 5004 + b" -\n",
     "line 2: Inline content size 5004 exceeds maximum 5000"),
    (b"/a 3 100644 1 0 0 0 0.0 - xy -\n", "line 2: Content length 2 does not match size 3"),
    (b"/a 0 120777 1 0 0 0 0.0 - - -\n",
     "line 2: Invalid symlink target length 0 (must be 1-4095)"),
    (b"/a 0 120777 1 0 0 0 0.0 " + b"x" * 4096 + b" - -\n",
     "line 2: Invalid symlink target length 4096 (must be 1-4095)"),
    (b"/" + b"n" * 256 + b" 0 100644 1 0 0 0 0.0 - - -\n",
     "line 2: Can't add child: name longer than 255 bytes"),
    (b"//x 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Can't add child: empty name"),
    (b"/a 0 100644 1 0 0 0 0.0 - - - =v\n", "line 2: Can't set xattr '': name must be 1-255 bytes"),
    (b"/a 9500000000000000 100644 1 0 0 0 0.0 - - -\n", "line 2: File too large"),
    (b"/x/y 0 100644 1 0 0 0 0.0 - - -\n", "line 2: Parent directory missing"),
    (b"/a 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n",
     "line 3: Can't add child: path already exists"),
    (b"/a 0 100644 1 0 0 0 zero - - -\n", "line 2: Invalid mtime 'zero'"),
    (b"/a 0 100644 1 4294967296 0 0 0.0 - - -\n", "line 2: Invalid uid '4294967296'"),
    (b"/a 0 100644 1 0 -1 0 0.0 - - -\n", "line 2: Invalid gid '-1'"),
    (b"/a 0 100644 -1 0 0 0 0.0 - - -\n", "line 2: Invalid nlink '-1'"),
    (b"/a 18446744073709551616 100644 1 0 0 0 0.0 - - -\n",
     "line 2: Invalid size '18446744073709551616'"),
    (b"/a 0 100644 1 0 0 0 0.4294967296 - - -\n", "line 2: Invalid mtime '4294967296'"),
    (b"/a 0 400000000000 1 0 0 0 0.0 - - -\n", "line 2: Invalid mode '400000000000'"),
    (b"/a 0 100644 1 0 0 0 0.0 - - - user.a=" + b"v" * 20000 + b" user.b=" + b"w" * 20000 + b"\n",
     "line 2: Too many xattrs (40012 bytes of names and values, maximum 32767)"),
    (b"/a 0 100644 1 0 0 0 0.0 - \\q -\n", "line 2: Invalid payload or content: invalid escape \\q"),
    (b"/a 0 100644 1 0 0\n", "line 2: Too few fields (6, need 11)"),
])
def test_validation_errors(body, message):
    with pytest.raises(DumpParseError) as e:
        parse_dump(ROOT + body, strict=False, source="in.dump")
    assert str(e.value) == f"in.dump: {message}"


def test_first_entry_must_be_root():
    with pytest.raises(DumpParseError) as e:
        parse_dump(b"/a 0 100644 1 0 0 0 0.0 - - -\n", source="x")
    assert str(e.value) == "x: line 1: The first entry must be the root directory /"
    with pytest.raises(DumpParseError) as e:
        parse_dump(b"", source="x")
    assert str(e.value) == "x: no entries (the root / is missing)"


@pytest.mark.parametrize("body, message", [
    (b"/a 0 100644 1 0 0 5 0.0 - - -\n", "line 2: Non-zero rdev on a non-device"),
    (b"/a 3 120777 1 0 0 0 0.0 /abcd - -\n",
     "line 2: Symlink size 3 does not match target length 5"),
    (b"/a 2 120777 1 0 0 0 0.0 /a x -\n", "line 2: Symlink with content"),
    (b"/a 0 100644 1 0 0 0 0.0 - -\n", "line 2: Too few fields (10, need 11)"),
])
def test_strict_only_checks(body, message):
    parse_dump(ROOT + body, strict=False)           # lenient: accepted
    with pytest.raises(DumpParseError) as e:
        parse_dump(ROOT + body, strict=True, source="s")
    assert str(e.value) == f"s: {message}"


def test_strict_requires_final_newline(monkeypatch):
    data = ROOT + b"/a 0 100644 1 0 0 0 0.0 - - -"
    assert b"a" in parse_dump(data, strict=False).children
    monkeypatch.setenv("CFS_PARSE_STRICT", "1")
    with pytest.raises(DumpParseError) as e:
        parse_dump(data, source="s")
    assert str(e.value) == "s: missing newline at end of file"


def test_fixture_inputs_parse():
    root = parse_dump((IMAGES / "config-with-hard-link.input.dump").read_bytes(), strict=True)
    link = root.children[b"usr"].children[b"bin"].children[b"ls-hardlink"]
    assert link.link_to is root.children[b"usr"].children[b"bin"].children[b"ls"]
    sample = parse_dump((SAMPLE / "sample.input.dump").read_bytes(), strict=True)
    names = sample.children[b"names"].children
    assert b"new\nline" in names and b"latin1-\xe9" in names and "日本".encode() in names
    xf = sample.children[b"xattrs"].children[b"file"]
    assert xf.xattrs[b"user.binary"] == b"\x00\xff=\n\t \\"
    assert len(sample.children[b"bigdir"].children) == 1500
