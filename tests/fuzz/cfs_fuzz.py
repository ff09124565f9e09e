"""Mutation fuzzing of composefs images: structure maps, mutators and the invariant check.

Shared by the CI fuzz test (``tests/fuzz/test_fuzz_images.py``, a fixed seed, a few thousand
cases) and the long-running ``benches/fuzz_long.py``.  The mutators know the image layout (a
*map* built by walking a valid image with the reader), so truncations land on every structure
boundary and field overwrites hit the fields a hostile builder would choose: nids, nameoffs,
i_format, xattr counts and sizes, shared ids, chunk formats, sizes, block addresses.

The invariant (:func:`check_case`): the whole read path either succeeds or raises an
``InspectError``; a ``FormatError`` carries a byte offset; no case takes longer than the time
budget; no case allocates more than a small multiple of the image size.
"""

from __future__ import annotations

import io
import random
import resource
import signal
import struct
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

from inspector.composefs.dump import dump_image, ls_lines
from inspector.composefs.dumpfile import parse_dump
from inspector.composefs.image import open_image
from inspector.composefs.summary import image_info, inode_details
from inspector.composefs.writer import build_image
from inspector.erofs import constants as C
from inspector.errors import FormatError, InspectError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures"
#: Fixture images small enough to read hundreds of times a second.
SMALL_FIXTURES = [FIXTURES / "images" / f"{n}.cfs" for n in
                  ("bigfile", "bigfile-xattr", "honggfuzz-long-symlink", "longlink", "no-newline",
                   "special", "special_v1")] + [FIXTURES / "trees/sample/sample.cfs",
                                                FIXTURES / "trees/sample/sample-v0.cfs"]
#: Large fixtures: only for the long run (a full read takes a second or more).
LARGE_FIXTURES = [FIXTURES / "images" / f"{n}.cfs" for n in
                  ("config", "config-with-hard-link", "cs9-x86_64-minimal")]

#: A built image with every structure the fuzzer targets: shared xattrs (used by two inodes),
#: inline and block data, chunk-based externals (with and without a hole-making huge size),
#: a deep-ish directory chain, hardlinks, a symlink, devices and long names.
BUILT_DUMP = b"""/ 4096 40755 3 0 0 0 1700000000.0 - - - user.shared=same-value
/a 4096 40755 3 0 0 0 1700000000.0 - - - user.shared=same-value
/a/b 4096 40755 3 0 0 0 1700000000.0 - - -
/a/b/c 4096 40755 2 0 0 0 1700000000.0 - - - security.selinux=system_u:object_r:etc_t:s0
/a/b/c/deep 5 100644 1 0 0 0 1700000000.0 - hello -
/a/b/link 7 120777 1 0 0 0 1700000000.0 ../../x - -
/a/b/hard 3 100644 2 0 0 0 1700000000.0 - abc - user.k=v
/a/b/hard2 3 @100644 2 0 0 0 1700000000.0 /a/b/hard - -
/x 10000 100644 1 0 0 0 1700000000.0 ab/cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 - cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab user.shared=same-value
/y 70000 100644 1 0 0 0 1700000000.0 12/3456 - - trusted.overlay.redirect=/escaped
/inl 4097 100644 1 0 0 0 1700000000.0 - %s -
/chr 0 20644 1 0 0 1025 1700000000.0 - - -
/fifo 0 10644 1 0 0 0 1700000000.0 - - -
/%s 0 100644 1 0 0 0 1700000000.0 - - -
""" % (b"z" * 4097, b"n" * 255)


def built_images() -> list[tuple[str, bytes]]:
    """Small images from the writer (v0 and v1)."""
    from inspector.composefs.writer import WriterOptions
    out = []
    for v in (0, 1):
        opts = WriterOptions(min_version=v, max_version=v)
        out.append((f"built-v{v}", build_image(parse_dump(BUILT_DUMP), opts)))
    return out


