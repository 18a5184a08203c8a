"""The second task (post-click conversion, ESMM) on the synthetic platform with a planted conversion.

    python benchmarks/conversion_synthetic.py --json benchmarks/results/conversion_synthetic.json --seeds 3

The platform (2,000 users, seed 0) plants a conversion on each click with p = sigmoid(2 b[u, s] . v[i] +
quality[i] - 6): the user's interest in that scenario and a hidden item quality (26% of test clicks
convert). `mistrec benchmark` trains the models that have a conversion head (mist, star, mmoe, shared_bottom,
scenario_dnn) with the ESMM loss on the temporal split and reports, per scenario, CVR AUC (p(conversion |
click) on clicked test rows) and CTCVR AUC (p(click) p(conversion | click) on every test row), next to the
click AUC. The JSON is the benchmark's (DESIGN.md section 5), with `summary.by_model[M].conversion`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, run_benchmark_cli

MODELS = "mist,star,mmoe,shared_bottom,scenario_dnn"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "conversion-synthetic"))
    args = ap.parse_args()

    from mistrec.data import SyntheticConfig, generate, load_dataset_config, prepare

    work = Path(args.work)
    prepared = work / "prepared"
    if not (prepared / "manifest.json").is_file():
        raw = generate(SyntheticConfig(n_users=args.users, seed=0, conversion=True)).write(work / "raw")
        prepare(load_dataset_config(raw), prepared, history_length=50, quiet=True)
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(prepared), "--force", "--models", args.models, "--seeds",
           str(args.seeds), "--epochs", str(args.epochs), "--threads", THREADS, "--json", args.json,
           "--batch-size", "1024", "--no-ranking", "--work", str(work / "benchmark-runs")]
    code = run_benchmark_cli(cmd, args.json)
    if Path(args.json).is_file():
        doc = json.loads(Path(args.json).read_text())
        for m, v in doc["summary"]["by_model"].items():
            conv = v.get("conversion", {}).get("overall", {})
            print(f"{m}: click AUC {v['overall']['auc']['mean']:.4f}, CVR AUC "
                  f"{conv.get('cvr_auc', {}).get('mean', float('nan')):.4f}, CTCVR AUC "
                  f"{conv.get('ctcvr_auc', {}).get('mean', float('nan')):.4f}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
