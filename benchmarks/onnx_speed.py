"""One forward pass of a run's exported graph in ONNX Runtime against the same pass in PyTorch, on crossed
(user, candidate) rows: what `mistrec serve --backend onnx` does per block of candidates (docs/serving.md, "Export").

    python benchmarks/onnx_speed.py --json benchmarks/results/onnx_speed_ml1m_age.json --run RUN [--rows 50,500]

RUN must have been exported (`mistrec export RUN`). The query is the most active user's history in the first
scenario, crossed with the first N items; median of --repeats timed calls after one warm-up, both runtimes at
--threads intra-op threads. The two outputs are compared too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

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
    from mistrec.eval.export import INPUTS

    torch.set_num_threads(args.threads)
    rec = Recommender.load(args.run)
    user, scenario = rec.active_users(1)[0], rec.ds.scenarios[0]
    query = rec.query_batch(user, scenario, rec._at(None, []), [])
    assert query is not None
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(Path(args.run) / "export" / "model.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    load_before = os.getloadavg()
    rows = []
    for n in (int(x) for x in args.rows.split(",")):
        b = query.cross(rec.enc.item_batch(np.arange(1, n + 1)))
        feeds = {name: getattr(b, name).numpy() for name in names}
        timings: dict[str, list[float]] = {"torch": [], "onnx": []}
        with torch.no_grad():
            want = rec.model(b).numpy()
        got = session.run(["logit"], feeds)[0]
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                rec.model(b)
            timings["torch"].append(1000 * (time.perf_counter() - start))
            start = time.perf_counter()
            session.run(["logit"], feeds)
            timings["onnx"].append(1000 * (time.perf_counter() - start))
        row = {"rows": n, "history": int(query.hist_mask.sum()), "torch_ms_median": statistics.median(timings["torch"]),
               "onnx_ms_median": statistics.median(timings["onnx"]), "max_abs_diff": float(np.abs(got - want).max())}
        row["onnx_over_torch"] = row["onnx_ms_median"] / row["torch_ms_median"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    assert set(INPUTS) >= set(names)
    write_json(args.json, {"run": args.run, "threads": args.threads, "rows": rows, "load_average_before": load_before,
                           "load_average_after": os.getloadavg(), "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
