"""The Textual app: open a store or an image in a worker, then the overview or the browser.

``cfs-inspect PATH`` lands here (``run_app``).  Opening runs in a thread worker behind a
loading screen; any failure (missing path, not a store, corrupt image) is shown as a one-line
message on that screen, never as a traceback.  After opening, the store's reference index
and dedup figures are computed by background thread workers; screens watch
``analysis_version`` and refresh when it changes.

Secondary screens (Objects, Dedup, Problems, Health) are built by another module set; the app
imports them lazily and, until they exist, their keys notify "not available yet".  They post
:class:`~inspector.tui.messages.JumpTo` / ``OpenScreen``, handled here.
"""

from __future__ import annotations

import importlib
from functools import partial
import inspect
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, LoadingIndicator, Static

from inspector.composefs.escape import display
from inspector.errors import InspectError
from inspector.stores.model import StoreImage
from inspector.tui.widgets.session import Session

#: name -> (module, class, key, title)
SECONDARY = {
    "objects": ("inspector.tui.screens.objects", "ObjectsScreen", "o", "Objects"),
    "dedup": ("inspector.tui.screens.dedup", "DedupScreen", "d", "Dedup"),
    "problems": ("inspector.tui.screens.problems", "ProblemsScreen", "p", "Problems"),
    "health": ("inspector.tui.screens.health", "HealthScreen", "H", "Health"),
}


class StartScreen(Screen):
    """Shown while the store opens; shows the error if it cannot be opened."""

    BINDINGS = [Binding("q", "app.quit", "Quit")]

    def __init__(self, target: str) -> None:
        super().__init__(classes="start-screen")
        self.target = target

    def compose(self) -> ComposeResult:
        # No Header here: this screen may be replaced before a Header finishes mounting.
        with Vertical(id="start-box"):
            yield Static(Text("Opening " + display(self.target) + " …"), id="start-message")
            yield LoadingIndicator(id="start-loading")
        yield Footer()

    def show_error(self, message: str) -> None:
        self.query_one("#start-loading", LoadingIndicator).display = False
        t = Text("Cannot open " + display(self.target) + "\n\n", style="bold")
        t.append(display(message), style="bold red")
        t.append("\n\nq quits.", style="dim")
        self.query_one("#start-message", Static).update(t)
        self.add_class("failed")


class CfsInspectApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "cfs-inspect"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("o", "open_secondary('objects')", "Objects", show=False),
        Binding("d", "open_secondary('dedup')", "Dedup", show=False),
        Binding("p", "open_secondary('problems')", "Problems", show=False),
        Binding("H", "open_secondary('health')", "Health", show=False),
    ]

    analysis_version: reactive[int] = reactive(0)

    def __init__(self, target: str | Path | None, basedir: str | Path | None = None) -> None:
        super().__init__()
        self.target = None if target is None else str(target)
        self.basedir = None if basedir is None else str(basedir)
        self.session: Session | None = None
        self.open_error: str | None = None
        self._analysis_started = False

    # -- opening -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(StartScreen(self.target or "the default store"))
        self._open()

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _open(self) -> None:
        from inspector.tui.widgets.session import open_store_fast
        try:
            store, pending = open_store_fast(self.target, self.basedir)
            session = Session(store)
            session.naming_pending = pending
            if session.single_image:
                if not store.images:
                    raise InspectError("no image found")
                r = session.reader(store.images[0].layers[0])
                if r.error:
                    raise InspectError(r.error)
        except InspectError as e:
            self.call_from_thread(self._failed, " ".join(str(e).split()))
            return
        except Exception as e:  # noqa: BLE001 - a bug must still not print a traceback
            self.call_from_thread(self._failed, f"{type(e).__name__}: {' '.join(str(e).split())}")
            return
        self.call_from_thread(self._opened, session)

    def _failed(self, message: str) -> None:
        self.open_error = message
        if isinstance(self.screen, StartScreen):
            self.screen.show_error(message)

    def _opened(self, session: Session) -> None:
        from inspector.tui.screens.browser import BrowserScreen
        from inspector.tui.screens.overview import OverviewScreen
        self.session = session
        st = session.store
        self.sub_title = display(f"{st.kind} · {st.path}")
        if session.single_image:
            im = st.images[0]
            self.switch_screen(BrowserScreen(session, im,
                                             plain_erofs=session.is_plain_erofs(im.layers[0])))
        else:
            self.switch_screen(OverviewScreen(session))
        # the first screen calls start_analysis() once it has painted its first view, so
        # the background index walk never delays what the user sees first
        self.set_timer(2.0, self.start_analysis)

    def start_analysis(self) -> None:
        """Start the background index + dedup computation (once)."""
        if self.session is not None and not self._analysis_started:
            self._analysis_started = True
            self._analyse()

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse(self) -> None:
        s = self.session
        if s.naming_pending:
            try:
                s.decide_naming()
            except Exception:  # noqa: BLE001 - stays "unknown": DIGESTs are still checked
                s.naming_pending = False
        try:
            s.ensure_index()
        except Exception as e:  # noqa: BLE001
            s.index_error = " ".join(str(e).split())
        self.call_from_thread(self._bump)
        if s.index is None:
            return
        try:
            s.compute_dedup()
        except Exception as e:  # noqa: BLE001
            s.dedup_error = " ".join(str(e).split())
        self.call_from_thread(self._bump)

    def _bump(self) -> None:
        self.analysis_version += 1

    # -- navigation ----------------------------------------------------------------------------
    def _image_for_layer(self, layer_id: str) -> StoreImage:
        s = self.session
        ims = s.store.images_using(layer_id)
        if ims:
            return ims[0]
        return StoreImage(id=layer_id, names=(f"layer {layer_id[:12]}",), layers=(layer_id,))

    def open_browser(self, image: StoreImage, layer: str | None = None,
                     path: bytes = b"/") -> None:
        from inspector.tui.screens.browser import BrowserScreen
        s = self.session
        pe = s.is_plain_erofs(layer or image.layers[0]) if image.layers else False
        self.push_screen(BrowserScreen(s, image, layer, path, plain_erofs=pe))

    def open_layer(self, layer_id: str) -> None:
        self.open_browser(self._image_for_layer(layer_id), layer_id)

    def jump(self, image: str | None, layer: str | None, path: bytes | str) -> None:
        """Open the browser at *path* of *image* (label or id), in *layer*'s own tree when a
        layer is given, else the merged view; reuses the current browser if there is one."""
        from inspector.tui.screens.browser import BrowserScreen
        s = self.session
        if s is None:
            return
        if isinstance(path, str):
            path = path.encode("utf-8", "surrogateescape")
        im = s.image_by_label(image) if image else None
        if im is None and layer:
            im = self._image_for_layer(layer)
        if im is None:
            self.notify("Nothing to open for that entry", severity="warning")
            return
        if s.single_image:
            layer = None
        scr = self.screen
        if isinstance(scr, BrowserScreen):
            scr.run_worker(partial(scr.switch_to, im, layer, path), group="nav", exclusive=True,
                           exit_on_error=False)
        else:
            self.open_browser(im, layer, path)

    def on_jump_to(self, message) -> None:
        """:class:`inspector.tui.messages.JumpTo` from a secondary screen."""
        self.jump(message.image, message.layer, message.path or "/")

    def on_open_screen(self, message) -> None:
        self.action_open_secondary(message.name)

    def on_verify_finished(self, message) -> None:
        """A verify run made on the Problems screen: keep it for the other screens too."""
        if self.session is not None and message.report is not None:
            self.record_verify(message.report)

    def record_verify(self, rep) -> None:
        """Make *rep* the session's verify result; screens refresh on ``analysis_version``."""
        self.session.verify_report = rep
        self.session.object_states.clear()
        self.analysis_version += 1

    # -- actions -----------------------------------------------------------------------------
    def action_help(self) -> None:
        from inspector.tui.screens.help import HelpScreen
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_overview(self) -> None:
        from inspector.tui.screens.overview import OverviewScreen
        if self.session is None:
            return
        for i, scr in enumerate(self.screen_stack):
            if isinstance(scr, OverviewScreen):
                while self.screen is not scr:
                    self.pop_screen()
                return
        self.push_screen(OverviewScreen(self.session))

    def secondary_available(self, name: str) -> bool:
        mod, cls, _key, _title = SECONDARY[name]
        try:
            return hasattr(importlib.import_module(mod), cls)
        except ImportError:
            return False

    def action_open_secondary(self, name: str) -> None:
        if self.session is None:
            return
        mod, cls, _key, title = SECONDARY[name]
        try:
            screen_cls = getattr(importlib.import_module(mod), cls)
        except (ImportError, AttributeError):
            self.notify(f"{title} screen: not available yet", severity="warning")
            return
        if type(self.screen) is screen_cls:
            return
        s = self.session
        report = {"dedup": s.dedup, "problems": s.verify_report}.get(name)
        known = {"store": s.store, "index": s.index, "session": s, "report": report,
                 "store_path": str(s.store.path)}
        kwargs = {}
        for pname, p in inspect.signature(screen_cls.__init__).parameters.items():
            if pname in known and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                kwargs[pname] = known[pname]
        try:
            self.push_screen(screen_cls(**kwargs))
        except Exception as e:  # noqa: BLE001 - a broken screen must not take the app down
            self.notify(f"{title} screen failed: {display(str(e))}", severity="error",
                        markup=False)

    def action_verify_all(self) -> None:
        from inspector.tui.widgets.verify import VerifyScreen
        if self.session is None or isinstance(self.screen, VerifyScreen):
            return

        def done(rep) -> None:
            if rep is None:
                return
            self.record_verify(rep)
            n = len(rep.problems)
            msg = (f"Verify {'cancelled' if rep.cancelled else 'done'}: {rep.objects_checked} "
                   f"objects checked, {n} problem(s)")
            self.notify(msg, severity="error" if n else "information", timeout=6)
            if self.secondary_available("problems"):
                self.action_open_secondary("problems")
        self.push_screen(VerifyScreen(self.session), done)

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        from inspector.tui.screens.browser import BrowserScreen
        yield SystemCommand("Help: keys", "Every key and what it does", self.action_help)
        if self.session is None:
            return
        s = self.session
        if not s.single_image:
            yield SystemCommand("Store overview", "Images, layers and totals", self.action_overview)
        yield SystemCommand("Verify everything", "Hash every object of the store (V)",
                            self.action_verify_all)
        for name, (_m, _c, key, title) in SECONDARY.items():
            yield SystemCommand(f"{title} screen", f"Open the {title} screen ({key})",
                                lambda n=name: self.action_open_secondary(n))
        from inspector.tui.screens.overview import OverviewScreen
        if isinstance(screen, OverviewScreen):
            yield SystemCommand("Search the store", "Object, digest, prefix, IMAGE:/path or glob "
                                "(/)", screen.action_search)
        if isinstance(screen, BrowserScreen):
            for action, title, help_ in (
                    ("search", "Search", "Path glob, name or digest prefix (/)"),
                    ("cycle_sort", "Cycle sort", "name → size → mtime → refs (s)"),
                    ("toggle_layer", "Toggle layer view", "merged ↔ each layer's own tree (l)"),
                    ("toggle_xattrs", "Toggle composefs xattrs", "show trusted.overlay.* (x)"),
                    ("verify_selection", "Verify selection", "hash the selected object (v)"),
                    ("go_up", "Parent directory", "up one level (backspace)")):
                yield SystemCommand(title, help_, getattr(screen, f"action_{action}"))
        for im in s.store.images:
            yield SystemCommand(f"Open image {display(im.label)}", f"merged view, {len(im.layers)} "
                                "layer(s)", lambda im=im: self.open_browser(im))
        if not s.single_image:
            for lid in s.store.layers:
                yield SystemCommand(f"Open layer {lid[:12]}", "the layer's own tree",
                                    lambda lid=lid: self.open_layer(lid))


def run_app(path: str | Path | None, basedir: str | Path | None = None) -> int:
    """Run the TUI on *path* (None: the default store search); returns an exit code."""
    app = CfsInspectApp(path, basedir)
    app.run()
    return 2 if app.open_error else 0
