"""Mutation fuzzing of composefs-rs splitstreams (attacker-shaped repository objects).

The fixture repository's OCI layer stream is truncated, bit-flipped and has u64 fields
overwritten; ``read_splitstream`` must answer or raise ``StoreError`` (an ``InspectError``)
for each, within the CPU budget used for images.
"""

from __future__ import annotations

import random
import struct

import cfs_fuzz as F
from inspector.errors import InspectError
from inspector.stores.splitstream import read_splitstream

STREAM = "composefs/streams/oci-layer-sha256:58170917665ea98888718d747ab3be3fc979e4fafbdb7d05fbce51dbcf067b5e"


def test_splitstream_mutations(store_root, tmp_path):
    data = (store_root("composefs-repo") / STREAM).resolve().read_bytes()
    rng = random.Random(0x5713)
    outcomes = {"ok": 0, "error": 0}
    failures = []
    case = tmp_path / "stream"
    for i in range(1500):
        b = bytearray(data)
        k = rng.random()
        if k < 0.3:
            b = b[:rng.randrange(len(b))]
        elif k < 0.7:
            for _ in range(rng.choice((1, 2, 4, 8))):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        else:
            pos = rng.randrange(min(len(b) - 8, 128)) if rng.random() < 0.7 else rng.randrange(len(b) - 8)
            struct.pack_into("<Q", b, pos, rng.choice([0, 1, 2**63, 2**64 - 1, len(b), 2**32,
                                                       rng.randrange(2**64)]))
        case.write_bytes(bytes(b))
        try:
            F.run_budgeted(lambda: read_splitstream(case, 32), 2.0)
            outcomes["ok"] += 1
        except InspectError:
            outcomes["error"] += 1
        except AssertionError as e:          # budget exceeded
            failures.append((i, str(e)))
        except Exception as e:  # noqa: BLE001
            failures.append((i, f"{type(e).__name__}: {e}"))
    assert failures == []
    assert outcomes["error"] > 1000 and outcomes["ok"] > 100
