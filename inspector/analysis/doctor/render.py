"""Plain-text rendering of a :class:`DoctorReport` (the default CLI output).

Verdict first, then the effective configuration (value, where it came from), then findings
grouped by topic with their source and advice, then one line per image.  Image names, paths
and config values come from files an attacker may shape, so control bytes are escaped.
"""

from __future__ import annotations

import json
from typing import Any

from .model import DoctorReport, TOPICS

_LABEL = {"ok": "ok", "info": "info", "warning": "WARN", "error": "ERROR"}
_TOPIC = {"config": "Configuration", "runtime": "Runtime", "kernel": "Kernel",
          "fsverity": "fs-verity", "store": "Store"}


def safe(s: Any) -> str:
    s = str(s)
    return "".join(c if (c.isprintable() or c == " ") else f"\\x{ord(c):02x}" for c in s)


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        v = list(v)
    return safe(json.dumps(v, ensure_ascii=False))


def render_text(report: DoctorReport) -> str:
    lines = [safe(report.verdict), ""]
    cfg = report.config
    lines.append("Effective storage configuration"
                 + (f" (uid {cfg.uid}, rootless)" if cfg.rootless else ""))
    if cfg.files:
        lines.append("  files read: " + ", ".join(safe(f) for f in cfg.files))
    else:
        lines.append("  files read: none (built-in defaults)")
    for s in cfg.skipped:
        lines.append(f"  not read:   {safe(s)}")
    for v in cfg.values:
        name = v.key.rsplit(".", 1)[-1]
        src = "default" if v.is_default else safe(v.source)
        line = f"  {name:<22} {_value(v.value):<34} {src}"
        if v.note:
            line += f"  ({safe(v.note)})"
        lines.append(line.rstrip())
    for topic in TOPICS:
        fs = [f for f in report.findings if f.topic == topic]
        if not fs:
            continue
        lines += ["", _TOPIC[topic]]
        for f in fs:
            lines.append(f"  {_LABEL.get(f.severity, f.severity):<5} {safe(f.message)}")
            lines.append(f"        source: {safe(f.source)}")
            if f.advice and f.severity != "ok":
                lines.append(f"        do: {safe(f.advice)}")
    for s in report.stores:
        lines += ["", f"Images in {safe(s.path)} ({safe(s.source)})"]
        if not s.images:
            lines.append("  (none)")
        for im in s.images:
            label = im.names[0] if im.names else im.id[:12]
            lines.append(f"  {safe(label):<40} {im.composefs_layers} of {len(im.layers)} "
                         "layers composefs")
    return "\n".join(lines) + "\n"
