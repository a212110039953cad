"""Light post-training of a store (`tune`): fusion weights and the paper's query-side adapter.

From (query, relevant pages) pairs — mined from the collection's own outlines, or given by the
user — a share is held back. On the held-back pairs the fusion weights are chosen (lambda_anchor 1
with each lambda_late of a grid, and late-only), training is stopped early, and the result is
judged against the untuned search: tune never keeps something that is not better there.

The adapter (variant (a) of the issue: query side only, so stored documents, 1-bit ones included,
stay as they are and nothing is re-encoded) is ``normalize(x + Linear(LayerNorm(x)))`` on each
query token state, with the Linear zero-initialised: it starts as the identity. It is trained with
a contrastive loss over MaxSim scores: each pair's own pages against the other pairs' pages of the
batch (in-batch negatives) and the pages the untuned search ranks highest that are not its own
(hard negatives). ``init="pca"`` starts the Linear at "all-but-the-top" of the query token
states instead (:func:`pca_init`). Variant (b), the same adapter on the pages too, was measured
offline and not kept (docs/experiments.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, QueryError, SmartError
from smartcli.models.base import Encoded
from smartcli.search.evaluate import JudgedQuery, matches, score_run
from smartcli.search.scoring import Weights
from smartcli.store.tuning import Adapter


@dataclass
class Pair:
    """A query and the indexed pages it should find: ``pages`` are (path, page)."""

    query: str
    pages: set[tuple[str, int]]
    source: str = "outline"  # or "user", or "body" (a pseudo-query cut from its page's text)
    hidden: tuple[int, int] | None = None  # "body": characters of the page hidden when scored for this query
    hidden_page: tuple | None = field(default=None, repr=False)  # (pooled, token states) of the page without them


@dataclass
class Measured:
    weights: Weights
    mrr: float
    ndcg: float
    per_pair: np.ndarray = field(default_factory=lambda: np.zeros(0))  # nDCG@10 of each held-back pair

    def key(self) -> tuple[float, float]:
        return (round(self.ndcg, 6), round(self.mrr, 6))

    def as_json(self) -> dict:
        return {
            "lambda_anchor": self.weights.lambda_anchor,
            "lambda_late": self.weights.lambda_late,
            "mrr": round(self.mrr, 4),
            "ndcg": round(self.ndcg, 4),
        }


@dataclass
class TuneResult:
    """What tune measured and chose; ``kept`` is False when nothing beat the untuned search."""

    pairs: int
    train_pairs: int
    held_back_pairs: int
    untuned: Measured  # default weights, no adapter
    weights_only: Measured  # best weights, no adapter
    adapted: Measured | None  # best weights with the trained adapter (None: not trained)
    chosen: str  # "untuned", "weights" or "adapter"
    adapter: Adapter | None
    epochs: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.chosen != "untuned"

    @property
    def final(self) -> Measured:
        return {"untuned": self.untuned, "weights": self.weights_only, "adapter": self.adapted}[self.chosen]


def searchable(encoder, pairs: list[Pair]) -> tuple[list[Pair], dict[int, Encoded]]:
    """The pairs whose query a search could answer (prepared and checked as a query session does
    it: some characters, some word the model knows), and each one's encoding by ``id(pair)``."""
    from smartcli.search.queries import check_encoded, encode_prepared, prepare_query

    kept, texts = [], []
    for pair in pairs:
        try:
            texts.append(prepare_query(pair.query))
        except QueryError:
            continue
        kept.append(pair)
    usable, encodings = [], {}
    for pair, encoded in zip(kept, encode_prepared(encoder, texts)):
        try:
            check_encoded(encoded, 0, encoder.info.name)
        except QueryError:
            continue
        usable.append(pair)
        encodings[id(pair)] = encoded
    return usable, encodings


def split_pairs(pairs: list[Pair], held_back: float = defaults.TUNE_HELD_BACK) -> tuple[list[Pair], list[Pair]]:
    """A stable split (by a hash of each query and its pages): (train, held back)."""
    train, held = [], []
    for pair in pairs:
        digest = hashlib.sha256(json.dumps([pair.query, sorted(pair.pages)]).encode()).digest()
        (held if int.from_bytes(digest[:4], "big") / 2**32 < held_back else train).append(pair)
    if not held and len(train) > 1:
        held.append(train.pop())
    return train, held


