"""Mutation fuzzing of composefs dump text through the writer and back through the reader.

Dump files are input data too (``mkimage`` reads them).  Each mutated dump must either be
refused with an ``InspectError`` (``DumpParseError``) or build an image, and every image the
writer builds must then read completely, with no error at all: writer and reader agree on
the format for whatever the parser accepts.
"""

from __future__ import annotations

import random

import cfs_fuzz as F
from inspector.composefs.dumpfile import parse_dump
from inspector.composefs.writer import build_image
from inspector.errors import InspectError

SOURCES = [F.FIXTURES / "images/special.dump", F.FIXTURES / "images/bigfile.dump",
           F.FIXTURES / "images/longlink.dump", F.FIXTURES / "trees/sample/sample.dump"]
TOKENS = [b" ", b"\\", b"\\x", b"\\x4", b"@", b"-", b"=", b"/", b"\n", b"\0", b"..", b"-1", b"0",
          b"99999999999999999999", b"4294967296", b"\\xff", b"120777", b"40755", b"20000", b"@0",
          b"9000000000000000", b"user.", b"trusted.overlay.", b"security.capability="]


def mutate_dump(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    if len(lines) > 60:            # keep cases small: the root line plus a sample
        lines = lines[:1] + rng.sample(lines[1:], 40)
    d = bytearray(b"\n".join(lines))
    for _ in range(rng.choice((1, 2, 3, 5))):
        pos = rng.randrange(len(d) + 1)
        k = rng.random()
        if k < 0.4:
            d[pos:pos] = rng.choice(TOKENS)
        elif k < 0.7:
            del d[pos:pos + rng.randrange(1, 6)]
        else:
            d[pos:pos + 1] = bytes([rng.randrange(256)])
    return bytes(d)


def test_dump_mutations_build_readable_images_or_fail_cleanly():
    rng = random.Random(0xD0D0)
    sources = [p.read_bytes() for p in SOURCES]
    refused = built = 0
    failures = []
    for i in range(1500):
        case = mutate_dump(rng, rng.choice(sources))
        try:
            image = F.run_budgeted(lambda: build_image(parse_dump(case)), 2.0)
        except InspectError:
            refused += 1
            continue
        except Exception as e:  # noqa: BLE001
            failures.append((i, "writer", f"{type(e).__name__}: {e}"))
            continue
        built += 1
        try:
            F.run_budgeted(lambda: F.read_everything(image), 2.0)
        except Exception as e:  # noqa: BLE001 - a built image must read without any error
            failures.append((i, "reader", f"{type(e).__name__}: {e}"))
    assert failures == []
    assert refused > 1000 and built > 250
