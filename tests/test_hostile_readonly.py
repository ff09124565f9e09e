"""Read-only, including atime: every command over a store leaves every file as it was.

Extends ``tests/test_readonly.py`` (content, metadata, mtime, ctime for verify/dedup/refs)
with the commands it does not run (``doctor``, ``info``, ``stat``, ``dump``, store discovery)
and with **atime**: the filesystem here is ext4 with ``relatime``, which updates an atime on
access when it is not newer than mtime/ctime.  So every file and directory is first given an
atime 10 s older than its mtime; a read or directory listing without ``O_NOATIME`` would then
move it.  Symlinks are excluded from the atime comparison only: ``readlink`` updates a link's
atime and no flag prevents it (the link targets are still compared).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.stores.discover import open_all, open_store


def all_paths(root: Path) -> list[str]:
    return sorted(os.path.join(dp, n) for dp, dns, fns in os.walk(root) for n in [*dns, *fns, "."])


def content(paths: list[str]) -> dict[str, str]:
    """sha256 of regular files / link targets, read with O_NOATIME (the snapshot itself must
    not touch atimes)."""
    out = {}
    for p in paths:
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            fd = os.open(p, os.O_RDONLY | os.O_NOATIME | os.O_NONBLOCK)
            try:
                h = hashlib.sha256()
                while b := os.read(fd, 1 << 20):
                    h.update(b)
            finally:
                os.close(fd)
            out[p] = h.hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            out[p] = os.readlink(p)
    return out


def metadata(paths: list[str]) -> dict[str, tuple]:
    out = {}
    for p in paths:
        st = os.lstat(p)
        atime = None if stat.S_ISLNK(st.st_mode) else st.st_atime_ns
        out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_nlink, st.st_ino,
                  st.st_mtime_ns, st.st_ctime_ns, atime)
    return out


def age_atimes(paths: list[str]) -> None:
    for p in paths:
        st = os.lstat(p)
        os.utime(p, ns=(st.st_mtime_ns - 10**10, st.st_mtime_ns), follow_symlinks=False)


def relatime_applies(tmp_path: Path) -> bool:
    """Whether this filesystem updates an aged atime on a plain read (else the test of atime
    proves nothing, and says so by failing loudly)."""
    f = tmp_path / "probe"
    f.write_bytes(b"x")
    age_atimes([str(f)])
    a0 = os.lstat(f).st_atime_ns
    f.read_bytes()
    return os.lstat(f).st_atime_ns != a0


COMMANDS = {
    "containers-storage": [["verify"], ["verify", "--json"], ["dedup"], ["refs", "ef01b0d4"], ["doctor"]],
    "composefs-repo": [["verify"], ["dedup", "--json"], ["refs", "90158574bf67"]],
    "ostree": [["verify", "--json"], ["dedup"], ["refs", "7c9b00c40d6b"]],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_command_changes_anything_including_atime(fresh_store, tmp_path, capsys, name):
    assert relatime_applies(tmp_path)
    root = fresh_store(name)
    paths = all_paths(root)
    before_content = content(paths)
    age_atimes(paths)
    before = metadata(paths)
    # discovery, then every blob through the image commands
    stores = open_all(root)
    store = open_store(root)
    blobs = sorted({str(la.blob) for la in store.layers.values() if la.composefs and la.blob})
    assert blobs and len(stores) == 1
    for argv in COMMANDS[name]:
        rc = main([argv[0], str(root), *argv[1:]])
        assert rc in (0, 1), argv          # doctor (containers/storage only): 1 = not in use here
    for blob in blobs:
        for argv in (["info", blob], ["info", "--json", blob], ["stat", blob, "/"], ["ls", blob]):
            assert main(argv) == 0, argv
        main(["dump", blob])               # rs V2 blobs are not composefs-info readable: exit 2
    capsys.readouterr()
    assert metadata(paths) == before
    assert content(paths) == before_content
    assert all_paths(root) == paths        # nothing created or removed


def test_merged_view_of_plain_layers_keeps_atimes(fresh_store, tmp_path):
    """Regression: the merged view listed plain layers' ``diff/`` trees with ``os.scandir``,
    updating every directory's atime (browsing in the TUI, ``refs`` visibility)."""
    from inspector.analysis.merged import merged_view
    assert relatime_applies(tmp_path)
    root = fresh_store("containers-storage")
    paths = all_paths(root)
    age_atimes(paths)
    before = metadata(paths)
    store = open_store(root)
    plain = [la for la in store.layers.values() if not la.composefs]
    assert plain
    listed = sum(len(merged_view(store, im)) for im in store.images)
    assert listed > 50
    assert metadata(paths) == before
