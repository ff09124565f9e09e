"""doctor: effective containers storage configuration, precedence and line numbers."""

from __future__ import annotations

from pathlib import Path

from inspector.analysis.doctor import config as cfgmod
from inspector.analysis.doctor.host import Host


def write(root: Path, host_path: str, text: str) -> None:
    p = root / host_path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def load(root: Path, uid: int = 0, **env):
    env.setdefault("HOME", "/root" if uid == 0 else f"/home/u{uid}")
    return cfgmod.load(Host(root=str(root), env=env, uid=uid))


USR = """\
# distribution defaults
[storage]
driver = "overlay"
runroot = "/run/usr-share"
graphroot = "/var/lib/usr-share"

[storage.options]
additionalimagestores = [
  "/usr/lib/containers/storage",
]

[storage.options.overlay]
mountopt = "nodev"
use_composefs = "false"
"""

ETC = """\
[storage]
driver = "overlay"
graphroot = "/var/lib/etc-store"

[storage.options.pull_options]
enable_partial_images = "true"
use_hard_links = "true"

[storage.options.overlay]
use_composefs = "true"
"""


def test_no_files_gives_rootful_defaults(tmp_path):
    cfg, findings = load(tmp_path)
    assert findings == []
    assert cfg.files == () and cfg.skipped == ()
    got = {v.key.rsplit(".", 1)[-1]: (v.value, v.source) for v in cfg.values}
    assert got == {
        "driver": ("", "default"),
        "graphroot": ("/var/lib/containers/storage", "default"),
        "runroot": ("/run/containers/storage", "default"),
        "imagestore": ("", "default"),
        "additionalimagestores": ((), "default"),
        "use_composefs": ("false", "default"),
        "mount_program": ("", "default"),
        "enable_partial_images": ("false", "default"),
        "convert_images": ("false", "default"),
        "use_hard_links": ("false", "default"),
        "ostree_repos": ("", "default"),
    }
    assert cfgmod.effective_bool(cfg, "use_composefs") is False
    assert "commented out" in cfg.get("enable_partial_images").note


def test_usr_share_alone_with_lines(tmp_path):
    write(tmp_path, "/usr/share/containers/storage.conf", USR)
    cfg, findings = load(tmp_path)
    assert findings == []
    assert cfg.files == ("/usr/share/containers/storage.conf",)
    f = "/usr/share/containers/storage.conf"
    assert cfg.get("driver").source == f"{f}:3"
    assert cfg.get("runroot").value == "/run/usr-share"
    assert cfg.get("runroot").source == f"{f}:4"
    assert cfg.get("graphroot").source == f"{f}:5"
    assert cfg.get("additionalimagestores").value == ("/usr/lib/containers/storage",)
    assert cfg.get("additionalimagestores").source == f"{f}:8"
    assert cfg.get("use_composefs").value == "false"
    assert cfg.get("use_composefs").source == f"{f}:14"


def test_etc_replaces_usr_share_main_file(tmp_path):
    """Only one main file is read: /etc wins and /usr/share is not merged in."""
    write(tmp_path, "/usr/share/containers/storage.conf", USR)
    write(tmp_path, "/etc/containers/storage.conf", ETC)
    cfg, findings = load(tmp_path)
    assert findings == []
    assert cfg.files == ("/etc/containers/storage.conf",)
    assert cfg.skipped == ("/usr/share/containers/storage.conf "
                           "(replaced by /etc/containers/storage.conf)",)
    assert cfg.get("graphroot").value == "/var/lib/etc-store"
    assert cfg.get("graphroot").source == "/etc/containers/storage.conf:3"
    # Set only in /usr/share: back to the default, not inherited.
    assert cfg.get("runroot").source == "default"
    assert cfg.get("additionalimagestores").value == ()
    assert cfg.get("use_composefs").source == "/etc/containers/storage.conf:10"
    assert cfg.get("enable_partial_images").source == "/etc/containers/storage.conf:6"
    assert cfg.get("use_hard_links").value == "true"
    assert cfgmod.effective_bool(cfg, "use_composefs") is True


