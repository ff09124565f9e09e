"""composefs-rs splitstreams in all three on-disk generations (docs/stores.md §3.4-3.5).

A splitstream stores a file (an OCI layer tar, a manifest, a config) as inline chunks plus
references to whole objects of the repository.  Discovery needs the header facts (content type,
size, object and stream references, named references) and a chunk census; it never needs the
reassembled bytes, so the stream section is decompressed piecewise and inline data is skipped,
not kept: memory stays bounded whatever the file claims.

Every length read from the file is untrusted.  Ranges are checked against the file size, ref
arrays against the hash length, chunk lengths against what remains of ``stream_size``, external
indices against ``object_refs``; total decompressed output is capped.  Any violation raises
:class:`StoreError` with the object path and the file offset of the offending section (and the
position inside the decompressed data in the message), never a traceback.

Generations, detected per file because an upgraded repository mixes them:

* C (current): header ``b"SplitStream"`` at 0, then version, flags, algorithm, lg_blocksize and
  the info range.
* B (early 2026): the same fields in compiler order: info range first, magic at 18.
* A (legacy): the whole file is one zstd stream: digest map, then u64-size blocks.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyzstd

from inspector.errors import StoreError
from inspector.stores import fsutil

MAGIC = b"SplitStream"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
HEADER_SIZE = 32
INFO_SIZE = 80
PIECE = 1 << 20
#: Decompressed output allowed per compressed byte (plus a floor) before we call it a bomb.
MAX_RATIO = 4096
MIN_CAP = 256 << 20
#: Named refs are a short list of names; refuse more than this much decompressed text.
MAX_NAMED_REFS = 16 << 20

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_HDR_C = struct.Struct("<11sBHBBQQ")
_HDR_B = struct.Struct("<QQH11sBBB")
_INFO = struct.Struct("<QQQQQQQQQQ")

#: Known content types (8 ASCII bytes read as LE u64, or arbitrary numbers).
CONTENT_TYPES = {
    0xAFE138C18C463EF1: "ostree-commit",
}


def content_type_text(ct: int) -> str:
    """The 8 bytes as ASCII when printable (``ocilayer``), else ``0x`` + hex."""
    raw = ct.to_bytes(8, "little")
    if all(0x20 < b < 0x7F for b in raw):
        return raw.decode("ascii")
    return CONTENT_TYPES.get(ct, f"{ct:#018x}")


@dataclass(frozen=True, slots=True)
class SplitstreamInfo:
    """What discovery learns from one splitstream object."""

    generation: str                          # "A", "B" or "C"
    algorithm: int | None                    # 1 sha256, 2 sha512 (None for Gen A: inferred)
    content_type: int                        # 0 for Gen A (no content type there)
    stream_size: int | None                  # None for Gen A
    stream_refs: tuple[bytes, ...]
    object_refs: tuple[bytes, ...]           # distinct, in order of first use
    named_refs: tuple[tuple[str, str], ...]  # (name, referenced digest hex)
    inline_chunks: int
    external_chunks: int
    inline_bytes: int
    problems: tuple[str, ...] = ()

    @property
    def content_type_text(self) -> str:
        return content_type_text(self.content_type) if self.generation != "A" else "-"


def object_name(digest: bytes) -> str:
    """``xx/rest`` object path of a raw digest."""
    h = digest.hex()
    return f"{h[:2]}/{h[2:]}"


class _Section:
    """Piecewise zstd decompression of ``[start, end)`` of a file with exact-read helpers."""

    def __init__(self, fd: int, start: int, end: int, path: Path, what: str, cap: int) -> None:
        self.fd, self.pos, self.end = fd, start, end
        self.start = start
        self.path, self.what, self.cap = path, what, cap
        self.dec = pyzstd.EndlessZstdDecompressor()
        self.buf = bytearray()
        self.total = 0        # decompressed bytes produced
        self.consumed = 0     # decompressed bytes handed to the parser

    def error(self, msg: str, at: int | None = None) -> StoreError:
        where = self.consumed if at is None else at
        return StoreError(f"splitstream {self.what} (decompressed offset {where}): {msg}",
                          path=self.path, offset=self.start)

    def _fill(self) -> bool:
        while True:
            try:
                if not self.dec.needs_input:
                    out = self.dec.decompress(b"", PIECE)
                elif self.pos < self.end:
                    data = os.pread(self.fd, min(PIECE, self.end - self.pos), self.pos)
                    if not data:
                        raise self.error("file ends inside the zstd data")
                    self.pos += len(data)
                    out = self.dec.decompress(data, PIECE)
                else:
                    if not self.dec.at_frame_edge:
                        raise self.error("zstd data is truncated (frame not finished)",
                                         at=self.total)
                    return False
            except pyzstd.ZstdError as e:
                raise self.error(f"corrupt zstd data: {e}", at=self.total) from None
            except OSError as e:
                raise StoreError(f"cannot read: {e.strerror}", path=self.path) from None
            if out:
                self.total += len(out)
                if self.total > self.cap:
                    raise self.error(f"decompresses to more than {self.cap} bytes")
                self.buf += out
                return True

    def read(self, n: int) -> bytes | None:
        """Exactly n bytes; None at a clean end (nothing left); error when it ends midway."""
        while len(self.buf) < n:
            if not self._fill():
                if not self.buf:
                    return None
                raise self.error(f"data ends {n - len(self.buf)} bytes short of a "
                                 f"{n}-byte field")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.consumed += n
        return out

    def skip(self, n: int, at: int) -> None:
        """Discard n bytes of inline data (the chunk header was at decompressed offset *at*)."""
        while n:
            if not self.buf and not self._fill():
                raise self.error(f"data ends {n} bytes short of an inline chunk", at=at)
            k = min(n, len(self.buf))
            del self.buf[:k]
            self.consumed += k
            n -= k

    def read_all(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.consumed += len(out)
        self.buf.clear()
        return out


def _check_range(path: Path, name: str, start: int, end: int, size: int, at: int) -> None:
    if start > end or end > size:
        raise StoreError(f"splitstream {name} range [{start}, {end}) is outside the file "
                         f"({size} bytes)", path=path, offset=at)


def _split_refs(path: Path, fd: int, name: str, start: int, end: int, hlen: int,
                at: int) -> tuple[bytes, ...]:
    if (end - start) % hlen:
        raise StoreError(f"splitstream {name} section is {end - start} bytes, not a multiple of "
                         f"the {hlen}-byte hash", path=path, offset=at)
    data = os.pread(fd, end - start, start) if end > start else b""
    if len(data) != end - start:
        raise StoreError(f"splitstream {name} section is truncated", path=path, offset=start)
    return tuple(data[i:i + hlen] for i in range(0, len(data), hlen))


def read_splitstream(path: str | os.PathLike, hash_len: int | None = None,
                     object_size: Callable[[bytes], int | None] | None = None,
                     walk: bool = True) -> SplitstreamInfo:
    """Read a splitstream object's header, references and chunk census.

    *hash_len* (32 or 64) is needed for Gen A, which does not record it; Gen B/C take it from
    the header.  *object_size* maps an object digest to the object's size (None when absent)
    and lets the walk check that inline plus external bytes add up to ``stream_size``.  With
    ``walk=False`` the stream section is not decompressed (chunk counts are 0).
    """
    p = Path(path)
    try:
        fd = fsutil.open_ro(p)
    except OSError as e:
        raise StoreError(f"cannot open splitstream: {e.strerror}", path=p) from None
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, HEADER_SIZE, 0)
        if head[:11] == MAGIC:
            gen = "C"
        elif len(head) >= 29 and head[18:29] == MAGIC:
            gen = "B"
        elif head[:4] == ZSTD_MAGIC:
            return _read_gen_a(p, fd, size, hash_len, object_size, walk)
        else:
            raise StoreError(f"not a splitstream (bad magic {head[:11].hex()})", path=p, offset=0)
        if len(head) < HEADER_SIZE:
            raise StoreError(f"splitstream header truncated ({len(head)} of {HEADER_SIZE} bytes)",
                             path=p, offset=0)
        return _read_gen_bc(p, fd, size, gen, head, object_size, walk)
    except OSError as e:
        raise StoreError(f"cannot read splitstream: {e.strerror}", path=p) from None
    finally:
        os.close(fd)


def _read_gen_bc(p: Path, fd: int, size: int, gen: str, head: bytes,
                 object_size: Callable[[bytes], int | None] | None,
                 walk: bool) -> SplitstreamInfo:
    if gen == "C":
        _magic, version, _flags, alg, _lgbs, istart, iend = _HDR_C.unpack(head)
        ver_off, alg_off = 11, 14
    else:
        istart, iend, _flags, _magic, version, alg, _lgbs = _HDR_B.unpack(head)
        ver_off, alg_off = 29, 30
    if version != 0:
        raise StoreError(f"unsupported splitstream version {version}", path=p, offset=ver_off)
    if alg not in (1, 2):
        raise StoreError(f"unknown splitstream hash algorithm {alg} (1 = sha256, 2 = sha512)",
                         path=p, offset=alg_off)
    hlen = 32 * alg
    _check_range(p, "info", istart, iend, size, 16 if gen == "C" else 0)
    if iend - istart < INFO_SIZE:
        raise StoreError(f"splitstream info section is {iend - istart} bytes, needs {INFO_SIZE}",
                         path=p, offset=istart)
    info = os.pread(fd, INFO_SIZE, istart)
    (sr_s, sr_e, or_s, or_e, st_s, st_e, nr_s, nr_e, ctype, stream_size) = _INFO.unpack(info)
    for name, s, e, at in (("stream_refs", sr_s, sr_e, istart), ("object_refs", or_s, or_e,
                           istart + 16), ("stream", st_s, st_e, istart + 32),
                           ("named_refs", nr_s, nr_e, istart + 48)):
        _check_range(p, name, s, e, size, at)
    stream_refs = _split_refs(p, fd, "stream_refs", sr_s, sr_e, hlen, istart)
    object_refs = _split_refs(p, fd, "object_refs", or_s, or_e, hlen, istart + 16)
    problems: list[str] = []

    named: list[tuple[str, str]] = []
    if nr_e > nr_s:
        sec = _Section(fd, nr_s, nr_e, p, "named_refs", MAX_NAMED_REFS)
        text = sec.read_all()
        for rec in text.split(b"\0"):
            if not rec:
                continue
            idx_s, sep, name_b = rec.partition(b":")
            name = fsutil.safe_text(name_b)
            if not sep or not idx_s.isdigit():
                raise StoreError(f"splitstream named ref record {fsutil.safe_text(rec)!r} is not "
                                 "\"<index>:<name>\"", path=p, offset=nr_s)
            idx = int(idx_s)
            if idx >= len(stream_refs):
                problems.append(f"named ref {name!r} points at stream_refs[{idx}] but there are "
                                f"only {len(stream_refs)}")
                continue
            named.append((name, stream_refs[idx].hex()))

    inline = external = inline_bytes = 0
    if walk and st_e > st_s:
        cap = max(MIN_CAP, (st_e - st_s) * MAX_RATIO)
        sec = _Section(fd, st_s, st_e, p, "stream", cap)
        sizes = [object_size(r) if object_size else None for r in object_refs]
        known = object_size is not None and all(s is not None for s in sizes)
        accounted = 0
        while True:
            at = sec.consumed
            raw = sec.read(8)
            if raw is None:
                break
            (n,) = _I64.unpack(raw)
            if n < 0:
                length = -n
                if accounted + length > stream_size:
                    raise sec.error(f"inline chunk of {length} bytes exceeds the "
                                    f"{stream_size - accounted} bytes left of stream_size "
                                    f"{stream_size}", at=at)
                sec.skip(length, at)
                inline += 1
                inline_bytes += length
                accounted += length
            else:
                if n >= len(object_refs):
                    raise sec.error(f"external chunk refers to object_refs[{n}] but there are "
                                    f"only {len(object_refs)}", at=at)
                external += 1
                if external > stream_size + 1024:
                    raise sec.error("too many external chunks for stream_size", at=at)
                if sizes[n] is not None:
                    accounted += sizes[n]
                    if accounted > stream_size:
                        raise sec.error(f"external chunk object {object_name(object_refs[n])} "
                                        f"({sizes[n]} bytes) overruns stream_size {stream_size}",
                                        at=at)
        if known and accounted != stream_size:
            problems.append(f"chunks add up to {accounted} bytes but stream_size is "
                            f"{stream_size}")
    return SplitstreamInfo(gen, alg, ctype, stream_size, stream_refs, object_refs, tuple(named),
                           inline, external, inline_bytes, tuple(problems))


def _read_gen_a(p: Path, fd: int, size: int, hash_len: int | None,
                object_size: Callable[[bytes], int | None] | None,
                walk: bool) -> SplitstreamInfo:
    """Gen A: one zstd stream of [u64 N][N x (sha256, ObjectID)] then u64-size blocks."""
    if hash_len not in (32, 64):
        raise StoreError("legacy (Gen A) splitstream: hash length unknown (no meta.json and no "
                         "object to infer it from)", path=p, offset=0)
    sec = _Section(fd, 0, size, p, "legacy stream", max(MIN_CAP, size * MAX_RATIO))
    raw = sec.read(8)
    if raw is None:
        raise sec.error("empty legacy splitstream")
    (count,) = _U64.unpack(raw)
    entry = 32 + hash_len
    if count * entry > sec.cap:
        raise sec.error(f"digest map of {count} entries is impossibly large", at=0)
    named: list[tuple[str, str]] = []
    stream_refs: list[bytes] = []
    for _ in range(count):
        rec = sec.read(entry)
        if rec is None:
            raise sec.error(f"data ends inside the {count}-entry digest map")
        named.append((f"sha256:{rec[:32].hex()}", rec[32:].hex()))
        stream_refs.append(rec[32:])
    objects: dict[bytes, None] = {}
    inline = external = inline_bytes = 0
    while True:  # walk=False is ignored: Gen A lists its objects only inside the stream
        raw = sec.read(8)
        if raw is None:
            break
        (n,) = _U64.unpack(raw)
        if n:
            sec.skip(n, sec.consumed - 8)
            inline += 1
            inline_bytes += n
        else:
            ref = sec.read(hash_len)
            if ref is None:
                raise sec.error("data ends inside an external reference")
            objects.setdefault(ref, None)
            external += 1
    return SplitstreamInfo("A", None, 0, None, tuple(stream_refs), tuple(objects), tuple(named),
                           inline, external, inline_bytes)
