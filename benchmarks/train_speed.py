"""Training speed and memory on MovieLens-1M (age groups, random 8:1:1, seed 2022, L = 50): samples per second
of SharedBottom, MMoE, PLE, STAR, DIN and mist with batch size 4096 and embedding size 16, each model's default
(public-benchmark) hidden sizes, 2 torch threads.

Each model runs in its own process (so its peak RSS is its own): one warm-up epoch, then three timed epochs of
the real trainer; the median is reported. The data-pipeline share compares building batches with the same
model's forward + backward + step on pre-built batches (30 batches each).

    python benchmarks/train_speed.py --json benchmarks/results/train_speed.json

A model may carry config values after '+': `--models star,mist,mist+scorer=bilinear` (values read as YAML).
`--dataset amazon-sport_phone` (any pair of ../shared/data/amazon-cdr-disencdr, its own random split) times the
models where histories span two scenarios, as mist's item-to-item term (`co_items`, cross-scenario events only) needs
to be read at all: on MovieLens-1M by age every history is one scenario's.

    python benchmarks/train_speed.py --json benchmarks/results/train_speed_co_items.json \
        --dataset amazon-sport_phone --models mist,mist+co_items=0
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, THREADS, context, thread_env, write_json

MODELS = ("shared_bottom", "mmoe", "ple", "star", "din", "mist")


def parse_model(spec: str) -> tuple[str, dict[str, Any]]:
    """'mist+scorer=bilinear+dropout=0.1' -> ('mist', {'scorer': 'bilinear', 'dropout': 0.1})."""
    import yaml

    name, *pairs = spec.split("+")
    values = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        values[key] = yaml.safe_load(value)
    return name, values


def child(model_spec: str, prepared: Path) -> dict[str, Any]:
    import resource

    import numpy as np
    import torch

    from mistrec.data import PreparedDataset
    from mistrec.features import FeatureEncoder
    from mistrec.models import build_model
    from mistrec.train import TrainConfig, train
    from mistrec.train.step import Objective

    torch.set_num_threads(int(THREADS))
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    model_name, values = parse_model(model_spec)
    model = build_model(model_name, enc.spec_, {"embedding_dim": 16, **values})
    result = train(model, enc, rows, None, TrainConfig(epochs=4, batch_size=4096, patience=10), quiet=True)
    timed = [len(rows) / h["seconds"] for h in result.history[1:]]

    order = np.random.default_rng(0).permutation(len(rows))
    idx = [order[k * 4096:(k + 1) * 4096] for k in range(30)]
    start = time.perf_counter()
    batches = [enc.batch(rows, i, history=model.reads_history, history_side=model.reads_history_side) for i in idx]
    pipeline = (time.perf_counter() - start) / len(idx)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    objective = Objective(model, 0.0)  # the trainer's loss (mist's residual fit: its two BCEs)
    for b in batches:
        loss = objective(b, None).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    step = (time.perf_counter() - start) / len(batches)
    return {
        "train_samples_per_second": round(statistics.median(timed), 1),
        "epochs_samples_per_second": [round(x, 1) for x in timed],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pipeline_ms_per_batch": round(pipeline * 1000, 2),
        "step_ms_per_batch_prebuilt": round(step * 1000, 2),
        "pipeline_share": round(pipeline / (pipeline + step), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def matmul_gflops() -> float:
    """A 4096x256 @ 256x256 matmul's rate here: the arithmetic ceiling to compare with."""
    import torch

    torch.set_num_threads(int(THREADS))
    a, b = torch.randn(4096, 256), torch.randn(256, 256)
    for _ in range(5):
        a @ b
    n, start = 200, time.perf_counter()
    for _ in range(n):
        a @ b
    return round(2 * 4096 * 256 * 256 * n / (time.perf_counter() - start) / 1e9, 1)


def n_items_of(prepared: Path) -> int:
    from mistrec.data import PreparedDataset

    return int(PreparedDataset.load(prepared).vocab["item_id"].height + 1)


