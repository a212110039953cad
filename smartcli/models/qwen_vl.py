"""Vision-language embedders built on Qwen-VL: Qwen3-VL-Embedding and GME-Qwen2-VL.

Both follow their reference implementations (QwenLM/Qwen3-VL-Embedding, the GME inference
code) and the SMART evaluation code (HanSolo9682/SMART, eval/):

* a chat prompt with a system instruction (documents: the model's default instruction;
  text queries: SMART's document-retrieval instruction) and the picture as
  ``<|vision_start|><|image_pad|>...<|vision_end|>``, one pad per merged patch;
* pictures resized by the reference ``smart_resize`` (sides multiples of patch x merge,
  pixel count within the family's limits), then patchified by the checkpoint's image
  processor (its PIL backend, so torchvision is not needed);
* pooled vector = the last-layer state of the last real token (right padding), normalized;
* token states = the last-layer states of every attended token except control tokens
  (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``, ``<|vision_start|>``,
  ``<|vision_end|>`` and the tokenizer's other special tokens); image-pad tokens are kept.
"""

from __future__ import annotations

import math

from smartcli.errors import OptionError
from smartcli.models.pixel import PixelEncoder, kept_ids

PAPER_WHITE = (255, 255, 255)

CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>")
VISUAL_PLACEHOLDERS = ("<|image_pad|>", "<|video_pad|>")
IMAGE_PAD = "<|image_pad|>"
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
# SMART's instruction for text queries against document pages (eval/.../vidore_dataset.py).
QUERY_INSTRUCTION = "Find a document image that matches the given query."
MAX_ASPECT_RATIO = 200  # smart_resize refuses anything longer; such pictures are padded


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Target (height, width): multiples of ``factor``, area within [min_pixels, max_pixels], aspect kept.

    The resize rule of qwen_vl_utils' ``fetch_image``, which both reference embedders apply.
    """
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def chat_prompt(instruction: str, content: str) -> str:
    """What the Qwen-VL chat template renders for [system instruction, user content] plus the generation prompt."""
    return f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"


class QwenVLEncoder(PixelEncoder):
    half_dtype_name = "bfloat16"  # the precision these models were trained and released in
    takes_max_pixels = True
    default_batch_size = 8
    pooling = "lasttoken"
    doc_instruction: str
    prompt_suffix = ""
    min_tokens: int  # per picture, after merging
    max_tokens: int
    # GME resizes twice (its fetch_image, then its processor); these are the first step's limits.
    prefetch_tokens: tuple[int, int] | None = None

    def _load(self, location: str, max_pixels: int | None) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer

        self.model = self._model_class().from_pretrained(location, dtype=self.dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        self.tokenizer.padding_side = "right"
        self.image_processor = AutoImageProcessor.from_pretrained(location, backend="pil")
        self.merge = int(self.image_processor.merge_size)
        self.factor = int(self.image_processor.patch_size) * self.merge
        self.min_pixels = self.min_tokens * self.factor**2
        self.max_pixels = int(max_pixels) if max_pixels else self.max_tokens * self.factor**2
        if self.max_pixels < self.min_pixels:
            raise OptionError(f"the pixel budget must be at least {self.min_pixels} for this model", option="max_pixels")
        config = self.model.config
        self.dims = int(config.text_config.hidden_size)
        self.image_token_id = int(config.image_token_id)
        vocab = self.tokenizer.get_vocab()
        placeholders = {vocab[t] for t in VISUAL_PLACEHOLDERS if t in vocab}
        control = set(self.tokenizer.all_special_ids) | {vocab[t] for t in CONTROL_TOKENS if t in vocab}
        self.dropped_ids = control - placeholders
        prompt_tokens = len(self.tokenizer(self._prompt(self.doc_instruction, IMAGE_PLACEHOLDER))["input_ids"])
        self.max_item_tokens = prompt_tokens - 1 + self.max_pixels // self.factor**2

    def _model_class(self):
        raise NotImplementedError

    def _prompt(self, instruction: str, content: str) -> str:
        return chat_prompt(instruction, content) + self.prompt_suffix

    # -- inputs --------------------------------------------------------------------------------

    def resize(self, image):
        """The picture at the size the reference hands to the image processor."""
        from PIL import Image

        image = pad_to_aspect(image, MAX_ASPECT_RATIO)
        if self.prefetch_tokens is None:
            low, high = self.min_pixels, self.max_pixels
        else:
            low, high = (n * self.factor**2 for n in self.prefetch_tokens)
        height, width = smart_resize(image.height, image.width, self.factor, low, high)
        # Bicubic is PIL's default for resize(), which the reference fetch_image calls.
        return image.resize((width, height), Image.Resampling.BICUBIC)

    def _pixels(self, images: list) -> dict:
        resized = [self.resize(image) for image in images]
        if self.prefetch_tokens is None:
            return self.image_processor(images=resized, do_resize=False, return_tensors="pt")
        size = {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}
        return self.image_processor(images=resized, do_resize=True, size=size, return_tensors="pt")

    # -- the protocol ----------------------------------------------------------------------------

    def _encode_texts(self, texts: list[str]):
        prompts = [self._prompt(QUERY_INSTRUCTION, text) for text in texts]
        return self._run(prompts, None, None)

    def _encode_images(self, images: list):
        pixels = self._pixels(images)
        grid = pixels["image_grid_thw"]
        pads = (grid.prod(-1) // self.merge**2).tolist()
        content = [IMAGE_PLACEHOLDER.replace(IMAGE_PAD, IMAGE_PAD * n) for n in pads]
        prompts = [self._prompt(self.doc_instruction, c) for c in content]
        return self._run(prompts, pixels["pixel_values"], grid)

    def _run(self, prompts: list[str], pixel_values, grid):
        torch = self._torch
        batch = self.tokenizer(prompts, padding=True, return_tensors="pt")
        input_ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        if pixel_values is not None:
            pixel_values, grid = pixel_values.to(self.device, self.dtype), grid.to(self.device)
        hidden = self._last_hidden_state(input_ids, mask, pixel_values, grid)
        last = mask.sum(dim=1) - 1  # right padding: the last real token
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        for row, keep in enumerate(kept_ids(input_ids, mask, self.dropped_ids)):
            yield pooled[row], hidden[row, keep], input_ids[row, keep].tolist()

    def _last_hidden_state(self, input_ids, mask, pixel_values, grid):
        raise NotImplementedError


class Qwen3VLEmbeddingEncoder(QwenVLEncoder):
    """Qwen3-VL-Embedding (model type ``qwen3_vl``), run through ``Qwen3VLModel`` as its reference does."""

    family = "qwen3_vl"
    doc_instruction = "Represent the user's input."
    min_tokens, max_tokens = 4, 1800  # reference MIN_PIXELS / MAX_PIXELS in units of 32x32

    def _model_class(self):
        from transformers import Qwen3VLModel

        return Qwen3VLModel

    def _last_hidden_state(self, input_ids, mask, pixel_values, grid):
        extra = {}
        if pixel_values is not None:
            # Multimodal RoPE needs to know which positions hold image tokens.
            extra = dict(pixel_values=pixel_values, image_grid_thw=grid, mm_token_type_ids=(input_ids == self.image_token_id).int())
        out = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False, **extra)
        return out.last_hidden_state


class GmeQwen2VLEncoder(QwenVLEncoder):
    """GME-Qwen2-VL (model type ``qwen2_vl``).

    As GME's own code does, image features are written into the token embeddings and the
    language model runs with plain sequential positions (not multimodal RoPE); the prompt
    ends with ``<|endoftext|>``, whose state is the embedding.
    """

    family = "gme"
    doc_instruction = "You are a helpful assistant."
    prompt_suffix = "<|endoftext|>"
    min_tokens, max_tokens = 256, 1280  # GME's min/max_image_tokens in units of 28x28
    prefetch_tokens = (4, 16384)  # GME's fetch_image limits, applied before its processor

    def _model_class(self):
        from transformers import Qwen2VLModel

        return Qwen2VLModel

    def _last_hidden_state(self, input_ids, mask, pixel_values, grid):
        torch = self._torch
        embeds = self.model.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            features = self.model.get_image_features(pixel_values=pixel_values, image_grid_thw=grid).pooler_output
            image_mask = input_ids == self.image_token_id
            embeds = embeds.masked_scatter(image_mask[..., None], torch.cat(features).to(embeds.dtype))
        out = self.model.language_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
        return out.last_hidden_state


def pad_to_aspect(image, max_ratio: float):
    """Pad with white so that the long side is at most ``max_ratio`` times the short side."""
    from PIL import Image

    width, height = image.size
    if max(width, height) <= max_ratio * min(width, height):
        return image
    if width > height:
        canvas = Image.new("RGB", (width, math.ceil(width / max_ratio)), PAPER_WHITE)
    else:
        canvas = Image.new("RGB", (math.ceil(height / max_ratio), height), PAPER_WHITE)
    canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
    return canvas
