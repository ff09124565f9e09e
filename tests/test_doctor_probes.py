"""doctor: runtime, kernel and fs-verity probes on fake hosts and real temporary files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from inspector.analysis.doctor import probes
from inspector.analysis.doctor.host import Host


def write(root: Path, host_path: str, text: str, mode: int | None = None) -> Path:
    p = root / host_path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    if mode is not None:
        p.chmod(mode)
    return p


NO_VERSION = '#!/bin/sh\necho "mkcomposefs: unrecognized option \'--version\'" >&2\nexit 1\n'
WITH_VERSION = '#!/bin/sh\necho "mkcomposefs 1.0.8"\n'


# --- runtime ----------------------------------------------------------------------------------

def test_find_executable_through_root_and_path(tmp_path):
    write(tmp_path, "/usr/bin/mkcomposefs", NO_VERSION, 0o755)
    write(tmp_path, "/usr/local/bin/composefs-info", "not executable", 0o644)
    host = Host(root=str(tmp_path), env={"PATH": "/usr/local/bin:relative:/usr/bin"}, uid=0)
    assert probes.find_executable(host, "mkcomposefs") == (
        "/usr/bin/mkcomposefs", "/usr/local/bin:relative:/usr/bin")
    assert probes.find_executable(host, "composefs-info") == (
        None, "/usr/local/bin:relative:/usr/bin")


def test_tools_versions_only_when_asked(tmp_path):
    write(tmp_path, "/usr/bin/mkcomposefs", WITH_VERSION, 0o755)
    write(tmp_path, "/usr/bin/fsverity", "#!/bin/sh\n", 0o755)
    host = Host(root=str(tmp_path), env={"PATH": "/usr/bin"}, uid=0)
    tools = probes.probe_tools(host, run_versions=False)
    assert tools["mkcomposefs"].to_json() == {
        "name": "mkcomposefs", "path": "/usr/bin/mkcomposefs", "version": None,
        "version_note": "version not probed outside the live host"}
    assert tools["composefs-info"].path is None
    assert tools["composefs-info"].version_note == "not found"
    assert tools["fsverity"].path == "/usr/bin/fsverity"
    tools = probes.probe_tools(host, run_versions=True)
    assert tools["mkcomposefs"].version == "mkcomposefs 1.0.8"


def test_tool_without_version_option(tmp_path):
    p = write(tmp_path, "/mk", NO_VERSION, 0o755)
    assert probes.tool_version(str(p)) == (None, "does not report a version (no --version option)")


def test_tool_version_timeout(tmp_path):
    p = write(tmp_path, "/mk", "#!/bin/sh\nexec sleep 5\n", 0o755)
    assert probes.tool_version(str(p), timeout=0.2) == (None, "--version did not answer within 0.2s")


# --- kernel -----------------------------------------------------------------------------------

def fake_kernel(root: Path, release: str, filesystems: str) -> Host:
    write(root, "/proc/sys/kernel/osrelease", release + "\n")
    write(root, "/proc/filesystems", filesystems)
    return Host(root=str(root), env={}, uid=0)


def test_kernel_with_everything(tmp_path):
    host = fake_kernel(tmp_path, "6.12.9-200.fc41.x86_64", "nodev\tsysfs\nnodev\toverlay\n\terofs\n")
    write(tmp_path, "/dev/loop-control", "")
    k = probes.probe_kernel(host)
    assert k.to_json() == {
        "release": "6.12.9-200.fc41.x86_64",
        "version": [6, 12],
        "filesystems_read": True,
        "filesystems": {
            "erofs": {"registered": True, "module": None, "module_source": "", "available": True},
            "overlay": {"registered": True, "module": None, "module_source": "", "available": True},
        },
        "loop_control": True,
        "features": {"erofs_chunked_files": True, "overlay_data_only_lowers": True,
                     "overlay_verity": True, "erofs_file_backed": True},
    }


def test_kernel_modules_dep_and_directory(tmp_path):
    rel = "6.1.0-18-amd64"
    host = fake_kernel(tmp_path, rel, "nodev\tsysfs\n\text4\n")
    write(tmp_path, f"/lib/modules/{rel}/modules.dep",
          "kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz\n"
          "kernel/fs/overlayfs/overlay.ko.xz:\n")
    write(tmp_path, f"/usr/lib/modules/{rel}/kernel/fs/erofs/erofs.ko.zst", "")
    k = probes.probe_kernel(host)
    assert k.fs["overlay"].to_json() == {
        "registered": False, "module": "loadable",
        "module_source": f"/lib/modules/{rel}/modules.dep", "available": True}
    assert k.fs["erofs"].to_json() == {
        "registered": False, "module": "loadable",
        "module_source": f"/usr/lib/modules/{rel}/kernel/fs/erofs/", "available": True}
    assert k.version == (6, 1)
    assert k.features == {"erofs_chunked_files": True, "overlay_data_only_lowers": False,
                          "overlay_verity": False, "erofs_file_backed": False}
    assert k.loop_control is False


def test_kernel_without_erofs(tmp_path):
    host = fake_kernel(tmp_path, "5.10.0", "nodev\toverlay\n\text4\n")
    k = probes.probe_kernel(host)
    assert k.fs["erofs"].available is False
    assert k.fs["overlay"].available is True
    assert k.features["erofs_chunked_files"] is False


def test_kernel_unknown(tmp_path):
    k = probes.probe_kernel(Host(root=str(tmp_path), env={}, uid=0))
    assert (k.release, k.version, k.filesystems_read) == (None, None, False)
    assert set(k.features.values()) == {None}


def test_parse_release():
    assert probes.parse_release("6.18.44-fc-v657") == (6, 18)
    assert probes.parse_release("garbage") is None


# --- fs-verity --------------------------------------------------------------------------------

def test_verity_probe_on_real_file(tmp_path):
    """An ordinary temporary file: "unsupported" or "not-enabled", never a crash."""
    p = tmp_path / "plain"
    p.write_bytes(b"hello world\n")
    r = probes.probe_verity(str(p), "plain")
    assert r.path == "plain"
    assert r.status in ("unsupported", "not-enabled")
    assert r.digest is None and r.algorithm is None
    assert r.flag in (False, None)
    if r.status == "unsupported":
        assert r.error in ("EOPNOTSUPP", "ENOTTY", "EINVAL")


def test_verity_probe_never_opens_specials(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)                      # opening it for reading would block
    r = probes.probe_verity(str(fifo))
    assert (r.status, r.error) == ("skipped", "not a regular file")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    (tmp_path / "target").write_text("x")
    assert probes.probe_verity(str(link)).status == "skipped"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        assert probes.probe_verity(str(tmp_path / "sock")).status == "skipped"
    finally:
        sock.close()
    r = probes.probe_verity(str(tmp_path / "missing"))
    assert (r.status, r.error) == ("unreadable", "No such file or directory")


def test_verity_summary_verdicts():
    V = probes.VerityProbe
    s = probes.VeritySummary("ext4", "/", (V("a", "unsupported", None, error="EOPNOTSUPP"),
                                            V("b", "unreadable", None, error="Permission denied")))
    assert s.verdict == "unsupported"
    assert s.to_json()["counts"] == {"enabled": 0, "not-enabled": 0, "unsupported": 1,
                                     "unreadable": 1, "skipped": 0}
    s = probes.VeritySummary(None, None, (V("a", "enabled", True, "sha256", "00" * 32),
                                          V("b", "not-enabled", False)))
    assert s.verdict == "partial"
    assert probes.VeritySummary(None, None, (V("a", "not-enabled", False),)).verdict == "not-enabled"
    assert probes.VeritySummary(None, None, (V("a", "enabled", True),)).verdict == "enabled"
    assert probes.VeritySummary(None, None, ()).verdict == "unknown"


def test_mount_of_longest_prefix(tmp_path):
    write(tmp_path, "/proc/self/mountinfo",
          "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
          "30 22 0:40 / /var/lib/containers rw shared:9 - xfs /dev/vdb rw\n"
          "31 22 0:41 / /var/lib/containers2 rw shared:9 - btrfs /dev/vdc rw\n")
    host = Host(root=str(tmp_path), env={}, uid=0)
    assert probes.mount_of(host, "/var/lib/containers/storage") == ("xfs", "/var/lib/containers")
    assert probes.mount_of(host, "/var/lib/other") == ("ext4", "/")
