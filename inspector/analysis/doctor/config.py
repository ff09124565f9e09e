"""The effective containers storage configuration, with the file and line behind each value.

Load order (containers-storage.conf(5) FILES and containers-config(5) "Load Order", as in
container-libs; stores.md §2.1):

* ``CONTAINERS_STORAGE_CONF`` set: that file alone replaces every other file.
* Otherwise **one** main file, the highest-precedence one that exists, of
  ``/usr/share/containers/storage.conf`` < ``/etc/containers/storage.conf`` <
  ``$XDG_CONFIG_HOME/containers/storage.conf`` (or ``~/.config/…``; the man page says the
  home lookup "is also done as root").  A higher main file *replaces* the lower ones, it does
  not merge with them.
* Then drop-ins (``*.conf`` only) from ``storage.conf.d/``, ``storage.rootful.conf.d/`` (uid 0)
  or ``storage.rootless.conf.d/`` and ``storage.rootless.conf.d/<UID>/`` (uid > 0), under
  ``/usr/share/containers``, then ``/etc/containers``, then the user's ``storage.conf.d/``.
  They are applied sorted by file name; of two drop-ins with the same name only the
  higher-precedence one is read.  Each sets only the keys it contains, overriding earlier ones.

Values are reported as written (containers/storage "string bools" such as
``use_composefs = "true"`` stay strings) with ``file:line`` of the assignment that won.  TOML is
parsed with :mod:`tomllib`; line numbers come from scanning the text for the key within its
table, because tomllib keeps no positions.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from typing import Any

from .host import Host
from .model import ConfigValue, Finding, StorageConfig

SYSTEM_DIRS = ("/usr/share/containers", "/etc/containers")

ENABLE_PARTIAL_NOTE = ("code default false; the shipped storage.conf leaves it commented out and "
                       "the zstd:chunked doc calls it enabled by default (stores.md §2.1)")


@dataclass(frozen=True, slots=True)
class _Key:
    path: str
    kind: str            # "str", "strbool", "list"


KEYS = (
    _Key("storage.driver", "str"),
    _Key("storage.graphroot", "str"),
    _Key("storage.runroot", "str"),
    _Key("storage.imagestore", "str"),
    _Key("storage.options.additionalimagestores", "list"),
    _Key("storage.options.overlay.use_composefs", "strbool"),
    _Key("storage.options.overlay.mount_program", "str"),
    _Key("storage.options.pull_options.enable_partial_images", "strbool"),
    _Key("storage.options.pull_options.convert_images", "strbool"),
    _Key("storage.options.pull_options.use_hard_links", "strbool"),
    _Key("storage.options.pull_options.ostree_repos", "str"),
)

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(value: Any) -> bool | None:
    """Go's strconv.ParseBool, which containers/storage applies to its string bools."""
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    return None


def defaults(host: Host) -> dict[str, Any]:
    """Built-in values when no file sets a key (containers-storage.conf(5))."""
    if host.rootless:
        data = host.data_home()
        graphroot = os.path.join(data, "containers", "storage") if data else ""
        rt = host.env.get("XDG_RUNTIME_DIR")
        runroot = (os.path.join(rt, "containers") if rt
                   else f"/tmp/storage-run-{host.uid}/containers")
    else:
        graphroot = "/var/lib/containers/storage"
        runroot = "/run/containers/storage"
    return {
        "storage.driver": "",
        "storage.graphroot": graphroot,
        "storage.runroot": runroot,
        "storage.imagestore": "",
        "storage.options.additionalimagestores": (),
        "storage.options.overlay.use_composefs": "false",
        "storage.options.overlay.mount_program": "",
        "storage.options.pull_options.enable_partial_images": "false",
        "storage.options.pull_options.convert_images": "false",
        "storage.options.pull_options.use_hard_links": "false",
        "storage.options.pull_options.ostree_repos": "",
    }


# --- locating the files -----------------------------------------------------------------------

def user_config_dir(host: Host) -> str | None:
    ch = host.config_home()
    return os.path.join(ch, "containers") if ch else None


