"""Quality on MovieLens-1M: per-scenario test metrics of mist and the baselines, same features, same split,
same trainer, several seeds, through `mistrec benchmark` (paired tests, transfer gain, HTML report).

    python benchmarks/quality_ml1m.py --json benchmarks/results/quality_ml1m_age.json --seeds 3 --recipe age \
        --report benchmarks/results/quality_ml1m_age.html

--recipe age: scenario = age group, protocol random 8:1:1 (seed 2022, the published benchmarks' setting).
--recipe genre: scenario = genre shelf, protocol temporal (the same users act in several scenarios).
Histories hold only training-split events before the sample's time (the prepared data guarantees it).
Runs are kept under --work; a finished run is not trained again (the benchmark resumes).
The JSON follows DESIGN.md section 5: runs[].model, runs[].seed, runs[].metrics.by_scenario[S].auc.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, prepared_ml1m, run_benchmark_cli

DEFAULT_MODELS = "mist,star,mmoe,ple,shared_bottom,din,isolated_dnn"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--report", help="the HTML report to write")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--recipe", choices=("age", "genre"), default="age")
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--no-ranking", action="store_true", help="skip full-catalogue ranking metrics")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"), help="prepared data and runs (resumable)")
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    ap.add_argument("--config", help="a benchmark YAML (model configurations); its runs go to a directory of their own")
    args = ap.parse_args()

    prepared = prepared_ml1m(Path(args.work), args.recipe, Path(args.data))
    work = prepared.parent
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(prepared), "--force", "--models", args.models, "--seeds",
           str(args.seeds), "--epochs", str(args.epochs), "--threads", THREADS, "--json", args.json,
           "--work", str(work / ("benchmark-runs" if not args.config else f"benchmark-runs-{Path(args.config).stem}"))]
    if args.config:
        cmd += ["--config", args.config]
    if args.report:
        cmd += ["--report", args.report]
    if args.no_ranking:
        cmd.append("--no-ranking")
    return run_benchmark_cli(cmd, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
