"""Host probes: runtime helpers on PATH, kernel support, fs-verity on the store's filesystem.

Each probe returns a small frozen result; :mod:`report` turns results into findings, because
how serious a gap is depends on whether composefs is configured at all.

Kernel versions quoted here, all mainline (distribution kernels may backport, e.g. CentOS
Stream 9 carries data-only lowers and overlay verity on 5.14):

* EROFS chunk-based files, needed for composefs images: 5.15 (composefs/composefs#147);
* overlayfs data-only lower layers (``lowerdir=a::data``): 6.5 (composefs#147, kernel commit
  37ebf056 "ovl: introduce data-only lower layers");
* overlayfs fs-verity validation of metacopy files (``verity=``): 6.6 (composefs#147);
* EROFS mounted directly from a file, no loop device: 6.12 (stores.md §2.6).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import struct
import subprocess
from dataclasses import dataclass

from .host import Host

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- runtime ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    path: str | None          # host path of the executable, None when not on PATH
    version: str | None       # first line of `--version` when it reports one
    version_note: str         # why there is no version ("not probed", "no --version", ...)
    searched: str             # the PATH that was searched

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "version": self.version,
                "version_note": self.version_note}


def find_executable(host: Host, name: str) -> tuple[str | None, str]:
    """First ``name`` on the host's PATH that is an executable regular file."""
    search = host.env.get("PATH") or DEFAULT_PATH
    for d in search.split(":"):
        if not d or not os.path.isabs(d):
            continue   # relative PATH entries depend on a cwd we do not know
        hp = os.path.join(d, name)
        local = host.path(hp)
        try:
            st = os.stat(local)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(local, os.X_OK):
            return hp, search
    return None, search


_VERSION_RE = re.compile(r"\d+\.\d+(?:\.\d+)?")


