"""Two forms of mist's `cold_scale` on the same trained weights (docs/models.md, "cold_scale: auto"): the Amazon
cold users' logits split into their parts, then scored as each form scores them at every scale of COLD_SCALES.

    python benchmarks/cold_scale_rules.py --json benchmarks/results/cold_scale_rules_amazon.json \
        benchmarks/work/transfer-s18/amazon-PAIR-cold-last ... [--seeds 2022,2023,2024]

Each DIR is a benchmarks/transfer.py cold-user work directory (prepared/, runs/mist/seed-S, runs/popularity/seed-S).
Every validation and test row of a target domain is a cold user's there (the protocol's `cold_rest: train`). A
row's logit for such a user is prior + bias + co + s * rest in the form used until 2026-12-03 ("known items": s on
items with a training positive in the domain, 1 on the rest, the learned bias whole) and prior + co + s * (bias +
rest) in the form since ("every item"; the "scale" form of today, beside which the nineteenth session added an
"anchor" form that this script does not score): prior the counted item prior, bias the learned item bias, co `co_items`'
term, rest the network's part (top, auxiliary network, transfer read-out). Per (pair, domain, split) the AUC of each
form at each scale, of the parts alone and of popularity's run; per form the scale validation chooses (by
`Mist.settle` itself) and its test AUC. Check: where the run was trained with the
form since, the every-item validation AUCs equal the ones the run recorded when it chose (run.json), to 1e-6.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, run_dirs_and_seeds


def parts(model: Any, enc: Any, rows: Any, batch_size: int = 8192, no_history: bool = False) -> dict[str, np.ndarray]:
    """Each row's prior, bias, co and rest (the network's part), with cold_id as the run chose it; with `no_history`
    also rest_0 (the network's part with the history emptied: the "anchor" form's reference) and activity."""
    import torch

    keys = ("prior", "bias", "co", "rest") + (("rest_0", "activity") if no_history else ())
    out: dict[str, list[np.ndarray]] = {k: [] for k in keys}

    def network(b: Any) -> Any:
        b, it = model._run(b, None)
        return model._network(*model._top_input(b, it.u, it.q, it.transfer), b)

    model.eval()
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(rows)))
            b = enc.batch(rows, idx, history=True, history_side=model.reads_history_side)
            co = model._co_events(b)
            out["prior"].append(model._prior_term(b).numpy())
            out["bias"].append(model._bias_term(b).numpy())
            out["co"].append(np.zeros(len(idx), np.float32) if co is None else co.sum(1).numpy())
            out["rest"].append(network(b).numpy())
            if no_history:
                out["rest_0"].append(network(b.without_events(b.hist_mask)).numpy())
                out["activity"].append(b.activity.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def choose(model: Any, s: int, names: tuple[str, ...], valid: dict[str, float], rows: int) -> str:
    """The scale `Mist.settle` keeps for scenario s from these validation AUCs (by COLD_SCALES' key, "0.25") over
    `rows` moved rows: the model's own rule, ties and MIN_CHOICE_ROWS included. (It sets the model's scale: call it
    after the parts are scored.)"""
    options = tuple(f"scale {k}" for k in valid)
    record = model.settle(options, {f"scale {k}": {s: v} for k, v in valid.items()}, {s: rows},
                          names)["cold_scale"]
    return f"{record[names[s - 1]]['chosen']:g}"


def one(root: Path, seed: int) -> list[dict[str, Any]]:
    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.metrics import auc
    from mistrec.models.mist_config import COLD_SCALES
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    ds = PreparedDataset.load(root / "prepared")
    run = root / "runs" / "mist" / f"seed-{seed}"
    model, enc, _ = load_run(run)
    pop, pop_enc, _ = load_run(root / "runs" / "popularity" / f"seed-{seed}")
    selected = json.loads((run / "run.json").read_text())["result"].get("selected", {}).get("cold_scale", {})
    train = enc.indexed(enc.rows(ds, "train"))
    liked = train.label > 0
    n_items = enc.spec_.n_items
    known_keys = np.unique(train.scenario[liked].astype(np.int64) * n_items + train.item[liked])
    names = enc.spec_.scenario_names
    scored: dict[str, dict[str, Any]] = {}
    for split in ("valid", "test"):
        rows = enc.rows(ds, split)
        ix = enc.indexed(rows)
        p = parts(model, enc, rows)
        p_pop = predict(pop, pop_enc, pop_enc.rows(ds, split))
        known = np.isin(ix.scenario.astype(np.int64) * n_items + ix.item, known_keys)
        scored[split] = {"rows": rows, "p": p, "pop": p_pop, "known": known}
    out = []
    torch.set_num_threads(int(THREADS))
    for s, name in enumerate(names, start=1):
        rec: dict[str, Any] = {"pair": root.name, "domain": name, "seed": seed}
        for split, sc in scored.items():
            m = sc["rows"].scenario == s
            y, p = sc["rows"].label[m], {k: v[m] for k, v in sc["p"].items()}
            known = sc["known"][m]
            rec[split] = {
                "rows": int(m.sum()), "known_item_share": float(known.mean()),
                "auc_popularity": auc(y, sc["pop"][m]),
                "auc_prior": auc(y, p["prior"]), "auc_prior_bias": auc(y, p["prior"] + p["bias"]),
                "auc_co": auc(y, p["co"]), "auc_rest": auc(y, p["rest"]),
                "known_items": {f"{x:g}": auc(y, p["prior"] + p["bias"] + p["co"] + np.where(known, x, 1.0) * p["rest"])
                                for x in COLD_SCALES},
                "every_item": {f"{x:g}": auc(y, p["prior"] + p["co"] + x * (p["bias"] + p["rest"]))
                               for x in COLD_SCALES},
            }
        for form in ("known_items", "every_item"):
            pick = choose(model, s, names, rec["valid"][form], rec["valid"]["rows"])
            rec[f"chosen_{form}"] = {"scale": float(pick), "test_auc": rec["test"][form][pick]}
        recorded = selected.get(name, {}).get("valid_auc")
        if recorded:  # the run chose with the current form: its recorded AUCs are the every-item ones (runs since
            # the nineteenth session also record the "anchor" form's, which this script does not score)
            rec["recorded_valid_auc_matches_every_item"] = all(
                abs(recorded[k] - rec["valid"]["every_item"][k]) < 1e-6 for k in recorded
                if k in rec["valid"]["every_item"])
        old, new = rec["chosen_known_items"], rec["chosen_every_item"]
        print(f"{root.name} {name}: popularity {rec['test']['auc_popularity']:.4f}; known items -> scale "
              f"{old['scale']:g}, test {old['test_auc']:.4f}; every item -> {new['scale']:g}, test "
              f"{new['test_auc']:.4f}; recorded matches: {rec.get('recorded_valid_auc_matches_every_item')}",
              flush=True)
        out.append(rec)
    return out


def main() -> int:
    return run_dirs_and_seeds(__doc__.splitlines()[0], one)


if __name__ == "__main__":
    raise SystemExit(main())
