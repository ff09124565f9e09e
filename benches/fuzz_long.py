"""Long-running mutation fuzzer for the image reader (issue 6).

    .venv/bin/python benches/fuzz_long.py SECONDS [SEED] [--large] [--out DIR]

Runs the same mutators and invariant as ``tests/fuzz/test_fuzz_images.py`` (see
``tests/fuzz/cfs_fuzz.py``) for SECONDS, round-robin over the seed images (with ``--large``
the 1.6-3.4 MB fixtures join at one case in twenty, with a time budget scaled to their size).
Prints progress every 30 s and a summary: cases, cases/s, outcomes by error type, failures.
Every failing input is saved to DIR (default ``fuzz-failures/``) as ``<n>.cfs`` with a
``<n>.txt`` describing the mutation and the violation.  Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cfs_fuzz as F  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seconds", type=float)
    ap.add_argument("seed", type=int, nargs="?", default=1)
    ap.add_argument("--large", action="store_true", help="also mutate config/cs9 (slow cases)")
    ap.add_argument("--out", default="fuzz-failures", help="where failing inputs are saved")
    args = ap.parse_args()

    small = F.corpus()
    large = [(p.stem, p.read_bytes()) for p in F.LARGE_FIXTURES] if args.large else []
    maps = {name: F.build_map(data) for name, data in small + large}
    rng = random.Random(args.seed)
    out = Path(args.out)
    outcomes: Counter[str] = Counter()
    per_image: Counter[str] = Counter()
    failures = 0
    start = time.monotonic()
    deadline = start + args.seconds
    next_report = start + 30
    n = 0
    while time.monotonic() < deadline:
        if large and rng.random() < 0.05:
            name, data = rng.choice(large)
        else:
            name, data = small[n % len(small)]
        case, desc = F.mutate(data, maps[name], rng)
        budget = 2.0 + 4.0 * len(data) / (1 << 20)
        try:
            res = F.check_case(case, budget_s=budget, measure_memory=(n % 32 == 0))
            outcomes["ok" if res.ok else type(res.error).__name__] += 1
        except AssertionError as e:
            failures += 1
            outcomes["FAIL"] += 1
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{args.seed}-{n}.cfs").write_bytes(case)
            (out / f"{args.seed}-{n}.txt").write_text(f"seed image: {name}\nmutation: {desc}\nviolation: {e}\n")
            print(f"FAIL case {n} ({name}: {desc}): {e}", flush=True)
        per_image[name] += 1
        n += 1
        now = time.monotonic()
        if now >= next_report:
            print(f"[{now - start:6.0f} s] {n} cases, {n / (now - start):.0f} cases/s, "
                  f"{dict(outcomes)}", flush=True)
            next_report += 30
    elapsed = time.monotonic() - start
    print(f"done: {n} cases in {elapsed:.0f} s ({n / elapsed:.0f} cases/s), seed {args.seed}, "
          f"failures {failures}")
    print(f"outcomes: {dict(sorted(outcomes.items()))}")
    print(f"per image: {dict(sorted(per_image.items()))}")
    print(f"peak RSS: {F.max_rss() >> 20} MiB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
