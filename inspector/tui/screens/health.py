"""Health screen: the doctor's answer to "is composefs actually in use here, and if not, why?".

Renders a :class:`~inspector.analysis.doctor.DoctorReport` without re-deriving anything:
the verdict first, then the findings (severity, topic, message, where it came from) with the
advice of the highlighted one, the effective storage configuration with the source of every
value, and one line per image of the examined stores.  The report is given, or produced here
by :func:`~inspector.analysis.doctor.run_doctor` in a thread worker (``r`` runs it again).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, LoadingIndicator, Static

from inspector.analysis.doctor import DoctorReport, run_doctor
from inspector.errors import InspectError
from inspector.stores.model import Store
from inspector.tui.screens._common import SecondaryScreen, txt

_SEV_STYLE = {"ok": "green", "info": "cyan", "warning": "bold yellow", "error": "bold red"}
_SEV_LABEL = {"ok": "ok", "info": "info", "warning": "WARN", "error": "ERROR"}
_TOPIC = {"config": "Configuration", "runtime": "Runtime", "kernel": "Kernel",
          "fsverity": "fs-verity", "store": "Store"}


def _value(v: Any) -> str:
    if isinstance(v, tuple):
        v = list(v)
    return json.dumps(v, ensure_ascii=False)


class HealthScreen(SecondaryScreen):
    """The doctor report of a host (*root*, *env*) and optionally one store (*store_path*)."""

    BINDINGS = [Binding("r", "refresh_report", "Run again")]

    def __init__(self, report: DoctorReport | None = None, *, root: str = "/",
                 env: Mapping[str, str] | None = None,
                 store_path: str | os.PathLike | None = None, uid: int | None = None,
                 store: Store | None = None, name: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(name=name, id=id, classes="secondary-screen health-screen")
        self.report = report
        self.root = root
        self.env = env
        # The doctor examines containers/storage graphroots only: for another kind of store
        # the host's configured graphroot is examined instead of the opened store.
        if store is not None and store.kind != "containers-storage":
            store_path = None
        self.store_path = store_path
        self.uid = uid
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="health-scroll"):
            yield Static(Text("Examining the host…"), id="health-verdict")
            yield LoadingIndicator(id="health-loading")
            yield Static(Text("Findings"), classes="section")
            table = DataTable(id="health-findings", cursor_type="row", zebra_stripes=True)
            table.add_column("", key="severity")
            table.add_column("Topic", key="topic")
            table.add_column("Finding", key="message")
            table.add_column("Source", key="source")
            yield table
            yield Static(Text(""), id="health-advice")
            yield Static(Text("Effective storage configuration"), classes="section",
                         id="health-config-title")
            cfg = DataTable(id="health-config", cursor_type="row")
            cfg.add_column("Setting", key="key")
            cfg.add_column("Value", key="value")
            cfg.add_column("Source", key="source")
            yield cfg
            yield Static(Text("Stores"), classes="section")
            yield Static(Text(""), id="health-stores")
        yield Footer()

    def on_mount(self) -> None:
        if self.report is not None:
            self._show(self.report)
        else:
            self._run()

    def action_refresh_report(self) -> None:
        self.query_one("#health-loading").display = True
        self._run()

    @work(thread=True, exit_on_error=False, group="doctor", exclusive=True)
    def _run(self) -> None:
        try:
            rep = run_doctor(root=self.root, env=self.env, store_path=self.store_path,
                             uid=self.uid)
        except InspectError as e:
            self.app.call_from_thread(self._failed, str(e))
            return
        self.app.call_from_thread(self._show, rep)

    def worker_failed(self, group: str, message: str) -> None:
        self._failed(message)

    def _failed(self, message: str) -> None:
        self.error = message
        self.query_one("#health-loading").display = False
        verdict = self.query_one("#health-verdict", Static)
        verdict.add_class("action")
        verdict.update(txt(f"doctor failed: {message}", style="bold red"))

    def _show(self, rep: DoctorReport) -> None:
        self.report = rep
        self.error = None
        self.query_one("#health-loading").display = False
        verdict = self.query_one("#health-verdict", Static)
        verdict.set_class(rep.needs_action, "action")
        t = txt(rep.verdict, style="bold yellow" if rep.needs_action else "bold green")
        t.append("\n")
        n_act = sum(1 for f in rep.findings if f.severity in ("warning", "error"))
        t.append(f"{n_act} finding(s) need action" if n_act else "nothing needs action",
                 style="dim")
        if rep.root not in ("", "/"):
            t.append("  ·  root ", style="dim")
            t.append_text(txt(rep.root, style="dim"))
        verdict.update(t)

        table = self.query_one("#health-findings", DataTable)
        table.clear()
        for i, f in enumerate(rep.findings):
            table.add_row(Text(_SEV_LABEL.get(f.severity, f.severity),
                               style=_SEV_STYLE.get(f.severity, "")),
                          Text(_TOPIC.get(f.topic, f.topic)), txt(f.message), txt(f.source),
                          key=str(i))
        first = next((i for i, f in enumerate(rep.findings)
                      if f.severity in ("error", "warning")), 0)
        if rep.findings:
            table.move_cursor(row=first)
        self._advice(first if rep.findings else None)

        cfg = self.query_one("#health-config", DataTable)
        cfg.clear()
        c = rep.config
        title = "Effective storage configuration"
        if c.rootless:
            title += f" (uid {c.uid}, rootless)"
        files = ", ".join(c.files) if c.files else "none (built-in defaults)"
        self.query_one("#health-config-title", Static).update(
            Text(title + "  ·  files read: ") + txt(files))
        for v in c.values:
            cfg.add_row(txt(v.key.rsplit(".", 1)[-1]), txt(_value(v.value)),
                        txt("default" if v.is_default else v.source,
                            style="dim" if v.is_default else ""), key=v.key)

        s = Text()
        for i, st in enumerate(rep.stores):
            if i:
                s.append("\n")
            s.append_text(txt(st.path, style="bold"))
            s.append("  ")
            s.append_text(txt(f"({st.source})", style="dim"))
            s.append(f"\n  {st.composefs_layer_count} of {len(st.layers)} layers composefs, "
                     f"{st.fully_composefs_images} of {len(st.images)} images fully composefs")
            for im in st.images:
                label = im.names[0] if im.names else im.id[:12]
                s.append("\n  ")
                s.append_text(txt(f"{label:<40}"))
                style = "green" if im.fully_composefs else "yellow"
                s.append(f" {im.composefs_layers} of {len(im.layers)} layers composefs",
                         style=style)
        if not rep.stores:
            s.append("no store examined", style="dim")
        self.query_one("#health-stores", Static).update(s)
        if rep.findings:
            table.focus(scroll_visible=False)
        scroll = self.query_one("#health-scroll", VerticalScroll)
        self.call_after_refresh(scroll.scroll_home, animate=False)

    def _advice(self, i: int | None) -> None:
        box = self.query_one("#health-advice", Static)
        rep = self.report
        if rep is None or i is None or i >= len(rep.findings):
            box.update(Text(""))
            return
        f = rep.findings[i]
        t = Text()
        t.append(f"{_SEV_LABEL.get(f.severity, f.severity)} ", style=_SEV_STYLE.get(f.severity, ""))
        t.append_text(txt(f.message))
        t.append("\nsource: ", style="bold")
        t.append_text(txt(f.source))
        if f.advice and f.severity != "ok":
            t.append("\ndo:     ", style="bold")
            t.append_text(txt(f.advice))
        box.update(t)

    @on(DataTable.RowHighlighted, "#health-findings")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._advice(int(event.row_key.value))
