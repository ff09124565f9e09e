"""Screens of the TUI: overview, browser, search, help (core) and the secondary screens."""
