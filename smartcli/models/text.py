"""The text family: sentence-transformers-style models, loaded with plain transformers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.errors import ModelLoadError, first_line
from smartcli.models.base import (
    TEXT,
    Encoded,
    ModelInfo,
    checkpoint_dir,
    fingerprint_model_dir,
    quiet_transformers,
    read_json,
    resolve_device,
)


def _l2_normalize(x):
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


class SentenceTransformerTextEncoder:
    """A sentence-transformers-style text model, loaded with plain transformers.

    Texts longer than the model's real maximum length are encoded in windows: the
    item's pooled vector is the normalized mean of the windows' pooled vectors and
    its token states are all windows' kept tokens. For a text that fits one window
    the pooled vector equals sentence-transformers' ``encode(normalize_embeddings=True)``.
    """

    def __init__(self, location: str | Path, spec: str, name: str, device: str = "auto"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        location = str(location)
        self.device = resolve_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            self.model = AutoModel.from_pretrained(location).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load model {spec!r}: {first_line(exc)}") from None
        model_dir = checkpoint_dir(location) or Path(location)
        self.pooling = _read_pooling_mode(model_dir)
        self.max_length = _read_max_length(model_dir, self.tokenizer, self.model.config)
        self.prefix_ids, self.suffix_ids = _special_affixes(self.tokenizer)
        self.window = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        self.special_ids = frozenset(self.tokenizer.all_special_ids)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.info = ModelInfo(
            spec=spec,
            name=name,
            fingerprint=fingerprint_model_dir(model_dir),
            family="text",
            dims=int(self.model.config.hidden_size),
            pooling=self.pooling,
            max_length=self.max_length,
        )
        self._torch = torch

    modality = TEXT
    default_batch_size = defaults.TEXT_BATCH_SIZE

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]:
        """Queries are cut to their first ``defaults.MAX_QUERY_TOKENS`` tokens (a SmartWarning says so)."""
        return self.encode_documents([self._capped_query(text) for text in texts])

    def _capped_query(self, text: str) -> str:
        return capped_query(text, self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None, sort_by_length: bool = True) -> list[Encoded]:
        batch_size = batch_size or self.default_batch_size
        if not texts:
            return []
        tokenized = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return assemble(self, texts, tokenized, batch_size, sort_by_length)

    def _forward(self, batch_ids: list[list[int]]):
        torch = self._torch
        sequences = [self.prefix_ids + ids + self.suffix_ids for ids in batch_ids]
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
            hidden = out.last_hidden_state.float()
            pooled = _pool(hidden, mask.to(self.device), self.pooling)
            pooled = _l2_normalize(pooled)
            states = _l2_normalize(hidden)
        return pooled.cpu().numpy(), states.cpu().numpy(), mask.numpy()


def assemble(encoder, texts: Sequence[str], tokenized: dict, batch_size: int, sort_by_length: bool = True) -> list[Encoded]:
    """Cut tokenized texts into windows, run ``encoder._forward`` on batches of them, and put each
    text's pooled vector and kept token states together. Shared by the torch encoder and the ONNX
    one (onnx_text.py), so that both cut and keep the same tokens.

    Batches are of windows sorted by length, longest first, so that each batch pads little and
    the first shows peak memory; ``sort_by_length=False`` batches them in text order instead (the
    vectors are the same; benchmarks/index_throughput.py measures the padding it saves)."""
    windows = []  # (text index, content ids, spans)
    for index, (ids, spans) in enumerate(zip(tokenized["input_ids"], tokenized["offset_mapping"])):
        if not ids:
            raise ValueError(f"text {index} has no tokens; text-less items are never encoded")
        for start in range(0, len(ids), encoder.window):
            windows.append((index, ids[start : start + encoder.window], spans[start : start + encoder.window]))
    pooled_parts: list[list] = [[] for _ in texts]
    token_parts: list[list] = [[] for _ in texts]
    order = window_order([len(ids) for _, ids, _ in windows], sort_by_length)
    for batch_start in range(0, len(order), batch_size):
        batch = [windows[w] for w in order[batch_start : batch_start + batch_size]]
        pooled, states, _ = encoder._forward([ids for _, ids, _ in batch])
        for row, (index, ids, spans) in enumerate(batch):
            keep = [i for i, token in enumerate(ids) if token not in encoder.special_ids]
            positions = [len(encoder.prefix_ids) + i for i in keep]
            pooled_parts[index].append(pooled[row])
            token_parts[index].append(
                (
                    states[row, positions],
                    np.asarray([ids[i] for i in keep], dtype=np.int32),
                    np.asarray([spans[i] for i in keep], dtype=np.int32).reshape(-1, 2),
                )
            )
    results = []
    for index in range(len(texts)):
        pooled = np.mean(pooled_parts[index], axis=0)
        pooled /= max(np.linalg.norm(pooled), 1e-12)
        # Windows were processed out of order; put their tokens back in text order.
        parts = sorted(token_parts[index], key=lambda p: p[2][0, 0] if len(p[2]) else 0)
        results.append(
            Encoded(
                pooled=pooled.astype(np.float32),
                tokens=np.concatenate([p[0] for p in parts]).astype(np.float32),
                token_ids=np.concatenate([p[1] for p in parts]),
                spans=np.concatenate([p[2] for p in parts]),
            )
        )
    return results


def window_order(lengths: Sequence[int], sort_by_length: bool = True) -> list[int]:
    """The order windows of these token counts are batched in: longest first, or as given."""
    if not sort_by_length:
        return list(range(len(lengths)))
    return sorted(range(len(lengths)), key=lambda w: -lengths[w])


def _pool(hidden, mask, mode: str):
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(m == 0, -1e9).max(1).values
    if mode == "lasttoken":
        last = mask.sum(1) - 1
        return hidden[torch.arange(hidden.shape[0]), last]
    raise ModelLoadError(f"unsupported pooling mode {mode!r}")


def _special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after content (e.g. [CLS] ... [SEP])."""
    probe = "hello"
    content = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return list(full[:start]), list(full[start + len(content) :])
    return [], []


def _read_pooling_mode(model_dir: Path) -> str:
    """Pooling declared by the sentence-transformers config; mean when none is declared."""
    modules = read_json(model_dir / "modules.json") or []
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            config = read_json(model_dir / module.get("path", "") / "config.json") or {}
            if config.get("pooling_mode"):
                return {"lasttoken": "lasttoken", "cls": "cls", "mean": "mean", "max": "max"}.get(
                    config["pooling_mode"], config["pooling_mode"]
                )
            for key, mode in (
                ("pooling_mode_cls_token", "cls"),
                ("pooling_mode_lasttoken", "lasttoken"),
                ("pooling_mode_max_tokens", "max"),
                ("pooling_mode_mean_tokens", "mean"),
            ):
                if config.get(key):
                    return mode
    return "mean"


def _read_max_length(model_dir: Path, tokenizer, config) -> int:
    st_config = read_json(model_dir / "sentence_bert_config.json") or {}
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length, 512]
    return int(min(x for x in limits if isinstance(x, int) and x > 0))


def capped_query(text: str, spans) -> str:
    """``text`` cut after its first ``defaults.MAX_QUERY_TOKENS`` tokens (``spans``: each token's
    character span), with a SmartWarning when it is cut."""
    import warnings

    from smartcli.errors import SmartWarning

    cap = defaults.MAX_QUERY_TOKENS
    if len(spans) <= cap:
        return text
    warnings.warn(SmartWarning(f"query cut to its first {cap} tokens (the length cap of a query)"), stacklevel=4)
    return text[: spans[cap - 1][1]]
