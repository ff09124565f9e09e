"""Assemble a doctor run: probes -> findings -> one-line verdict.

The verdict answers "is composefs in use here, and if not, why?" in the order that matters:
the switch (``use_composefs``), then whatever stops containers/storage from acting on it
(rootless, another driver, no ``mkcomposefs``, no EROFS/overlay, no zstd:chunked pull path),
then what the store actually holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from inspector.errors import InspectError, StoreError

from . import config as cfgmod
from . import probes, store_findings
from .host import Host
from .model import DoctorReport, Finding, StorageConfig, StoreSummary, TOPICS, SEVERITIES


def _q(v: object) -> str:
    """A config value as TOML would spell it."""
    return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v).lower()


def _config_findings(cfg: StorageConfig, configured: bool, host: Host) -> list[Finding]:
    out: list[Finding] = []
    if cfg.files:
        out.append(Finding("info", "config", "storage configuration read from "
                           + ", ".join(cfg.files), cfg.files[0]))
    else:
        out.append(Finding("info", "config",
                           "no storage.conf found: containers/storage uses built-in defaults",
                           "default"))
    uc = cfg.get("use_composefs")
    if configured:
        out.append(Finding("ok", "config", f"use_composefs = {_q(uc.value)}", uc.source))
    else:
        what = ("use_composefs is not set (default false)" if uc.is_default
                else f"use_composefs = {_q(uc.value)}")
        out.append(Finding(
            "warning", "config", f"composefs is off: {what}", uc.source,
            'to use composefs set use_composefs = "true" under [storage.options.overlay] '
            "(and enable_partial_images / convert_images under [storage.options.pull_options])"))
    if not configured:
        return out
    if host.rootless:
        out.append(Finding(
            "error", "config",
            f"rootless storage (uid {host.uid}): containers/storage refuses composefs in user "
            "namespaces", "uid",
            "composefs works only for rootful storage (container-libs#117); run as root"))
    drv = cfg.get("driver")
    if drv.value and drv.value != "overlay":
        out.append(Finding("error", "config",
                           f"driver = {_q(drv.value)}: composefs needs the overlay driver",
                           drv.source, 'set driver = "overlay"'))
    ep = cfg.get("enable_partial_images")
    if not cfgmod.effective_bool(cfg, "enable_partial_images"):
        out.append(Finding(
            "error", "config",
            "enable_partial_images is not \"true\": pulls never take the zstd:chunked path that "
            f"produces composefs layers ({'default false' if ep.is_default else _q(ep.value)})",
            ep.source,
            'set enable_partial_images = "true" under [storage.options.pull_options]'))
    cv = cfg.get("convert_images")
    if not cfgmod.effective_bool(cfg, "convert_images"):
        out.append(Finding(
            "info", "config",
            "convert_images is not \"true\": only images already published as zstd:chunked "
            "become composefs layers", cv.source,
            'set convert_images = "true" under [storage.options.pull_options] to convert the '
            "others at pull time (slower pulls)"))
    return out


def _runtime_findings(tools: dict[str, probes.Tool], configured: bool) -> list[Finding]:
    out = []
    mk = tools["mkcomposefs"]
    if mk.path:
        ver = f" ({mk.version})" if mk.version else f" ({mk.version_note})" if mk.version_note else ""
        out.append(Finding("ok", "runtime", f"mkcomposefs found at {mk.path}{ver}", "PATH"))
    else:
        out.append(Finding(
            "error" if configured else "info", "runtime",
            "mkcomposefs not found on PATH" + ("" if configured else
                                               " (needed only with use_composefs)"),
            f"PATH={mk.searched}",
            "install the composefs package (it provides mkcomposefs); containers/storage runs "
            "it at pull time and refuses to start the overlay driver without it"))
    for name in ("composefs-info", "fsverity"):
        t = tools[name]
        if t.path:
            out.append(Finding("ok", "runtime", f"{name} found at {t.path}", "PATH"))
        else:
            out.append(Finding("info", "runtime", f"{name} not found on PATH (optional helper)",
                               f"PATH={t.searched}"))
    return out


def _kernel_findings(k: probes.KernelInfo, configured: bool) -> list[Finding]:
    out = []
    sev_missing = "error" if configured else "info"
    if k.release:
        out.append(Finding("info", "kernel", f"kernel {k.release}", "/proc/sys/kernel/osrelease"))
    else:
        out.append(Finding("info", "kernel", "kernel version unknown",
                           "/proc/sys/kernel/osrelease"))
    for name, label in (("erofs", "EROFS"), ("overlay", "overlayfs")):
        fs = k.fs[name]
        if fs.registered:
            out.append(Finding("ok", "kernel", f"{label} is available", "/proc/filesystems"))
        elif fs.module:
            out.append(Finding("ok", "kernel",
                               f"{label} is available as a {fs.module} module", fs.module_source))
        elif not k.filesystems_read:
            out.append(Finding("info", "kernel", f"{label} support unknown",
                               "/proc/filesystems (unreadable)"))
        else:
            out.append(Finding(
                sev_missing, "kernel",
                f"the kernel has no {label} (not in /proc/filesystems, no {name} module)",
                "/proc/filesystems",
                f"use a kernel built with {label} ({'CONFIG_EROFS_FS' if name == 'erofs' else 'CONFIG_OVERLAY_FS'})"))
    if k.version is None:
        out.append(Finding("info", "kernel",
                           "kernel features unknown (no version): data-only lowers, overlay "
                           "verity, file-backed EROFS", "/proc/sys/kernel/osrelease"))
        return out
    src = "/proc/sys/kernel/osrelease"
    v = f"{k.version[0]}.{k.version[1]}"
    for key, minimum, desc, cite in probes.FEATURES:
        need = f"{minimum[0]}.{minimum[1]}"
        if k.features[key]:
            out.append(Finding("ok", "kernel", f"{desc}: yes (≥ {need})", src))
            continue
        if key == "erofs_chunked_files":
            out.append(Finding(sev_missing, "kernel", f"{desc}: no (kernel {v} < {need}, {cite})",
                               src, "composefs images cannot be mounted: upgrade the kernel"))
        elif key == "overlay_data_only_lowers":
            out.append(Finding("info", "kernel",
                               f"{desc}: not in mainline {v} (< {need}, {cite}); containers/storage "
                               "then adds layer diff/ directories as ordinary lowers", src,
                               "distribution kernels may backport it (CentOS Stream 9 does)"))
        elif key == "overlay_verity":
            out.append(Finding("info", "kernel",
                               f"{desc}: not in mainline {v} (< {need}, {cite})", src,
                               "containers/storage does not pass verity= anyway; mount.composefs "
                               "-o verity needs it"))
        elif key == "erofs_file_backed":
            if k.loop_control:
                out.append(Finding("info", "kernel",
                                   f"{desc}: no (kernel {v} < {need}); blobs are mounted through "
                                   "loop devices, and /dev/loop-control exists", src))
            else:
                out.append(Finding(sev_missing, "kernel",
                                   f"{desc}: no (kernel {v} < {need}) and /dev/loop-control is "
                                   "missing: blobs cannot be mounted", "/dev/loop-control",
                                   "load the loop module (modprobe loop)"))
    return out


def _verity_findings(v: probes.VeritySummary | None, store_path: str | None,
                     fs_hint: tuple[str | None, str | None] = (None, None)) -> list[Finding]:
    if v is None or not v.probed:
        fstype, mp = (v.filesystem, v.mountpoint) if v else fs_hint
        where = f" (the store would be on {fstype} at {mp})" if fstype else ""
        return [Finding("info", "fsverity", f"no store files to probe for fs-verity{where}",
                        store_path or "store")]
    where = f"{v.filesystem} at {v.mountpoint}" if v.filesystem else "the store's filesystem"
    src = f"FS_IOC_MEASURE_VERITY on {len(v.probed)} files under {store_path}"
    out = []
    verdict = v.verdict
    if verdict == "unsupported":
        err = next((p.error for p in v.probed if p.status == "unsupported"), "")
        out.append(Finding("info", "fsverity",
                           f"{where} does not support fs-verity ({err}): objects and blobs "
                           "cannot be sealed", src,
                           "composefs works without it, unverified; for verification put the "
                           "store on ext4/btrfs/f2fs with fs-verity enabled (ext4: tune2fs -O verity)"))
    elif verdict == "not-enabled":
        out.append(Finding("warning", "fsverity",
                           f"{where} supports fs-verity but none of {v.count('not-enabled')} "
                           "probed files has it enabled", src,
                           "containers/storage enables it only opportunistically at pull time; "
                           "re-pull, or `fsverity enable` the objects"))
    elif verdict == "partial":
        out.append(Finding("warning", "fsverity",
                           f"fs-verity enabled on {v.count('enabled')} of "
                           f"{v.count('enabled') + v.count('not-enabled')} probed files on {where}",
                           src, "files without it cannot be checked by the kernel; re-pull them"))
    elif verdict == "enabled":
        out.append(Finding("ok", "fsverity",
                           f"fs-verity enabled on all {v.count('enabled')} probed files on {where}",
                           src))
    n = v.count("unreadable")
    if n:
        err = next(p.error for p in v.probed if p.status == "unreadable")
        out.append(Finding("warning", "fsverity", f"{n} store files could not be opened ({err})",
                           src, "run as root: containers/storage objects are root-owned mode 0000"))
    return out


def _verdict(cfg: StorageConfig, configured: bool, findings: list[Finding],
             stores: list[StoreSummary]) -> str:
    layers: dict[str, bool] = {}
    for s in stores:
        for l in s.layers:
            layers[l.id] = layers.get(l.id, False) or l.usable
    images_full = sum(s.fully_composefs_images for s in stores)
    n, c = len(layers), sum(layers.values())
    in_use = f"composefs in use for {c} of {n} layers ({images_full} images fully)"
    if not configured:
        uc = cfg.get("use_composefs")
        if uc.is_default:
            why = "use_composefs is not set (default false)"
        elif uc.note:
            why = f"use_composefs is invalid ({uc.note}) at {uc.source}"
        else:
            why = f"use_composefs = {_q(uc.value)} ({uc.source})"
        if c:
            return f"composefs layers present ({c} of {n}) but new pulls will be plain: {why}"
        return f"composefs not in use: {why}"
    blockers = [f for f in findings if f.severity == "error" and f.topic in ("config", "runtime", "kernel")]
    if blockers:
        return f"configured but not effective: {blockers[0].message}"
    if n == 0:
        return "composefs configured; the store has no layers yet"
    if c == 0:
        return (f"configured but no composefs layers: 0 of {n} layers (pulled before enabling, "
                "or not through the zstd:chunked path)")
    return in_use


def _open_configured_store(host: Host, host_path: str, label: str,
                           findings: list[Finding]) -> tuple[StoreSummary, object] | None:
    local = Path(host.path(host_path))
    if not os.path.isdir(local):
        findings.append(Finding("info", "store", f"no store at {host_path}", label))
        return None
    try:
        store = store_findings.open_containers_store(local)
    except StoreError as e:
        findings.append(Finding("info" if "not a containers/storage" in str(e) else "error",
                                "store", f"{host_path}: {e.message}", label))
        return None
    return store_findings.summarize(store, label), store


def run_doctor(root: str = "/", env: Mapping[str, str] | None = None,
               store_path: str | os.PathLike | None = None, *, uid: int | None = None,
               run_versions: bool | None = None) -> DoctorReport:
    """Examine the host under *root* (with environment *env*) and the store.

    *store_path* (a local path: graphroot or its parent) overrides the configured graphroot;
    when it is given and is not a readable graphroot, StoreError is raised (exit 2).
    ``mkcomposefs --version`` is run only on the live host unless *run_versions* says so:
    executing binaries from another root would run that system's code.
    """
    host = Host(root=root, env=dict(os.environ if env is None else env),
                uid=os.geteuid() if uid is None else uid)
    if not os.path.isdir(host.root):
        raise InspectError("--root is not a directory", path=host.root)
    cfg, findings = cfgmod.load(host)
    configured = cfgmod.effective_bool(cfg, "use_composefs")
    findings = _config_findings(cfg, configured, host) + findings
    tools = probes.probe_tools(host, host.is_live if run_versions is None else run_versions)
    findings += _runtime_findings(tools, configured)
    kernel = probes.probe_kernel(host)
    findings += _kernel_findings(kernel, configured)

    summaries: list[StoreSummary] = []
    store_findings_list: list[Finding] = []
    primary = None
    if store_path is not None:
        store = store_findings.open_containers_store(store_path)
        primary = (store_findings.summarize(store, "argument"), store)
    else:
        gr = cfg.get("graphroot")
        if gr.value and os.path.isabs(gr.value):
            primary = _open_configured_store(host, gr.value, f"graphroot ({gr.source})",
                                             store_findings_list)
        else:
            store_findings_list.append(Finding(
                "warning", "store", f"graphroot {gr.value!r} is not an absolute path"
                if gr.value else "graphroot unknown (rootless without HOME or XDG_DATA_HOME)",
                gr.source, "set graphroot in storage.conf or give PATH"))
    extra = []
    im = cfg.get("imagestore")
    if im.value:
        extra.append((im.value, f"imagestore ({im.source})"))
    ais = cfg.get("additionalimagestores")
    for p in ais.value:
        extra.append((p, f"additionalimagestores ({ais.source})"))
    opened = [primary] if primary else []
    for hp, label in extra:
        r = _open_configured_store(host, hp, label, store_findings_list)
        if r:
            opened.append(r)
    for summary, store in opened:
        summaries.append(summary)
        store_findings_list += store_findings.findings(summary, store, configured, host.rootless)

    verity = None
    if primary:
        summary, store = primary
        verity = probes.probe_store_verity(host, _host_view(host, summary.path),
                                           store_findings.verity_samples(store))
    gr_value = cfg.get("graphroot").value
    hint = probes.mount_of(host, gr_value) if not primary and gr_value else (None, None)
    findings += _verity_findings(verity, primary[0].path if primary else None, hint)
    mounts = probes.composefs_mounts(host)
    if mounts:
        findings.append(Finding(
            "ok", "store", (f"{len(mounts)} composefs layer blobs are" if len(mounts) > 1
                            else "1 composefs layer blob is") + " mounted right now "
            f"(EROFS under composefs-layers/, e.g. {mounts[0]})", "/proc/self/mountinfo"))
    findings += store_findings_list

    order = {t: i for i, t in enumerate(TOPICS)}
    findings.sort(key=lambda f: order.get(f.topic, len(order)))   # stable within a topic
    verdict = _verdict(cfg, configured, findings, summaries)
    facts = {
        "runtime": {k: t.to_json() for k, t in tools.items()},
        "kernel": kernel.to_json(),
        "fsverity": verity.to_json() if verity else None,
        "mounts": {"composefs_layer_mounts": mounts},
    }
    return DoctorReport(verdict, tuple(findings), cfg, facts, tuple(summaries), host.root)


def _host_view(host: Host, local: str) -> str:
    """The host path of a local path under the root (for /proc/self/mountinfo lookups)."""
    if host.root in ("", "/"):
        return local
    r = os.path.abspath(host.root)
    loc = os.path.abspath(local)
    if loc == r:
        return "/"
    if loc.startswith(r.rstrip("/") + "/"):
        return "/" + loc[len(r):].lstrip("/")
    return loc


__all__ = ["run_doctor", "SEVERITIES"]
