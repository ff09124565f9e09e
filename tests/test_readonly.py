"""Read-only proof: nothing in a store changes while verify, dedup and refs run over it.

Every entry's content (regular files), link target (symlinks), xattrs and metadata (mode,
owner, size, nlink, inode, mtime, ctime) are hashed before and after; atime is not compared
(O_NOATIME is used where permitted, but a relatime mount may still update it)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from inspector.cli import main


def snapshot(root: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames, "."]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:      # as root: mode 0000 objects read too
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            try:
                xattrs = sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                for k in os.listxattr(p, follow_symlinks=False))
            except OSError:
                xattrs = None
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                             st.st_nlink, st.st_ino, st.st_mtime_ns,
                                             st.st_ctime_ns, extra, xattrs)
    return out


COMMANDS = {
    "containers-storage": [
        ["verify"], ["verify", "--json"], ["dedup"], ["dedup", "--json"],
        ["refs", "ef01b0d4"], ["refs", "--json", "cd2f343ca1689ce6"],
        ["refs", "localhost/app2:1:/opt/app2/lib/libshared1.so"],
    ],
    "composefs-repo": [["verify"], ["dedup", "--json"], ["refs", "90158574bf67"]],
    "ostree": [["verify", "--json"], ["dedup"], ["refs", "7c9b00c40d6b"]],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_commands_do_not_modify_store(fresh_store, capsys, name):
    root = fresh_store(name)
    before = snapshot(root)
    assert len(before) > 20
    for argv in COMMANDS[name]:
        rc = main([argv[0], str(root), *argv[1:]])
        assert rc == 0, (argv, capsys.readouterr())
    capsys.readouterr()
    assert snapshot(root) == before


def test_damaged_store_is_not_repaired_or_touched(fresh_store, tmp_path, capsys):
    root = fresh_store("containers-storage")
    diff = root / "storage/overlay/7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e/diff"
    victim = diff / "38/0f405a65c3c8c40189ed35e42a5a240ba1a35fe93fde39726c240de428bb2f"
    victim.unlink()
    victim.symlink_to(tmp_path / "outside")
    (tmp_path / "outside").write_bytes(b"secret")
    os.mkfifo(diff / "38/fifo-object")
    before = snapshot(root)
    outside_before = os.stat(tmp_path / "outside").st_mtime_ns
    rc = main(["verify", str(root), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    kinds = sorted((p["kind"], p["object"]) for p in out["problems"])
    assert ("suspicious", "38/fifo-object") in kinds
    assert ("suspicious", "38/0f405a65c3c8c40189ed35e42a5a240ba1a35fe93fde39726c240de428bb2f") in kinds
    assert snapshot(root) == before
    assert os.stat(tmp_path / "outside").st_mtime_ns == outside_before
