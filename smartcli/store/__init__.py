"""The on-disk index: a SQLite catalog (catalog/) and immutable HDF5 segments (segments.py),
token formats (formats.py), page notes (notes.py) and compaction (compaction.py)."""
