"""``cfs-inspect demo``: a small, deterministic containers/storage graphroot to explore.

A newcomer rarely has a composefs store at hand (containers/storage only writes composefs
layers as root, with ``use_composefs`` and zstd:chunked pulls).  This builds one with the same
shape as a real podman graphroot (docs/stores.md §2, the containers-storage fixture):

* ``storage/overlay-layers/layers.json``, ``overlay-images/images.json`` with image big-data
  (config, manifest, signature) stored as ``=<base64 key>`` files;
* composefs layers: ``overlay/<id>/diff/xx/<sha256 of content>`` flat objects (mode 0000 as the
  chunked differ leaves them, 0644 for objects copied from another layer, shared inodes for
  hard-linked ones), ``composefs-data/composefs.blob`` written by our mkcomposefs-identical
  writer from the dump containers/storage would generate (PAYLOAD ``xx/<sha256>``, CONTENT
  ``-``, DIGEST the fs-verity digest except for hard-linked objects and empty files), the
  zstd:chunked TOC and the ``{"format":1}`` layer-data marker as layer big-data;
* a plain overlay layer whose ``diff/`` is an unpacked tree with a whiteout device and an
  opaque directory.

Layers: A base (composefs), B app1 (composefs, literal ``.wh.motd`` as c/storage writes it),
C app2 (composefs, objects hard-linked and copied from B, a literal ``.wh..wh..opq``),
D app2 patch (composefs, a chr 0/0 whiteout, so its blob is format 1), P local build (plain).
Images: ``localhost/demo-base:1`` = A, ``localhost/demo-app1:1`` = B→A,
``localhost/demo-app2:1`` = P→D→C→A.

Everything is derived from fixed inputs, so two builds are identical except for file
timestamps of the store's own directories.  Run as non-root, objects are created 0444
instead of 0000 so that the store can be explored without privileges.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from inspector.composefs.dumpfile import Node, new_dir
from inspector.composefs.fsverity import fsverity_digest
from inspector.composefs.writer import build_image
from inspector.errors import StoreError

T0 = 1700000000
CREATED = "2023-11-14T22:15:00Z"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
MANIFEST_KEY = "zstd-chunked-manifest"
LAYER_DATA_KEY = "zstd-chunked-layer-data"


@dataclass(frozen=True, slots=True)
class F:
    """One layer entry: kind is dir, reg, symlink, hardlink, whiteout or wh-file."""

    path: str
    kind: str = "reg"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0
    nsec: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    share: str = ""          # "hardlink:<layer>" or "copy:<layer>" for reused objects


@dataclass(slots=True)
class LayerSpec:
    key: str
    parent: str | None
    mtime: int
    entries: list[F]
    composefs: bool = True
    id: str = ""
    link: str = ""
    objects: dict[str, str] = field(default_factory=dict)   # sha -> object path


def _bytes(name: str, size: int) -> bytes:
    """Deterministic pseudo-random content (sha256 counter stream)."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}:{i}".encode()).digest()
        i += 1
    return bytes(out[:size])


def _text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


ZLIB_LICENSE = _text(*(["zlib License", ""] + [
    f"({i}) This software is provided 'as-is', without any express or implied warranty; "
    "permission is granted to anyone to use it for any purpose." for i in range(1, 9)]))
OS_RELEASE = _text('NAME="Demo Linux"', 'ID=demo', 'VERSION_ID="1.0"',
                   'PRETTY_NAME="Demo Linux 1.0 (composefs edition)"',
                   'HOME_URL="https://example.invalid/demo"')
CAP_NET_RAW = base64.b64decode("AQAAAgAgAAAAAAAAAAAAAAAAAAA=")
SPARSE = _bytes("sparse-a", 4096) + bytes(4096) + _bytes("sparse-b", 4096)


