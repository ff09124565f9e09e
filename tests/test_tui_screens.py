"""Pilot tests of the secondary screens (Objects, Dedup, Problems, Health) on the fixtures.

Each screen is pushed by a bare test App, exactly as the real app pushes it, and the jumps it
posts are collected from the App's ``on_jump_to`` handler.  Figures are the fixtures' golden
values (containers-storage.expected.json: dedup totals, matrix, refs examples).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from inspector.analysis.verify import VerifyReport
from inspector.stores.discover import open_store
from inspector.tui.messages import JumpTo
from inspector.tui.screens import problems as problems_mod
from inspector.tui.screens.dedup import DedupScreen
from inspector.tui.screens.health import HealthScreen
from inspector.tui.screens.objects import ObjectsScreen
from inspector.tui.screens.objects_model import ObjectRow, sort_rows
from inspector.tui.screens.problems import ProblemsScreen
from inspector.tui.widgets.virtual_table import VirtualTable
from test_doctor import fake_host

A = "7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
B = "046a1e9b90e4d3d1229d275525dff99e53a8d2d0756393367d38fa5122513f59"
C = "b7f4dbfbc9efbe78ed8a48bc52faabd3b2280a9047a6823efa6f479c3d4215f0"
IMG_BASE = "ebd1e85c300694dd81a66b8f46490e993f249580c84ca1a37c5ec8414a2dfb88"
IMG_APP1 = "e08c75925e676d24f7540c3ee4cde18d50fa5a307f5e46b297e4c267c8161314"
LIBSHARED1 = "a3/9e88bcce0a671115c4b060ea2bfbc505dae237fb08e8faf8a0a0045a012bb5"
BUSYBOX = "96/d9092db50dfdec7b8ac80fbcfa3039dc763ba7e583bd2b13e88b3ba5f61822"
LIBC = "86/60d529a8b3d1c4c69224926a0ac06cbb13661b5d3f45c2f15bb1031281f842"
SIZE = (120, 40)


class ScreenApp(App):
    """Pushes one screen and records every JumpTo it posts (styled by the app's stylesheet)."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "inspector" / "tui" / "app.tcss")

    def __init__(self, screen) -> None:
        super().__init__()
        self._first = screen
        self.jumps: list[JumpTo] = []

    def on_mount(self) -> None:
        self.push_screen(self._first)

    def on_jump_to(self, message: JumpTo) -> None:
        self.jumps.append(message)


async def settle(app: App, pilot) -> None:
    """Let the screen switch happen, every worker finish and its results land."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def jump_tuple(j: JumpTo) -> tuple:
    return (j.image, j.layer, j.path, j.object)


@pytest.fixture
def cs_store(store_root):
    return open_store(store_root("containers-storage") / "storage")


# --------------------------------------------------------------------------- Objects


def visible_names(screen: ObjectsScreen) -> list[str]:
    return [screen.rows[i].name for i in screen.view]


async def test_objects_lists_every_object_and_cycles_sorts(cs_store):
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        table = s.query_one("#objects-table", VirtualTable)
        assert table.row_count == 49
        assert s.query_one("#objects-title", Static).render().plain.startswith(
            "Objects 49 objects  ·  sorted by size")
        # size: the largest object first (busybox, 163840 bytes), then libc
        assert visible_names(s)[:2] == [BUSYBOX, LIBC]
        cells = [c.plain for c in table._row_fn(0)]
        assert cells == ["160.0 KiB", "1", "1", "ok", BUSYBOX, "/usr/bin/busybox"]
        # mouse: a click moves the cursor (header is line 0), a second click opens the refs
        assert await pilot.click(VirtualTable, offset=(3, 3))
        assert table.cursor == 2 and s.selected_row().name == s.rows[s.view[2]].name
        assert await pilot.click(VirtualTable, offset=(3, 3))
        await settle(app, pilot)
        assert app.focused is s.query_one("#objects-refs", DataTable)
        assert s.refs is not None and s.refs.object == s.rows[s.view[2]].name
        table.focus()
        await pilot.press("s")
        await settle(app, pilot)
        assert s.sort_key == "refs"
        # the zlib licence: two paths in A, one in B
        assert visible_names(s)[0] == "ef/01b0d4f8c7a9b44ed4be3131599b2f5c512c6035879151af87523ec55399d1"
        assert s.rows[s.view[0]].refs == 3
        await pilot.press("s")
        await settle(app, pilot)
        assert s.sort_key == "copies"
        # the empty object: one separate inode in each of A, B and C, referenced by no blob
        first = s.rows[s.view[0]]
        assert (first.name[:12], first.inodes, first.refs, first.state) == (
            "e3/b0c44298f", 3, 0, "unreferenced")
        await pilot.press("s")
        await settle(app, pilot)
        assert s.sort_key == "name"
        assert visible_names(s) == sorted(visible_names(s))
        await pilot.press("s")
        await settle(app, pilot)
        assert s.sort_key == "size"


async def test_objects_digest_prefix_filter_refs_and_jump(cs_store):
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        await pilot.press("slash", *"a39e88")
        await settle(app, pilot)
        assert visible_names(s) == [LIBSHARED1]
        assert s.rows[s.view[0]].first_path == "/opt/app1/lib/libshared1.so"
        assert "digest prefix a39e88" in s.query_one("#objects-title", Static).render().plain
        await pilot.press("enter")          # leave the filter for the list
        assert isinstance(app.focused, VirtualTable)
        await pilot.pause(0.3)              # highlight: paths from the reference index
        refs = s.query_one("#objects-refs", DataTable)
        assert [[c.plain for c in refs.get_row_at(i)] for i in range(refs.row_count)] == [
            ["/opt/app1/lib/libshared1.so", "localhost/app1:1", B[:12], "…"],
            ["/opt/app2/lib/libshared1.so", "localhost/app2:1", C[:12], "…"],
        ]
        await pilot.press("enter")          # select the object: where is it used?
        await settle(app, pilot)
        refs = s.query_one("#objects-refs", DataTable)
        assert app.focused is refs
        rows = [[c.plain for c in refs.get_row_at(i)] for i in range(refs.row_count)]
        assert rows == [
            ["/opt/app1/lib/libshared1.so", "localhost/app1:1", B[:12], "yes"],
            ["/opt/app2/lib/libshared1.so", "localhost/app2:1", C[:12], "yes"],
        ]
        copies = s.query_one("#objects-copies", Static).render().plain
        assert f"overlay/{B}/diff/{LIBSHARED1}" in copies
        assert f"overlay/{C}/diff/{LIBSHARED1}" in copies
        assert copies.count("#1 nlink 2") == 2          # one inode, hard-linked
        await pilot.press("down", "enter")
        await pilot.pause()
        assert [jump_tuple(j) for j in app.jumps] == [
            ("378e08d8c2d08e538b83683352d52f0cd90f3fc0b2580e966a95e42f9b8a858a", C,
             "/opt/app2/lib/libshared1.so", LIBSHARED1)]
        await pilot.press("escape")         # back to the list, still on the screen
        assert isinstance(app.focused, VirtualTable) and app.screen is s


async def test_objects_path_glob_and_file_name_filters(cs_store):
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        await pilot.press("slash", *"/usr/share/zoneinfo/*")
        await settle(app, pilot)
        assert len(s.view) == 12
        assert all(s.rows[i].first_path.startswith("/usr/share/zoneinfo/") for i in s.view)
        inp = s.query_one("#objects-filter")
        inp.value = "*.so*"
        await settle(app, pilot)
        assert sorted(s.rows[i].first_path for i in s.view) == [
            "/opt/app1/lib/libshared1.so", "/opt/app1/lib/libshared2.so",
            "/usr/lib/libc.so.6", "/usr/lib/libz.so.1.2.13"]
        inp.value = "zzzz-no-such-file"
        await settle(app, pilot)
        assert s.view == []
        assert s.query_one("#objects-info", Static).render().plain == "No object matches."


async def test_objects_names_are_shown_literally(cs_store):
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        evil = "/e/[/]m[b]\x1b[31m\x07"
        s.rows.append(ObjectRow(name="ab/[/]" + "0" * 60, size=1, refs=1, layers=(A,), copies=1,
                                inodes=1, state="present", first_path=evil, paths=(evil,),
                                digests=()))
        s._show([len(s.rows) - 1])
        await pilot.pause()
        table = s.query_one(VirtualTable)
        cells = [c.plain for c in table._row_fn(0)]
        assert cells[-1] == "/e/[/]m[b]\\x1b[31m\\x07"
        assert cells[-2] == "ab/[/]" + "0" * 60
        line = table.render_line(1).text           # what the terminal gets: escapes, no markup
        assert line.rstrip().endswith("ab/[/]0000000… /e/[/]m[b]\\x1b[31m\\x07")
        assert "\x1b" not in line and "\x07" not in line
        app.export_screenshot()                    # a full render raises no MarkupError
        info = s.query_one("#objects-info", Static).render().plain
        assert info.splitlines()[0] == "Object  ab/[/]" + "0" * 60


async def test_objects_virtual_list_handles_100k_rows(cs_store):
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        s.rows = [ObjectRow(name=f"{i % 256:02x}/{i:062x}", size=i, refs=1, layers=(A,),
                            copies=1, inodes=1, state="present", first_path=f"/f/{i}",
                            paths=(f"/f/{i}",), digests=()) for i in range(100_000)]
        s._show(sort_rows(s.rows, "size"))
        await pilot.pause()
        table = s.query_one(VirtualTable)
        assert table.row_count == 100_000
        assert s.rows[s.view[0]].size == 99_999
        table.focus()
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor == 99_999
        assert s.rows[s.view[table.cursor]].size == 0
        # only the visible window was rendered, not 100k rows
        assert len(table._cache) < 100
        await pilot.press("slash", *"/f/4242*")
        for _ in range(100):                     # big store: the filter waits for a pause
            await pilot.pause(0.1)
            await app.workers.wait_for_complete()
            if len(s.view) != 100_000:
                break
        await settle(app, pilot)
        assert sorted(s.rows[i].first_path for i in s.view)[:3] == [
            "/f/4242", "/f/42420", "/f/42421"]
        assert len(s.view) == 11


# --------------------------------------------------------------------------- Dedup


async def test_dedup_totals_matrix_and_top(cs_store):
    app = ScreenApp(DedupScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        totals = s.query_one("#dedup-totals", Static).render().plain
        lines = {ln.split("  ")[1].strip(): ln for ln in totals.splitlines()[1:]}
        assert "(13,100 bytes)" in lines["Reclaimable"]
        assert "(9,790 bytes)" in lines["Saved by sharing"]
        assert "(373,917 bytes)  49 objects" in lines["Distinct content"]
        assert "(387,017 bytes)  53 inodes" in lines["Physical (on disk)"]
        mx = s.query_one("#dedup-matrix", DataTable)
        assert mx.get_cell(B, C).plain == "5 · 21.3 KiB"
        assert mx.get_cell(C, B).plain == "5 · 21.3 KiB"
        assert mx.get_cell(A, B).plain == "2 · 1.1 KiB"
        assert mx.get_cell(A, C).plain == "1 · 0 B"
        assert mx.get_cell(B, B).plain == "—"
        per = s.query_one("#dedup-per", DataTable)
        assert [per.get_cell(B, k).plain for k in ("objects", "shared", "unique", "pct")] == [
            "9", "22.4 KiB", "40.3 KiB", "35.7%"]
        top = s.query_one("#dedup-top", DataTable)
        assert [top.get_row_at(0)[i].plain for i in (1, 2, 3, 4, 5, 6)] == [
            "11.7 KiB", "#2 #3", "2", "copied", "12,000", "/opt/app1/share/shared4.dat"]
        assert top.get_row_at(1)[5].plain == "1,100"
        top.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert [jump_tuple(j) for j in app.jumps] == [
            (IMG_APP1, B, "/opt/app1/share/shared4.dat",
             "85/b8db5b8622b7b92bd6ef7b88036fb093a2d878545affa5b6e94939b9e40595")]
        images = s.query_one("#dedup-images", DataTable)
        assert images.get_cell(IMG_APP1, "freed").plain == "53.1 KiB"     # 54,379 bytes


async def test_dedup_single_object_dir_store(store_root):
    store = open_store(store_root("composefs-repo") / "composefs")
    app = ScreenApp(DedupScreen(store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        totals = s.query_one("#dedup-totals", Static).render().plain
        assert "Saved by sharing" in totals and "(104,848 bytes)" in totals
        ids = [im.id for im in store.images]
        mx = s.query_one("#dedup-matrix", DataTable)
        assert mx.get_cell(ids[0], ids[1]).plain == "4 · 102.4 KiB"
        top = s.query_one("#dedup-top", DataTable)
        assert top.row_count == 4
        assert top.get_row_at(0)[3].plain == "140.0 KiB"


# --------------------------------------------------------------------------- Problems


def damage(root: Path) -> None:
    diff = root / "storage" / "overlay" / A / "diff"
    (diff / BUSYBOX).unlink()
    p = diff / LIBC
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))


async def test_problems_verify_lists_missing_and_corrupt_and_jumps(fresh_store):
    root = fresh_store("containers-storage")
    damage(root)
    store = open_store(root / "storage")
    app = ScreenApp(ProblemsScreen(store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert s.query_one("#problems-summary", Static).render().plain.startswith(
            "No verify run yet: press V")
        await pilot.press("V")
        await settle(app, pilot)
        assert s.report is not None and not s.report.cancelled
        table = s.query_one("#problems-table", DataTable)
        rows = [[c.plain for c in table.get_row_at(i)][:6] for i in range(table.row_count)]
        assert rows == [
            ["error", "corrupt", "/usr/lib/libc.so.6", A[:12], LIBC[:18] + "…",
             "localhost/base:1 +2"],
            ["error", "missing", "/usr/bin/busybox", A[:12], BUSYBOX[:18] + "…",
             "localhost/base:1 +2"],
        ]
        summary = s.query_one("#problems-summary", Static).render().plain
        assert summary.splitlines() == [
            "2 error(s), 0 warning(s). 55 objects checked, 52 files hashed (217.9 KiB).",
            "missing 1  corrupt 1"]
        detail = s.query_one("#problems-detail", Static).render().plain
        assert "does not match the object name" in detail
        assert app.focused is table
        await pilot.press("down")
        assert "object not found in" in s.query_one("#problems-detail", Static).render().plain
        await pilot.press("enter")
        await pilot.press("up", "enter")
        await pilot.pause()
        assert [jump_tuple(j) for j in app.jumps] == [
            (IMG_BASE, A, "/usr/bin/busybox", BUSYBOX),
            (IMG_BASE, A, "/usr/lib/libc.so.6", LIBC),
        ]


async def test_objects_marks_what_a_verify_run_found(fresh_store):
    from inspector.analysis.verify import verify_store
    root = fresh_store("containers-storage")
    damage(root)
    store = open_store(root / "storage")
    rep = verify_store(store)
    app = ScreenApp(ObjectsScreen(store, verify_report=rep))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        table = s.query_one(VirtualTable)
        states = {s.rows[s.view[i]].name: table._row_fn(i)[3].plain
                  for i in range(table.row_count)}
        assert states[LIBC] == "corrupt"
        assert states[BUSYBOX] == "MISSING"
        assert sum(1 for v in states.values() if v == "ok") == 46
        await pilot.press("slash", *"8660d5", "enter")
        await settle(app, pilot)
        info = s.query_one("#objects-info", Static).render().plain.splitlines()
        assert info[3].startswith("Verify  corrupt: content sha256 ")


async def test_problems_clean_store_and_given_report(cs_store):
    rep = VerifyReport(store=cs_store)
    app = ScreenApp(ProblemsScreen(cs_store, report=rep))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert s.query_one("#problems-summary", Static).render().plain.startswith(
            "No problems found.")
        assert s.query_one("#problems-table", DataTable).row_count == 0


async def test_problems_picks_up_a_run_made_elsewhere(cs_store):
    class Session:
        verify_report = None

    from textual.screen import Screen
    session = Session()
    app = ScreenApp(ProblemsScreen(cs_store, session=session))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert s.report is None
        rep = VerifyReport(store=cs_store)
        rep.problems = [problems_mod.Problem("missing", "error", ("localhost/base:1",), A,
                                             "/usr/bin/busybox", BUSYBOX, "object not found")]
        await app.push_screen(Screen())           # e.g. the app's verify modal
        await pilot.pause()
        session.verify_report = rep
        app.pop_screen()
        await settle(app, pilot)
        assert s.report is rep
        assert s.query_one("#problems-table", DataTable).row_count == 1


async def test_problems_list_is_cut_at_max_rows(cs_store):
    rep = VerifyReport(store=cs_store)
    rep.problems = [problems_mod.Problem("orphan", "warning", (), A, None, f"aa/{i:062x}",
                                         "present but referenced by no image")
                    for i in range(problems_mod.MAX_ROWS + 7)]
    app = ScreenApp(ProblemsScreen(cs_store, report=rep))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert s.query_one("#problems-table", DataTable).row_count == problems_mod.MAX_ROWS
        assert s.query_one("#problems-summary", Static).render().plain.splitlines() == [
            "0 error(s), 5007 warning(s). 0 objects checked, 0 files hashed (0 B).",
            "orphan 5007",
            "The first 5,000 are listed (errors first); `cfs-inspect verify --json PATH` lists "
            "them all."]


async def test_problems_escape_cancels_a_running_verify(cs_store, monkeypatch):
    started = threading.Event()

    def slow_verify(store, jobs=None, progress=None, cancel=None, index=None):
        progress(3, 10, 4096)
        started.set()
        assert cancel.wait(30), "the screen never cancelled"
        rep = VerifyReport(store=store)
        rep.cancelled = True
        return rep

    monkeypatch.setattr(problems_mod, "verify_store", slow_verify)
    app = ScreenApp(ProblemsScreen(cs_store, autostart=True))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        s = app.screen
        assert s.running
        assert started.wait(30)
        s._tick()
        assert s.query_one("#problems-status", Static).render().plain == (
            "Verifying: 3 of 10 objects hashed, 4.0 KiB read  —  Esc cancels")
        await pilot.press("escape")          # cancels, does not leave the screen
        await settle(app, pilot)
        assert app.screen is s and not s.running
        assert s.query_one("#problems-summary", Static).render().plain.startswith(
            "Verify CANCELLED: results are partial.")
        await pilot.press("escape")          # now it goes back
        await pilot.pause()
        assert app.screen is not s


# --------------------------------------------------------------------------- Health


async def test_health_shows_verdict_findings_and_advice(tmp_path, store_root):
    root, env = fake_host(tmp_path, mkcomposefs=False)
    graphroot = store_root("containers-storage") / "storage"
    app = ScreenApp(HealthScreen(root=root, env=env, store_path=graphroot, uid=0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        verdict = s.query_one("#health-verdict", Static)
        assert verdict.render().plain.splitlines()[0] == (
            "configured but not effective: mkcomposefs not found on PATH")
        assert verdict.has_class("action")
        table = s.query_one("#health-findings", DataTable)
        # the cursor starts on the first finding that needs action, its advice below
        row = [c.plain for c in table.get_row_at(table.cursor_row)]
        assert row == ["ERROR", "Runtime", "mkcomposefs not found on PATH", "PATH=/usr/bin"]
        advice = s.query_one("#health-advice", Static).render().plain.splitlines()
        assert advice[:2] == ["ERROR mkcomposefs not found on PATH", "source: PATH=/usr/bin"]
        assert advice[2].startswith("do:     install the composefs package")
        cfg = s.query_one("#health-config", DataTable)
        assert [c.plain for c in cfg.get_row("storage.options.overlay.use_composefs")] == [
            "use_composefs", '"true"', "/etc/containers/storage.conf:6"]
        stores = s.query_one("#health-stores", Static).render().plain
        assert "3 of 4 layers composefs, 3 of 4 images fully composefs" in stores


async def test_health_good_host(tmp_path, store_root):
    root, env = fake_host(tmp_path)
    graphroot = store_root("containers-storage") / "storage"
    app = ScreenApp(HealthScreen(root=root, env=env, store_path=graphroot, uid=0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        verdict = app.screen.query_one("#health-verdict", Static).render().plain
        assert verdict.splitlines()[0] == "composefs in use for 3 of 4 layers (3 images fully)"


async def test_health_bad_root_is_shown_not_raised(tmp_path):
    app = ScreenApp(HealthScreen(root=str(tmp_path / "nope"), env={}, uid=0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert s.error is not None
        assert s.query_one("#health-verdict", Static).render().plain.startswith(
            "doctor failed: ")


async def test_objects_on_a_composefs_rs_repository(store_root):
    store = open_store(store_root("composefs-repo") / "composefs")
    app = ScreenApp(ObjectsScreen(store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        s = app.screen
        assert len(s.rows) == 13                       # expected.json object_count
        unref = [r.name for r in s.rows if r.state == "unreferenced"]
        assert unref == ["a8/e8d7928896bf16124e66ad598e535cb020c4120f238a7aa86d8c6171a47b63"]
        table = s.query_one(VirtualTable)
        used = [table._row_fn(i)[-1].plain for i in range(table.row_count)]
        assert used.count("(repository metadata)") == 3   # 2 EROFS images + 1 splitstream
        assert used[0] == "/usr/share/data/big.bin  (+2)"


def test_bars_and_matrix_layer_cap():
    from inspector.tui.screens.dedup import matrix_layers
    from inspector.tui.widgets.bars import human_bytes, shared_unique_bar, split_bar
    # B of the fixture: 22,890 shared / 41,279 unique, scaled to A (279,678 bytes)
    bar = shared_unique_bar(22890, 41279, 16, 279678)
    assert bar.plain == "████" + "░" * 12
    assert [(s.start, s.end, str(s.style)) for s in bar.spans] == [
        (0, 1, "bold green"), (1, 4, "blue"), (4, 16, "dim")]
    assert shared_unique_bar(1100, 278578, 16).plain == "█" * 16      # 1 cell stays visible
    assert split_bar([(0, "x")], 0, 5).plain == "░░░░░"
    assert [human_bytes(n) for n in (0, 1023, 1024, 13100, 5 << 30, None)] == [
        "0 B", "1023 B", "1.0 KiB", "12.8 KiB", "5.0 GiB", "?"]
    per = {f"l{i:03d}": {"shared_bytes": i % 7} for i in range(60)}
    shown = matrix_layers(per, 40)
    assert len(shown) == 40 and shown == sorted(shown)          # store order kept
    assert all(per[x]["shared_bytes"] >= 2 for x in shown)
    assert matrix_layers({"a": {"shared_bytes": 0}}, 40) == ["a"]


async def test_engine_failure_is_shown_in_place_not_raised(cs_store, monkeypatch):
    from inspector.tui.screens import dedup as dedup_mod
    from inspector.tui.screens import objects as objects_mod

    def boom(store):
        raise RuntimeError("boom [/] \x1b[2J")

    monkeypatch.setattr(objects_mod, "build_index", boom)
    monkeypatch.setattr(dedup_mod, "build_index", boom)
    app = ScreenApp(ObjectsScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        title = app.screen.query_one("#objects-title", Static).render().plain
        assert title == "Objects: cannot list the store: RuntimeError: boom [/] \\x1b[2J"
        assert app.screen.query_one(VirtualTable).loading is False
    app = ScreenApp(DedupScreen(cs_store))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        totals = app.screen.query_one("#dedup-totals", Static).render().plain
        assert totals == "Dedup failed: RuntimeError: boom [/] \\x1b[2J"
