"""Build a large synthetic store from a real one: its pages' token states replicated with small
perturbations, so that queries score them as they score real pages.

    python benchmarks/synthetic_store.py --source STORE --pages 100000 --out DIR [--flip 0.03]
    python benchmarks/synthetic_store.py --smoke

Each synthetic page copies a real page of ``--source`` (in turn, page after page): its stored
1-bit token states with each bit flipped with probability ``--flip`` (a fresh mask per page, so
that no two copies are the same page), its pooled vector with Gaussian noise of the same relative
size (renormalized), its spans, vocabulary and text. Pages are written through the real store
code (``writes.write_segment`` and ``commit_files``, as `smart index` commits them), ``--per-file``
pages per file and per segment. The source must hold 1-bit token states (the default format).

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
from smartcli.store.catalog.reads import live_columns

MASKS = 64  # distinct flip masks drawn once, reused at random offsets


class Source:
    """The real pages a synthetic store replicates: their stored states, spans, vocabularies and texts."""

    def __init__(self, root: Path):
        from smartcli.search.searcher import Searcher

        self.store = Store.open(root)
        if self.store.token_dtype != "binary":
            raise SystemExit(f"{root} keeps {self.store.token_dtype} token states; the synthetic builder replicates 1-bit ones")
        self.searcher = Searcher(self.store, None, device="cpu")
        self.columns = live_columns(self.store)
        self.items = self.searcher.items.many(range(len(self.searcher)))
        self.vocab: dict[str, tuple] = {}

    def __len__(self) -> int:
        return len(self.items)

    def page(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, str]:
        """(packed bits, spans, vocabulary, pooled, text, role) of real page ``index``."""
        item = self.items[index]
        bits = np.array(self.searcher.stored_tokens(index).data)
        spans = self.searcher.page_spans(index)
        if item.segment not in self.vocab:
            with self.store.open_segment(item.segment) as segment:
                ids, starts, rows = segment.vocabulary()
                self.vocab[item.segment] = (np.asarray(ids), np.repeat(np.arange(len(ids)), np.diff(np.asarray(starts))), np.asarray(rows))
        ids, owner, rows = self.vocab[item.segment]
        vocabulary = ids[owner[rows == item.row]]
        return bits, spans, vocabulary, self.searcher.pooled[index], item.text, item.role


def build(source: Source, out: Path, pages: int, flip: float, per_file: int, seed: int = 24) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="a real store (1-bit token states) whose pages are replicated")
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--out", help="the new store's directory (must not exist)")
    parser.add_argument("--flip", type=float, default=0.03, help="probability of each stored bit being flipped")
    parser.add_argument("--per-file", type=int, default=1000, help="pages per synthetic file and per segment")
    parser.add_argument("--smoke", action="store_true", help="200 pages from sample_corpus/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke or not args.source:
            args.source, args.pages, args.per_file = sample_store(Path(tmp)), 200, 50
            args.out = Path(tmp) / "synthetic"
        out = Path(args.out)
        if out.exists():
            raise SystemExit(f"{out} exists; choose a new directory")
        build(Source(Path(args.source)), out, args.pages, args.flip, args.per_file)
        total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"{out}: {args.pages} pages, {total / 2**30:.2f} GiB ({total / args.pages / 1024:.1f} KB a page)")
        if args.smoke:
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
