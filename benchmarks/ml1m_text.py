"""MovieLens-1M genre shelves: mist with and without the movies' titles and genres as embedded item text.

    python benchmarks/ml1m_text.py --json benchmarks/results/ml1m_text.json [--seeds 1] [--variants ids,text,aligned]
    python benchmarks/ml1m_text.py --json OUT --first-seed 1 --seeds 1 ...   # seeds 1.. only (two cores: one a process)
    python benchmarks/ml1m_text.py --json OUT --merge A.json B.json ...      # the seeds of several runs in one file

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
import json
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


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """Means over the seeds of each variant's overall and per-shelf test AUC, and of each paired gain with the seeds
    on which it was significant (p < 0.05) in each direction."""
    seeds = doc["seeds"]
    out: dict[str, Any] = {"seeds": [s["seed"] for s in seeds]}
    views = {"overall": [s["overall"] for s in seeds],
             **{name: [s["shelves"][name] for s in seeds] for name in seeds[0]["shelves"]}}
    for view, rows in views.items():
        got: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.startswith("auc_")}
        for k in (k for k in rows[0] if k.startswith("paired_")):
            gains = [r[k]["gain"] for r in rows]
            got[k] = {"mean_gain": float(np.mean(gains)),
                      "seeds_above": sum(r[k]["gain"] > 0 and r[k]["p_value"] < 0.05 for r in rows),
                      "seeds_below": sum(r[k]["gain"] < 0 and r[k]["p_value"] < 0.05 for r in rows)}
        out[view] = got
    return out


def merged(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result file from several runs of this script (say one per core), their seeds sorted; they must agree on
    what was run."""
    keys = ("recipe", "protocol", "model", "epochs", "variants")
    for d in docs[1:]:
        if any(d[k] != docs[0][k] for k in keys):
            raise SystemExit("--merge: the files differ in " + ", ".join(k for k in keys if d[k] != docs[0][k]))
    seeds = sorted((s for d in docs for s in d["seeds"]), key=lambda s: s["seed"])
    if len({s["seed"] for s in seeds}) != len(seeds):
        raise SystemExit(f"--merge: a seed appears twice: {[s['seed'] for s in seeds]}")
    doc = {**docs[0], "seeds": seeds, "contexts": [d["context"] for d in docs],
           "prepare_seconds": [d["prepare_seconds"] for d in docs]}
    return {**doc, "summary": summary(doc)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST + SEEDS - 1")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="write the seeds of these result files (same variants and epochs) to --json; nothing trained")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "ml-1m-genre-text"))
    ap.add_argument("--variants", default="ids,text",
                    help="ids first, then text and/or aligned (the text with `content: {align: cooccurrence}`)")
    args = ap.parse_args()
    if args.merge:
        write_json(args.json, merged([json.loads(Path(f).read_text()) for f in args.merge]))
        return 0

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
    for seed in range(args.first_seed, args.first_seed + args.seeds):
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
        write_json(args.json, {**doc, "summary": summary(doc)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
