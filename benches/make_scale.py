#!/usr/bin/env python3
"""Deterministic scale data for the benchmarks: big images and a 100-layer store.

    python benches/make_scale.py                 # everything missing under benches/data/
    python benches/make_scale.py --only 1m       # one item: 100k, 1m or store
    python benches/make_scale.py --force         # rebuild even if present

Outputs (benches/data/ is gitignored):

* ``scale-100k.cfs`` and ``scale-1m.cfs``: composefs images of about 100 000 and 1 000 000
  inodes.  Directories hold 5–200 entries; about 80 % of the inodes are regular files, nearly
  all external with a payload and a digest (``xx/<62 hex>``, like ``mkcomposefs --digest-store``),
  a few inline or empty; the rest are symlinks and subdirectories.  Some files carry
  ``user.*`` xattrs, every file a ``security.selinux`` label from a small set (so the shared
  xattr table is exercised), a few are hardlinks.
* ``scale-store/``: a containers/storage graphroot (``storage/``) with 100 composefs layers in
  20 images of 5 layers each.  Objects come from one pool of contents, so layers share them:
  by hard link, by plain copy, or not at all (written again).

The trees are built in memory and written with cfs-inspect's mkcomposefs-identical writer (no
dump text in between).  Same seed, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspector.composefs.dumpfile import Node, new_dir  # noqa: E402
from inspector.composefs.fsverity import fsverity_digest  # noqa: E402
from inspector.composefs.writer import build_image  # noqa: E402
from inspector.composefs.writer.output import write_atomic  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
T0 = 1700000000
LABELS = [b"system_u:object_r:%s_t:s0\0" % t for t in
          (b"usr", b"bin", b"lib", b"etc", b"var_lib", b"container_file", b"man_page", b"locale")]
WORDS = ["lib", "bin", "share", "doc", "python3", "site", "packages", "locale", "man", "icons",
         "config", "data", "cache", "include", "src", "test", "module", "plugin", "core", "util"]


def _name(rng: random.Random, i: int) -> bytes:
    stem = rng.choice(WORDS)
    ext = rng.choice((b"", b".so", b".py", b".txt", b".json", b".h", b".gz", b".pyc"))
    return b"%s-%x%s" % (stem.encode(), i, ext)


def scale_tree(target: int, seed: int = 1) -> Node:
    """A tree of about ``target`` inodes (the 256 root stubs come on top)."""
    rng = random.Random(seed)
    root = new_dir(0o40755, mtime_sec=T0)
    queue = [root]
    count = 1
    qi = 0
    files: list[Node] = []
    serial = 0
    while qi < len(queue) and count < target:
        d = queue[qi]
        qi += 1
        n = rng.randint(5, 200)
        for _ in range(n):
            if count >= target:
                break
            serial += 1
            name = _name(rng, serial)
            r = rng.random()
            mtime = T0 + rng.choice((0, 0, 0, rng.randrange(86400 * 365)))
            if r < 0.08 or qi == len(queue):      # keep at least one directory to descend into
                node = new_dir(0o40755, mtime_sec=mtime)
                queue.append(node)
            elif r < 0.88:
                size = int(rng.lognormvariate(8, 2)) + 1
                mode = rng.choice((0o100644, 0o100644, 0o100755, 0o100600))
                node = Node(mode, 1, 0, 0, 0, mtime, 0, size)
                kind = rng.random()
                if kind < 0.03:
                    node.size = 0
                elif kind < 0.08 and size <= 64:
                    node.content = rng.randbytes(size)
                else:
                    digest = hashlib.sha256(b"scale:%d:%d" % (seed, serial)).digest()
                    node.digest = digest
                    h = digest.hex()
                    node.payload = f"{h[:2]}/{h[2:]}".encode()
                node.xattrs = {b"security.selinux": rng.choice(LABELS)}
                if rng.random() < 0.05:
                    node.xattrs[b"user.origin"] = b"package-%d" % rng.randrange(500)
                files.append(node)
            elif r < 0.98 or not files:
                target_path = b"../" * rng.randint(0, 3) + _name(rng, rng.randrange(serial + 1))
                node = Node(0o120777, 1, 0, 0, 0, mtime, 0, len(target_path), payload=target_path)
            else:
                primary = rng.choice(files)
                if primary.size == 0 or primary.content is not None:
                    continue
                primary.nlink += 1
                d.add_child(name, Node(primary.mode, link_to=primary))
                count += 0          # a hardlink is not a new inode
                continue
            d.add_child(name, node)
            count += 1
    return root


def make_image(label: str, inodes: int, seed: int, force: bool) -> None:
    dest = DATA / f"scale-{label}.cfs"
    if dest.exists() and not force:
        print(f"{dest} exists (use --force to rebuild)")
        return
    t = time.monotonic()
    tree = scale_tree(inodes, seed)
    t1 = time.monotonic()
    image = build_image(tree)
    t2 = time.monotonic()
    DATA.mkdir(parents=True, exist_ok=True)
    write_atomic(image, str(dest))
    inos = int.from_bytes(image[0x410:0x418], "little")
    print(f"{dest}: {inos} inodes, {len(image)} bytes "
          f"(tree {t1 - t:.1f}s, write {t2 - t1:.1f}s)")


# --- the 100-layer store --------------------------------------------------------------------

def _content(i: int) -> bytes:
    rng = random.Random(i)
    size = rng.choice((0, 70, 200, 900, 1500, 3000, 4096, 6000, 9000, 16000))
    return rng.randbytes(size)


def make_store(seed: int, force: bool, layers: int = 100, per_image: int = 5,
               files_per_layer: int = 400, pool: int = 12000) -> None:
    from inspector.stores.demo import _bigdata, _link_id

    top = DATA / "scale-store"
    if top.exists():
        if not force:
            print(f"{top} exists (use --force to rebuild)")
            return
        for p in top.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(top)
    t = time.monotonic()
    rng = random.Random(seed)
    g = top / "storage"
    for sub in ("overlay/l", "overlay-layers", "overlay-images", "overlay-containers"):
        (g / sub).mkdir(parents=True, exist_ok=True)
    for lock in ("storage.lock", "overlay-layers/layers.lock", "overlay-images/images.lock"):
        (g / lock).write_bytes(b"")
    (g / "overlay-containers/containers.json").write_text("[]")
    where: dict[str, str] = {}            # sha -> first object path
    layer_json, images_json = [], []
    ids: list[str] = []
    contents: dict[int, tuple[bytes, str, bytes]] = {}
    for n in range(layers):
        lid = hashlib.sha256(b"scale-layer:%d:%d" % (seed, n)).hexdigest()
        ids.append(lid)
        parent = ids[n - 1] if n % per_image else None
        ldir = g / "overlay" / lid
        diff = ldir / "diff"
        diff.mkdir(parents=True)
        link = _link_id(lid)
        (ldir / "link").write_text(link)
        os.symlink(f"../{lid}/diff", g / "overlay/l" / link)
        root = new_dir(0o40755)
        dirs = [root]
        written: set[str] = set()
        toc = []
        for f in range(files_per_layer):
            if f % 40 == 0:
                d = new_dir(0o40755, mtime_sec=T0 + n)
                rng.choice(dirs).add_child(b"dir%03d" % f, d)
                dirs.append(d)
            ci = min(int(rng.paretovariate(1.2)) - 1, pool - 1) if rng.random() < 0.7 \
                else rng.randrange(pool)
            if ci not in contents:
                data = _content(ci)
                sha = hashlib.sha256(data).hexdigest()
                contents[ci] = (data, sha, fsverity_digest(data))
            data, sha, verity = contents[ci]
            node = Node(0o100644, 1, 0, 0, 0, T0 + n, 0, len(data))
            node.xattrs = {b"security.selinux": LABELS[ci % len(LABELS)]}
            digest = verity
            if sha not in written:
                sub = diff / sha[:2]
                sub.mkdir(exist_ok=True)
                obj = sub / sha[2:]
                how = rng.random()
                if sha in where and how < 0.6:
                    os.link(where[sha], obj)
                    digest = None            # containers/storage records none for links
                elif sha in where and how < 0.85:
                    shutil.copyfile(where[sha], obj)
                    obj.chmod(0o644)
                else:
                    obj.write_bytes(data)
                    obj.chmod(0o000)
                    where.setdefault(sha, str(obj))
                written.add(sha)
            if data:
                node.payload = f"{sha[:2]}/{sha[2:]}".encode()
                node.digest = digest
            rng.choice(dirs).add_child(b"file%04d" % f, node)
            toc.append({"type": "reg", "name": f"file{f:04d}", "mode": 420, "size": len(data),
                        "digest": f"sha256:{sha}"})
        blob = build_image(root)
        (ldir / "composefs-data").mkdir(mode=0o700)
        (ldir / "composefs-data/composefs.blob").write_bytes(blob)
        _bigdata(g / "overlay-layers" / lid,
                 {"zstd-chunked-manifest": json.dumps({"version": 1, "entries": toc}).encode(),
                  "zstd-chunked-layer-data": b'{"format":1}'})
        diff.chmod(0o555)
        entry = {"id": lid, "created": "2023-11-14T22:15:00Z",
                 "diff-digest": f"sha256:{lid}", "diff-size": 0,
                 "big-data-names": ["zstd-chunked-manifest", "zstd-chunked-layer-data"]}
        if parent:
            entry["parent"] = parent
        layer_json.append(entry)
        if n % per_image == per_image - 1:
            image_id = hashlib.sha256(b"scale-image:%d" % n).hexdigest()
            images_json.append({"id": image_id, "names": [f"localhost/scale{n // per_image:02d}:1"],
                                "layer": lid, "created": "2023-11-14T22:15:00Z"})
    (g / "overlay-layers/layers.json").write_text(json.dumps(layer_json))
    (g / "overlay-images/images.json").write_text(json.dumps(images_json))
    print(f"{top}: {layers} layers, {len(images_json)} images, {len(contents)} distinct contents "
          f"({time.monotonic() - t:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("100k", "1m", "store"), action="append")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    todo = args.only or ["100k", "1m", "store"]
    if "100k" in todo:
        make_image("100k", 100_000, args.seed, args.force)
    if "1m" in todo:
        make_image("1m", 1_000_000, args.seed, args.force)
    if "store" in todo:
        make_store(args.seed, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
