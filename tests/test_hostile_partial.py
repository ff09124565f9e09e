"""Hostile stores, partial failure (issue 6): an unreadable layer (EACCES injected, or root
privileges really dropped in a forked child), a corrupt blob, damaged metadata, and files that
vanish or are swapped between the scan and the read become reported problems; the rest of the
store is still inspected.  Helpers come from ``tests/test_hostile_stores.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from inspector.cli import main
from test_hostile_stores import CS_APP1, LICENSE


# -- partial failure: unreadable, corrupt, vanished --------------------------------------------

def deny(monkeypatch, *victims: Path) -> None:
    """Inject EACCES for opens of *victims* (tests run as root, which bypasses permissions)."""
    real_open = os.open
    names = {str(v) for v in victims}

    def fake(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is None and os.fspath(path) in names:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake)


def test_unreadable_image_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    """Regression: EACCES on the retry without O_NOATIME escaped as PermissionError (a
    traceback for a non-root user opening a root-only image)."""
    img = tmp_path / "root-only.cfs"
    img.write_bytes((Path(__file__).parent.parent.parent / "shared/fixtures/images/special.cfs").read_bytes())
    deny(monkeypatch, img)
    for cmd in ("dump", "info", "ls"):
        assert main([cmd, str(img)]) == 2
        assert capsys.readouterr() == ("", f"cfs-inspect: {img}: cannot open: Permission denied\n")


def _verify_json(root: Path, capsys) -> dict:
    main(["verify", str(root), "--json"])
    return json.loads(capsys.readouterr().out)


def test_unreadable_blob_is_reported_rest_inspected(fresh_store, monkeypatch, capsys):
    root = fresh_store("containers-storage")
    clean = _verify_json(root, capsys)
    blob = root / CS_APP1 / "composefs-data/composefs.blob"
    from inspector.analysis.objects import clear_cache
    clear_cache()            # blob walks are cached per file identity; this one is unchanged
    deny(monkeypatch, blob)
    rep = _verify_json(root, capsys)
    assert [(p["kind"], p["detail"]) for p in rep["problems"] if p["kind"] == "blob-error"] == [
        ("blob-error", f"cannot read composefs blob: {blob}: cannot open: Permission denied")]
    lid = CS_APP1.rsplit("/", 1)[1]
    # the other two layers are checked exactly as before
    others = {k: v for k, v in clean["per_layer"].items() if k != lid}
    assert {k: rep["per_layer"][k] for k in others} == others
    assert rep["files_hashed"] > 40
    for argv in (["dedup", "--json", str(root)], ["refs", "--json", str(root), "ef01b0d4"]):
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["blob_errors"] == [{"layer": lid, "error": f"{blob}: cannot open: Permission denied"}]
    assert main(["dedup", str(root)]) == 0
    assert (f"Warning: layer {lid[:12]}: {blob}: cannot open: Permission denied (its references are "
            "not counted)") in capsys.readouterr().out.splitlines()


def test_unreadable_object_is_reported_rest_inspected(fresh_store, monkeypatch, capsys):
    root = fresh_store("containers-storage")
    obj = root / CS_APP1 / "diff" / LICENSE
    deny(monkeypatch, obj)
    rep = _verify_json(root, capsys)
    assert [(p["kind"], p["object"], p["detail"]) for p in rep["problems"] if p["kind"] == "unreadable"] == [
        ("unreadable", LICENSE, f"{obj}: cannot open: Permission denied")]
    assert rep["files_hashed"] == 52        # every other physical file (53 in the clean store)


def test_corrupt_blob_is_reported_rest_inspected(fresh_store, capsys):
    root = fresh_store("containers-storage")
    blob = root / CS_APP1 / "composefs-data/composefs.blob"
    data = bytearray(blob.read_bytes())
    data[1024:1028] = b"\0\0\0\0"            # superblock magic
    blob.write_bytes(bytes(data))
    rep = _verify_json(root, capsys)
    assert [p["detail"] for p in rep["problems"] if p["kind"] == "blob-error"] == [
        f"cannot read composefs blob: {blob}: offset 0x400: bad EROFS superblock magic 0x00000000 "
        "(expected 0xe0f5e1e2)"]
    assert rep["files_hashed"] > 40


def test_object_vanishing_after_the_scan(fresh_store, capsys):
    """The store changes under us: an object deleted between the inventory and hashing."""
    from inspector.analysis.objects import build_index, clear_cache
    from inspector.analysis.verify import verify_store
    from inspector.stores.discover import open_store
    root = fresh_store("containers-storage")
    clear_cache()
    store = open_store(root)
    idx = build_index(store)
    (root / CS_APP1 / "diff" / LICENSE).unlink()
    rep = verify_store(store, index=idx)
    probs = [(p.kind, p.object, p.detail) for p in rep.problems if p.severity == "error"]
    assert probs == [("unreadable", LICENSE,
                      f"{root / CS_APP1 / 'diff' / LICENSE}: cannot open: No such file or directory")]
    assert rep.files_hashed == 52


def test_blob_vanishing_after_discovery(fresh_store, capsys):
    from inspector.analysis.objects import clear_cache
    from inspector.analysis.verify import verify_store
    from inspector.stores.discover import open_store
    root = fresh_store("containers-storage")
    clear_cache()
    store = open_store(root)
    blob = root / CS_APP1 / "composefs-data/composefs.blob"
    blob.unlink()
    rep = verify_store(store)
    assert [(p.kind, p.detail) for p in rep.problems if p.kind == "blob-error"] == [
        ("blob-error", f"cannot read composefs blob: {blob}: cannot open: No such file or directory")]
    assert rep.files_hashed > 40


@pytest.mark.parametrize("alg", [["fsverity-sha256-12"], {"a": 1}, None, 12])
def test_composefs_meta_json_algorithm_of_wrong_type(fresh_store, capsys, alg):
    """Regression (store fuzzer): a list or object as meta.json "algorithm" raised TypeError
    (unhashable) in discovery; now it is an unknown algorithm, inferred from object names."""
    root = fresh_store("composefs-repo")
    meta = root / "composefs/meta.json"
    m = json.loads(meta.read_text())
    m["algorithm"] = alg
    meta.write_text(json.dumps(m))
    assert main(["verify", "--json", str(root)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["store"]["object_naming"] == "fsverity-sha256"
    assert [(p["kind"], p["detail"]) for p in out["problems"]] == [
        ("store-error", f"meta.json: unknown algorithm {str(alg)!r}; inferred from object names")]


def test_object_directory_swapped_for_symlink_after_the_scan(fresh_store, tmp_path, monkeypatch):
    """Race: ``diff/ef`` is replaced by a symlink to an outside copy between the inventory
    and hashing.  The file opened is not the one scanned: reported, never read."""
    from inspector.analysis import hashing
    from inspector.analysis.objects import build_index, clear_cache
    from inspector.analysis.verify import verify_store
    from inspector.stores.discover import open_store
    root = fresh_store("containers-storage")
    clear_cache()
    store = open_store(root)
    idx = build_index(store)
    diff = root / CS_APP1 / "diff"
    outside = tmp_path / "outside-ef"
    shutil.copytree(diff / "ef", outside)
    shutil.rmtree(diff / "ef")
    (diff / "ef").symlink_to(outside)
    def where(fd: int) -> str:
        return os.readlink(f"/proc/self/fd/{fd}")

    outside_reads: list[str] = []
    outside_opens: list[str] = []
    real_read, real_fstat = os.read, os.fstat

    def read(fd, n):
        if where(fd).startswith(str(outside)):
            outside_reads.append(where(fd))
        return real_read(fd, n)

    def fstat(fd):
        if where(fd).startswith(str(outside)):
            outside_opens.append(where(fd))
        return real_fstat(fd)

    monkeypatch.setattr(hashing.os, "read", read)
    monkeypatch.setattr(hashing.os, "fstat", fstat)
    rep = verify_store(store, index=idx)
    probs = [(p.kind, p.object, p.detail) for p in rep.problems if p.severity == "error"]
    assert probs == [("suspicious", LICENSE, f"{diff / LICENSE}: changed since the scan (replaced or "
                                             "reached through a symlink), not read")]
    assert (outside_opens, outside_reads) == ([str(outside / LICENSE[3:])], [])


def run_as_nobody(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in a forked child that dropped root (uid/gid 65534): real EACCES."""
    import contextlib
    import io
    import tempfile
    # Warm-up as root: every lazily imported module is loaded before the child loses the
    # right to read the interpreter's library directory (/root/.pyenv here).
    with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())), contextlib.redirect_stderr(io.StringIO()):
        main(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # child
            code = 99
            try:
                from inspector.analysis.objects import clear_cache
                clear_cache()         # the warm-up's blob walks must not be reused
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = os.fdopen(1, "w", closefd=False)
                sys.stderr = os.fdopen(2, "w", closefd=False)
                code = main(argv)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException as e:  # noqa: BLE001 - report anything to the parent
                os.write(2, repr(e).encode())
            finally:
                os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), out.read().decode(), err.read().decode("utf-8", "replace")


