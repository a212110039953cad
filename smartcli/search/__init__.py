"""Query time: SMART scoring (scoring.py), the searcher over a store snapshot (searcher.py),
why a page matched (explain.py) and retrieval metrics on judged queries (evaluate.py)."""
