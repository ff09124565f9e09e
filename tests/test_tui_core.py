"""Pilot tests of the TUI core: overview, image browser, detail pane, search, sort, jumps,
literal names, errors.  Values come from the fixtures' expected.json and README."""

from __future__ import annotations

import json
import subprocess
import sys

from rich.text import Text
from textual.widgets import DataTable, OptionList, Static

from inspector.tui.app import CfsInspectApp, StartScreen
from inspector.tui.screens.browser import BrowserScreen
from inspector.tui.screens.help import HelpScreen
from inspector.tui.screens.overview import OverviewScreen
from inspector.tui.screens.search import SearchScreen
from inspector.tui.widgets.filetree import FileTree
from inspector.tui.widgets.source import Share
from inspector.tui.widgets.fmt import human
from tests.conftest import SAMPLE, STORES

CS = json.loads((STORES / "containers-storage.expected.json").read_text())
LAYER = {v["fixture_name"]: k for k, v in CS["layers"].items()}
SIZE = (120, 40)


async def settle(pilot, rounds: int = 4) -> None:
    """Let workers (listings, details, analysis) finish and their results paint.

    Starts with a pause longer than Textual's 50 ms screen-switch delay, so a screen pushed
    by the last key is mounted (and its workers started) before they are waited for."""
    await pilot.pause(0.06)
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(pilot, predicate, limit: float = 60.0) -> None:
    """Poll (screens switch after a 50 ms delay, workers start after mount) until *predicate*
    holds; fails after *limit* seconds so a hang shows as a failure, not a stuck run."""
    waited = 0.0
    while not predicate():
        assert waited < limit, "condition not reached"
        await pilot.pause(0.05)
        await pilot.app.workers.wait_for_complete()
        waited += 0.05
    await settle(pilot)


def body_text(screen: BrowserScreen) -> str:
    """The detail pane's text: the part above the "Shared with" list and the part below."""
    out = []
    for part in ("#detail-body", "#detail-tail"):
        content = screen.pane.query_one(part, Static).content
        assert isinstance(content, Text)
        out.append(content.plain)
    return "".join(out)


def row_names(table: DataTable) -> list[str]:
    return [table.get_row_at(i)[1].plain for i in range(table.row_count)]


async def open_cs(pilot) -> OverviewScreen:
    await settle(pilot)
    assert isinstance(pilot.app.screen, OverviewScreen)
    return pilot.app.screen


async def open_image(pilot, label: str) -> BrowserScreen:
    scr = await open_cs(pilot)
    table = scr.query_one("#overview-images", DataTable)
    table.focus()
    idx = [im.label for im in scr.image_keys].index(label)
    table.move_cursor(row=idx)
    await pilot.press("enter")
    await settle(pilot)
    b = pilot.app.screen
    assert isinstance(b, BrowserScreen)
    await b.ready.wait()
    await settle(pilot)
    return b


# --------------------------------------------------------------------------- overview

