"""Widgets and non-Textual helpers of the TUI (session state, sources, tables, bars)."""
