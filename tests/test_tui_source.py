"""The browser's lazy sources (no Textual): merged view per directory equals the fixture's
``merged_paths``; layer views show markers; details, sharing and search answers."""

from __future__ import annotations

import json

from inspector.stores.discover import open_store
from inspector.tui.widgets.session import Session
from inspector.tui.widgets.source import Share
from tests.conftest import SAMPLE, STORES

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
LAYER = {v["fixture_name"]: k for k, v in CS["layers"].items()}


def walk(source, path=b"/"):
    out = []
    for n in source.listdir(path):
        assert n.kind != "error", n.error
        out.append((n.path, n.kind, n.layer))
        if n.kind == "dir":
            out.extend(walk(source, n.path))
    return out


def test_merged_source_equals_merged_paths(store_root):
    s = Session(open_store(store_root("containers-storage")))
    for label, expected in CS["merged_paths"].items():
        im = s.image_by_label(label)
        root = s.source(im).node(b"/")
        got = [(b"/", "dir", root.layer)] + walk(s.source(im))
        got = sorted((p.decode(), t, lid) for p, t, lid in got)
        assert got == [(e["path"], e["type"], e["layer"]) for e in expected], label


def test_layer_view_flags_literal_whiteouts(store_root):
    s = Session(open_store(store_root("containers-storage")))
    app2 = s.image_by_label("localhost/app2:1")
    src = s.source(app2, LAYER["C"])
    assert not src.merged
    n = src.node(b"/usr/share/doc/zlib/.wh..wh..opq")
    assert n is not None and n.kind == "reg"
    assert n.marker == "opaque marker: hides lower layers' content of this directory"
    merged = s.source(app2)
    assert merged.node(b"/usr/share/doc/zlib/.wh..wh..opq") is None
    assert merged.node(b"/usr/share/doc/zlib/COPYING") is None
    assert s.source(s.image_by_label("localhost/base:1")).node(
        b"/usr/share/doc/zlib/COPYING").layer == LAYER["A"]


def test_plain_layer_details_from_lstat(store_root):
    s = Session(open_store(store_root("containers-storage")))
    plain = s.image_by_label("localhost/plain:1")
    src = s.source(plain)
    names = sorted(n.path for n in walk_nodes(src))
    assert len(names) + 1 == CS["layers"][LAYER["P"]]["inodes"]
    some = next(n for n in walk_nodes(src) if n.kind == "reg")
    d = s.details(src, plain, some.path)
    assert d.layer == LAYER["P"] and d.layout == "plain overlay layer (diff/)"
    assert d.payload is None and d.error is None


def walk_nodes(source, path=b"/"):
    for n in source.listdir(path):
        yield n
        if n.kind == "dir":
            yield from walk_nodes(source, n.path)


def test_shares_match_refs_examples(store_root):
    s = Session(open_store(store_root("containers-storage")))
    s.compute_index()
    for name, ex in CS["refs"]["examples"].items():
        got = {(sh.image, sh.layer, sh.path.decode(), sh.visible)
               for sh in s.shares(ex["object"])}
        want = {(a["image"], a["layer"], a["path"], a["visible"]) for a in ex["answers"]}
        assert got == want, name
    # the entry itself is left out, in its own image only
    a = s.shares(CS["refs"]["examples"]["base_only"]["object"], LAYER["A"], b"/etc/os-release",
                 "localhost/base:1")
    assert Share("localhost/base:1", LAYER["A"], b"/etc/os-release", True) not in a
    assert Share("localhost/app1:1", LAYER["A"], b"/etc/os-release", True) in a
    assert len(a) == 5


def test_verify_object_detects_corruption(fresh_store):
    root = fresh_store("containers-storage")
    s = Session(open_store(root))
    im = s.image_by_label("localhost/app1:1")
    src = s.source(im)
    d = s.details(src, im, b"/opt/app1/lib/libshared1.so")
    assert d.object_state == "present"
    d.object_path.chmod(0o644)
    d.object_path.write_bytes(b"x" * 9000)
    state, note = s.verify_object(d)
    assert state == "corrupt"
    assert note.startswith("content sha256 ")
    assert note.endswith("does not match the image DIGEST")
    assert s.details(src, im, b"/opt/app1/lib/libshared1.so").object_state == "corrupt"


def test_single_image_source_and_payload_state(sample_objects):
    s = Session(open_store(SAMPLE / "sample.cfs", basedir=sample_objects))
    assert s.single_image
    im = s.store.images[0]
    src = s.source(im)
    assert src.title == "sample.cfs"
    d = s.details(src, im, b"/external/65bytes")
    assert d.payload == "dc/bf6197a3e24f44f3a60ed326c5c41ba115fa995d02a6ed15d45a0a9e79ad32"
    assert d.object_state == "present"
    assert s.verify_object(d) == ("verified", "fsverity-sha256 match")
    s.compute_index()
    d = s.details(src, im, b"/dedup/copy-a")
    assert [(sh.path) for sh in d.shares] == [b"/dedup/sub/copy-b"]
    assert s.refcount(d.payload) == 2
    assert [p for p, _ in s.search(src, im, "96facb86")] == [b"/dedup/copy-a",
                                                             b"/dedup/sub/copy-b"]
    assert s.search(src, im, "/names/tab*") == [(b"/names/tab\tname", "reg")]


