"""stores layer of cfs-inspect."""
