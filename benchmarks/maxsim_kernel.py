"""MaxSim kernel throughput beside a plain matrix-multiply peak, measured in the same run.

    python benchmarks/maxsim_kernel.py [--device cpu|cuda] [--docs 256] [--queries 8] [--smoke]

MaxSim of m queries (about 16 tokens each) against a chunk of documents with realistic token
counts (200-1,100, the spread of manual pages). Its useful work is the [T, D] x [D, Q] product,
2*T*D*Q flops; the segmented max and the mean add little arithmetic. The figure it is judged
by is MaxSim GFLOP/s divided by the GFLOP/s of a large square matrix product (the machine's
practical peak), both measured here, on the same device, in this run.
"""

from __future__ import annotations

import argparse
import time

import torch

from smartcli.store.formats import unpack_binary_tokens
from smartcli.search.scoring import maxsim


def timed(fn, device: str, repeats: int) -> float:
    """Seconds per call, best of ``repeats`` after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--docs", type=int, default=256, help="documents per chunk")
    parser.add_argument("--queries", type=int, default=8, help="queries scored together")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.queries, args.repeats = 8, 2, 1
    device, d = args.device, args.dims
    dtype = torch.float16 if device == "cuda" else torch.float32
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(200, 1100, (args.docs,), generator=gen)
    total = int(lengths.sum())
    docs = torch.nn.functional.normalize(torch.randn(total, d, generator=gen), dim=1).to(device, dtype)
    q_lengths = torch.full((args.queries,), 16)
    queries = torch.nn.functional.normalize(torch.randn(int(q_lengths.sum()), d, generator=gen), dim=1).to(device, dtype)
    lengths, q_lengths = lengths.to(device), q_lengths.to(device)
    packed = torch.randint(0, 256, (total, d // 8), dtype=torch.uint8, generator=gen).to(device)

    n = 4096 if device == "cuda" else 1024
    if args.smoke:
        n = 128
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    peak = 2 * n**3 / timed(lambda: a @ b, device, args.repeats) / 1e9

    flops = 2 * total * d * int(q_lengths.sum())
    product = flops / timed(lambda: docs @ queries.T, device, args.repeats) / 1e9
    kernel = flops / timed(lambda: maxsim(queries, docs, lengths, q_lengths), device, args.repeats) / 1e9
    binary = flops / timed(
        lambda: maxsim(queries, unpack_binary_tokens(packed, d, dtype), lengths, q_lengths), device, args.repeats
    ) / 1e9
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.docs} docs, {total} doc tokens, {int(q_lengths.sum())} query tokens, {d} dims, {dtype}")
    print(f"matrix-multiply peak ({n}^3):          {peak:8.1f} GFLOP/s")
    print(f"the [T,D]x[D,Q] product alone:         {product:8.1f} GFLOP/s  ({product / peak:.2f} of peak)")
    print(f"MaxSim, float tokens:                  {kernel:8.1f} GFLOP/s  ({kernel / peak:.2f} of peak)")
    print(f"MaxSim, 1-bit tokens unpacked on the fly: {binary:5.1f} GFLOP/s  ({binary / peak:.2f} of peak)")


if __name__ == "__main__":
    main()
