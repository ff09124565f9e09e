"""Splitstream reading in the three header generations, and corrupt splitstreams."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pyzstd
import pytest

from inspector.errors import StoreError
from inspector.stores.splitstream import (
    content_type_text,
    object_name,
    read_splitstream,
)

OCILAYER = int.from_bytes(b"ocilayer", "little")
OCICONFG = int.from_bytes(b"ociconfg", "little")
FIXTURE_STREAM = "objects/60/e779262e98dd743796f8b9af05bd0e3bc13d5e9bdd53aadecb5e737582e513"


def digest(i: int, n: int = 32) -> bytes:
    return hashlib.sha512(bytes([i])).digest()[:n]


def chunks_bytes(chunks: list) -> bytes:
    """[b"inline", 0, ...]: bytes are inline chunks, ints are object_refs indices."""
    out = b""
    for c in chunks:
        if isinstance(c, bytes):
            out += struct.pack("<q", -len(c)) + c
        else:
            out += struct.pack("<q", c)
    return out


def build_bc(gen: str, *, object_refs=(), stream_refs=(), named=(), chunks=(), content_type=OCILAYER,
             stream_size=0, alg=1, version=0, stream_raw: bytes | None = None) -> bytes:
    """A Gen B/C splitstream laid out in writer order: header, info, refs, named refs, stream."""
    sr = b"".join(stream_refs)
    orf = b"".join(object_refs)
    nr = pyzstd.compress(b"".join(f"{i}:{n}".encode() + b"\0" for i, n in named))
    st = stream_raw if stream_raw is not None else pyzstd.compress(chunks_bytes(list(chunks)))
    info_start = 32
    pos = info_start + 80
    sr_r = (pos, pos + len(sr)); pos += len(sr)
    or_r = (pos, pos + len(orf)); pos += len(orf)
    nr_r = (pos, pos + len(nr)); pos += len(nr)
    st_r = (pos, pos + len(st)); pos += len(st)
    info = struct.pack("<10Q", *sr_r, *or_r, *st_r, *nr_r, content_type, stream_size)
    if gen == "C":
        head = struct.pack("<11sBHBBQQ", b"SplitStream", version, 0, alg, 12, info_start, info_start + 80)
    else:
        head = struct.pack("<QQH11sBBB", info_start, info_start + 80, 0, b"SplitStream", version, alg, 12)
    return head + info + sr + orf + nr + st


def build_a(digest_map=(), blocks=(), hash_len=32) -> bytes:
    """Gen A: one zstd stream of u64 N, N x (sha256, id), then u64-size blocks (0 = external)."""
    raw = struct.pack("<Q", len(digest_map)) + b"".join(a + b for a, b in digest_map)
    for b in blocks:
        if isinstance(b, bytes):
            raw += struct.pack("<Q", len(b)) + b
        else:                       # ("ref", object id): an external block
            raw += struct.pack("<Q", 0) + b[1]
    return pyzstd.compress(raw)


def section(data: bytes, index: int) -> tuple[int, int]:
    """[start, end) of info range *index* (0 stream_refs, 1 object_refs, 2 stream, 3 named)."""
    return struct.unpack_from("<QQ", data, 32 + 16 * index)


def write(tmp_path: Path, data: bytes, name="ss") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_content_type_text():
    assert content_type_text(OCILAYER) == "ocilayer"
    assert content_type_text(0x626F6C625F69636F) == "oci_blob"
    assert content_type_text(0xAFE138C18C463EF1) == "ostree-commit"
    assert content_type_text(1) == "0x0000000000000001"


def test_fixture_stream(store_root):
    repo = store_root("composefs-repo") / "composefs"

    def size(d):
        return (repo / "objects" / object_name(d)).stat().st_size

    info = read_splitstream(repo / FIXTURE_STREAM, object_size=size)
    assert info.generation == "C"
    assert info.algorithm == 1
    assert info.content_type_text == "ocilayer"
    assert info.stream_size == 204800
    assert [object_name(d) for d in info.object_refs] == [
        "44/ac6de9bdd2a6821d52b852a71301d7b49eb6ec7c2a0a965aac7f6c19cf9875",
        "e4/6cafe53249bbff7c829057cbcdf78730eb09243dc2792cece7334943d23705",
        "7c/d55426ca67c82743208543445e9fbaf42c0181e6b6c35a9bf681cb04791980",
        "a3/73b56a7260312562b8c72e133a26abbb65e1bc36416f7f2fb0eb2370c7a322",
        "90/158574bf67d7f8023a1c5d10c50c066d3fe049314ec986c9e282e5a62dea0b",
        "fe/42533be62e3269d08bbea3695b2d348660d2e24d83503a57f3d47b943a8cd1",
    ]
    assert info.stream_refs == () and info.named_refs == ()
    assert (info.inline_chunks, info.external_chunks) == (8, 7)
    # inline bytes + the 7 external objects' sizes = the tar length exactly
    assert info.inline_bytes == 19114
    assert info.problems == ()
    headers_only = read_splitstream(repo / FIXTURE_STREAM, walk=False)
    assert (headers_only.inline_chunks, headers_only.external_chunks) == (0, 0)
    assert headers_only.object_refs == info.object_refs


@pytest.mark.parametrize("gen", ["B", "C"])
@pytest.mark.parametrize("alg", [1, 2])
def test_generated_b_and_c(tmp_path, gen, alg):
    hl = 32 * alg
    objs = (digest(1, hl), digest(2, hl))
    streams = (digest(3, hl), digest(4, hl))
    p = write(tmp_path, build_bc(
        gen, object_refs=objs, stream_refs=streams, alg=alg, content_type=OCICONFG,
        named=[(1, "sha256:aa"), (0, "config:sha256:bb")],
        chunks=[b"x" * 10, 0, b"y" * 3, 1, 0], stream_size=10 + 3 + 100 + 200 + 100))
    sizes = {objs[0]: 100, objs[1]: 200}
    info = read_splitstream(p, object_size=sizes.get)
    assert info.generation == gen
    assert info.algorithm == alg
    assert info.content_type_text == "ociconfg"
    assert info.object_refs == objs and info.stream_refs == streams
    assert info.named_refs == (("sha256:aa", streams[1].hex()), ("config:sha256:bb", streams[0].hex()))
    assert (info.inline_chunks, info.external_chunks, info.inline_bytes) == (2, 3, 13)
    assert info.problems == ()


def test_size_mismatch_is_a_problem(tmp_path):
    objs = (digest(1),)
    p = write(tmp_path, build_bc("C", object_refs=objs, chunks=[b"abc", 0], stream_size=500))
    info = read_splitstream(p, object_size={objs[0]: 100}.get)
    assert info.problems == ("chunks add up to 103 bytes but stream_size is 500",)
    # without object sizes nothing can be compared
    assert read_splitstream(p).problems == ()


def test_named_ref_index_out_of_range_is_a_problem(tmp_path):
    p = write(tmp_path, build_bc("C", named=[(0, "composefs.image")], chunks=[b"a"], stream_size=1))
    info = read_splitstream(p)
    assert info.named_refs == ()
    assert info.problems == ("named ref 'composefs.image' points at stream_refs[0] but there are only 0",)


def test_gen_a(tmp_path):
    d1, d2, s1 = digest(1), digest(2), digest(3)
    sha = hashlib.sha256(b"layer").digest()
    p = write(tmp_path, build_a(digest_map=[(sha, s1)], blocks=[b"hdr" * 100, ("ref", d1), b"pad", ("ref", d2), ("ref", d1)]))
    info = read_splitstream(p, hash_len=32)
    assert info.generation == "A"
    assert info.content_type == 0 and info.content_type_text == "-"
    assert info.stream_size is None
    assert info.object_refs == (d1, d2)          # distinct, first use order
    assert info.stream_refs == (s1,)
    assert info.named_refs == ((f"sha256:{sha.hex()}", s1.hex()),)
    assert (info.inline_chunks, info.external_chunks, info.inline_bytes) == (2, 3, 303)


def test_gen_a_needs_hash_length(tmp_path):
    p = write(tmp_path, build_a(blocks=[b"x"]))
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset 0x0: legacy (Gen A) splitstream: hash length unknown "
                             "(no meta.json and no object to infer it from)")


def test_gen_a_truncated_reference(tmp_path):
    raw = struct.pack("<QQ", 0, 0) + b"\x01" * 10
    p = write(tmp_path, pyzstd.compress(raw))
    with pytest.raises(StoreError) as ei:
        read_splitstream(p, hash_len=32)
    assert str(ei.value) == (f"{p}: offset 0x0: splitstream legacy stream (decompressed offset "
                             "16): data ends 22 bytes short of a 32-byte field")


# ---------------------------------------------------------------- corrupt splitstreams

def test_bad_magic(tmp_path):
    p = write(tmp_path, b"NotAStream" + b"\0" * 40)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == f"{p}: offset 0x0: not a splitstream (bad magic 4e6f744153747265616d00)"


def test_truncated_header(tmp_path):
    p = write(tmp_path, b"SplitStream\0\0\0\x01")
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == f"{p}: offset 0x0: splitstream header truncated (15 of 32 bytes)"


def test_truncated_file(tmp_path, store_root):
    data = (store_root("composefs-repo") / "composefs" / FIXTURE_STREAM).read_bytes()
    p = write(tmp_path, data[:200])
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset 0x30: splitstream object_refs range [112, 304) is "
                             "outside the file (200 bytes)")


def test_truncated_zstd_stream(tmp_path):
    good = build_bc("C", chunks=[b"a" * 5000], stream_size=5000)
    # shorten the stream section by moving its end and cutting the file there
    info = bytearray(good)
    st_s, st_e = struct.unpack_from("<QQ", good, 32 + 32)
    cut = st_e - 4
    struct.pack_into("<QQ", info, 32 + 32, st_s, cut)
    p = write(tmp_path, bytes(info[:cut]))
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert ei.value.path == str(p) and ei.value.offset == st_s
    assert ei.value.message.startswith("splitstream stream (decompressed offset ")
    assert ei.value.message.endswith("zstd data is truncated (frame not finished)")


def test_inline_length_past_the_end(tmp_path):
    # the chunk claims 1000 inline bytes but the stream holds 10
    raw = struct.pack("<q", -1000) + b"z" * 10
    data = build_bc("C", stream_raw=pyzstd.compress(raw), stream_size=5000)
    p = write(tmp_path, data)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset {section(data, 2)[0]:#x}: splitstream stream (decompressed offset 0): "
                             "data ends 990 bytes short of an inline chunk")


def test_inline_length_beyond_stream_size(tmp_path):
    raw = struct.pack("<q", -(1 << 62))
    data = build_bc("C", stream_raw=pyzstd.compress(raw), stream_size=100)
    p = write(tmp_path, data)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset {section(data, 2)[0]:#x}: splitstream stream (decompressed offset 0): "
                             f"inline chunk of {1 << 62} bytes exceeds the 100 bytes left of "
                             "stream_size 100")


def test_external_index_out_of_range(tmp_path):
    data = build_bc("C", object_refs=(digest(1),), chunks=[b"ab", 0, 5], stream_size=99)
    p = write(tmp_path, data)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset {section(data, 2)[0]:#x}: splitstream stream (decompressed offset 18): "
                             "external chunk refers to object_refs[5] but there are only 1")


def test_partial_chunk_header(tmp_path):
    raw = chunks_bytes([b"abc"]) + b"\x01\x02\x03"
    data = build_bc("C", stream_raw=pyzstd.compress(raw), stream_size=3)
    p = write(tmp_path, data)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset {section(data, 2)[0]:#x}: splitstream stream (decompressed offset 11): "
                             "data ends 5 bytes short of a 8-byte field")


def test_garbage_zstd(tmp_path):
    data = build_bc("C", stream_raw=b"\x28\xb5\x2f\xfd" + b"\xff" * 20, stream_size=3)
    p = write(tmp_path, data)
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert ei.value.offset == section(data, 2)[0]
    assert ei.value.message.startswith("splitstream stream (decompressed offset 0): corrupt zstd data: ")


def test_ref_section_not_multiple_of_hash(tmp_path):
    data = bytearray(build_bc("C", object_refs=(digest(1),), chunks=[b"a"], stream_size=1))
    or_s, or_e = struct.unpack_from("<QQ", data, 32 + 16)
    struct.pack_into("<QQ", data, 32 + 16, or_s, or_e - 1)
    p = write(tmp_path, bytes(data))
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == (f"{p}: offset 0x30: splitstream object_refs section is 31 bytes, not "
                             "a multiple of the 32-byte hash")


def test_unknown_version_and_algorithm(tmp_path):
    p = write(tmp_path, build_bc("C", version=3), "v")
    with pytest.raises(StoreError, match=r"offset 0xb: unsupported splitstream version 3$"):
        read_splitstream(p)
    p = write(tmp_path, build_bc("B", alg=7), "a")
    with pytest.raises(StoreError, match=r"offset 0x1e: unknown splitstream hash algorithm 7 "):
        read_splitstream(p)


def test_info_too_small(tmp_path):
    data = bytearray(build_bc("C"))
    struct.pack_into("<QQ", data, 16, 32, 40)
    p = write(tmp_path, bytes(data))
    with pytest.raises(StoreError) as ei:
        read_splitstream(p)
    assert str(ei.value) == f"{p}: offset 0x20: splitstream info section is 8 bytes, needs 80"


def test_zstd_bomb_is_capped(tmp_path, monkeypatch):
    import inspector.stores.splitstream as ss
    monkeypatch.setattr(ss, "MIN_CAP", 1 << 16)
    monkeypatch.setattr(ss, "MAX_RATIO", 16)
    raw = chunks_bytes([b"\0" * (1 << 20)])
    p = write(tmp_path, build_bc("C", stream_raw=pyzstd.compress(raw), stream_size=1 << 20))
    with pytest.raises(StoreError, match=r"decompresses to more than 65536 bytes$"):
        read_splitstream(p)


def test_walk_memory_is_bounded(tmp_path):
    """A 64 MiB inline chunk is skipped piecewise, never held: peak stays near the 1 MiB piece."""
    import tracemalloc

    size = 64 << 20
    raw = struct.pack("<q", -size) + bytes(size)
    data = build_bc("C", stream_raw=pyzstd.compress(raw), stream_size=size)
    del raw
    p = write(tmp_path, data)
    del data
    tracemalloc.start()
    try:
        info = read_splitstream(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.inline_chunks, info.inline_bytes) == (1, size)
    assert peak < 8 << 20
