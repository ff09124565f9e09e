"""What open_store makes of a PATH: defaults, bare images, mixed hosts, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from conftest import IMAGES, SAMPLE
import inspector.stores.discover as discover
from inspector.errors import StoreError
from inspector.stores.bare import decide_object_naming
from inspector.stores.discover import default_candidates, open_all, open_store, store_summary


@pytest.fixture
def fake_user(monkeypatch, tmp_path):
    """An unprivileged user whose HOME is a temp dir; system defaults moved into tmp too."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setattr(discover, "SYSTEM_GRAPHROOT", tmp_path / "sys/var/lib/containers/storage")
    monkeypatch.setattr(discover, "SYSTEM_COMPOSEFS", tmp_path / "sys/sysroot/composefs")
    return home


def test_default_candidates_for_a_user(fake_user, tmp_path, monkeypatch):
    assert default_candidates() == [
        ("containers-storage", fake_user / ".local/share/containers/storage"),
        ("composefs-rs", fake_user / ".var/lib/composefs"),
        ("composefs-rs", tmp_path / "sys/sysroot/composefs"),
    ]
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_candidates()[0] == ("containers-storage", tmp_path / "xdg/containers/storage")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_candidates()[0] == ("containers-storage",
                                       fake_user / ".local/share/containers/storage")


