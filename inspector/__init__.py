"""cfs-inspect: a reader and inspector for composefs images and their object stores."""

__version__ = "0.1.0"
