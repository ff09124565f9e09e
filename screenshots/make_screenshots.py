#!/usr/bin/env python3
"""Regenerate the SVG screenshots in this directory from the shared fixtures.

    .venv/bin/python screenshots/make_screenshots.py [NAME...]

Each entry of :data:`SHOTS` is ``(name, setup)``: ``setup(pilot)`` is an async function run
inside ``app.run_test(size=(120, 36))`` of an app opened on the store fixture named in
:data:`TARGETS` (default: containers-storage); the screenshot is saved as ``<name>.svg``
afterwards.  Add a screen by appending one entry.

Stores are extracted with the system tar (xattrs kept, as the fixture README requires) into a
fixed directory so the paths shown on screen do not change between runs.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Awaitable, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from inspector.tui.app import CfsInspectApp  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
WORK = Path("/tmp/cfs-inspect-screenshots")
SIZE = (120, 36)

Setup = Callable[[object], Awaitable[None]]


def store(name: str) -> Path:
    dest = WORK / name
    if not dest.exists():
        dest.mkdir(parents=True)
        subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf",
                        str(FIXTURES / "stores" / f"{name}.tar.gz"), "-C", str(dest)], check=True)
    return dest


async def settle(pilot, rounds: int = 4) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)


async def open_image(pilot, label: str):
    from textual.widgets import DataTable
    await settle(pilot)
    scr = pilot.app.screen
    table = scr.query_one("#overview-images", DataTable)
    table.focus()
    table.move_cursor(row=[im.label for im in scr.image_keys].index(label))
    await pilot.press("enter")
    await settle(pilot)
    b = pilot.app.screen
    await b.ready.wait()
    return b


# --------------------------------------------------------------------------- shots

async def shot_overview(pilot) -> None:
    await settle(pilot)


async def shot_browser(pilot) -> None:
    b = await open_image(pilot, "localhost/app1:1")
    await b.goto("/opt/app1/lib/libshared1.so")
    await settle(pilot)


async def shot_browser_layer(pilot) -> None:
    b = await open_image(pilot, "localhost/app1:1")
    await b.goto("/etc")
    await settle(pilot)
    await pilot.press("l")
    await settle(pilot)


async def shot_browser_sample(pilot) -> None:
    await settle(pilot)
    b = pilot.app.screen
    await b.ready.wait()
    await b.goto("/names")
    await settle(pilot)


async def shot_search(pilot) -> None:
    await open_image(pilot, "localhost/app2:1")
    await pilot.press("slash", *"*.so", "enter")
    await settle(pilot)


async def shot_search_store(pilot) -> None:
    await settle(pilot)
    await pilot.press("slash", *"d8498327f146", "enter")   # zlib license fs-verity digest
    await settle(pilot)


async def shot_help(pilot) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await settle(pilot)


# ---- secondary screens (objects, dedup, problems, health) ----

def damaged_store() -> Path:
    """A copy of containers-storage with /usr/bin/busybox's object deleted and one byte of
    /usr/lib/libc.so.6's object flipped in layer A (what the Problems screenshot shows)."""
    dest = WORK / "containers-storage-damaged"
    if not dest.exists():
        store("containers-storage")
        subprocess.run(["cp", "-a", str(WORK / "containers-storage"), str(dest)], check=True)
        diff = (dest / "storage/overlay/7be02b4d8b66c53946d5d69a6e0a1de8f789b20e6d8cc13d37e5f87929d5f92e"
                / "diff")
        (diff / "96/d9092db50dfdec7b8ac80fbcfa3039dc763ba7e583bd2b13e88b3ba5f61822").unlink()
        obj = diff / "86/60d529a8b3d1c4c69224926a0ac06cbb13661b5d3f45c2f15bb1031281f842"
        data = bytearray(obj.read_bytes())
        data[100] ^= 0xFF
        obj.write_bytes(bytes(data))
    return dest


def fake_host() -> tuple[str, dict[str, str]]:
    """A host tree for the doctor (``--root``): composefs configured, mkcomposefs on PATH,
    EROFS and overlay in the kernel, so the Health screenshot does not depend on this machine."""
    root = WORK / "host"
    files = {
        "etc/containers/storage.conf": '[storage]\ndriver = "overlay"\n'
        'graphroot = "/var/lib/containers/storage"\n\n[storage.options.overlay]\n'
        'use_composefs = "true"\n\n[storage.options.pull_options]\n'
        'enable_partial_images = "true"\nconvert_images = "true"\n',
        "proc/filesystems": "nodev\tsysfs\nnodev\toverlay\n\terofs\n",
        "proc/sys/kernel/osrelease": "6.12.3\n",
        "dev/loop-control": "",
        "usr/bin/mkcomposefs": "#!/bin/sh\nexit 1\n",
    }
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    (root / "usr/bin/mkcomposefs").chmod(0o755)
    return str(root), {"PATH": "/usr/bin", "HOME": "/root"}


async def shot_objects(pilot) -> None:
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)


async def shot_objects_refs(pilot) -> None:
    await settle(pilot)
    await pilot.press("o")
    await settle(pilot)
    await pilot.press("slash", *"a39e88", "enter", "enter")
    await settle(pilot)


async def shot_dedup(pilot) -> None:
    await settle(pilot)
    await pilot.press("d")
    await settle(pilot)


async def shot_problems(pilot) -> None:
    await settle(pilot)
    await pilot.press("p")
    await settle(pilot)
    await pilot.press("V")
    await settle(pilot, rounds=8)


async def shot_health(pilot) -> None:
    from inspector.tui.screens.health import HealthScreen
    await settle(pilot)
    root, env = fake_host()
    await pilot.app.push_screen(HealthScreen(root=root, env=env, uid=0, store_path=str(
        WORK / "containers-storage" / "storage")))
    await settle(pilot)

# ---- end secondary screens ----


SHOTS: list[tuple[str, Setup]] = [
    ("overview", shot_overview),
    ("browser", shot_browser),
    ("browser-layer-view", shot_browser_layer),
    ("browser-single-image", shot_browser_sample),
    ("search", shot_search),
    ("search-store", shot_search_store),
    ("help", shot_help),
    # secondary screens
    ("objects", shot_objects),
    ("objects-refs", shot_objects_refs),
    ("dedup", shot_dedup),
    ("problems", shot_problems),
    ("health", shot_health),
]

#: shot name -> what to open (default: the containers-storage store)
TARGETS: dict[str, Callable[[], Path]] = {
    "browser-single-image": lambda: FIXTURES / "trees" / "sample" / "sample.cfs",
    "problems": lambda: damaged_store(),
}


def target_for(name: str) -> Path:
    f = TARGETS.get(name)
    return f() if f is not None else store("containers-storage")


async def make(name: str, setup: Setup) -> Path:
    app = CfsInspectApp(target_for(name))
    async with app.run_test(size=SIZE) as pilot:
        await setup(pilot)
        out = app.save_screenshot(f"{name}.svg", path=str(HERE))
    return Path(out)


async def main(names: list[str]) -> int:
    wanted = [s for s in SHOTS if not names or s[0] in names]
    if names and len(wanted) != len(set(names)):
        known = ", ".join(n for n, _ in SHOTS)
        print(f"make_screenshots: unknown name; known: {known}", file=sys.stderr)
        return 2
    for name, setup in wanted:
        print(await make(name, setup))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