def layer_specs() -> list[LayerSpec]:
    a = [F("etc", "dir", mode=0o755), F("etc/os-release", data=OS_RELEASE),
         F("etc/hostname", data=b"demo-base\n"),
         F("etc/passwd", data=_text("root:x:0:0:root:/root:/bin/sh",
                                    "user:x:1000:1000:Demo User:/home/user:/bin/sh")),
         F("etc/group", data=_text("root:x:0:", "user:x:1000:")),
         F("etc/shadow", data=_text("root:*:19000:0:99999:7:::", "user:!:19000::::::"),
           mode=0o640),
         F("etc/motd", data=_text("Welcome to the cfs-inspect demo base image.",
                                  "Everything you see lives in a composefs blob.")),
         F("etc/empty.conf"), F("etc/app.conf", data=_text("mode=base", "level=1"), nsec=123456789),
         F("home", "dir", mode=0o755), F("home/user", "dir", mode=0o750, uid=1000, gid=1000),
         F("home/user/.profile", data=b"export PS1='$ '\n", uid=1000, gid=1000,
           xattrs=(("user.demo.note", b"owned by 1000"),)),
         F("root", "dir", mode=0o700), F("tmp", "dir", mode=0o1777),
         F("usr", "dir", mode=0o755), F("usr/bin", "dir", mode=0o755),
         F("usr/bin/busybox", data=_bytes("busybox", 98304), mode=0o755, nsec=1),
         F("usr/bin/cat", "symlink", target="busybox", mode=0o777),
         F("usr/bin/ls", "symlink", target="busybox", mode=0o777),
         F("usr/bin/sh", "symlink", target="busybox", mode=0o777),
         F("usr/bin/ping", data=_bytes("ping", 3000), mode=0o755,
           xattrs=(("security.capability", CAP_NET_RAW),)),
         F("usr/bin/su", data=_bytes("su", 2500), mode=0o4755),
         F("usr/bin/tool", data=_bytes("tool", 2048), mode=0o755),
         F("usr/bin/tool-hardlink", "hardlink", target="usr/bin/tool", mode=0o755),
         F("usr/lib", "dir", mode=0o755), F("usr/lib/os-release", data=OS_RELEASE),
         F("usr/share", "dir", mode=0o755), F("usr/share/doc", "dir", mode=0o755),
         F("usr/share/doc/zlib", "dir", mode=0o755),
         F("usr/share/doc/zlib/COPYING", data=ZLIB_LICENSE),
         F("usr/share/licenses", "dir", mode=0o755), F("usr/share/licenses/zlib", "dir", mode=0o755),
         F("usr/share/licenses/zlib/LICENSE", data=ZLIB_LICENSE),
         F("usr/share/zoneinfo", "dir", mode=0o755),
         F("usr/share/zoneinfo/UTC", data=b"TZif2" + _bytes("utc", 109)),
         F("var", "dir", mode=0o755), F("var/lib", "dir", mode=0o755),
         F("var/lib/data", "dir", mode=0o755), F("var/lib/data/sparse.img", data=SPARSE)]
    b = [F("etc", "dir", mode=0o755), F("etc/app.conf", data=_bytes("app1.conf", 260)),
         F("etc/.wh.motd", "wh-file"),
         F("opt", "dir", mode=0o755), F("opt/app1", "dir", mode=0o755),
         F("opt/app1/LICENSE", data=ZLIB_LICENSE, share="copy:A"),
         F("opt/app1/bin", "dir", mode=0o755),
         F("opt/app1/bin/app1", data=_bytes("app1", 40960), mode=0o755),
         F("opt/app1/config.json", data=b'{"name": "app1", "workers": 4, "debug": false}\n'),
         F("opt/app1/lib", "dir", mode=0o755),
         F("opt/app1/lib/libshared1.so", data=_bytes("libshared1", 9000), mode=0o755),
         F("opt/app1/lib/libshared2.so", data=_bytes("libshared2", 700), mode=0o755),
         F("opt/app1/share", "dir", mode=0o755),
         F("opt/app1/share/shared3.dat", data=_bytes("shared3", 90)),
         F("opt/app1/share/shared4.dat", data=_bytes("shared4", 12000))]
    c = [F("opt", "dir", mode=0o755), F("opt/app2", "dir", mode=0o755),
         F("opt/app2/bin", "dir", mode=0o755),
         F("opt/app2/bin/app2", data=_bytes("app2", 30000), mode=0o755),
         F("opt/app2/empty.txt"),
         F("opt/app2/lib", "dir", mode=0o755),
         F("opt/app2/lib/libshared1.so", data=_bytes("libshared1", 9000), mode=0o755,
           share="hardlink:B"),
         F("opt/app2/lib/libshared2.so", data=_bytes("libshared2", 700), mode=0o755,
           share="hardlink:B"),
         F("opt/app2/share", "dir", mode=0o755),
         F("opt/app2/share/shared3.dat", data=_bytes("shared3", 90), share="hardlink:B"),
         F("opt/app2/share/shared4.dat", data=_bytes("shared4", 12000), share="copy:B"),
         F("usr", "dir", mode=0o755), F("usr/share", "dir", mode=0o755),
         F("usr/share/doc", "dir", mode=0o755), F("usr/share/doc/zlib", "dir", mode=0o755),
         F("usr/share/doc/zlib/.wh..wh..opq", "wh-file"),
         F("usr/share/doc/zlib/README", data=_text("zlib documentation replaced by app2."))]
    d = [F("etc", "dir", mode=0o755), F("etc/hostname", data=b"demo-app2\n"),
         F("opt", "dir", mode=0o755), F("opt/app2", "dir", mode=0o755),
         F("opt/app2/config.yaml", data=_text("name: app2", "replicas: 2", "cache: /var/cache/app2")),
         F("opt/app2/share", "dir", mode=0o755),
         F("opt/app2/share/shared3.dat", "whiteout", mode=0o000)]
    p = [F("srv", "dir", mode=0o755), F("srv/www", "dir", mode=0o755),
         F("srv/www/index.html", data=b"<!doctype html><title>demo</title><h1>It works</h1>\n"),
         F("srv/www/style.css", data=b"body { font-family: sans-serif; }\n"),
         F("opt", "dir", mode=0o755), F("opt/app2", "dir", mode=0o755),
         F("opt/app2/empty.txt", "whiteout", mode=0o000),
         F("opt/app2/share", "dir", mode=0o755,
           xattrs=(("trusted.overlay.opaque", b"y"),)),
         F("opt/app2/share/local.dat", data=_bytes("local", 5000))]
    return [LayerSpec("A", None, T0, a), LayerSpec("B", "A", T0 + 100, b),
            LayerSpec("C", "A", T0 + 200, c), LayerSpec("D", "C", T0 + 300, d),
            LayerSpec("P", "D", T0 + 400, p, composefs=False)]


