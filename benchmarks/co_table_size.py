"""What mist's `co_items` table costs in a saved run: each run loaded by the current code (a table saved dense, as
runs were before 2026-12-06, is made ragged on loading) and its weights saved again to memory, against the
weights.pt on disk.

    python benchmarks/co_table_size.py --json OUT RUN [RUN ...]

Per run: `saved_weights_bytes` (weights.pt as saved), `resaved_bytes` (the state_dict saved again by this code),
`co_table_bytes` (the `co.` tensors' bytes), `k` (the places an item the model reads), `places` (the filled places
held) and `items`; a dense table held items x k places. With `--evaluate "ARGS"` each run is also evaluated by
`python -m mistrec evaluate RUN ARGS --threads 1 --quiet` in a child process: its wall seconds and its own peak RSS
(`evaluate`; read the load average beside it).
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, timed_child, write_json


def main() -> int:
    import torch

    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--evaluate", help="also time `mistrec evaluate RUN` with these arguments (quoted)")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict[str, Any] = {"context": context(), "runs": {}}
    for run in args.runs:
        model, _enc, _meta = load_run(run)
        if not isinstance(model, Mist) or model.co is None:
            raise SystemExit(f"{run}: not a mist run with co_items")
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        co = model.co
        out["runs"][run] = {"saved_weights_bytes": (Path(run) / "weights.pt").stat().st_size,
                            "resaved_bytes": buf.tell(),
                            "co_table_bytes": sum(v.numel() * v.element_size()
                                                  for k, v in model.state_dict().items() if k.startswith("co.")),
                            "k": co.k, "places": int(co.start[-1]) - 1, "items": int(co.users.shape[0])}
        if args.evaluate is not None:
            with tempfile.TemporaryDirectory() as tmp:
                argv = [sys.executable, "-m", "mistrec", "evaluate", run, *shlex.split(args.evaluate), "--threads", "1",
                        "--quiet", "--json", str(Path(tmp) / "eval.json")]
                before = os.getloadavg()[0]
                out["runs"][run]["evaluate"] = {**timed_child(argv), "args": args.evaluate,
                                                "load_1min_before_after": [before, os.getloadavg()[0]]}
        print(run, out["runs"][run], flush=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