def main_candidates(host: Host) -> list[str]:
    """Main files, lowest precedence first."""
    out = [f"{d}/storage.conf" for d in SYSTEM_DIRS]
    u = user_config_dir(host)
    if u:
        out.append(os.path.join(u, "storage.conf"))
    return out


def dropin_dirs(host: Host) -> list[str]:
    """Drop-in directories, lowest precedence first."""
    out: list[str] = []
    for d in SYSTEM_DIRS:
        out.append(f"{d}/storage.conf.d")
        if host.uid == 0:
            out.append(f"{d}/storage.rootful.conf.d")
        else:
            out.append(f"{d}/storage.rootless.conf.d")
            out.append(f"{d}/storage.rootless.conf.d/{host.uid}")
    u = user_config_dir(host)
    if u:
        out.append(os.path.join(u, "storage.conf.d"))
    return out


def _is_file(host: Host, p: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(host.path(p)).st_mode)
    except OSError:
        return False


def find_files(host: Host) -> tuple[list[str], list[str]]:
    """Return (files to load in order, files present but not read, with the reason)."""
    skipped: list[str] = []
    env_file = host.env.get("CONTAINERS_STORAGE_CONF")
    if env_file:
        for c in main_candidates(host):
            if _is_file(host, c):
                skipped.append(f"{c} (replaced by CONTAINERS_STORAGE_CONF)")
        return [env_file], skipped
    mains = [c for c in main_candidates(host) if _is_file(host, c)]
    files: list[str] = []
    if mains:
        files.append(mains[-1])
        skipped.extend(f"{c} (replaced by {mains[-1]})" for c in mains[:-1])
    chosen: dict[str, str] = {}          # file name -> highest-precedence path
    for d in dropin_dirs(host):
        try:
            names = os.listdir(host.path(d))
        except OSError:
            continue
        for n in names:
            p = f"{d}/{n}"
            if not n.endswith(".conf") or not _is_file(host, p):
                continue
            if n in chosen:
                skipped.append(f"{chosen[n]} (replaced by {p})")
            chosen[n] = p
    files.extend(chosen[n] for n in sorted(chosen))
    return files, skipped


# --- line numbers -----------------------------------------------------------------------------

_KEYPART = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_KEY_RE = re.compile(rf'^\s*({_KEYPART}(?:\s*\.\s*{_KEYPART})*)\s*=')
_TABLE_RE = re.compile(rf'^\s*\[\s*({_KEYPART}(?:\s*\.\s*{_KEYPART})*)\s*\]\s*(?:#.*)?$')
_SPLIT_RE = re.compile(_KEYPART)


def _split(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _SPLIT_RE.findall(dotted)]


def key_lines(text: str) -> dict[str, int]:
    """Map each full dotted key (and table header) to its 1-based line number."""
    out: dict[str, int] = {}
    table: list[str] | None = []
    for no, line in enumerate(text.splitlines(), 1):
        m = _TABLE_RE.match(line)
        if m:
            table = _split(m.group(1))
            out.setdefault(".".join(table), no)
            continue
        if line.lstrip().startswith("[["):
            table = None   # arrays of tables hold no storage keys
            continue
        m = _KEY_RE.match(line)
        if m and table is not None:
            out.setdefault(".".join(table + _split(m.group(1))), no)
    return out


def _line_for(lines: dict[str, int], key: str) -> int | None:
    parts = key.split(".")
    while parts:        # an inline table assigns the key on its parent's line
        n = lines.get(".".join(parts))
        if n is not None:
            return n
        parts.pop()
    return None


def _lookup(data: dict[str, Any], key: str) -> tuple[bool, Any]:
    cur: Any = data
    for p in key.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return False, None
        cur = cur[p]
    return True, cur


# --- loading ----------------------------------------------------------------------------------

