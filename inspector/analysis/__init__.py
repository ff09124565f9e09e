"""analysis layer of cfs-inspect."""