IMAGES = (("localhost/demo-base:1", "A"), ("localhost/demo-app1:1", "B"),
          ("localhost/demo-app2:1", "P"))


def _rfc3339(sec: int, nsec: int) -> str:
    import datetime
    t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{t}.{nsec:09d}Z" if nsec else f"{t}Z"


def _toc(spec: LayerSpec) -> dict:
    entries = []
    offset = 0
    for f in spec.entries:
        kind = {"wh-file": "reg", "whiteout": "char"}.get(f.kind, f.kind)
        e: dict = {"type": kind, "name": f.path + ("/" if f.kind == "dir" else ""),
                   "mode": f.mode}
        if f.data:
            e["size"] = len(f.data)
        if f.uid:
            e["uid"] = f.uid
        if f.gid:
            e["gid"] = f.gid
        e["modtime"] = _rfc3339(spec.mtime, f.nsec)
        if f.kind in ("symlink", "hardlink"):
            e["linkName"] = f.target
        if f.xattrs:
            e["xattrs"] = {k: base64.b64encode(v).decode() for k, v in f.xattrs}
        if f.data:
            e["digest"] = "sha256:" + hashlib.sha256(f.data).hexdigest()
            e["offset"] = offset
            offset += len(f.data) // 3 + 64
            e["endOffset"] = offset
        entries.append(e)
    return {"version": 1, "entries": entries}


def _blob_tree(spec: LayerSpec, no_digest: set[str]) -> Node:
    """The dump containers/storage generates for a layer (docs/stores.md §2.5)."""
    root = new_dir(0o40755)            # synthesised root: 0755, mtime 0
    nodes: dict[str, Node] = {"": root}
    links: dict[str, int] = {}
    for f in spec.entries:
        if f.kind == "hardlink":
            links[f.target] = links.get(f.target, 0) + 1
    for f in spec.entries:
        parent_path, _, name = f.path.rpartition("/")
        parent = nodes[parent_path]
        xattrs = {k.encode(): v for k, v in f.xattrs}
        common = dict(uid=f.uid, gid=f.gid, mtime_sec=spec.mtime, mtime_nsec=f.nsec)
        if f.kind == "dir":
            node = new_dir(stat.S_IFDIR | f.mode, **common)
        elif f.kind == "symlink":
            node = Node(stat.S_IFLNK | 0o777, payload=f.target.encode(),
                        size=len(f.target), **common)
        elif f.kind == "hardlink":
            node = Node(stat.S_IFREG | f.mode, link_to=nodes[f.target])
        elif f.kind == "whiteout":
            node = Node(stat.S_IFCHR | f.mode, **common)
        else:
            node = Node(stat.S_IFREG | f.mode, nlink=1 + links.get(f.path, 0),
                        size=len(f.data), **common)
            if f.data:
                sha = hashlib.sha256(f.data).hexdigest()
                node.payload = f"{sha[:2]}/{sha[2:]}".encode()
                if sha not in no_digest:
                    node.digest = fsverity_digest(f.data)
        node.xattrs = xattrs if f.kind != "hardlink" else {}
        parent.add_child(name.encode(), node)
        nodes[f.path] = node
    return root