def history_floor_ms(n_items: int, batch: int = 4096, length: int = 50, dim: int = 16) -> float:
    """The least an attention over a (batch, length) history can cost per training step here: look the events'
    item embeddings up, score them against one query per sample (a dot product), softmax, pool, and the
    backward of all of it into the embedding table and the queries; median ms of 10 steps after 3 warm-ups.
    Any history model (DIN, mist) pays at least this on top of its other parts; mist pays more (side features,
    scenario / gap / label embeddings, its scorer, per-source pools, the interest gate)."""
    import torch

    torch.set_num_threads(int(THREADS))
    gen = torch.Generator().manual_seed(0)
    items = torch.randint(1, n_items, (batch, length), generator=gen)
    table = torch.nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.01)
    query = torch.nn.Parameter(torch.randn(batch, dim, generator=gen))
    times = []
    for k in range(13):
        start = time.perf_counter()
        # index_select, as mist's `lookup`: its backward (index_add) is ~2x faster here than F.embedding's
        e = table.index_select(0, items.reshape(-1)).view(batch, length, dim)  # (B, L, E)
        w = torch.bmm(e, query.unsqueeze(-1)).squeeze(-1).softmax(-1)  # (B, L)
        u = torch.bmm(w.unsqueeze(1), e).squeeze(1)  # (B, E)
        u.square().sum().backward()
        table.grad = query.grad = None
        if k >= 3:
            times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="where to write the results")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    ap.add_argument("--dataset", default="ml-1m-age",
                    help="ml-1m-age (random 8:1:1, seed 2022) or amazon-PAIR (the pair's own split)")
    ap.add_argument("--amazon", default=str(SHARED_DATA / "amazon-cdr-disencdr"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--prepared", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.prepared))))
        return 0
    if not args.json:
        ap.error("--json is required")

    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    out: dict[str, Any] = {"models": {}, "context_before": context()}
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared"
        if args.dataset == "ml-1m-age":
            cfg = load_dataset_config(write_recipe("ml-1m-age", Path(args.data), Path(tmp) / "data.yaml"))
            protocol = ProtocolConfig(name="random", seed=2022)
            data_text = "MovieLens-1M age groups, random 8:1:1 seed 2022, L = 50"
        elif args.dataset.startswith("amazon-"):
            pair = args.dataset.removeprefix("amazon-")
            cfg = load_dataset_config(write_recipe("cdr-pair", Path(args.amazon), Path(tmp) / "data.yaml", pair=pair))
            protocol = cfg.protocol
            data_text = f"Amazon {pair} (amazon-cdr-disencdr, cdr-pair recipe), its own split, L = 50"
        else:
            ap.error(f"--dataset: ml-1m-age or amazon-PAIR, got {args.dataset!r}")
        prepare(cfg, prepared, protocol=protocol, history_length=50)
        out["matmul_4096x256x256_gflops"] = matmul_gflops()
        out["history_floor_ms_per_step"] = history_floor_ms(n_items_of(prepared))
        for name in args.models.split(","):
            proc = subprocess.run([sys.executable, __file__, "--child", name, "--prepared", str(prepared)],
                                  env=thread_env(), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed:\n{proc.stderr}")
            out["models"][name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(name, json.dumps(out["models"][name]), flush=True)
    out["context_after"] = context()
    out["setup"] = {"data": data_text, "batch_size": 4096,
                    "embedding_dim": 16, "threads": int(THREADS),
                    "timing": "median of 3 epochs after 1 warm-up epoch, real trainer loop"}
    star = out["models"].get("star", {}).get("train_samples_per_second")
    if star:  # STAR with nothing but the least history attention added: what 'mist under 2x STAR' is up against
        star_ms = 4096 / star * 1000
        out["star_plus_history_floor_vs_star"] = round((star_ms + out["history_floor_ms_per_step"]) / star_ms, 2)
    for name, v in out["models"].items():
        if star and name.startswith("mist"):
            key = "mist_time_per_sample_vs_star" + name[len("mist"):].replace("+", "_").replace("=", "_")
            out[key] = round(star / v["train_samples_per_second"], 2)
    names = list(out["models"])  # each model's time per sample against the first one's, measured in the same run
    first = out["models"][names[0]]["train_samples_per_second"]
    out["time_per_sample_vs_" + names[0]] = {n: round(first / v["train_samples_per_second"], 3)
                                             for n, v in out["models"].items()}
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
