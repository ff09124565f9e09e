"""composefs-rs repository discovery: the fixture repo, old generations, hostile symlinks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from conftest import STORES
from inspector.errors import StoreError
from inspector.stores.discover import open_store, store_summary
from test_stores_splitstream import OCICONFG, OCILAYER, build_a, build_bc

EXPECTED = json.loads((STORES / "composefs-repo.expected.json").read_text())
V1 = "8288ccd1c99d78d9285f50fbf467b01156a1294b57b22b0df86dfdd47d469ef7"
V2 = "d6b39b7aa594d1fe11020e9b895740cd57ac75c91c1be2da84f4175b4d711ac2"
LAYER_STREAM = "oci-layer-sha256:58170917665ea98888718d747ab3be3fc979e4fafbdb7d05fbce51dbcf067b5e"


@pytest.fixture(scope="module")
def repo_root(store_root):
    return store_root("composefs-repo")


@pytest.fixture(scope="module")
def repo(repo_root):
    return open_store(repo_root)


def test_repo_found_below_the_archive_root(repo, repo_root):
    assert repo.kind == "composefs-rs"
    assert repo.path == repo_root / EXPECTED["repository"]
    assert repo.object_naming == "fsverity-sha256"
    assert repo.orphans_apply is True
    assert repo.problems == [] and repo.notes == []
    assert repo.details == {"meta": EXPECTED["meta"], "algorithm": "fsverity-sha256",
                            "generation": "C"}
    assert repo.object_dirs == [repo.path / "objects"]


def test_images_match_expected(repo):
    assert [im.id for im in repo.images] == sorted(EXPECTED["images"])
    for im in repo.images:
        exp = EXPECTED["images"][im.id]
        assert im.layers == (im.id,)
        layer = repo.layers[im.id]
        assert layer.composefs is True
        assert layer.blob == repo.path / exp["object"]
        assert layer.blob.stat().st_size == exp["size"]
        assert layer.object_dir == repo.path / "objects"
    names = {im.id: im.names for im in repo.images}
    assert names == {V1: ("os/v1",), V2: ("latest", "os/v2")}


def test_refs_match_expected(repo):
    got = {}
    for r in repo.refs:
        key = f"{'images' if r.kind == 'image' else 'streams'}/refs/{r.name}"
        got[key] = {"target": os.readlink(r.path), r.kind: r.target}
        assert r.path == repo.path / key
    assert got == EXPECTED["refs"]


def test_streams_match_expected(repo):
    assert [s.name for s in repo.streams] == list(EXPECTED["streams"])
    s = repo.streams[0]
    exp = EXPECTED["streams"][s.name]
    assert s.object == repo.path / exp["object"]
    assert s.content_type_text == exp["content_type"] == "ocilayer"
    assert s.content_type == OCILAYER
    assert s.stream_size == exp["stream_size"]
    assert list(s.object_refs) == exp["object_refs"]
    assert list(s.stream_refs) == exp["stream_refs"]
    assert dict(s.named_refs) == exp["named_refs"]
    assert (s.inline_chunks, s.external_chunks) == (exp["inline_chunks"], exp["external_chunks"])
    assert s.generation == "C" and s.problems == ()


def test_metadata_objects_leave_exactly_the_orphan(repo):
    images = {o for v in EXPECTED["images"].values() for o in v["objects"]}
    meta = repo.metadata_objects
    assert meta == {EXPECTED["images"][V1]["object"][8:], EXPECTED["images"][V2]["object"][8:],
                    EXPECTED["streams"][LAYER_STREAM]["object"][8:],
                    *EXPECTED["streams"][LAYER_STREAM]["object_refs"]}
    present = {f"{d}/{n}" for d in os.listdir(repo.path / "objects")
               for n in os.listdir(repo.path / "objects" / d)}
    assert len(present) == EXPECTED["object_count"]
    assert sorted(present - meta - images) == EXPECTED["unreferenced_objects"]


def test_summary_is_json(repo):
    s = store_summary(repo)
    json.dumps(s)
    assert s["kind"] == "composefs-rs"
    assert [im["names"] for im in s["images"]] == [["os/v1"], ["latest", "os/v2"]]
    assert s["streams"][0]["inline_chunks"] == 8
    assert s["refs"][0] == {"name": "latest", "kind": "image", "target": V2,
                            "path": str(repo.path / "images/refs/latest")}


# ----------------------------------------------------------------- hostile symlinks

def test_ref_pointing_outside_is_reported_not_followed(fresh_store, tmp_path):
    root = fresh_store("composefs-repo")
    repo = root / "composefs"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / V1).write_bytes(b"secret")
    os.symlink("/etc/passwd", repo / "images/refs/abs")
    os.symlink("../../../../outside/" + V1, repo / "images/refs/os/climb")
    os.symlink(str(outside), repo / "streams/refs/dir")          # a symlinked directory
    os.symlink("/etc/hostname", repo / "images" / ("ab" * 32))   # an image entry leaving the repo
    os.symlink("../../oci-layer-x", repo / "streams/refs/dangling-up")
    store = open_store(repo)
    assert store.problems == [
        f"images/{'ab' * 32} -> /etc/hostname: points outside the store (/etc/hostname); "
        "not followed",
        "images/refs/abs -> /etc/passwd: points outside the repository; not followed",
        f"images/refs/os/climb -> ../../../../outside/{V1}: points outside the repository; "
        "not followed",
        "streams/refs/dangling-up -> ../../oci-layer-x: does not point at an entry of streams/",
        f"streams/refs/dir -> {outside}: points outside the repository; not followed",
    ]
    assert [r.name for r in store.refs] == ["latest", "os/v1", "os/v2", "os-v1-layer"]
    assert [im.id for im in store.images] == [V1, V2]


def test_symlinked_refs_directory_is_not_listed(fresh_store, tmp_path):
    root = fresh_store("composefs-repo")
    repo = root / "composefs"
    shutil.copytree(repo / "images/refs", tmp_path / "refs", symlinks=True)
    shutil.rmtree(repo / "images/refs")
    os.symlink(tmp_path / "refs", repo / "images/refs")
    store = open_store(repo)
    assert store.problems == ["images/refs is not a directory; not followed"]
    assert [im.names for im in store.images] == [(), ()]


def test_corrupt_stream_is_a_problem_not_a_crash(fresh_store):
    root = fresh_store("composefs-repo")
    repo = root / "composefs"
    obj = repo / EXPECTED["streams"][LAYER_STREAM]["object"]
    data = obj.read_bytes()
    obj.write_bytes(data[:-50])
    store = open_store(repo)
    (s,) = store.streams
    assert s.generation == "" and s.content_type_text == "?" and s.object_refs == ()
    assert len(s.problems) == 1
    assert s.problems[0].startswith(f"{obj}: offset ")
    assert "stream range [313, 924) is outside the file (874 bytes)" in s.problems[0]
    assert store.problems == [f"streams/{LAYER_STREAM}: {s.problems[0]}"]
    # the stream object is still accounted for, so it is not an orphan
    assert EXPECTED["streams"][LAYER_STREAM]["object"][8:] in store.metadata_objects


def test_garbled_meta_json(fresh_store):
    root = fresh_store("composefs-repo")
    meta = root / "composefs" / "meta.json"
    meta.write_text('{"version": 1,')
    with pytest.raises(StoreError) as ei:
        open_store(root)
    assert str(ei.value) == (f"{meta}: offset 0xe: invalid JSON: Expecting property name "
                             "enclosed in double quotes (line 1 column 15)")


# ----------------------------------------------------------------- older generations

def _obj(repo, data: bytes, hlen: int) -> str:
    """Store *data* as an object under a made-up digest of the repo's hash length."""
    h = hashlib.sha512(data).hexdigest()[: hlen * 2]
    (repo / "objects" / h[:2]).mkdir(parents=True, exist_ok=True)
    (repo / "objects" / h[:2] / h[2:]).write_bytes(data)
    return h


