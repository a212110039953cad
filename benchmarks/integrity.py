"""Bit flips detected out of tried, and what the checks cost (issue 13, item 9).

Takes a store (copied first: the original is never written), and flips random bits in its
segment files, one flip per trial, each on a fresh copy of one segment file:

- ``data``: a random bit of a random dataset's stored bytes (a chunk, or the contiguous data);
- ``anywhere``: a random bit anywhere in the file (HDF5's own metadata included).

A trial is *detected* when opening the segment against the catalog's record or
``Segment.verify`` (what ``smart status --verify`` runs) reports damage; *harmless* when
nothing is reported and every dataset still reads exactly as before (the bit was in unused
space); *silent* otherwise (a wrong value that would be served). It runs on the store as it is
(segments written before schema 3: no identity, no checksums) and after ``Index.compact()``
rewrote them (Fletcher-32 + SHA-256 digests), side by side.

Then it times reading token states the way a two-stage search does (a few pages far apart in
each segment: its shortlist spreads over many segments) and a whole segment, from the same data laid out contiguous (format 1), chunked with
Fletcher-32, and contiguous with a CRC-32 per row (format 2), and the throughput of
``Index.verify``.

    python3 benchmarks/integrity.py /tmp/dev --trials 300
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcli import Index  # noqa: E402
from smartcli.errors import StoreDamaged  # noqa: E402
from smartcli.store.catalog import Store, reads  # noqa: E402
from smartcli.store.segments import Segment  # noqa: E402


def regions(path: Path) -> list[tuple[str, int, int]]:
    """(dataset, file offset, bytes) of every stored piece of data in a segment file."""
    import h5py

    found = []
    with h5py.File(path, "r") as h5:
        for key in h5:
            ds = h5[key]
            if ds.dtype.kind == "O":
                continue  # the global heap: found by "anywhere"
            if ds.chunks is None:
                offset = ds.id.get_offset()
                if offset is not None:
                    found.append((key, int(offset), int(ds.id.get_storage_size())))
            else:
                for i in range(ds.id.get_num_chunks()):
                    info = ds.id.get_chunk_info(i)
                    found.append((key, int(info.byte_offset), int(info.size)))
    return found


def contents(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as h5:
        return {key: h5[key][()] for key in h5}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (a[k].dtype == object and list(a[k]) == list(b[k])) or (a[k].dtype != object and a[k].tobytes() == b[k].tobytes()) for k in a
    )


def trial(store: Store, name: str, original: Path, scratch: Path, where: str, rng: random.Random) -> str:
    shutil.copyfile(original, scratch)
    if where == "data":
        key, start, size = rng.choice(regions(original))
        offset = start + rng.randrange(size)
    else:
        offset = rng.randrange(original.stat().st_size)
    with open(scratch, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << rng.randrange(8))]))
    target = store.segment_path(name)
    shutil.copyfile(scratch, target)
    try:
        try:
            segment = Segment(target, store.expected(name))
        except StoreDamaged:
            return "detected"
        with segment:
            if segment.verify(store.expected(name), reads.segment_digests(store, name)):
                return "detected"
        try:
            return "harmless" if same(contents(target), contents(original)) else "silent"
        except Exception:
            return "detected"  # unreadable: any read says so
    finally:
        shutil.copyfile(original, target)


def flips(root: Path, trials: int, seed: int) -> dict:
    rng = random.Random(seed)
    results = {}
    with Store.open(root) as store:
        names = sorted(s["name"] for s in reads.segment_usage(store))
        with tempfile.TemporaryDirectory() as tmp:
            originals = {}
            for name in names:
                originals[name] = Path(tmp) / f"{name}.orig"
                shutil.copyfile(store.segment_path(name), originals[name])
            for where in ("data", "anywhere"):
                counts = {"detected": 0, "harmless": 0, "silent": 0}
                for _ in range(trials):
                    name = rng.choice(names)
                    counts[trial(store, name, originals[name], Path(tmp) / "scratch.h5", where, rng)] += 1
                results[where] = counts
    return results


def read_costs(root: Path, repeats: int = 7) -> dict:
    """Token reads of the same data laid out three ways: contiguous (format 1), chunked with
    Fletcher-32 (whole rows, about 1 MB or HDF5's own guess), and contiguous with a CRC-32 per
    row checked on each read (format 2, what Segment does)."""
    import zlib

    import h5py

    from smartcli.store.segments import row_crcs

    with Store.open(root) as store:
        name = max(reads.segment_usage(store), key=lambda s: s["tokens"])["name"]
        with h5py.File(store.segment_path(name), "r") as h5:
            tokens, offsets = h5["tokens"][()], h5["offsets"][()]
    rows = len(offsets) - 1
    crcs = row_crcs(tokens, offsets)
    # A two-stage query's ~200 shortlisted pages lie spread over many segments (a segment holds
    # at most 2^17 token states): a few pages of each, far apart.
    picked = np.sort(np.random.default_rng(0).choice(rows, size=min(8, rows), replace=False))
    width = tokens.shape[1]
    layouts = {
        "contiguous": {},
        "fletcher32, HDF5's chunks": {"fletcher32": True},
        "fletcher32, 1 MB chunks": {"fletcher32": True, "chunks": (max(1, min(len(tokens), (1 << 20) // (width * tokens.itemsize))), width)},
        "contiguous + row CRC-32": {},
    }
    out = {"tokens": int(tokens.shape[0]), "rows": rows, "reads": len(picked)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in layouts.items():
            path = Path(tmp) / "t.h5"
            with h5py.File(path, "w") as h5:
                h5.create_dataset("tokens", data=tokens, **options)
            check = label.endswith("CRC-32")
            best_rows = best_whole = float("inf")
            for _ in range(repeats):
                with h5py.File(path, "r") as h5:
                    ds = h5["tokens"]
                    t = time.perf_counter()
                    for r in picked:
                        data = ds[offsets[r] : offsets[r + 1]]
                        if check:
                            assert zlib.crc32(data.tobytes()) == crcs[r]
                    best_rows = min(best_rows, time.perf_counter() - t)
                    t = time.perf_counter()
                    data = ds[()]
                    if check:
                        for r in range(rows):
                            zlib.crc32(data[offsets[r] : offsets[r + 1]].tobytes())
                    best_whole = min(best_whole, time.perf_counter() - t)
            out[label] = {"rows_ms": round(best_rows * 1e3, 2), "whole_ms": round(best_whole * 1e3, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        shutil.copytree(args.store, root)
        with Index.open(root) as index:
            report = index.verify()
        print(f"store: {args.store} ({report.segments} segments, {report.checksummed} with checksums, {report.bytes / 1e6:.1f} MB)")
        print(f"verify (as it is): {report.seconds:.2f} s, {report.bytes / 1e6 / max(report.seconds, 1e-9):.0f} MB/s, damaged: {len(report.damaged)}")
        checked_before = report.checksummed
        before = flips(root, args.trials, args.seed)
        with Index.open(root) as index:
            compacted = index.compact()
            report = index.verify()
        print(f"compacted: {compacted.segments_rewritten} segments rewritten into {compacted.segments_written}")
        print(f"verify (compacted): {report.seconds:.2f} s, {report.bytes / 1e6 / max(report.seconds, 1e-9):.0f} MB/s, {report.checksummed} of {report.segments} with checksums")
        after = flips(root, args.trials, args.seed)
        print("\nbit flips, one per trial (detected / harmless / silent out of tried):")
        for where in ("data", "anywhere"):
            for label, got in ((f"as it was ({checked_before} of {report.segments} checked)", before[where]), ("after compact", after[where])):
                print(f"  {where:8} {label:28} {got['detected']:4} / {got['harmless']:4} / {got['silent']:4} of {args.trials}")
        costs = read_costs(root)
        print(f"\ntoken reads from one segment ({costs['tokens']} token states, {costs['rows']} pages), best of 7:")
        base = costs["contiguous"]
        for label in ("contiguous", "fletcher32, HDF5's chunks", "fletcher32, 1 MB chunks", "contiguous + row CRC-32"):
            c = costs[label]
            print(f"  {label:26} {costs['reads']} pages far apart {c['rows_ms']:8.2f} ms ({c['rows_ms'] / max(base['rows_ms'], 1e-9):5.1f}x)"
                  f"   whole segment {c['whole_ms']:8.2f} ms ({c['whole_ms'] / max(base['whole_ms'], 1e-9):5.1f}x)")

if __name__ == "__main__":
    main()
