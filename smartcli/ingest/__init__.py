"""Ingest: find files (discovery.py, files.py), read their text (discovery.py) or picture them
(render.py, pictures.py), OCR what has no text (ocr.py), plan a run against the catalog
(planning.py) and encode and commit it (indexer.py)."""
