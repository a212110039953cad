"""CLIP: text and image towers with linear projections into one space.

Pooled vectors are exactly ``get_text_features`` / ``get_image_features``. Token states use
the same heads on every position: text tokens (the final-layer-normed states CLIP pools
from) through ``text_projection``; image patch tokens through ``post_layernorm`` and
``visual_projection``, which is what the model applies to its class token.
"""

from __future__ import annotations

from smartcli.models.pixel import PATCH_TOKEN_ID, PixelEncoder, kept_ids


class ClipEncoder(PixelEncoder):
    family = "clip"
    half_dtype_name = "float16"

    def _load(self, location: str, max_pixels: int | None) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.model = CLIPModel.from_pretrained(location, dtype=self.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        # The PIL backend: the same pixels with or without torchvision installed.
        self.processor = AutoImageProcessor.from_pretrained(location, backend="pil")
        config = self.model.config
        self.dims = int(config.projection_dim)
        self.text_length = int(config.text_config.max_position_embeddings)
        side = int(config.vision_config.image_size)
        self.max_pixels = side * side
        self.max_item_tokens = (side // int(config.vision_config.patch_size)) ** 2
        self.special_ids = set(self.tokenizer.all_special_ids)

    def _encode_texts(self, texts: list[str]):
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.text_length, return_tensors="pt")
        input_ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        out = self.model.get_text_features(input_ids=input_ids, attention_mask=mask)
        tokens = self.model.text_projection(out.last_hidden_state)
        for row, keep in enumerate(kept_ids(input_ids, mask, self.special_ids)):
            yield out.pooler_output[row], tokens[row, keep], input_ids[row, keep].tolist()

    def _encode_images(self, images: list):
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        patches = out.last_hidden_state[:, 1:]  # position 0 is the class token the model pools
        tokens = self.model.visual_projection(self.model.vision_model.post_layernorm(patches))
        for row in range(len(images)):
            yield out.pooler_output[row], tokens[row], [PATCH_TOKEN_ID] * tokens.shape[1]
