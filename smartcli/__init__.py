"""smart: search local PDF and image collections with SMART late interaction."""

__version__ = "0.1.0"
