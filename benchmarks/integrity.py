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

Then it times (wall and CPU) reading token states the way a two-stage search does (a few pages
far apart in each segment: its shortlist spreads over many segments) and a whole segment, from
the same data laid out contiguous (format 1), chunked with Fletcher-32, and contiguous with a
CRC-32 per row (format 2), and the throughput of ``Index.verify``.

    python3 benchmarks/integrity.py STORE --trials 300
    python3 benchmarks/integrity.py [STORE] --smoke     # 5 trials; without STORE: sample_corpus/
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from _stores import clock, machine, sample_store

from smartcli import Index
from smartcli.errors import StoreDamaged
from smartcli.store.catalog import Store, reads
from smartcli.store.segments import Segment


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


def read_costs(root: Path, repeats: int) -> dict:
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
        "fletcher32, 1 MB chunks": {
            "fletcher32": True,
            "chunks": (max(1, min(len(tokens), (1 << 20) // (width * tokens.itemsize))), width),
        },
        "contiguous + row CRC-32": {},
    }
    out = {"tokens": int(tokens.shape[0]), "rows": rows, "reads": len(picked)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in layouts.items():
            path = Path(tmp) / "t.h5"
            with h5py.File(path, "w") as h5:
                h5.create_dataset("tokens", data=tokens, **options)
            check = label.endswith("CRC-32")
            best = {"rows": (float("inf"), 0.0), "whole": (float("inf"), 0.0)}  # (wall, CPU) of the fastest
            for _ in range(repeats):
                with h5py.File(path, "r") as h5:
                    ds = h5["tokens"]
                    with clock() as reading_rows:
                        for r in picked:
                            data = ds[offsets[r] : offsets[r + 1]]
                            if check:
                                assert zlib.crc32(data.tobytes()) == crcs[r]
                    with clock() as reading_whole:
                        data = ds[()]
                        if check:
                            for r in range(rows):
                                zlib.crc32(data[offsets[r] : offsets[r + 1]].tobytes())
                    for key, timing in (("rows", reading_rows), ("whole", reading_whole)):
                        best[key] = min(best[key], (timing.wall, timing.cpu))
            out[label] = {key: (wall * 1e3, cpu * 1e3) for key, (wall, cpu) in best.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, nargs="?", help="an indexed store (copied; required unless --smoke)")
    parser.add_argument("--trials", type=int, default=200, help="bit flips tried per kind and state of the store")
    parser.add_argument("--repeats", type=int, default=7, help="timed reads per layout (the fastest counts)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--smoke", action="store_true", help="5 trials, 2 reads; without STORE: sample_corpus/")
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.repeats = 5, 2
    elif args.store is None:
        parser.error("STORE is required (or --smoke)")
    with tempfile.TemporaryDirectory() as tmp:
        source = args.store or sample_store(Path(tmp))
        root = Path(tmp) / "store"
        shutil.copytree(source, root)
        with Index.open(root) as index:
            report, wall, cpu = timed_verify(index)
        print(
            f"store: {source} ({report.segments} segments, {report.checksummed} with checksums, {report.bytes / 1e6:.1f} MB); {machine()}"
        )
        print(
            f"verify (as it is): {wall:.2f} s, {report.bytes / 1e6 / max(wall, 1e-9):.0f} MB/s ({cpu:.2f} CPU s, "
            f"{report.bytes / 1e6 / max(cpu, 1e-9):.0f} MB per CPU s), damaged: {len(report.damaged)}"
        )
        checked_before, plain = report.checksummed, (wall, cpu)
        before = flips(root, args.trials, args.seed)
        with Index.open(root) as index:
            compacted = index.compact()
            report, wall, cpu = timed_verify(index)
        print(f"compacted: {compacted.segments_rewritten} segments rewritten into {compacted.segments_written}")
        print(
            f"verify (compacted): {wall:.2f} s, {report.bytes / 1e6 / max(wall, 1e-9):.0f} MB/s ({cpu:.2f} CPU s, "
            f"{report.bytes / 1e6 / max(cpu, 1e-9):.0f} MB per CPU s), {report.checksummed} of {report.segments} with checksums; "
            f"compacted / as it was: {wall / max(plain[0], 1e-9):.2f}x wall, {cpu / max(plain[1], 1e-9):.2f}x CPU"
        )
        after = flips(root, args.trials, args.seed)
        print("\nbit flips, one per trial (detected / harmless / silent out of tried):")
        for where in ("data", "anywhere"):
            for label, got in (
                (f"as it was ({checked_before} of {report.segments} checked)", before[where]),
                ("after compact", after[where]),
            ):
                print(f"  {where:8} {label:28} {got['detected']:4} / {got['harmless']:4} / {got['silent']:4} of {args.trials}")
        costs = read_costs(root, args.repeats)
        print(
            f"\ntoken reads from one segment ({costs['tokens']} token states, {costs['rows']} pages), fastest of {args.repeats}, wall / CPU:"
        )
        base = costs["contiguous"]
        for label in ("contiguous", "fletcher32, HDF5's chunks", "fletcher32, 1 MB chunks", "contiguous + row CRC-32"):
            c = costs[label]
            print(
                f"  {label:26} {costs['reads']} pages far apart {c['rows'][0]:8.2f} / {c['rows'][1]:8.2f} ms "
                f"({c['rows'][0] / max(base['rows'][0], 1e-9):5.1f}x)"
                f"   whole segment {c['whole'][0]:8.2f} / {c['whole'][1]:8.2f} ms ({c['whole'][0] / max(base['whole'][0], 1e-9):5.1f}x)"
            )


def timed_verify(index: Index):
    """``Index.verify``'s report, wall and CPU seconds."""
    with clock() as timing:
        report = index.verify()
    return report, timing.wall, timing.cpu


if __name__ == "__main__":
    main()