def test_user_file_beats_etc_also_for_root(tmp_path):
    write(tmp_path, "/etc/containers/storage.conf", ETC)
    write(tmp_path, "/root/.config/containers/storage.conf",
          '[storage]\ngraphroot = "/srv/mine"\n')
    cfg, _ = load(tmp_path)
    assert cfg.files == ("/root/.config/containers/storage.conf",)
    assert cfg.get("graphroot").value == "/srv/mine"
    assert cfg.get("use_composefs").source == "default"


def test_xdg_config_home_user_file(tmp_path):
    write(tmp_path, "/cfg/containers/storage.conf", '[storage.options.overlay]\nuse_composefs = "true"\n')
    cfg, _ = load(tmp_path, uid=1000, XDG_CONFIG_HOME="/cfg")
    assert cfg.files == ("/cfg/containers/storage.conf",)
    assert cfg.get("use_composefs").source == "/cfg/containers/storage.conf:2"


def test_containers_storage_conf_replaces_everything(tmp_path):
    write(tmp_path, "/etc/containers/storage.conf", ETC)
    write(tmp_path, "/etc/containers/storage.conf.d/50-x.conf", '[storage]\ndriver = "vfs"\n')
    write(tmp_path, "/opt/my.conf", '\n\n[storage]\n  driver = "btrfs"\n')
    cfg, findings = load(tmp_path, CONTAINERS_STORAGE_CONF="/opt/my.conf")
    assert findings == []
    assert cfg.files == ("/opt/my.conf",)
    assert cfg.skipped == ("/etc/containers/storage.conf (replaced by CONTAINERS_STORAGE_CONF)",)
    assert cfg.get("driver").value == "btrfs"
    assert cfg.get("driver").source == "/opt/my.conf:4"
    assert cfg.get("use_composefs").source == "default"


def test_containers_storage_conf_missing_file(tmp_path):
    cfg, findings = load(tmp_path, CONTAINERS_STORAGE_CONF="/nope.conf")
    assert cfg.files == ()
    assert [(f.severity, f.source) for f in findings] == [
        ("warning", "environment CONTAINERS_STORAGE_CONF")]
    assert findings[0].message == ("CONTAINERS_STORAGE_CONF names /nope.conf, which cannot be "
                                   "read; built-in defaults apply")


def test_dropins_order_and_same_name_precedence(tmp_path):
    write(tmp_path, "/usr/share/containers/storage.conf", USR)
    write(tmp_path, "/usr/share/containers/storage.conf.d/10-vendor.conf",
          '[storage.options.overlay]\nuse_composefs = "false"\n')
    write(tmp_path, "/etc/containers/storage.conf.d/10-vendor.conf",
          '# admin\n[storage.options.overlay]\nuse_composefs = "true"\n')
    write(tmp_path, "/usr/share/containers/storage.conf.d/90-late.conf",
          '[storage.options.pull_options]\nconvert_images = "true"\n')
    write(tmp_path, "/etc/containers/storage.rootful.conf.d/20-root.conf",
          '[storage.options.pull_options]\nconvert_images = "false"\nenable_partial_images = "true"\n')
    write(tmp_path, "/etc/containers/storage.rootless.conf.d/30-rootless.conf",
          '[storage]\ndriver = "vfs"\n')
    write(tmp_path, "/etc/containers/storage.conf.d/README", "not a conf file")
    cfg, findings = load(tmp_path)
    assert findings == []
    assert cfg.files == (
        "/usr/share/containers/storage.conf",
        "/etc/containers/storage.conf.d/10-vendor.conf",
        "/etc/containers/storage.rootful.conf.d/20-root.conf",
        "/usr/share/containers/storage.conf.d/90-late.conf",
    )
    assert cfg.skipped == ("/usr/share/containers/storage.conf.d/10-vendor.conf "
                           "(replaced by /etc/containers/storage.conf.d/10-vendor.conf)",)
    assert cfg.get("use_composefs").source == "/etc/containers/storage.conf.d/10-vendor.conf:3"
    # 90-late sorts after 20-root, so it wins although it lives in /usr/share.
    assert cfg.get("convert_images").value == "true"
    assert cfg.get("convert_images").source == "/usr/share/containers/storage.conf.d/90-late.conf:2"
    assert cfg.get("enable_partial_images").source == (
        "/etc/containers/storage.rootful.conf.d/20-root.conf:3")
    # rootless drop-ins are not read by root; the main file's driver stays.
    assert cfg.get("driver").source == "/usr/share/containers/storage.conf:3"
    assert cfg.get("runroot").value == "/run/usr-share"


