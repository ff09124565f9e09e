"""`cfs-inspect demo`: the demo store's shape, determinism and that the tools accept it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.composefs.dump import dump_image
from inspector.composefs.image import open_image
from inspector.stores.demo import build_demo
from inspector.stores.discover import open_store


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo") / "store")


def _layers(top: Path) -> list[dict]:
    return json.loads((top / "storage/overlay-layers/layers.json").read_text())


def _blob_dump(top: Path, layer_id: str) -> list[bytes]:
    out = io.BytesIO()
    with open_image(top / "storage/overlay" / layer_id / "composefs-data/composefs.blob") as img:
        dump_image(img, out)
    return out.getvalue().splitlines()


def _by_name(top: Path) -> dict[str, dict]:
    images = json.loads((top / "storage/overlay-images/images.json").read_text())
    return {im["names"][0]: im for im in images}


def _chain(top: Path, layer_id: str) -> list[dict]:
    layers = {l["id"]: l for l in _layers(top)}
    out = []
    while layer_id:
        out.append(layers[layer_id])
        layer_id = layers[layer_id].get("parent")
    return out


def test_graphroot_layout(demo):
    g = demo / "storage"
    layers = _layers(demo)
    assert len(layers) == 5
    composefs = [l for l in layers if (g / "overlay" / l["id"] / "composefs-data/composefs.blob").is_file()]
    assert len(composefs) == 4
    for l in composefs:
        assert l["big-data-names"] == ["zstd-chunked-manifest", "zstd-chunked-layer-data"]
        bd = g / "overlay-layers" / l["id"]
        assert (bd / "=enN0ZC1jaHVua2VkLWxheWVyLWRhdGE=").read_bytes() == b'{"format":1}'
        toc = json.loads((bd / "=enN0ZC1jaHVua2VkLW1hbmlmZXN0").read_bytes())
        assert toc["version"] == 1 and toc["tarSplitDigest"].startswith("sha256:")
        link = (g / "overlay" / l["id"] / "link").read_text()
        assert len(link) == 26
        assert os.readlink(g / "overlay/l" / link) == f"../{l['id']}/diff"
        # The diff/ of a composefs layer holds only xx/ directories of content-named objects.
        diff = g / "overlay" / l["id"] / "diff"
        for sub in diff.iterdir():
            assert len(sub.name) == 2 and sub.is_dir()
            for obj in sub.iterdir():
                assert hashlib.sha256(obj.read_bytes()).hexdigest() == sub.name + obj.name
    images = _by_name(demo)
    assert sorted(images) == ["localhost/demo-app1:1", "localhost/demo-app2:1", "localhost/demo-base:1"]
    assert [len(_chain(demo, images[n]["layer"])) for n in sorted(images)] == [2, 4, 1]
    for im in images.values():
        d = g / "overlay-images" / im["id"]
        for key in im["big-data-names"]:
            data = (d / ("=" + base64.b64encode(key.encode()).decode())).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == im["big-data-digests"][key]
        assert hashlib.sha256((d / ("=" + base64.b64encode(
            f"sha256:{im['id']}".encode()).decode())).read_bytes()).hexdigest() == im["id"]


def test_blobs_describe_the_layers(demo):
    images = _by_name(demo)
    app2 = _chain(demo, images["localhost/demo-app2:1"]["layer"])
    plain, patch, app2_layer, base = app2
    app1 = _chain(demo, images["localhost/demo-app1:1"]["layer"])[0]
    g = demo / "storage"
    assert not (g / "overlay" / plain["id"] / "composefs-data").exists()

    base_dump = _blob_dump(demo, base["id"])
    assert base_dump[0] == b"/ 4096 40755 8 0 0 0 0.0 - - -"
    assert len(base_dump) == 40          # the root plus the 39 TOC entries of layer A
    tool = [l for l in base_dump if l.startswith(b"/usr/bin/tool")]
    assert tool[1].startswith(b"/usr/bin/tool-hardlink 2048 @100755 2 0 0 0 1700000000.0 /usr/bin/tool - ")
    assert any(l.startswith(b"/usr/bin/ping 3000 100755 ") and l.endswith(
        b" security.capability=\\x01\\x00\\x00\\x02\\x00\\x20\\x00\\x00\\x00\\x00\\x00\\x00"
        b"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00") for l in base_dump)

    app1_dump = _blob_dump(demo, app1["id"])
    assert b"/etc/.wh.motd 0 100644 1 0 0 0 1700000100.0 - - -" in app1_dump

    c_dump = _blob_dump(demo, app2_layer["id"])
    lib1 = [l for l in c_dump if l.startswith(b"/opt/app2/lib/libshared1.so ")][0]
    assert lib1.endswith(b" - -")          # hard-linked object: no fs-verity digest recorded
    assert b"/usr/share/doc/zlib/.wh..wh..opq 0 100644 1 0 0 0 1700000200.0 - - -" in c_dump

    d_dump = _blob_dump(demo, patch["id"])
    assert b"/opt/app2/share/shared3.dat 0 20000 1 0 0 0 1700000300.0 - - -" in d_dump
    assert (b"/opt/app2/share 50 40755 2 0 0 0 1700000300.0 - - - "
            b"trusted.overlay.opaque=x user.overlay.opaque=x") in d_dump
    blob = (g / "overlay" / patch["id"] / "composefs-data/composefs.blob").read_bytes()
    assert blob[12:16] == b"\x01\x00\x00\x00"     # composefs_version 1 because of the whiteout


def test_object_sharing(demo):
    images = _by_name(demo)
    app2_layer = _chain(demo, images["localhost/demo-app2:1"]["layer"])[2]
    app1 = _chain(demo, images["localhost/demo-app1:1"]["layer"])[0]
    g = demo / "storage/overlay"

    def obj(layer, content_name):
        sha = hashlib.sha256(content_name).hexdigest()
        return g / layer["id"] / "diff" / sha[:2] / sha[2:]
    from inspector.stores.demo import _bytes
    b1, c1 = obj(app1, _bytes("libshared1", 9000)), obj(app2_layer, _bytes("libshared1", 9000))
    assert os.stat(b1).st_ino == os.stat(c1).st_ino and os.stat(b1).st_nlink == 2
    b4, c4 = obj(app1, _bytes("shared4", 12000)), obj(app2_layer, _bytes("shared4", 12000))
    assert os.stat(b4).st_ino != os.stat(c4).st_ino
    assert stat.S_IMODE(os.stat(c4).st_mode) == 0o644           # copied: the TOC mode
    expected_new = 0o000 if os.geteuid() == 0 else 0o444
    assert stat.S_IMODE(os.stat(b4).st_mode) == expected_new     # written by the differ


def test_plain_layer_tree(demo):
    images = _by_name(demo)
    plain = _chain(demo, images["localhost/demo-app2:1"]["layer"])[0]
    diff = demo / "storage/overlay" / plain["id"] / "diff"
    assert (diff / "srv/www/index.html").read_bytes().startswith(b"<!doctype html>")
    if os.geteuid() == 0:
        st = os.lstat(diff / "opt/app2/empty.txt")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(diff / "opt/app2/share", "trusted.overlay.opaque") == b"y"
    assert os.stat(diff / "srv/www").st_mtime == 1700000400


def test_deterministic(demo, tmp_path):
    other = build_demo(tmp_path / "again")
    assert _layers(other) == _layers(demo)
    assert (other / "storage/overlay-images/images.json").read_bytes() == \
        (demo / "storage/overlay-images/images.json").read_bytes()
    for l in _layers(demo):
        a = demo / "storage/overlay" / l["id"] / "composefs-data/composefs.blob"
        if a.exists():
            assert a.read_bytes() == (other / "storage/overlay" / l["id"] / "composefs-data/composefs.blob").read_bytes()


def test_store_tools_accept_it(demo, capsys):
    store = open_store(demo)
    assert (store.kind, store.path) == ("containers-storage", demo / "storage")
    assert len(store.images) == 3 and len(store.layers) == 5
    assert sum(1 for l in store.layers.values() if l.composefs) == 4
    assert not store.problems
    assert main(["verify", str(demo)]) == 0
    assert "No problems found." in capsys.readouterr().out


def test_cli_no_open_and_refuses_non_empty(tmp_path, capsys):
    dest = tmp_path / "d"
    assert main(["demo", "--no-open", str(dest)]) == 0
    assert capsys.readouterr().out == f"{dest}\n"
    assert (dest / "storage/overlay-layers/layers.json").is_file()
    assert main(["demo", "--no-open", str(dest)]) == 2
    assert capsys.readouterr().err == f"cfs-inspect: {dest}: demo directory exists and is not empty\n"


def test_cli_opens_the_tui_or_falls_back(tmp_path, capsys, monkeypatch):
    """Without --no-open the store is handed to inspector.tui.app.run_app when it exists."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("inspector.tui.app")
    fake.run_app = lambda path: calls.append(path) or 0
    monkeypatch.setitem(sys.modules, "inspector.tui.app", fake)
    dest = tmp_path / "d"
    assert main(["demo", str(dest)]) == 0
    assert calls == [str(dest)]
    assert capsys.readouterr().err == f"demo store kept in {dest}\n"

    monkeypatch.setitem(sys.modules, "inspector.tui.app", None)     # import fails
    dest2 = tmp_path / "e"
    assert main(["demo", str(dest2)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{dest2}\n"
    assert err.startswith("(the TUI is not available in this build;")
