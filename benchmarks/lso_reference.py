"""What leave-source-out can show on the synthetic transfer platform: the AUC a Bayes reader of the history loses
when one source scenario's events leave every history, under the generator's own equations, with no trained model
(docs/benchmarks.md, "Leave-source-out against what a source's events reveal").

    python benchmarks/lso_reference.py --json benchmarks/results/lso_reference.json \
        --draw 0=benchmarks/work/s40-own-syn/synthetic-transfer-4000u/prepared \
        --draw 1=benchmarks/work/s42-lso/synthetic-transfer-4000u-draw1/prepared \
        --oracle 0=benchmarks/results/new_user_ceiling.json \
        --oracle 1=benchmarks/results/new_user_ceiling_draw1.json \
        --mist 0=benchmarks/results/transfer.json \
        --mist 1=benchmarks/results/transfer_synthetic_draw1_transfer_s38.json \
        --control benchmarks/work/s40-own-syn/synthetic-identity-4000u

Why: on the transfer platform (`choice: transferred`) the items a user picks in s and their clicks there follow
c[u, s] = sum_k T[s, k] b[u, k] / ||T[s]||, so s's events are a noisy view of c[u, s], and what they say of t's
clicks is the correlation R[t, s] = <T[t], T[s]> / (||T[t]|| ||T[s]||), as far as the row's other events have not
said it; not T[t, s], the matrix the clicks follow, which the issue ranks the drops against.

The model of the reader, per latent dimension (independent, d of them): c = (c_1..c_S) ~ N(0, R); a history with n_k
events in scenario k holds a view y_k = c_k + e_k, Var(e_k) = 1 / (lambda_k n_k), where lambda_k is the Fisher
information one event of k carries about c_k per dimension: its choice, softmax(choice_sharpness v . c) over k's
pool, and its click, sigmoid(signal v . c + bias_k + noise_k) with the noise folded in by the probit factor; both by
Monte Carlo over the draw's item vectors (`event_information`). Every test row of the prepared data is simulated
from its history's counts (the encoder's history, the events `leave_source_out_matrix` removes): c and the views
drawn, the row's item chosen from its scenario's pool by the generator's choice on c_t, its click drawn by the
generator's click equation; its score is the Bayes predictive click probability given the views (the posterior of c
with precision R^-1 + diag(lambda n), probit approximation). The drop (t, s) is t's AUC with every view less its AUC
with n_s set to 0, on the same draws, averaged over `--replications` replications of every test row, made in two
independent halves (their agreement is the rule's first check).

With `--oracle D=FILE` (benchmarks/new_user_ceiling.py's JSON) and `--mist D=FILE` (benchmarks/transfer.py's JSON, its
leave_source_out per seed; or benchmarks/option_effect.py's with `--lso`, both arms, "mist" and "candidate"), their
Spearman correlations with the reference and with T on each draw; with `--control DIR` (a transfer.py work directory of
the identity control), mist's leave-source-out matrix of each saved seed there, or with `--control FILE`
(option_effect.py's JSON with `--lso` on the identity control) both arms' matrices, each with its largest off-diagonal
|drop|. Writes {"draws": {D: {"scenarios", "planted", "R", "lambda", "reference", "halves", "halves_spearman", "oracle":
{...}, "mist": {...}}}, "control": {...}, "context"}; matrices are [target][source] in "scenarios" order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def pools_of(cfg: Any) -> list[np.ndarray]:
    """Each scenario's pool as indices into the generated item vectors, as `generate` builds them."""
    shared = [round(cfg.shared_items * p) for p in cfg.pool_sizes]
    own = np.cumsum((0, *[p - k for p, k in zip(cfg.pool_sizes, shared, strict=True)]))
    pools = [np.arange(own[s], own[s + 1]) for s in range(len(cfg.scenarios))]
    if max(shared):
        pools = [np.concatenate([p, own[-1] + np.arange(k)]) for p, k in zip(pools, shared, strict=True)]
    owner = cfg.item_pool or tuple(range(len(cfg.scenarios)))
    return [pools[owner[s]] for s in range(len(cfg.scenarios))]


def probit_factor(variance: np.ndarray | float) -> np.ndarray:
    """E[sigmoid(x + e)] ~ sigmoid(x * factor) for e ~ N(0, variance)."""
    return 1.0 / np.sqrt(1.0 + np.pi * np.asarray(variance) / 8.0)