def test_rootless_dropins_and_defaults(tmp_path):
    write(tmp_path, "/etc/containers/storage.rootless.conf.d/1000/50.conf",
          '[storage]\nrunroot = "/run/user/1000/x"\n')
    write(tmp_path, "/etc/containers/storage.rootful.conf.d/50.conf", '[storage]\ndriver = "vfs"\n')
    cfg, _ = load(tmp_path, uid=1000, XDG_DATA_HOME="/data")
    assert cfg.rootless and cfg.uid == 1000
    assert cfg.files == ("/etc/containers/storage.rootless.conf.d/1000/50.conf",)
    assert cfg.get("graphroot").value == "/data/containers/storage"
    assert cfg.get("runroot").value == "/run/user/1000/x"
    assert cfg.get("driver").source == "default"
    cfg, _ = load(tmp_path / "empty", uid=1000, XDG_RUNTIME_DIR="/run/user/1000")
    assert cfg.get("graphroot").value == "/home/u1000/.local/share/containers/storage"
    assert cfg.get("runroot").value == "/run/user/1000/containers"
    cfg, _ = load(tmp_path / "empty", uid=1000)
    assert cfg.get("runroot").value == "/tmp/storage-run-1000/containers"


def test_toml_boolean_is_rejected(tmp_path):
    write(tmp_path, "/etc/containers/storage.conf",
          "[storage.options.overlay]\nuse_composefs = true\n")
    cfg, findings = load(tmp_path)
    assert [(f.severity, f.source) for f in findings] == [
        ("error", "/etc/containers/storage.conf:2")]
    assert findings[0].message == ("use_composefs = true is a TOML boolean; containers/storage "
                                   "only accepts a string bool here")
    assert findings[0].advice == 'write use_composefs = "true" (quoted)'
    assert cfg.get("use_composefs").value is True
    assert cfgmod.effective_bool(cfg, "use_composefs") is False


def test_invalid_toml_file_is_reported(tmp_path):
    write(tmp_path, "/etc/containers/storage.conf", "[storage\ndriver = 1\n")
    cfg, findings = load(tmp_path)
    assert cfg.files == ()
    assert len(findings) == 1
    f = findings[0]
    assert (f.severity, f.topic, f.source) == ("error", "config", "/etc/containers/storage.conf")
    assert f.message.startswith("invalid TOML, file ignored here: ")
    assert "line 1" in f.message


def test_dotted_keys_inline_tables_and_env_expansion(tmp_path):
    write(tmp_path, "/etc/containers/storage.conf", """\
# dotted keys at the top level
storage.graphroot = "$HOME/store"
storage.options.pull_options.convert_images = "true"
storage.options.overlay = { use_composefs = "1" }
""")
    cfg, findings = load(tmp_path, HOME="/home/alice")
    assert findings == []
    assert cfg.get("graphroot").value == "/home/alice/store"
    assert cfg.get("graphroot").note == "expands to /home/alice/store"
    assert cfg.get("graphroot").source == "/etc/containers/storage.conf:2"
    assert cfg.get("convert_images").source == "/etc/containers/storage.conf:3"
    assert cfg.get("use_composefs").source == "/etc/containers/storage.conf:4"
    assert cfgmod.effective_bool(cfg, "use_composefs") is True


def test_storage_opts_adds_additional_image_stores(tmp_path):
    write(tmp_path, "/usr/share/containers/storage.conf", USR)
    cfg, _ = load(tmp_path, STORAGE_OPTS="additionalimagestore=/mnt/a,overlay.mountopt=nodev")
    v = cfg.get("additionalimagestores")
    assert v.value == ("/usr/lib/containers/storage", "/mnt/a")
    assert v.source == "environment STORAGE_OPTS"


def test_key_lines_ignores_other_tables():
    text = '[a]\nx = 1\n[storage]\n"driver" = "overlay"\n[[arr]]\ndriver = 2\n'
    assert cfgmod.key_lines(text) == {"a": 1, "a.x": 2, "storage": 3, "storage.driver": 4}


def test_parse_bool_is_go_strconv():
    assert [cfgmod.parse_bool(v) for v in ("true", "1", "T", "False", "0", "yes", True)] == [
        True, True, True, False, False, None, None]
