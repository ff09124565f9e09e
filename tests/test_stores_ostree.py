"""ostree sysroot/repository discovery against the ostree fixture."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import STORES
from inspector.errors import StoreError
from inspector.stores.discover import open_store, store_summary
from inspector.stores.ostree import open_ostree, read_commit

EXPECTED = json.loads((STORES / "ostree.expected.json").read_text())
COMMIT = EXPECTED["commit"]
DIGEST = EXPECTED["commit_metadata"]["ostree.composefs.digest.v0"]


@pytest.fixture(scope="module")
def root(store_root):
    return store_root("ostree")


@pytest.mark.parametrize("sub", ["", "ostree"])
def test_sysroot_detected(root, sub):
    store = open_store(root / sub if sub else root)
    assert store.kind == "ostree"
    assert store.path == root / EXPECTED["sysroot"]
    assert store.object_naming == "ostree"
    assert store.orphans_apply is False
    assert store.object_dirs == [root / EXPECTED["basedir"]]
    assert store.problems == [] and store.notes == []
    assert store.details["repo"] == str(root / EXPECTED["repo"])
    assert store.details["repo_mode"] == EXPECTED["repo_mode"]


def test_deployment_image(root):
    store = open_store(root)
    deployment = root / EXPECTED["deployment"]
    (im,) = store.images
    assert im.id == f"fixture/{COMMIT}.0"
    assert im.names == (f"fixture:{COMMIT}", EXPECTED["ref"])
    assert im.digest == COMMIT
    assert im.layers == (im.id,)
    layer = store.layers[im.id]
    assert layer.composefs is True
    assert layer.blob == root / EXPECTED["composefs_image"]
    assert layer.object_dir == root / EXPECTED["basedir"]
    assert layer.problems == ()
    assert dict(layer.extra) == {"stateroot": "fixture", "commit": COMMIT, "serial": "0",
                                 "deployment": str(deployment),
                                 "origin-refspec": EXPECTED["ref"], "subject": "Fixture OS 1",
                                 "composefs-digest-v0": DIGEST}
    assert store.details["deployments"] == [{
        "stateroot": "fixture", "commit": COMMIT, "serial": 0, "path": str(deployment),
        "origin_refspec": EXPECTED["ref"], "composefs_image": str(root / EXPECTED["composefs_image"]),
        "subject": "Fixture OS 1", "composefs_digest_v0": DIGEST,
    }]
    assert store.object_search_dirs(im) == [root / EXPECTED["basedir"]]


def test_refs(root):
    store = open_store(root)
    assert [(r.name, r.target, r.kind) for r in store.refs] == [(EXPECTED["ref"], COMMIT, "commit")]
    assert store.refs[0].path == root / "ostree/repo/refs/heads" / EXPECTED["ref"]


def test_bare_repository(root):
    store = open_store(root / EXPECTED["repo"])
    assert store.kind == "ostree"
    assert store.path == root / EXPECTED["repo"]
    assert store.images == [] and store.layers == {}
    assert [r.target for r in store.refs] == [COMMIT]
    assert store.notes == ["bare ostree repository: no deployments, so no composefs images"]
    assert store.orphans_apply is False


def test_summary(root):
    s = store_summary(open_store(root))
    json.dumps(s)
    assert s["kind"] == "ostree" and s["orphans_apply"] is False
    assert s["images"][0]["digest"] == COMMIT
    assert s["layers"][0]["blob"] == str(root / EXPECTED["composefs_image"])
    assert s["refs"] == [{"name": EXPECTED["ref"], "kind": "commit", "target": COMMIT,
                          "path": str(root / "ostree/repo/refs/heads" / EXPECTED["ref"])}]


def test_remote_refs_missing_commit_and_deployment_without_cfs(fresh_store):
    root = fresh_store("ostree")
    repo = root / "ostree/repo"
    (repo / "refs/remotes/origin/fedora").mkdir(parents=True)
    (repo / "refs/remotes/origin/fedora/stable").write_text(COMMIT + "\n")
    (repo / "refs/heads/broken").write_text("not a checksum\n")
    # a second deployment of another (absent) commit, without .ostree.cfs, and one with it
    other = "ab" * 32
    ddir = root / "ostree/deploy/fixture/deploy"
    (ddir / f"{other}.1").mkdir()
    (ddir / f"{other}.2").mkdir()
    shutil.copy(ddir / f"{COMMIT}.0/.ostree.cfs", ddir / f"{other}.2/.ostree.cfs")
    store = open_store(root)
    assert [(r.name, r.target) for r in store.refs] == [
        (EXPECTED["ref"], COMMIT), ("origin:fedora/stable", COMMIT)]
    assert store.problems == [f"{repo}/refs/heads/broken: ref does not hold a commit checksum"]
    assert store.notes == [f"deployment fixture/{other}.1 has no .ostree.cfs"]
    assert [im.id for im in store.images] == [f"fixture/{COMMIT}.0", f"fixture/{other}.2"]
    assert store.images[0].names == (f"fixture:{COMMIT}", EXPECTED["ref"], "origin:fedora/stable")
    assert store.layers[f"fixture/{other}.2"].problems == (
        f"commit object ab/{other[2:]}.commit is missing from the repo",)


def test_symlinked_cfs_is_not_followed(fresh_store, tmp_path):
    root = fresh_store("ostree")
    cfs = root / EXPECTED["composefs_image"]
    cfs.unlink()
    os.symlink("/etc/passwd", cfs)
    store = open_store(root)
    assert store.images == []
    assert store.problems == [f"{cfs}: not a regular file; not followed"]


def test_not_ostree(tmp_path):
    with pytest.raises(StoreError) as ei:
        open_ostree(tmp_path)
    assert str(ei.value) == f"{tmp_path}: not an ostree sysroot or repository (no repo/config or config)"


def test_read_commit(root):
    obj = root / "ostree/repo/objects" / COMMIT[:2] / f"{COMMIT[2:]}.commit"
    assert read_commit(obj) == {"subject": "Fixture OS 1", "timestamp": 1700003600,
                                "parent": None, "composefs_digest_v0": DIGEST}
    assert DIGEST == EXPECTED["composefs_image_fsverity"]


def test_malformed_commit_is_a_layer_problem(fresh_store):
    root = fresh_store("ostree")
    obj = root / "ostree/repo/objects" / COMMIT[:2] / f"{COMMIT[2:]}.commit"
    data = obj.read_bytes()
    obj.write_bytes(data[:-1] + b"\xff")        # last framing offset now points past the end
    store = open_store(root)
    (layer,) = store.layers.values()
    assert layer.problems == (f"{obj}: malformed commit object: framing offset 255 beyond "
                              f"{len(data)} bytes",)
    assert dict(layer.extra)["composefs-digest-v0"] == ""