def _link(path, target):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_generation_b_repository(tmp_path):
    """No meta.json, oci-* names, reordered headers: sha512 inferred from the image name."""
    repo = tmp_path / "repo"
    content = _obj(repo, b"c" * 100, 64)
    image = _obj(repo, bytes.fromhex("9a6278d0") + b"\0" * 100, 64)
    layer = _obj(repo, build_bc("B", alg=2, object_refs=(bytes.fromhex(content),),
                                chunks=[b"h" * 512, 0], stream_size=612), 64)
    config = _obj(repo, build_bc("B", alg=2, content_type=OCICONFG,
                                 stream_refs=(bytes.fromhex(layer), bytes.fromhex(image)),
                                 named=[(1, "composefs.image"), (0, "sha256:" + "d" * 64)],
                                 chunks=[b"{}"], stream_size=2), 64)
    _link(repo / "images" / image, f"../objects/{image[:2]}/{image[2:]}")
    _link(repo / "streams" / ("oci-layer-sha256:" + "d" * 64), f"../objects/{layer[:2]}/{layer[2:]}")
    _link(repo / "streams" / ("oci-config-sha256:" + "e" * 64), f"../objects/{config[:2]}/{config[2:]}")
    _link(repo / "streams/refs/oci/docker:%2F%2Fbusybox", "../../oci-config-sha256:" + "e" * 64)
    store = open_store(repo)
    assert store.problems == []
    assert store.object_naming == "fsverity-sha512"
    assert store.details == {"algorithm": "fsverity-sha512", "generation": "B"}
    assert store.notes == ["old repository format (generation B, no meta.json): read as is; "
                           "cfsctl would upgrade it in place"]
    assert [im.id for im in store.images] == [image]
    cfg = next(s for s in store.streams if s.name.startswith("oci-config"))
    assert cfg.generation == "B" and cfg.content_type_text == "ociconfg"
    assert dict(cfg.named_refs) == {"composefs.image": image, "sha256:" + "d" * 64: layer}
    lay = next(s for s in store.streams if s.name.startswith("oci-layer"))
    assert (lay.inline_chunks, lay.external_chunks, lay.problems) == (1, 1, ())
    assert [(r.name, r.target) for r in store.refs] == [
        ("oci/docker:%2F%2Fbusybox", "oci-config-sha256:" + "e" * 64)]
    assert store.metadata_objects == {f"{h[:2]}/{h[2:]}" for h in (content, image, layer, config)}