def _object_mode() -> int:
    return 0o000 if os.geteuid() == 0 else 0o444


def _write_objects(spec: LayerSpec, diff: Path, layers: dict[str, LayerSpec]) -> set[str]:
    """Flat ``xx/<sha256>`` objects, one per distinct content; returns hard-linked shas."""
    hardlinked = set()
    for f in spec.entries:
        if f.kind not in ("reg", "wh-file"):
            continue
        sha = hashlib.sha256(f.data).hexdigest()
        if sha in spec.objects:
            continue
        sub = diff / sha[:2]
        sub.mkdir(mode=0o755, exist_ok=True)
        dest = sub / sha[2:]
        how, _, other = f.share.partition(":")
        if how == "hardlink":
            os.link(layers[other].objects[sha], dest)
            hardlinked.add(sha)
        elif how == "copy":
            shutil.copyfile(layers[other].objects[sha], dest)
            os.chmod(dest, 0o644)
        else:
            dest.write_bytes(f.data)
            os.chmod(dest, _object_mode())
        spec.objects[sha] = str(dest)
    return hardlinked


def _write_plain(spec: LayerSpec, diff: Path) -> list[str]:
    """An unpacked layer tree; returns notes about what could not be created unprivileged."""
    notes = []
    for f in spec.entries:
        path = diff / f.path
        if f.kind == "dir":
            path.mkdir(mode=0o755, exist_ok=True)
            for k, v in f.xattrs:
                try:
                    os.setxattr(path, k, v)
                except OSError:
                    user_key = "user." + k.split(".", 1)[1]      # overlay userxattr form
                    try:
                        os.setxattr(path, user_key, v)
                    except OSError:
                        notes.append(f"could not set {k} on {f.path}")
        elif f.kind == "whiteout":
            try:
                os.mknod(path, stat.S_IFCHR | f.mode, os.makedev(0, 0))
            except OSError:
                notes.append(f"could not create whiteout device {f.path}")
        else:
            path.write_bytes(f.data)
        if f.kind != "whiteout" and path.exists():
            os.chmod(path, f.mode)
    for f in reversed(spec.entries):       # children first: creating them touches the parent
        path = diff / f.path
        if os.path.lexists(path):
            os.utime(path, (spec.mtime, spec.mtime), follow_symlinks=False)
    return notes


def _bigdata(directory: Path, items: dict[str, bytes], mode: int = 0o600) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    for key, data in items.items():
        name = "=" + base64.b64encode(key.encode()).decode()
        path = directory / name
        path.write_bytes(data)
        os.chmod(path, mode)


def _link_id(layer_id: str) -> str:
    return base64.b32encode(hashlib.sha256(layer_id.encode()).digest()).decode()[:26]