def load_user_pairs(path: str) -> list[tuple[str, str, int]]:
    """``{"query": ..., "file": ..., "page": ...}`` lines: (query, file as given, page)."""
    found = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {(exc.strerror or str(exc)).lower()}", path=path) from None
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                found.append((str(obj["query"]), str(obj["file"]), int(obj["page"])))
            except (ValueError, KeyError, TypeError):
                raise SmartError(ErrorKind.BAD_INPUT, f'{path}:{number}: needs "query", "file" and "page"', path=path) from None
            if not found[-1][0].strip():
                raise SmartError(ErrorKind.BAD_INPUT, f"{path}:{number}: the query is empty", path=path)
    return found


def match_user_pairs(raw: list[tuple[str, str, int]], items) -> tuple[list[Pair], int]:
    """User pairs matched to indexed pages like `eval` matches judgments; (pairs, how many matched none).
    Lines with the same query become one pair with several pages."""
    by_query: dict[str, set[tuple[str, int]]] = {}
    unmatched = 0
    encoded = {(item.path, item.page) for item in items}
    paths = sorted({item.path for item in items})
    for query, file, page in raw:
        hits = {(p, page) for p in paths if matches(file, p) and (p, page) in encoded}
        if not hits:
            unmatched += 1
            continue
        by_query.setdefault(query, set()).update(hits)
    return [Pair(q, pages, "user") for q, pages in by_query.items()], unmatched


class AdaptedEncoder:
    """An encoder whose query token states go through the store's adapter (documents unchanged)."""

    def __init__(self, encoder, adapter: Adapter):
        self.encoder = encoder
        self.adapter = adapter

    def encode_queries(self, texts: Sequence[str]) -> list[Encoded]:
        return [adapt(e, self.adapter) for e in self.encoder.encode_queries(texts)]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.encoder, name)


def adapt(encoded: Encoded, adapter: Adapter | None) -> Encoded:
    return encoded if adapter is None else replace(encoded, tokens=adapter.apply(encoded.tokens))


def weight_grid() -> list[Weights]:
    """The weights tune tries: the defaults, ``lambda_anchor`` 1 with each of ``TUNE_LAMBDA_LATE``,
    and late-only, each scaled to the defaults' scale (:func:`on_default_scale`)."""
    grid = [Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)]
    for weights in [Weights(1.0, late) for late in defaults.TUNE_LAMBDA_LATE] + [Weights(0.0, 1.0)]:
        scaled = on_default_scale(weights)
        if scaled not in grid:
            grid.append(scaled)
    return grid


def on_default_scale(weights: Weights) -> Weights:
    """``weights`` times the factor that makes them sum to the defaults' sum (1 + 5): the same
    ranking (every score is multiplied alike), and a score keeps its scale whatever tune chose
    (6 is a page matching both ways perfectly), so a ``min_score`` keeps its meaning."""
    total = weights.lambda_anchor + weights.lambda_late
    if total <= 0:
        return weights
    factor = (defaults.LAMBDA_ANCHOR + defaults.LAMBDA_LATE) / total
    return Weights(round(weights.lambda_anchor * factor, 4), round(weights.lambda_late * factor, 4))


def measure(searcher, encoded: list[Encoded], pairs: list[Pair], grid: list[Weights], k: int = defaults.TOP_K) -> list[Measured]:
    """MRR@k and nDCG@k of the search path at each of ``grid``'s weights (shared scoring passes)."""
    from smartcli.search.searcher import Scored

    judged = [JudgedQuery(str(i), p.query, p.pages) for i, p in enumerate(pairs)]
    # One MaxSim pass over every page serves every weighting: the two-stage rankings are the
    # same scores restricted to each query's anchor shortlist, as searcher.score restricts them.
    full = searcher.score(encoded, Weights(0.0, 1.0))
    hide_own_sentences(searcher, encoded, pairs, full)
    out = []
    for weights in grid:
        scored = full
        if searcher.two_stage(weights, len(full.columns)):
            own = [np.argpartition(-row, searcher.shortlist - 1)[: searcher.shortlist] for row in full.anchor]
            eligible = np.zeros(full.anchor.shape, bool)
            for row, mine in enumerate(own):
                eligible[row, mine] = True
            scored = Scored(full.columns, full.anchor, full.late, eligible)
        hits = searcher.rank(encoded, scored, weights, k, snippets=False)
        run = score_run("", judged, [[(h.item.path, h.item.page) for h in q] for q in hits], k)
        out.append(Measured(weights, run.mean("rr"), run.mean("ndcg"), np.array([q.ndcg for q in run.per_query])))
    return out


