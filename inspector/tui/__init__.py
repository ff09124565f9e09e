"""tui layer of cfs-inspect."""