def _tar_split(toc: dict) -> bytes:
    lines = []
    for i, e in enumerate(toc["entries"]):
        lines.append(json.dumps({"type": 1, "name": e["name"], "size": e.get("size", 0),
                                 "payload": None, "position": i}, separators=(",", ":")))
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def build_demo(directory: str | os.PathLike | None = None) -> Path:
    """Create the demo store; return the directory to open (it contains ``storage/``)."""
    if directory is None:
        top = Path(tempfile.mkdtemp(prefix="cfs-inspect-demo-"))
    else:
        top = Path(directory)
        if top.exists() and any(top.iterdir()):
            raise StoreError("demo directory exists and is not empty", path=top)
        top.mkdir(parents=True, exist_ok=True)
    g = top / "storage"
    for sub in ("overlay/l", "overlay-layers", "overlay-images", "overlay-containers"):
        (g / sub).mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(g / "overlay" / "l", 0o755)
    for lock in ("storage.lock", "userns.lock", "overlay-layers/layers.lock",
                 "overlay-images/images.lock", "overlay-containers/containers.lock"):
        (g / lock).write_bytes(b"")
    (g / "overlay-containers" / "containers.json").write_text("[]")

    specs = layer_specs()
    by_key = {s.key: s for s in specs}
    layers_json = []
    notes: list[str] = []
    for spec in specs:
        toc = _toc(spec)
        toc_bytes = json.dumps(toc, separators=(",", ":")).encode()
        tar_split = _tar_split(toc)
        toc["tarSplitDigest"] = "sha256:" + hashlib.sha256(tar_split).hexdigest()
        toc_bytes = json.dumps(toc, separators=(",", ":")).encode()
        spec.id = hashlib.sha256(b"demo-layer:" + spec.key.encode() + toc_bytes).hexdigest()
        spec.link = _link_id(spec.id)
        ldir = g / "overlay" / spec.id
        ldir.mkdir(mode=0o700)
        diff = ldir / "diff"
        diff.mkdir(mode=0o755)
        for sub in ("work", "merged"):
            (ldir / sub).mkdir(mode=0o700)
        if spec.parent is None:
            (ldir / "empty").mkdir(mode=0o700)
        else:
            chain, cur = [], by_key[spec.parent]
            while cur is not None:
                chain.append(f"l/{cur.link}")
                cur = by_key[cur.parent] if cur.parent else None
            (ldir / "lower").write_text(":".join(chain))
        (ldir / "link").write_text(spec.link)
        os.symlink(f"../{spec.id}/diff", g / "overlay" / "l" / spec.link)
        (g / "overlay-layers" / f"{spec.id}.tar-split.gz").write_bytes(tar_split)
        size = sum(len(f.data) for f in spec.entries) + 512 * (len(spec.entries) + 2)
        entry = {"id": spec.id}
        if spec.parent:
            entry["parent"] = by_key[spec.parent].id
        diff_digest = "sha256:" + hashlib.sha256(b"diff:" + toc_bytes).hexdigest()
        entry.update({"created": CREATED, "compressed-diff-digest": diff_digest,
                      "compressed-size": size, "diff-digest": diff_digest, "diff-size": size,
                      "uidset": sorted({0} | {f.uid for f in spec.entries}),
                      "gidset": sorted({0} | {f.gid for f in spec.entries})})
        if spec.composefs:
            hardlinked = _write_objects(spec, diff, by_key)
            no_digest = hardlinked | {EMPTY_SHA}
            blob = build_image(_blob_tree(spec, no_digest))
            cdir = ldir / "composefs-data"
            cdir.mkdir(mode=0o700)
            (cdir / "composefs.blob").write_bytes(blob)
            os.chmod(cdir / "composefs.blob", 0o644)
            _bigdata(g / "overlay-layers" / spec.id,
                     {MANIFEST_KEY: toc_bytes, LAYER_DATA_KEY: b'{"format":1}'})
            entry["big-data-names"] = [MANIFEST_KEY, LAYER_DATA_KEY]
            os.chmod(diff, 0o555)
        else:
            notes += _write_plain(spec, diff)
        layers_json.append(entry)
    (g / "overlay-layers" / "layers.json").write_text(json.dumps(layers_json))

    images_json = []
    for name, top_key in IMAGES:
        chain, cur = [], by_key[top_key]
        while cur is not None:
            chain.append(cur)
            cur = by_key[cur.parent] if cur.parent else None
        chain.reverse()
        config = json.dumps({
            "created": CREATED, "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Labels": {"demo": "cfs-inspect"}},
            "rootfs": {"type": "layers",
                       "diff_ids": [f"sha256:{hashlib.sha256(b'diff:' + s.id.encode()).hexdigest()}"
                                    for s in chain]},
            "history": [{"created": CREATED, "created_by": f"demo layer {s.key}"} for s in chain],
        }, separators=(",", ":")).encode()
        image_id = hashlib.sha256(config).hexdigest()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": f"sha256:{image_id}", "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                        "digest": f"sha256:{s.id}", "size": 1024} for s in chain],
        }, separators=(",", ":")).encode()
        mdigest = hashlib.sha256(manifest).hexdigest()
        items = {f"sha256:{image_id}": config, f"manifest-sha256:{mdigest}": manifest,
                 "manifest": manifest, f"signature-{mdigest}": b""}
        _bigdata(g / "overlay-images" / image_id, items, mode=0o600)
        images_json.append({
            "id": image_id, "digest": f"sha256:{mdigest}", "names": [name],
            "names-history": [name], "layer": by_key[top_key].id,
            "metadata": json.dumps({"signatures-sizes": {f"sha256:{mdigest}": []}},
                                   separators=(",", ":")),
            "big-data-names": list(items),
            "big-data-sizes": {k: len(v) for k, v in items.items()},
            "big-data-digests": {k: "sha256:" + hashlib.sha256(v).hexdigest()
                                 for k, v in items.items()},
            "created": CREATED})
    (g / "overlay-images" / "images.json").write_text(json.dumps(images_json))
    if notes:
        (top / "DEMO-NOTES.txt").write_text("\n".join(notes) + "\n")
    return top
