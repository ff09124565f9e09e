"""Benchmark: verify throughput next to `fsverity digest`, and dedup time per inode.

Builds a synthetic digest store (random files through cfs-inspect's own writer, objects named
by fs-verity sha256, one image referencing them all), then measures on the same objects:

* ``verify_store`` (parallel, all cores, and with --jobs 1): MB/s and objects/s;
* ``fsverity digest`` (fsverity-utils, Debian package ``fsverity``) over the same files, for
  reference; skipped with a message when the tool is missing;
* ``dedup_store`` on that store and on the containers-storage fixture: time per object inode.

Usage: .venv/bin/python benches/bench_store.py [--files N] [--mib TOTAL] [--keep DIR]
The page cache is warm for every measurement (each run reads the files once before timing),
so the figures compare hashing cost, not disk speed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inspector.analysis.dedup import dedup_store  # noqa: E402
from inspector.analysis.hashing import default_jobs  # noqa: E402
from inspector.analysis.objects import build_index, clear_cache  # noqa: E402
from inspector.analysis.verify import verify_store  # noqa: E402
from inspector.composefs.writer import build_image  # noqa: E402
from inspector.composefs.writer.source import read_directory  # noqa: E402
from inspector.stores.discover import open_store  # noqa: E402


def make_tree(src: Path, files: int, total: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    # sizes: log-uniform between 65 bytes and 4 MiB, scaled to the wanted total
    raw = [int(2 ** rnd.uniform(6.1, 22)) for _ in range(files)]
    scale = total / sum(raw)
    for i, s in enumerate(raw):
        d = src / f"d{i % 64:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(os.urandom(max(65, int(s * scale))))


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--mib", type=int, default=512, help="total object bytes (MiB)")
    ap.add_argument("--keep", type=Path, help="work directory to keep (default: temporary)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="cfs-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src, objs, image = work / "src", work / "objects", work / "bench.cfs"
    try:
        if not image.exists():
            print(f"building {args.files} files, {args.mib} MiB in {work} ...", flush=True)
            make_tree(src, args.files, args.mib << 20)
            objs.mkdir(exist_ok=True)
            root = read_directory(str(src), digest_store=str(objs))
            image.write_bytes(build_image(root))
            shutil.rmtree(src)
        objects = sorted(p for p in objs.rglob("*") if p.is_file())
        nbytes = sum(p.stat().st_size for p in objects)
        mb = nbytes / 1e6
        print(f"store: {len(objects)} objects, {nbytes:,} bytes ({mb:.1f} MB), "
              f"{default_jobs()} cores")
        warm(objects)

        store = open_store(image, basedir=objs)
        rows = []
        for jobs in (default_jobs(), 1):
            clear_cache()
            rep, dt = timed(lambda: verify_store(store, jobs=jobs))
            assert rep.exit_code == 0, [p.to_json() for p in rep.problems[:3]]
            rows.append((f"cfs-inspect verify --jobs {jobs}", dt, len(objects)))

        fsv = shutil.which("fsverity")
        if fsv:
            # one process per batch of files, like `xargs fsverity digest`
            def run_fsverity():
                batch = 500
                for i in range(0, len(objects), batch):
                    subprocess.run([fsv, "digest", "--compact", *map(str, objects[i:i + batch])],
                                   check=True, stdout=subprocess.DEVNULL)
            _, dt = timed(run_fsverity)
            rows.append(("fsverity digest (1 process per 500 files)", dt, len(objects)))

            def run_fsverity_par():
                n = default_jobs()
                chunks = [objects[i::n] for i in range(n)]
                procs = [subprocess.Popen([fsv, "digest", "--compact", *map(str, c)],
                                          stdout=subprocess.DEVNULL) for c in chunks if c]
                for p in procs:
                    if p.wait() != 0:
                        raise SystemExit("fsverity digest failed")
            _, dt = timed(run_fsverity_par)
            rows.append((f"fsverity digest ({default_jobs()} processes in parallel)", dt,
                         len(objects)))
        else:
            print("fsverity (fsverity-utils) not installed: `apt-get install -y fsverity` "
                  "for the reference column")

        print(f"\n{'what':<48} {'seconds':>8} {'MB/s':>9} {'objects/s':>10}")
        for what, dt, n in rows:
            print(f"{what:<48} {dt:8.3f} {mb / dt:9.1f} {n / dt:10.0f}")

        print()
        clear_cache()
        idx, t_idx = timed(lambda: build_index(store))
        rep, t_dd = timed(lambda: dedup_store(store, index=idx))
        n = len(objects)
        print(f"dedup (one object dir): index {t_idx * 1e3:.1f} ms + accounting {t_dd * 1e3:.1f} ms"
              f" for {n} inodes = {(t_idx + t_dd) / n * 1e6:.1f} us/inode")
        cs = ROOT.parent / "shared" / "fixtures" / "stores" / "containers-storage.tar.gz"
        if cs.exists():
            d = work / "cs"
            if not d.exists():
                d.mkdir()
                subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                                "-xzf", str(cs), "-C", str(d)], check=True)
            cstore = open_store(d)
            clear_cache()
            t0 = time.perf_counter()
            for _ in range(20):
                clear_cache()
                dedup_store(cstore)
            dt = (time.perf_counter() - t0) / 20
            files = dedup_store(cstore).data["totals"]["logical_files"]
            print(f"dedup (containers-storage fixture, 3 layers, FIEMAP on copies): "
                  f"{dt * 1e3:.2f} ms for {files} object files = {dt / files * 1e6:.1f} us/inode")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
