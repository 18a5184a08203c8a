"""Which part of mist carries each leave-source-out entry: the network (attention over the history, the transfer
read-out, the top) or `co_items`' item-to-item term, which both read the other scenarios' events. For each saved mist
run of the DIRs, on the test rows, the target's AUC lost when a source scenario's events leave every history (as
`leave_source_out_matrix` measures it: "both"), when they leave the network's input only (the term still reads them:
"network"), and when they leave the term's only ("co"); and, within the network, when they leave the attention's
interest only ("interest": the interest u computed without them, the transfer read-out and the rest of the head with
them) or the transfer read-out's only ("readout"). Evaluation only (docs/benchmarks.md, "Which part reads the sparse
scenarios' events").

    python benchmarks/lso_parts.py --json OUT benchmarks/work/s40-own-syn/synthetic-transfer-4000u

With `--reference FILE:DRAW` (benchmarks/lso_reference.py's JSON) the reference's matrix is written beside them. Each
part's matrix is also correlated (Spearman over the off-diagonal entries, per seed) with the planted T on a
synthetic-transfer DIR and with the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

PARTS = ("both", "network", "co", "interest", "readout")


def one_run(run: Path, ds: Any) -> dict[str, Any]:
    """The run's three (S, S) AUC-drop matrices [target][source], in its encoder's scenario order."""
    import torch

    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    assert isinstance(model, Mist) and model.co is not None, f"{run}: a mist run with co_items is needed"
    model.eval()
    rows = enc.rows(ds, "test")
    names = list(enc.spec_.scenario_names)
    n = len(names)
    target = enc.scenario_map_[rows.scenario]
    logits = {"full": np.empty(len(rows))} | {f"{p}{s}": np.empty(len(rows)) for p in PARTS for s in range(1, n + 1)}
    def parts(b: Any) -> tuple[Any, Any, Any]:
        """Steps 1-4 (in evaluation `_run` reads the batch as it is), the network's logit, and `co_items`' part of
        the logit as forward adds it."""
        it = model._interest(b, None)
        return it, model._head(b, it.u, it.q, it.transfer), model._with_co(torch.zeros(len(b)), b)

    with torch.no_grad():
        for lo in range(0, len(rows), 8192):
            idx = np.arange(lo, min(lo + 8192, len(rows)))
            b = enc.batch(rows, idx, history_side=model.reads_history_side)
            it, net, co = parts(b)
            full = net + co
            assert torch.allclose(full, model(b), atol=1e-5), "the parts do not add up to the model's logit"
            logits["full"][idx] = full.numpy()
            for s in range(1, n + 1):
                out = b.without_events(b.hist_mask & (b.hist_scenarios == s))
                it_out, net_out, co_out = parts(out)
                logits[f"both{s}"][idx] = (net_out + co_out).numpy()
                logits[f"network{s}"][idx] = (net_out + co).numpy()  # the term reads the events still
                logits[f"co{s}"][idx] = (net + co_out).numpy()  # the network reads them still
                # the attention's interest u without them, the transfer read-out and the rest of the head with them;
                # and the reverse
                logits[f"interest{s}"][idx] = (model._head(b, it_out.u, it.q, it.transfer) + co).numpy()
                logits[f"readout{s}"][idx] = (model._head(b, it.u, it.q, it_out.transfer) + co).numpy()
    return {"run": str(run), "scenarios": names, **auc_drops(rows.label, target, n, logits["full"], logits, PARTS)}


def auc_drops(label: Any, target: Any, n: int, full: Any, logits: dict[str, Any], kinds: tuple[str, ...]
              ) -> dict[str, list[list[float]]]:
    """Per kind, the (n, n) matrix [target][source] of the target's AUC with the full logits less its AUC with
    `logits[f"{kind}{source}"]` (sources 1..n), over the rows of each target scenario (`target`, 1..n)."""
    from mistrec.metrics import auc

    drops: dict[str, list[list[float]]] = {k: [] for k in kinds}
    for t in range(1, n + 1):
        m = target == t
        whole = auc(label[m], full[m])
        for k in kinds:
            drops[k].append([whole - auc(label[m], logits[f"{k}{s}"][m]) for s in range(1, n + 1)])
    return drops


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every per-part leave-source-out script takes: --json OUT, --seeds, and the work DIRs."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("dirs", nargs="+")
    return ap


def seed_record(d: Path, seeds: str, one: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    """`one(run, ds)` for each seed's saved mist run of the work directory d (each a dict with "scenarios" and one
    (S, S) drop matrix per kind), as {"runs", "scenarios", "mean": per kind the matrix averaged over seeds}."""
    from mistrec.data.prepared import PreparedDataset

    ds = PreparedDataset.load(d / "prepared")
    runs = [one(d / "runs" / "mist" / f"seed-{s}", ds) for s in map(int, seeds.split(","))]
    return {"runs": runs, "scenarios": runs[0]["scenarios"],
            "mean": {k: np.mean([r[k] for r in runs], axis=0).tolist() for k in kinds}}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--reference", help="FILE:DRAW, benchmarks/lso_reference.py's JSON and the DIRs' draw")
    args = ap.parse_args()

    import torch
    from lso_reference import reference_draw, reordered, spearman
    from transfer import planted_spearman

    torch.set_num_threads(1)
    out: dict[str, Any] = {"dirs": {}, "context_before": context()}
    for d in map(Path, args.dirs):
        rec = seed_record(d, args.seeds, one_run, PARTS)
        runs, names, mean = rec["runs"], rec["scenarios"], rec["mean"]
        ref = None
        if args.reference:
            r = reference_draw(args.reference)
            ref = reordered(r["reference"], r["scenarios"], names)
            rec["reference"] = ref.tolist()
        # each part's matrix against T (on a synthetic-transfer DIR) and the reference: Spearman over the
        # off-diagonal entries, per seed and their mean
        against = {"T": planted_spearman(names, np.zeros((len(names), len(names))), 1.0)[1]
                   if d.name.startswith("synthetic-transfer") else None, "reference": ref}
        rec["spearman"] = {k: {p: [spearman(m, r[p]) for r in runs] for p in PARTS}
                           for k, m in against.items() if m is not None}
        for k, by in rec["spearman"].items():
            print(f"{d.name} against {k}: " + ", ".join(f"{p} {np.mean(v):.3f}" for p, v in by.items()), flush=True)
        for t, target in enumerate(names):
            for s, source in enumerate(names):
                if s == t:
                    continue
                line = ", ".join(f"{p} {mean[p][t][s] * 1000:+.2f}" for p in PARTS)
                if ref is not None:
                    line += f"; reference {ref[t][s] * 1000:+.2f}"
                print(f"{d.name} {target} without {source} (thousandths of AUC): {line}", flush=True)
        out["dirs"][str(d)] = rec
    out["context_after"] = context()
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
