"""MaxSim kernels on stored token states beside the machine's float32 GEMM peak, measured in one run.

    python benchmarks/maxsim_kernel.py [--docs 200] [--queries 1] [--threads 1] [--smoke]

MaxSim of m queries (about 10 tokens each, like the dev queries) against --docs pages with
realistic token counts (200-1,100, the spread of manual pages; 200 pages is a default
two-stage shortlist). The figure each kernel is judged by is its speed in *equivalent FLOPs*
of the float product it replaces (2*T*D*Q: what decode + matmul computes), divided by the
GFLOP/s of a large square float32 matrix product (the machine's practical peak), both measured
here, on the same threads, in this run: by the wall clock, and by this process's CPU seconds
(steadier on a shared machine; with one thread the two agree when the machine is idle). Kernels:

- ``1-bit, byte lookup (numba)``: what search uses in long-lived processes (kernel.py);
- ``1-bit, decode + matmul (numpy)``: what a fresh one-query process uses (no numba import);
- ``1-bit, unpack + torch maxsim``: the path search took before (decode, matmul, segment max);
- ``float32 tokens, torch maxsim``: the float product itself, for reference.

The target (issue 12): the 1-bit kernel at >= 0.5 of the GEMM peak.
"""

from __future__ import annotations

import argparse

import numpy as np
from _stores import clock, machine


def fastest(fn, repeats: int) -> tuple[float, float]:
    """Wall and CPU seconds per call, of the fastest of ``repeats`` calls after one warm-up."""
    fn()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        with clock() as timing:
            fn()
        best = min(best, (timing.wall, timing.cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200, help="pages scored")
    parser.add_argument("--queries", type=int, default=1, help="queries scored together")
    parser.add_argument("--query-tokens", type=int, default=10)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (search uses 1 per query)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--device", default="cpu", choices=["cpu"], help="the stored-bits kernels run on the CPU (CUDA keeps the torch path)"
    )
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
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    # GFLOP/s by the wall clock and by CPU seconds, numpy's and torch's
    peaks = {
        name: [2 * n**3 / max(t, 1e-12) / 1e9 for t in fastest(fn, args.repeats)]
        for name, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb))
    }
    peak = [max(p[i] for p in peaks.values()) for i in (0, 1)]

    with clock() as loading:
        compiled = kernel.compiled_kernel()
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
    print(f"MaxSim kernels; {machine()}, {args.threads} thread(s); {args.docs} pages, {total} page tokens, {nq} query tokens, {d} dims")
    print(
        f"numba kernel: import + load from cache (or compile) {loading.wall:.2f} s ({loading.cpu:.2f} CPU s); compiled kernel available: {compiled is not None}"
    )
    print(
        f"float32 GEMM peak ({n}^3), wall / CPU: numpy {peaks['numpy'][0]:.1f} / {peaks['numpy'][1]:.1f} GFLOP/s, "
        f"torch {peaks['torch'][0]:.1f} / {peaks['torch'][1]:.1f} GFLOP/s; peak = {peak[0]:.1f} / {peak[1]:.1f}"
    )
    print(f"  {'kernel':40} {'ms wall':>8} {'ms CPU':>8}  {'equivalent GFLOP/s':>18}  of peak (target 0.5): wall, CPU")
    for name, fn in kernels.items():
        wall, cpu = fastest(fn, args.repeats)
        rate = [flops / max(t, 1e-12) / 1e9 for t in (wall, cpu)]
        print(f"  {name:40} {wall * 1000:8.2f} {cpu * 1000:8.2f}  {rate[0]:18.1f}  {rate[0] / peak[0]:5.2f}x, {rate[1] / peak[1]:5.2f}x")


if __name__ == "__main__":
    main()
