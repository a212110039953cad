"""The pixel families, on tiny random-weight checkpoints loaded the way a downloaded model is."""

import numpy as np
import pytest
import torch
from PIL import Image

from smartcli.errors import OptionError
from smartcli.models.qwen_vl import QUERY_INSTRUCTION
from smartcli.models.registry import load_encoder

# Small pixel budgets keep the tiny Qwen models fast; GME's minimum is 256 tokens of 28x28.
OPTIONS = {"qwen3_vl": {"max_pixels": 24 * 32 * 32}, "gme": {"max_pixels": 300 * 28 * 28}}
FAMILIES = ["clip", "siglip", "siglip2", "qwen3_vl", "gme"]
TEXTS = ["how do I change the default terminal", "Tyre pressure?"]


@pytest.fixture(scope="module")
def encoders(tiny_checkpoints):
    return {name: load_encoder(str(tiny_checkpoints[name]), "cpu", OPTIONS.get(name)) for name in FAMILIES}


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(0)
    wide = Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    tall = Image.fromarray(rng.integers(0, 255, (150, 70, 3), dtype=np.uint8))
    return [wide, tall]


def normalized(x):
    x = x.detach().float()
    return torch.nn.functional.normalize(x, dim=-1).numpy()


def test_the_checkpoint_config_picks_the_family(encoders):
    assert {name: e.info.family for name, e in encoders.items()} == {
        "clip": "clip",
        "siglip": "siglip",
        "siglip2": "siglip2",
        "qwen3_vl": "qwen3_vl",
        "gme": "gme",
    }
    for encoder in encoders.values():
        assert encoder.info.consumes_pixels and len(encoder.info.fingerprint) == 16


@pytest.mark.parametrize("name", FAMILIES)
def test_token_states_are_unit_norm_and_batching_does_not_change_results(encoders, pictures, name):
    encoder = encoders[name]
    for batch, one_by_one in (
        (encoder.encode_queries(TEXTS), [encoder.encode_queries([t])[0] for t in TEXTS]),
        (encoder.encode_documents(pictures), [encoder.encode_documents([p])[0] for p in pictures]),
    ):
        for together, alone in zip(batch, one_by_one):
            assert together.tokens.shape == alone.tokens.shape and together.tokens.shape[1] == encoder.info.dims
            np.testing.assert_allclose(np.linalg.norm(together.tokens, axis=1), 1.0, atol=1e-5)
            assert np.linalg.norm(together.pooled) == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(together.pooled, alone.pooled, atol=1e-5)
            np.testing.assert_allclose(together.tokens, alone.tokens, atol=1e-4)
            assert together.token_ids.tolist() == alone.token_ids.tolist()


def test_clip_pooled_vectors_are_the_model_features(encoders, pictures):
    from transformers import CLIPImageProcessorPil

    encoder = encoders["clip"]
    model, tokenizer = encoder.model, encoder.tokenizer
    with torch.inference_mode():
        text = model.get_text_features(**tokenizer(TEXTS, padding=True, return_tensors="pt")).pooler_output
        processor = CLIPImageProcessorPil.from_pretrained(encoder.info.spec)
        image = model.get_image_features(**processor(images=pictures, return_tensors="pt")).pooler_output
    np.testing.assert_allclose(np.stack([e.pooled for e in encoder.encode_queries(TEXTS)]), normalized(text), atol=1e-6)
    np.testing.assert_allclose(np.stack([e.pooled for e in encoder.encode_documents(pictures)]), normalized(image), atol=1e-6)


