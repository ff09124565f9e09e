"""composefs layer of cfs-inspect."""
