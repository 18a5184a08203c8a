"""How much of the attention interest's leave-source-out entries is renormalisation: for each saved mist run of the
DIRs, on the test rows, the target's AUC lost when a source scenario's events leave the interest u only (the transfer
read-out, `co_items` and the rest of the head read them still), computed three ways:

- "renorm": u computed again without them (the softmax over the remaining events and the interest-level shares over
  the remaining pools renormalise: lso_parts.py's "interest" entry);
- "event_only": the event weights of the whole history with the source's set to 0 (no renormalisation over the
  events), the interest-level shares recomputed over the remaining pools;
- "subtract": the source's pools' part of u taken out, every other weight and share as with the whole history.

Evaluation only (docs/benchmarks.md, "interest_scope: auto").

    python benchmarks/lso_renorm.py --json benchmarks/results/lso_renorm.json \
        benchmarks/work/s40-own-syn/synthetic-transfer-4000u benchmarks/work/s42-lso/synthetic-transfer-4000u-draw1
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json
from lso_parts import auc_drops, parser, seed_record

WAYS = ("renorm", "event_only", "subtract")


def _pools(model: Any, e: Any, w: Any, q: Any, b: Any) -> tuple[Any, Any]:
    """Step 4 as Mist.pool computes it from weights w (B, L): each pool's weighted sum v (B, K, E) and the shares
    beta (B, K) over the pools the batch `b` has events in."""
    import torch

    from mistrec.models.mist_parts import interest_shares

    k = model.n_indices * model.n_pools
    pool = model._pool_index(b)
    onehot = w.new_zeros(*w.shape, k).scatter_(2, pool.unsqueeze(-1), w.unsqueeze(-1))
    v = torch.bmm(onehot.transpose(1, 2), e)
    counts = torch.zeros(len(b), k).scatter_add_(1, pool, b.hist_mask.to(w.dtype))
    return v, interest_shares(model._gate(v, q), counts > 0, model._null(b.scenario))


def one_run(run: Path, ds: Any) -> dict[str, Any]:
    import torch

    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    assert isinstance(model, Mist) and model.encoder is None and model.cfg.interest_scope == "all"
    model.eval()
    rows = enc.rows(ds, "test")
    names = list(enc.spec_.scenario_names)
    n = len(names)
    target = enc.scenario_map_[rows.scenario]
    full = np.empty(len(rows))
    logits = {f"{way}{s}": np.empty(len(rows)) for way in WAYS for s in range(1, n + 1)}
    with torch.no_grad():
        for lo in range(0, len(rows), 8192):
            idx = np.arange(lo, min(lo + 8192, len(rows)))
            b = enc.batch(rows, idx, history_side=model.reads_history_side)
            it = model._interest(b, None)
            co = model._with_co(torch.zeros(len(b)), b)
            full[idx] = (model._head(b, it.u, it.q, it.transfer) + co).numpy()
            assert np.allclose(full[idx], model(b).numpy(), atol=1e-5), "the parts do not add up to the logit"
            e = model.tokens(b, model.embed.history_items(b, model.cfg.side_features))
            w = model._weights(model.attention(e, it.q), b)
            v, beta = _pools(model, e, w, it.q, b)
            assert torch.allclose(torch.einsum("bk,bke->be", beta, v), it.u, atol=1e-5)
            source = torch.arange(v.shape[1]) // model.n_pools  # each pool's scenario
            for s in range(1, n + 1):
                drop = b.hist_mask & (b.hist_scenarios == s)
                out = b.without_events(drop)
                head = {"renorm": model._interest(out, None).u}
                v2, beta2 = _pools(model, e, w * ~drop, it.q, out)
                head["event_only"] = torch.einsum("bk,bke->be", beta2, v2)
                head["subtract"] = it.u - torch.einsum("bk,bke->be", beta * (source == s), v)
                for way, u in head.items():
                    logits[f"{way}{s}"][idx] = (model._head(b, u, it.q, it.transfer) + co).numpy()
    return {"run": str(run), "scenarios": names, **auc_drops(rows.label, target, n, full, logits, WAYS)}


def main() -> int:
    args = parser(__doc__).parse_args()

    import torch

    torch.set_num_threads(1)
    out: dict[str, Any] = {"dirs": {}, "context_before": context()}
    for d in map(Path, args.dirs):
        rec = out["dirs"][str(d)] = seed_record(d, args.seeds, one_run, WAYS)
        names, mean = rec["scenarios"], rec["mean"]
        for t, target in enumerate(names):
            for s, source in enumerate(names):
                if s != t:
                    print(f"{d.name} {target} without {source} (thousandths of AUC): "
                          + ", ".join(f"{way} {mean[way][t][s] * 1000:+.2f}" for way in WAYS), flush=True)
    out["context_after"] = context()
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
