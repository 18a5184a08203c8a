"""Would a choice of `co_items`' weight for users new in a scenario, made on the validation users' full-catalogue
NDCG@10, give the Amazon cold users a better top ten? A probe on trained runs (docs/benchmarks.md, "co_items' weight
chosen on a ranking metric"); nothing is trained and nothing in the runs is written.

    python benchmarks/co_rank_choice.py --json benchmarks/results/co_rank_choice_electronic_cloth.json \
        benchmarks/work/s24-amazon/amazon-electronic_cloth-cold-last

DIR is a benchmarks/transfer.py work directory of the cold-user protocol (prepared/, runs/mist/seed-S): every
validation and test query there is a user new in the query's domain, so scaling the target domain's row of the
term's W (mist_cooc.CoItems: `fast` and `weight`, whose sum with the gain is W) by c scales the term for exactly
those users. Per seed: the validation queries ranked against the full catalogue (mistrec.eval.ranking.
rank_full_catalogue, as the benchmark ranks) with c in COS for every domain at once (a domain's queries read only
its own row of W); per domain the c with the highest validation NDCG@10 (1 on a tie: the trained state); then the
test queries ranked with c = 1 (the run as it is) and with each domain's chosen c, beside the DIR's popularity run's
ranking of the same queries (its ranking_test.npz, as the benchmark saved it), and paired bootstraps over users of
their per-query NDCG@10 (the per-seed differences averaged). `--reuse` takes the choices of an earlier output
instead of ranking the validation users again. The run's own after-training choices (cold_scale's form and scale)
are kept as they were made. Every output also has the test rows' AUC with c = 1 and with the choice (paired
bootstrap over users: `paired_auc`).

`--built`: the choice mist makes itself with `co_scale: auto` (the run loaded with it, mistrec.eval.ranking.
choose_on_ranking: validation NDCG@10 at each weight, apart for users new in the domain and active there), its
time, and the test users ranked at weight 1 and as chosen beside popularity; with `--warm` a warm-protocol DIR,
ranked as transfer.py's warm protocols rank (full catalogue and 1 + 999 sampled lists, 3,000 users a domain: the
sampled lists' paired tests under "DOMAIN sampled").

`--choose-on auc` chooses on the validation rows' AUC instead (no ranking pass: the cheap design, refuted on
sport_phone, docs/benchmarks.md); `--auc-only` scores the test rows' AUC alone (no test ranking).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, mist_choosing, ranking_at_10, write_json

from mistrec.models.mist import option_key  # a weight, or co_own's pair

COS = (1.0, 0.5, 0.25, 0.0)


@contextmanager
def scaled(model: Any, scale: dict[int, float]) -> Iterator[None]:
    """The model with W's row of domain s scaled by scale[s] (both parts: `fast` and `weight`), restored after."""
    import torch

    co = model.co
    saved = (co.fast.detach().clone(), co.weight.detach().clone())
    with torch.no_grad():
        for s, c in scale.items():
            co.fast[s] *= c
            co.weight[s] *= c
        try:
            yield
        finally:
            co.fast.copy_(saved[0])
            co.weight.copy_(saved[1])


