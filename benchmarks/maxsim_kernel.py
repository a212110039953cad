"""MaxSim kernels on stored token states beside the machine's float32 GEMM peak, measured in one run.

    python benchmarks/maxsim_kernel.py [--docs 200] [--queries 1] [--threads 1] [--smoke]

MaxSim of m queries (about 10 tokens each, like the dev queries) against --docs pages with
realistic token counts (200-1,100, the spread of manual pages; 200 pages is a default
two-stage shortlist). The figure each kernel is judged by is its speed in *equivalent FLOPs*
of the float product it replaces (2*T*D*Q: what decode + matmul computes), divided by the
GFLOP/s of a large square float32 matrix product (the machine's practical peak), both measured
here, on the same threads, in this run. Kernels:

- ``1-bit, byte lookup (numba)``: what search uses in long-lived processes (kernel.py);
- ``1-bit, decode + matmul (numpy)``: what a fresh one-query process uses (no numba import);
- ``1-bit, unpack + torch maxsim``: the path search took before (decode, matmul, segment max);
- ``float32 tokens, torch maxsim``: the float product itself, for reference.

The target (issue 12): the 1-bit kernel at >= 0.5 of the GEMM peak.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def timed(fn, repeats: int) -> float:
    """Seconds per call, best of ``repeats`` after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="pages scored")
    parser.add_argument("--queries", type=int, default=1, help="queries scored together")
    parser.add_argument("--query-tokens", type=int, default=10)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (search uses 1 per query)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu"], help="the stored-bits kernels run on the CPU (CUDA keeps the torch path)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.docs, args.repeats = 8, 1

    import torch
    from threadpoolctl import threadpool_limits

    from smartcli.search import kernel
    from smartcli.search.scoring import maxsim
    from smartcli.store.formats import encode_binary, unpack_binary_tokens
    from smartcli.store.segments import StoredTokens

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    rng = np.random.default_rng(0)
    d = args.dims
    lengths = rng.integers(200, 1100, args.docs)
    total = int(lengths.sum())
    docs = rng.standard_normal((total, d)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    packed = encode_binary(docs)
    q_lengths = [args.query_tokens] * args.queries
    nq = sum(q_lengths)
    queries = rng.standard_normal((nq, d)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    stops = np.cumsum(lengths)
    starts = stops - lengths
    stored = StoredTokens(packed, None, d)

    n = 128 if args.smoke else 1024
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    peak_numpy = 2 * n**3 / timed(lambda: a @ b, args.repeats) / 1e9
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    peak_torch = 2 * n**3 / timed(lambda: ta @ tb, args.repeats) / 1e9
    peak = max(peak_numpy, peak_torch)

    started = time.perf_counter()
    compiled = kernel.compiled_kernel()
    load = time.perf_counter() - started
    flops = 2 * total * d * nq
    t_docs, t_lengths = torch.from_numpy(docs), torch.from_numpy(lengths)
    t_q, t_ql = torch.from_numpy(queries), torch.tensor(q_lengths)
    t_packed = torch.from_numpy(packed)
    kernels = {
        "1-bit, byte lookup (numba)": lambda: kernel.page_maxima(queries, stored, starts, stops, compiled=True),
        "1-bit, decode + matmul (numpy)": lambda: kernel.page_maxima(queries, stored, starts, stops, compiled=False),
        "1-bit, unpack + torch maxsim (before)": lambda: maxsim(t_q, unpack_binary_tokens(t_packed, d), t_lengths, t_ql),
        "float32 tokens, torch maxsim": lambda: maxsim(t_q, t_docs, t_lengths, t_ql),
    }
    print(f"MaxSim kernels; {os.cpu_count()} CPUs (load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}), {args.threads} thread(s); "
          f"{args.docs} pages, {total} page tokens, {nq} query tokens, {d} dims")
    print(f"numba kernel: import + load from cache (or compile) {load:.2f} s; compiled kernel available: {compiled is not None}")
    print(f"float32 GEMM peak ({n}^3): numpy {peak_numpy:.1f} GFLOP/s, torch {peak_torch:.1f} GFLOP/s; peak = {peak:.1f}")
    for name, fn in kernels.items():
        seconds = timed(fn, args.repeats)
        rate = flops / seconds / 1e9
        print(f"  {name:40} {seconds * 1000:8.2f} ms  {rate:7.1f} equivalent GFLOP/s  {rate / peak:5.2f}x of peak (target 0.5)")


if __name__ == "__main__":
    main()
