"""GPU check for the pixel families: CPU vs CUDA scores and items/s, with tiny CLIP and Qwen3-VL models.

    python benchmarks/gpu_vision_check.py                 # sample_corpus/, tiny models built on the fly
    python benchmarks/gpu_vision_check.py --corpus DIR    # another folder of PDFs and images
    python benchmarks/gpu_vision_check.py --smoke         # tiny CLIP only, on sample_corpus/photos/

For each model it indexes the corpus on the CPU and, when CUDA is there, on the GPU (the
real indexing path: rendering, encoding, HDF5 segments), then scores a few text queries
and one image query against every item on both stores and prints the largest absolute
difference of the anchor, late and fused (default lambdas) scores, and items/s of each run (wall;
CPU seconds of this process beside it, with the CUDA run's against the CPU run's).
Without CUDA the GPU runs are skipped and said so. Runs in well under a minute on a GPU
machine; about a minute on a laptop CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _stores import ROOT, clock, machine

QUERIES = ["how do I change the default terminal", "wifi channel interference", "sunset over the sea", "tyre pressure"]
IMAGE_QUERY = ROOT / "sample_corpus" / "photos" / "sunset.png"
# Qwen3-VL runs at its real default budget (up to 1800 image tokens per page) so the GPU
# sees the sequence lengths a real model does; CLIP's input size is fixed.
MODELS = ("clip", "qwen3_vl")


def index_and_score(model_dir: Path, corpus: Path, device: str, workdir: Path) -> dict:
    import numpy as np
    import torch

    from smartcli.ingest.indexer import Indexer
    from smartcli.ingest.planning import plan_changes
    from smartcli.ingest.render import load_image
    from smartcli.models.registry import load_encoder
    from smartcli.search.scoring import Weights, fuse
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store, writes

    encoder = load_encoder(str(model_dir), device)
    encoder.encode_queries(QUERIES[:1])  # warm up (CUDA context, kernels) outside the timing
    store = Store.open_for_writing(workdir / f"store-{model_dir.name}-{device}")
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(corpus)])
    if device == "cuda":
        torch.cuda.synchronize()
    with clock() as indexing:
        summary = Indexer(store, encoder, encode_batch_size=encoder.default_batch_size).run(plan, hashes)
        if device == "cuda":
            torch.cuda.synchronize()
    searcher = Searcher(store, encoder, device=device, shortlist=None)  # every page scored
    queries = encoder.encode_queries(QUERIES) + encoder.encode_documents([load_image(str(IMAGE_QUERY), encoder.pixel_cap)])
    scored = searcher.score(queries, Weights())
    anchor, late = scored.anchor, scored.late
    keys = [(item.path, item.page) for item in searcher.items]
    order = np.argsort(np.array([f"{p}\0{n:08d}" for p, n in keys]))
    store.close()
    return {
        "items": summary.pages_encoded,
        "tokens": summary.tokens_encoded,
        "seconds": indexing.wall,
        "cpu": indexing.cpu,
        "dtype": str(encoder.dtype).replace("torch.", ""),
        "keys": [keys[i] for i in order],
        "anchor": anchor[:, order],
        "late": late[:, order],
        "fused": fuse(anchor, late, Weights())[:, order],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "sample_corpus", help="folder of PDFs and images (default: sample_corpus/)")
    parser.add_argument("--smoke", action="store_true", help="tiny CLIP only, on sample_corpus/photos/")
    args = parser.parse_args()
    models = ("clip",) if args.smoke else MODELS
    if args.smoke:
        args.corpus = ROOT / "sample_corpus" / "photos"

    import numpy as np
    import torch
    from transformers.utils import logging as hf_logging

    from tests.tiny_models import BUILDERS

    has_cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}; CUDA: {torch.cuda.get_device_name(0) if has_cuda else 'not available'}")
    print(f"corpus: {args.corpus}; {machine()}")
    with tempfile.TemporaryDirectory(prefix="smart-gpu-check-") as tmp:
        workdir = Path(tmp)
        hf_logging.set_verbosity_error()
        checkpoints = {name: BUILDERS[name](workdir / "models" / name) for name in models}
        for name in models:
            runs = {"cpu": index_and_score(checkpoints[name], args.corpus, "cpu", workdir)}
            if has_cuda:
                runs["cuda"] = index_and_score(checkpoints[name], args.corpus, "cuda", workdir)
            for device, run in runs.items():
                print(
                    f"{name:9} {device:4} {run['dtype']:8} {run['items']} items, {run['tokens']} token states, "
                    f"{run['seconds']:.2f} s, {run['items'] / run['seconds']:.1f} items/s; {run['cpu']:.2f} CPU s"
                )
            if not has_cuda:
                print(f"{name:9} cuda skipped: no CUDA device")
                continue
            cpu, cuda = runs["cpu"], runs["cuda"]
            assert cpu["keys"] == cuda["keys"], "the two runs indexed different items"
            diffs = {view: float(np.abs(cpu[view] - cuda[view]).max()) for view in ("anchor", "late", "fused")}
            same_top = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(cpu["fused"], cuda["fused"]))
            print(
                f"{name:9} CUDA / CPU: {cpu['seconds'] / cuda['seconds']:.2f}x the items/s, {cuda['cpu'] / max(cpu['cpu'], 1e-9):.2f}x the host CPU seconds"
            )
            print(
                f"{name:9} CPU vs CUDA max |score difference|: anchor {diffs['anchor']:.2e}, late {diffs['late']:.2e}, "
                f"fused {diffs['fused']:.2e}; same top hit for {same_top}/{len(cpu['fused'])} queries"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