def ranked(model: Any, enc: Any, ds: Any, split: str, scale: dict[int, float],
           queries: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """NDCG@10 and HR@10 per domain of `split`'s queries with W's row of domain s scaled by scale[s]; `queries`, if
    given, gets each domain's per-query users and NDCG@10 (for the paired tests)."""
    from mistrec.eval.ranking import rank_full_catalogue

    with scaled(model, scale):
        result = rank_full_catalogue(model, enc, ds, split, ks=(10,))
    if queries is not None:
        for name, q in result.per_query["full catalogue"].items():
            queries[name] = {"user": q["user"], "ndcg@10": q["ndcg@10"]}
    return ranking_at_10(result.metrics["by_scenario"])


def scored(model: Any, enc: Any, rows: Any, scale: dict[int, float]) -> tuple[dict[str, float], Any]:
    """AUC per domain of the pointwise rows `rows` (labelled positives and the sampled negatives, as the benchmark
    scores them) with W's rows scaled by `scale`, and the rows' probabilities."""
    from mistrec import metrics
    from mistrec.train.predict import predict

    with scaled(model, scale):
        prob = predict(model, enc, rows)
    _, per, _ = metrics.scenario_aucs(rows.label, prob, rows.scenario)
    names = enc.spec_.scenario_names
    return {names[s - 1]: v for s, v in per.items() if s > 0}, prob


def one(root: Path, seed: int, ds: Any, reuse: dict[str, float] | None, choose_on: str, rank_test: bool,
        queries: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One seed: the validation choice per domain, on the validation queries' full-catalogue NDCG@10 or (`choose_on`
    "auc") the validation rows' AUC (or `reuse`'s choice, from an earlier run of this script); then the test queries
    ranked with c = 1 and with the choice, and the DIR's popularity run's saved ranking; `queries` collects their
    per-query NDCG@10 under "1", "chosen" and "popularity", `rows` the test rows' probabilities with c = 1 and with
    the choice (for the paired AUC tests). Without `rank_test`, test AUC only (no ranking pass)."""
    from mistrec.eval.evaluate import load_per_query
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    assert isinstance(model, Mist) and model.co is not None, "a mist run with co_items"
    names = enc.spec_.scenario_names
    index = {n: i for i, n in enumerate(names, start=1)}
    valid: dict[float, dict[str, dict[str, float]]] = {}
    key = "ndcg@10" if choose_on == "ndcg" else "auc"
    if reuse is None:
        valid_rows = enc.rows(ds, "valid") if choose_on == "auc" else None
        for c in COS:
            every = {s: c for s in index.values()}
            if valid_rows is None:
                valid[c] = ranked(model, enc, ds, "valid", every)
            else:
                valid[c] = {n: {"auc": v} for n, v in scored(model, enc, valid_rows, every)[0].items()}
            print(f"seed {seed} valid c={c:g}: " + ", ".join(f"{n} {m[key]:.4f}" for n, m in valid[c].items()),
                  flush=True)
        chosen = {}
        for n in valid[1.0]:
            best = 1.0
            for c in COS[1:]:
                if valid[c][n][key] > valid[best][n][key]:
                    best = c
            chosen[n] = best
    else:
        chosen = reuse
    scale = {index[n]: c for n, c in chosen.items()}
    test: dict[str, dict[str, dict[str, float]]] = {"1": {n: {} for n in names}, "chosen": {n: {} for n in names}}
    if rank_test:
        per: dict[str, dict[str, Any]] = {"1": {}, "chosen": {}, "popularity": {}}
        test["1"] = ranked(model, enc, ds, "test", {}, per["1"])
        test["chosen"] = ranked(model, enc, ds, "test", scale, per["chosen"])
        # popularity's ranking of the same test queries, as the benchmark saved it (its per-query figures)
        saved = load_per_query(root / "runs" / "popularity" / f"seed-{seed}" / "ranking_test.npz")["full catalogue"]
        test["popularity"] = {n: {k: float(q[k].mean()) for k in ("ndcg@10", "hr@10")} for n, q in saved.items()}
        per["popularity"] = {n: {"user": q["user"], "ndcg@10": q["ndcg@10"]} for n, q in saved.items()}
        for view, by in per.items():
            for n, q in by.items():
                queries.setdefault(n, {}).setdefault(view, []).append(q)
    # the test rows' AUC with c = 1 and with the choice (the cold protocol's other metric)
    test_rows = enc.rows(ds, "test")
    for view, sc in (("1", {}), ("chosen", scale)):
        per_domain, prob = scored(model, enc, test_rows, sc)
        for n, v in per_domain.items():
            test[view][n]["auc"] = v
            mask = test_rows.scenario == index[n]
            kept = rows.setdefault(n, {"label": test_rows.label[mask], "user": test_rows.user[mask]})
            kept.setdefault(view, []).append(prob[mask])
    moved = [f"{n} {k} {v:.4f} -> {test['chosen'][n][k]:.4f}" for n in names for k, v in test["1"][n].items()]
    print(f"seed {seed} chosen {chosen}; test " + ", ".join(moved), flush=True)
    return {"seed": seed, "valid": {f"{c:g}": v for c, v in valid.items()}, "chosen": chosen, "test": test,
            "chosen_from": "reused" if reuse is not None else f"validation {key}"}


def ranked_lists(model: Any, enc: Any, ds: Any, warm: bool) -> tuple[dict[str, dict[str, float]], Any]:
    """The test queries ranked as benchmarks/transfer.py ranks them: NDCG@10 and HR@10 per scenario against the full
    catalogue; with `warm` as its warm protocols do (also the 1 + 999 sampled lists, "sampled " keys, at most 3,000
    users a domain). Returns them and the RankingResult (its per-query figures)."""
    from transfer import MAX_QUERIES, SAMPLED

    from mistrec.eval.ranking import rank_full_catalogue

    result = rank_full_catalogue(model, enc, ds, "test", ks=(10,), also_sampled=SAMPLED if warm else None,
                                 max_queries=MAX_QUERIES if warm else None)
    out = ranking_at_10(result.metrics["by_scenario"])
    if warm:
        for s, m in ranking_at_10(result.metrics["sampled"]["by_scenario"], "sampled ").items():
            out[s].update(m)
    return out, result


def one_built(root: Path, seed: int, ds: Any, warm: bool, queries: dict[str, dict[str, Any]],
              rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One seed with mist's own `co_scale: auto`: the run loaded with it, its choice made (and timed), then the test
    queries ranked at weight 1 and as chosen (`queries` gets their per-query NDCG@10 and the popularity run's saved
    ones, per domain, and per "DOMAIN sampled" with `warm`), and the test rows' AUC at both (`rows`)."""
    import time

    import torch
    from transfer import SAMPLED

    from mistrec.eval.evaluate import load_per_query
    from mistrec.eval.ranking import choose_on_ranking

    model, enc = mist_choosing(root, seed)
    start = time.perf_counter()
    chosen = choose_on_ranking(model, enc, ds)["co_scale"]
    seconds = time.perf_counter() - start
    state = model.co_scale.clone()
    names = enc.spec_.scenario_names
    index = {n: i for i, n in enumerate(names, start=1)}
    sampled = f"{SAMPLED} sampled negatives"
    views = {"full catalogue": ""} | ({sampled: " sampled"} if warm else {})
    test: dict[str, dict[str, dict[str, float]]] = {}
    test_rows = enc.rows(ds, "test")
    for view, weights in (("1", None), ("chosen", state)):
        with torch.no_grad():
            if weights is None:
                model.use_ranking_option(1.0)
            else:
                model.co_scale.copy_(weights)
        test[view], result = ranked_lists(model, enc, ds, warm)
        for label, suffix in views.items():
            for n, q in result.per_query[label].items():
                queries.setdefault(n + suffix, {}).setdefault(view, []).append(
                    {"user": q["user"], "ndcg@10": q["ndcg@10"]})
        per_domain, prob = scored(model, enc, test_rows, {})
        for n, v in per_domain.items():
            test[view][n]["auc"] = v
            mask = test_rows.scenario == index[n]
            kept = rows.setdefault(n, {"label": test_rows.label[mask], "user": test_rows.user[mask]})
            kept.setdefault(view, []).append(prob[mask])
    saved = load_per_query(root / "runs" / "popularity" / f"seed-{seed}" / "ranking_test.npz")
    test["popularity"] = {}
    for label, suffix in views.items():
        for n, q in saved[label].items():
            test["popularity"].setdefault(n, {}).update({f"{suffix.strip()} {k}".strip(): float(q[k].mean())
                                                         for k in ("ndcg@10", "hr@10")})
            queries.setdefault(n + suffix, {}).setdefault("popularity", []).append(
                {"user": q["user"], "ndcg@10": q["ndcg@10"]})
    moved = [f"{n} {k} {v:.4f} -> {test['chosen'][n][k]:.4f}" for n in names for k, v in test["1"][n].items()]
    print(f"seed {seed} chosen in {seconds:.0f} s: " + "; ".join(
        f"{n} new {option_key(r['new']['chosen'])} ({r['new']['queries']}), active {option_key(r['active']['chosen'])} "
        f"({r['active']['queries']})" for n, r in chosen.items()) + "; test " + ", ".join(moved), flush=True)
    return {"seed": seed, "chosen": chosen, "choice_seconds": seconds, "test": test, "chosen_from": "co_scale: auto"}