def test_clip_token_counts(encoders, pictures):
    encoder = encoders["clip"]
    for text, encoded in zip(TEXTS, encoder.encode_queries(TEXTS)):
        content = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert encoded.token_ids.tolist() == content  # start/end tokens dropped
    (image,) = encoder.encode_documents(pictures[:1])
    assert image.tokens.shape[0] == (32 // 8) ** 2 and set(image.token_ids.tolist()) == {-1}


@pytest.mark.parametrize("name", ["siglip", "siglip2"])
def test_siglip_pooled_vectors_are_the_model_features(encoders, pictures, name):
    encoder = encoders[name]
    model = encoder.model
    texts = [t.lower() for t in TEXTS] if name == "siglip2" else TEXTS
    with torch.inference_mode():
        ids = encoder.tokenizer(texts, padding="max_length", max_length=16, truncation=True, return_tensors="pt")["input_ids"]
        text = model.get_text_features(input_ids=ids).pooler_output  # SigLIP: no attention mask
        inputs = encoder.processor(images=pictures, return_tensors="pt")
        image = model.get_image_features(**inputs).pooler_output
    np.testing.assert_allclose(np.stack([e.pooled for e in encoder.encode_queries(TEXTS)]), normalized(text), atol=1e-6)
    np.testing.assert_allclose(np.stack([e.pooled for e in encoder.encode_documents(pictures)]), normalized(image), atol=1e-6)


def test_siglip_patch_tokens_are_the_pooling_head_on_one_patch(encoders, pictures):
    """With a single key, attention pooling is out_proj(v_proj(patch)) plus the head's MLP block."""
    encoder = encoders["siglip"]
    model = encoder.model
    head = model.vision_model.head
    with torch.inference_mode():
        states = model.get_image_features(**encoder.processor(images=pictures[:1], return_tensors="pt")).last_hidden_state[0]
        dims = states.shape[-1]
        value = states @ head.attention.in_proj_weight[2 * dims :].T + head.attention.in_proj_bias[2 * dims :]
        attended = head.attention.out_proj(value)
        expected = attended + head.mlp(head.layernorm(attended))
    (encoded,) = encoder.encode_documents(pictures[:1])
    assert encoded.tokens.shape[0] == 16
    np.testing.assert_allclose(encoded.tokens, normalized(expected), atol=1e-5)


def test_siglip_text_tokens_are_the_content_tokens(encoders):
    encoder = encoders["siglip"]
    (encoded,) = encoder.encode_queries(["a photo of a cat"])
    assert encoded.token_ids.tolist() == encoder.tokenizer("a photo of a cat", add_special_tokens=False)["input_ids"]


def test_naflex_keeps_each_real_patch_and_respects_the_budget(encoders, tiny_checkpoints, pictures):
    encoder = encoders["siglip2"]
    inputs = encoder.processor(images=pictures, max_num_patches=16, return_tensors="pt")
    for encoded, shape in zip(encoder.encode_documents(pictures), inputs["spatial_shapes"]):
        assert encoded.tokens.shape[0] == int(shape.prod()) <= 16
    larger = load_encoder(str(tiny_checkpoints["siglip2"]), "cpu", {"max_pixels": 40 * 8 * 8})
    assert larger.max_num_patches == 40
    assert 16 < larger.encode_documents(pictures[:1])[0].tokens.shape[0] <= 40


def _qwen_reference(encoder, text=None, image=None):
    """One input through the model the way the reference embedders do it, with no batching."""
    from transformers import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    gme = encoder.info.family == "gme"
    factor = 28 if gme else 32
    system = ("You are a helpful assistant." if gme else "Represent the user's input.") if image else QUERY_INSTRUCTION
    pixels, content = None, text
    if image is not None:
        low, high = (4 * 28 * 28, 16384 * 28 * 28) if gme else (4 * 32 * 32, encoder.max_pixels)
        height, width = smart_resize(image.height, image.width, factor, low, high)
        image = image.resize((width, height))
        processor = Qwen2VLImageProcessorPil.from_pretrained(encoder.info.spec)
        if gme:
            pixels = processor(
                images=[image], size={"shortest_edge": 256 * 28 * 28, "longest_edge": encoder.max_pixels}, return_tensors="pt"
            )
        else:
            pixels = processor(images=[image], do_resize=False, return_tensors="pt")
        content = "<|vision_start|>" + "<|image_pad|>" * (int(pixels["image_grid_thw"].prod()) // 4) + "<|vision_end|>"
    prompt = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
    if gme:
        prompt += "<|endoftext|>"
    ids = encoder.tokenizer(prompt, return_tensors="pt")["input_ids"]
    model = encoder.model
    image_id = model.config.image_token_id
    with torch.inference_mode():
        if gme:
            embeds = model.language_model.embed_tokens(ids)
            if pixels is not None:
                features = model.visual(pixels["pixel_values"], grid_thw=pixels["image_grid_thw"]).pooler_output
                embeds[ids == image_id] = features
            hidden = model.language_model(inputs_embeds=embeds, attention_mask=torch.ones_like(ids)).last_hidden_state
        else:
            extra = (
                {}
                if pixels is None
                else dict(
                    pixel_values=pixels["pixel_values"], image_grid_thw=pixels["image_grid_thw"], mm_token_type_ids=(ids == image_id).int()
                )
            )
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).last_hidden_state
    return normalized(hidden[0, -1]), ids[0].tolist(), pixels


@pytest.mark.parametrize("name", ["qwen3_vl", "gme"])
def test_qwen_pooled_vector_is_the_reference_last_token_embedding(encoders, pictures, name):
    encoder = encoders[name]
    for ours, picture in zip(encoder.encode_documents(pictures), pictures):
        expected, _, _ = _qwen_reference(encoder, image=picture)
        np.testing.assert_allclose(ours.pooled, expected, atol=1e-5)
    for ours, text in zip(encoder.encode_queries(TEXTS), TEXTS):
        expected, _, _ = _qwen_reference(encoder, text=text)
        np.testing.assert_allclose(ours.pooled, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["qwen3_vl", "gme"])
def test_qwen_token_states_drop_control_tokens_and_keep_image_pads(encoders, pictures, name):
    encoder = encoders[name]
    tokenizer = encoder.tokenizer
    control = {
        tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>")
    }
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    (page,) = encoder.encode_documents(pictures[1:])
    _, reference_ids, pixels = _qwen_reference(encoder, image=pictures[1])
    assert page.token_ids.tolist() == [i for i in reference_ids if i not in control]
    assert (page.token_ids == image_pad).sum() == int(pixels["image_grid_thw"].prod()) // 4
    (query,) = encoder.encode_queries(TEXTS[:1])
    _, reference_ids, _ = _qwen_reference(encoder, text=TEXTS[0])
    assert query.token_ids.tolist() == [i for i in reference_ids if i not in control]
    assert image_pad not in query.token_ids


def test_qwen_pictures_stay_within_the_pixel_budget(encoders):
    encoder = encoders["qwen3_vl"]
    huge = Image.new("RGB", (3000, 2000))
    resized = encoder.resize(huge)
    assert resized.width % 32 == 0 and resized.height % 32 == 0
    assert resized.width * resized.height <= encoder.max_pixels
    banner = encoder.resize(Image.new("RGB", (5000, 10)))  # over the 200:1 limit: padded, not refused
    assert banner.width / banner.height <= 200


def test_fixed_resolution_models_refuse_a_pixel_budget(tiny_checkpoints):
    with pytest.raises(OptionError, match="fixed-size square"):
        load_encoder(str(tiny_checkpoints["clip"]), "cpu", {"max_pixels": 10_000})
    with pytest.raises(OptionError, match="at least"):
        load_encoder(str(tiny_checkpoints["qwen3_vl"]), "cpu", {"max_pixels": 100})