def tool_version(local_path: str, timeout: float = 3.0) -> tuple[str | None, str]:
    """Run ``TOOL --version``; mkcomposefs releases without that option just print usage.

    Returns (version line or None, note).  Only a zero exit status with a version-like token on
    the first line counts, so a usage message is never mistaken for a version.
    """
    try:
        cp = subprocess.run([local_path, "--version"], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=timeout,
                            env={"PATH": DEFAULT_PATH, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        return None, f"--version did not answer within {timeout:g}s"
    except OSError as e:
        return None, f"cannot run: {e.strerror}"
    out = (cp.stdout or cp.stderr).decode("utf-8", "replace").strip()
    first = out.splitlines()[0] if out else ""
    if cp.returncode == 0 and _VERSION_RE.search(first):
        return _printable(first[:120]), ""
    return None, "does not report a version (no --version option)"


def _printable(s: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in s)


def probe_tools(host: Host, run_versions: bool) -> dict[str, Tool]:
    out = {}
    for name in ("mkcomposefs", "composefs-info", "fsverity"):
        path, searched = find_executable(host, name)
        version, note = None, ""
        if path is None:
            note = "not found"
        elif name == "mkcomposefs":
            if run_versions:
                version, note = tool_version(host.path(path))
            else:
                note = "version not probed outside the live host"
        out[name] = Tool(name, path, version, note, searched)
    return out


# --- kernel -----------------------------------------------------------------------------------

FEATURES = (
    # key, minimum (major, minor), description, source
    ("erofs_chunked_files", (5, 15), "EROFS chunk-based files (composefs images)",
     "composefs/composefs#147"),
    ("overlay_data_only_lowers", (6, 5), "overlayfs data-only lower layers",
     "composefs/composefs#147"),
    ("overlay_verity", (6, 6), "overlayfs fs-verity validation (verity=)",
     "composefs/composefs#147"),
    ("erofs_file_backed", (6, 12), "EROFS mounts straight from the blob file (no loop device)",
     "stores.md §2.6"),
)

# filesystem name -> (module file stem, directory under kernel/fs/)
_MODULES = {"erofs": ("erofs", "erofs"), "overlay": ("overlay", "overlayfs")}


@dataclass(frozen=True, slots=True)
class FsSupport:
    name: str
    registered: bool              # listed in /proc/filesystems
    module: str | None            # "loadable" / "builtin" / None
    module_source: str            # the file that said so

    @property
    def available(self) -> bool:
        return self.registered or self.module is not None

    def to_json(self) -> dict:
        return {"registered": self.registered, "module": self.module,
                "module_source": self.module_source, "available": self.available}


@dataclass(frozen=True, slots=True)
class KernelInfo:
    release: str | None
    version: tuple[int, int] | None
    filesystems_read: bool        # /proc/filesystems was readable
    fs: dict[str, FsSupport]
    loop_control: bool
    features: dict[str, bool | None]   # None = unknown (no version)

    def to_json(self) -> dict:
        return {"release": self.release,
                "version": list(self.version) if self.version else None,
                "filesystems_read": self.filesystems_read,
                "filesystems": {k: v.to_json() for k, v in self.fs.items()},
                "loop_control": self.loop_control,
                "features": dict(self.features)}


def parse_release(release: str | None) -> tuple[int, int] | None:
    if not release:
        return None
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _module_state(host: Host, release: str | None, fs: str) -> tuple[str | None, str]:
    if not release:
        return None, ""
    stem, subdir = _MODULES[fs]
    rel = f"kernel/fs/{subdir}/{stem}.ko"
    for base in (f"/lib/modules/{release}", f"/usr/lib/modules/{release}"):
        text = host.read_text(f"{base}/modules.dep", limit=64 << 20)
        if text is not None:
            for line in text.splitlines():
                name = line.split(":", 1)[0]
                if name.startswith(rel):   # .ko, .ko.xz, .ko.zst, .ko.gz
                    return "loadable", f"{base}/modules.dep"
        text = host.read_text(f"{base}/modules.builtin", limit=16 << 20)
        if text is not None and any(l.strip() == rel for l in text.splitlines()):
            return "builtin", f"{base}/modules.builtin"
        d = f"{base}/kernel/fs/{subdir}"
        try:
            if any(n.startswith(stem + ".ko") for n in os.listdir(host.path(d))):
                return "loadable", d + "/"
        except OSError:
            pass
    return None, ""


def probe_kernel(host: Host) -> KernelInfo:
    rel_text = host.read_text("/proc/sys/kernel/osrelease")
    release = rel_text.strip() if rel_text else None
    version = parse_release(release)
    fstext = host.read_text("/proc/filesystems")
    names = set()
    if fstext:
        for line in fstext.splitlines():
            parts = line.split()
            if parts:
                names.add(parts[-1])
    fs = {}
    for name in ("erofs", "overlay"):
        mod, src = _module_state(host, release, name)
        fs[name] = FsSupport(name, name in names, mod, src)
    loop = host.exists("/dev/loop-control")
    feats = {key: (None if version is None else version >= minimum)
             for key, minimum, _d, _s in FEATURES}
    return KernelInfo(release, version, fstext is not None, fs, loop, feats)


# --- fs-verity --------------------------------------------------------------------------------

FS_IOC_GETFLAGS = 0x80086601         # _IOR('f', 1, long)
FS_IOC_MEASURE_VERITY = 0xC0046686   # _IOWR('f', 134, struct fsverity_digest)
FS_VERITY_FL = 0x00100000
_ALGS = {1: "sha256", 2: "sha512"}
_O_NOATIME = getattr(os, "O_NOATIME", 0)
# Named explicitly: errno.errorcode calls 95 "ENOTSUP", the kernel docs say EOPNOTSUPP.
_UNSUPPORTED = {errno.EOPNOTSUPP: "EOPNOTSUPP", errno.ENOTTY: "ENOTTY", errno.EINVAL: "EINVAL"}


@dataclass(frozen=True, slots=True)
class VerityProbe:
    """The kernel's view of one file.

    status: "enabled" (digest measured), "not-enabled" (ENODATA: the filesystem handles
    fs-verity but this file has none), "unsupported" (EOPNOTSUPP/ENOTTY: the filesystem has no
    fs-verity), "unreadable" (cannot open), "skipped" (not a regular file: never opened).
    """

    path: str
    status: str
    flag: bool | None             # FS_VERITY_FL from FS_IOC_GETFLAGS, None when unavailable
    algorithm: str | None = None
    digest: str | None = None
    error: str = ""

    def to_json(self) -> dict:
        return {"path": self.path, "status": self.status, "flag": self.flag,
                "algorithm": self.algorithm, "digest": self.digest, "error": self.error}


def probe_verity(path: str, shown: str | None = None) -> VerityProbe:
    """Probe one file read-only with FS_IOC_GETFLAGS and FS_IOC_MEASURE_VERITY.

    Only regular files are opened (lstat first, O_NOFOLLOW|O_NONBLOCK so a file swapped for a
    fifo or symlink in between neither blocks nor redirects).
    """
    shown = shown or path
    try:
        st = os.lstat(path)
    except OSError as e:
        return VerityProbe(shown, "unreadable", None, error=e.strerror or str(e))
    if not stat.S_ISREG(st.st_mode):
        return VerityProbe(shown, "skipped", None, error="not a regular file")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | _O_NOATIME) if _O_NOATIME else os.open(path, flags)
        except PermissionError:
            fd = os.open(path, flags)
    except OSError as e:
        return VerityProbe(shown, "unreadable", None, error=e.strerror or str(e))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return VerityProbe(shown, "skipped", None, error="not a regular file")
        flag: bool | None
        try:
            buf = bytearray(8)
            fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
            flag = bool(struct.unpack_from("=i", buf)[0] & FS_VERITY_FL)
        except OSError:
            flag = None
        buf = bytearray(struct.pack("=HH", 0, 64) + bytes(64))
        try:
            fcntl.ioctl(fd, FS_IOC_MEASURE_VERITY, buf)
        except OSError as e:
            if e.errno == errno.ENODATA:
                return VerityProbe(shown, "not-enabled", flag)
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
                return VerityProbe(shown, "unsupported", flag, error=_UNSUPPORTED[e.errno])
            return VerityProbe(shown, "unreadable", flag, error=e.strerror or str(e))
        alg, size = struct.unpack_from("=HH", buf)
        size = min(size, 64)
        return VerityProbe(shown, "enabled", True if flag is None else flag,
                           _ALGS.get(alg, f"algorithm {alg}"), bytes(buf[4:4 + size]).hex())
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class VeritySummary:
    filesystem: str | None        # fstype of the mount holding the store, when known
    mountpoint: str | None
    probed: tuple[VerityProbe, ...]

    def count(self, status: str) -> int:
        return sum(1 for p in self.probed if p.status == status)

    @property
    def verdict(self) -> str:
        """"enabled", "partial", "not-enabled", "unsupported", "unknown"."""
        usable = [p for p in self.probed if p.status in ("enabled", "not-enabled", "unsupported")]
        if not usable:
            return "unknown"
        if all(p.status == "unsupported" for p in usable):
            return "unsupported"
        en = sum(1 for p in usable if p.status == "enabled")
        if en == len(usable):
            return "enabled"
        return "partial" if en else "not-enabled"

    def to_json(self) -> dict:
        return {"filesystem": self.filesystem, "mountpoint": self.mountpoint,
                "verdict": self.verdict,
                "counts": {s: self.count(s) for s in
                           ("enabled", "not-enabled", "unsupported", "unreadable", "skipped")},
                "samples": [p.to_json() for p in self.probed[:8]]}


def mount_of(host: Host, host_path: str) -> tuple[str | None, str | None]:
    """(fstype, mount point) of the longest mount containing *host_path* (/proc/self/mountinfo)."""
    text = host.read_text("/proc/self/mountinfo", limit=16 << 20)
    if not text:
        return None, None
    best: tuple[str | None, str | None] = (None, None)
    best_len = -1
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 5 or not r:
            continue
        mp = f[4].replace("\\040", " ")
        if host_path == mp or host_path.startswith(mp.rstrip("/") + "/") or mp == "/":
            if len(mp) >= best_len:
                best, best_len = (r[0], mp), len(mp)
    return best


def probe_store_verity(host: Host, store_path: str, local_files: list[tuple[str, str]]) -> VeritySummary:
    """Probe (local path, shown path) pairs of existing store files."""
    fstype, mp = mount_of(host, store_path)
    return VeritySummary(fstype, mp, tuple(probe_verity(lp, shown) for lp, shown in local_files))


def composefs_mounts(host: Host) -> list[str] | None:
    """Mount points of EROFS mounts that containers/storage made for composefs layers.

    ``Driver.get()`` mounts each composefs blob as plain EROFS at ``.../composefs-layers/<N>``
    (stores.md §2.3, §2.6), so such mounts in /proc/self/mountinfo mean containers run from
    composefs right now.  None when mountinfo is unreadable.
    """
    text = host.read_text("/proc/self/mountinfo", limit=16 << 20)
    if text is None:
        return None
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if sep and len(f) >= 5 and r and r[0] == "erofs" and "/composefs-layers/" in f[4]:
            out.append(f[4].replace("\\040", " "))
    return out