def paired(queries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per domain, paired bootstraps over users of test NDCG@10 (the per-seed differences averaged): chosen - c = 1
    and chosen - popularity (the same queries in every seed and view)."""
    import numpy as np

    from mistrec.metrics import paired_bootstrap_mean

    out = {}
    for n, views in queries.items():
        users = views["1"][0]["user"]
        for v in views.values():
            assert all(np.array_equal(q["user"], users) for q in v), n
        value = {k: np.stack([q["ndcg@10"] for q in v]) for k, v in views.items()}
        out[n] = {"queries": len(users),
                  "chosen - 1": paired_bootstrap_mean(value["chosen"], value["1"], users),
                  "chosen - popularity": paired_bootstrap_mean(value["chosen"], value["popularity"], users),
                  "1 - popularity": paired_bootstrap_mean(value["1"], value["popularity"], users)}
        print(f"{n}: " + ", ".join(f"{k} {t['diff']:+.4f} p {t['p_value']:.3f}" for k, t in out[n].items()
                                   if isinstance(t, dict)), flush=True)
    return out


def paired_auc(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per domain, a paired bootstrap over users of test AUC, chosen - c = 1 (the per-seed differences averaged)."""
    import numpy as np

    from mistrec.metrics import paired_bootstrap

    out = {}
    for n, r in rows.items():
        test = paired_bootstrap(r["label"], np.stack(r["chosen"]), np.stack(r["1"]), r["user"])
        out[n] = {"rows": len(r["label"]), "chosen - 1": test}
        print(f"{n}: AUC chosen - 1 {test['diff']:+.4f} p {test['p_value']:.3f}", flush=True)
    return out


def main() -> int:
    import json

    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--reuse", help="an earlier output of this script: its validation choices, per seed, instead of "
                                    "ranking the validation users again")
    ap.add_argument("--choose-on", choices=("ndcg", "auc"), default="ndcg",
                    help="what the validation choice maximises: the validation queries' full-catalogue NDCG@10 "
                         "(default) or the validation rows' AUC (no ranking pass)")
    ap.add_argument("--built", action="store_true",
                    help="the choice mist's co_scale: auto makes (validation NDCG@10, new and active users apart)")
    ap.add_argument("--warm", action="store_true", help="with --built: a warm-protocol DIR (full and sampled lists)")
    ap.add_argument("--auc-only", action="store_true",
                    help="score the test rows' AUC only, without ranking the test users (no NDCG@10)")
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    reused = {}
    if args.reuse:
        reused = {r["seed"]: r["chosen"] for r in json.loads(Path(args.reuse).read_text())["results"]}
    before = context()
    queries: dict[str, dict[str, Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    results = []
    for seed in (int(x) for x in args.seeds.split(",")):
        if args.reuse and seed not in reused:
            raise SystemExit(f"{args.reuse} has no choice for seed {seed}.")
        if args.built:
            results.append(one_built(root, seed, ds, args.warm, queries, rows))
            continue
        results.append(one(root, seed, ds, reused.get(seed), args.choose_on, not args.auc_only, queries, rows))
    write_json(args.json, {"dir": root.name, "cos": list(COS), "choose_on": "built" if args.built else args.choose_on,
                           "warm": args.warm, "results": results,
                           "paired": paired(queries) if queries else None, "paired_auc": paired_auc(rows),
                           "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