async def test_overview_lists_images_layers_and_totals(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_cs(pilot)
        images = scr.query_one("#overview-images", DataTable)
        labels = [images.get_row_at(i)[0].plain for i in range(images.row_count)]
        assert sorted(labels) == sorted(CS["images"])
        by_label = {images.get_row_at(i)[0].plain: [c.plain for c in images.get_row_at(i)]
                    for i in range(images.row_count)}
        # layers, logical, unique, shared, verity digests (dedup per_image figures)
        assert by_label["localhost/app1:1"][1:6] == ["2", "335.8 KiB", "40.3 KiB", "294.4 KiB",
                                                     "46/46"]
        assert by_label["localhost/app2:1"][5] == "42/45"      # C: 4 of 7 digests
        assert by_label["localhost/plain:1"][5] == "-"
        layers = scr.query_one("#overview-layers", DataTable)
        rows = {layers.get_row_at(i)[0].plain: [c.plain for c in layers.get_row_at(i)]
                for i in range(layers.row_count)}
        a, b, c, p = (LAYER[x][:12] for x in "ABCP")
        assert set(rows) == {a, b, c, p}
        # id, parent, kind, inodes, objects
        assert rows[a][:5] == [a, "-", "composefs", "74", "39"]
        assert rows[b][:5] == [b, a, "composefs", "16", "9"]
        assert rows[c][:5] == [c, a, "composefs", "20", "8"]
        assert rows[p][:5] == [p, "-", "plain", "12", "-"]
        assert rows[b][6] == "35.7%"      # 22890 shared of 64169
        totals = scr.query_one("#overview-totals", Static).content.plain
        assert "physical 377.9 KiB" in totals          # 387017
        assert "logical 387.5 KiB" in totals           # 396807
        assert "saved by sharing 9.6 KiB" in totals    # 9790
        assert "reclaimable 12.8 KiB" in totals        # 13100


async def test_enter_on_layer_opens_its_own_tree(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_cs(pilot)
        layers = scr.query_one("#overview-layers", DataTable)
        layers.focus()
        layers.move_cursor(row=scr.layer_keys.index(LAYER["B"]))
        await pilot.press("enter")
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        assert b.layer_id == LAYER["B"] and not b.source.merged
        assert await b.goto("/etc")
        await settle(pilot)
        names = row_names(b.filelist)
        assert names[0] == ".wh.motd  ⚑ whiteout: deletes 'motd' below"
        assert names[1] == "app.conf"


# --------------------------------------------------------------------------- browser

async def test_navigate_to_ping_and_detail_values(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/base:1")
        # keys: the root list is sorted dirs first by name: etc home root tmp usr var
        assert row_names(b.filelist) == ["etc/", "home/", "root/", "tmp/", "usr/", "var/"]
        b.filelist.focus()
        await pilot.press("j", "j", "j", "j", "enter")
        await settle(pilot)
        assert b.cwd == b"/usr"
        assert await b.goto("/usr/bin/ping")
        await settle(pilot)
        assert b.selected == b"/usr/bin/ping"
        text = body_text(b)
        lines = dict((ln[:12].strip(), ln[12:]) for ln in text.splitlines() if ln[:1] != " ")
        assert lines["Path"] == "/usr/bin/ping"
        assert lines["Type"] == "regular file"
        assert lines["Mode"] == "-rwxr-xr-x  (0755)"
        assert lines["Owner"] == "uid 0  gid 0"
        assert lines["Size"] == "2.9 KiB (3,000 bytes)"
        assert lines["Modified"] == "2023-11-14 22:13:20 UTC"
        assert lines["Links"] == "1"
        assert lines["Layout"] == "chunk-based"
        assert lines["Payload"] == "76/5c62a06f61f9c731f2eada0ccf5d0140fff9e0ca98fbf108404d92053c0d3d"
        assert lines["Digest"] == ("1005895b6796f7c0ee52d09e081c223a0d762e0360e83426f6b10eb26c20055e"
                                   "  (fs-verity sha256)")
        assert lines["State"] == "present"
        assert lines["Object"].endswith(
            f"overlay/{LAYER['A']}/diff/76/5c62a06f61f9c731f2eada0ccf5d0140fff9e0ca98fbf108404d92053c0d3d")
        assert ("  security.capability = \\x01\\x00\\x00\\x02\\x00\\x20" + "\\x00" * 14 + "\n"
                in text)
        assert "trusted.overlay.redirect" not in text
        await pilot.press("x")
        await pilot.pause()
        assert "  trusted.overlay.redirect = /76/5c62a06f" in body_text(b)
        # the same object read by base layer A in the other images
        assert [(s.image, s.layer, s.path) for s in b.pane.shares] == [
            ("localhost/app1:1", LAYER["A"], b"/usr/bin/ping"),
            ("localhost/app2:1", LAYER["A"], b"/usr/bin/ping")]
        # v verifies the selection: sha256 name and fs-verity DIGEST both match
        await pilot.press("v")
        await settle(pilot)
        assert "State       verified  fsverity-sha256+sha256 match" in body_text(b)


async def test_setuid_mode_string(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/base:1")
        assert await b.goto("/usr/bin/su")
        await settle(pilot)
        assert "Mode        -rwsr-xr-x  (4755)" in body_text(b)


async def test_follow_shared_object_to_other_layer(store_root):
    ex = CS["refs"]["examples"]["hardlinked_shared"]
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app1:1")
        assert await b.goto("/opt/app1/lib/libshared1.so")
        await settle(pilot)
        assert b.details.payload == ex["object"]
        assert b.pane.shares == [Share("localhost/app2:1", LAYER["C"],
                                       b"/opt/app2/lib/libshared1.so", True)]
        ol = b.pane.query_one("#detail-shares", OptionList)
        assert ol.display
        assert app.focused is b.filelist
        await pilot.press("enter")          # on a file: focus its "Shared with" list
        await settle(pilot)
        assert app.focused is ol and ol.highlighted == 0
        await pilot.press("enter")          # jump
        await settle(pilot)
        assert app.screen is b
        assert b.image.label == "localhost/app2:1" and b.source.merged
        assert b.selected == b"/opt/app2/lib/libshared1.so"
        assert b.details.layer == LAYER["C"]
        assert b.details.payload == ex["object"]
        # C's blob has no DIGEST for this hard-linked object
        assert "Digest      -" in body_text(b)
        assert [(s.image, s.path) for s in b.pane.shares] == [
            ("localhost/app1:1", b"/opt/app1/lib/libshared1.so")]


async def test_hidden_share_jumps_to_layer_view(store_root):
    # zlib COPYING of layer A is hidden in app2 by C's opaque marker: the jump opens A's tree
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app1:1")
        assert await b.goto("/opt/app1/LICENSE")
        await settle(pilot)
        shares = b.pane.shares
        hidden = [s for s in shares if s.visible is False]
        assert [(s.image, s.path) for s in hidden] == [("localhost/app2:1",
                                                         b"/usr/share/doc/zlib/COPYING")]
        b.pane.post_message(b.pane.JumpRequest(hidden[0]))
        await settle(pilot)
        assert b.image.label == "localhost/app2:1"
        assert b.layer_id == LAYER["A"] and not b.source.merged
        assert b.selected == b"/usr/share/doc/zlib/COPYING"


async def test_search_by_digest_prefix(store_root):
    ex = CS["refs"]["examples"]["hardlinked_shared"]
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app1:1")
        await pilot.press("slash")
        await settle(pilot)
        s = app.screen
        assert isinstance(s, SearchScreen)
        await pilot.press(*ex["identifiers"]["unique_prefix"], "enter")
        await settle(pilot)
        assert s.results == [b"/opt/app1/lib/libshared1.so"]
        label = s.query_one("#search-results", OptionList).get_option_at_index(0).prompt
        assert label.plain == f"/opt/app1/lib/libshared1.so  object {ex['object']}"
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.screen is b
        assert b.selected == b"/opt/app1/lib/libshared1.so"
        # the fs-verity digest prefix finds the same file; a glob finds by name
        assert app.session.search(b.source, b.image, ex["identifiers"]["fsverity_digest"][:10]) \
            == [(b"/opt/app1/lib/libshared1.so", f"object {ex['object']}")]
        assert [p for p, _ in app.session.search(b.source, b.image, "*.so")] == [
            b"/opt/app1/lib/libshared1.so", b"/opt/app1/lib/libshared2.so"]


async def test_sort_by_size(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/base:1")
        assert await b.goto("/usr/bin")
        await settle(pilot)
        assert b.sort == "name"
        await pilot.press("s")
        await settle(pilot)
        assert b.sort == "size"
        sizes = [n.size for n in b.filelist.nodes]
        assert sizes == sorted(sizes, reverse=True)
        assert b.filelist.nodes[0].name == b"busybox"
        assert b.filelist.get_row_at(0)[2].plain == "160.0 KiB"
        await pilot.press("s", "s")
        assert b.sort == "refs"
        await pilot.press("s")
        assert b.sort == "name"


async def test_merged_view_applies_whiteouts(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app1:1")
        assert await b.goto("/etc")
        await settle(pilot)
        names = row_names(b.filelist)
        assert "motd" not in names and ".wh.motd" not in names
        assert names == ["ssl/", "app.conf", "empty.conf", "group", "hostname", "os-release",
                         "passwd", "shadow"]
        # l: the top layer's own tree shows the literal marker, flagged
        await pilot.press("l")
        await settle(pilot)
        assert b.layer_id == LAYER["B"]
        assert b.cwd == b"/etc"
        assert row_names(b.filelist)[0] == ".wh.motd  ⚑ whiteout: deletes 'motd' below"
        await pilot.press("l")
        await settle(pilot)
        assert b.layer_id == LAYER["A"]
        assert "motd" in row_names(b.filelist)
        await pilot.press("l")
        await settle(pilot)
        assert b.layer_id is None and b.source.merged


async def test_opaque_marker_hides_lower_content(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        b = await open_image(pilot, "localhost/app2:1")
        assert await b.goto("/usr/share/doc/zlib")
        await settle(pilot)
        expected = sorted(e["path"].rsplit("/", 1)[1] for e in CS["merged_paths"]["localhost/app2:1"]
                          if e["path"].startswith("/usr/share/doc/zlib/"))
        assert sorted(row_names(b.filelist)) == expected


# --------------------------------------------------------------------------- single images

async def test_single_image_opens_in_browser_with_escaped_names():
    app = CfsInspectApp(SAMPLE / "sample.cfs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        assert b.source.title == "sample.cfs"
        assert await b.goto("/names")
        await settle(pilot)
        names = row_names(b.filelist)
        assert "tab\\tname" in names
        assert "new\\nline" in names
        assert "latin1-\\xe9" in names
        assert "back\\\\slash" in names
        assert "héllo" in names and "日本" in names
        assert await b.goto(b"/names/new\nline")
        await settle(pilot)
        assert body_text(b).splitlines()[0] == "Path        /names/new\\nline"
        svg = app.export_screenshot()
        assert "new\\nline" in svg and "tab\\tname" in svg


async def test_markup_and_escape_sequences_render_literally(tmp_path):
    dump = tmp_path / "markup.dump"
    dump.write_bytes(
        b"/ 4096 40755 2 0 0 0 0.0 - - -\n"
        b"/[b]x[i] 5 100644 1 0 0 0 0.0 - hello - user.k=[b]v[/b]\n"
        b"/\\x1b[31mred 0 100644 1 0 0 0 0.0 - - -\n"
        b"/[red]dir 4096 40755 2 0 0 0 0.0 - - -\n"
        b"/[red]dir/link[b] 9 120777 1 0 0 0 0.0 [/b]x[/] - -\n")
    img = tmp_path / "[red]mark\x1b[2Jup.cfs"
    subprocess.run([sys.executable, "-m", "inspector", "mkimage", "--from-file", str(dump),
                    str(img)], check=True)
    app = CfsInspectApp(img)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        await settle(pilot)
        assert row_names(b.filelist) == ["[red]dir/", "\\x1b[31mred", "[b]x[i]"]
        tree = b.query_one(FileTree)
        assert [str(n.label) for n in tree.root.children] == ["[red]dir"]
        assert await b.goto(b"/[b]x[i]")
        await settle(pilot)
        text = body_text(b)
        assert "Path        /[b]x[i]" in text
        assert "  user.k = [b]v[/b]" in text
        assert await b.goto(b"/[red]dir/link[b]")
        await settle(pilot)
        assert "Target      [/b]x[/]" in body_text(b)
        assert await b.goto(b"/\x1b[31mred")
        await settle(pilot)
        assert "Path        /\\x1b[31mred" in body_text(b)
        assert b.sub_title == "[red]mark\\x1b[2Jup.cfs"
        assert str(b.tree.root.label) == "[red]mark\\x1b[2Jup.cfs"
        # a notification naming a path is literal too (markup off)
        assert not await b.goto(b"/[bold]nope[/bold]")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert "/[bold]nope[/bold] is not in [red]mark\\x1b[2Jup.cfs" in messages
        svg = app.export_screenshot()
        assert "\x1b" not in svg
        assert "[b]x[i]" in svg and "[red]dir" in svg and "[red]mark\\x1b[2Jup.cfs" in svg


async def test_corrupt_image_shows_error_not_traceback(tmp_path):
    bad = tmp_path / "bad.cfs"
    bad.write_bytes(bytes.fromhex("9a6278d0") + b"\x00" * 60 + b"garbage" * 10)
    app = CfsInspectApp(bad)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)
        msg = app.screen.query_one("#start-message", Static).content.plain
        assert msg.startswith(f"Cannot open {bad}\n\n")
        assert app.open_error and app.open_error in msg
        assert str(bad) in app.open_error
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_missing_path_shows_error(tmp_path):
    app = CfsInspectApp(tmp_path / "nope")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)
        assert app.open_error == f"{tmp_path / 'nope'}: cannot access: No such file or directory"


# --------------------------------------------------------------------------- keys, palette

async def test_help_screen_and_palette_commands(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Help: keys", "Store overview", "Verify everything", "Objects screen",
                  "Dedup screen", "Problems screen", "Health screen",
                  "Open image localhost/app1:1", f"Open layer {LAYER['C'][:12]}"):
            assert t in titles


async def test_verify_all_on_pristine_store(store_root):
    app = CfsInspectApp(store_root("containers-storage"))
    async with app.run_test(size=SIZE) as pilot:
        await open_cs(pilot)
        await pilot.press("V")
        await wait_until(pilot, lambda: app.session.verify_report is not None)
        rep = app.session.verify_report
        assert rep.problems == [] and not rep.cancelled
        assert rep.objects_checked > 0


async def test_corrupt_layer_blob_is_a_problem_in_place(fresh_store):
    root = fresh_store("containers-storage")
    blob = root / "storage" / CS["layers"][LAYER["B"]]["composefs_blob"]
    blob.write_bytes(bytes.fromhex("9a6278d0") + b"\xff" * 2000)
    app = CfsInspectApp(root)
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_cs(pilot)
        images = scr.query_one("#overview-images", DataTable)
        rows = {images.get_row_at(i)[0].plain: images.get_row_at(i) for i in range(images.row_count)}
        problem = rows["localhost/app1:1"][6]
        assert problem.plain.startswith(f"{blob}: ") and problem.style == "bold red"
        assert rows["localhost/app2:1"][6].plain == ""
        layers = scr.query_one("#overview-layers", DataTable)
        lrow = {layers.get_row_at(i)[0].plain: layers.get_row_at(i) for i in range(layers.row_count)}
        assert lrow[LAYER["B"][:12]][7].plain.startswith(f"⚠ {blob}: ")
        b = await open_image(pilot, "localhost/app1:1")
        first = b.filelist.nodes[0]
        assert first.kind == "error" and first.layer == LAYER["B"]
        assert b.filelist.get_row_at(0)[1].plain.startswith(f"layer {LAYER['B'][:12]}: {blob}: ")
        tree = b.tree
        assert str(tree.root.children[0].label).startswith("⚠ layer ")
        # the rest stays browsable: layer A's files
        assert await b.goto("/usr/bin/ping")
        await settle(pilot)
        assert b.details.layer == LAYER["A"] and b.details.kind == "reg"


async def test_composefs_repo_and_ostree_open(store_root):
    cfs = json.loads((STORES / "composefs-repo.expected.json").read_text())
    app = CfsInspectApp(store_root("composefs-repo"))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_cs(pilot)
        assert app.session.store.kind == "composefs-rs"
        images = scr.query_one("#overview-images", DataTable)
        assert images.row_count == len(app.session.store.images) == 2
        totals = scr.query_one("#overview-totals", Static).content.plain
        assert f"logical {human(cfs['dedup']['logical_bytes'])}" in totals
        images.focus()
        await pilot.press("enter")
        await settle(pilot)
        b = app.screen
        assert isinstance(b, BrowserScreen)
        await b.ready.wait()
        assert b.filelist.nodes
    app = CfsInspectApp(store_root("ostree"))
    async with app.run_test(size=SIZE) as pilot:
        scr = await open_cs(pilot)
        assert app.session.store.kind == "ostree"
        scr.query_one("#overview-images", DataTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        b = app.screen
        await b.ready.wait()
        assert await b.goto("/usr/bin/ping")
        await settle(pilot)
        d = b.details
        assert d.payload.endswith(".file") and len(d.payload) == 70
        assert d.object_state == "present"
        await pilot.press("v")
        await settle(pilot)
        assert b.details.object_state == "verified"
