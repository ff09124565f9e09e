"""containers/storage discovery against the containers-storage fixture and damaged copies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import STORES
from inspector.errors import StoreError
from inspector.stores.containers import (
    bigdata_key,
    bigdata_name,
    list_bigdata,
    open_graphroot,
    read_layer_toc,
)
from inspector.stores.discover import open_store

EXPECTED = json.loads((STORES / "containers-storage.expected.json").read_text())
A, B, C, P = (next(lid for lid, v in EXPECTED["layers"].items() if v["fixture_name"] == n)
              for n in "ABCP")


@pytest.fixture(scope="module")
def cs_root(store_root):
    return store_root("containers-storage")


@pytest.fixture(scope="module")
def cs(cs_root):
    return open_store(cs_root)


def test_parent_dir_detection_looks_in_storage(cs, cs_root):
    # the archive root plays /var/lib/containers: the graphroot is <arg>/storage
    assert cs.kind == "containers-storage"
    assert cs.path == cs_root / "storage"
    assert cs.object_naming == "sha256-content"
    assert cs.problems == []
    assert cs.notes == []


def test_graphroot_given_directly(cs_root):
    store = open_store(cs_root / "storage")
    assert store.path == cs_root / "storage"
    assert [im.names for im in store.images] == [
        ("localhost/base:1",), ("localhost/plain:1",), ("localhost/app1:1",), ("localhost/app2:1",)]


def test_images_and_layer_chains_match_expected(cs):
    got = {im.names[0]: {"id": im.id, "layers": list(im.layers)} for im in cs.images}
    assert got == EXPECTED["images"]
    assert all(im.problems == () for im in cs.images)
    app1 = next(im for im in cs.images if im.label == "localhost/app1:1")
    assert app1.digest == "sha256:80aa31ebdabf58fb51cd402846c4672549438c517877a9c60e5871819a30b201"
    assert app1.created == "2023-11-14T22:15:00Z"


def test_layers_match_expected(cs):
    graphroot = cs.path
    assert set(cs.layers) == set(EXPECTED["layers"])
    for lid, exp in EXPECTED["layers"].items():
        layer = cs.layers[lid]
        assert layer.parent == exp["parent"], lid
        assert layer.composefs is exp["composefs"], lid
        if exp["composefs"]:
            assert layer.blob == graphroot / exp["composefs_blob"]
            assert layer.object_dir == graphroot / "overlay" / lid / "diff"
            assert ("layer-data-format", "1") in layer.extra
        else:
            assert layer.blob is None and layer.object_dir is None
            assert ("diff", str(graphroot / "overlay" / lid / "diff")) in layer.extra
        assert layer.problems == ()
    b = cs.layers[B]
    assert b.diff_digest == "sha256:0ab939fd1f10d3c8c5370ba2f9719daace6e89098ba1825c1a089a3bf700ce38"
    assert b.diff_size == 75264
    assert b.created == "2026-11-29T03:47:19.738352726Z"
    assert cs.object_dirs == [graphroot / "overlay" / lid / "diff" for lid in (A, B, C)]
    assert cs.details == {"composefs_layers": 3, "layers": 4}


def test_object_search_dirs_follow_the_stack(cs):
    app2 = next(im for im in cs.images if im.label == "localhost/app2:1")
    assert cs.object_search_dirs(app2) == [cs.layers[C].object_dir, cs.layers[A].object_dir]
    plain = next(im for im in cs.images if im.label == "localhost/plain:1")
    assert cs.object_search_dirs(plain) == []
    assert [im.label for im in cs.images_using(A)] == [
        "localhost/base:1", "localhost/app1:1", "localhost/app2:1"]


def test_bigdata_names_roundtrip(cs):
    assert bigdata_name("zstd-chunked-manifest") == "=enN0ZC1jaHVua2VkLW1hbmlmZXN0"
    assert bigdata_name("zstd-chunked-layer-data") == "=enN0ZC1jaHVua2VkLWxheWVyLWRhdGE="
    assert bigdata_name("chunked-manifest-cache") == "=Y2h1bmtlZC1tYW5pZmVzdC1jYWNoZQ=="
    assert bigdata_name("manifest") == "manifest"          # plain-name rule: [.0-9a-z]+
    assert bigdata_name("v1.2") == "v1.2"
    assert bigdata_name("Manifest") == "=TWFuaWZlc3Q="
    assert bigdata_key("=enN0ZC1jaHVua2VkLW1hbmlmZXN0") == "zstd-chunked-manifest"
    assert bigdata_key("manifest") == "manifest"
    assert bigdata_key("=not base64!") is None
    img = cs.path / "overlay-images" / "ebd1e85c300694dd81a66b8f46490e993f249580c84ca1a37c5ec8414a2dfb88"
    assert sorted(list_bigdata(img)) == [
        "manifest",
        "manifest-sha256:678f55b6416a79e7b51fc94f465947c63078f602efb90d166486dc1022cd34bd",
        "sha256:ebd1e85c300694dd81a66b8f46490e993f249580c84ca1a37c5ec8414a2dfb88",
        "signature-678f55b6416a79e7b51fc94f465947c63078f602efb90d166486dc1022cd34bd",
    ]


def test_layer_toc_is_read_lazily(cs):
    for lid in (A, B, C):
        toc = read_layer_toc(cs.path, lid)
        assert toc["version"] == 1
        entries = toc["entries"]
        assert len(entries) == EXPECTED["layers"][lid]["toc_entries"]
        assert sum(1 for e in entries if e["type"] == "chunk") == \
            EXPECTED["layers"][lid]["toc_chunk_entries"]
    assert read_layer_toc(cs.path, P) is None
    with pytest.raises(StoreError, match="invalid layer id"):
        read_layer_toc(cs.path, "../x")


def test_garbled_layers_json(fresh_store):
    root = fresh_store("containers-storage")
    lj = root / "storage" / "overlay-layers" / "layers.json"
    data = lj.read_bytes()
    lj.write_bytes(data[:100])
    with pytest.raises(StoreError) as ei:
        open_store(root)
    assert str(ei.value) == (f"{lj}: offset 0x54: invalid JSON: Unterminated string starting "
                             "at (line 1 column 85)")
    assert ei.value.path == str(lj)
    assert ei.value.offset == 0x54


def test_layers_json_not_an_array(fresh_store):
    root = fresh_store("containers-storage")
    lj = root / "storage" / "overlay-layers" / "layers.json"
    lj.write_text('{"id": "x"}')
    with pytest.raises(StoreError) as ei:
        open_store(root)
    assert str(ei.value) == f"{lj}: expected a JSON array of layers.json entries, got dict"


def test_missing_images_json(fresh_store):
    root = fresh_store("containers-storage")
    ij = root / "storage" / "overlay-images" / "images.json"
    ij.unlink()
    with pytest.raises(StoreError) as ei:
        open_store(root)
    assert str(ei.value) == (f"{root / 'storage'}: incomplete containers/storage graphroot: "
                             "needs overlay-layers/layers.json, overlay-images/images.json and "
                             "overlay/")
    with pytest.raises(StoreError) as ei:
        open_graphroot(root / "storage")
    assert str(ei.value) == f"{ij}: images.json is missing"


def test_symlinked_layers_json_is_not_followed(fresh_store, tmp_path):
    root = fresh_store("containers-storage")
    lj = root / "storage" / "overlay-layers" / "layers.json"
    outside = tmp_path / "outside.json"
    outside.write_text("[]")
    lj.unlink()
    lj.symlink_to(outside)
    with pytest.raises(StoreError) as ei:
        open_store(root)
    assert str(ei.value) == f"{lj}: is a symlink, refusing to follow it"


def test_single_bad_layer_is_a_layer_problem(fresh_store):
    root = fresh_store("containers-storage")
    gr = root / "storage"
    lj = gr / "overlay-layers" / "layers.json"
    layers = json.loads(lj.read_text())
    layers.append({"names": ["no-id"]})                        # no id: skipped, store problem
    for entry in layers:
        if entry.get("id") == C:
            entry["flags"] = {"incomplete": True}
    lj.write_text(json.dumps(layers))
    # B: marker garbled; A: marker says dir format although the blob exists
    (gr / "overlay-layers" / B / bigdata_name("zstd-chunked-layer-data")).write_text("{format")
    (gr / "overlay-layers" / A / bigdata_name("zstd-chunked-layer-data")).write_text('{"format":0}')
    # P: a flat marker but no blob
    (gr / "overlay-layers" / P).mkdir()
    (gr / "overlay-layers" / P / bigdata_name("zstd-chunked-layer-data")).write_text('{"format":1}')
    store = open_store(root)
    assert store.problems == [f"{lj}: entry 4 has no string \"id\", skipped"]
    assert store.layers[A].problems == (
        "composefs blob present but layer-data marker says format 0 (expected 1 = flat)",)
    marker_b = gr / "overlay-layers" / B / "=enN0ZC1jaHVua2VkLWxheWVyLWRhdGE="
    assert store.layers[B].problems == (
        f"layer-data marker unreadable: {marker_b}: offset 0x1: invalid JSON: Expecting "
        "property name enclosed in double quotes (line 1 column 2)",)
    assert store.layers[B].composefs is True
    assert store.layers[C].problems == (
        "layer is incomplete (flags.incomplete): an interrupted pull or commit",)
    assert store.layers[P].problems == (
        "layer-data marker says format 1 (flat, composefs) but composefs-data/composefs.blob "
        "is missing",)
    assert len(store.images) == 4


def test_image_with_missing_layer(fresh_store):
    root = fresh_store("containers-storage")
    gr = root / "storage"
    lj = gr / "overlay-layers" / "layers.json"
    layers = [e for e in json.loads(lj.read_text()) if e["id"] != A]
    lj.write_text(json.dumps(layers))
    store = open_store(root)
    app1 = next(im for im in store.images if im.label == "localhost/app1:1")
    assert app1.layers == (B, A)
    assert app1.problems == (f"layer {A} is not in layers.json",)
    assert store.image_layers(app1) == [store.layers[B]]


def test_detection_never_writes(store_root):
    root = store_root("containers-storage")

    def snapshot():
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                st = os.lstat(p)
                out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
        return out

    before = snapshot()
    store = open_store(root)
    for lid in store.layers:
        read_layer_toc(store.path, lid)
    assert snapshot() == before


def test_unsafe_layer_ids_are_skipped(fresh_store):
    root = fresh_store("containers-storage")
    lj = root / "storage" / "overlay-layers" / "layers.json"
    layers = json.loads(lj.read_text())
    layers += [{"id": "../../../etc"}, {"id": "a\u0000b"}, {"id": "\x1b[31m.."}, dict(layers[0])]
    lj.write_text(json.dumps(layers))
    store = open_store(root)
    assert store.problems == [
        f"{lj}: entry 4 has an unsafe id '../../../etc', skipped",
        f"{lj}: entry 5 has an unsafe id 'a\\x00b', skipped",
        f"{lj}: layer {A} listed twice, first kept",
    ]
    # the id stays raw in the model; problem lines are escaped for the terminal
    assert store.layers["\x1b[31m.."].problems == (
        f"layer directory {store.path}/overlay/\\x1b[31m.. is missing",)