def hidden_tokens(searcher, pairs: list[Pair]) -> dict[int, np.ndarray]:
    """For each "body" pair (by its index in ``pairs``), its page's decoded token states without
    the tokens of the sentence it was cut from (inverse cloze)."""
    wanted = {i: p for i, p in enumerate(pairs) if p.hidden is not None}
    if not wanted:
        return {}
    index_of = {(item.path, item.page): n for n, item in enumerate(searcher.items)}
    pages = {i: index_of[next(iter(p.pages))] for i, p in wanted.items()}
    states = _item_tokens(searcher, sorted(set(pages.values())), with_spans=True)
    out = {}
    for i, pair in wanted.items():
        page_tokens, spans = states[pages[i]]
        start, end = pair.hidden
        keep = ~((spans[:, 0] < end) & (spans[:, 1] > start))
        if not keep.any():  # nothing but the sentence: keep one token, so the page still has a score
            keep[0] = True
        out[i] = page_tokens[keep]
    return out


def hide_own_sentences(searcher, encoded: list[Encoded], pairs: list[Pair], full) -> None:
    """Rescore, in ``full`` (every page, anchor and late scores), each "body" pair's own page as
    if its sentence were not there (inverse cloze): the page's text without the sentence is
    encoded again by the store's model and stored as the store stores token states (1-bit signs
    by default), once per pair (kept on the pair)."""
    wanted = [i for i, p in enumerate(pairs) if p.hidden is not None]
    if not wanted:
        return
    index_of = {(item.path, item.page): n for n, item in enumerate(searcher.items)}
    missing = [i for i in wanted if pairs[i].hidden_page is None]
    if missing:
        texts = []
        for i in missing:
            start, end = pairs[i].hidden
            text = searcher.items[index_of[next(iter(pairs[i].pages))]].text
            texts.append(text[:start] + text[end:])
        encoder = getattr(searcher.encoder, "encoder", searcher.encoder)  # documents never go through an adapter
        dtype = searcher.store.token_dtype
        for i, page in zip(missing, encoder.encode_documents(texts)):
            pairs[i].hidden_page = (page.pooled.astype(np.float32), as_stored(page.tokens, dtype))
    column = {index: c for c, index in enumerate(full.columns)}
    for i in wanted:
        pooled, page_tokens = pairs[i].hidden_page
        q = np.asarray(encoded[i].tokens, np.float32)
        for page in pairs[i].pages:  # every copy of the page: a search folds them into one hit
            c = column.get(index_of[page])
            if c is None:
                continue
            full.anchor[i, c] = float(encoded[i].pooled @ pooled)
            full.late[i, c] = float((q @ page_tokens.T).max(axis=1).mean())


def as_stored(tokens: np.ndarray, dtype: str) -> np.ndarray:
    """Float token states as search would score them once stored in ``dtype``."""
    from smartcli.store.formats import decode_binary, encode_binary, encode_int8

    tokens = np.asarray(tokens, np.float32)
    if dtype == "binary":
        return decode_binary(encode_binary(tokens), tokens.shape[1])
    if dtype == "int8":
        data, scale = encode_int8(tokens)
        return data.astype(np.float32) * scale[:, None]
    return tokens.astype(np.float16).astype(np.float32)


def significantly_better(a: Measured, b: Measured, z: float = defaults.TUNE_MIN_Z) -> bool:
    """``a`` beats ``b`` on the same held-back pairs by more than their noise: the mean of the
    paired nDCG@10 differences is at least ``z`` standard errors above zero."""
    d = a.per_pair - b.per_pair
    if len(d) == 0 or d.mean() <= 0:
        return False
    if len(d) < 2:
        return True
    se = d.std(ddof=1) / np.sqrt(len(d))
    return se == 0 or d.mean() / se >= z


def best_of(measured: list[Measured]) -> Measured:
    """The best by nDCG then MRR; on a tie the earlier (the default weights come first)."""
    best = measured[0]
    for m in measured[1:]:
        if m.key() > best.key():
            best = m
    return best


