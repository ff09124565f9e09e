"""verify: pristine fixtures are clean and match expected.json; every kind of damage is
reported as what it is, through the CLI, with exit 1."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import IMAGES, SAMPLE, STORES
from inspector.analysis import hashing
from inspector.analysis.verify import verify_store
from inspector.cli import main
from inspector.stores.discover import open_store

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
REPO = json.loads((STORES / "composefs-repo.expected.json").read_text())
OST = json.loads((STORES / "ostree.expected.json").read_text())

A = "7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
B = "046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59"
C = "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0"
ALL3 = ["localhost/base:1", "localhost/app1:1", "localhost/app2:1"]
OS_RELEASE = "38/0f405a65c3c8c40189ed35e42a5a240ba1a35fe93fde39726c240de428bb2f"
LIBSHARED1 = "a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"
LICENSE = "ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1"
BUSYBOX = "96/d9092db50dfdec7b8ac80fbcfa3039dc763ba7e583bd2b13e88b3ba5f61822"


def run(capsys, *argv) -> tuple[int, dict]:
    rc = main(list(argv))
    out = capsys.readouterr().out
    return rc, json.loads(out)


def short(problems: list[dict]) -> list[tuple]:
    return [(p["kind"], p["severity"], p["layer"], p["object"], p["path"], tuple(p["images"]))
            for p in problems]


def obj(root: Path, layer: str, name: str) -> Path:
    return root / "storage" / "overlay" / layer / "diff" / name


# --------------------------------------------------------------------------- pristine


def test_containers_storage_pristine(store_root, capsys):
    rc, out = run(capsys, "verify", str(store_root("containers-storage")), "--json")
    exp = CS["verify"]
    assert rc == exp["exit_code"] == 0
    assert out["problems"] == exp["problems"] == []
    for lid, v in exp["per_layer"].items():
        got = out["per_layer"][lid]
        assert got["referenced_objects"] == v["referenced_objects"]
        assert got["with_verity_digest"] == v["with_verity_digest"]
        assert got["without_digest"] == v["sha256_name_only"]
        assert got["digest_coverage"] == v["digest_coverage"]
    assert out["blobs_without_any_digest"] == exp["blobs_without_any_digest"]
    assert out["images_with_digestless_blobs"] == exp["images_with_digestless_blobs"]
    # every object file is checked by name (56 files, 53 inodes = 387017 bytes)
    assert (out["objects_checked"], out["files_hashed"], out["bytes_hashed"]) == (56, 53, 387017)
    assert out["orphans"] == []


def test_composefs_repo_pristine(store_root, capsys):
    rc, out = run(capsys, "verify", str(store_root("composefs-repo")), "--json")
    exp = REPO["verify"]
    assert rc == exp["exit_code"] == 0
    assert out["problems"] == exp["problems"]
    assert out["objects_checked"] == exp["objects_checked"] == 13
    by_image = {REPO["images"][lid]["name"]: v for lid, v in out["per_layer"].items()}
    for name, v in exp["per_image"].items():
        assert by_image[name]["referenced_objects"] == v["referenced_objects"]
        assert by_image[name]["with_verity_digest"] == v["with_verity_digest"]
        assert by_image[name]["digest_equals_object_name"] is v["digest_equals_object_name"] is True
    # the GC leftover is listed, but is not a verify problem
    assert [(o["object"], o["size"]) for o in out["orphans"]] == [
        (REPO["references"]["orphans"][0], REPO["references"]["orphan_bytes"])]


def test_ostree_pristine(store_root, capsys):
    rc, out = run(capsys, "verify", str(store_root("ostree")), "--json")
    exp = OST["verify"]
    assert rc == exp["exit_code"] == 0
    assert out["problems"] == exp["problems"]
    (v,) = out["per_layer"].values()
    assert (v["referenced_objects"], v["with_verity_digest"], v["without_digest"]) == (
        exp["referenced_objects"], exp["with_verity_digest"], exp["without_digest"])
    assert out["orphans"] == []          # orphans do not apply to ostree
    assert out["objects_checked"] == 9


def test_text_output_clean(store_root, capsys):
    rc = main(["verify", str(store_root("containers-storage"))])
    text = capsys.readouterr()
    assert rc == 0
    assert text.out.splitlines()[-1] == "No problems found."
    assert "layer b7f4dbfbc9ef [localhost/app2:1]: 7 objects referenced, 4 with fs-verity digest (some)" in text.out
    assert text.err == ""                # not a terminal: no progress


# --------------------------------------------------------------------------- damage


def test_flipped_byte_is_corrupt(fresh_store, capsys):
    root = fresh_store("containers-storage")
    p = obj(root, A, OS_RELEASE)
    data = bytearray(p.read_bytes())
    data[10] ^= 0x01
    p.write_bytes(bytes(data))
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    assert short(out["problems"]) == [("corrupt", "error", A, OS_RELEASE, "/etc/os-release", tuple(ALL3))]
    detail = out["problems"][0]["detail"]
    assert "does not match the object name" in detail
    assert "does not match the image DIGEST fde3b9330bf0e22570a46ef9c3a88d51342fc78a5062ef00b5833a1dcbbef5f2" in detail


def test_truncated_is_size_mismatch(fresh_store, capsys):
    root = fresh_store("containers-storage")
    p = obj(root, B, LIBSHARED1)         # hard-linked into C: both layers see the damage
    os.truncate(p, 100)
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    assert short(out["problems"]) == [
        ("size-mismatch", "error", B, LIBSHARED1, "/opt/app1/lib/libshared1.so", ("localhost/app1:1",)),
        ("size-mismatch", "error", C, LIBSHARED1, "/opt/app2/lib/libshared1.so", ("localhost/app2:1",)),
    ]
    assert out["problems"][0]["detail"].startswith("object has 100 bytes, the image expects 9000")


def test_deleted_is_missing(fresh_store, capsys):
    root = fresh_store("containers-storage")
    obj(root, A, BUSYBOX).unlink()
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    assert short(out["problems"]) == [("missing", "error", A, BUSYBOX, "/usr/bin/busybox", tuple(ALL3))]


def test_missing_but_served_by_lower_layer_is_a_warning(fresh_store, capsys):
    root = fresh_store("containers-storage")
    obj(root, B, LICENSE).unlink()       # A (below B in app1) has its own copy
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    assert short(out["problems"]) == [
        ("warning-elsewhere", "warning", B, LICENSE, "/opt/app1/LICENSE", ("localhost/app1:1",))]
    assert f"layer {A}" in out["problems"][0]["detail"]


def test_unreferenced_object_is_orphan(fresh_store, capsys):
    root = fresh_store("containers-storage")
    name = "00/" + "1" * 62
    (obj(root, C, "00")).mkdir()
    obj(root, C, name).write_bytes(b"stray")
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    kinds = short(out["problems"])
    # the stray file is an orphan, and its content does not match its sha256 name either
    assert ("orphan", "warning", C, name, None, ("localhost/app2:1",)) in kinds
    assert ("corrupt", "error", C, name, None, ("localhost/app2:1",)) in kinds
    assert len(kinds) == 2
    assert [o["object"] for o in out["orphans"]] == [name]


def test_symlink_to_outside_is_suspicious_and_not_followed(fresh_store, tmp_path, capsys):
    root = fresh_store("containers-storage")
    outside = tmp_path / "outside-secret"
    outside.write_bytes(b"x" * 181)     # same size as the object: only lstat can tell
    p = obj(root, A, OS_RELEASE)
    p.unlink()
    p.symlink_to(outside)
    opened = []
    real = hashing.open_ro
    hashing.open_ro = lambda path: opened.append(Path(path)) or real(path)
    try:
        rc, out = run(capsys, "verify", str(root), "--json")
    finally:
        hashing.open_ro = real
    assert rc == 1
    assert short(out["problems"]) == [("suspicious", "error", A, OS_RELEASE, "/etc/os-release", tuple(ALL3))]
    assert "symlink" in out["problems"][0]["detail"]
    assert p not in opened and outside not in opened


def test_unreadable_object_reported_rest_verified(fresh_store, monkeypatch, capsys):
    root = fresh_store("containers-storage")
    target = obj(root, A, BUSYBOX)
    real = hashing.open_ro

    def fake(path):
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(hashing, "open_ro", fake)
    # and damage another object: it must still be found
    os.truncate(obj(root, C, "86/f7e8f5710217e71b543c769d49f756f4ae7d475b5459350d9026665233a335"), 1)
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    kinds = [(p["kind"], p["layer"], p["object"]) for p in out["problems"]]
    assert kinds == [
        ("size-mismatch", C, "86/f7e8f5710217e71b543c769d49f756f4ae7d475b5459350d9026665233a335"),
        ("unreadable", A, BUSYBOX),
    ]
    assert "Permission denied" in out["problems"][1]["detail"]
    assert out["objects_checked"] == 55


def test_ostree_damage(fresh_store, capsys):
    root = fresh_store("ostree")
    objdir = root / "ostree" / "repo" / "objects"
    name = "7c/9b00c40d6b8c1215690a8e5a7c2fc810f207ba5f01622a24457996d055d985.file"
    p = objdir / name
    data = bytearray(p.read_bytes())
    data[0] ^= 0xFF
    # the checkout shares the inode (hard link): write in place, as corruption would
    with open(p, "r+b") as f:
        f.write(bytes(data[:1]))
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    (prob,) = out["problems"]
    assert (prob["kind"], prob["object"], prob["path"]) == ("corrupt", name, "/usr/share/doc/README")


def test_composefs_repo_damage(fresh_store, capsys):
    root = fresh_store("composefs-repo")
    objdir = root / "composefs" / "objects"
    shared = "90/158574bf67d7f8023a1c5d10c50c066d3fe049314ec986c9e282e5a62dea0b"
    (objdir / shared).unlink()
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    (prob,) = out["problems"]
    assert (prob["kind"], prob["object"]) == ("missing", shared)
    assert len(prob["images"]) == 2      # reported once, with both images


# --------------------------------------------------------------------------- bare images


def test_basedir_several_images(sample_objects, capsys):
    rc, out = run(capsys, "verify", "--basedir", str(sample_objects),
                  str(SAMPLE / "sample.cfs"), str(SAMPLE / "sample-v0.cfs"), "--json")
    assert rc == 0 and out["problems"] == [] and out["orphans"] == []


def test_basedir_missing_and_orphan(tmp_path, capsys):
    import subprocess
    store = tmp_path / "objs"
    store.mkdir()
    subprocess.run(["tar", "-xf", str(SAMPLE / "sample-objects.tar"), "-C", str(store)], check=True)
    missing = (SAMPLE / "sample.missing").read_text().split()
    for m in missing:
        (store / m).unlink()
    (store / "ff").mkdir(exist_ok=True)
    stray = "ff/" + "e" * 62
    (store / stray).write_bytes(b"not referenced")
    rc, out = run(capsys, "verify", "--basedir", str(store), str(SAMPLE / "sample.cfs"),
                  str(SAMPLE / "sample-v0.cfs"), "--json")
    assert rc == 1
    got = sorted((p["kind"], p["object"], tuple(p["images"])) for p in out["problems"])
    both = ("sample.cfs", "sample-v0.cfs")
    assert got == sorted([("missing", m, both) for m in missing]
                         + [("orphan", stray, ()), ("corrupt", stray, ())])


def test_digestless_blob_is_unverifiable(tmp_path, capsys):
    empty = tmp_path / "objects"
    empty.mkdir()
    rc, out = run(capsys, "verify", "--basedir", str(empty), str(IMAGES / "config.cfs"), "--json")
    assert rc == 1
    unv = [p for p in out["problems"] if p["kind"] == "unverifiable"]
    assert len(unv) == 1 and unv[0]["images"] == ["config.cfs"]
    assert out["blobs_without_any_digest"] == [str(IMAGES / "config.cfs")]


def test_cancel_and_progress(store_root):
    import threading
    store = open_store(store_root("containers-storage"))
    seen = []
    rep = verify_store(store, jobs=2, progress=lambda d, t, b: seen.append((d, t, b)))
    assert seen[0] == (0, 53, 0) and seen[-1] == (53, 53, 387017)
    ev = threading.Event()
    ev.set()
    rep = verify_store(store, cancel=ev)
    assert rep.cancelled and rep.exit_code == 1 and rep.objects_checked == 0


def test_bad_input_exit_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("cfs-inspect: ")


def test_suspicious_payloads_never_opened(tmp_path, monkeypatch, capsys):
    from inspector.composefs.dumpfile import parse_dump
    from inspector.composefs.writer import build_image
    dump = (b"/ 4096 40755 2 0 0 0 0.0 - - -\n"
            b"/abs 100 100644 1 0 0 0 0.0 /etc/passwd - -\n"
            b"/climb 100 100644 1 0 0 0 0.0 ../../etc/shadow - -\n"
            b"/gone 100 100644 1 0 0 0 0.0 aa/bbbb - -\n")
    image = tmp_path / "evil.cfs"
    image.write_bytes(build_image(parse_dump(dump, strict=False)))
    objs = tmp_path / "objects"
    objs.mkdir()
    opened = []
    real = hashing.open_ro
    monkeypatch.setattr(hashing, "open_ro", lambda p: opened.append(p) or real(p))
    rc, out = run(capsys, "verify", "--basedir", str(objs), str(image), "--json")
    assert rc == 1
    got = sorted((p["kind"], p["object"], p["path"], p["detail"]) for p in out["problems"])
    assert got == [
        ("missing", "aa/bbbb", "/gone", f"object not found in {objs}"),
        ("suspicious", "../../etc/shadow", "/climb", "payload climbs with '..': never opened"),
        ("suspicious", "/etc/passwd", "/abs", "absolute payload: never opened"),
        ("unverifiable", None, None, "the blob carries no fs-verity digest for any of its 3 "
         "objects: content can be checked only through object names, and the kernel cannot "
         "enforce verity"),
    ]
    assert opened == []


@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_fast_verity_equals_reference(alg):
    from inspector.analysis.hashing import FastVerity
    from inspector.composefs.fsverity import fsverity_digest
    for n in (0, 1, 4095, 4096, 4097, 128 * 4096, 128 * 4096 + 1, 128 * 128 * 4096 + 7):
        data = os.urandom(n)
        for chunk in (1 << 20, 1000, 12289):
            h = FastVerity(alg)
            for i in range(0, n, chunk):
                h.update(data[i:i + chunk])
            assert h.digest() == fsverity_digest(data, alg), (n, chunk)
    # the empty-content digest of the fixtures README (upstream quirk 5)
    if alg == "sha256":
        assert FastVerity().hexdigest() == \
            "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"


def test_damaged_blob_is_reported_without_false_orphans(fresh_store, capsys):
    root = fresh_store("containers-storage")
    blob = root / "storage" / "overlay" / B / "composefs-data" / "composefs.blob"
    data = blob.read_bytes()
    blob.write_bytes(data[:1100])        # header and superblock survive, inodes are gone
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    kinds = [(p["kind"], p["layer"]) for p in out["problems"]]
    assert kinds == [("blob-error", B)]
    assert out["problems"][0]["images"] == ["localhost/app1:1"]
    assert out["orphans"] == []          # B's objects are not orphans: its needs are unknown
    assert B not in out["per_layer"]


def test_missing_in_base_but_served_in_one_stack(fresh_store, capsys):
    """A's license object deleted: base has no other copy (missing), while app1's stack also
    has B's copy (served elsewhere); app2's stack (C, A) has none (missing)."""
    root = fresh_store("containers-storage")
    obj(root, A, LICENSE).unlink()
    rc, out = run(capsys, "verify", str(root), "--json")
    assert rc == 1
    assert sorted(short(out["problems"])) == [
        ("missing", "error", A, LICENSE, "/usr/share/doc/zlib/COPYING",
         ("localhost/base:1", "localhost/app2:1")),
        ("warning-elsewhere", "warning", A, LICENSE, "/usr/share/doc/zlib/COPYING",
         ("localhost/app1:1",)),
    ]