def event_information(cfg: Any, vectors: np.ndarray, pools: list[np.ndarray], rng: np.random.Generator,
                      draws: int = 4000) -> np.ndarray:
    """(S,) lambda_k: the Fisher information about c_k per dimension that one event of scenario k carries, its
    choice's and its click's, averaged over c ~ N(0, I) (c_k's marginal) and the item it chooses."""
    d = vectors.shape[1]
    out = np.zeros(len(pools))
    for k, pool in enumerate(pools):
        v = vectors[pool]  # (P, d)
        c = rng.normal(size=(draws, d))
        logits = cfg.choice_sharpness * c @ v.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        mean = p @ v  # (N, d)
        second = p @ (v * v)  # (N, d): E[v_j^2]
        choice = cfg.choice_sharpness ** 2 * (second - mean ** 2).sum(1).mean() / d  # beta^2 tr Cov_p(v) / d
        # the click on the chosen item: Fisher information of a Bernoulli whose probability is
        # E_noise[sigmoid(eta)], eta = signal v . c + bias; per dimension (signal k' sigma'(k' x))^2 / (p1 (1 - p1))
        # |v|^2 / d, k' the probit factor of the noise
        pick = (np.cumsum(p, 1) > rng.random((draws, 1))).argmax(1)
        chosen = v[pick]
        noise = cfg.label_noise[k]
        f = probit_factor(noise ** 2)
        x = cfg.signal * (c * chosen).sum(1) + cfg.label_bias[k]
        p1 = 1 / (1 + np.exp(-f * x))
        slope = f * p1 * (1 - p1)  # d p1 / d x
        click = (cfg.signal ** 2 * slope ** 2 / np.maximum(p1 * (1 - p1), 1e-12) * (chosen ** 2).sum(1)).mean() / d
        out[k] = choice + click
    return out


def history_counts(prepared: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per test row, its target (index into `names`) and its history's events per scenario (N, S): the history an
    encoder fitted on the prepared data gathers, as a run's own encoder does (the same tables: checked on draw 0's
    default runs, every count equal)."""
    from mistrec.data.prepared import PreparedDataset
    from mistrec.features.encoder import FeatureEncoder

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "test")
    own = [names.index(n) for n in enc.spec_.scenario_names]  # encoder scenario i + 1 -> generator index
    target = np.array(own)[enc.scenario_map_[rows.scenario] - 1]
    counts = np.zeros((len(rows), len(names)), dtype=np.int64)
    for lo in range(0, len(rows), 8192):
        idx = np.arange(lo, min(lo + 8192, len(rows)))
        b = enc.batch(rows, idx, history_side=False)
        scen, mask = b.hist_scenarios.numpy(), b.hist_mask.numpy()
        for i, g in enumerate(own):
            counts[idx, g] = ((scen == i + 1) & mask).sum(1)
    return target, counts


def simulate(cfg: Any, vectors: np.ndarray, pools: list[np.ndarray], corr: np.ndarray, lam: np.ndarray,
             target: np.ndarray, counts: np.ndarray, replications: int, rng: np.random.Generator) -> np.ndarray:
    """(S, S) mean AUC drops over `replications` simulations of every test row (module docstring)."""
    from mistrec.metrics import auc

    n_s, d = len(pools), vectors.shape[1]
    chol = np.linalg.cholesky(corr)
    prior_precision = np.linalg.inv(corr)
    drop = np.zeros((n_s, n_s))
    for t in range(n_s):
        rows = np.flatnonzero(target == t)
        n = counts[rows].astype(float)  # (N, S)
        pool = vectors[pools[t]]
        variants = [n] + [np.where(np.arange(n_s) == s, 0.0, n) for s in range(n_s)]
        # posterior of c per variant: covariance (R^-1 + diag(lambda n))^-1, mean = cov @ (lambda n * y)
        covs = [np.linalg.inv(prior_precision[None] + np.einsum("ns,st->nst", lam * m, np.eye(n_s)))
                for m in variants]
        for _ in range(replications):
            c = np.einsum("st,ntd->nsd", chol, rng.normal(size=(len(rows), n_s, d)))  # (N, S, d)
            y = c + rng.normal(size=c.shape) / np.sqrt(lam * np.maximum(n, 1))[..., None]  # unread where n = 0
            logits = cfg.choice_sharpness * c[:, t] @ pool.T
            v = pool[np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)]  # (N, d)
            noise = rng.normal(size=len(rows)) * cfg.label_noise[t]
            eta = cfg.signal * (c[:, t] * v).sum(1) + cfg.label_bias[t] + noise
            label = (rng.random(len(rows)) < 1 / (1 + np.exp(-eta))).astype(np.int8)
            scores = []
            for m, cov in zip(variants, covs, strict=True):
                mean = np.einsum("ns,nsd->nd", cov[:, t], (lam * m)[..., None] * y)  # (N, d): c_t's posterior mean
                spread = cfg.signal ** 2 * cov[:, t, t] * (v * v).sum(1) + cfg.label_noise[t] ** 2
                scores.append((cfg.signal * (mean * v).sum(1) + cfg.label_bias[t]) * probit_factor(spread))
            whole = auc(label, scores[0])
            drop[t] += [whole - auc(label, scores[1 + s]) for s in range(n_s)]
    return drop / replications


def spearman(planted: Any, learned: Any) -> float:
    from mistrec.eval.evaluate import offdiagonal_spearman

    return offdiagonal_spearman(np.asarray(planted), np.asarray(learned))


def reordered(matrix: Any, names: list[str], order: list[str]) -> np.ndarray:
    idx = [names.index(n) for n in order]
    return np.asarray(matrix)[np.ix_(idx, idx)]


def reference_draw(spec: str) -> dict[str, Any]:
    """One draw of this script's JSON, named FILE:DRAW (e.g. benchmarks/results/lso_reference.json:0): its
    "scenarios", "planted" and "reference" [target][source]."""
    path, draw = spec.rsplit(":", 1)
    draws = json.loads(Path(path).read_text())["draws"]
    if draw not in draws:
        raise SystemExit(f"{path} holds draws {', '.join(sorted(draws))}, not {draw!r}: give FILE:DRAW.")
    return cast(dict[str, Any], draws[draw])


def offdiag_summary(per: list[dict[str, Any]]) -> dict[str, Any]:
    """Seeds' leave-source-out matrices ({"seed", "scenarios", "auc_drop"}) with each one's largest off-diagonal
    |drop| (what the identity control must keep near 0), and the largest of them."""
    for r in per:
        drop = np.asarray(r["auc_drop"])
        r["max_abs_offdiag_drop"] = float(np.abs(drop[~np.eye(len(drop), dtype=bool)]).max())
    return {"per_seed": per, "max_abs_offdiag_drop": max(r["max_abs_offdiag_drop"] for r in per)}


def control_drops(source: Path, seeds: list[int]) -> dict[str, Any]:
    """The identity control's leave-source-out matrices per seed: computed from the saved mist runs of a work
    directory, or read from benchmarks/option_effect.py's JSON (`--lso`; both arms, "mist" and "candidate")."""
    if source.is_file():
        doc = json.loads(source.read_text())
        runs = [o for o in doc["overall"] if o["dir"].startswith("synthetic-identity") and "leave_source_out" in o]
        if len(runs) != 1:
            raise SystemExit(f"{source}: {len(runs)} synthetic-identity directories with leave-source-out matrices; "
                             "one is needed (option_effect.py --lso on the identity control)")
        out: dict[str, Any] = {"file": str(source)}
        for arm in ("mist", "candidate"):
            out[arm] = offdiag_summary([{"seed": seed, **m} for seed, m in
                                        zip(doc["seeds"], runs[0]["leave_source_out"][arm], strict=True)])
            print(f"control, {arm}: largest off-diagonal |drop| per seed " + " / ".join(
                f"{r['max_abs_offdiag_drop']:.4f}" for r in out[arm]["per_seed"]), flush=True)
        return out
    return {"dir": str(source), **_control_runs(source, seeds)}


