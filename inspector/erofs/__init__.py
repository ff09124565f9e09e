"""erofs layer of cfs-inspect."""
