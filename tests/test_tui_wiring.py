"""The app wires the secondary screens (keys, palette, JumpTo) and V → Problems."""

from __future__ import annotations

import json

from textual.widgets import DataTable

from inspector.tui.app import CfsInspectApp
from inspector.tui.messages import JumpTo
from inspector.tui.screens.browser import BrowserScreen
from inspector.tui.screens.overview import OverviewScreen
from tests.conftest import STORES
from tests.test_tui_core import SIZE, open_cs, open_image, settle, wait_until

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
LAYER = {v["fixture_name"]: k for k, v in CS["layers"].items()}


async def test_secondary_screen_keys_open_and_close(store_root):
    from inspector.tui.screens.dedup import DedupScreen
    from inspector.tui.screens.objects import ObjectsScreen
    from inspector.tui.screens.problems import ProblemsScreen
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        for key, cls in (("o", ObjectsScreen), ("d", DedupScreen), ("p", ProblemsScreen)):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, cls), key
            assert app.screen.store is app.session.store
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, OverviewScreen)
        dedup_scr = None
        await pilot.press("d")
        await settle(pilot)
        dedup_scr = app.screen
        assert dedup_scr.report is app.session.dedup


async def test_jump_to_message_opens_browser(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        im = app.session.image_by_label("localhost/app2:1")
        app.screen.post_message(JumpTo(image=im.id, layer=None, path="/opt/app2/lib/libshared1.so"))
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        await settle(pilot)
        assert b.image.id == im.id and b.source.merged
        assert b.selected == b"/opt/app2/lib/libshared1.so"
        # a JumpTo naming a layer opens that layer's own tree
        b.post_message(JumpTo(image=None, layer=LAYER["B"], path="/etc/.wh.motd"))
        await settle(pilot)
        assert app.screen is b
        assert b.layer_id == LAYER["B"] and b.selected == b"/etc/.wh.motd"


async def test_verify_all_on_damaged_store_lists_problem(fresh_store):
    from inspector.tui.screens.problems import ProblemsScreen
    root = fresh_store("containers-storage")
    ex = CS["refs"]["examples"]["hardlinked_shared"]
    obj = root / "storage" / "overlay" / LAYER["B"] / "diff" / ex["object"]
    obj.chmod(0o644)
    obj.write_bytes(b"y" * ex["size"])
    app = CfsInspectApp(root)
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app1:1")
        assert await b.goto("/opt/app1/lib/libshared1.so")
        await settle(pilot)
        await pilot.press("V")
        await wait_until(pilot, lambda: app.session.verify_report is not None
                         and type(app.screen).__name__ == "ProblemsScreen")
        rep = app.session.verify_report
        assert not rep.cancelled
        corrupt = [p for p in rep.problems if p.kind == "corrupt"]
        assert {(p.layer, p.object, p.path) for p in corrupt} == {
            (LAYER["B"], ex["object"], "/opt/app1/lib/libshared1.so"),
            (LAYER["C"], ex["object"], "/opt/app2/lib/libshared1.so")}
        scr = app.screen
        assert isinstance(scr, ProblemsScreen) and scr.report is rep
        table = scr.query_one("#problems-table", DataTable)
        assert table.row_count == len(rep.problems)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is b
        # the browser's state line now shows the verify result for the selection
        assert b.details.object_state == "corrupt"


async def test_plain_erofs_image_opens_labelled(tmp_path):
    from tests.conftest import SAMPLE
    p = tmp_path / "plain.erofs"
    data = bytearray((SAMPLE / "sample.cfs").read_bytes())
    data[:32] = bytes(32)            # no composefs header: a plain EROFS image
    p.write_bytes(bytes(data))
    app = CfsInspectApp(p)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        assert b.sub_title == "plain.erofs (plain EROFS, not composefs)"
        assert str(b.tree.root.label) == "plain.erofs (plain EROFS, not composefs)"
        assert await b.goto("/external/65bytes")
        await settle(pilot)
        assert b.details.payload == "dc/bf6197a3e24f44f3a60ed326c5c41ba115fa995d02a6ed15d45a0a9e79ad32"


async def test_verify_all_escape_cancels(store_root, monkeypatch):
    import threading

    import inspector.analysis.verify as verify_mod
    from inspector.analysis.verify import VerifyReport
    from inspector.tui.widgets.verify import VerifyScreen
    started = threading.Event()

    def slow_verify(store, jobs=None, progress=None, cancel=None, index=None):
        progress(3, 10, 4096)
        started.set()
        assert cancel.wait(30)           # runs until the user presses Escape
        return VerifyReport(store=store, cancelled=True)

    monkeypatch.setattr(verify_mod, "verify_store", slow_verify)
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        await pilot.press("V")
        await pilot.pause()
        assert isinstance(app.screen, VerifyScreen)
        while not started.is_set():
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        bar = app.screen.query_one("#verify-progress")
        assert (bar.progress, bar.total) == (3, 10)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.session.verify_report is not None)
        rep = app.session.verify_report
        assert rep.cancelled
        assert not isinstance(app.screen, VerifyScreen)