def tune(
    searcher,
    pairs: list[Pair],
    train_adapter: bool = True,
    report: Callable[[str], None] = lambda _: None,
    epochs: int = defaults.TUNE_EPOCHS,
    guard: bool = True,
    init: str = defaults.TUNE_INIT,
) -> TuneResult:
    """Choose weights, train the adapter and judge both on held-back pairs (``searcher`` has the
    untuned encoder). Without ``guard`` what was learned is kept even when it is no better than the
    untuned search (the last epoch's adapter, at its best weights). ``init``: how the adapter's
    Linear starts, "identity" (zero) or "pca" (see :func:`pca_init`)."""
    if init not in INITS:
        raise SmartError(ErrorKind.BAD_OPTION, f"unknown adapter initialisation {init!r} (known: {', '.join(INITS)})", option="init")
    started = time.monotonic()
    encoder = searcher.encoder
    report(f"encoding {len(pairs)} queries")
    pairs, encodings = searchable(encoder, pairs)
    if len(pairs) < defaults.TUNE_MIN_PAIRS:
        raise SmartError(
            ErrorKind.BAD_INPUT,
            f"{len(pairs)} usable pairs; at least {defaults.TUNE_MIN_PAIRS} are needed to learn anything",
            pairs=len(pairs),
        )
    train, held = split_pairs(pairs)
    report(f"{len(train)} pairs to train on, {len(held)} held back")
    train_encoded = [encodings[id(p)] for p in train]
    held_encoded = [encodings[id(p)] for p in held]
    grid = weight_grid()
    measured = measure(searcher, held_encoded, held, grid)
    untuned, weights_only = measured[0], best_of(measured)
    report(
        f"held back, untuned: nDCG@10 {untuned.ndcg:.4f}; best weights "
        f"{weights_only.weights.lambda_anchor:g}/{weights_only.weights.lambda_late:g}: nDCG@10 {weights_only.ndcg:.4f}"
    )
    if guard and weights_only is not untuned and not significantly_better(weights_only, untuned):
        report("the best weights' gain is within the noise of the held-back pairs: the default weights stay")
        weights_only = untuned
    result = TuneResult(len(pairs), len(train), len(held), untuned, weights_only, None, "weights", None)
    if train_adapter:
        t0 = time.monotonic()
        frozen = best_of(measured)  # epoch 0, the frozen model: measured above, not again
        adapter, adapted, history, last = _train(searcher, train, train_encoded, held, held_encoded, grid, report, epochs, init, frozen)
        if not guard and adapter is None and last is not None:
            adapter, adapted = last
        result.train_seconds = time.monotonic() - t0
        result.history = history
        result.epochs = len(history) - 1
        result.best_epoch = max(range(len(history)), key=lambda i: (history[i]["ndcg"], history[i]["mrr"], -i))
        if adapter is not None:  # an epoch beat the frozen model (None: none did; the history says by how much)
            result.adapted = adapted
            if not guard or (adapted.key() > weights_only.key() and significantly_better(adapted, untuned)):
                result.adapter, result.chosen = adapter, "adapter"
    if guard and result.final.key() <= untuned.key():
        result.chosen = "untuned"
        result.adapter = None
    result.seconds = time.monotonic() - started
    return result


INITS = ("identity", "pca")


def pca_init(query_tokens: np.ndarray, components: int = defaults.TUNE_PCA_COMPONENTS, eps: float = 1e-5) -> np.ndarray:
    """The Linear's starting weight for ``init="pca"``: ``-s * U Uᵀ``, where U holds the top
    ``components`` principal directions of the (LayerNorm'ed) training query token states and s
    their mean standard deviation across dimensions, so that ``x + W·LayerNorm(x)`` starts by
    taking out of each token state most of its share along the directions the query tokens vary
    along most ("all-but-the-top" post-processing of the token states) instead of starting as the
    identity. Training moves it from there; weight decay pulls it back to this start."""
    x = np.asarray(query_tokens, np.float64)
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    z = (x - x.mean(axis=1, keepdims=True)) / std
    z = z - z.mean(axis=0, keepdims=True)
    k = max(1, min(components, z.shape[0] - 1, z.shape[1]))
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    u = vt[:k].T  # [D, k]
    return (-float(std.mean()) * (u @ u.T)).astype(np.float32)


