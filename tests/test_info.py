"""`info` and `stat`: exact figures on fixtures, text and JSON."""

from __future__ import annotations

import json

from conftest import IMAGES, SAMPLE
from inspector.cli import main


def run_json(capsys, *argv):
    code = main([str(a) for a in argv] + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_info_special(capsys):
    d = run_json(capsys, "info", IMAGES / "special.cfs")
    assert d["kind"] == "composefs" and d["composefs_version"] == 0
    assert d["fsverity_digest"] == (IMAGES / "special.verity").read_text().strip()
    assert (d["entries"], d["whiteout_stubs"], d["user_whiteouts"]) == (10, 256, 1)
    assert d["by_type"] == {"blk": 1, "chr": 1, "dir": 1, "fifo": 1, "reg": 5, "whiteout": 1}
    assert (d["inline_files"], d["inline_bytes"]) == (4, 15 + 4095 + 4096 + 4097)
    assert d["inodes_in_superblock"] == 266 and d["feature_compat"] == ["mtime", "xattr_filter"]


def test_info_sample_counts_match_dump(capsys):
    d = run_json(capsys, "info", SAMPLE / "sample.cfs")
    dump_lines = (SAMPLE / "sample.dump").read_bytes().count(b"\n")
    objects = (SAMPLE / "sample.objects").read_bytes().count(b"\n")
    assert d["entries"] == dump_lines == 1571
    assert d["objects"] == objects == 7
    assert d["whiteout_stubs"] == 255          # /ab replaces its stub
    assert d["has_acl"] is True and d["composefs_version"] == 1
    assert (d["external_files"], d["files_with_digest"]) == (8, 8)
    assert d["extended_inodes"] == 6


def test_info_hardlinks(capsys):
    d = run_json(capsys, "info", IMAGES / "config-with-hard-link.cfs")
    assert d["hardlinked_paths"] == 1 and d["entries"] == d["distinct_inodes"] + 1


def test_info_text(capsys):
    assert main(["info", str(IMAGES / "bigfile.cfs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{IMAGES / 'bigfile.cfs'}: composefs"
    assert "  external files        1 (8.0 PiB (9000000000000000 bytes)), 0 distinct objects, 0 with fs-verity digest" in out


def test_stat_external_file(capsys):
    d = run_json(capsys, "stat", SAMPLE / "sample.cfs", "/modes/setuid")
    assert d["mode_string"] == "-rwsr-xr-x" and d["mode"] == 0o104755
    assert d["payload"] == "66/2d544bdb0eb52a3d872b41cf25bb18aed6fec95f50b63db54a1c6c9f8a2172"
    assert d["digest"] == "662d544bdb0eb52a3d872b41cf25bb18aed6fec95f50b63db54a1c6c9f8a2172"
    assert d["digest_algorithm"] == "sha256" and d["metacopy_size"] == 36
    assert (d["mtime"], d["mtime_nsec"]) == (1700000004, 999999999)
    assert d["inode_kind"] == "extended"       # mtime differs from build time
    assert d["layout"] == "chunk-based" and d["data_segments"][0]["image_offset"] is None
    assert [x["name"] for x in d["raw_xattrs"]] == ["trusted.overlay.metacopy", "trusted.overlay.redirect"]
    assert d["xattrs"] == []


def test_stat_binary_names_and_values_are_escaped(capsys):
    d = run_json(capsys, "stat", SAMPLE / "sample.cfs", "/xattrs/file")
    values = {x["name"]: x["value"] for x in d["xattrs"]}
    assert values["user.binary"] == "\\x00\\xff\\x3d\\n\\t\\x20\\\\"
    assert values["user.eq"] == "a=b" and values["user.empty"] == ""
    d = run_json(capsys, "stat", SAMPLE / "sample.cfs", "/names/latin1-\udce9")
    assert d["path"] == "/names/latin1-\\xe9"


def test_stat_hardlink_siblings(capsys):
    d = run_json(capsys, "stat", IMAGES / "config-with-hard-link.cfs", "/usr/bin/ls")
    assert d["hardlinks"] == ["/usr/bin/ls", "/usr/bin/ls-hardlink"] and d["nlink"] == 2


def test_stat_device_and_whiteout_text(capsys):
    assert main(["stat", str(SAMPLE / "sample.cfs"), "/devices/loop0"]) == 0
    out = capsys.readouterr().out
    assert "  rdev        1792 (major 7, minor 0)\n" in out and "mode brw-rw---- (60660)" in out
    d = run_json(capsys, "stat", SAMPLE / "sample.cfs", "/devices/whiteout")
    assert d["type"] == "whiteout" and d["mode_string"] == "c---------"


def test_stat_missing_path(capsys):
    assert main(["stat", str(SAMPLE / "sample.cfs"), "/nope"]) == 2
    assert capsys.readouterr().err == f"cfs-inspect: {SAMPLE / 'sample.cfs'}: no such path in image: /nope\n"


def test_ls_json_keys(capsys):
    d = run_json(capsys, "ls", IMAGES / "config-with-hard-link.cfs")
    ents = {e["path"]: e for e in d[0]["entries"]}
    assert ents["/usr/bin/ls-hardlink"] == {"path": "/usr/bin/ls-hardlink", "type": "hardlink", "target": "/usr/bin/ls"}
    assert ents["/usr/bin"]["type"] == "dir"


def test_objects_json_lists_paths(capsys):
    d = run_json(capsys, "objects", SAMPLE / "sample.cfs")
    (dedup,) = [o for o in d if o["object"].startswith("96/facb")]
    assert dedup["paths"] == [f"{SAMPLE / 'sample.cfs'}:/dedup/copy-a", f"{SAMPLE / 'sample.cfs'}:/dedup/sub/copy-b"]
