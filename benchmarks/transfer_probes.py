"""One-seed probes behind the design choices and open leads of the transfer work (docs/models.md "Why the item
prior on implicit data", docs/benchmarks.md "Results"): each trains one model with one config (benchmarks/probes/)
on data that benchmarks/transfer.py prepared, and evaluates it on the VALIDATION split (never test), by activity.

    python benchmarks/transfer_probes.py run [--only NAME,...]     # train + evaluate every probe not done yet
    python benchmarks/transfer_probes.py collect --json benchmarks/results/transfer_probes.json   # adds to it

Needs `benchmarks/transfer.py` to have prepared the datasets under --work (amazon-sport_phone-cold,
amazon-electronic_phone-cold, synthetic-identity-4000u, synthetic-transfer-4000u). The "neg4" probes prepare the
sport_phone cold-user data again with 4 sampled negatives per positive, the "L1" ones electronic_phone's with
histories of one event (mist without its history, nearly), the "last" ones electronic_phone's with the cold rows
after the users' other domain (protocol cold_order "last"). Probes are one seed: leads, not results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, thread_env, write_json

CONFIGS = REPO / "benchmarks" / "probes"
# name: (prepared dataset under --work, model, config in benchmarks/probes)
PROBES: dict[str, tuple[str, str, str]] = {
    "sport_phone/popularity": ("amazon-sport_phone-cold", "popularity", "base.yaml"),
    "sport_phone/isolated_dnn": ("amazon-sport_phone-cold", "isolated_dnn", "base.yaml"),
    "sport_phone/itemknn": ("amazon-sport_phone-cold", "itemknn", "base.yaml"),
    "sport_phone/mist_no_prior": ("amazon-sport_phone-cold", "mist", "no_prior.yaml"),
    "sport_phone/mist_prior": ("amazon-sport_phone-cold", "mist", "prior.yaml"),
    "sport_phone/mist_cold_id_keep": ("amazon-sport_phone-cold", "mist", "cold_id_keep.yaml"),
    "sport_phone/star": ("amazon-sport_phone-cold", "star", "base.yaml"),
    "sport_phone_neg4/popularity": ("amazon-sport_phone-cold-neg4", "popularity", "base.yaml"),
    "sport_phone_neg4/isolated_dnn": ("amazon-sport_phone-cold-neg4", "isolated_dnn", "base.yaml"),
    "sport_phone_neg4/mist_no_prior": ("amazon-sport_phone-cold-neg4", "mist", "no_prior.yaml"),
    "sport_phone_neg4/mist_prior": ("amazon-sport_phone-cold-neg4", "mist", "prior.yaml"),
    "electronic_phone/mist": ("amazon-electronic_phone-cold", "mist", "base.yaml"),
    "electronic_phone/mist_no_prior": ("amazon-electronic_phone-cold", "mist", "no_prior.yaml"),
    "electronic_phone/mist_cold_id_keep": ("amazon-electronic_phone-cold", "mist", "cold_id_keep.yaml"),
    "electronic_phone/star": ("amazon-electronic_phone-cold", "star", "base.yaml"),
    "electronic_phone/popularity": ("amazon-electronic_phone-cold", "popularity", "base.yaml"),
    "electronic_phone/isolated_dnn": ("amazon-electronic_phone-cold", "isolated_dnn", "base.yaml"),
    "electronic_phone/mist_cold_rows_02": ("amazon-electronic_phone-cold", "mist", "cold_rows_02.yaml"),
    "electronic_phone/mist_cold_rows_05": ("amazon-electronic_phone-cold", "mist", "cold_rows_05.yaml"),
    "electronic_phone/mist_id_path": ("amazon-electronic_phone-cold", "mist", "id_path.yaml"),
    "electronic_phone/mist_id_path_no_prior": ("amazon-electronic_phone-cold", "mist", "id_path_no_prior.yaml"),
    "electronic_phone/mist_lr_1e3": ("amazon-electronic_phone-cold", "mist", "lr_1e3.yaml"),
    "electronic_phone/mist_id_path_activity_cold_rows": ("amazon-electronic_phone-cold", "mist",
                                                         "id_path_activity_cold_rows.yaml"),
    "electronic_phone/star_lr_1e3": ("amazon-electronic_phone-cold", "star", "lr_1e3.yaml"),
    "electronic_phone/mist_init_001": ("amazon-electronic_phone-cold", "mist", "init_001.yaml"),
    "electronic_phone/mist_ema_099": ("amazon-electronic_phone-cold", "mist", "ema_099.yaml"),
    "electronic_phone/star_ema_099": ("amazon-electronic_phone-cold", "star", "ema_099.yaml"),
    "electronic_phone_L1/mist_id_path_no_prior": ("amazon-electronic_phone-cold-L1", "mist", "id_path_no_prior.yaml"),
    "electronic_phone_L1/mist": ("amazon-electronic_phone-cold-L1", "mist", "base.yaml"),
    "electronic_phone/mist_id_path_no_prior_no_bias": ("amazon-electronic_phone-cold", "mist",
                                                       "id_path_no_prior_no_bias.yaml"),
    "electronic_phone/mist_id_path_no_prior_init_001": ("amazon-electronic_phone-cold", "mist",
                                                        "id_path_no_prior_init_001.yaml"),
    "electronic_phone/mist_id_path_no_prior_dropout0": ("amazon-electronic_phone-cold", "mist",
                                                        "id_path_no_prior_dropout0.yaml"),
    "identity/mist": ("synthetic-identity-4000u", "mist", "base.yaml"),
    "identity/isolated_dnn": ("synthetic-identity-4000u", "isolated_dnn", "base.yaml"),
    "identity/mist_cold_rows_02": ("synthetic-identity-4000u", "mist", "cold_rows_02.yaml"),
    "transfer/mist": ("synthetic-transfer-4000u", "mist", "base.yaml"),
    "transfer/isolated_dnn": ("synthetic-transfer-4000u", "isolated_dnn", "base.yaml"),
    "transfer/mist_cold_rows_02": ("synthetic-transfer-4000u", "mist", "cold_rows_02.yaml"),
    "identity/mist_null_interest": ("synthetic-identity-4000u", "mist", "null_interest.yaml"),
    "transfer/mist_null_interest": ("synthetic-transfer-4000u", "mist", "null_interest.yaml"),
    "electronic_phone/mist_null_interest": ("amazon-electronic_phone-cold", "mist", "null_interest.yaml"),
    "genre/mist_cold_id_keep": ("ml-1m-genre-cold", "mist", "cold_id_keep.yaml"),
    "genre/mist_cold_id_auto": ("ml-1m-genre-cold", "mist", "cold_id_auto.yaml"),
    "identity/mist_cold_id_auto": ("synthetic-identity-4000u", "mist", "cold_id_auto.yaml"),
    "transfer/mist_cold_id_auto": ("synthetic-transfer-4000u", "mist", "cold_id_auto.yaml"),
    "electronic_phone/mist_cold_id_auto": ("amazon-electronic_phone-cold", "mist", "cold_id_auto.yaml"),
    **{f"electronic_phone_last/{m}": ("amazon-electronic_phone-cold-last", m, "base.yaml")
       for m in ("mist", "star", "isolated_dnn", "popularity", "din", "ptupcdr", "emcdr")},
}


def prepared(work: Path, name: str) -> Path:
    """The probe's prepared data; the variants are made once from the cold-user data they name: "-neg4" with 4
    sampled negatives per positive, "-L1" with histories of one event (mist without its history, nearly), "-last"
    with the cold users' rows after their other events (protocol cold_order "last")."""
    out = work / name / "prepared"
    variant = next((v for v in ("-neg4", "-L1", "-last") if name.endswith(v)), None)
    if variant is not None and not (out / "manifest.json").is_file():
        from mistrec.data import ProtocolConfig, load_dataset_config
        from mistrec.data import prepare as prepare_data

        base = work / name.removesuffix(variant)
        yaml = base / "dataset.yaml"
        if variant == "-neg4":
            (work / name).mkdir(parents=True, exist_ok=True)
            yaml = work / name / "dataset.yaml"
            yaml.write_text((base / "dataset.yaml").read_text().replace("per_positive: 1", "per_positive: 4"))
        before = json.loads((base / "prepared" / "manifest.json").read_text())["protocol"]
        protocol = ProtocolConfig(name="cold-user", target=before["target"], cold_fraction=before["cold_fraction"],
                                  cold_rest=before.get("cold_rest", "split"), seed=before["seed"],
                                  cold_order="last" if variant == "-last" else "time")
        prepare_data(load_dataset_config(yaml), out, protocol=protocol, history_length=1 if variant == "-L1" else 50,
                     quiet=True)
    if not (out / "manifest.json").is_file():
        raise SystemExit(f"{out} is missing: run benchmarks/transfer.py for it first.")
    return out


