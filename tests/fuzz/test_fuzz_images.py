"""CI mutation fuzzing: a fixed seed, ~4600 corrupted images, the reader invariant on each.

For every seed image (the small fixtures and two writer-built images) a deterministic stream
of mutations (truncations at structure boundaries, bit flips, targeted field overwrites; see
``cfs_fuzz.mutate``) runs through the whole read path.  The invariant: success or an
``InspectError`` (a ``FormatError`` with a byte offset), no case over 2 s, memory bounded
(tracemalloc on every 16th case, the process RSS watched throughout).  A sample of corrupted
images also goes through ``cfs-inspect dump``: exit 0 or 2, and on 2 exactly one stderr line.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter

import pytest

import cfs_fuzz as F
from inspector.cli import main

#: cases per seed image: the two 98 KiB sample images cost ~20 ms a case, the rest ~3 ms
CASES = {"sample": 250, "sample-v0": 250}
DEFAULT_CASES = 450
SEEDS = dict(F.corpus())


@pytest.fixture(scope="module")
def maps():
    return {name: F.build_map(data) for name, data in SEEDS.items()}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutations_keep_the_invariant(maps, name):
    data = SEEDS[name]
    m = maps[name]
    rng = random.Random(zlib.crc32(name.encode()) ^ 0x6F757A7A)
    n = CASES.get(name, DEFAULT_CASES)
    rss0 = F.max_rss()
    outcomes: Counter[str] = Counter()
    failures = []
    for i in range(n):
        case, desc = F.mutate(data, m, rng)
        try:
            out = F.check_case(case, measure_memory=(i % 16 == 0))
        except AssertionError as e:
            failures.append((i, desc, str(e)))
            continue
        outcomes["ok" if out.ok else type(out.error).__name__] += 1
    assert failures == []
    assert sum(outcomes.values()) == n
    # the mutations bite (errors) without destroying everything (some cases still read)
    assert outcomes["FormatError"] > n // 4
    assert outcomes["ok"] > n // 10
    assert F.max_rss() - rss0 < 256 << 20


def test_every_seed_reads_cleanly():
    """The unmutated seeds satisfy the invariant and read fully (bigfile-xattr included: its
    external file's unusable chunk map is reported by stat, not raised)."""
    results = {name: F.check_case(data, measure_memory=True) for name, data in SEEDS.items()}
    assert sorted(n for n, r in results.items() if not r.ok) == []


def test_cli_dump_of_corrupted_images(tmp_path, capsys, maps):
    """A sample of corrupted images through ``cfs-inspect dump``: exit 0, or exit 2 with
    exactly one line ``cfs-inspect: <path>...`` on stderr and no traceback."""
    rng = random.Random(20261129)
    names = sorted(SEEDS)
    codes: Counter[int] = Counter()
    for i in range(60):
        name = names[i % len(names)]
        case, desc = F.mutate(SEEDS[name], maps[name], rng)
        path = tmp_path / f"case{i}.cfs"
        path.write_bytes(case)
        rc = main(["dump", str(path)])
        cap = capsys.readouterr()
        codes[rc] += 1
        if rc == 2:
            assert cap.err.count("\n") == 1, (desc, cap.err)
            assert cap.err.startswith(f"cfs-inspect: {path}"), (desc, cap.err)
            assert "Traceback" not in cap.err
        else:
            assert (rc, cap.err) == (0, ""), desc
    assert set(codes) == {0, 2}
