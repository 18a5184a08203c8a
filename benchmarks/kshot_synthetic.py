"""Transfer gain under the kshot protocol on the synthetic platform with its planted transfer matrix.

    python benchmarks/kshot_synthetic.py --json benchmarks/results/kshot_synthetic.json --seeds 3

For k in 100, 25, 10, 5, 1 (% of the target scenario's training rows kept; 100 = the plain temporal split),
`mistrec benchmark` trains mist and the isolated single-scenario DNN on the same prepared split and seeds. The
target is vr_showroom, the sparsest scenario, whose clicks the planted matrix draws 80% from the other
scenarios. The transfer gain is mist's test AUC minus the isolated model's in the target, with the benchmark's
bootstrap p-value. Expected: the gain grows as k shrinks (the isolated model has less and less to learn from;
mist still reads the user's other scenarios).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, thread_env, write_json

TARGET = "vr_showroom"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ks", default="100,25,10,5,1")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "kshot-synthetic"))
    ap.add_argument("--config", help="benchmark config YAML ('train:', 'models:'), passed to mistrec benchmark")
    args = ap.parse_args()

    from mistrec.data import ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare

    work = Path(args.work)
    raw = work / "raw" / "dataset.yaml"
    if not raw.is_file():
        generate(SyntheticConfig(n_users=args.users, seed=0)).write(work / "raw")
    results: dict[str, Any] = {}
    for k in [float(x) for x in args.ks.split(",")]:
        name = f"k{k:g}"
        prepared = work / name / "prepared"
        if not (prepared / "manifest.json").is_file():
            protocol = ProtocolConfig(name="temporal") if k >= 100 else ProtocolConfig(name="kshot", target=TARGET,
                                                                                        k=k)
            prepare(load_dataset_config(raw), prepared, protocol=protocol, history_length=50, quiet=True)
        out = work / name / "benchmark.json"
        cmd = [sys.executable, "-m", "mistrec", "benchmark", str(prepared), "--force", "--models", "mist,isolated_dnn",
               "--seeds", str(args.seeds), "--epochs", str(args.epochs), "--threads", THREADS, "--json", str(out),
               "--batch-size", "1024", "--no-ranking", *(["--config", args.config] if args.config else [])]
        print(f"k = {k:g}%", flush=True)
        if subprocess.run(cmd, env=thread_env(), check=False).returncode != 0:
            return 1
        doc = json.loads(out.read_text())
        s = doc["summary"]
        target_rows = doc["data_summary"]["by_split"]["train"].get(TARGET, {}).get("rows", 0)
        gain = s["transfer_gain"]["mist"][TARGET]
        results[f"{k:g}"] = {
            "k_percent": k, "target_train_rows": target_rows,
            "mist_auc": s["by_model"]["mist"]["by_scenario"][TARGET]["auc"],
            "isolated_auc": s["by_model"]["isolated_dnn"]["by_scenario"][TARGET]["auc"],
            "transfer_gain": gain["auc_gain"], "p_value": gain["p_value"],
            "negative_transfer": gain["negative_transfer"],
            "gain_other_scenarios": {sc: g["auc_gain"] for sc, g in s["transfer_gain"]["mist"].items() if sc != TARGET},
        }
    ordered = sorted(results.values(), key=lambda r: -r["k_percent"])  # k shrinking
    gains = [r["transfer_gain"] for r in ordered]
    import yaml

    config = yaml.safe_load(Path(args.config).read_text()) if args.config else None  # what was run, not a path
    doc = {"target": TARGET, "seeds": args.seeds, "config": config, "epochs": args.epochs, "users": args.users,
           "by_k": results,
           "gain_grows_as_k_shrinks": all(b >= a for a, b in itertools.pairwise(gains)),
           "context": context()}
    write_json(args.json, doc)
    for r in ordered:
        print(f"k {r['k_percent']:>5g}%  target train rows {r['target_train_rows']:>6}  mist "
              f"{r['mist_auc']['mean']:.4f}  isolated {r['isolated_auc']['mean']:.4f}  gain {r['transfer_gain']:+.4f} "
              f"(p {r['p_value']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
