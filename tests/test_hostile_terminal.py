"""Terminal safety of the CLI and JSON outputs (issue 6; the TUI is tested by its engineers).

Names, symlink targets, payloads, xattr values, image names and object names carrying control
bytes, escape sequences (``ESC [31m``, ``ESC ]0;title BEL``, C1 ``CSI``) or Textual markup
(``[b]``, ``[@click=quit]``) must reach a terminal escaped, and JSON must be ASCII with the
bytes escaped.  Written to a pipe, the composefs-info compatible commands stay byte-identical
to composefs-info: ``dump``/``ls`` escape by their format, ``objects`` prints payloads raw.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.composefs.dumpfile import parse_dump
from inspector.composefs.writer import build_image

#: canonical dump (as composefs-info prints it) of the hostile image
EVIL_DUMP = rb"""/ 4096 40755 2 0 0 0 0.0 - - -
/\x1b]0;title\x07 0 100644 1 0 0 0 0.0 - - -
/[@click=quit]x 0 100644 1 0 0 0 0.0 - - -
/[b]bold 0 100644 1 0 0 0 0.0 - - -
/bad\xff\x9b 0 100644 1 0 0 0 0.0 - - -
/evil\x1b[31mred 10 100644 1 0 0 0 0.0 ab/\x1b[31mcd - - user.x=\x1b]0;pwn\x07
/lnk 11 120777 1 0 0 0 0.0 \x1b[2J\xc2\x9bclear - -
"""
#: anything that can drive a terminal: C0 but newline and tab, DEL, C1 (as text)
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]".replace("\x0a", "\x0b"))


def assert_safe(text: str) -> None:
    bad = UNSAFE.findall(text)
    assert bad == [], f"raw control characters reach the terminal: {bad!r}"


@pytest.fixture
def image(tmp_path) -> Path:
    """The hostile image, at a path whose name is hostile too."""
    p = tmp_path / "img\x1b[31m.cfs"
    p.write_bytes(build_image(parse_dump(EVIL_DUMP)))
    return p


@pytest.fixture
def tty(monkeypatch, capsys):
    """stdout and stderr report a terminal (after capsys replaced them)."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    return capsys


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# -- images ----------------------------------------------------------------------------------

def test_dump_and_ls_identical_on_pipe_and_terminal(image, capsys, monkeypatch):
    rc, pipe_dump, _ = run(capsys, "dump", str(image))
    assert rc == 0 and pipe_dump.encode("utf-8", "surrogateescape") == EVIL_DUMP
    rc, pipe_ls, _ = run(capsys, "ls", str(image))
    assert pipe_ls.splitlines() == [
        r"/\x1b]0;title\x07", r"/[@click=quit]x", r"/[b]bold", r"/bad\xff\x9b",
        r"/evil\x1b[31mred" + "\t@ " + r"ab/\x1b[31mcd", "/lnk\t-> " + r"\x1b[2J\xc2\x9bclear"]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert run(capsys, "dump", str(image))[1] == pipe_dump
    assert run(capsys, "ls", str(image))[1] == pipe_ls
    assert_safe(pipe_dump + pipe_ls)


def test_objects_raw_on_pipe_escaped_on_terminal(image, capsys, monkeypatch):
    out = main(["objects", str(image)]), capsys.readouterr().out
    assert out == (0, "ab/\x1b[31mcd\n")           # composefs-info prints payloads raw
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert run(capsys, "objects", str(image)) == (0, "ab/\\x1b[31mcd\n", "")


def test_info_escapes_the_image_path(image, tty):
    rc, out, err = run(tty, "info", str(image))
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == f"{image.parent}/img\\x1b[31m.cfs: composefs"
    assert_safe(out)


def test_stat_text_escapes_target_payload_and_xattr(image, tty):
    rc, out, err = run(tty, "stat", str(image), "/lnk")
    assert (rc, err) == (0, "")
    assert "  target      \\x1b[2J\\x9bclear" in out.splitlines()
    rc, out, err = run(tty, "stat", str(image), "/evil\x1b[31mred")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "  path        /evil\\x1b[31mred"
    assert "  payload     ab/\\x1b[31mcd" in lines
    assert "    user.x=\\x1b]0;pwn\\x07" in lines
    assert_safe(out)


def test_stat_json_is_ascii_and_escaped(image, tty):
    rc, out, _ = run(tty, "stat", "--json", str(image), "/evil\x1b[31mred")
    assert rc == 0 and out.isascii()
    d = json.loads(out)
    assert (d["path"], d["payload"]) == ("/evil\\x1b[31mred", "ab/\\x1b[31mcd")
    assert d["xattrs"] == [{"name": "user.x", "value": "\\x1b]0;pwn\\x07"}]
    rc, out, _ = run(tty, "stat", "--json", str(image), "/lnk")
    assert json.loads(out)["symlink_target"] == "\\x1b[2J\\xc2\\x9bclear"     # dump escaping


def test_ls_json_is_ascii_and_escaped(image, tty):
    rc, out, _ = run(tty, "ls", "--json", str(image))
    assert rc == 0 and out.isascii()
    entries = json.loads(out)["entries"] if isinstance(json.loads(out), dict) else json.loads(out)[0]["entries"]
    assert [e["path"] for e in entries] == [
        "/\\x1b]0;title\\x07", "/[@click=quit]x", "/[b]bold", "/bad\\xff\\x9b", "/evil\\x1b[31mred", "/lnk"]
    assert entries[4]["payload"] == "ab/\\x1b[31mcd"
    assert entries[5]["target"] == "\\x1b[2J\\xc2\\x9bclear"


def test_error_message_with_hostile_path_is_one_escaped_line(image, tty):
    rc, out, err = run(tty, "stat", str(image), "/nope\x1b[2J\n\x9b")
    assert (rc, out) == (2, "")
    assert err == (f"cfs-inspect: {image.parent}/img\\x1b[31m.cfs: no such path in image: "
                   "/nope\\x1b[2J\\n\\x9b\n")


# -- stores ----------------------------------------------------------------------------------

CS_APP1 = "storage/overlay/046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59"
STORE_DUMP = rb"""/ 4096 40755 2 0 0 0 0.0 - - -
/evil\x1b[31mred 10 100644 1 0 0 0 0.0 ab/\x1b[31mcd - -
/ok 1100 100644 1 0 0 0 0.0 ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1 - -
"""


@pytest.fixture
def evil_store(fresh_store) -> Path:
    """containers-storage with a hostile image name, blob path, payload and object names."""
    root = fresh_store("containers-storage")
    meta = root / "storage/overlay-images/images.json"
    images = json.loads(meta.read_text())
    images[0]["names"] = ["localhost/\x1b]0;pwned\x07:1", "[b]x[/b]\x9b31m:2"]
    meta.write_text(json.dumps(images))
    app1 = root / CS_APP1
    (app1 / "composefs-data/composefs.blob").write_bytes(build_image(parse_dump(STORE_DUMP)))
    (app1 / "diff/ab").mkdir(exist_ok=True)
    (app1 / "diff/ab/\x1b[31mcd").write_bytes(b"0123456789")
    (app1 / "diff/ab/\x1b]0;orphan\x07").write_bytes(b"x")
    return root


def test_verify_text_and_json_escape_store_names(evil_store, tty):
    rc, out, err = run(tty, "verify", str(evil_store))
    assert rc == 1
    assert_safe(out + err.replace("\x1b[K", "").replace("\r", ""))   # progress: our own ESC[K only
    assert "localhost/\\x1b]0;pwned\\x07:1" in out
    assert "  error   suspicious        ab/\\x1b[31mcd" in out.splitlines()
    assert "  warning orphan            ab/\\x1b]0;orphan\\x07" in out.splitlines()
    assert any(ln.strip().startswith("layer 046a1e9b90e4; /evil\\x1b[31mred;") for ln in out.splitlines())
    rc, out, _ = run(tty, "verify", "--json", str(evil_store))
    assert rc == 1 and out.isascii()
    probs = json.loads(out)["problems"]
    sus = [p for p in probs if p["kind"] == "suspicious"]
    assert [(p["object"], p["path"], p["detail"]) for p in sus] == [
        ("ab/\\x1b[31mcd", "/evil\\x1b[31mred", "payload contains control characters: never opened")]
    assert "ab/\\x1b]0;orphan\\x07" in [p["object"] for p in probs if p["kind"] == "orphan"]


def test_refs_dedup_doctor_escape_store_names(evil_store, tty):
    for argv in (["refs", str(evil_store), "ef01b0d4"], ["dedup", str(evil_store)],
                 ["doctor", str(evil_store)]):
        rc, out, err = run(tty, *argv)
        assert rc in (0, 1), argv
        assert_safe(out + err)
        if argv[0] != "doctor":
            assert "localhost/\\x1b]0;pwned\\x07:1" in out
    rc, out, _ = run(tty, "refs", "--json", str(evil_store), "ab/\x1b[31mcd")
    assert rc == 0 and out.isascii()
    assert [a["path"] for a in json.loads(out)["answers"]] == ["/evil\\x1b[31mred"]
    for argv in (["refs", "--json", str(evil_store), "ef01b0d4"], ["dedup", "--json", str(evil_store)],
                 ["doctor", "--json", str(evil_store)]):
        rc, out, _ = run(tty, *argv)
        assert rc in (0, 1), argv
        assert_safe(out)
        json.loads(out)


def test_json_path_text_never_emits_controls_or_lone_surrogates():
    """verify/refs JSON paths follow docs/json.md: clean UTF-8 as is, else dump escaping
    (a non-UTF-8 byte used to come out as a lone surrogate ``\\udcff``)."""
    from inspector.composefs.escape import json_path_text
    assert json_path_text("/usr/bin/ls") == "/usr/bin/ls"
    assert json_path_text(b"/bad\xff\x9b") == "/bad\\xff\\x9b"
    assert json_path_text("/bad\udcff") == "/bad\\xff"
    assert json_path_text("/evil\x1b[31mred") == "/evil\\x1b[31mred"
    assert json_path_text("/back\\slash") == "/back\\\\slash"
    assert json_path_text(None) is None
