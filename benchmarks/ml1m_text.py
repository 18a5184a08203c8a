"""MovieLens-1M genre shelves: mist with and without the movies' titles and genres as embedded item text.

    python benchmarks/ml1m_text.py --json benchmarks/results/ml1m_text.json [--seeds 1] [--variants ids,text,aligned]

The ml-1m-genre recipe (scenario = the movie's first genre's shelf, temporal protocol, L = 50) prepared twice
from the same files and split: as the recipe writes it (genres as ids, titles kept as strings) and with
`content: {embed_text: true}` over `text: [movie_title, genre]` (MiniLM when the text extra is installed, else
TF-IDF). "aligned" is the text with `content: {align: cooccurrence}`
(docs/data.md). mist trains on each with the same seed and the benchmark's defaults (12 epochs). Reported per
shelf, whatever the sign: test AUC of each, each against ids (and aligned against text) with a paired bootstrap
over users, and the same over the test rows whose movie has no training row (new movies, the rows text is for).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, auc_or_nan, context, mist_test_scores, paired_auc_over_users, write_json


def _prepared(work: Path, data: Path, name: str) -> tuple[Path, float | None]:
    """The recipe's data prepared as variant `name`: ids (as the recipe writes it), text (titles and genres
    embedded) or aligned (the same text, `content: {align: cooccurrence}`)."""
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    text = name != "ids"
    out = work / f"prepared-{name}"
    if (out / "manifest.json").is_file():
        return out, None  # prepared by an earlier run: not timed here
    path = write_recipe("ml-1m-genre", data, work / f"dataset-{name}.yaml")
    cfg = yaml.safe_load(path.read_text())
    if text:
        cfg["items"]["text"] = ["movie_title", "genre"]
        cfg["content"] = {"embed_text": True, "align": "cooccurrence" if name == "aligned" else "none"}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    prepare(load_dataset_config(path), out, protocol=ProtocolConfig(name="temporal"), history_length=50, quiet=True)
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "ml-1m-genre-text"))
    ap.add_argument("--variants", default="ids,text",
                    help="ids first, then text and/or aligned (the text with `content: {align: cooccurrence}`)")
    args = ap.parse_args()

    import torch

    from mistrec.data.prepared import PreparedDataset

    torch.set_num_threads(int(THREADS))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    variants = args.variants.split(",")
    if (len(variants) > 1 and variants[0] != "ids") or not set(variants) <= {"ids", "text", "aligned"}:
        ap.error(f"--variants: ids first (the others are paired against it), then text and/or aligned; or one alone "
                 f"(trained and reported, nothing paired). Got {args.variants!r}.")
    prepared = {v: _prepared(work, Path(args.data), v) for v in variants}
    doc: dict[str, Any] = {"recipe": "ml-1m-genre", "protocol": "temporal", "model": "mist", "epochs": args.epochs,
                           "variants": variants, "prepare_seconds": {v: p[1] for v, p in prepared.items()},
                           "seeds": [], "context": context()}
    for v in variants[1:]:
        m = PreparedDataset.load(prepared[v][0]).manifest["content"]["items"]
        doc[v] = {"columns": m["blocks"][0]["columns"], "encoder": m["blocks"][0]["encoder"], "dims": m["dims"],
                  **({"aligned": m["aligned"]} if "aligned" in m else {})}
    for seed in range(args.seeds):
        got = {v: mist_test_scores(path, work / f"run-{v}-seed{seed}", args.epochs, seed)
               for v, (path, _) in prepared.items()}
        b = got[variants[0]]
        for a in got.values():
            assert np.array_equal(a["label"], b["label"]) and np.array_equal(a["user"], b["user"])  # the same rows
        pairs = [(v, "ids") for v in variants[1:]] + ([("aligned", "text")] if {"text", "aligned"} <= set(got) else [])
        shelves: dict[str, Any] = {}
        for s, name in enumerate(b["names"], start=1):
            mask = b["scenario"] == s
            shelves[name] = {"rows": int(mask.sum()),
                             **{f"auc_{v}": auc_or_nan(g["label"][mask], g["p"][mask]) for v, g in got.items()},
                             **{f"paired_{x}_vs_{y}": paired_auc_over_users(got[x], got[y], mask, seed, n_boot=300)
                                for x, y in pairs}}
            print(f"seed {seed} {name}: " + ", ".join(f"{v} {shelves[name][f'auc_{v}']:.4f}" for v in got), flush=True)
        new = b["new_item"]
        every = np.ones(len(new), bool)
        doc["seeds"].append({
            "seed": seed, "shelves": shelves,
            "overall": {**{f"auc_{v}": auc_or_nan(g["label"], g["p"]) for v, g in got.items()},
                        **{f"paired_{x}_vs_{y}": paired_auc_over_users(got[x], got[y], every, seed, n_boot=300)
                           for x, y in pairs}},
            "new_items": {"rows": int(new.sum()),
                          **{f"auc_{v}": auc_or_nan(g["label"][new], g["p"][new]) for v, g in got.items()}},
            "train_seconds": {k: round(v["seconds"], 1) for k, v in got.items()}})
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
