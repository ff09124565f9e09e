"""refs: every identifier of the fixture's worked examples gives the documented answers."""

from __future__ import annotations

import json

import pytest

from conftest import STORES
from inspector.analysis.objects import build_index
from inspector.analysis.refs import RefsAmbiguous, RefsNotFound, find_refs
from inspector.cli import main
from inspector.stores.discover import open_store

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
REPO = json.loads((STORES / "composefs-repo.expected.json").read_text())
OST = json.loads((STORES / "ostree.expected.json").read_text())
EXAMPLES = [(k, i) for k, ex in CS["refs"]["examples"].items() for i in ex["identifiers"]]


@pytest.mark.parametrize("example,ident", EXAMPLES)
def test_examples_via_cli(store_root, capsys, example, ident):
    ex = CS["refs"]["examples"][example]
    rc = main(["refs", str(store_root("containers-storage")), ex["identifiers"][ident], "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["object"] == ex["object"]
    assert out["size"] == ex["size"]
    assert out["answers"] == ex["answers"]
    assert out["physical_copies"] == ex["physical_copies"]
    assert ex["identifiers"]["fsverity_digest"] in out["fsverity_digests"]


def test_image_path_query(store_root):
    store = open_store(store_root("containers-storage"))
    res = find_refs(store, "localhost/app2:1:/opt/app2/lib/libshared1.so")
    ex = CS["refs"]["examples"]["hardlinked_shared"]
    assert res.object == ex["object"] and res.answers == ex["answers"]
    # a path hidden by a whiteout is not in the merged view
    with pytest.raises(RefsNotFound, match="not in the merged view of localhost/app2:1"):
        find_refs(store, "localhost/app2:1:/usr/share/doc/zlib/COPYING")
    with pytest.raises(RefsNotFound, match="is a dir, not a regular file"):
        find_refs(store, "localhost/base:1:/etc")


def test_text_output(store_root, capsys):
    assert main(["refs", str(store_root("containers-storage")), "ef01b0d4"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == ("Object ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1"
                                    "  1.1 KiB (1,100 bytes)")
    assert ("  localhost/app2:1  layer 7be02b4d8b66  /usr/share/doc/zlib/COPYING"
            "  (hidden in the image's merged view)") in text


def test_not_found_exit_1(store_root, capsys):
    assert main(["refs", str(store_root("containers-storage")), "ffffffff"]) == 1
    assert capsys.readouterr().err == "cfs-inspect: no object, digest or prefix matches 'ffffffff'\n"


def test_short_prefix_exit_2(store_root, capsys):
    assert main(["refs", str(store_root("containers-storage")), "a39e"]) == 2
    assert capsys.readouterr().err == ("cfs-inspect: prefix 'a39e' is too short: give at least "
                                       "6 hex digits\n")


def test_ambiguous_prefix_exit_2(fresh_store, capsys):
    root = fresh_store("containers-storage")
    diff = root / "storage/overlay/7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e/diff"
    (diff / "a3").mkdir(exist_ok=True)
    other = "a3/9e88bc" + "0" * 56
    (diff / other).write_bytes(b"x")
    assert main(["refs", str(root), "a39e88bc"]) == 2
    err = capsys.readouterr().err
    assert err == ("cfs-inspect: 'a39e88bc' is ambiguous: it matches 2 objects: "
                   f"{other}, a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5\n")
    assert main(["refs", str(root), "a39e88bc", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["candidates"] == sorted([other, "a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"])
    store = open_store(root)
    with pytest.raises(RefsAmbiguous) as ei:
        find_refs(store, "a39e88bc")
    assert len(ei.value.candidates) == 2
    # a longer prefix is unique again
    assert find_refs(store, "a39e88bcc").object.startswith("a3/9e88bcce")


def test_composefs_repo_refs(store_root):
    store = open_store(store_root("composefs-repo"))
    idx = build_index(store)
    shared = REPO["dedup"]["shared_by_both_images"]["list"][0]
    res = find_refs(store, shared.replace("/", ""), idx)
    assert res.object == shared
    assert {a["layer"] for a in res.answers} == set(REPO["images"])
    assert all(a["visible"] for a in res.answers)
    assert [c["inode_group"] for c in res.physical_copies] == [1]
    assert res.physical_copies[0]["path_in_store"] == f"objects/{shared}"
    # the name is the fs-verity digest: same answers by prefix
    assert find_refs(store, shared.replace("/", "")[:10], idx).answers == res.answers


def test_ostree_refs(store_root):
    store = open_store(store_root("ostree"))
    name, paths = next((k, v) for k, v in OST["image_object_paths"].items() if len(v) == 2)
    res = find_refs(store, name)
    assert res.object == name
    assert [a["path"] for a in res.answers] == paths
    assert all(a["visible"] for a in res.answers)
