"""Reader benchmark: cost of open, full walk and full dump, per entry.

    .venv/bin/python benches/bench_reader.py [IMAGE ...]

Defaults to the 22k-entry cs9-x86_64-minimal fixture, plus the 100k/1M scale images when
benches/data/ holds them (made by benches/make_scale.py).  Prints the best of several runs in
CPU time (process_time, robust against other load on the machine) and wall time, the peak RSS
growth, and, when composefs-info is on PATH, the ratio against it.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inspector.composefs.dump import dump_image  # noqa: E402
from inspector.composefs.image import open_image  # noqa: E402

DEFAULT = [ROOT.parent / "shared/fixtures/images/cs9-x86_64-minimal.cfs"]
SCALE = [ROOT / "benches/data/scale-100k.cfs", ROOT / "benches/data/scale-1m.cfs"]


class _Null(io.RawIOBase):
    def write(self, b):  # count nothing, keep nothing
        return len(b)


def best(fn, runs: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(path: Path, runs: int) -> None:
    with open_image(path) as img:
        entries = sum(1 for _ in img.walk())
    rss0 = peak_rss_mib()

    def do_open():
        open_image(path).close()

    def do_walk():
        with open_image(path) as img:
            for _ in img.walk():
                pass

    def do_dump():
        with open_image(path) as img:
            dump_image(img, _Null())

    print(f"{path.name}: {entries} entries, {path.stat().st_size} bytes")
    for name, fn in (("open", do_open), ("walk", do_walk), ("dump", do_dump)):
        cpu, wall = best(fn, runs)
        per = cpu / entries * 1e6
        print(f"  {name:5s} cpu {cpu * 1000:9.1f} ms  wall {wall * 1000:9.1f} ms  "
              f"{per:7.2f} us/entry (cpu)" + ("" if name != "open" else "  (lazy: no inode parsed)"))
    print(f"  peak RSS {peak_rss_mib():.0f} MiB (grew {peak_rss_mib() - rss0:.0f} MiB during the runs)")
    tool = shutil.which("composefs-info")
    if tool:
        t0 = time.perf_counter()
        subprocess.run([tool, "dump", str(path)], stdout=subprocess.DEVNULL, check=True)
        c = time.perf_counter() - t0
        print(f"  composefs-info dump {c * 1000:.1f} ms ({c / entries * 1e6:.2f} us/entry incl. start)")


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or DEFAULT + [p for p in SCALE if p.exists()]
    for p in paths:
        bench(p, runs=5 if os.path.getsize(p) < 50_000_000 else 2)


if __name__ == "__main__":
    main()
