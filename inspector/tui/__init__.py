"""The Textual front end (the only package that imports Textual).

Layout: ``app.py`` (CfsInspectApp, run_app), ``screens/`` (overview, browser, search, help,
and the secondary screens objects/dedup/problems/health), ``widgets/`` (the file tree, file
list and detail pane, plus the Textual-free ``source``/``session`` adapters over the reader,
the store model and the analysis engine).

Contract for screens: ``app.session`` is a :class:`inspector.tui.widgets.session.Session`
(store, index, dedup, verify_report, available once the store is open); ``app.jump(image,
layer, path)`` opens the browser; ``inspector.tui.messages.JumpTo``/``OpenScreen`` posted by a
screen are handled by the app; screens watch ``app.analysis_version`` to refresh when the
background index/dedup/verify results change.
"""