async def test_big_directories_load_in_chunks_and_list_is_capped(tmp_path, monkeypatch):
    import subprocess
    import sys

    import inspector.tui.widgets.filelist as filelist
    from inspector.tui.widgets import filetree
    lines = [b"/ 4096 40755 3 0 0 0 0.0 - - -", b"/d 4096 40755 602 0 0 0 0.0 - - -"]
    lines += [b"/d/sub%04d 4096 40755 2 0 0 0 0.0 - - -" % i for i in range(600)]
    lines += [b"/d/file%04d %d 100644 1 0 0 0 %d.0 - - -" % (i, i, 1700000000 + i)
              for i in range(300)]
    dump = tmp_path / "big.dump"
    dump.write_bytes(b"\n".join(lines) + b"\n")
    img = tmp_path / "big.cfs"
    subprocess.run([sys.executable, "-m", "inspector", "mkimage", "--from-file", str(dump),
                    str(img)], check=True)
    monkeypatch.setattr(filelist, "MAX_ROWS", 500)
    chunks = []
    real_sleep = filetree.asyncio.sleep

    async def counting_sleep(t):
        chunks.append(t)
        await real_sleep(t)
    monkeypatch.setattr(filetree.asyncio, "sleep", counting_sleep)
    app = CfsInspectApp(img)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        b = app.screen
        await b.ready.wait()
        assert await b.goto("/d")
        await settle(pilot)
        node = b.tree.by_path[b"/d"]
        assert len(node.children) == 600           # directories only, in 3 chunks of 250
        assert chunks.count(0) >= 2
        assert str(node.children[0].label) == "sub0000"
        # 900 entries, 500 listed, then one row saying what is left out
        assert len(b.filelist.nodes) == 500
        assert b.filelist.row_count == 501
        assert b.filelist.get_row_at(500)[1].plain == "400 more entries not listed: use / to search"
        await pilot.press("s")                      # by size: the biggest files first
        await settle(pilot)
        assert [n.name for n in b.filelist.nodes[:2]] == [b"file0299", b"file0298"]


def test_open_subcommand_parsing():
    from inspector.cli import build_parser, preprocess
    from inspector.commands.tui import cmd_open
    parser = build_parser()
    args = parser.parse_args(["open", "/some/store", "--basedir", "/objs"])
    assert args.func is cmd_open and args.path == "/some/store" and args.basedir == "/objs"
    args = parser.parse_args(preprocess(["/some/image.cfs"], {"open", "info"}))
    assert args.func is cmd_open and args.path == "/some/image.cfs"
    args = parser.parse_args(preprocess([], {"open", "info"}))
    assert args.func is cmd_open and args.path is None


