"""One model for every store kind: Store -> StoreImage -> Layer -> composefs image -> inodes.

Discovery (``inspector.stores.discover``) fills these from a containers/storage graphroot, a
composefs-rs repository, an ostree sysroot/repo, or a bare image with ``--basedir``.  The
analysis layer (verify, dedup, refs) and the TUI consume only this model, never the raw layout,
so a new store kind needs only a new discovery module.

Kinds and what a *layer* is in each:

* ``containers-storage``: a layer of ``overlay-layers/layers.json``; composefs layers carry a
  blob (``overlay/<id>/composefs-data/composefs.blob``) and their object dir is ``overlay/<id>/diff``.
* ``composefs-rs``: each EROFS image of ``images/`` is one image with one layer whose blob is the
  image object and whose object dir is ``objects/``.
* ``ostree``: each deployment with ``.ostree.cfs`` is one image with one layer; object dir
  ``repo/objects``.
* ``image``: a bare image file; object dir from ``--basedir`` (may be None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

StoreKind = Literal["containers-storage", "composefs-rs", "ostree", "image"]

#: How payload names relate to object content, which decides how verify checks an object.
#: - "sha256-content": name is the sha256 of the content (containers/storage)
#: - "fsverity-sha256" / "fsverity-sha512": name is the fs-verity digest (composefs-rs, mkcomposefs)
#: - "ostree": name is ostree's content checksum + ".file" (checked only through DIGEST)
#: - "unknown": arbitrary payloads (bare image): check DIGEST only
ObjectNaming = Literal["sha256-content", "fsverity-sha256", "fsverity-sha512", "ostree", "unknown"]


@dataclass(frozen=True, slots=True)
class Layer:
    """A unit that owns one composefs image (blob) and/or one object directory."""

    id: str
    parent: str | None
    composefs: bool
    blob: Path | None            # the composefs image file of this layer, if any
    object_dir: Path | None      # where this layer's objects live (diff/, objects/, basedir)
    names: tuple[str, ...] = ()
    created: str | None = None
    diff_digest: str | None = None
    diff_size: int | None = None
    #: Discovery-time problems, one line each (marker disagreement, blob missing, unreadable...).
    problems: tuple[str, ...] = ()
    #: Anything else from the store's metadata worth showing (raw JSON values).
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StoreImage:
    """A named image: its layer stack, top to bottom."""

    id: str
    names: tuple[str, ...]
    layers: tuple[str, ...]      # layer ids, top first
    digest: str | None = None
    created: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.names[0] if self.names else self.id[:12]


@dataclass(frozen=True, slots=True)
class Stream:
    """A composefs-rs splitstream (e.g. an OCI layer tar kept for export)."""

    name: str                    # entry under streams/ (e.g. "oci-layer-sha256:<hex>")
    object: Path                 # the object file holding the splitstream
    content_type: int
    content_type_text: str       # content_type as 8 ASCII bytes when printable, else hex
    stream_size: int | None
    object_refs: tuple[str, ...]             # object names "xx/yyyy..." referenced
    stream_refs: tuple[str, ...] = ()
    named_refs: tuple[tuple[str, str], ...] = ()
    inline_chunks: int = 0
    external_chunks: int = 0
    #: Splitstream header generation: "A" (whole-file zstd), "B" (reordered header), "C" (current).
    generation: str = ""
    #: Problems found while walking the stream (corrupt chunk, size mismatch...), one line each.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ref:
    """A named reference (images/refs/..., streams/refs/..., ostree refs)."""

    name: str
    target: str                  # what it resolves to (image id / stream name / commit)
    kind: Literal["image", "stream", "commit"]
    #: The symlink or ref file this ref was read from (None when synthesised).
    path: Path | None = None


@dataclass(slots=True)
class Store:
    """A discovered store.  Mutable only while discovery builds it."""

    kind: StoreKind
    path: Path                   # the root given or found (graphroot, repo dir, sysroot, image file)
    object_naming: ObjectNaming
    images: list[StoreImage] = field(default_factory=list)
    layers: dict[str, Layer] = field(default_factory=dict)
    streams: list[Stream] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    #: Object directories whose every file is an object of this store (for orphan scans).
    object_dirs: list[Path] = field(default_factory=list)
    #: Objects that are referenced by store metadata itself, not by image payloads
    #: (composefs-rs image objects and splitstream objects/object_refs), as "xx/yyyy" names.
    metadata_objects: set[str] = field(default_factory=set)
    #: Whether unreferenced objects are orphans in this store kind (False for ostree).
    orphans_apply: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Kind-specific facts worth showing, JSON-able (composefs-rs meta.json and generation,
    #: ostree repo mode, ...).  Never needed to interpret the rest of the model.
    details: dict[str, object] = field(default_factory=dict)

    def image_layers(self, image: StoreImage) -> list[Layer]:
        return [self.layers[i] for i in image.layers if i in self.layers]

    def images_using(self, layer_id: str) -> list[StoreImage]:
        return [im for im in self.images if layer_id in im.layers]

    def object_search_dirs(self, image: StoreImage) -> list[Path]:
        """Where an object of *image* may be served from at mount time, in overlay order.

        containers/storage appends every composefs layer's diff/ of the stack as data-only
        lowers, top first; other kinds have one object directory.
        """
        out: list[Path] = []
        for layer in self.image_layers(image):
            if layer.composefs and layer.object_dir is not None and layer.object_dir not in out:
                out.append(layer.object_dir)
        return out
