"""MovieLens-1M genre shelves: mist with and without the movies' titles and genres as embedded item text.

    python benchmarks/ml1m_text.py --json benchmarks/results/ml1m_text.json [--seeds 1]

The ml-1m-genre recipe (scenario = the movie's first genre's shelf, temporal protocol, L = 50) prepared twice
from the same files and split: as the recipe writes it (genres as ids, titles kept as strings) and with
`content: {embed_text: true}` over `text: [movie_title, genre]` (MiniLM when the text extra is installed, else
TF-IDF). mist trains on both with the same seed and the benchmark's defaults (12 epochs). Reported per shelf,
whatever the sign: test AUC of each, the difference with a paired bootstrap over users, and the same over the
test rows whose movie has no training row (new movies, the rows text is for).
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


def _prepared(work: Path, data: Path, text: bool) -> tuple[Path, float | None]:
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    name = "text" if text else "ids"
    out = work / f"prepared-{name}"
    if (out / "manifest.json").is_file():
        return out, None  # prepared by an earlier run: not timed here
    path = write_recipe("ml-1m-genre", data, work / f"dataset-{name}.yaml")
    cfg = yaml.safe_load(path.read_text())
    if text:
        cfg["items"]["text"] = ["movie_title", "genre"]
        cfg["content"] = {"embed_text": True}
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
    args = ap.parse_args()

    import torch

    from mistrec.data.prepared import PreparedDataset

    torch.set_num_threads(int(THREADS))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ids, ids_seconds = _prepared(work, Path(args.data), False)
    text, text_seconds = _prepared(work, Path(args.data), True)
    block = PreparedDataset.load(text).manifest["content"]["items"]["blocks"][0]
    doc: dict[str, Any] = {"recipe": "ml-1m-genre", "protocol": "temporal", "model": "mist", "epochs": args.epochs,
                           "text": {"columns": block["columns"], "encoder": block["encoder"], "dims": block["dims"]},
                           "prepare_seconds": {"ids": ids_seconds, "text": text_seconds}, "seeds": [],
                           "context": context()}
    for seed in range(args.seeds):
        got = {"ids": mist_test_scores(ids, work / f"run-ids-seed{seed}", args.epochs, seed),
               "text": mist_test_scores(text, work / f"run-text-seed{seed}", args.epochs, seed)}
        a, b = got["text"], got["ids"]
        assert np.array_equal(a["label"], b["label"]) and np.array_equal(a["user"], b["user"])  # the same rows
        shelves: dict[str, Any] = {}
        for s, name in enumerate(a["names"], start=1):
            mask = a["scenario"] == s
            shelves[name] = {"rows": int(mask.sum()), "auc_ids": auc_or_nan(b["label"][mask], b["p"][mask]),
                             "auc_text": auc_or_nan(a["label"][mask], a["p"][mask]),
                             "paired": paired_auc_over_users(a, b, mask, seed, n_boot=300)}
            print(f"seed {seed} {name}: ids {shelves[name]['auc_ids']:.4f}, text {shelves[name]['auc_text']:.4f}",
                  flush=True)
        new = a["new_item"]
        doc["seeds"].append({
            "seed": seed, "shelves": shelves,
            "overall": {"auc_ids": auc_or_nan(b["label"], b["p"]), "auc_text": auc_or_nan(a["label"], a["p"]),
                        "paired": paired_auc_over_users(a, b, np.ones(len(new), bool), seed, n_boot=300)},
            "new_items": {"rows": int(new.sum()), "auc_ids": auc_or_nan(b["label"][new], b["p"][new]),
                          "auc_text": auc_or_nan(a["label"][new], a["p"][new])},
            "train_seconds": {k: round(v["seconds"], 1) for k, v in got.items()}})
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
