"""What a query's text becomes before it is scored, whoever asks (a session, an evaluation, tune).

A query is usable when its text keeps a character once normalised (control characters, zero-width
spaces, soft hyphens and DEL are dropped, as in page text) and the model reads at least one of its
tokens as a known word (an emoji-only query, or one word over the tokenizer's word length, encodes
to nothing but "unknown"). Anything else is a :class:`QueryError`, decided here once for every
caller, before anything is scored: a mean over zero query tokens has no value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from smartcli import defaults
from smartcli.errors import QueryError
from smartcli.models.base import Encoded, normalize_text

# Tokenizing a huge query costs far more than the token cap keeps: it is cut by characters first.
QUERY_CHARS = defaults.MAX_QUERY_TOKENS * 16
# normalize_text leaves ASCII text's control characters as they are (page text is stored so);
# in a query they are no words: spaces.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

NO_CHARACTERS = "no_characters"  # nothing left once control and invisible characters are dropped
NO_KNOWN_WORDS = "no_known_words"  # every token is the model's "unknown"
NOT_FINITE = "not_finite"  # the model gave vectors that are not numbers


def prepare_query(text: str, index: int = 0) -> str:
    """The text a query is encoded from: cut to ``QUERY_CHARS`` characters, then normalised as
    page text is (ligatures, full-width forms, invisible characters). Raises QueryError when
    nothing is left."""
    prepared = " ".join(_CONTROL.sub(" ", normalize_text(text[:QUERY_CHARS])).split())
    if not prepared:
        raise QueryError("the query has no characters to search for (only control, invisible or space characters)", NO_CHARACTERS, index)
    return prepared


def encode_queries(encoder, queries: Sequence[str]) -> tuple[list[str], list[Encoded]]:
    """Each query prepared and encoded by ``encoder``: (the prepared texts, their encodings).
    Raises QueryError for the first query that cannot be searched."""
    texts = [prepare_query(q, i) for i, q in enumerate(queries)]
    encoded = encode_prepared(encoder, texts)
    for i, e in enumerate(encoded):
        check_encoded(e, i, encoder.info.name)
    return texts, encoded


def encode_prepared(encoder, texts: Sequence[str]) -> list[Encoded | None]:
    """``texts`` encoded by ``encoder``; None for one its tokenizer makes no token of at all
    (combining marks only: the encoder refuses a text of no tokens with a ValueError)."""
    if not texts:
        return []
    try:
        return encoder.encode_queries(list(texts))
    except ValueError:
        found: list[Encoded | None] = []
        for text in texts:  # rare: find which one, by itself
            try:
                found += encoder.encode_queries([text])
            except ValueError:
                found.append(None)
        return found


def check_encoded(encoded: Encoded | None, index: int, model: str) -> None:
    """Raise QueryError unless ``encoded`` holds at least one token state and only finite numbers."""
    if encoded is None or len(encoded.tokens) == 0:
        raise QueryError(
            f"the query has no word {model} knows (emoji, symbols it has no token for, or a single word too long to read)",
            NO_KNOWN_WORDS,
            index,
        )
    if not (np.isfinite(encoded.pooled).all() and np.isfinite(encoded.tokens).all()):
        raise QueryError(f"{model} gave vectors that are not finite numbers for the query", NOT_FINITE, index)
