"""Mutation fuzzing of store metadata: JSON files, ostree config and refs, and symlinks.

A copy of each fixture store gets one to three damaged metadata files (JSON values swapped
for wrong types, hostile strings or removed; raw bytes overwritten or truncated) or a
repository symlink retargeted (outside the store, dangling, looping).  ``verify --json``,
``dedup`` and ``refs`` must finish with exit 0, 1 or 2, a 2 being exactly one stderr line:
no exception of any other kind escapes the store code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil

import pytest

from inspector.analysis.objects import clear_cache
from inspector.cli import main

N_CASES = int(os.environ.get("CFS_FUZZ_STORE_CASES", "40"))
REFS = {"containers-storage": "ef01b0d4", "composefs-repo": "90158574bf67", "ostree": "7c9b00c40d6b"}
HOSTILE = [None, 0, -1, 2**64, "", "x" * 300, [], {}, "../../../../etc/passwd", "/etc/shadow",
           "\x1b]0;t\x07", 1.5, True, [1, "a"], {"a": {"b": []}}, "sha256:" + "0" * 64]
LINK_TARGETS = ["../../../../../../etc/passwd", "/etc/shadow", "nonexistent", "", "loop", "../" * 30,
                "/proc/self/root"]


def _mutate_json(rng: random.Random, v):
    if isinstance(v, dict) and v:
        k = rng.choice(list(v))
        if rng.random() < 0.3:
            del v[k]
        else:
            v[k] = _mutate_json(rng, v[k]) if rng.random() < 0.5 else rng.choice(HOSTILE)
        return v
    if isinstance(v, list) and v:
        i = rng.randrange(len(v))
        if rng.random() < 0.3:
            del v[i]
        else:
            v[i] = _mutate_json(rng, v[i]) if rng.random() < 0.5 else rng.choice(HOSTILE)
        return v
    return rng.choice(HOSTILE)


def _targets(root: str) -> tuple[list[str], list[str]]:
    files, links = [], []
    for dp, _dns, fns in os.walk(root):
        for f in fns:
            p = os.path.join(dp, f)
            if os.path.islink(p):
                links.append(p)
            elif (f.endswith(".json") or f in ("config", "layers.lock") or "/refs/" in p
                  or f.endswith((".commit", ".dirtree", ".dirmeta"))):
                files.append(p)
    return sorted(files), sorted(links)


def _damage(rng: random.Random, root: str) -> str:
    files, links = _targets(root)
    if links and rng.random() < 0.25:
        p = rng.choice(links)
        t = rng.choice(LINK_TARGETS)
        os.unlink(p)
        os.symlink(os.path.basename(p) if t == "loop" else (t or "."), p)
        return f"link {os.path.relpath(p, root)} -> {t}"
    p = rng.choice(files)
    data = open(p, "rb").read()
    try:
        obj = json.loads(data)
        for _ in range(rng.choice((1, 2, 3))):
            obj = _mutate_json(rng, obj)
        new = json.dumps(obj).encode()
    except ValueError:
        b = bytearray(data)
        for _ in range(rng.choice((1, 3, 8))):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.3:
            b = b[:rng.randrange(len(b) + 1)]
        new = bytes(b)
    os.chmod(p, 0o644)
    open(p, "wb").write(new)
    return f"file {os.path.relpath(p, root)}"


@pytest.mark.parametrize("name", sorted(REFS))
def test_damaged_store_metadata(store_root, tmp_path, name):
    src = store_root(name)
    rng = random.Random(f"stores-{name}")
    failures = []
    codes = {0: 0, 1: 0, 2: 0}
    for i in range(N_CASES):
        work = tmp_path / f"case{i}"
        shutil.copytree(src, work, symlinks=True)
        desc = _damage(rng, str(work))
        clear_cache()
        for argv in (["verify", "--json", str(work)], ["dedup", str(work)], ["refs", str(work), REFS[name]]):
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    rc = main(argv)
            except Exception as e:  # noqa: BLE001 - the invariant: nothing but InspectError
                failures.append((i, desc, argv[0], f"{type(e).__name__}: {e}"))
                continue
            codes[rc] = codes.get(rc, 0) + 1
            if rc == 2 and err.getvalue().count("\n") != 1:
                failures.append((i, desc, argv[0], f"stderr not one line: {err.getvalue()!r}"))
        shutil.rmtree(work)
    assert failures == []
    assert set(codes) <= {0, 1, 2}