def _expand(host: Host, value: str) -> str:
    """$VAR / ${VAR} substitution with the host's environment (graphroot, runroot)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return host.env.get(name, m.group(0))
    return re.sub(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))", sub, value)


def load(host: Host) -> tuple[StorageConfig, list[Finding]]:
    """Read the effective configuration; problems with the files become findings."""
    findings: list[Finding] = []
    files, skipped = find_files(host)
    defs = defaults(host)
    current: dict[str, tuple[Any, str, str]] = {}      # key -> (value, source, note)
    loaded: list[str] = []
    for f in files:
        text = host.read_text(f)
        if text is None:
            if host.env.get("CONTAINERS_STORAGE_CONF") == f:
                findings.append(Finding(
                    "warning", "config",
                    f"CONTAINERS_STORAGE_CONF names {f}, which cannot be read; built-in defaults apply",
                    "environment CONTAINERS_STORAGE_CONF",
                    "point CONTAINERS_STORAGE_CONF at a readable storage.conf or unset it"))
            else:
                findings.append(Finding("warning", "config", f"cannot read {f}", f,
                                        "check the file's permissions"))
            continue
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            findings.append(Finding(
                "error", "config", f"invalid TOML, file ignored here: {e}", f,
                "fix the syntax: containers/storage cannot use this file either"))
            continue
        loaded.append(f)
        lines = key_lines(text)
        for k in KEYS:
            present, value = _lookup(data, k.path)
            if not present:
                continue
            line = _line_for(lines, k.path)
            src = f"{f}:{line}" if line else f
            note = ""
            if k.kind == "strbool":
                if isinstance(value, bool):
                    note = ("TOML boolean where containers/storage requires the string "
                            f'"{str(value).lower()}"')
                    findings.append(Finding(
                        "error", "config",
                        f"{k.path.rsplit('.', 1)[-1]} = {str(value).lower()} is a TOML boolean; "
                        "containers/storage only accepts a string bool here", src,
                        f'write {k.path.rsplit(".", 1)[-1]} = "{str(value).lower()}" (quoted)'))
                elif parse_bool(value) is None:
                    note = f"not a boolean: {value!r}"
                    findings.append(Finding(
                        "error", "config",
                        f"{k.path.rsplit('.', 1)[-1]} = {value!r} is not a boolean", src,
                        'use "true" or "false"'))
            elif k.kind == "list":
                if isinstance(value, list):
                    value = tuple(str(v) for v in value)
                else:
                    note = f"expected a list, found {type(value).__name__}"
                    value = (str(value),)
            elif not isinstance(value, str):
                note = f"expected a string, found {type(value).__name__}"
                value = str(value)
            current[k.path] = (value, src, note)

    # STORAGE_OPTS adds additional image stores (stores.md §2.1).
    opts = host.env.get("STORAGE_OPTS", "")
    extra = tuple(o.split("=", 1)[1] for o in re.split(r"[,\s]+", opts)
                  if o.startswith("additionalimagestore="))
    if extra:
        key = "storage.options.additionalimagestores"
        prev = current.get(key, (defs[key], "default", ""))[0]
        current[key] = (tuple(prev) + extra, "environment STORAGE_OPTS", "")

    values = []
    for k in KEYS:
        if k.path in current:
            value, src, note = current[k.path]
        else:
            value, src, note = defs[k.path], "default", ""
        if k.path.endswith("enable_partial_images") and src == "default":
            note = ENABLE_PARTIAL_NOTE
        if k.path.endswith("driver") and src == "default":
            note = "unset: containers/storage picks a driver (overlay where the kernel has it)"
        if k.path in ("storage.graphroot", "storage.runroot") and isinstance(value, str):
            expanded = _expand(host, value)
            if expanded != value:
                note = f"expands to {expanded}"
                value = expanded
        values.append(ConfigValue(k.path, value, src, defs[k.path], note))
    return (StorageConfig(tuple(loaded), tuple(skipped), tuple(values), host.rootless, host.uid),
            findings)


def effective_bool(cfg: StorageConfig, name: str) -> bool:
    """The boolean containers/storage acts on; invalid values count as the default (false)."""
    v = cfg.get(name)
    b = parse_bool(v.value)
    if b is None:
        b = parse_bool(v.default)
    return bool(b)