def test_default_candidates_for_root(fake_user, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_candidates() == [
        ("containers-storage", tmp_path / "sys/var/lib/containers/storage"),
        ("composefs-rs", tmp_path / "sys/sysroot/composefs"),
        ("composefs-rs", fake_user / ".var/lib/composefs"),
    ]


def test_no_path_nothing_found_lists_what_was_looked_for(fake_user, tmp_path):
    with pytest.raises(StoreError) as ei:
        open_store(None)
    assert str(ei.value) == (
        f"no store found (looked for containers-storage at {fake_user}/.local/share/containers/"
        f"storage; composefs-rs at {fake_user}/.var/lib/composefs; composefs-rs at "
        f"{tmp_path}/sys/sysroot/composefs); give a PATH")


def test_no_path_finds_rootless_graphroot(fake_user, store_root):
    gr = fake_user / ".local/share/containers/storage"
    gr.parent.mkdir(parents=True)
    shutil.copytree(store_root("containers-storage") / "storage", gr, symlinks=True)
    store = open_store(None)
    assert store.kind == "containers-storage" and store.path == gr
    assert len(store.images) == 4
    assert store.notes == []


def test_no_path_rootless_without_composefs_says_so(fake_user, store_root):
    gr = fake_user / ".local/share/containers/storage"
    (gr / "overlay").mkdir(parents=True)
    (gr / "overlay-layers").mkdir()
    (gr / "overlay-images").mkdir()
    (gr / "overlay-layers/layers.json").write_text(json.dumps([{"id": "a" * 64}]))
    (gr / "overlay-images/images.json").write_text(json.dumps(
        [{"id": "b" * 64, "names": ["x:1"], "layer": "a" * 64}]))
    os.chown(gr, 1000, 1000)
    store = open_store(None)
    assert store.notes == ["0 composefs layers of 1 (rootless: containers/storage refuses "
                           "composefs in user namespaces)"]
    assert store.images[0].layers == ("a" * 64,)
    assert store.layers["a" * 64].composefs is False


def test_no_path_falls_back_to_composefs_repo(fake_user, store_root):
    repo = fake_user / ".var/lib/composefs"
    repo.parent.mkdir(parents=True)
    shutil.copytree(store_root("composefs-repo") / "composefs", repo, symlinks=True)
    store = open_store(None)
    assert store.kind == "composefs-rs" and store.path == repo
    assert [im.names for im in store.images] == [("os/v1",), ("latest", "os/v2")]


def test_mixed_host_lists_every_store(tmp_path, store_root):
    host = tmp_path / "host"
    host.mkdir()
    shutil.copytree(store_root("containers-storage") / "storage", host / "storage", symlinks=True)
    shutil.copytree(store_root("composefs-repo") / "composefs", host / "composefs", symlinks=True)
    shutil.copytree(store_root("ostree") / "ostree", host / "ostree", symlinks=True)
    store = open_store(host)
    assert store.kind == "containers-storage"
    assert store.notes == [f"also found: composefs-rs at {host}/composefs",
                           f"also found: ostree at {host}/ostree"]
    # one level further up, the stores are found in the child directory
    assert open_store(tmp_path).path == host / "storage"
    # open_all loads each; a broken one carries its error instead of hiding the others
    (host / "composefs/meta.json").write_text("[")
    stores = open_all(host)
    assert [(s.kind, s.path) for s in stores] == [
        ("containers-storage", host / "storage"), ("composefs-rs", host / "composefs"),
        ("ostree", host / "ostree")]
    assert [len(s.images) for s in stores] == [4, 0, 1]
    assert stores[1].problems == [f"{host}/composefs/meta.json: offset 0x1: invalid JSON: "
                                  "Expecting value (line 1 column 2)"]


def test_bootc_bound_images_storage_is_listed(tmp_path, store_root):
    sysroot = tmp_path / "sysroot"
    shutil.copytree(store_root("composefs-repo") / "composefs", sysroot / "composefs", symlinks=True)
    shutil.copytree(store_root("containers-storage") / "storage",
                    sysroot / "composefs/bootc/storage", symlinks=True)
    (sysroot / "state/deploy").mkdir(parents=True)
    store = open_store(sysroot)
    assert store.kind == "composefs-rs" and store.path == sysroot / "composefs"
    assert store.notes == [f"also found: containers-storage at {sysroot}/composefs/bootc/storage"]


def test_relative_path_becomes_absolute(store_root, monkeypatch):
    root = store_root("containers-storage")
    monkeypatch.chdir(root)
    assert open_store("storage").path == root / "storage"


def test_store_symlink_is_not_probed_through(tmp_path, store_root):
    d = tmp_path / "d"
    d.mkdir()
    target = store_root("containers-storage") / "storage"
    os.symlink(target, d / "storage")
    with pytest.raises(StoreError) as ei:
        open_store(d)
    assert str(ei.value) == (f"{d}: storage is a symlink to {target}, not followed: give that "
                             "directory as PATH")
    # the PATH itself may be a symlink: that is the user's choice
    os.symlink(target, tmp_path / "link")
    assert len(open_store(tmp_path / "link").images) == 4


def test_unknown_directory_error(tmp_path):
    with pytest.raises(StoreError) as ei:
        open_store(tmp_path)
    assert str(ei.value) == (
        f"{tmp_path}: no store found here (looked for a containers/storage graphroot at PATH and "
        "PATH/storage, a composefs-rs repository at PATH and PATH/composefs, an ostree sysroot "
        "or repository, and the same one directory level down)")


def test_missing_path_and_non_image_file(tmp_path):
    with pytest.raises(StoreError) as ei:
        open_store(tmp_path / "nope")
    assert str(ei.value) == f"{tmp_path / 'nope'}: cannot access: No such file or directory"
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello" * 300)
    with pytest.raises(StoreError) as ei:
        open_store(junk)
    assert str(ei.value) == (f"{junk}: not a composefs image (no composefs or EROFS magic) and "
                             "not a store directory")


# ----------------------------------------------------------------- bare images

@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    dest = tmp_path_factory.mktemp("bare-objects")
    subprocess.run(["tar", "-xf", str(SAMPLE / "sample-objects.tar"), "-C", str(dest)], check=True)
    return dest


def test_single_image_with_basedir(sample_store):
    img = SAMPLE / "sample.cfs"
    store = open_store(img, basedir=sample_store)
    assert store.kind == "image"
    assert store.path == img
    assert store.object_naming == "fsverity-sha256"
    assert store.object_dirs == [sample_store]
    (im,) = store.images
    assert im.names == ("sample.cfs",) and im.layers == (str(img),)
    layer = store.layers[str(img)]
    assert layer.blob == img and layer.object_dir == sample_store and layer.composefs is True
    assert store.object_search_dirs(im) == [sample_store]
    assert store.orphans_apply is True and store.metadata_objects == set()
    s = store_summary(store)
    assert s["details"] == {"basedir": str(sample_store)}
    assert s["images"][0]["label"] == "sample.cfs"


def test_several_images_share_a_basedir(sample_store):
    store = open_store(None, basedir=sample_store,
                       images=[SAMPLE / "sample.cfs", SAMPLE / "sample-v0.cfs"])
    assert [im.names for im in store.images] == [("sample.cfs",), ("sample-v0.cfs",)]
    assert store.object_naming == "fsverity-sha256"


def test_image_without_basedir():
    img = IMAGES / "config.cfs"
    store = open_store(img)
    assert store.object_dirs == [] and store.layers[str(img)].object_dir is None
    assert store.object_naming == "unknown"
    assert store.notes == ["no --basedir: payload objects cannot be located"]


def test_containers_blob_as_bare_image_is_not_fsverity_named(store_root):
    lid = "7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
    layer = store_root("containers-storage") / "storage/overlay" / lid
    store = open_store(layer / "composefs-data/composefs.blob", basedir=layer / "diff")
    assert store.object_naming == "unknown"


def test_ostree_cfs_as_bare_image(store_root):
    root = store_root("ostree") / "ostree"
    cfs = next((root / "deploy/fixture/deploy").glob("*.0")) / ".ostree.cfs"
    assert open_store(cfs, basedir=root / "repo/objects").object_naming == "unknown"


def test_bad_basedir(tmp_path):
    with pytest.raises(StoreError) as ei:
        open_store(SAMPLE / "sample.cfs", basedir=tmp_path / "none")
    assert str(ei.value) == f"{tmp_path / 'none'}: --basedir is not a directory"


def test_decide_object_naming():
    h = "ab" + "c" * 62
    name = f"{h[:2]}/{h[2:]}".encode()
    assert decide_object_naming([(name, bytes.fromhex(h))]) == "fsverity-sha256"
    assert decide_object_naming([(name, None), (name, bytes.fromhex(h))]) == "fsverity-sha256"
    assert decide_object_naming([(name, None)]) == "unknown"          # nothing confirms it
    assert decide_object_naming([(name, bytes(32))]) == "unknown"     # digest differs: content-named
    assert decide_object_naming([(b"ab/cd.file", None)]) == "unknown"
    h5 = "ab" + "d" * 126
    assert decide_object_naming([(f"ab/{h5[2:]}".encode(), bytes.fromhex(h5))]) == "fsverity-sha512"
    assert decide_object_naming([]) == "unknown"


def test_summary_of_containers_store(store_root):
    store = open_store(store_root("containers-storage"))
    s = store_summary(store)
    assert json.loads(json.dumps(s)) == s
    assert set(s) == {"kind", "path", "object_naming", "orphans_apply", "object_dirs", "details",
                      "problems", "notes", "images", "layers", "streams", "refs",
                      "metadata_objects"}
    plain = next(layer for layer in s["layers"] if not layer["composefs"])
    assert plain["blob"] is None and plain["object_dir"] is None
    assert plain["extra"]["diff"].endswith("/diff")
    assert [im["label"] for im in s["images"]] == [
        "localhost/base:1", "localhost/plain:1", "localhost/app1:1", "localhost/app2:1"]
    assert s["streams"] == [] and s["refs"] == [] and s["metadata_objects"] == []
