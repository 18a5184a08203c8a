"""One user's query against N candidate items, scored by a run's exported graphs in ONNX Runtime and by PyTorch
(docs/serving.md, "Export"):

- `torch_crossed_ms` / `onnx_crossed_ms`: the crossed (user, candidate) rows through the model's forward and through
  model.onnx (N copies of the history);
- with a ranking graph (mist's rank.onnx): `onnx_rank_ms`, the query and its N candidates through it (the history
  read once), against `torch_catalogue_ms`, the PyTorch service's path: the scenario's catalogue scorer, prepared
  once for the whole catalogue (not timed), asked for the N candidates (`CandidateScorer` with columns).

    python benchmarks/onnx_speed.py --json benchmarks/results/onnx_speed_ml1m_age.json --run RUN [--rows 50,500]

RUN must have been exported (`mistrec export RUN`). The query is the most active user's history in the first
scenario; the candidates are the scenario's first N catalogue items; median of --repeats timed calls after one
warm-up, both runtimes at --threads intra-op threads. Every output is compared with PyTorch's too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--rows", default="50,500")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from mistrec.eval.explain import Recommender
    from mistrec.eval.export import INPUTS, candidate_feeds, query_feeds

    torch.set_num_threads(args.threads)
    rec = Recommender.load(args.run)
    user, scenario = rec.active_users(1)[0], rec.ds.scenarios[0]
    query = rec.query_batch(user, scenario, rec._at(None, []), [])
    assert query is not None
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    export = Path(args.run) / "export"
    session = ort.InferenceSession(str(export / "model.onnx"), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rank = (ort.InferenceSession(str(export / "rank.onnx"), options, providers=["CPUExecutionProvider"])
            if (export / "rank.onnx").is_file() else None)
    s_idx = rec.ds.scenarios.index(scenario) + 1
    catalogue = rec._catalogue[s_idx]
    scorer = rec._scorer(s_idx, catalogue)  # PyTorch's catalogue path, as the service prepares it
    load_before = os.getloadavg()
    rows = []

    def timed(fn: Callable[..., Any], *xs: Any) -> float:
        fn(*xs)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn(*xs)
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)

    for n in (int(x) for x in args.rows.split(",")):
        columns = torch.arange(min(n, len(catalogue)))
        items = rec.enc.item_batch(catalogue[:len(columns)])
        b = query.cross(items)
        feeds = {name: getattr(b, name).numpy() for name in names}
        with torch.no_grad():
            want = rec.model(b).numpy()
        row: dict[str, Any] = {"rows": len(columns), "history": int(query.hist_mask.sum()),
                               "max_abs_diff": float(np.abs(session.run(["logit"], feeds)[0] - want).max())}
        with torch.no_grad():
            row["torch_crossed_ms"] = timed(rec.model, b)
            row["onnx_crossed_ms"] = timed(session.run, ["logit"], feeds)
            row["torch_catalogue_ms"] = timed(scorer, query, columns)
            row["max_abs_diff_catalogue"] = float(np.abs(scorer(query, columns).numpy()[0] - want).max())
        if rank is not None:
            rank_names = {i.name for i in rank.get_inputs()}
            rank_feeds = {**query_feeds(query, 0, rank_names), **candidate_feeds(items, rank_names)}
            row["onnx_rank_ms"] = timed(rank.run, ["logit"], rank_feeds)
            row["max_abs_diff_rank"] = float(np.abs(rank.run(["logit"], rank_feeds)[0] - want).max())
            row["onnx_rank_over_torch_catalogue"] = row["onnx_rank_ms"] / row["torch_catalogue_ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    assert set(INPUTS) >= set(names)
    write_json(args.json, {"run": args.run, "scenario": scenario, "catalogue": len(catalogue), "threads": args.threads,
                           "rows": rows, "load_average_before": load_before,
                           "load_average_after": os.getloadavg(), "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