async def test_store_search_by_digest_lists_every_reader_and_jumps(store_root):
    from inspector.tui.screens.search import SearchScreen
    ex = CS["refs"]["examples"]["copied_shared"]
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        await pilot.press("slash")
        await settle(pilot)
        s = app.screen
        assert isinstance(s, SearchScreen)
        await pilot.press(*ex["identifiers"]["fsverity_digest"][:12], "enter")
        await settle(pilot)
        got = [(r.image, r.layer, r.path.decode(), r.visible) for r in s.results]
        assert got == [(a["image"], a["layer"], a["path"], a["visible"]) for a in ex["answers"]]
        hidden = next(i for i, r in enumerate(s.results) if r.visible is False)
        ol = s.query_one("#search-results")
        ol.focus()
        ol.highlighted = hidden
        await pilot.press("enter")
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        await settle(pilot)
        # hidden in app2's merged view: the jump opens layer A's own tree at that path
        assert b.image.label == "localhost/app2:1" and b.layer_id == LAYER["A"]
        assert b.selected == b"/usr/share/doc/zlib/COPYING"


async def test_store_search_glob_and_errors(store_root):
    from inspector.tui.screens.search import SearchScreen
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        s = SearchScreen.for_store(app.session)
        await app.push_screen(s)
        await settle(pilot)
        s.run_search("libshared1.so")
        await settle(pilot)
        assert sorted((r.image, r.path) for r in s.results) == [
            ("localhost/app1:1", b"/opt/app1/lib/libshared1.so"),
            ("localhost/app2:1", b"/opt/app2/lib/libshared1.so")]
        s.run_search("e3b0c4")      # the empty object: present, but read by no blob
        await settle(pilot)
        assert s.results == []
        assert s.query_one("#search-status").content.plain == "No match for e3b0c4"
        s.run_search("0000000000")
        await settle(pilot)
        assert s.query_one("#search-status").content.plain == \
            "no object, digest or prefix matches '0000000000'"


async def test_small_terminal_and_mouse(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await open_cs(pilot)
        images = scr.query_one("#overview-images", DataTable)
        row = [im.label for im in scr.image_keys].index("localhost/app1:1")
        # click the row (highlights it), click again (selects it: opens the browser)
        assert await pilot.click(images, offset=(3, row + 1))
        await settle(pilot)
        assert images.cursor_row == row
        assert await pilot.click(images, offset=(3, row + 1))
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        await settle(pilot)
        opt = [n.name for n in b.filelist.nodes].index(b"opt")
        assert await pilot.click(b.filelist, offset=(4, opt + 1))
        await settle(pilot)
        assert b.selected == b"/opt" and b.details.kind == "dir"
        svg = app.export_screenshot()
        assert "localhost/app1:1" in svg


async def test_no_path_and_no_default_store(tmp_path, monkeypatch):
    from textual.widgets import Static

    import inspector.stores.discover as discover
    from inspector.tui.app import StartScreen
    monkeypatch.setattr(discover, "default_candidates", lambda: [
        ("containers-storage", tmp_path / "cs"), ("composefs-rs", tmp_path / "cfs")])
    app = CfsInspectApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)
        assert app.open_error == (f"no store found (looked for containers-storage at {tmp_path}/cs; "
                                  f"composefs-rs at {tmp_path}/cfs); give a PATH")
        msg = app.screen.query_one("#start-message", Static).content.plain
        assert msg.startswith("Cannot open the default store\n\nno store found")


async def test_verify_run_on_problems_screen_is_kept_by_the_app(store_root):
    from inspector.tui.messages import VerifyFinished
    from inspector.tui.screens.problems import ProblemsScreen
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, ProblemsScreen)
        version = app.analysis_version
        marker = type("Report", (), {"problems": [], "cancelled": False})()
        app.screen.post_message(VerifyFinished(marker))
        await settle(pilot)
        assert app.session.verify_report is marker
        assert app.analysis_version == version + 1