def _control_runs(root: Path, seeds: list[int]) -> dict[str, Any]:
    """mist's leave-source-out matrix of each saved seed of an identity-control work directory."""
    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.evaluate import leave_source_out_matrix
    from mistrec.train.artifact import load_run

    torch.set_num_threads(1)
    ds = PreparedDataset.load(root / "prepared")
    per = []
    for seed in seeds:
        model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
        m = leave_source_out_matrix(model, enc, enc.rows(ds, "test"))
        per.append({"seed": seed, "scenarios": m["scenarios"], "auc_drop": m["auc_drop"]})
    out = offdiag_summary(per)
    for r in out["per_seed"]:
        print(f"control seed {r['seed']}: largest off-diagonal |drop| {r['max_abs_offdiag_drop']:.4f}", flush=True)
    return out


def mist_matrices(path: str) -> dict[str, list[dict[str, Any]]]:
    """Per arm, each seed's leave-source-out matrix ({"seed", "auc_drop", "scenarios"}) of the synthetic-transfer
    platform in `path`: benchmarks/transfer.py's JSON (one arm, "mist"), or benchmarks/option_effect.py's with
    `--lso` (its synthetic-transfer DIR's arms, "mist" the baseline and "candidate")."""
    doc = json.loads(Path(path).read_text())
    if "overall" not in doc:
        return {"mist": doc["leave_source_out"]["synthetic-transfer"]["per_seed"]}
    runs = [o for o in doc["overall"] if o["dir"].startswith("synthetic-transfer") and "leave_source_out" in o]
    if len(runs) != 1:
        raise SystemExit(f"{path}: {len(runs)} synthetic-transfer directories with leave-source-out matrices; one "
                         "is needed (option_effect.py --lso with one synthetic-transfer DIR of this draw)")
    return {arm: [{"seed": seed, **m} for seed, m in zip(doc["seeds"], runs[0]["leave_source_out"][arm], strict=True)]
            for arm in ("mist", "candidate")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--draw", action="append", default=[], help="DRAW=PREPARED: a transfer platform's prepared data")
    ap.add_argument("--oracle", action="append", default=[], help="DRAW=new_user_ceiling.py's JSON")
    ap.add_argument("--mist", action="append", default=[], help="DRAW=transfer.py's JSON (its leave_source_out), "
                    "or option_effect.py's with --lso (both arms)")
    ap.add_argument("--control", help="an identity-control work directory with runs/mist/seed-S, or "
                    "option_effect.py's JSON with --lso on one (both arms)")
    ap.add_argument("--seeds", default="2022,2023,2024", help="the control's seeds")
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--replications", type=int, default=20, help="in two independent halves")
    args = ap.parse_args()

    from mistrec.data.synthetic import generate, transfer_platform

    def pairs(values: list[str]) -> dict[int, str]:
        return {int(k): v for k, v in (x.split("=", 1) for x in values)}

    prepared, oracles, mists = map(pairs, (args.draw, args.oracle, args.mist))
    out: dict[str, Any] = {"draws": {}, "replications": args.replications, "context_before": context()}
    for draw, path in sorted(prepared.items()):
        cfg = transfer_platform(strength=1.0, n_users=args.users, seed=draw)
        data = generate(cfg)
        names, planted, vectors = list(data.scenario_names), np.asarray(data.transfer), data.item_vectors
        norm = np.linalg.norm(planted, axis=1)
        corr = planted @ planted.T / np.outer(norm, norm)
        pools = pools_of(cfg)
        rng = np.random.default_rng([draw, 42])
        lam = event_information(cfg, vectors, pools, rng)
        target, counts = history_counts(Path(path), names)
        half = args.replications // 2
        halves = [simulate(cfg, vectors, pools, corr, lam, target, counts, half, np.random.default_rng([draw, h]))
                  for h in (1, 2)]
        reference = (halves[0] + halves[1]) / 2
        rec: dict[str, Any] = {
            "prepared": path, "scenarios": names, "planted": planted.tolist(), "R": corr.tolist(),
            "lambda": lam.tolist(), "test_rows": len(target),
            "mean_history_counts": [counts[target == t].mean(0).tolist() for t in range(len(names))],
            "reference": reference.tolist(), "halves": [h.tolist() for h in halves],
            "halves_spearman": spearman(halves[0], halves[1]), "reference_vs_T": spearman(planted, reference)}
        print(f"draw {draw}: lambda {np.round(lam, 3).tolist()}, halves agree {rec['halves_spearman']:.3f}, "
              f"reference against T {rec['reference_vs_T']:.3f}", flush=True)
        if draw in oracles:
            o = json.loads(Path(oracles[draw]).read_text())["platforms"]["synthetic-transfer"]["leave_source_out"]
            om = reordered(o["auc_drop"], o["scenarios"], names)
            rec["oracle"] = {"file": oracles[draw], "auc_drop": om.tolist(), "vs_T": spearman(planted, om),
                             "vs_reference": spearman(reference, om)}
            print(f"  history oracle: against T {rec['oracle']['vs_T']:.3f}, against the reference "
                  f"{rec['oracle']['vs_reference']:.3f}", flush=True)
        for arm, lso in mist_matrices(mists[draw]).items() if draw in mists else ():
            per = [{"seed": r["seed"], "vs_T": spearman(planted, reordered(r["auc_drop"], r["scenarios"], names)),
                    "vs_reference": spearman(reference, reordered(r["auc_drop"], r["scenarios"], names))}
                   for r in lso]
            rec[arm] = {"file": mists[draw], "per_seed": per,
                        "vs_T": float(np.mean([r["vs_T"] for r in per])),
                        "vs_reference": float(np.mean([r["vs_reference"] for r in per]))}
            print(f"  {arm}: against T {rec[arm]['vs_T']:.3f} ("
                  + " / ".join(f"{r['vs_T']:.3f}" for r in per) + f"), against the reference "
                  f"{rec[arm]['vs_reference']:.3f} (" + " / ".join(f"{r['vs_reference']:.3f}" for r in per)
                  + ")", flush=True)
        out["draws"][str(draw)] = rec
    if args.control:
        out["control"] = control_drops(Path(args.control), [int(s) for s in args.seeds.split(",")])
    out["context_after"] = context()
    write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
