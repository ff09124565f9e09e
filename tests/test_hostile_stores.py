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
