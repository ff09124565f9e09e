"""Output-independent data model of a doctor run.

The CLI prints it, ``--json`` serialises it and the TUI's Health screen renders it; none of
them should have to re-derive anything, so every finding already carries its source (file and
line, probe, path) and the advice that goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Severities, mildest first.  ``warning`` and ``error`` need action (exit 1).
SEVERITIES = ("ok", "info", "warning", "error")
ACTION_SEVERITIES = frozenset({"warning", "error"})

#: Topics in display order.
TOPICS = ("config", "runtime", "kernel", "fsverity", "store")


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation: what was seen, where it came from, what to do about it."""

    severity: str          # one of SEVERITIES
    topic: str             # one of TOPICS
    message: str
    source: str            # "/etc/containers/storage.conf:12", "/proc/filesystems", "PATH", ...
    advice: str = ""       # empty when nothing needs doing

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "topic": self.topic, "message": self.message,
                "source": self.source, "advice": self.advice}


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """An effective storage.conf setting and where it came from.

    ``source`` is ``"file:line"`` of the assignment that won, ``"environment VAR"``, or
    ``"default"``; ``value`` is the value as containers/storage would use it (string bools kept
    as strings, lists as tuples) so the report shows exactly what the file says.
    """

    key: str               # dotted TOML path, e.g. "storage.options.overlay.use_composefs"
    value: Any
    source: str
    default: Any
    note: str = ""

    @property
    def is_default(self) -> bool:
        return self.source == "default"

    def to_json(self) -> dict[str, Any]:
        v = list(self.value) if isinstance(self.value, tuple) else self.value
        d = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"key": self.key, "value": v, "source": self.source, "default": d,
                "note": self.note}


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """The effective containers storage configuration."""

    files: tuple[str, ...]            # files read, in load order (display paths)
    skipped: tuple[str, ...]          # files found but not read (shadowed), with the reason
    values: tuple[ConfigValue, ...]
    rootless: bool
    uid: int

    def get(self, name: str) -> ConfigValue:
        """Look a value up by its last key component ("use_composefs") or full dotted key."""
        for v in self.values:
            if v.key == name or v.key.rsplit(".", 1)[-1] == name:
                return v
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"files": list(self.files), "skipped": list(self.skipped),
                "rootless": self.rootless, "uid": self.uid,
                "values": {v.key.rsplit(".", 1)[-1]: v.to_json() for v in self.values}}


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """Per-layer facts the store findings were drawn from."""

    id: str
    composefs: bool
    blob: str | None          # path relative to the store, None for plain layers
    blob_status: str          # "ok", "missing", "unreadable", "invalid", "none" (plain layer)
    payloads_with_digest: int
    payloads_without_digest: int

    @property
    def usable(self) -> bool:
        """A composefs layer whose blob opened as a composefs image: what counts as "in use"."""
        return self.composefs and self.blob_status == "ok"

    @property
    def digest_coverage(self) -> str:
        """"all" / "some" / "none" / "n/a" (no payloads or no readable blob)."""
        total = self.payloads_with_digest + self.payloads_without_digest
        if not self.composefs or self.blob_status != "ok" or total == 0:
            return "n/a"
        if self.payloads_without_digest == 0:
            return "all"
        return "none" if self.payloads_with_digest == 0 else "some"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "composefs": self.composefs, "blob": self.blob,
                "blob_status": self.blob_status,
                "payloads_with_digest": self.payloads_with_digest,
                "payloads_without_digest": self.payloads_without_digest,
                "digest_coverage": self.digest_coverage}


@dataclass(frozen=True, slots=True)
class ImageSummary:
    id: str
    names: tuple[str, ...]
    layers: tuple[str, ...]        # top to bottom
    composefs_layers: int          # layers with a usable composefs blob

    @property
    def fully_composefs(self) -> bool:
        return bool(self.layers) and self.composefs_layers == len(self.layers)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "names": list(self.names), "layers": list(self.layers),
                "composefs_layers": self.composefs_layers,
                "plain_layers": len(self.layers) - self.composefs_layers,
                "fully_composefs": self.fully_composefs}


@dataclass(frozen=True, slots=True)
class StoreSummary:
    path: str                       # graphroot
    source: str                     # why this store: "argument", "graphroot (config)", ...
    images: tuple[ImageSummary, ...]
    layers: tuple[LayerSummary, ...]

    @property
    def composefs_layer_count(self) -> int:
        return sum(1 for l in self.layers if l.usable)

    @property
    def fully_composefs_images(self) -> int:
        return sum(1 for i in self.images if i.fully_composefs)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source,
                "layers_total": len(self.layers),
                "layers_composefs": self.composefs_layer_count,
                "images_total": len(self.images),
                "images_fully_composefs": self.fully_composefs_images,
                "images": [i.to_json() for i in self.images],
                "layers": [l.to_json() for l in self.layers]}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Everything one doctor run found.  ``verdict`` is the one-line answer."""

    verdict: str
    findings: tuple[Finding, ...]
    config: StorageConfig
    facts: dict[str, Any] = field(default_factory=dict)   # probe results (runtime, kernel, fsverity)
    stores: tuple[StoreSummary, ...] = ()
    root: str = "/"

    @property
    def needs_action(self) -> bool:
        return any(f.severity in ACTION_SEVERITIES for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.needs_action else 0

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "root": self.root,
                "findings": [f.to_json() for f in self.findings],
                "config": self.config.to_json(), **self.facts,
                "stores": [s.to_json() for s in self.stores]}
