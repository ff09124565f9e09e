"""doctor: verdicts on fake hosts with the containers-storage fixture, JSON and CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import IMAGES
from inspector.analysis.doctor import run_doctor
from inspector.analysis.doctor.render import render_text
from inspector.cli import main
from inspector.errors import StoreError

A = "7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
B = "046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59"
C = "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0"
P = "fbc2585f434b46d38904acf726ebb3ce4da8192c8930f30b86ffa6171cd7b8db"

GOOD_CONF = """\
[storage]
driver = "overlay"
graphroot = "/var/lib/containers/storage"

[storage.options.overlay]
use_composefs = "true"

[storage.options.pull_options]
enable_partial_images = "true"
convert_images = "true"
"""

MKCOMPOSEFS = '#!/bin/sh\necho "mkcomposefs: unrecognized option --version" >&2\nexit 1\n'


def write(root: Path, host_path: str, text: str, mode: int | None = None) -> None:
    p = root / host_path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    if mode is not None:
        p.chmod(mode)


def fake_host(tmp_path: Path, conf: str | None = GOOD_CONF, mkcomposefs: bool = True,
              filesystems: str = "nodev\tsysfs\nnodev\toverlay\n\terofs\n",
              release: str = "6.12.3") -> tuple[str, dict[str, str]]:
    root = tmp_path / "host"
    root.mkdir()
    if conf is not None:
        write(root, "/etc/containers/storage.conf", conf)
    write(root, "/proc/filesystems", filesystems)
    write(root, "/proc/sys/kernel/osrelease", release + "\n")
    write(root, "/dev/loop-control", "")
    (root / "usr/bin").mkdir(parents=True)
    if mkcomposefs:
        write(root, "/usr/bin/mkcomposefs", MKCOMPOSEFS, 0o755)
    return str(root), {"PATH": "/usr/bin", "HOME": "/root"}


def findings(report, topic=None, severity=None):
    return [f for f in report.findings
            if (topic is None or f.topic == topic) and (severity is None or f.severity == severity)]


def needs_action_outside_fsverity(report):
    return [f for f in report.findings
            if f.severity in ("warning", "error") and f.topic != "fsverity"]


@pytest.fixture
def graphroot(store_root):
    return store_root("containers-storage") / "storage"


# --- verdicts ---------------------------------------------------------------------------------

def test_partly_in_use(tmp_path, graphroot):
    root, env = fake_host(tmp_path)
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == "composefs in use for 3 of 4 layers (3 images fully)"
    assert needs_action_outside_fsverity(r) == []
    fsv = findings(r, "fsverity")
    assert r.exit_code == (1 if any(f.severity in ("warning", "error") for f in fsv) else 0)
    s = r.stores[0]
    assert (s.path, s.source) == (str(graphroot), "argument")
    assert {l.id: (l.composefs, l.blob_status, l.payloads_with_digest, l.payloads_without_digest,
                   l.digest_coverage) for l in s.layers} == {
        A: (True, "ok", 38, 0, "all"),
        B: (True, "ok", 8, 0, "all"),
        C: (True, "ok", 4, 3, "some"),
        P: (False, "none", 0, 0, "n/a"),
    }
    assert {i.names[0]: (i.composefs_layers, len(i.layers), i.fully_composefs) for i in s.images} == {
        "localhost/base:1": (1, 1, True), "localhost/app1:1": (2, 2, True),
        "localhost/app2:1": (2, 2, True), "localhost/plain:1": (0, 1, False)}
    store = [(f.severity, f.message) for f in findings(r, "store")]
    assert store == [
        ("ok", "3 of 4 layers are composefs (usable blob); 3 of 4 images are composefs in every layer"),
        ("info", "image localhost/plain:1: all 1 layers are plain"),
        ("info", f"layer {C[:12]}: 4 of 7 objects carry an fs-verity digest in the blob"),
    ]
    assert findings(r, "store")[2].source == (
        f"{graphroot}/overlay/{C}/composefs-data/composefs.blob")
    # Every blob plus the objects were probed read-only, none opened as a special file.
    v = r.facts["fsverity"]
    assert v["counts"]["skipped"] == 0 and v["counts"]["unreadable"] == 0
    # 3 blobs + every object file: A 39 + B 9 + C 8 (under the 64-object sampling cap)
    assert sum(v["counts"].values()) == 3 + 56
    text = render_text(r)
    assert text.splitlines()[0] == "composefs in use for 3 of 4 layers (3 images fully)"
    assert "  use_composefs          \"true\"" in text


def test_fully_in_use(tmp_path, fresh_store):
    gr = fresh_store("containers-storage") / "storage"
    images = json.loads((gr / "overlay-images/images.json").read_text())
    (gr / "overlay-images/images.json").write_text(
        json.dumps([i for i in images if "localhost/plain:1" not in i.get("names", [])]))
    layers = json.loads((gr / "overlay-layers/layers.json").read_text())
    (gr / "overlay-layers/layers.json").write_text(json.dumps([l for l in layers if l["id"] != P]))
    root, env = fake_host(tmp_path)
    r = run_doctor(root=root, env=env, store_path=gr, uid=0)
    assert r.verdict == "composefs in use for 3 of 3 layers (3 images fully)"
    assert needs_action_outside_fsverity(r) == []


def test_configured_store_found_through_config_graphroot(tmp_path, graphroot):
    """Without PATH the configured graphroot is used, under --root."""
    root, env = fake_host(tmp_path)
    dest = Path(root) / "var/lib/containers"
    dest.mkdir(parents=True)
    os.symlink(graphroot, dest / "storage")
    r = run_doctor(root=root, env=env, uid=0)
    assert r.verdict == "composefs in use for 3 of 4 layers (3 images fully)"
    assert r.stores[0].source == "graphroot (/etc/containers/storage.conf:3)"


def test_not_configured_no_store(tmp_path):
    root, env = fake_host(tmp_path, conf=None, mkcomposefs=False)
    r = run_doctor(root=root, env=env, uid=0)
    assert r.verdict == "composefs not in use: use_composefs is not set (default false)"
    assert r.exit_code == 1
    off = findings(r, "config", "warning")
    assert [(f.message, f.source) for f in off] == [
        ("composefs is off: use_composefs is not set (default false)", "default")]
    # mkcomposefs is not needed while composefs is off: not an error.
    mk = [f for f in findings(r, "runtime") if "mkcomposefs" in f.message]
    assert [(f.severity, f.message) for f in mk] == [
        ("info", "mkcomposefs not found on PATH (needed only with use_composefs)")]
    assert [(f.severity, f.message, f.source) for f in findings(r, "store")] == [
        ("info", "no store at /var/lib/containers/storage", "graphroot (default)")]
    assert r.stores == ()


def test_not_configured_but_store_has_composefs_layers(tmp_path, graphroot):
    root, env = fake_host(tmp_path, conf='[storage.options.overlay]\nuse_composefs = "false"\n')
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == ("composefs layers present (3 of 4) but new pulls will be plain: "
                         'use_composefs = "false" (/etc/containers/storage.conf:2)')
    assert r.exit_code == 1


def test_configured_but_mkcomposefs_missing(tmp_path, graphroot):
    root, env = fake_host(tmp_path, mkcomposefs=False)
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == "configured but not effective: mkcomposefs not found on PATH"
    assert r.exit_code == 1
    f = [f for f in findings(r, "runtime", "error")]
    assert [(x.message, x.source) for x in f] == [("mkcomposefs not found on PATH", "PATH=/usr/bin")]
    assert f[0].advice.startswith("install the composefs package")


def test_kernel_lacks_erofs(tmp_path, graphroot):
    root, env = fake_host(tmp_path, filesystems="nodev\toverlay\n\text4\n", release="6.8.0")
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == ("configured but not effective: the kernel has no EROFS "
                         "(not in /proc/filesystems, no erofs module)")
    assert r.exit_code == 1
    kernel = {(f.severity, f.message) for f in findings(r, "kernel")}
    assert ("info", "EROFS mounts straight from the blob file (no loop device): no "
            "(kernel 6.8 < 6.12); blobs are mounted through loop devices, and "
            "/dev/loop-control exists") in kernel
    assert ("ok", "overlayfs data-only lower layers: yes (≥ 6.5)") in kernel


def test_erofs_as_loadable_module_is_enough(tmp_path, graphroot):
    root, env = fake_host(tmp_path, filesystems="nodev\toverlay\n", release="6.12.3")
    write(Path(root), "/lib/modules/6.12.3/modules.dep", "kernel/fs/erofs/erofs.ko.xz:\n")
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == "composefs in use for 3 of 4 layers (3 images fully)"
    assert ("ok", "EROFS is available as a loadable module") in {
        (f.severity, f.message) for f in findings(r, "kernel")}


def test_partial_images_disabled_blocks(tmp_path, graphroot):
    root, env = fake_host(tmp_path, conf='[storage.options.overlay]\nuse_composefs = "true"\n')
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.verdict == (
        'configured but not effective: enable_partial_images is not "true": pulls never take '
        "the zstd:chunked path that produces composefs layers (default false)")


def test_rootless_blocks(tmp_path, graphroot):
    root, env = fake_host(tmp_path)
    write(Path(root), "/home/u/.config/containers/storage.conf", GOOD_CONF)
    env["HOME"] = "/home/u"
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=1000)
    assert r.config.files == ("/home/u/.config/containers/storage.conf",)
    assert r.verdict == ("configured but not effective: rootless storage (uid 1000): "
                         "containers/storage refuses composefs in user namespaces")


def test_blobs_without_digests(tmp_path, fresh_store):
    gr = fresh_store("containers-storage") / "storage"
    shutil.copyfile(IMAGES / "config.cfs", gr / f"overlay/{B}/composefs-data/composefs.blob")
    root, env = fake_host(tmp_path)
    r = run_doctor(root=root, env=env, store_path=gr, uid=0)
    assert r.verdict == "composefs in use for 3 of 4 layers (3 images fully)"
    assert r.exit_code == 1
    w = findings(r, "store", "warning")
    assert [f.message for f in w] == [
        "1 composefs blob carries no fs-verity digests, so nothing in them can be verified: "
        f"{B[:12]}"]
    assert "PR #816" in w[0].advice
    layer = {l.id: l for l in r.stores[0].layers}[B]
    assert (layer.payloads_with_digest, layer.digest_coverage) == (0, "none")
    assert layer.payloads_without_digest > 0


def test_missing_and_invalid_blobs(tmp_path, fresh_store):
    gr = fresh_store("containers-storage") / "storage"
    (gr / f"overlay/{A}/composefs-data/composefs.blob").unlink()
    (gr / f"overlay/{C}/composefs-data/composefs.blob").write_bytes(b"\0" * 100)
    root, env = fake_host(tmp_path)
    r = run_doctor(root=root, env=env, store_path=gr, uid=0)
    assert r.verdict == "composefs in use for 1 of 4 layers (0 images fully)"
    assert r.exit_code == 1
    errs = [(f.message, f.source) for f in findings(r, "store", "error")]
    assert errs == [
        (f"layer {A[:12]}: composefs blob is missing",
         f"{gr}/overlay/{A}/composefs-data/composefs.blob"),
        (f"layer {C[:12]}: composefs blob is not a composefs image",
         f"{gr}/overlay/{C}/composefs-data/composefs.blob"),
    ]
    by_id = {l.id: l for l in r.stores[0].layers}
    assert (by_id[A].composefs, by_id[A].blob_status) == (True, "missing")
    assert (by_id[C].composefs, by_id[C].blob_status) == (True, "invalid")


def test_bad_store_path_is_an_error(tmp_path):
    root, env = fake_host(tmp_path)
    with pytest.raises(StoreError) as e:
        run_doctor(root=root, env=env, store_path=tmp_path / "host", uid=0)
    assert str(e.value) == (f"{tmp_path / 'host'}: not a containers/storage graphroot (no "
                            "overlay-layers/layers.json, overlay-images/images.json and overlay/)")


def test_parent_of_graphroot_is_accepted(tmp_path, store_root):
    root, env = fake_host(tmp_path)
    r = run_doctor(root=root, env=env, store_path=store_root("containers-storage"), uid=0)
    assert r.stores[0].path == str(store_root("containers-storage") / "storage")


def test_additional_image_store_missing_and_present(tmp_path, graphroot):
    conf = GOOD_CONF.replace("[storage.options.overlay]",
                             '[storage.options]\nadditionalimagestores = ["/mnt/ro", "/mnt/gone"]\n\n'
                             "[storage.options.overlay]")
    root, env = fake_host(tmp_path, conf=conf)
    (Path(root) / "mnt").mkdir()
    os.symlink(graphroot, Path(root) / "mnt/ro")
    r = run_doctor(root=root, env=env, uid=0)
    assert [s.source for s in r.stores] == ["additionalimagestores (/etc/containers/storage.conf:6)"]
    msgs = [(f.message, f.source) for f in findings(r, "store", "info")][:2]
    assert msgs == [
        ("no store at /var/lib/containers/storage", "graphroot (/etc/containers/storage.conf:3)"),
        ("no store at /mnt/gone", "additionalimagestores (/etc/containers/storage.conf:6)"),
    ]
    assert r.verdict == "composefs in use for 3 of 4 layers (3 images fully)"


# --- JSON and CLI -----------------------------------------------------------------------------

@pytest.fixture
def cli_env(monkeypatch):
    for var in ("CONTAINERS_STORAGE_CONF", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
                "STORAGE_OPTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def test_cli_json(tmp_path, graphroot, cli_env, capsys):
    root, _env = fake_host(tmp_path)
    rc = main(["doctor", "--json", "--root", root, str(graphroot)])
    out = json.loads(capsys.readouterr().out)
    assert rc == out["exit_code"]
    assert set(out) == {"verdict", "exit_code", "root", "findings", "config", "runtime",
                        "kernel", "fsverity", "mounts", "stores"}
    assert out["mounts"] == {"composefs_layer_mounts": None}   # the fake host has no mountinfo
    assert out["verdict"] == "composefs in use for 3 of 4 layers (3 images fully)"
    assert out["root"] == root
    assert all(set(f) == {"severity", "topic", "message", "source", "advice"}
               for f in out["findings"])
    c = out["config"]
    assert c["files"] == ["/etc/containers/storage.conf"] and c["rootless"] is False
    assert c["values"]["use_composefs"] == {
        "key": "storage.options.overlay.use_composefs", "value": "true",
        "source": "/etc/containers/storage.conf:6", "default": "false", "note": ""}
    assert c["values"]["additionalimagestores"]["value"] == []
    assert out["runtime"]["mkcomposefs"]["path"] == "/usr/bin/mkcomposefs"
    assert out["runtime"]["fsverity"]["path"] is None
    assert out["kernel"]["release"] == "6.12.3"
    assert out["kernel"]["features"]["erofs_file_backed"] is True
    assert out["fsverity"]["verdict"] in ("unsupported", "not-enabled", "enabled", "partial")
    s = out["stores"][0]
    assert (s["layers_total"], s["layers_composefs"], s["images_total"],
            s["images_fully_composefs"]) == (4, 3, 4, 3)
    c_layer = next(l for l in s["layers"] if l["id"] == C)
    assert c_layer == {"id": C, "composefs": True,
                       "blob": f"overlay/{C}/composefs-data/composefs.blob", "blob_status": "ok",
                       "payloads_with_digest": 4, "payloads_without_digest": 3,
                       "digest_coverage": "some"}
    plain = next(i for i in s["images"] if i["names"] == ["localhost/plain:1"])
    assert plain == {"id": "8e484d126125664c228b472ac741d3b8f2c615f2eced571f2eae5a2ba8fe95e2",
                     "names": ["localhost/plain:1"], "layers": [P], "composefs_layers": 0,
                     "plain_layers": 1, "fully_composefs": False}


def test_cli_text_exit_codes(tmp_path, graphroot, cli_env, capsys):
    root, _env = fake_host(tmp_path, mkcomposefs=False)
    rc = main(["doctor", "--root", root, str(graphroot)])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.splitlines()[0] == "configured but not effective: mkcomposefs not found on PATH"
    assert "  ERROR mkcomposefs not found on PATH\n        source: PATH=/usr/bin\n" in out
    rc = main(["doctor", "--root", root, str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("cfs-inspect: ") and err.count("\n") == 1


def test_cli_bad_root(tmp_path, cli_env, capsys):
    rc = main(["doctor", "--root", str(tmp_path / "missing")])
    assert rc == 2
    assert capsys.readouterr().err == f"cfs-inspect: {tmp_path / 'missing'}: --root is not a directory\n"


def test_terminal_safety_of_names(tmp_path, fresh_store):
    gr = fresh_store("containers-storage") / "storage"
    images = json.loads((gr / "overlay-images/images.json").read_text())
    for i in images:
        if "localhost/plain:1" in i.get("names", []):
            i["names"] = ["evil\x1b[2J\nname"]
    (gr / "overlay-images/images.json").write_text(json.dumps(images))
    root, env = fake_host(tmp_path)
    text = render_text(run_doctor(root=root, env=env, store_path=gr, uid=0))
    assert "\x1b" not in text
    assert "evil\\x1b[2J\\x0aname" in text


def test_active_composefs_mounts(tmp_path, graphroot):
    root, env = fake_host(tmp_path)
    mp = f"/var/lib/containers/storage/overlay/{C}/composefs-layers/0"
    write(Path(root), "/proc/self/mountinfo",
          "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
          f"90 22 7:0 / {mp} ro,relatime - erofs /dev/loop0 ro,noacl\n"
          "91 22 7:1 / /mnt/other ro - erofs /dev/loop1 ro\n")
    r = run_doctor(root=root, env=env, store_path=graphroot, uid=0)
    assert r.facts["mounts"] == {"composefs_layer_mounts": [mp]}
    assert ("ok", f"1 composefs layer blob is mounted right now (EROFS under composefs-layers/, "
            f"e.g. {mp})", "/proc/self/mountinfo") in {
        (f.severity, f.message, f.source) for f in findings(r, "store")}


def test_rootless_without_home_has_no_graphroot(tmp_path):
    root, env = fake_host(tmp_path, conf=None)
    del env["HOME"]
    r = run_doctor(root=root, env=env, uid=1000)
    assert [(f.severity, f.message) for f in findings(r, "store")] == [
        ("warning", "graphroot unknown (rootless without HOME or XDG_DATA_HOME)")]
    assert r.verdict == "composefs not in use: use_composefs is not set (default false)"


def test_no_store_names_the_filesystem_it_would_use(tmp_path):
    root, env = fake_host(tmp_path)
    write(Path(root), "/proc/self/mountinfo",
          "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
          "30 22 0:40 / /var/lib rw shared:9 - xfs /dev/vdb rw\n")
    r = run_doctor(root=root, env=env, uid=0)
    assert [(f.message, f.source) for f in findings(r, "fsverity")] == [
        ("no store files to probe for fs-verity (the store would be on xfs at /var/lib)", "store")]
    assert r.verdict == "composefs configured; the store has no layers yet"
