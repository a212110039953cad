import numpy as np
import pytest

from smartcli.models.base import default_model_path


def test_pooled_vector_equals_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    texts = [
        "how do I change the default terminal",
        "Feed the sourdough starter with equal weights of flour and water once a day.",
        "x",
    ]
    reference = SentenceTransformer(str(default_model_path()), device="cpu").encode(texts, normalize_embeddings=True)
    ours = np.stack([e.pooled for e in encoder.encode_documents(texts)])
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_token_states_are_unit_norm_and_exclude_special_tokens(encoder):
    (encoded,) = encoder.encode_documents(["Check the tyre pressure every week."])
    tokenizer = encoder.tokenizer
    expected = tokenizer("Check the tyre pressure every week.", add_special_tokens=False)["input_ids"]
    assert encoded.token_ids.tolist() == expected
    assert not set(encoded.token_ids.tolist()) & set(tokenizer.all_special_ids)
    np.testing.assert_allclose(np.linalg.norm(encoded.tokens, axis=1), 1.0, atol=1e-5)
    text = "Check the tyre pressure every week."
    assert [text[s:e] for s, e in encoded.spans] == tokenizer.convert_ids_to_tokens(expected) or all(
        text[s:e].lower().startswith(t.strip("#")[:1]) for (s, e), t in zip(encoded.spans, tokenizer.convert_ids_to_tokens(expected))
    )


def test_long_text_is_encoded_in_windows_that_keep_every_token(encoder):
    # Whole-word tokens only, so that each window's text re-tokenizes to the same ids.
    words = ["apple", "river", "green", "house", "music", "paper", "stone"]
    text = " ".join(words[i % len(words)] + (" and" if i % 5 == 0 else "") for i in range(400))
    (long,) = encoder.encode_documents([text])
    n_content = len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_content > encoder.info.max_length  # really needs several windows
    assert long.tokens.shape == (n_content, encoder.info.dims)
    # Tokens come back in text order.
    assert (np.diff(long.spans[:, 0]) >= 0).all()
    # The pooled vector is the normalized mean of the windows' pooled vectors.
    window = encoder.window
    ids = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = [
        text[ids["offset_mapping"][i][0] : ids["offset_mapping"][min(i + window, n_content) - 1][1]] for i in range(0, n_content, window)
    ]
    window_vectors = [e.pooled for e in encoder.encode_documents(pieces)]
    expected = np.mean(window_vectors, axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(long.pooled, expected, atol=2e-3)
    assert np.linalg.norm(long.pooled) == pytest.approx(1.0, abs=1e-5)


def test_batched_and_single_encoding_agree(encoder):
    texts = ["short", "a somewhat longer sentence about bicycles and brakes", "middle length text"]
    together = encoder.encode_documents(texts, batch_size=3)
    for text, batched in zip(texts, together):
        (alone,) = encoder.encode_documents([text])
        np.testing.assert_allclose(batched.pooled, alone.pooled, atol=1e-5)
        np.testing.assert_allclose(batched.tokens, alone.tokens, atol=1e-4)


def test_model_info_is_recorded(encoder):
    info = encoder.info
    assert info.dims == 384 and info.pooling == "mean" and info.max_length == 256
    assert len(info.fingerprint) == 16 and info.spec == "default"
