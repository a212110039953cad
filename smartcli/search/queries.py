"""What a query's text becomes before it is encoded, whoever asks (a session, an evaluation)."""

from __future__ import annotations

from smartcli import defaults
from smartcli.models.base import normalize_text

# Tokenizing a huge query costs far more than the token cap keeps: it is cut by characters first.
QUERY_CHARS = defaults.MAX_QUERY_TOKENS * 16


def prepare_query(text: str) -> str:
    """The text a query is encoded from: cut to ``QUERY_CHARS`` characters, then normalised as
    page text is (ligatures, full-width forms, invisible characters)."""
    text = text[:QUERY_CHARS]
    return normalize_text(text) or text
