"""Command-line conventions: option positions, subcommand detection, one-line errors."""

from __future__ import annotations

import pytest

from conftest import SAMPLE
from inspector.cli import main, one_line, preprocess


def test_first_word_subcommand_or_open():
    cmds = {"dump", "ls", "open", "verify"}
    assert preprocess(["dump", "x.cfs"], cmds) == ["dump", "x.cfs"]
    assert preprocess(["/var/lib/containers"], cmds) == ["open", "/var/lib/containers"]
    assert preprocess(["--basedir", "dump", "img"], cmds) == ["--basedir", "dump", "open", "img"]
    assert preprocess(["--basedir=/o", "dump", "img"], cmds) == ["--basedir=/o", "dump", "img"]
    assert preprocess([], cmds) == ["open"]
    assert preprocess(["--help"], cmds) == ["--help"]


def test_option_before_and_after_subcommand(capsysbinary, sample_objects):
    a = main(["--basedir", str(sample_objects), "missing-objects", str(SAMPLE / "sample.cfs")])
    out_a = capsysbinary.readouterr().out
    b = main(["missing-objects", f"--basedir={sample_objects}", str(SAMPLE / "sample.cfs")])
    out_b = capsysbinary.readouterr().out
    assert (a, b, out_a, out_b) == (0, 0, b"", b"")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["dump"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "cfs-inspect dump: error: the following arguments are required: IMAGE")
    with pytest.raises(SystemExit) as e:
        main(["dump", "--bogus", str(SAMPLE / "sample.cfs")])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "cfs-inspect: error: unrecognized arguments: --bogus"


def test_error_messages_are_one_terminal_safe_line():
    assert one_line("bad name a\x1b[31m\nb") == "bad name a\\x1b[31m\\nb"


def test_missing_image_file(capsys, tmp_path):
    assert main(["info", str(tmp_path / "nope.cfs")]) == 2
    assert capsys.readouterr().err == f"cfs-inspect: {tmp_path / 'nope.cfs'}: cannot open: No such file or directory\n"


def test_directory_as_image(capsys, tmp_path):
    assert main(["dump", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"cfs-inspect: {tmp_path}: not a regular file\n"
