"""Build a large synthetic store from real ones, with token states close to real pages' so that
queries score its pages as they score real pages.

    python benchmarks/synthetic_store.py --source STORE [--source STORE2 ...] --pages 100000 --out DIR
    python benchmarks/synthetic_store.py --mode copies --source STORE --pages 100000 --out DIR [--flip 0.03]
    python benchmarks/synthetic_store.py --smoke

``--mode mix`` (the default): each synthetic page mixes 2-4 real pages drawn at random from all
the ``--source`` stores: a run of consecutive token rows of each (together as many rows as the
mean of their lengths, an equal share each, so no source gives most of a page), its stored 1-bit
states with each bit flipped with probability ``--flip`` (default 0.01); the text is the runs'
text, joined, with the spans moved to match; the vocabulary is the runs' text tokenized again
(the model's tokenizer); the pooled vector is the mean of the sources' pooled vectors weighted by
their shares, with Gaussian noise, renormalized. Every page then has content of its own at every
size, as a real collection has: the overlap of the two-stage top 10 with the exhaustive one
measures the search, not a tie among copies.

``--mode copies`` (the stores of issue 24's first measurements, e.g. the 1,000,000-page one):
each synthetic page copies a real page of ``--source`` (in turn, page after page): its stored
1-bit token states with each bit flipped with probability ``--flip`` (default 0.03, a fresh mask
per page), its pooled vector with Gaussian noise of the same relative size (renormalized), its
spans, vocabulary and text. At N pages each real page has N / 317 near-copies, so the exhaustive
top 10 is a tie among copies broken by noise.

Pages are written through the real store code (``writes.write_segment`` and ``commit_files``, as
`smart index` commits them, the current segment format), ``--per-file`` pages per file and per segment.
Sources must hold 1-bit token states (the default format) of one model.

Sizes (the default model, ~650 token states a page): 100,000 pages take about 4 GB and 1,000,000
pages about 40 GB of disk (segments and catalog, page texts included); memory stays under 1 GB
while building (one file's pages at a time). Check the disk first (``df -h``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _stores import sample_store

from smartcli.models.base import Encoded
from smartcli.store.catalog import FileRecord, PageRecord, Store, writes

MASKS = 64  # distinct flip masks drawn once, reused at random offsets


class Source:
    """The real pages a synthetic store replicates: their stored states, spans, vocabularies and texts."""

    def __init__(self, root: Path):
        from smartcli.search.searcher import Searcher

        self.store = Store.open(root)
        if self.store.token_dtype != "binary":
            raise SystemExit(f"{root} keeps {self.store.token_dtype} token states; the synthetic builder replicates 1-bit ones")
        self.searcher = Searcher(self.store, None, device="cpu")
        self.columns = self.searcher.columns
        self.items = self.searcher.items.many(range(len(self.searcher)))
        self.vocab: dict[str, tuple] = {}

    def __len__(self) -> int:
        return len(self.items)

    def page(self, index: int, vocabulary: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, str, str]:
        """(packed bits, spans, vocabulary, pooled, text, role) of real page ``index`` (the
        vocabulary None unless asked for)."""
        item = self.items[index]
        bits = np.array(self.searcher.stored_tokens(index).data)
        spans = self.searcher.page_spans(index)
        if not vocabulary:
            return bits, spans, None, self.searcher.pooled[index], item.text, item.role
        if item.segment not in self.vocab:
            with self.store.open_segment(item.segment) as segment:
                ids, starts, rows = segment.vocabulary()
                self.vocab[item.segment] = (np.asarray(ids), np.repeat(np.arange(len(ids)), np.diff(np.asarray(starts))), np.asarray(rows))
        ids, owner, rows = self.vocab[item.segment]
        vocabulary = ids[owner[rows == item.row]]
        return bits, spans, vocabulary, self.searcher.pooled[index], item.text, item.role


def build_copies(source: Source, out: Path, pages: int, flip: float, per_file: int, seed: int = 24) -> None:
    rng = np.random.default_rng(seed)
    width = source.searcher.stored_tokens(0).data.shape[1]
    longest = max(int(n) for n in source.columns.n_tokens) if len(source) else 1
    masks = np.stack([np.packbits(rng.random((longest, width * 8)) < flip, axis=1) for _ in range(MASKS)])
    store = Store.open_for_writing(out)
    writes.bind_model(store, source.store.model, "binary")
    started = time.perf_counter()
    done = 0
    for number in range(0, pages, per_file):
        records = []
        for page in range(min(per_file, pages - number)):
            bits, spans, vocabulary, pooled, text, role = source.page((number + page) % len(source))
            mask = masks[rng.integers(MASKS)]
            start = int(rng.integers(0, longest - len(bits) + 1))
            noisy = pooled + rng.standard_normal(pooled.shape).astype(np.float32) * np.float32(flip / np.sqrt(pooled.shape[0]))
            encoded = Encoded(
                pooled=(noisy / np.linalg.norm(noisy)).astype(np.float32),
                tokens=bits ^ mask[start : start + len(bits)],  # packed: written as they are
                token_ids=vocabulary.astype(np.int32),
                spans=spans,
            )
            records.append(PageRecord(page=page + 1, text=text, encoded=encoded, role=role))
        record = FileRecord(f"/synthetic/part-{number // per_file:06d}.pdf", "pdf", 1, 1, f"synthetic-{number}", records)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
        done += len(records)
        elapsed = time.perf_counter() - started
        print(f"\r{out.name}: {done}/{pages} pages, {elapsed:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    store.close()


def build_mix(sources: list[Source], out: Path, pages: int, flip: float, per_file: int, seed: int = 24) -> None:
    """``pages`` pages, each mixing 2-4 real pages of ``sources`` (see the module's text)."""
    rng = np.random.default_rng(seed)
    pool = [(s, i) for s in sources for i in range(len(s))]
    lengths = np.array([int(s.columns.n_tokens[i]) for s, i in pool], dtype=np.int64)
    width = sources[0].searcher.stored_tokens(0).data.shape[1]
    longest = int(lengths.max(initial=1))
    masks = np.stack([np.packbits(rng.random((longest, width * 8)) < flip, axis=1) for _ in range(MASKS)])
    tokenizer = query_tokenizer(sources[0].store)
    store = Store.open_for_writing(out)
    writes.bind_model(store, sources[0].store.model, "binary")
    started = time.perf_counter()
    used: set = set()  # pairs of source pages already mixed into one page
    reused = 0  # pages mixing a pair of source pages that another page mixes too
    for number in range(0, pages, per_file):
        records = []
        for page in range(min(per_file, pages - number)):
            picked, fresh = distinct_pick(len(pool), used, rng)
            reused += not fresh
            runs = mixed_runs(lengths[picked], rng)
            bits, spans, vocabulary, pooled, text, role = mix_pages(
                [(pool[p], run) for p, run in zip(picked, runs) if run[1] > run[0]], tokenizer
            )
            mask = masks[rng.integers(MASKS)]
            start = int(rng.integers(0, longest - len(bits) + 1))
            noisy = pooled + rng.standard_normal(pooled.shape).astype(np.float32) * np.float32(flip / np.sqrt(pooled.shape[0]))
            encoded = Encoded(
                pooled=(noisy / np.linalg.norm(noisy)).astype(np.float32),
                tokens=bits ^ mask[start : start + len(bits)],
                token_ids=vocabulary,
                spans=spans,
            )
            records.append(PageRecord(page=page + 1, text=text, encoded=encoded, role=role))
        record = FileRecord(f"/synthetic/mix-{number // per_file:06d}.pdf", "pdf", 1, 1, f"synthetic-mix-{number}", records)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
        print(
            f"\r{out.name}: {number + len(records)}/{pages} pages, {time.perf_counter() - started:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    print(f"{reused} of {pages} pages mix two source pages that another page mixes too ({len(pool)} source pages)")
    store.close()


def distinct_pick(pool: int, used: set, rng, tries: int = 100) -> tuple[np.ndarray, bool]:
    """2-4 source pages of ``pool``, no two of them mixed together before (``used``, updated), so
    that two synthetic pages share at most one source page; with too few source pages, after
    ``tries`` draws, any pick. Returns (pick, whether it is fresh)."""
    for _ in range(tries):
        picked = rng.choice(pool, size=int(rng.integers(2, 5)), replace=False)
        pairs = {(int(min(a, b)), int(max(a, b))) for i, a in enumerate(picked) for b in picked[i + 1 :]}
        if not pairs & used:
            used |= pairs
            return picked, True
    return picked, False


def mixed_runs(lengths: np.ndarray, rng) -> list[tuple[int, int]]:
    """For source pages of ``lengths`` token rows: the run [start, stop) of rows each gives, at a
    random place in it: an equal share of their mean length each, a short page giving all it has,
    and no page more than all the others together. With at most one source page in common
    (:func:`distinct_pick`), two synthetic pages then share at most half of either's rows."""
    share = max(int(round(lengths.mean())) // len(lengths), 1)
    takes = np.minimum(lengths, share)
    largest = int(np.argmax(takes))
    takes[largest] = max(min(int(takes[largest]), int(takes.sum() - takes[largest])), 1)
    starts = [int(rng.integers(0, int(n) - int(t) + 1)) for n, t in zip(lengths, takes)]
    return [(a, a + int(t)) for a, t in zip(starts, takes)]


def mix_pages(parts, tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, str]:
    """(packed bits, spans, vocabulary, pooled, text, role) of the runs ``parts``, ((source, page), (a, b)) each."""
    bits, spans, texts, ids, pooled, weights, roles = [], [], [], [], [], [], []
    offset = 0
    for (source, index), (a, b) in parts:
        page_bits, page_spans, _, page_pooled, page_text, role = source.page(index, vocabulary=False)
        run = page_spans[a:b].astype(np.int64)
        first, last = int(run[:, 0].min()), int(run[:, 1].max())
        piece = page_text[first:last]
        bits.append(page_bits[a:b])
        spans.append(run - first + offset)
        texts.append(piece)
        offset += len(piece) + 1  # the pieces are joined by a newline
        ids.append(np.asarray(tokenizer.encode(piece, add_special_tokens=False).ids, dtype=np.int32))
        pooled.append(page_pooled)
        weights.append(b - a)
        roles.append(role)
    mean = np.average(np.stack(pooled), axis=0, weights=np.asarray(weights, np.float64)).astype(np.float32)
    role = roles[int(np.argmax(weights))]
    return np.concatenate(bits), np.concatenate(spans).astype(np.int32), np.concatenate(ids), mean, "\n".join(texts), role


def query_tokenizer(store: Store):
    """The model's tokenizer (``tokenizers``), as its query encoder cuts text."""
    from smartcli.models.registry import load_query_encoder

    return load_query_encoder(store.model.spec, "cpu").tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", default=[], help="a real store (1-bit token states); repeatable with --mode mix")
    parser.add_argument("--mode", choices=("mix", "copies"), default="mix", help="pages mixing 2-4 real pages, or near-copies of one")
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--out", help="the new store's directory (must not exist)")
    parser.add_argument("--flip", type=float, help="probability of each stored bit being flipped (mix 0.01, copies 0.03)")
    parser.add_argument("--per-file", type=int, default=1000, help="pages per synthetic file and per segment")
    parser.add_argument("--smoke", action="store_true", help="200 pages from sample_corpus/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke or not args.source:
            args.source, args.pages, args.per_file = [sample_store(Path(tmp))], 200, 50
            args.out = Path(tmp) / "synthetic"
        out = Path(args.out)
        if out.exists():
            raise SystemExit(f"{out} exists; choose a new directory")
        if args.mode == "copies" and len(args.source) != 1:
            raise SystemExit("--mode copies replicates one --source store")
        sources = [Source(Path(s)) for s in args.source]
        if len({repr(s.store.model.spec) for s in sources}) != 1:
            raise SystemExit("the --source stores were encoded by different models; mix the pages of one model")
        flip = args.flip if args.flip is not None else (0.01 if args.mode == "mix" else 0.03)
        if args.mode == "mix":
            build_mix(sources, out, args.pages, flip, args.per_file)
        else:
            build_copies(sources[0], out, args.pages, flip, args.per_file)
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"{out}: {args.pages} pages ({args.mode}), {total / 2**30:.2f} GiB ({total / args.pages / 1024:.1f} KB a page)")
        if args.smoke:
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
