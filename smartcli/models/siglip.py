"""SigLIP and SigLIP 2 (fixed resolution, model type ``siglip``; NaFlex, model type ``siglip2``).

Pooled vectors are exactly ``get_text_features`` / ``get_image_features``. Text is padded
to the model's full length with no attention mask, as SigLIP was trained (its pooled
vector is the last position, usually padding); the kept content tokens go through the
text ``head``. Each image patch goes through the attention-pooling head on its own: with a
single key the attention weight is 1, so the patch gets exactly the transformation the
head gives the whole image, and lands in the same space.
"""

from __future__ import annotations

from smartcli.models.pixel import PATCH_TOKEN_ID, PixelEncoder

# SigLIP 2 NaFlex checkpoints default to 256 patches; the user may allow more with --max-pixels.
NAFLEX_DEFAULT_PATCHES = 256


class SiglipEncoder(PixelEncoder):
    family = "siglip"
    half_dtype_name = "float16"

    def _load(self, location: str, max_pixels: int | None) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(location, dtype=self.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        self.processor = AutoImageProcessor.from_pretrained(location, backend="pil")
        config = self.model.config
        self.dims = int(config.text_config.projection_size)
        self.text_length = int(config.text_config.max_position_embeddings)
        self.special_ids = set(self.tokenizer.all_special_ids)
        # SigLIP 2 was trained on lowercased text (its Gemma tokenizer does not lowercase by itself).
        self.lowercase = self.family == "siglip2" or "gemma" in type(self.tokenizer).__name__.lower()
        self._set_pixel_budget(config.vision_config, max_pixels)

    def _set_pixel_budget(self, vision_config, max_pixels: int | None) -> None:
        side, patch = int(vision_config.image_size), int(vision_config.patch_size)
        self.max_pixels = side * side
        self.max_item_tokens = (side // patch) ** 2

    def _encode_texts(self, texts: list[str]):
        if self.lowercase:
            texts = [t.lower() for t in texts]
        batch = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.text_length, return_tensors="pt")
        input_ids = batch["input_ids"].to(self.device)
        out = self.model.get_text_features(input_ids=input_ids)  # no attention mask, as in training
        tokens = self.model.text_model.head(out.last_hidden_state)
        for row in range(len(texts)):
            ids = input_ids[row].tolist()
            keep = [i for i, token in enumerate(ids) if token not in self.special_ids]
            yield out.pooler_output[row], tokens[row, keep], [ids[i] for i in keep]

    def _encode_images(self, images: list):
        inputs = self.processor(images=images, return_tensors="pt")
        out = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device, self.dtype))
        for row in range(len(images)):
            yield self._image_result(out.pooler_output[row], out.last_hidden_state[row])

    def _image_result(self, pooled, patches):
        """Each patch ``[n, D]`` through the pooling head alone (a batch of one-key attentions)."""
        tokens = self.model.vision_model.head(patches[:, None, :])
        return pooled, tokens, [PATCH_TOKEN_ID] * tokens.shape[0]


class Siglip2NaflexEncoder(SiglipEncoder):
    """SigLIP 2 NaFlex: native aspect ratio, up to ``max_num_patches`` patches per image."""

    family = "siglip2"
    takes_max_pixels = True

    def _set_pixel_budget(self, vision_config, max_pixels: int | None) -> None:
        patch = int(vision_config.patch_size)
        configured = getattr(self.processor, "max_num_patches", None) or NAFLEX_DEFAULT_PATCHES
        # Position embeddings are interpolated to each image's grid, so any patch count works.
        self.max_num_patches = max(1, max_pixels // (patch * patch)) if max_pixels else int(configured)
        self.max_pixels = self.max_num_patches * patch * patch
        self.max_item_tokens = self.max_num_patches

    def _encode_images(self, images: list):
        inputs = self.processor(images=images, max_num_patches=self.max_num_patches, return_tensors="pt")
        valid = inputs["pixel_attention_mask"].bool()
        out = self.model.get_image_features(
            pixel_values=inputs["pixel_values"].to(self.device, self.dtype),
            pixel_attention_mask=inputs["pixel_attention_mask"].to(self.device),
            spatial_shapes=inputs["spatial_shapes"].to(self.device),
        )
        for row in range(len(images)):
            yield self._image_result(out.pooler_output[row], out.last_hidden_state[row, valid[row].to(self.device)])
