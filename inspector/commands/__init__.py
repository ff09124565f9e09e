"""commands layer of cfs-inspect."""
