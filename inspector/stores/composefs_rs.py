"""composefs-rs repositories (``cfsctl``, bootc's ``/sysroot/composefs``), docs/stores.md §3.

Layout: ``objects/xx/<rest>`` named by fs-verity digest; ``images/<hex>`` and ``streams/<name>``
are symlinks into ``objects/``; ``images/refs/**`` and ``streams/refs/**`` are relative
symlinks to those entries.  Every symlink is resolved by hand inside the repository root
(:func:`fsutil.resolve_within`): one that leaves the repository is reported as a store problem
and its target is never touched.

All three generations are read without writing (current ``cfsctl`` upgrades old repositories in
place when it opens them, so cfs-inspect never calls it):

* C: ``meta.json`` present; sectioned splitstreams, magic at 0;
* B: no ``meta.json``, ``oci-*`` stream names, sectioned splitstreams with the reordered header;
* A: no ``meta.json``, streams named by content sha256 hex, whole-file zstd splitstreams.

The generation is reported per repository (``details["generation"]``) and per stream
(``Stream.generation``), since an upgraded repository mixes B and C streams.

Each image of ``images/`` becomes one StoreImage with one Layer (blob = the image object,
object_dir = ``objects/``); its names are the ``images/refs`` pointing at it.  Objects that
store metadata itself references (image objects, splitstream objects, their object_refs,
stream_refs and named refs) go to ``store.metadata_objects`` for the orphan scan.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from inspector.errors import StoreError
from inspector.stores import fsutil
from inspector.stores.model import Layer, Ref, Store, StoreImage, Stream
from inspector.stores.splitstream import object_name, read_splitstream

ALGORITHMS = {"fsverity-sha256-12": "fsverity-sha256", "fsverity-sha512-12": "fsverity-sha512"}
_OBJ_NAME = re.compile(r"^[0-9a-f]{2}/(?:[0-9a-f]{62}|[0-9a-f]{126})$")


class _Repo:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.real = Path(os.path.realpath(self.root))
        self.objects = self.root / "objects"

    def resolve_object(self, link: Path) -> tuple[str | None, str | None]:
        """(object name, problem) for an entry that must lead to ``objects/xx/rest``."""
        rel_link = link.relative_to(self.root)
        shown = f"{rel_link} -> {fsutil.safe_text(fsutil.link_target(link) or '?')}"
        try:
            target = fsutil.resolve_within(self.real, self.real / rel_link)
        except fsutil.Escape as e:
            return None, f"{shown}: {e}; not followed"
        try:
            inner = target.relative_to(self.real / "objects").as_posix()
        except ValueError:
            return None, f"{shown}: does not lead into objects/"
        if not _OBJ_NAME.match(inner):
            return None, f"{shown}: {fsutil.safe_text(inner)} is not an object name"
        try:
            st = os.lstat(target)
        except OSError as e:
            return None, f"{shown}: {e.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return None, f"{shown}: object is not a regular file"
        return inner, None

    def first_hop(self, link: Path, entries_dir: Path) -> tuple[str | None, str | None]:
        """For a refs/ symlink: the entry name in *entries_dir* it points at, or a problem."""
        rel_link = link.relative_to(self.root)
        target = fsutil.link_target(link)
        shown = f"{rel_link} -> {fsutil.safe_text(target or '?')}"
        if target is None:
            return None, f"{rel_link}: not a symlink"
        # resolve the link's directory (refs/ itself could be a symlink) inside the root
        try:
            parent = fsutil.resolve_within(self.real, self.real / rel_link.parent)
        except fsutil.Escape as e:
            return None, f"{shown}: {e}; not followed"
        if os.path.isabs(target):
            dest = Path(os.path.normpath(target))
        else:
            dest = Path(os.path.normpath(parent / target))
        try:
            dest.relative_to(self.real)
        except ValueError:
            return None, f"{shown}: points outside the repository; not followed"
        real_entries = self.real / entries_dir.relative_to(self.root)
        if dest.parent != real_entries:
            return None, f"{shown}: does not point at an entry of {entries_dir.name}/"
        if not fsutil.lexists(dest):
            return None, f"{shown}: dangling"
        return dest.name, None

    def object_size(self, digest: bytes) -> int | None:
        try:
            st = os.lstat(self.objects / object_name(digest))
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None


def _read_refs(repo, entries_dir: Path, kind: str, valid, store: Store) -> list[Ref]:
    """The refs under ``<entries_dir>/refs``: each must name a valid entry of *entries_dir*
    (images/ or streams/) in one hop inside the repository; others become store problems."""
    out: list[Ref] = []
    top = entries_dir.name
    for link in _walk_links(entries_dir / "refs", store.problems, repo.root):
        refname = link.relative_to(entries_dir / "refs").as_posix()
        target, problem = repo.first_hop(link, entries_dir)
        if problem:
            store.problems.append(problem)
            continue
        if target not in valid:
            store.problems.append(f"{top}/refs/{refname}: target {top}/{target} is not a "
                                  f"valid {kind} entry")
            continue
        ref = Ref(name=refname, target=target, kind=kind, path=link)
        store.refs.append(ref)
        out.append(ref)
    return out


def _walk_links(top: Path, problems: list[str], root: Path) -> list[Path]:
    """Every non-directory entry under *top*, never descending through a symlink."""
    out: list[Path] = []
    if not fsutil.is_dir(top):
        if fsutil.lexists(top):
            problems.append(f"{top.relative_to(root)} is not a directory; not followed")
        return out
    for dirpath, dirnames, filenames in fsutil.walk(top):     # O_NOATIME listing
        dirnames.sort()
        for n in sorted(filenames + [d for d in dirnames if os.path.islink(Path(dirpath) / d)]):
            out.append(Path(dirpath) / n)
        dirnames[:] = [d for d in dirnames if not os.path.islink(Path(dirpath) / d)]
    return sorted(out)


def _read_meta(repo: _Repo) -> dict | None:
    path = repo.root / "meta.json"
    if not fsutil.lexists(path):
        return None
    meta = fsutil.read_json(path)
    if not isinstance(meta, dict):
        raise StoreError("meta.json is not a JSON object", path=path)
    return meta


def _infer_hash_len(repo: _Repo) -> int | None:
    """From image entry names (64/128 hex), else from the first object file name."""
    for name in fsutil.listdir(repo.root / "images"):
        if len(name) in (64, 128):
            return len(name) // 2
    for d in fsutil.listdir(repo.objects):
        for n in fsutil.listdir(repo.objects / d):
            if len(n) in (62, 126):
                return (len(n) + 2) // 2
    return None


def open_repository(root: Path) -> Store:
    repo = _Repo(root)
    store = Store(kind="composefs-rs", path=repo.root, object_naming="fsverity-sha512")
    meta = _read_meta(repo)
    hash_len: int | None = None
    if meta is not None:
        store.details["meta"] = meta
        alg = meta.get("algorithm")
        if isinstance(alg, str) and alg in ALGORITHMS:   # JSON may hold a list or object here
            store.object_naming = ALGORITHMS[alg]  # type: ignore[assignment]
            hash_len = 32 if alg == "fsverity-sha256-12" else 64
        else:
            store.problems.append(f"meta.json: unknown algorithm {fsutil.safe_text(str(alg))!r}; "
                                  "inferred from object names")
        if meta.get("version") != 1:
            store.problems.append(f"meta.json: unknown version {meta.get('version')!r}")
    if hash_len is None:
        hash_len = _infer_hash_len(repo)
        if hash_len is not None:
            store.object_naming = "fsverity-sha256" if hash_len == 32 else "fsverity-sha512"
    store.details["algorithm"] = store.object_naming
    store.object_dirs.append(repo.objects)

    # images/
    images_dir = repo.root / "images"
    image_objects: dict[str, str] = {}
    for name in fsutil.listdir(images_dir):
        if name == "refs":
            continue
        obj, problem = repo.resolve_object(images_dir / name)
        if problem:
            store.problems.append(problem)
            continue
        if obj.replace("/", "") != name:
            store.problems.append(f"images/{name}: names object {obj}, not its own digest")
        image_objects[name] = obj
        store.metadata_objects.add(obj)
    names: dict[str, list[str]] = {k: [] for k in image_objects}
    for ref in _read_refs(repo, images_dir, "image", image_objects, store):
        names[ref.target].append(ref.name)
    for img_id, obj in image_objects.items():
        store.layers[img_id] = Layer(id=img_id, parent=None, composefs=True,
                                     blob=repo.objects / obj, object_dir=repo.objects)
        store.images.append(StoreImage(id=img_id, names=tuple(sorted(names[img_id])),
                                       layers=(img_id,)))

    # streams/
    streams_dir = repo.root / "streams"
    stream_names: set[str] = set()
    gens: set[str] = set()
    for name in fsutil.listdir(streams_dir):
        if name == "refs":
            continue
        obj, problem = repo.resolve_object(streams_dir / name)
        if problem:
            store.problems.append(problem)
            continue
        stream_names.add(name)
        store.metadata_objects.add(obj)
        stream = _read_stream(repo, name, obj, hash_len)
        if stream.problems:
            store.problems.extend(f"streams/{name}: {p}" for p in stream.problems)
        if stream.generation:
            gens.add(stream.generation)
        store.streams.append(stream)
        store.metadata_objects.update(stream.object_refs)
        store.metadata_objects.update(stream.stream_refs)
        for _n, digest in stream.named_refs:
            store.metadata_objects.add(f"{digest[:2]}/{digest[2:]}")
    _read_refs(repo, streams_dir, "stream", stream_names, store)

    store.details["generation"] = _generation(meta, store, gens)
    if store.details["generation"] != "C":
        store.notes.append(f"old repository format (generation {store.details['generation']}, "
                           "no meta.json): read as is; cfsctl would upgrade it in place")
    # names in these lines come from the store: escape control bytes for the terminal
    store.problems[:] = [fsutil.safe_text(x) for x in store.problems]
    store.notes[:] = [fsutil.safe_text(x) for x in store.notes]
    return store


def _generation(meta: dict | None, store: Store, gens: set[str]) -> str:
    if meta is not None:
        return "C"
    if "A" in gens or any(re.fullmatch(r"[0-9a-f]{64}", s.name) for s in store.streams):
        return "A"
    if "B" in gens or any(s.name.startswith("oci-") for s in store.streams):
        return "B"
    return "A or B"


def _read_stream(repo: _Repo, name: str, obj: str, hash_len: int | None) -> Stream:
    path = repo.objects / obj
    if hash_len is None:
        hash_len = (len(obj) - 1) // 2
    try:
        info = read_splitstream(path, hash_len=hash_len, object_size=repo.object_size)
    except StoreError as e:
        return Stream(name=name, object=path, content_type=0, content_type_text="?",
                      stream_size=None, object_refs=(), problems=(str(e),))
    return Stream(
        name=name, object=path, content_type=info.content_type,
        content_type_text=info.content_type_text, stream_size=info.stream_size,
        object_refs=tuple(object_name(r) for r in info.object_refs),
        stream_refs=tuple(object_name(r) for r in info.stream_refs),
        named_refs=info.named_refs, inline_chunks=info.inline_chunks,
        external_chunks=info.external_chunks, generation=info.generation,
        problems=info.problems,
    )