def _train(searcher, train, train_encoded, held, held_encoded, grid, report, epochs, init="identity", frozen=None):
    """Train the adapter (``frozen``: the held-back figures without it, when already measured).
    Returns (best adapter or None if epoch 0 stayed best, its Measured, history, (last epoch's
    adapter, its Measured) or None)."""
    import torch

    torch.manual_seed(defaults.TUNE_SEED)
    rng = np.random.default_rng(defaults.TUNE_SEED)
    index_of = {(item.path, item.page): i for i, item in enumerate(searcher.items)}
    positives = [sorted(index_of[p] for p in pair.pages if p in index_of) for pair in train]
    negatives = _hard_negatives(searcher, train_encoded, positives)
    needed = sorted({i for row in positives + negatives for i in row})
    report(f"reading the token states of {len(needed)} pages")
    tokens = _item_tokens(searcher, needed)
    # A "body" pair's own page is scored without the sentence its query was cut from: its
    # positive is that page's tokens with the sentence's tokens left out (keyed -1 - pair), and
    # the page as stored, should another pair of the batch bring it, is no candidate for it.
    own_page = {}
    for i, page_tokens in hidden_tokens(searcher, train).items():
        own_page[i] = positives[i][0] if positives[i] else None
        tokens[-1 - i] = page_tokens
        positives[i] = [-1 - i] if positives[i] else []
    dims = train_encoded[0].tokens.shape[1]
    ln = torch.nn.LayerNorm(dims)
    linear = torch.nn.Linear(dims, dims)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    if init == "pca":
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(pca_init(np.concatenate([e.tokens for e in train_encoded]))))
        initial = linear.weight.detach().clone()
    params = list(ln.parameters()) + list(linear.parameters())
    optimizer = torch.optim.AdamW(params, lr=defaults.TUNE_LEARNING_RATE, weight_decay=0.0)
    q_tokens = [torch.from_numpy(e.tokens) for e in train_encoded]

    def current() -> Adapter:
        return Adapter(*(p.detach().numpy().astype(np.float32).copy() for p in (ln.weight, ln.bias, linear.weight, linear.bias)))

    def judge(adapter: Adapter | None) -> Measured:
        return best_of(measure(searcher, [adapt(e, adapter) for e in held_encoded], held, grid))

    best = frozen if frozen is not None else judge(None)
    history = [{"epoch": 0, "loss": None, **best.as_json()}]
    best_adapter, since_best, last = None, 0, None
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), defaults.TUNE_BATCH):
            batch = [int(i) for i in order[start : start + defaults.TUNE_BATCH] if positives[int(i)]]
            if not batch:
                continue
            docs = sorted({d for i in batch for d in positives[i] + negatives[i]})
            column = {d: c for c, d in enumerate(docs)}
            doc_tokens = torch.from_numpy(np.concatenate([tokens[d] for d in docs]))
            lengths = torch.tensor([tokens[d].shape[0] for d in docs])
            queries = torch.cat([q_tokens[i] for i in batch])
            q_lengths = torch.tensor([q_tokens[i].shape[0] for i in batch])
            adapted = queries + linear(ln(queries))
            adapted = adapted / adapted.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            logits = _maxsim_by_argmax(adapted, doc_tokens, lengths, q_lengths) / defaults.TUNE_TEMPERATURE
            positive = torch.zeros(logits.shape, dtype=torch.bool)
            excluded = torch.zeros(logits.shape, dtype=torch.bool)
            for row, i in enumerate(batch):
                positive[row, [column[d] for d in positives[i]]] = True
                if own_page.get(i) in column:
                    excluded[row, column[own_page[i]]] = True
            logits = logits.masked_fill(excluded, float("-inf"))
            loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~positive, float("-inf")), 1)).mean()
            # weight decay pulls the Linear back to where it started (zero: the identity adapter)
            drift = linear.weight - initial if init == "pca" else linear.weight
            loss = loss + defaults.TUNE_WEIGHT_DECAY * drift.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        adapter = current()
        measured = judge(adapter)
        last = (adapter, measured)
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4) if losses else None, **measured.as_json()})
        report(f"epoch {epoch}: loss {history[-1]['loss']}, held-back nDCG@10 {measured.ndcg:.4f} (MRR {measured.mrr:.4f})")
        if measured.key() > best.key():
            best, best_adapter, since_best = measured, adapter, 0
        else:
            since_best += 1
            if since_best >= defaults.TUNE_PATIENCE:
                break
    return best_adapter, best, history, last


