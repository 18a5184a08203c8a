"""Would `co_scale: auto` choose better if a weight had to beat 1 by more than the validation sample's noise? A probe
on saved mist runs (docs/benchmarks.md, "A choice gated on the validation sample's noise"); nothing is trained and
nothing in the runs is written.

    MISTREC_BENCH_THREADS=1 python benchmarks/co_gate_probe.py --json benchmarks/results/co_gate_probe.json \
        --ranked benchmarks/work/co-gate DIR[:SEEDS][:CAP] ...

Each DIR (a benchmarks/transfer.py work directory: prepared/, runs/mist/seed-S) is loaded with `co_scale: auto` per
seed (SEEDS: comma-separated, default 2022,2023,2024), and its validation queries are ranked against the full
catalogue at every weight of CO_SCALES (every query, or with CAP a seeded sample of at most CAP a scenario, the one
`choose_on_ranking` ranks with that cap); the per-query NDCG@10, users and activity groups are saved under
`--ranked` (DIR-SEED.npz) and reused when there. Then per scenario and kind of user (new there, active there), at
the 1,000 queries a scenario that mist's own choice ranks (`CO_CHOICE_QUERIES`; the same seeded sample, drawn again
here from the saved queries) and on every saved query: the mean NDCG@10 per weight, the best weight (the earlier on
a tie; a kind with fewer than `MIN_CHOICE_QUERIES` queries keeps 1), the paired bootstrap of its per-query NDCG@10
against weight 1's over the users, and the gated choice: the best weight only where that p-value is below
`CO_CHOICE_P` / 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, mist_choosing, write_json


def ranked(root: Path, seed: int, cap: int | None, out: Path) -> Path:
    """The validation queries' per-query NDCG@10 at every weight, saved to `out` (reused when there)."""
    if out.exists():
        return out
    import numpy as np

    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.activity import ActivityCounts
    from mistrec.eval.ranking import rank_full_catalogue

    ds = PreparedDataset.load(root / "prepared")
    model, enc = mist_choosing(root, seed)
    activity = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)
    save: dict[str, np.ndarray] = {}
    for c in model.ranking_options():
        model.use_ranking_option(c)
        result = rank_full_catalogue(model, enc, ds, "valid", ks=(10,), activity=activity, max_queries=cap)
        for name, q in result.per_query["full catalogue"].items():
            save.update({f"{name}|user": q["user"], f"{name}|group": q["group"], f"{name}|{c:g}": q["ndcg@10"]})
            print(f"{root.name} seed {seed} c={c:g} {name}: {len(q['user'])} queries, NDCG@10 "
                  f"{q['ndcg@10'].mean():.5f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **save)
    return out


def gate(path: Path) -> dict[str, Any]:
    """Per scenario, sample size ("1000": mist's own sample, "saved": every saved query) and kind of user: mist's own
    rule on those queries (mistrec.models.mist.co_weight_choice: the means, the best weight, its p-value against 1,
    the gated choice)."""
    import numpy as np

    from mistrec.models.mist import co_weight_choice
    from mistrec.models.mist_config import CO_CHOICE_QUERIES, CO_SCALES

    z = np.load(path)
    names = list(dict.fromkeys(k.split("|")[0] for k in z.files))
    query_rng = np.random.default_rng([0, 1])  # rank_full_catalogue's sample of queries, scenario by scenario
    out: dict[str, Any] = {}
    for name in names:
        users, group = z[f"{name}|user"], z[f"{name}|group"]
        every = np.arange(len(users))
        sample = (np.sort(query_rng.choice(len(users), size=CO_CHOICE_QUERIES, replace=False))
                  if len(users) > CO_CHOICE_QUERIES else every)
        out[name] = {}
        for size, idx in ((str(CO_CHOICE_QUERIES), sample), ("saved", every)):
            out[name][size] = {}
            for kind, mine in (("new", group[idx] == 0), ("active", group[idx] > 0)):
                sel = idx[mine]
                record = co_weight_choice({c: z[f"{name}|{c:g}"][sel] for c in CO_SCALES}, users[sel])
                out[name][size][kind] = record
                if sel.size:
                    print(f"{path.stem} {name} {size} {kind} ({sel.size}): " +
                          " ".join(f"{w} {m:.4f}" for w, m in record["valid_ndcg@10"].items()) +
                          f"; best {record['best']:g}" +
                          (f" p {record['p_value']:.3f}" if record["p_value"] is not None else "") +
                          f" -> {record['chosen']:g}", flush=True)
    return out


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--ranked", required=True, help="where the per-query rankings are saved (and reused)")
    ap.add_argument("dirs", nargs="+", help="DIR[:SEEDS][:CAP]")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    before = context()
    results = []
    for spec in args.dirs:
        parts = spec.split(":")
        root = Path(parts[0])
        seeds = [int(s) for s in (parts[1] if len(parts) > 1 and parts[1] else "2022,2023,2024").split(",")]
        cap = int(parts[2]) if len(parts) > 2 else None
        for seed in seeds:
            path = ranked(root, seed, cap, Path(args.ranked) / f"{root.name}-{seed}.npz")
            results.append({"dir": root.name, "seed": seed, "cap": cap, "gate": gate(path)})
    write_json(args.json, {"results": results, "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