def test_generation_a_repository(tmp_path):
    """No meta.json, streams named by content sha256, whole-file zstd splitstreams."""
    repo = tmp_path / "repo"
    content = _obj(repo, b"c" * 100, 32)
    image = _obj(repo, bytes.fromhex("9a6278d0") + b"\0" * 100, 32)
    layer = _obj(repo, build_a(blocks=[b"h" * 512, ("ref", bytes.fromhex(content))]), 32)
    diffid = "d" * 64
    config = _obj(repo, build_a(digest_map=[(bytes.fromhex(diffid), bytes.fromhex(layer))],
                                blocks=[b"{}"]), 32)
    _link(repo / "images" / image, f"../objects/{image[:2]}/{image[2:]}")
    _link(repo / "streams" / diffid, f"../objects/{layer[:2]}/{layer[2:]}")
    _link(repo / "streams" / ("e" * 64), f"../objects/{config[:2]}/{config[2:]}")
    _link(repo / "streams/refs/fedora", "../" + "e" * 64)
    store = open_store(repo)
    assert store.problems == []
    assert store.object_naming == "fsverity-sha256"
    assert store.details["generation"] == "A"
    cfg = next(s for s in store.streams if s.name == "e" * 64)
    assert cfg.generation == "A" and cfg.content_type_text == "-" and cfg.stream_size is None
    assert cfg.named_refs == ((f"sha256:{diffid}", layer),)
    assert cfg.stream_refs == (f"{layer[:2]}/{layer[2:]}",)
    lay = next(s for s in store.streams if s.name == diffid)
    assert lay.object_refs == (f"{content[:2]}/{content[2:]}",)
    assert (lay.inline_chunks, lay.external_chunks) == (1, 1)
    assert store.metadata_objects == {f"{h[:2]}/{h[2:]}" for h in (content, image, layer, config)}


def test_control_bytes_in_names_are_escaped(fresh_store):
    repo = fresh_store("composefs-repo") / "composefs"
    os.symlink("/etc/\x1b[2Jx", repo / "images/refs/\x1b[31mred")
    store = open_store(repo)
    assert store.problems == ["images/refs/\\x1b[31mred -> /etc/\\x1b[2Jx: points outside the "
                              "repository; not followed"]
