"""Damaged ONNX exports: how many are caught before they answer, and what the check costs at start-up.

    python benchmarks/export_integrity.py [--trials 20] [--other-trials 5] [--code DIR]
    python benchmarks/export_integrity.py --smoke

1. Start-up cost (CPU milliseconds, median of 9, this checkout): what a process pays to trust the
   cached export before its first query — one ``stat`` when the export's identity is the one its
   manifest recorded (every start after the first), the SHA-256 of the whole file when it is not
   (the first start after a copy or a change), beside a probe query (one forward pass of a short
   text compared with a reference, the alternative the issue named) and ONNX Runtime's own
   session creation.
2. Trials: copies of the whole float32 query export, each in a fresh cache folder, damaged
   (tests/onnx_damage.py: 2,000 weights' top exponent bit flipped, one weight's, truncated,
   another export of the same graph put in its place, not ONNX at all, the manifest gone), then
   loaded as ``smart search`` loads it and used to encode the queries. Each trial is counted as
   caught (a line named the damage and the vectors equal the clean export's), silent and wrong
   (no line, the vectors differ), silent and harmless, or torch (the export was refused and torch
   answered, on every run). Beside each bit-flip trial: whether a probe query would have caught it.
   ``--code DIR`` runs the trials on another checkout's smartcli (the main branch, for the
   figures before the check).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _stores import SAMPLE_JUDGED, machine, read_queries

from tests.onnx_damage import damage, flip_exponents  # this checkout's, also with --code

PROBE = "smart export probe: how do I change the default terminal?"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials of each kind of bit flips (default 20)")
    parser.add_argument("--other-trials", type=int, default=5, help="trials of each other kind of damage (default 5)")
    parser.add_argument("--queries", help="queries to encode in each trial (JSON lines or plain lines); default: the sample queries")
    parser.add_argument("--code", help="the checkout whose smartcli loads the exports (default: this one)")
    parser.add_argument("--smoke", action="store_true", help="one trial of each kind")
    return parser.parse_args()


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms CPU"


def cpu_of(fn, repeats: int = 9) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        samples.append(time.process_time() - started)
    return samples


def startup_costs(model_dir: Path) -> None:
    from smartcli.models.base import FP32, INT8, fingerprint_model_dir
    from smartcli.models.onnx_export import check_export, file_digest
    from smartcli.models.onnx_text import OnnxTextEncoder, ensure_export

    fingerprint = fingerprint_model_dir(model_dir)
    exports = {p: ensure_export(model_dir, fingerprint, p)[0] for p in (FP32, INT8)}
    encoder = OnnxTextEncoder(model_dir, exports[FP32], "default", "default")
    reference = encoder.encode_queries([PROBE])[0].tokens
    print("start-up cost of trusting the cached export (median of 9):")
    print(f"  identity check (one stat; every start after the first)   {ms(cpu_of(lambda: check_export(exports[FP32])))}")
    for precision, export in exports.items():
        size = export.stat().st_size / 1e6
        print(f"  SHA-256 of the {precision} export ({size:5.1f} MB; after a change)      {ms(cpu_of(lambda e=export: file_digest(e)))}")
    probe = cpu_of(lambda: differs(encoder.encode_queries([PROBE])[0].tokens, reference))
    print(f"  probe query (one forward pass, compared)                 {ms(probe)}")
    session = cpu_of(lambda: OnnxTextEncoder(model_dir, exports[FP32], "default", "default"), repeats=5)
    print(f"  for scale: ONNX Runtime session of the fp32 export       {ms(session)}")


def foreign_export(clean: Path, folder: Path) -> Path:
    """Another export of the same graph: the word embeddings scaled by 1.5 (loads, answers wrongly)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(clean))
    for i, tensor in enumerate(model.graph.initializer):
        if "word_embeddings" in tensor.name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 1.5, tensor.name))
    path = folder / "foreign.onnx"
    onnx.save(model, str(path))
    return path


def differs(got: np.ndarray, expected: np.ndarray) -> bool:
    """Off by more than 1e-4 anywhere (NaN and infinity included)."""
    return not np.allclose(got, expected, rtol=0, atol=1e-4)


def trial(kind: str, seed: int, clean: Path, foreign: Path, folder: Path, model_dir: Path, queries: list[str], expected):
    """One damaged export loaded and used: (outcome, would a probe query have caught it)."""
    from smartcli.models import onnx_text

    cache = folder / f"cache-{kind.replace(' ', '-')}-{seed}"
    (cache / "onnx").mkdir(parents=True)
    os.environ["SMART_CACHE_DIR"] = str(cache)
    export = cache / "onnx" / clean.name
    shutil.copyfile(clean, export)
    if clean.with_suffix(".json").exists():
        shutil.copyfile(clean.with_suffix(".json"), export.with_suffix(".json"))
    if kind == "one flip":
        flip_exponents(export, 1, seed)
    else:
        damage(export, kind, seed, foreign)
    probe_caught = None
    if kind in ("bit flips", "one flip"):
        damaged = onnx_text.OnnxTextQueryEncoder(model_dir, export, "default", "default")
        probe_caught = differs(damaged.encode_queries([PROBE])[0].tokens, expected[PROBE])
    said = []
    encoder, _ = onnx_text.load_onnx_query_encoder(model_dir, "default", "default", on_export=lambda *a: said.append(a))
    if encoder is None:
        return "torch", probe_caught
    got = encoder.encode_queries(queries)
    wrong = any(differs(a.tokens, expected[q]) for q, a in zip(queries, got))
    if said:
        return ("caught" if not wrong else "caught, still wrong"), probe_caught
    return ("silent and wrong" if wrong else "silent and harmless"), probe_caught


def main() -> None:
    args = parse()
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    import smartcli
    from smartcli.models import onnx_text
    from smartcli.models.base import default_model_path, fingerprint_model_dir
    from smartcli.models.registry import load_query_encoder

    if args.smoke:
        args.trials = args.other_trials = 1
    print(f"smartcli from {Path(smartcli.__file__).parent}; {machine()}")
    model_dir = default_model_path()
    load_query_encoder("default", "cpu")  # the clean export, made if missing
    clean = onnx_text.exported_model_path(fingerprint_model_dir(model_dir))
    queries = [q["query"] for q in (read_queries(args.queries) if args.queries else SAMPLE_JUDGED)]
    clean_encoder = onnx_text.OnnxTextQueryEncoder(model_dir, clean, "default", "default")
    expected = {q: e.tokens for q, e in zip(queries + [PROBE], clean_encoder.encode_queries(queries + [PROBE]))}
    if not args.code and hasattr(onnx_text, "ensure_export"):
        startup_costs(model_dir)

    kinds = {"bit flips": args.trials, "one flip": args.trials}
    kinds.update({k: args.other_trials for k in ("truncated", "foreign file", "not ONNX", "no manifest")})
    print(f"trials ({len(queries)} queries encoded in each; a vector off by more than 1e-4 counts as wrong):")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        foreign = foreign_export(clean, folder)
        for kind, count in kinds.items():
            outcomes, probes = {}, []
            for seed in range(count):
                outcome, probe = trial(kind, seed, clean, foreign, folder, model_dir, queries, expected)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                probes += [] if probe is None else [probe]
                shutil.rmtree(folder / f"cache-{kind.replace(' ', '-')}-{seed}")
            counted = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
            probe_line = f"; a probe query would have caught {sum(probes)} of {len(probes)}" if probes else ""
            print(f"  {kind:13} {count:3} damaged exports: {counted}{probe_line}", flush=True)


if __name__ == "__main__":
    main()
