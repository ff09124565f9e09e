"""Dedup screen: how much sharing saves, per layer and per pair of layers, and what is left.

Every figure comes from the dedup engine (:func:`inspector.analysis.dedup.dedup_store`):

* per-layer stores (containers/storage): store totals, one shared/unique bar per composefs
  layer, the layer × layer matrix (objects and bytes both layers hold), the top duplicated
  objects with the bytes a hard link would reclaim, and what deleting each image frees;
* one-object-directory stores (composefs-rs, ostree, bare): totals, per-image payloads, and
  the top objects shared by several images.  The engine has no image × image matrix or
  per-image shared bytes in that mode, so :func:`image_sharing` derives them from the same
  index (set intersections of each image's payload names, nothing judged).

Selecting a top-duplicated object or a layer posts :class:`JumpTo`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, LoadingIndicator, Static

from inspector.analysis.dedup import DedupReport, dedup_store
from inspector.analysis.objects import StoreIndex, build_index
from inspector.stores.model import Store
from inspector.tui.messages import JumpTo
from inspector.tui.screens._common import SecondaryScreen, first_image_with_layer, txt
from inspector.tui.widgets.bars import exact_bytes, human_bytes, shared_unique_bar

BAR_WIDTH = 16

#: A layer × layer matrix beyond this many layers is unreadable (and slow as a DataTable):
#: the layers sharing the most bytes are shown, in store order.
MATRIX_MAX = 40


def matrix_layers(per_layer: dict[str, dict], limit: int) -> list[str]:
    """The layers the matrix shows: all of them, or the *limit* sharing most bytes."""
    layers = list(per_layer)
    if len(layers) <= limit:
        return layers
    top = set(sorted(layers, key=lambda x: (-per_layer[x]["shared_bytes"], x))[:limit])
    return [x for x in layers if x in top]


@dataclass(frozen=True, slots=True)
class ImageSharing:
    """Per-image shared/unique payload bytes and the image × image matrix (images mode)."""

    shared_bytes: dict[str, int]             # image id -> bytes also read by another image
    unique_bytes: dict[str, int]
    matrix: dict[str, dict[str, tuple[int, int]]]   # id -> id -> (objects, bytes)


def image_sharing(store: Store, idx: StoreIndex) -> ImageSharing:
    """Thin adapter over the reference index for stores with one object directory."""
    payloads: dict[str, dict[str, int]] = {}
    for im in store.images:
        names: dict[str, int] = {}
        for lid in im.layers:
            b = idx.blobs.get(lid)
            if b is None:
                continue
            for name, refs in b.by_payload.items():
                names.setdefault(name, refs[0].size)
        payloads[im.id] = names
    shared: dict[str, int] = {}
    unique: dict[str, int] = {}
    matrix: dict[str, dict[str, tuple[int, int]]] = {}
    for a, na in payloads.items():
        others: set[str] = set()
        row = {}
        for b, nb in payloads.items():
            if a == b:
                continue
            common = na.keys() & nb.keys()
            others |= common
            row[b] = (len(common), sum(na[n] for n in common))
        matrix[a] = row
        shared[a] = sum(na[n] for n in others)
        unique[a] = sum(v for n, v in na.items() if n not in others)
    return ImageSharing(shared, unique, matrix)


def _short_object(name: str) -> Text:
    return txt(name if len(name) <= 20 else name[:18] + "…")


def _lines(lines: list[str]) -> Text:
    return Text("\n").join(txt(x) for x in lines)


def _num(n: int | None) -> Text:
    return Text("-" if n is None else f"{n:,}", justify="right")


def _size(n: int | None) -> Text:
    return Text(human_bytes(n), justify="right")


class DedupScreen(SecondaryScreen):
    """Sharing figures of *store*; pass *report* (and/or *index*) to skip the computation."""

    def __init__(self, store: Store, report: DedupReport | None = None,
                 index: StoreIndex | None = None, *, name: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(name=name, id=id, classes="secondary-screen dedup-screen")
        self.store = store
        self.report = report
        self.index = index
        self.sharing: ImageSharing | None = None
        #: layer id (or image id in images mode) -> short key "#1"... used by the matrix
        self.keys: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="dedup-scroll"):
            yield Static(Text("Dedup: computing…"), id="dedup-totals")
            yield LoadingIndicator(id="dedup-loading")
            yield Static(Text(""), id="dedup-per-title", classes="section")
            yield DataTable(id="dedup-per", cursor_type="row", zebra_stripes=True)
            yield Static(Text(""), id="dedup-matrix-title", classes="section")
            yield DataTable(id="dedup-matrix", cursor_type="cell")
            yield Static(Text(""), id="dedup-top-title", classes="section")
            yield DataTable(id="dedup-top", cursor_type="row", zebra_stripes=True)
            yield Static(Text(""), id="dedup-images-title", classes="section")
            yield DataTable(id="dedup-images", cursor_type="row", zebra_stripes=True)
            yield Static(Text(""), id="dedup-note")
        yield Footer()

    def on_mount(self) -> None:
        if self.report is not None and (self.report.mode == "layers" or self.index is not None):
            self._render_report()
        else:
            self._compute()

    @work(thread=True, exit_on_error=False, group="dedup", exclusive=True)
    def _compute(self) -> None:
        idx = self.index or build_index(self.store)
        self.index = idx
        rep = self.report or dedup_store(self.store, idx)
        self.report = rep
        if rep.mode == "images":
            self.sharing = image_sharing(self.store, idx)
        self.app.call_from_thread(self._render_report)

    def worker_failed(self, group: str, message: str) -> None:
        self.query_one("#dedup-loading").display = False
        self.query_one("#dedup-totals", Static).update(
            txt(f"Dedup failed: {message}", style="bold red"))

    # ------------------------------------------------------------------ rendering
    def _render_report(self) -> None:
        rep = self.report
        assert rep is not None
        if rep.mode == "images" and self.sharing is None and self.index is not None:
            self.sharing = image_sharing(self.store, self.index)
        self.query_one("#dedup-loading").display = False
        if rep.mode == "layers":
            self._render_layers(rep.data)
        else:
            self._render_images(rep.data)

    def _totals(self, rows: list[tuple[str, int, str]]) -> None:
        t = Text()
        t.append("Dedup ", style="bold")
        t.append_text(txt(f"{self.store.kind} {self.store.path}", style="dim"))
        for label, value, note in rows:
            t.append(f"\n  {label:<26}", style="bold")
            t.append(f"{human_bytes(value):>10}  ({exact_bytes(value)})")
            if note:
                t.append(f"  {note}", style="dim")
        self.query_one("#dedup-totals", Static).update(t)

    def _render_layers(self, d: dict) -> None:
        tot = d["totals"]
        kinds = tot["objects_in_2plus_layers_by_kind"]
        self._totals([
            ("Logical (all layers)", tot["logical_bytes"], f"{tot['logical_files']:,} files"),
            ("Physical (on disk)", tot["physical_bytes"], f"{tot['physical_files']:,} inodes"),
            ("Distinct content", tot["distinct_bytes"], f"{tot['distinct_objects']:,} objects"),
            ("Saved by sharing", tot["saved_by_sharing_bytes"], "hard links"
             + (f" and reflinks ({tot['reflinked_bytes']:,} bytes)" if tot.get("reflinked_bytes")
                else "")),
            ("Reclaimable", tot["reclaimable_bytes"],
             "if every duplicate copy were hard-linked"),
            ("In 2+ layers", tot["objects_in_2plus_layers_bytes"],
             f"{tot['objects_in_2plus_layers']} objects: {kinds['hardlinked']} hard-linked, "
             f"{kinds['copied']} copied, {kinds['partially_hardlinked']} partly"),
        ])
        layers = list(d["per_layer"])
        self.keys = {lid: f"#{i + 1}" for i, lid in enumerate(layers)}

        self.query_one("#dedup-per-title", Static).update(Text.assemble(
            f"Composefs layers ({len(layers)}): ", ("█ shared", "bold green"), " / ",
            ("█ unique", "blue"), " bytes; bar length = layer bytes / largest layer"))
        per = self.query_one("#dedup-per", DataTable)
        per.clear(columns=True)
        per.add_column("Key", key="key")
        per.add_column("Layer", key="layer")
        per.add_column(Text("Objects", justify="right"), key="objects")
        per.add_column(Text("Bytes", justify="right"), key="bytes")
        per.add_column(Text("Shared", justify="right"), key="shared")
        per.add_column(Text("Unique", justify="right"), key="unique")
        per.add_column("Shared / unique", key="bar")
        per.add_column(Text("Shared %", justify="right"), key="pct")
        per.add_column("Images", key="images")
        scale = max((v["shared_bytes"] + v["unique_bytes"] for v in d["per_layer"].values()),
                    default=0)
        for lid in layers:
            v = d["per_layer"][lid]
            total = v["shared_bytes"] + v["unique_bytes"]
            pct = f"{100 * v['shared_bytes'] / total:.1f}%" if total else "-"
            ims = ", ".join(im.label for im in self.store.images_using(lid))
            per.add_row(Text(self.keys[lid], style="bold"), txt(lid[:12]), _num(v["objects"]), _size(v["bytes"]), _size(v["shared_bytes"]),
                        _size(v["unique_bytes"]),
                        shared_unique_bar(v["shared_bytes"], v["unique_bytes"], BAR_WIDTH, scale),
                        Text(pct, justify="right"), txt(ims or "-"), key=lid)

        shown = matrix_layers(d["per_layer"], MATRIX_MAX)
        title = "Sharing matrix: objects · bytes both layers hold"
        if len(shown) < len(layers):
            title += f" (the {len(shown)} layers sharing most of {len(layers)})"
        self.query_one("#dedup-matrix-title", Static).update(Text(title))
        mx = self.query_one("#dedup-matrix", DataTable)
        mx.clear(columns=True)
        mx.add_column("", key="_row")
        for lid in shown:
            mx.add_column(Text(self.keys[lid], justify="right"), key=lid)
        for a in shown:
            cells: list[Text] = [txt(f"{self.keys[a]} {a[:12]}", style="bold")]
            for b in shown:
                if a == b:
                    cells.append(Text("—", style="dim", justify="right"))
                    continue
                c = d["matrix"][a][b]
                style = "bold green" if c["objects"] else "dim"
                cells.append(Text(f"{c['objects']} · {human_bytes(c['bytes'])}", style=style,
                                  justify="right"))
            mx.add_row(*cells, key=a)

        top = d["top_duplicated"]
        self.query_one("#dedup-top-title", Static).update(
            Text(f"Top duplicated objects ({len(top)}): Enter opens the first path"))
        tt = self.query_one("#dedup-top", DataTable)
        tt.clear(columns=True)
        for label, key in (("Object", "object"), ("Size", "size"), ("Layers", "layers"),
                           ("Inodes", "inodes"), ("Kind", "kind"),
                           ("Reclaimable", "reclaimable"), ("Path", "path")):
            tt.add_column(Text(label, justify="right") if key in ("size", "reclaimable")
                          else label, key=key)
        for i, t in enumerate(top):
            paths = d["objects"].get(t["object"], {}).get("paths", {})
            first = next((p[0] for p in paths.values() if p), None)
            tt.add_row(_short_object(t["object"]), _size(t["size"]),
                       txt(" ".join(self.keys.get(x, x[:12]) for x in t["layers"])),
                       _num(t["inodes"]), Text(t["kind"]),
                       Text(f"{t['reclaimable_bytes']:,}", justify="right",
                            style="bold yellow" if t["reclaimable_bytes"] else "dim"),
                       txt(first), key=str(i))

        self.query_one("#dedup-images-title", Static).update(Text("Images"))
        it = self.query_one("#dedup-images", DataTable)
        it.clear(columns=True)
        it.add_column("Image", key="image")
        it.add_column("Layers", key="layers")
        it.add_column(Text("Logical", justify="right"), key="logical")
        it.add_column(Text("Shared w/ others", justify="right"), key="shared")
        it.add_column(Text("Freed if deleted", justify="right"), key="freed")
        for label, v in d["per_image"].items():
            it.add_row(txt(label), txt(" ".join(self.keys.get(x, x[:12]) for x in v["layers"])
                                        or "(no composefs layer)"),
                       _size(v["logical_bytes"]), _size(v["shared_with_other_images_bytes"]),
                       _size(v["freed_if_deleted_bytes"]), key=v["image"])
        notes = [f"Reflinks: {d['reflinks']['status']}."]
        if d["unreferenced"]:
            notes.append(f"{len(d['unreferenced'])} object(s) no blob references "
                         "(see Problems / verify).")
        for u in d["unreferenced_expected"]:
            notes.append(f"{u['object'][:12]}…: {u['reason']}.")
        self.query_one("#dedup-note", Static).update(_lines(notes))

    def _render_images(self, d: dict) -> None:
        self._totals([
            ("Logical (all images)", d["logical_bytes"], ""),
            ("Physical (on disk)", d["physical_bytes"], f"{d['physical_files']:,} files"),
            ("Distinct content", d["distinct_bytes"], f"{d['distinct_objects']:,} objects"),
            ("Saved by sharing", d["saved_by_sharing_bytes"], "one object dir"),
            ("Reclaimable", d["reclaimable_bytes"], ""),
            ("Shared by 2+ images", d["shared_by_multiple_images"]["bytes"],
             f"{d['shared_by_multiple_images']['objects']} objects"),
        ])
        sh = self.sharing
        ims = [im for im in self.store.images]
        self.keys = {im.id: f"#{i + 1}" for i, im in enumerate(ims)}
        self.query_one("#dedup-per-title", Static).update(Text.assemble(
            f"Images ({len(ims)}): payload bytes ", ("█ shared with another image", "bold green"),
            " / ", ("█ unique", "blue")))
        per = self.query_one("#dedup-per", DataTable)
        per.clear(columns=True)
        for label, key in (("Key", "key"), ("Image", "image"), ("Objects", "objects"),
                           ("Bytes", "bytes"), ("Paths", "paths"), ("Shared", "shared"),
                           ("Unique", "unique"), ("Shared / unique", "bar")):
            per.add_column(label, key=key)
        scale = max((v["payload_bytes"] for v in d["per_image"].values()), default=0)
        for im in ims:
            v = d["per_image"].get(im.label)
            if v is None:
                continue
            s = sh.shared_bytes.get(im.id, 0) if sh else 0
            u = sh.unique_bytes.get(im.id, 0) if sh else 0
            per.add_row(Text(self.keys[im.id], style="bold"), txt(im.label),
                        _num(v["payload_objects"]), _size(v["payload_bytes"]),
                        _num(v["payload_paths"]), _size(s), _size(u),
                        shared_unique_bar(s, u, BAR_WIDTH, scale), key=im.layers[0] if im.layers
                        else im.id)
        mx = self.query_one("#dedup-matrix", DataTable)
        mx.clear(columns=True)
        self.query_one("#dedup-matrix-title", Static).update(
            Text("Sharing matrix: objects · bytes both images read"))
        if sh is not None and len(ims) > 1:
            mx.add_column("", key="_row")
            for im in ims:
                mx.add_column(Text(self.keys[im.id], justify="right"), key=im.id)
            for a in ims:
                cells = [Text(f"{self.keys[a.id]} ", style="bold") + txt(a.label)]
                for b in ims:
                    if a.id == b.id:
                        cells.append(Text("—", style="dim", justify="right"))
                        continue
                    n, by = sh.matrix[a.id][b.id]
                    cells.append(Text(f"{n} · {human_bytes(by)}", justify="right",
                                      style="bold green" if n else "dim"))
                mx.add_row(*cells, key=a.id)
        else:
            mx.display = False
            self.query_one("#dedup-matrix-title", Static).update(
                Text("Sharing matrix: only one image", style="dim"))
        top = d["top_duplicated"]
        self.query_one("#dedup-top-title", Static).update(
            Text(f"Objects read by several images ({len(top)} largest)"))
        tt = self.query_one("#dedup-top", DataTable)
        tt.clear(columns=True)
        for label in ("Object", "Size", "Images", "Logical bytes"):
            tt.add_column(label, key=label.lower())
        for i, t in enumerate(top):
            tt.add_row(_short_object(t["object"]), _size(t["size"]), _num(t["images"]),
                       _size(t["logical_bytes"]), key=str(i))
        self.query_one("#dedup-images-title", Static).display = False
        self.query_one("#dedup-images", DataTable).display = False
        notes = []
        if d["missing_objects"]:
            notes.append(f"{len(d['missing_objects'])} referenced object(s) missing: figures "
                         "use the sizes the images record.")
        self.query_one("#dedup-note", Static).update(_lines(notes))

    # ------------------------------------------------------------------ jumps
    @on(DataTable.RowSelected, "#dedup-per")
    def _layer_selected(self, event: DataTable.RowSelected) -> None:
        lid = event.row_key.value
        if lid is None:
            return
        self.post_message(JumpTo(image=first_image_with_layer(self.store, lid), layer=lid,
                                 path="/"))

    @on(DataTable.RowSelected, "#dedup-images")
    def _image_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(JumpTo(image=event.row_key.value, path="/"))

    @on(DataTable.RowSelected, "#dedup-top")
    def _top_selected(self, event: DataTable.RowSelected) -> None:
        rep = self.report
        if rep is None or event.row_key.value is None:
            return
        t = rep.data["top_duplicated"][int(event.row_key.value)]
        name = t["object"]
        if rep.mode == "layers":
            paths = rep.data["objects"].get(name, {}).get("paths", {})
            for lid, ps in paths.items():
                if ps:
                    self.post_message(JumpTo(image=first_image_with_layer(self.store, lid),
                                             layer=lid, path=ps[0], object=name))
                    return
            return
        idx = self.index
        if idx is None:
            return
        for lid, ref in idx.payload_refs(name):
            self.post_message(JumpTo(image=first_image_with_layer(self.store, lid), layer=lid,
                                     path=ref.path.decode("utf-8", "surrogateescape"),
                                     object=name))
            return