@pytest.fixture
def world_readable_store():
    """An extraction under a world-traversable directory (pytest's base temp is mode 0700)."""
    import tempfile
    from conftest import STORES, extract_tarball
    top = Path(tempfile.mkdtemp(prefix="cfs-nobody-"))
    os.chmod(top, 0o755)
    try:
        yield extract_tarball(STORES / "containers-storage.tar.gz", top / "cs")
    finally:
        shutil.rmtree(top)


def test_store_read_without_root_privileges(world_readable_store):
    """Dropped privileges: the store is world-readable but one layer's blob is 0600 and the
    objects keep containers/storage's mode 0000.  verify still inspects everything it can and
    reports the rest as unreadable."""
    root = world_readable_store
    for dp, dns, fns in os.walk(root):
        os.chmod(dp, 0o755)
        for f in fns:
            p = os.path.join(dp, f)
            if not os.path.islink(p) and "/diff/" not in p:
                os.chmod(p, 0o644)
    blob = root / CS_APP1 / "composefs-data/composefs.blob"
    os.chmod(blob, 0o600)
    rc, out, err = run_as_nobody(["verify", "--json", str(root)])
    assert (rc, err) == (1, "")
    probs = json.loads(out)["problems"]
    assert [p["detail"] for p in probs if p["kind"] == "blob-error"] == [
        f"cannot read composefs blob: {blob}: cannot open: Permission denied"]
    unreadable = [p for p in probs if p["kind"] == "unreadable"]
    assert len(unreadable) > 30 and all(p["detail"].endswith("cannot open: Permission denied")
                                        for p in unreadable)
    rc, out, err = run_as_nobody(["dump", str(blob)])
    assert (rc, out, err) == (2, "", f"cfs-inspect: {blob}: cannot open: Permission denied\n")
