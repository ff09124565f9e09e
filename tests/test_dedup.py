"""dedup: figures equal the fixtures' expected.json dedup blocks to the byte; reflinks."""

from __future__ import annotations

import json
import os

import pytest

from conftest import STORES
from inspector.analysis import dedup as dedup_mod
from inspector.analysis.dedup import dedup_store
from inspector.analysis.reflink import extents_shared
from inspector.cli import main
from inspector.stores.discover import open_store

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
REPO = json.loads((STORES / "composefs-repo.expected.json").read_text())


def run(capsys, *argv):
    rc = main(list(argv))
    return rc, json.loads(capsys.readouterr().out)


def test_containers_storage_dedup_block(store_root, capsys):
    rc, out = run(capsys, "dedup", str(store_root("containers-storage")), "--json")
    assert rc == 0
    exp = CS["dedup"]
    totals = dict(out["totals"])
    assert totals.pop("reflinked_bytes") == 0
    assert totals == exp["totals"]
    assert out["per_layer"] == {lid: {k: v for k, v in d.items() if k != "fixture_name"}
                                for lid, d in exp["per_layer"].items()}
    assert {k: {f: v for f, v in d.items() if f != "image"} for k, d in out["per_image"].items()} \
        == exp["per_image"]
    assert out["matrix"] == exp["matrix"]
    assert out["unreferenced_expected"] == exp["unreferenced_expected"]
    assert out["unreferenced"] == []
    assert out["reflinks"]["status"] in ("none", "unknown")


def test_containers_storage_per_object_and_top(store_root):
    d = dedup_store(open_store(store_root("containers-storage"))).data
    top = [(t["object"][:8], t["kind"], t["inodes"], t["reclaimable_bytes"]) for t in d["top_duplicated"]]
    assert top[:2] == [("85/b8db5", "copied", 2, 12000), ("ef/01b0d", "copied", 2, 1100)]
    assert sum(t["reclaimable_bytes"] for t in d["top_duplicated"]) == 13100
    lib = d["objects"]["a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"]
    assert lib["inode_groups"] == [1, 1] and lib["size"] == 9000
    assert lib["images"] == ["localhost/app1:1", "localhost/app2:1"]
    assert lib["paths"] == {
        "046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59": ["/opt/app1/lib/libshared1.so"],
        "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0": ["/opt/app2/lib/libshared1.so"],
    }
    assert len(d["objects"]) == 49


def test_reflinked_copies_are_not_reclaimable(store_root, monkeypatch):
    monkeypatch.setattr(dedup_mod, "extents_shared", lambda path: True)
    d = dedup_store(open_store(store_root("containers-storage"))).data
    assert d["reflinks"] == {"status": "found", "bytes": 13100, "objects": [
        "85/b8db5b8622b7b92bd6ef7b88036fb093a2d878545affa5b6e94939b9e40595",
        "ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1"]}
    assert d["totals"]["reclaimable_bytes"] == 0
    assert d["totals"]["reflinked_bytes"] == 13100


def test_fiemap_unknown_falls_back(store_root, monkeypatch):
    monkeypatch.setattr(dedup_mod, "extents_shared", lambda path: None)
    d = dedup_store(open_store(store_root("containers-storage"))).data
    assert d["reflinks"]["status"] == "unknown"
    assert d["totals"]["reclaimable_bytes"] == 13100


def test_extents_shared_on_plain_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(os.urandom(8192))
    os.sync()
    assert extents_shared(p) in (False, None)      # a fresh file shares nothing (or no FIEMAP)
    assert extents_shared(tmp_path / "missing") is None


def test_composefs_repo_dedup_block(store_root, capsys):
    rc, out = run(capsys, "dedup", str(store_root("composefs-repo")), "--json")
    assert rc == 0
    exp = REPO["dedup"]
    by_id = {v["image"]: v for v in out["per_image"].values()}
    for v in exp["per_image"].values():
        assert by_id[v["image"]] == v
    for key in ("logical_bytes", "distinct_objects", "distinct_bytes", "physical_bytes",
                "saved_by_sharing_bytes", "reclaimable_bytes"):
        assert out[key] == exp[key], key
    assert out["shared_by_multiple_images"] == exp["shared_by_both_images"]


def test_ostree_dedup(store_root, capsys):
    rc, out = run(capsys, "dedup", str(store_root("ostree")), "--json")
    assert rc == 0
    (img,) = out["per_image"].values()
    # 9 payload objects for 10 paths (README and README.copy share one .file object)
    assert (img["payload_objects"], img["payload_paths"]) == (9, 10)
    assert out["distinct_objects"] == 9 and out["reclaimable_bytes"] == 0


def test_text_output(store_root, capsys):
    assert main(["dedup", str(store_root("containers-storage"))]) == 0
    text = capsys.readouterr().out
    assert "  reclaimable copies               12.8 KiB (13,100 bytes)\n" in text
    assert "freed if deleted 53.1 KiB (54,379 bytes)" in text


def test_inventory_objects(store_root):
    from inspector.analysis.objects import build_index
    idx = build_index(open_store(store_root("containers-storage")))
    objs = idx.objects()
    assert len(objs) == 49
    A, B, C = ("7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e",
               "046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59",
               "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0")
    empty = objs["e3/b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
    assert (empty.size, empty.locations, len(empty.identities), empty.kind) == (0, (A, B, C), 3, "reg")
    lib = objs["a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"]
    assert (lib.size, lib.locations, len(lib.identities), lib.nlink) == (9000, (B, C), 1, 2)
    refs = idx.payload_refs("38/0f405a65c3c8c40189ed35e42a5a240ba1a35fe93fde39726c240de428bb2f")
    assert [(lid, r.path, r.size, r.digest.hex()[:8]) for lid, r in refs] == [
        (A, b"/etc/os-release", 181, "fde3b933"), (A, b"/usr/lib/os-release", 181, "fde3b933")]
