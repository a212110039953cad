"""Frozen embedding models behind one contract (base.Encoder), chosen by the registry (registry.py)."""
