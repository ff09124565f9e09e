"""The OCI merged view (inspector.analysis.merged) against the fixture's merged_paths, and the
whiteout/opaque rules on hand-made plain layers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import STORES
from inspector.analysis.merged import MergedView, merged_view
from inspector.stores.discover import open_store
from inspector.stores.model import Layer, Store, StoreImage

CS = json.loads((STORES / "containers-storage.expected.json").read_text())


@pytest.fixture(scope="module")
def cs_store(store_root):
    return open_store(store_root("containers-storage"))


@pytest.mark.parametrize("image", sorted(CS["merged_paths"]))
def test_merged_paths_match_fixture(cs_store, image):
    im = next(i for i in cs_store.images if image in i.names)
    got = [{"path": p.decode(), "type": t, "layer": lay} for p, t, lay in merged_view(cs_store, im)]
    assert got == CS["merged_paths"][image]


def test_whiteouts_removed_exactly_the_documented_paths(cs_store):
    for image, deleted in CS["merged_paths_deleted_by_whiteouts"].items():
        im = next(i for i in cs_store.images if image in i.names)
        view = MergedView(cs_store, im)
        for path in deleted:
            assert view.lookup(path.encode()) is None
        # the literal marker files never show
        paths = {p for p, _, _ in merged_view(cs_store, im)}
        assert not any(b"/.wh." in p for p in paths)


def test_lazy_listdir_one_directory(cs_store):
    app2 = next(i for i in cs_store.images if "localhost/app2:1" in i.names)
    view = MergedView(cs_store, app2)
    zlib = view.listdir(b"/usr/share/doc/zlib")
    # C made the directory opaque and added README: A's COPYING and ChangeLog are gone
    assert sorted(zlib) == [b"README"]
    assert zlib[b"README"].layer == "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0"
    assert view.lookup(b"/usr/share/doc/zlib").layer == zlib[b"README"].layer
    assert view.listdir(b"/no/such/dir") is None
    assert view.lookup(b"/etc/os-release").type == "reg"


def _mk(root: Path, spec: dict) -> None:
    for rel, what in spec.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if what == "dir":
            p.mkdir(exist_ok=True)
        elif what == "whiteout":
            os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        elif what == "opaque-dir":
            p.mkdir(exist_ok=True)
            os.setxattr(p, "trusted.overlay.opaque", b"y")
        elif isinstance(what, tuple):
            os.symlink(what[1], p)
        else:
            p.write_bytes(what)


def test_oci_rules_on_plain_layers(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _mk(lower, {"/a/x": b"1", "/b/y": b"2", "/c/d/e": b"3", "/f/g": b"4", "/h": b"5",
                "/k/keep": b"6", "/l": b"7"})
    _mk(upper, {"/a": "whiteout", "/b": "opaque-dir", "/b/z": b"8", "/c": b"file now",
                "/f/.wh..wh..opq": b"", "/f/new": b"9", "/.wh.h": b"", "/k/add": b"10",
                "/l": "dir", "/l/m": ("lnk", "../k")})
    layers = {"L": Layer("L", None, False, None, lower), "U": Layer("U", "L", False, None, upper)}
    store = Store(kind="containers-storage", path=tmp_path, object_naming="sha256-content",
                  layers=layers, images=[StoreImage("img", ("img",), ("U", "L"))])
    got = merged_view(store, store.images[0])
    assert got == [
        (b"/", "dir", "U"),
        (b"/b", "dir", "U"), (b"/b/z", "reg", "U"),
        (b"/c", "reg", "U"),
        (b"/f", "dir", "U"), (b"/f/new", "reg", "U"),
        (b"/k", "dir", "U"), (b"/k/add", "reg", "U"), (b"/k/keep", "reg", "L"),
        (b"/l", "dir", "U"), (b"/l/m", "lnk", "U"),
    ]


def test_unreadable_layer_is_skipped_with_a_problem(fresh_store):
    root = fresh_store("containers-storage")
    a = "7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
    blob = root / "storage" / "overlay" / a / "composefs-data" / "composefs.blob"
    blob.write_bytes(blob.read_bytes()[:1100])
    store = open_store(root)
    app1 = next(i for i in store.images if "localhost/app1:1" in i.names)
    view = MergedView(store, app1)
    assert len(view.problems) == 1 and view.problems[0].startswith(f"layer {a}: ")
    assert view.lookup(b"/opt/app1/LICENSE").type == "reg"
    assert view.lookup(b"/etc/os-release") is None
