"""Adam's step over mist's parameters, fused against the default (foreach) implementation (docs/scale.md).

    python benchmarks/optimizer_step.py --data PREPARED --json OUT [--steps 30]

The model is built on PREPARED's vocabularies (`PreparedDataset.load(rows=False)`), every parameter given a random
gradient, and each optimiser's step timed over --steps steps after 3 warm-up steps, in one process, 2 threads
(MISTREC_BENCH_THREADS). The step updates every row of the embedding tables, so it grows with the vocabulary.
JSON: {"parameters", "largest", "ms_per_step": {"foreach": float, "fused": float}, "max_abs_difference_after_steps",
"context"}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.features.encoder import FeatureEncoder
    from mistrec.models.registry import build_model

    torch.set_num_threads(int(THREADS))
    torch.manual_seed(0)
    enc = FeatureEncoder().fit(PreparedDataset.load(args.data, rows=False))
    timed, finals = {}, {}
    for name, options in (("foreach", {}), ("fused", {"fused": True})):
        torch.manual_seed(0)
        model = build_model("mist", enc.spec_)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = [torch.randn_like(p) for p in params]
        opt = torch.optim.Adam(params, lr=1e-3, **options)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        for _ in range(3):
            opt.step()
        start = time.perf_counter()
        for _ in range(args.steps):
            opt.step()
        timed[name] = 1000 * (time.perf_counter() - start) / args.steps
        finals[name] = [p.detach().clone() for p in params]
    largest = sorted(((p.numel(), n) for n, p in model.named_parameters()), reverse=True)[:3]
    diff = max(float((a - b).abs().max()) for a, b in zip(finals["foreach"], finals["fused"], strict=True))
    write_json(Path(args.json), {"data": args.data, "parameters": sum(p.numel() for p in params),
                                 "largest": [{"name": n, "numel": k} for k, n in largest],
                                 "ms_per_step": {k: round(v, 3) for k, v in timed.items()},
                                 "max_abs_difference_after_steps": diff, "steps": args.steps + 3,
                                 "context": context()})
    print(timed, diff)


if __name__ == "__main__":
    main()