def _maxsim_by_argmax(queries, doc_tokens, lengths, q_lengths):
    """:func:`~smartcli.search.scoring.maxsim` with its gradient, cheaply: the arg-max page token
    of each query token is found without autograd (the large product), and only the chosen
    tokens' similarities are recomputed with it (the gradient of a max is that of its arg-max)."""
    import torch

    with torch.no_grad():
        sim = doc_tokens @ queries.T  # [T, Q]
        best = torch.segment_reduce(sim, "max", lengths=lengths, axis=0)  # [n, Q]
        doc_of_token = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        t, q = torch.nonzero(sim == best[doc_of_token], as_tuple=True)
        chosen = torch.zeros(best.shape, dtype=torch.long)
        chosen[doc_of_token[t], q] = t
    similarity = (doc_tokens[chosen] * queries[None]).sum(-1)  # [n, Q], equal to best, with a gradient
    query_of_column = torch.repeat_interleave(torch.arange(len(q_lengths)), q_lengths)
    sums = torch.zeros((len(q_lengths), len(lengths)), dtype=similarity.dtype).index_add(0, query_of_column, similarity.T)
    return sums / q_lengths.to(similarity.dtype)[:, None]


def _hard_negatives(searcher, encoded: list[Encoded], positives: list[list[int]], n: int = defaults.TUNE_HARD_NEGATIVES) -> list[list[int]]:
    """Per query, the ``n`` pages the untuned search ranks highest that are not its own.

    The search's scores, computed the other way round: each page's decoded token states against
    the tokens of every query that has the page in its anchor shortlist, in one matrix product:
    4.7-5.4x faster than scoring each query's shortlist with the 1-bit kernel as search does, with
    the same negatives (measured: docs/experiments.md; mining had taken 85 of tune's 238 s on
    1,271 pages)."""
    weights = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)
    anchor = searcher.pooled.matmul(np.stack([e.pooled for e in encoded]))  # [m, pages]
    shortlists = _shortlists(searcher, anchor, weights)
    late = _late_on_shortlists(searcher, encoded, shortlists)
    out = []
    for row, candidates in enumerate(shortlists):
        fused = weights.lambda_anchor * anchor[row, candidates] + weights.lambda_late * late[row]
        own = set(positives[row])
        order = np.lexsort((candidates, -fused))
        out.append([int(candidates[j]) for j in order if np.isfinite(fused[j]) and candidates[j] not in own][:n])
    return out


def _shortlists(searcher, anchor: np.ndarray, weights: Weights) -> list[np.ndarray]:
    """Each query's candidates on the search path: its anchor shortlist, or every page."""
    if not searcher.two_stage(weights, anchor.shape[1]):
        return [np.arange(anchor.shape[1]) for _ in anchor]
    return [np.sort(np.argpartition(-row, searcher.shortlist - 1)[: searcher.shortlist]) for row in anchor]


def _late_on_shortlists(searcher, encoded: list[Encoded], shortlists: list[np.ndarray]) -> list[np.ndarray]:
    """MaxSim of each query against each page of its own shortlist (aligned with it); pages are
    decoded a block at a time, so memory holds one block, not the store."""
    q_tokens = [np.asarray(e.tokens, np.float32) for e in encoded]
    wanting: dict[int, list[int]] = {}  # page -> the queries that have it in their shortlist
    for q, candidates in enumerate(shortlists):
        for page in candidates:
            wanting.setdefault(int(page), []).append(q)
    found: dict[tuple[int, int], float] = {}
    order = sorted(wanting)
    for start in range(0, len(order), defaults.TUNE_MINING_PAGES):
        for page, page_tokens in _item_tokens(searcher, order[start : start + defaults.TUNE_MINING_PAGES]).items():
            queries = wanting[page]
            if not len(page_tokens):  # a page without token states: last, as the kernel ranks it
                found.update(((q, page), -np.inf) for q in queries)
                continue
            best = (page_tokens @ np.concatenate([q_tokens[q] for q in queries]).T).max(axis=0)  # per query token
            lengths = np.array([len(q_tokens[q]) for q in queries])
            means = np.add.reduceat(best, np.concatenate([[0], np.cumsum(lengths)[:-1]])) / lengths
            found.update(((q, page), float(m)) for q, m in zip(queries, means))
    return [np.array([found[(q, int(p))] for p in candidates], np.float32) for q, candidates in enumerate(shortlists)]


def _item_tokens(searcher, indexes: list[int], with_spans: bool = False) -> dict:
    """Decoded token states (as search scores them) of the items at ``indexes`` (with
    ``with_spans``: (states, character spans))."""
    out = {}
    by_segment: dict[str, list[int]] = {}
    for i in indexes:
        by_segment.setdefault(searcher.items[i].segment, []).append(i)
    for name, group in by_segment.items():
        with searcher.store.open_segment(name) as segment:
            for i in group:
                span = segment.token_range(searcher.items[i].row)
                out[i] = (segment.tokens(*span), segment.spans(*span)) if with_spans else segment.tokens(*span)
    return out