def test_missing_basedir_object_state():
    s = Session(open_store(SAMPLE / "sample.cfs"))
    im = s.store.images[0]
    d = s.details(s.source(im), im, b"/caps/ping")
    assert d.object_state == "unknown"
    assert d.object_note == "no object directory known (give --basedir)"


def test_hardlink_siblings(store_root):
    s = Session(open_store(store_root("containers-storage")))
    im = s.image_by_label("localhost/base:1")
    src = s.source(im)
    # before the index: one walk of the (small) layer
    d = s.details(src, im, b"/usr/bin/tool-hardlink")
    assert d.nlink == 2 and d.hardlinks == [b"/usr/bin/tool", b"/usr/bin/tool-hardlink"]
    s.compute_index()
    d = s.details(src, im, b"/usr/bin/tool")
    assert d.hardlinks == [b"/usr/bin/tool", b"/usr/bin/tool-hardlink"]


def test_image_naming_a_missing_layer(store_root):
    from inspector.stores.model import StoreImage
    s = Session(open_store(store_root("containers-storage")))
    ghost = "f" * 64
    im = StoreImage(id="x" * 64, names=("ghost:1",), layers=(ghost, LAYER["A"]))
    s.store.images.append(im)
    nodes = s.source(im).listdir(b"/")
    assert nodes[0].kind == "error"
    assert nodes[0].error == f"layer {ghost[:12]}: layer {ghost[:12]} is not in the store"
    assert [n.name for n in nodes[1:]] == [b"etc", b"home", b"root", b"tmp", b"usr", b"var"]
    assert not s.is_plain_erofs(ghost)
    assert s.source(im, ghost).listdir(b"/")[0].error == f"layer {ghost[:12]} is not in the store"
    rows = {r.label: r for r in s.image_rows()}
    assert rows["ghost:1"].problems == (f"layer {ghost[:12]} not in the store",)


def test_open_store_fast_matches_open_store(sample_objects):
    from inspector.stores.discover import open_store, store_summary
    from inspector.tui.widgets.session import open_store_fast
    img = str(SAMPLE / "sample.cfs")
    fast, pending = open_store_fast(img, str(sample_objects))
    assert pending and fast.object_naming == "unknown"
    s = Session(fast)
    s.naming_pending = pending
    s.decide_naming()
    assert not s.naming_pending
    assert store_summary(fast) == store_summary(open_store(img, basedir=sample_objects))
    store, pending = open_store_fast(img, None)
    assert not pending and store_summary(store) == store_summary(open_store(img))


def test_browsing_a_plain_layer_leaves_atimes_alone(fresh_store):
    import os
    root = fresh_store("containers-storage")
    s = Session(open_store(root))
    diff = root / "storage" / "overlay" / LAYER["P"] / "diff"
    dirs = [diff] + [p for p in diff.rglob("*") if p.is_dir() and not p.is_symlink()]
    for d in dirs:
        st = os.lstat(d)
        os.utime(d, ns=(1_000_000_000, st.st_mtime_ns), follow_symlinks=False)
    plain = s.image_by_label("localhost/plain:1")
    assert len(list(walk_nodes(s.source(plain)))) == CS["layers"][LAYER["P"]]["inodes"] - 1
    assert s.count_inodes(LAYER["P"]) == CS["layers"][LAYER["P"]]["inodes"]
    assert [os.lstat(d).st_atime_ns for d in dirs] == [1_000_000_000] * len(dirs)


def test_verify_report_states_in_a_shared_object_dir(fresh_store):
    from inspector.analysis.verify import verify_store
    cfs = json.loads((STORES / "composefs-repo.expected.json").read_text())
    root = fresh_store("composefs-repo")
    s = Session(open_store(root))
    shared = sorted(cfs["objects_shared_by_both_images"])[0]
    s.compute_index()
    uses = []
    for im in s.store.images:
        b = s.index.blobs[im.layers[0]]
        uses += [(im, r.path) for r in b.by_payload.get(shared, [])[:1]]
    assert len(uses) == 2                       # read by both images
    obj = root / "composefs" / "objects" / shared
    obj.write_bytes(b"z" * obj.stat().st_size)
    s.verify_report = verify_store(s.store, index=s.compute_index())
    for im, path in uses:
        d = s.details(s.source(im), im, path)
        assert d.object_state == "corrupt", im.label


def test_object_lookup_never_goes_through_a_symlinked_subdirectory(fresh_store, tmp_path):
    """A layer whose ``xx/`` directory was replaced by a symlink to an outside directory: the
    detail pane's object lookup reports it as suspicious instead of stat-ing (and the single
    object verify then reading) the outside file."""
    import os
    import shutil
    from inspector.tui.widgets.source import object_file

    root = fresh_store("containers-storage")
    store = open_store(root)
    layer = store.layers[LAYER["B"]]
    payload = "a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"
    assert object_file(store, layer, payload)[1] == "present"
    outside = tmp_path / "outside"
    shutil.copytree(layer.object_dir / "a3", outside)
    shutil.rmtree(layer.object_dir / "a3")
    os.symlink(outside, layer.object_dir / "a3")
    path, state, note = object_file(store, layer, payload)
    assert state == "suspicious"
    assert note == "symlinked directory: not followed: never opened"