def run(work: Path, names: list[str]) -> None:
    for name in names:
        data, model, config = PROBES[name]
        out = work / "probes" / name
        result = out.parent / f"{out.name}.valid.json"
        if result.is_file():
            continue
        cli = [sys.executable, "-m", "mistrec"]
        subprocess.run([*cli, "train", str(prepared(work, data)), "--model", model, "--config", str(CONFIGS / config),
                        "--out", str(out), "--epochs", "20", "--threads", THREADS, "--quiet"], check=True,
                       env=thread_env())
        subprocess.run([*cli, "evaluate", str(out), "--split", "valid", "--k", "10", "--threads", THREADS, "--quiet",
                        "--json", str(result)], check=True, env=thread_env())
        print(f"{name}: done", flush=True)


def collect(work: Path, kept: dict[str, Any]) -> dict[str, Any]:
    """Per probe: validation AUC overall, AUC and NDCG@10 per scenario, and AUC per scenario and activity group.
    `kept`: the probes of an earlier results file, kept where their outputs are no longer under `work`."""
    probes = dict(kept)
    for name, (data, model, config) in PROBES.items():
        path = work / "probes" / f"{name}.valid.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())["runs"][0]["metrics"]
        run = work / "probes" / name / "run.json"  # what the validation rows settled after training, if anything
        selected = json.loads(run.read_text())["result"].get("selected") if run.is_file() else None
        probes[name] = {
            "data": data, "model": model, "config": config, "overall_auc": m["overall"]["auc"],
            "by_scenario": {s: {k: v.get(k) for k in ("auc", "ndcg@10")} for s, v in m["by_scenario"].items()},
            "auc_by_activity": {s: {g: v.get("auc") for g, v in groups.items()}
                                for s, groups in m.get("by_activity", {}).get("by_scenario", {}).items()},
        }
        if selected:
            probes[name]["selected"] = selected
    return {"split": "valid", "seed": 2022, "probes": probes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("run", "collect"))
    ap.add_argument("--only", help="comma-separated probe names")
    ap.add_argument("--json", help="collect: the results file")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "transfer"))
    args = ap.parse_args()
    work = Path(args.work)
    if args.command == "run":
        names = args.only.split(",") if args.only else list(PROBES)
        unknown = [n for n in names if n not in PROBES]
        if unknown:
            raise SystemExit(f"Unknown probe(s) {', '.join(unknown)}. Known: {', '.join(PROBES)}.")
        run(work, names)
    else:
        if not args.json:
            raise SystemExit("collect needs --json OUT.")
        path = Path(args.json)
        before = json.loads(path.read_text()) if path.is_file() else {}
        write_json(path, {**before, **collect(work, before.get("probes", {}))})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
