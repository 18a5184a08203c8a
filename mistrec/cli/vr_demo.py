"""`mistrec demo --scenario-set vr`: the virtual mall end to end, from generated scenes to filled shelves.

The virtual mall (data.synthetic.virtual_mall) has four scenes with disjoint catalogues whose items carry
descriptions; the descriptions are embedded (content vectors), mist trains with them, and for a few users each
scene's display slots are filled from mist's ranked list under a per-category cap and a diversity penalty
(eval.slate), each placed item with the sentence that says which past behaviour, in which scene, put it there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import polars as pl
import yaml

__all__ = ["vr_demo"]

CANDIDATES = 60  # the ranked list the slots are filled from
COVERAGE_USERS = 200


def _descriptions(ds: Any) -> dict[str, str]:
    """Item raw id -> its description."""
    vocab = ds.vocab["item_id"]
    name = dict(zip(vocab["index"].to_list(), vocab["item_id"].cast(pl.Utf8).to_list(), strict=True))
    items = ds.tables["items"]
    return {name[i]: d for i, d in zip(items["item"].to_list(), items["description"].to_list(), strict=True)}


def _pick_users(ds: Any, scenes: list[str]) -> list[tuple[str, str]]:
    """A user new in the showroom but active in the home feed, and the most active user: (id, why)."""
    train = ds.split("train")
    per = train.group_by("user", "scenario").len()
    showroom, home_feed = scenes.index("showroom") + 1, scenes.index("home_feed") + 1  # scenario indices
    in_showroom = set(per.filter(pl.col("scenario") == showroom)["user"].to_list())
    home = per.filter(pl.col("scenario") == home_feed).sort(["len", "user"], descending=[True, False])
    new = next((u for u in home["user"].to_list() if u not in in_showroom), None)
    names = ds.vocab["user_id"]
    name = dict(zip(names["index"].to_list(), names["value"].cast(pl.Utf8).to_list(), strict=True))
    picked = []
    if new is not None:
        picked.append((name[new], "new in the showroom (no showroom event in training), active in the home feed"))
    busiest = train.group_by("user").len().sort(["len", "user"], descending=[True, False])["user"][0]
    picked.append((name[int(busiest)], "the most active user, in every scene"))
    return picked


def vr_demo(args: argparse.Namespace) -> int:
    import torch

    from mistrec.cli.printing import print_run, print_slate, print_summary
    from mistrec.data import generate, load_dataset_config, prepare
    from mistrec.data.synthetic import virtual_mall
    from mistrec.eval.explain import Recommender
    from mistrec.eval.fit import fit_run
    from mistrec.eval.slate import SlateFiller
    from mistrec.train import TrainConfig

    out = Path(args.out)
    t0 = time.perf_counter()
    data = generate(virtual_mall(n_users=args.users, seed=args.seed))
    yaml_path = data.write(out / "raw")
    cfg = yaml.safe_load(yaml_path.read_text())
    cfg["name"] = "virtual-mall"
    cfg["content"] = {"embed_text": True}  # MiniLM with the text extra, else TF-IDF
    yaml_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"Virtual mall (docs/synthetic.md): {data.interactions.height:,} interactions, {args.users:,} users, "
          f"scenes {', '.join(data.scenario_names)} with disjoint catalogues; items described in words, e.g. "
          f"{data.items['item_id'][0]}: \"{data.items['description'][0]}\"")
    manifest = prepare(load_dataset_config(yaml_path), out / "prepared", quiet=args.quiet, force=True)
    content = manifest["content"]["items"]
    block = content["blocks"][0]
    print(f"Item descriptions embedded by {block['encoder']} ({block['dims']} dimensions, {block['rows_with']:,} "
          "items): the content that links a showroom item to the home-feed items a user engaged with")
    aligned = content.get("aligned", {})
    if aligned.get("result") == "aligned":  # where nothing was aligned, prepare's note (printed below) says why
        print(f"... and aligned to behaviour (content.align: cooccurrence): mapped onto the {aligned['dims']} of "
              f"{aligned['factors']} co-occurrence factors of the training clicks that the text predicts")
    print_summary(manifest, out / "prepared")
    torch.set_num_threads(2)
    run_dir = out / "runs" / "mist"
    summary = fit_run(out / "prepared", "mist", run_dir, force=True, quiet=args.quiet,
                      train_cfg=TrainConfig(epochs=args.epochs, batch_size=1024, lr=3e-3, seed=args.seed))
    print_run(summary)
    rec = Recommender.load(run_dir)
    ds, filler = rec.ds, SlateFiller(rec)
    notes = {item: f'"{" ".join(words.split()[:4])} ..."' for item, words in _descriptions(ds).items()}
    scenes = list(ds.scenarios)
    options = {"slots": args.slots, "per_category": args.per_category, "diversity": args.diversity,
               "candidates": CANDIDATES}
    doc: dict[str, Any] = {**options, "users": [], "coverage": {}}
    print(f"\nEach scene's {args.slots} slots filled from mist's top {CANDIDATES}: at most {args.per_category} of a "
          f"category, diversity {args.diversity} (eval/slate.py); the first three of each, with their descriptions")
    for user, why in _pick_users(ds, scenes):
        print(f"\nUser {user}: {why}")
        entry: dict[str, Any] = {"user": user, "why": why, "scenes": {}}
        for scene in scenes:
            got = filler.fill(user, scene, **options, explain=True)
            print_slate(got, user, scene, limit=3, notes=notes)
            entry["scenes"][scene] = {**got["slate"], "items": [it["item"] for it in got["items"]],
                                      "explanations": [it.get("explanation", {}).get("sentence")
                                                       for it in got["items"]]}
        doc["users"].append(entry)
    for scene in scenes:  # how much of each catalogue the slates show, across users
        shown: set[str] = set()
        top_shown: set[str] = set()
        for user in rec.active_users(COVERAGE_USERS):
            got = filler.fill(user, scene, **options)
            if got["cold_start"]:
                continue
            shown.update(it["item"] for it in got["items"])
            top_shown.update(got["slate"]["top_of_list"]["items"])
        size = rec.catalogue_size(scene)
        doc["coverage"][scene] = {"catalogue": size, "slates": len(shown) / size,
                                  "top_of_list": len(top_shown) / size}
    shares = ", ".join(f"{s} {c['slates']:.0%} ({c['top_of_list']:.0%})" for s, c in doc["coverage"].items())
    print(f"\nCatalogue coverage over {COVERAGE_USERS} active users' slates (top of the list in brackets): {shares}")
    (out / "slates.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"Done in {time.perf_counter() - t0:.1f} s. Slates: {(out / 'slates.json').resolve()}")
    return 0
