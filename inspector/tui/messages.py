"""Messages the secondary screens post for the app to act on.

The Objects, Dedup, Problems and Health screens never open the image browser themselves: they
do not know how the app arranges its screens.  They post :class:`JumpTo` and the app (which
owns the browser) decides what to do, so every screen stays testable with a bare ``App``.
"""

from __future__ import annotations

from textual.message import Message


class JumpTo(Message):
    """Open the image browser at a place: an image's merged view, or one layer's own tree.

    ``image`` is a :attr:`StoreImage.id` (None when the place is only known by layer, e.g. an
    orphan or a layer no image uses); ``layer`` is the layer id whose tree holds ``path``
    (None: the merged view decides); ``path`` is the absolute path inside the image as a
    ``str`` decoded with ``surrogateescape`` (None: the root); ``object`` is the object name
    the user came from, so the browser can highlight it.
    """

    def __init__(self, image: str | None = None, layer: str | None = None,
                 path: str | None = None, object: str | None = None) -> None:
        super().__init__()
        self.image = image
        self.layer = layer
        self.path = path
        self.object = object

    def __repr__(self) -> str:  # shows up in test failures
        return (f"JumpTo(image={self.image!r}, layer={self.layer!r}, path={self.path!r}, "
                f"object={self.object!r})")


class OpenScreen(Message):
    """Ask the app to show one of the secondary screens by name ("objects", "dedup",
    "problems", "health"), e.g. from a link on another screen."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class VerifyFinished(Message):
    """A verify run started from the Problems screen finished (or was cancelled).

    Carries the :class:`~inspector.analysis.verify.VerifyReport` so the app can keep it as the
    session's latest report (object states in the browser, reopening Problems)."""

    def __init__(self, report) -> None:
        super().__init__()
        self.report = report