# -- structure map ---------------------------------------------------------------------------

@dataclass(slots=True)
class Field:
    """A field worth overwriting: ``offset``, ``fmt`` (struct code) and a label for reports."""

    offset: int
    fmt: str
    label: str


@dataclass(slots=True)
class ImageMap:
    """Where the structures of a valid image are (offsets into its bytes)."""

    size: int
    boundaries: set[int] = field(default_factory=set)
    fields: list[Field] = field(default_factory=list)
    regions: list[tuple[int, int]] = field(default_factory=list)   # metadata byte ranges
    dir_nids: list[int] = field(default_factory=list)
    #: (inode offset, data offset, first block address) of each directory: structural mutations
    dirs: list[tuple[int, int, int]] = field(default_factory=list)
    meta_base: int = 0


def build_map(data: bytes) -> ImageMap:
    """Walk a valid image and record every structure boundary and interesting field."""
    img = open_image("<map>", data=data)
    e = img.erofs
    m = ImageMap(size=len(data), meta_base=e.meta_base)
    b = m.boundaries
    b.update((0, 4, 8, 16, 32, 1024, 1024 + 0x0C, 1024 + 0x24, 1024 + 0x80, len(data) - 1))
    sb = 1024
    for rel, fmt, label in ((0x0C, "B", "sb.blkszbits"), (0x0E, "H", "sb.root_nid"),
                            (0x10, "Q", "sb.inos"), (0x24, "I", "sb.blocks"),
                            (0x28, "I", "sb.meta_blkaddr"), (0x2C, "I", "sb.xattr_blkaddr"),
                            (0x50, "I", "sb.feature_incompat"), (0x08, "I", "sb.feature_compat")):
        m.fields.append(Field(sb + rel, fmt, label))
    m.fields.append(Field(0, "I", "hdr.magic"))
    m.fields.append(Field(4, "I", "hdr.version"))
    m.regions.append((0, 32))
    m.regions.append((1024, 1024 + 128))
    shared_ids: set[int] = set()
    seen: set[int] = set()
    stubs = 0
    for ent in img.walk(include_stubs=True):
        ino = ent.inode
        if ino.nid in seen:
            continue
        seen.add(ino.nid)
        if img.is_hidden_stub(ino):
            stubs += 1
            if stubs > 2:        # the 256 root stubs are alike: two are enough targets
                continue
        o = ino.offset
        isz = ino.inode_size
        b.update((o, o + 2, o + 8, o + isz, ino.data_offset))
        m.regions.append((o, ino.data_offset))
        lab = f"nid{ino.nid}"
        m.fields += [Field(o, "H", f"{lab}.i_format"), Field(o + 2, "H", f"{lab}.xattr_icount"),
                     Field(o + 4, "H", f"{lab}.mode")]
        if ino.compact:
            m.fields += [Field(o + 8, "I", f"{lab}.size32"), Field(o + 16, "I", f"{lab}.u"),
                         Field(o + 6, "H", f"{lab}.nlink16")]
        else:
            m.fields += [Field(o + 8, "Q", f"{lab}.size64"), Field(o + 16, "I", f"{lab}.u"),
                         Field(o + 44, "I", f"{lab}.nlink32")]
        if ino.xattr_icount:
            xs = o + isz
            b.update((xs, xs + 12))
            m.fields.append(Field(xs + 4, "B", f"{lab}.shared_count"))
            for x in e.xattrs(ino):
                if x.shared:
                    shared_ids.add(x.shared_id)
                    continue
                b.update((x.offset, x.offset + 4, x.offset + x.entry_size))
                m.fields += [Field(x.offset, "B", f"{lab}.xattr.name_len"),
                             Field(x.offset + 1, "B", f"{lab}.xattr.index"),
                             Field(x.offset + 2, "H", f"{lab}.xattr.value_size")]
            sc = data[xs + 4]
            for k in range(sc):
                m.fields.append(Field(xs + 12 + 4 * k, "I", f"{lab}.shared_id{k}"))
        if ino.layout == C.LAYOUT_CHUNK_BASED and ino.size:
            m.fields.append(Field(o + 16, "H", f"{lab}.chunk_format"))
            unit = 8 if ino.chunk_format & C.CHUNK_FORMAT_INDEXES else 4
            base = (ino.data_offset + unit - 1) & ~(unit - 1)
            m.fields.append(Field(base + unit - 4, "I", f"{lab}.chunk0"))
            b.update((base, base + unit))
        if ino.mode & C.S_IFMT in (C.S_IFCHR, C.S_IFBLK):
            continue
        try:
            segs = e.data_segments(ino)
        except FormatError:      # bigfile-xattr: mkcomposefs overlaps the 1024-entry chunk map
            segs = []
        for foff, ioff, n in segs:
            if ioff is None:
                continue
            b.update((ioff, ioff + n, ioff + n // 2))
            if ino.is_dir():
                m.regions.append((ioff, ioff + n))
        if ino.is_dir():
            m.dir_nids.append(ino.nid)
            full = bool(segs) and segs[0][1] is not None and segs[0][1] % 4096 == 0 and segs[0][2] >= 4096
            m.dirs.append((o, ino.data_offset, segs[0][1] // 4096 if full else 0))
            for boff, block in e.dir_blocks(ino):
                first = struct.unpack_from("<H", block, 8)[0]
                for i in range(first // 12):
                    d = boff + 12 * i
                    b.add(d)
                    m.fields += [Field(d, "Q", f"{lab}.dirent{i}.nid"),
                                 Field(d + 8, "H", f"{lab}.dirent{i}.nameoff"),
                                 Field(d + 10, "B", f"{lab}.dirent{i}.file_type")]
                    b.add(boff + struct.unpack_from("<H", block, 12 * i + 8)[0])
    for sid in shared_ids:
        p = e.xattr_base + 4 * sid
        b.update((p, p + 4))
        m.regions.append((p, p + 8))
        m.fields += [Field(p, "B", f"shared{sid}.name_len"), Field(p + 1, "B", f"shared{sid}.index"),
                     Field(p + 2, "H", f"shared{sid}.value_size")]
    m.boundaries = {x for x in b if 0 <= x <= len(data)}
    img.close()
    return m


# -- mutators --------------------------------------------------------------------------------

_MAX = {"B": 0xFF, "H": 0xFFFF, "I": 0xFFFFFFFF, "Q": 0xFFFFFFFFFFFFFFFF}


def _values(f: Field, m: ImageMap, rng: random.Random) -> int:
    mx = _MAX[f.fmt]
    choices = [0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 255, 256, 4095, 4096, 4097, 5000, 5001,
               65535, 65536, mx, mx - 1, mx >> 1, (mx >> 1) + 1, m.size, m.size // 4096,
               m.size // 32, rng.randrange(mx + 1)]
    if "nid" in f.label and m.dir_nids:
        choices += m.dir_nids                      # self / ancestors / siblings
    if f.label.endswith("i_format"):
        choices += [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0C, 0x0E, 0x10, 0x20]
    if f.label.endswith("mode"):
        choices += [0o40755, 0o100644, 0o120777, 0o20644, 0o60644, 0o10644, 0o140644, 0o170000, 0]
    if f.label.endswith("chunk_format"):
        choices += [0x1F, 0x20, 0x21, 0x3F, 0x40, 0x7F, 0x80, 31, 20]
    return min(mx, max(0, rng.choice(choices)))


def mutate(data: bytes, m: ImageMap, rng: random.Random) -> tuple[bytes, str]:
    """One mutated copy of *data* and a description of what was done."""
    kind = rng.random()
    buf = bytearray(data)
    if kind < 0.04 and m.dirs:
        return _mutate_dir_sharing(buf, m, rng)
    if kind < 0.22:
        # truncation at a structure boundary (or one byte around it)
        cut = rng.choice(sorted(m.boundaries)) + rng.choice((0, 0, -1, 1))
        cut = max(0, min(cut, len(data) - 1))
        buf = buf[:cut]
        desc = f"truncate@{cut}"
        if rng.random() < 0.6 and cut >= 1024 + 0x28:
            # make the superblock agree with the new size, so the check goes deeper
            struct.pack_into("<I", buf, 1024 + 0x24, 0)
            desc += "+blocks=0"
        return bytes(buf), desc
    if kind < 0.40:
        # random bit flips, mostly in metadata
        n = rng.choice((1, 1, 2, 3, 4, 8, 16))
        flips = []
        for _ in range(n):
            if m.regions and rng.random() < 0.85:
                lo, hi = rng.choice(m.regions)
                pos = rng.randrange(lo, max(lo + 1, hi))
            else:
                pos = rng.randrange(len(buf))
            pos = min(pos, len(buf) - 1)
            bit = rng.randrange(8)
            buf[pos] ^= 1 << bit
            flips.append(f"{pos}.{bit}")
        return bytes(buf), "flip " + ",".join(flips)
    # targeted field overwrites (1..3 fields)
    descs = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        f = rng.choice(m.fields)
        if f.offset + struct.calcsize(f.fmt) > len(buf):
            continue
        v = _values(f, m, rng)
        struct.pack_into("<" + f.fmt, buf, f.offset, v)
        descs.append(f"{f.label}@{f.offset}={v:#x}")
    return bytes(buf), "set " + " ".join(descs)


def _mutate_dir_sharing(buf: bytearray, m: ImageMap, rng: random.Random) -> tuple[bytes, str]:
    """Directories whose data overlaps: one re-pointed at another's block (flat), or made
    chunk-based with every chunk naming the same block.  Amplification, not corruption."""
    o, data_off, _blk = rng.choice(m.dirs)
    blk2 = rng.choice([b for _o, _d, b in m.dirs if b] or [0])
    if rng.random() < 0.5:
        struct.pack_into("<HH", buf, o, 0, buf[o + 2] | buf[o + 3] << 8)       # compact, flat-plain
        struct.pack_into("<I", buf, o + 8, 4096 * rng.choice((1, 2, 3)))
        struct.pack_into("<I", buf, o + 16, blk2)
        return bytes(buf), f"dir@{o} -> block {blk2}"
    n = rng.choice((2, 16, 200))
    base = (data_off + 3) & ~3
    n = max(0, min(n, (len(buf) - base) // 4))
    struct.pack_into("<H", buf, o, C.LAYOUT_CHUNK_BASED << 1)
    struct.pack_into("<I", buf, o + 8, n * 4096)
    struct.pack_into("<I", buf, o + 16, 0)
    for i in range(n):
        struct.pack_into("<I", buf, base + 4 * i, blk2)
    return bytes(buf), f"dir@{o} chunk-based x{n} -> block {blk2}"


# -- invariant -------------------------------------------------------------------------------

class CaseTimeout(Exception):
    """Raised from the alarm handler when one case exceeds its time budget."""


@dataclass(slots=True)
class Outcome:
    ok: bool                  # the read path succeeded
    error: InspectError | None
    peak: int                 # bytes, tracemalloc peak (0 when not measured)


def _on_alarm(signum, frame):
    raise CaseTimeout("cpu" if signum == signal.SIGPROF else "wall")


def read_everything(data: bytes, name: str = "/nonexistent/fuzz-case.cfs") -> None:
    """The full read path over one image: everything a user command can reach."""
    img = open_image(name, data=data)
    try:
        e = img.erofs
        paths = []
        external = []
        for ent in img.walk(include_stubs=True):
            ino = ent.inode
            paths.append(ent.path)
            if img.is_external(ino):
                external.append(ent.path)
            img.attrs(ino)
            img.payload(ino)
            img.digest(ino)
            img.xattrs(ino)
            img.raw_xattrs(ino)
            img.is_whiteout(ino)
            img.display_mode(ino)
            e.xattr_filter(ino)
            fmt = ino.mode & C.S_IFMT
            if fmt == C.S_IFREG:
                img.read_inline(ino)
                if not img.is_external(ino):   # external chunk maps: via inode_details only
                    e.data_segments(ino)
                    e.read(ino, 0, 1 << 16)    # a viewer's first page of content
            elif fmt == C.S_IFLNK:
                img.read_link(ino)
            elif fmt == C.S_IFDIR:
                img.listdir(ino)
                e.readdir(ino)
        if not img.is_plain_erofs:
            dump_image(img, io.BytesIO())
            for _ in ls_lines(img):
                pass
        image_info(img)
        for p in {paths[0], paths[len(paths) // 2], paths[-1], *external[:2]}:
            inode_details(img, p, img.lookup(p))
    finally:
        img.close()


def max_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_case(data: bytes, *, budget_s: float = 2.0, measure_memory: bool = False) -> Outcome:
    """Run the read path over *data* under the invariant; raise AssertionError on a violation.

    A violation is: an exception other than InspectError, a FormatError without an offset,
    a run longer than *budget_s* of CPU time (or 10 x that of wall time), or (with *measure_memory*: tracemalloc multiplies the run
    time by ~10, so callers sample it) a peak above ``max(8 MiB, 16 x image size)``.  Callers
    also watch :func:`max_rss` across cases, which catches a blow-up in any case cheaply.
    """
    # The budget is CPU time (ITIMER_PROF), so a loaded machine does not fake a hang; a
    # wall-clock timer at 10x catches a case blocked in a system call.
    if measure_memory:
        budget_s *= 10        # tracemalloc slows Python code about tenfold
    old = signal.signal(signal.SIGALRM, _on_alarm)
    old_prof = signal.signal(signal.SIGPROF, _on_alarm)
    signal.setitimer(signal.ITIMER_PROF, budget_s)
    signal.setitimer(signal.ITIMER_REAL, 10 * budget_s)
    if measure_memory:
        tracemalloc.start()
    err: InspectError | None = None
    try:
        try:
            read_everything(data)
        except InspectError as e:
            err = e
        except CaseTimeout as e:
            limit = budget_s if str(e) == "cpu" else 10 * budget_s
            raise AssertionError(f"hang: case exceeded {limit} s ({e} time)") from None
        except RecursionError as e:
            raise AssertionError(f"RecursionError escaped: {e}") from e
        except Exception as e:  # noqa: BLE001 - the invariant is exactly "nothing else escapes"
            raise AssertionError(f"{type(e).__name__} escaped: {e}") from e
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        signal.signal(signal.SIGPROF, old_prof)
        peak = 0
        if measure_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    limit = max(8 << 20, 16 * len(data))
    if peak > limit:
        raise AssertionError(f"memory: peak {peak} bytes for a {len(data)}-byte image (limit {limit})")
    if isinstance(err, FormatError) and err.offset is None:
        raise AssertionError(f"FormatError without a byte offset: {err}")
    return Outcome(err is None, err, peak)


def run_budgeted(fn, budget_s: float):
    """``fn()`` under the same CPU-time budget as :func:`check_case` (AssertionError past it)."""
    old = signal.signal(signal.SIGPROF, _on_alarm)
    signal.setitimer(signal.ITIMER_PROF, budget_s)
    try:
        return fn()
    except CaseTimeout:
        raise AssertionError(f"hang: exceeded {budget_s} s of CPU time") from None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def corpus(include_large: bool = False) -> list[tuple[str, bytes]]:
    """(name, bytes) of every seed image."""
    out = [(p.stem, p.read_bytes()) for p in SMALL_FIXTURES]
    out += built_images()
    if include_large:
        out += [(p.stem, p.read_bytes()) for p in LARGE_FIXTURES]
    return out
