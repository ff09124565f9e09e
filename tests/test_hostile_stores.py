"""Hostile stores: confinement, special files and partial failure (issue 6).

Crafted from private copies of the store fixtures: FIFOs where objects, blobs or metadata
should be, symlinks leading out of the store (objects, ``xx/`` directories, blobs), blobs whose
payloads are absolute or climb with ``..`` (built with the writer).  Every command must finish
(commands that could block run in a subprocess with a timeout), never open anything outside
the store (checked by spying on ``os.open`` and resolving each opened descriptor), and report
the damage as a problem while still inspecting the rest.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.composefs.dumpfile import parse_dump
from inspector.composefs.writer import build_image

ROOT = Path(__file__).resolve().parent.parent
CS_BASE = "storage/overlay/7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
CS_APP1 = "storage/overlay/046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59"
LICENSE = "ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1"


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``cfs-inspect ARGV`` in a subprocess: a hang becomes a test failure, not a stuck run."""
    return subprocess.run([sys.executable, "-m", "inspector", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def opened(monkeypatch):
    """Every file actually opened through ``os.open`` (resolved from the descriptor)."""
    seen: list[str] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        try:
            seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            seen.append(f"?{path}")
        return fd

    monkeypatch.setattr(os, "open", spy)
    return seen


def inside(paths: list[str], root: Path) -> list[str]:
    """The opened paths that are NOT inside *root*."""
    r = str(root.resolve())
    return [p for p in paths if not (p == r or p.startswith(r + "/"))]


# -- special files are never opened ------------------------------------------------------------

def test_fifo_blob_does_not_hang_store_commands(fresh_store):
    """Regression: opening a FIFO planted as a layer's composefs blob blocked verify, dedup,
    refs (and dump/info of the blob) forever; now it is refused as not a regular file."""
    root = fresh_store("containers-storage")
    blob = root / CS_BASE / "composefs-data/composefs.blob"
    blob.unlink()
    os.mkfifo(blob)
    r = run_cli("verify", str(root), "--json", timeout=60)
    assert r.returncode == 1
    probs = [p for p in json.loads(r.stdout)["problems"] if p["kind"] == "blob-error"]
    assert [p["detail"] for p in probs] == [f"cannot read composefs blob: {blob}: not a regular file"]
    for argv in (["dedup", str(root)], ["refs", str(root), "ef01b0d4"]):
        assert run_cli(*argv, timeout=60).returncode == 0
    for cmd in ("dump", "info"):
        r = run_cli(cmd, str(blob), timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"cfs-inspect: {blob}: not a regular file\n")


def test_fifo_metadata_file_does_not_hang_discovery(fresh_store):
    """A FIFO in place of ``overlay-layers/layers.json`` is refused, not waited on."""
    root = fresh_store("containers-storage")
    meta = root / "storage/overlay-layers/layers.json"
    meta.unlink()
    os.mkfifo(meta)
    r = run_cli("verify", str(root), timeout=60)
    assert r.returncode == 2
    assert r.stderr == f"cfs-inspect: {meta}: not a regular file\n"


def test_fifo_object_is_reported_never_opened(fresh_store, opened, capsys):
    """A FIFO in place of a referenced object: suspicious, and never opened for reading."""
    root = fresh_store("containers-storage")
    obj = root / CS_APP1 / "diff" / LICENSE
    obj.unlink()
    os.mkfifo(obj)
    assert main(["verify", str(root), "--json"]) == 1
    probs = json.loads(capsys.readouterr().out)["problems"]
    mine = [(p["kind"], p["layer"], p["detail"]) for p in probs if p["object"] == LICENSE]
    assert mine == [("suspicious", CS_APP1.rsplit("/", 1)[1],
                     "object is not a regular file (fifo): not followed, not opened")]
    assert str(obj) not in opened
    assert inside(opened, root) == []


# -- symlinks and payloads that lead out are never followed -----------------------------------

STORE_COMMANDS = {
    "containers-storage": [["verify"], ["dedup"], ["refs", "ef01b0d4"]],
    "composefs-repo": [["verify"], ["dedup"], ["refs", "90158574bf67"]],
    "ostree": [["verify"], ["dedup"], ["refs", "7c9b00c40d6b"]],
}


def run_all(root: Path, name: str, capsys) -> list[int]:
    codes = []
    for argv in STORE_COMMANDS[name]:
        codes.append(main([argv[0], str(root), *argv[1:]]))
    capsys.readouterr()
    return codes


def verify_problems(root: Path, capsys) -> list[tuple]:
    assert main(["verify", str(root), "--json"]) == 1
    return sorted((p["kind"], p["object"] or "", p["detail"])
                  for p in json.loads(capsys.readouterr().out)["problems"]
                  if p["kind"] not in ("orphan", "unverifiable"))


def test_object_symlink_to_etc_shadow(fresh_store, opened, capsys):
    root = fresh_store("containers-storage")
    obj = root / CS_APP1 / "diff" / LICENSE
    obj.unlink()
    obj.symlink_to("/etc/shadow")
    assert verify_problems(root, capsys) == [
        ("suspicious", LICENSE, "object is a symlink: not followed, not opened")]
    run_all(root, "containers-storage", capsys)
    assert inside(opened, root) == []


def test_symlinked_xx_directory_containers(fresh_store, tmp_path, opened, capsys):
    """``diff/ef`` replaced by a symlink to a directory outside holding the same object."""
    root = fresh_store("containers-storage")
    diff = root / CS_APP1 / "diff"
    outside = tmp_path / "outside-ef"
    (diff / "ef").rename(outside)
    (diff / "ef").symlink_to(outside)
    base = CS_BASE.rsplit("/", 1)[1]
    assert verify_problems(root, capsys) == [
        ("suspicious", "ef", f"{diff}: unexpected entry in object directory (lnk)"),
        ("warning-elsewhere", LICENSE, "missing from the layer's own object directory; the mount "
                                       f"serves it from layer {base}")]
    run_all(root, "containers-storage", capsys)
    assert inside(opened, root) == []


def test_symlinked_diff_directory(fresh_store, tmp_path, opened, capsys):
    """Regression: a layer's ``diff/`` symlinked outside was reported as missing, yet its
    objects were still listed and hashed through the link."""
    root = fresh_store("containers-storage")
    diff = root / CS_APP1 / "diff"
    outside = tmp_path / "outside-diff"
    diff.rename(outside)
    diff.symlink_to(outside)
    assert verify_problems(root, capsys) == [
        ("missing", "", "no object directory known for 8 referenced objects (give --basedir)"),
        ("store-error", "", f"composefs layer has no object directory {diff}")]
    run_all(root, "containers-storage", capsys)
    assert [p for p in opened if p.startswith(str(outside))] == []
    assert inside(opened, root) == []


def test_symlinked_xx_directory_ostree(fresh_store, tmp_path, opened, capsys):
    """Regression: ostree objects are looked up per payload; ``objects/17`` symlinked outside
    was followed (lstat follows intermediate links) and the outside file hashed."""
    root = fresh_store("ostree")
    objects = root / "ostree/repo/objects"
    outside = tmp_path / "outside-17"
    (objects / "17").rename(outside)
    (objects / "17").symlink_to(outside)
    motd = "17/ce98e097f0078dbfb847d0b7e777d62ba1bef9fa77deb4bb56804c44e3b56a.file"
    assert verify_problems(root, capsys) == [
        ("missing", motd, f"object not found in {objects}"),
        ("suspicious", "17", f"{objects}: symlinked directory: not followed (lnk)")]
    run_all(root, "ostree", capsys)
    assert [p for p in opened if p.startswith(str(outside))] == []
    assert inside(opened, root) == []


def test_symlinked_object_directory_ostree(fresh_store, tmp_path, opened, capsys):
    root = fresh_store("ostree")
    objects = root / "ostree/repo/objects"
    outside = tmp_path / "outside-objects"
    objects.rename(outside)
    objects.symlink_to(outside)
    # discovery does not recognise a repository whose objects/ is a link: no store, exit 2
    assert main(["verify", str(root)]) == 2
    assert capsys.readouterr().err.startswith(f"cfs-inspect: {root}: no store found here")
    assert [p for p in opened if p.startswith(str(outside))] == []
    # the object-dir check itself (reached when a store names a symlinked object dir)
    from inspector.analysis.objects import ScanNote, scan_object_dir
    notes: list[ScanNote] = []
    assert scan_object_dir(objects, notes) == {}
    assert notes == [ScanNote(objects, "", "lnk", "object directory is a symlink: not followed")]


def test_symlinked_xx_directory_composefs_rs(fresh_store, tmp_path, opened, capsys):
    root = fresh_store("composefs-repo")
    objects = root / "composefs/objects"
    outside = tmp_path / "outside-a3"
    (objects / "a3").rename(outside)
    (objects / "a3").symlink_to(outside)
    lib = "a3/73b56a7260312562b8c72e133a26abbb65e1bc36416f7f2fb0eb2370c7a322"
    assert verify_problems(root, capsys) == [
        ("missing", lib, f"object not found in {objects}"),
        ("suspicious", "a3", f"{objects}: unexpected entry in object directory (lnk)")]
    run_all(root, "composefs-repo", capsys)
    assert inside(opened, root) == []


EVIL_DUMP = b"""/ 4096 40755 2 0 0 0 0.0 - - -
/abs 1000 100644 1 0 0 0 0.0 /etc/passwd - -
/dotdot 1000 100644 1 0 0 0 0.0 ../../../../../../etc/passwd - -
/mid 1000 100644 1 0 0 0 0.0 ab/../../../etc/shadow - -
/ok 1100 100644 1 0 0 0 0.0 ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1 - -
"""


def test_blob_with_escaping_payloads(fresh_store, opened, capsys):
    """A layer blob (built with the writer) whose payloads are absolute or climb with ``..``:
    each is suspicious and never opened; the legitimate payload is still checked."""
    root = fresh_store("containers-storage")
    (root / CS_APP1 / "composefs-data/composefs.blob").write_bytes(build_image(parse_dump(EVIL_DUMP)))
    probs = verify_problems(root, capsys)
    assert [p for p in probs if p[0] == "suspicious"] == [
        ("suspicious", "../../../../../../etc/passwd", "payload climbs with '..': never opened"),
        ("suspicious", "/etc/passwd", "absolute payload: never opened"),
        ("suspicious", "ab/../../../etc/shadow", "payload climbs with '..': never opened")]
    assert not any(o == LICENSE for _k, o, _d in probs)        # /ok: present, right size, hashed
    run_all(root, "containers-storage", capsys)
    assert main(["missing-objects", "--basedir", str(root / CS_APP1 / "diff"),
                 str(root / CS_APP1 / "composefs-data/composefs.blob")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "../../../../../../etc/passwd", "/etc/passwd", "ab/../../../etc/shadow"]
    assert inside(opened, root) == []


def test_device_object_is_reported_never_opened(fresh_store, opened, capsys):
    """A character device (here 1:3, /dev/null's numbers) planted as an object: opening some
    devices has side effects, so it is never opened."""
    root = fresh_store("containers-storage")
    obj = root / CS_APP1 / "diff" / LICENSE
    obj.unlink()
    os.mknod(obj, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    assert verify_problems(root, capsys) == [
        ("suspicious", LICENSE, "object is not a regular file (chr): not followed, not opened")]
    run_all(root, "containers-storage", capsys)
    assert str(obj) not in opened and "/dev/null" not in opened
    assert inside(opened, root) == []


def test_hash_file_never_opens_special_files(tmp_path, opened):
    """Every caller of hash_file (verify, the TUI's single-object check) is protected: a FIFO,
    a device or a symlink is refused from lstat, before any open."""
    from inspector.analysis.hashing import HashJob, hash_file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dev = tmp_path / "dev"
    os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    link = tmp_path / "link"
    link.symlink_to("/etc/passwd")
    results = {}
    for p in (fifo, dev, link):
        st = os.lstat(p)
        r = hash_file(HashJob(p, (st.st_dev, st.st_ino), frozenset({"sha256"}), 0))
        results[p.name] = (r.error_kind, r.error)
    assert results == {"fifo": ("suspicious", "not a regular file, not read"),
                       "dev": ("suspicious", "not a regular file, not read"),
                       "link": ("suspicious", "is a symlink, not followed")}
    assert opened == []
