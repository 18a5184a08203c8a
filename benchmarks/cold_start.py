"""Content features for items nobody has clicked yet, and for transfer across scenes whose catalogues do not overlap.

    python benchmarks/cold_start.py --json benchmarks/results/cold_start.json --seeds 3

Two settings of the synthetic generator whose items carry descriptions drawn from their latent vectors
(SyntheticConfig.description_words: items close in the latent space share words, in any scenario), each
prepared once per variant from the same raw data (VARIANTS): ids only ("id"), the generator's category (coarse
content: the nearest of a few latent directions), the description embedded ("text", `content: {embed_text:
true}`, without the category, reduced to the dimensions `text_dims: auto` chooses; "text64" and "text8": reduced
to 64 dimensions, or to 8, the planted latent dimension, so a choice informed by the generator), and the planted
latent vectors as a vector column ("oracle": the ceiling of any content). mist trains on each with the same seed
and its defaults.

1. **Item cold start**: the transfer platform (docs/synthetic.md; `--platform default` for the default one) under
   the cold-item protocol (20% of the items held out: every row
   of theirs in valid or test, none in training or in any history). The figure is the test AUC over the rows
   whose item has no training row, per variant; text against id, paired over users.
2. **Cross-scene transfer through content**: the virtual mall (`virtual_mall`): scenes with disjoint catalogues,
   many users new in the smaller scenes. The figure is the test AUC, in each scene, over the users with 0-2
   training events there before the sample (the activity groups "0" and "1-2" pooled), per variant;
   `cross_scene_gain_content` is the mean of text minus id over scenes (with at least 200 such rows) and seeds,
   with a paired bootstrap over users per seed, for the default text path (`default_text_variant`: the text as
   embedded, "text", or aligned to behaviour, "aligned", as `content.align` defaults); `..._embedded` and
   `..._aligned` (and `cold_item_auc_text_embedded` / `_aligned`) each of them.

The rule that refutes the claim, written before the run: the cold-item gain is below 0.1 AUC on any seed, or the
cross-scene gain is not above 0 on every seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, auc_or_nan, context, mist_test_scores, paired_auc_over_users, write_json

# what each variant's items table gives the model (the raw data is the same): ids only; the generator's category
# (the nearest of a few directions in the latent space: coarse content); the description, embedded; the planted
# latent vectors themselves as a precomputed vector column (the ceiling of any content)
VARIANTS = {
    "id": {"categorical": [], "embed_text": False},
    "category": {"categorical": ["category"], "embed_text": False},
    "text": {"categorical": [], "embed_text": True},  # text_dims auto: the components above the noise floor
    # the same TF-IDF at fixed widths: 64 (the cap of auto, and the default until 2026-12-02) and 8 (the planted
    # latent dimension, so a choice informed by the generator), reported apart from the default
    "text64": {"categorical": [], "embed_text": True, "text_dims": 64},
    "text8": {"categorical": [], "embed_text": True, "text_dims": 8},
    # the default text, aligned to behaviour (`content: {align: cooccurrence}`: mapped onto the factors of the
    # training split's liked-item co-occurrence that it predicts on held-out folds; data/content.py)
    "aligned": {"categorical": [], "embed_text": True, "align": "cooccurrence"},
    "oracle": {"categorical": [], "embed_text": False, "vector": ["latent"]},
    # what the description carries of the planted vectors through a linear read: a ridge regression from each
    # item's word counts to its planted vector, fitted on the items with a training row only (the planted vectors of
    # trained items are knowledge no model has: a ceiling of the text, not a variant a user could run), its
    # predictions for every item given as a vector column ("decoded", in items-decoded.csv)
    "decoded": {"categorical": [], "embed_text": False, "vector": ["decoded"]},
}


def _raw(data: Any, out: Path) -> Path:
    """The generated data written with its planted item vectors as an extra items column ('latent')."""
    import polars as pl

    path = data.write(out)
    latent = [" ".join(f"{x:.5f}" for x in row) for row in data.item_vectors]
    items = pl.read_csv(out / "items.csv")
    order = {n: i for i, n in enumerate(data.items["item_id"].to_list())}
    items.with_columns(pl.Series("latent", [latent[order[n]] for n in items["item_id"].to_list()])).write_csv(
        out / "items.csv")
    return path


def _prepare(raw_yaml: Path, out: Path, variant: str, encoder: str, protocol: Any) -> Path:
    from mistrec.data import load_dataset_config, prepare

    if (out / "manifest.json").is_file():
        return out
    v = VARIANTS[variant]
    cfg = yaml.safe_load(raw_yaml.read_text())
    cfg["items"]["categorical"] = v["categorical"]
    if "vector" in v:
        cfg["items"]["vector"] = v["vector"]
    cfg["content"] = {"embed_text": v["embed_text"], "text_encoder": encoder, "text_dims": v.get("text_dims", "auto"),
                      "align": v.get("align", "none")}
    if variant == "decoded":
        cfg["items"]["path"] = _decoded_items(raw_yaml.parent, out.with_name("prepared-id")).name
    path = raw_yaml.with_name(f"dataset-{variant}.yaml")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    prepare(load_dataset_config(path), out, protocol=protocol, quiet=True)
    return out


DECODE_ALPHAS = np.logspace(-2, 3, 12)  # the ridge penalties "decoded" chooses among (leave-one-out)


def planted_items(raw: Path, prepared_id: Path) -> tuple[Any, np.ndarray, np.ndarray]:
    """A seed's raw items table, its planted vectors (n, d) and which items have a training row in `prepared_id`
    (the same split every variant of the seed has), in the table's row order."""
    import polars as pl

    from mistrec.data.prepared import PreparedDataset

    items = pl.read_csv(raw / "items.csv")
    vocab = PreparedDataset.load(prepared_id).vocab["item_id"]
    trained = set(vocab.filter(vocab["train_count"] > 0)["item_id"].to_list())
    fit = np.array([n in trained for n in items["item_id"].to_list()])
    planted = np.array([[float(x) for x in row.split()] for row in items["latent"].to_list()])
    return items, planted, fit


def decode(x: Any, planted: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Every item's planted vector as a ridge regression from its features `x` predicts it, fitted on the `fit`
    items' planted vectors (knowledge no model has: the ceiling of a linear read of `x`)."""
    from sklearn.linear_model import RidgeCV

    return np.asarray(RidgeCV(alphas=DECODE_ALPHAS).fit(x[fit], planted[fit]).predict(x))


def _decoded_items(raw: Path, prepared_id: Path) -> Path:
    """raw/items-decoded.csv: the items table with a 'decoded' vector column, `decode` of the description's word
    counts."""
    import polars as pl
    from sklearn.feature_extraction.text import CountVectorizer

    items, planted, fit = planted_items(raw, prepared_id)
    decoded = decode(CountVectorizer().fit_transform(items["description"].to_list()), planted, fit)
    out = raw / "items-decoded.csv"
    items.with_columns(pl.Series("decoded", [" ".join(f"{x:.5f}" for x in row) for row in decoded])).write_csv(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--text-encoder", default="tfidf", choices=("tfidf", "minilm"),
                    help="the text encoder of the descriptions (tfidf: the lexical link the generator plants)")
    ap.add_argument("--only", choices=("cold-item", "cross-scene"))
    ap.add_argument("--words", type=int, default=10,
                    help="words per item description (SyntheticConfig.description_words; 10 is the platforms' own)")
    ap.add_argument("--platform", choices=("transfer", "default"), default="transfer",
                    help="the cold-item setting's generator: the transfer platform (default) or the default one")
    ap.add_argument("--variants", default="id,category,text,text64,text8,oracle",
                    help=f"comma-separated, of {', '.join(VARIANTS)} (id is needed: the others are paired against it)")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "cold-start"))
    ap.add_argument("--summary-only", action="store_true",
                    help="recompute the summary keys of the existing --json file (nothing trained): after a default "
                         "changed which variant is the default text path")
    args = ap.parse_args()
    if args.summary_only:
        import json

        write_json(args.json, _summary(json.loads(Path(args.json).read_text())))
        return 0

    import torch

    from mistrec.data import ProtocolConfig, generate
    from mistrec.data.synthetic import virtual_mall

    torch.set_num_threads(int(THREADS))
    work = Path(args.work)
    doc: dict[str, Any] = {"seeds": args.seeds, "words": args.words, "text_encoder": args.text_encoder,
                           "epochs": args.epochs,
                           "users": args.users, "cold_item": [], "cross_scene": [], "context": context()}
    variants = args.variants.split(",")
    if variants[0] != "id" or not set(variants) <= set(VARIANTS):
        ap.error(f"--variants: id first (the others are paired against it, and 'decoded' reads its split), then "
                 f"any of {', '.join(VARIANTS)}. Got {args.variants!r}.")
    for seed in range(args.seeds):
        for setting in ("cold-item", "cross-scene"):
            if args.only not in (None, setting):
                continue
            words = "" if args.words == 10 else f"-words{args.words}"
            base = work / (f"{setting}-{args.platform}{words}-seed{seed}" if setting == "cold-item" else
                           f"{setting}{words}-seed{seed}")
            raw = base / "raw" / "dataset.yaml"
            if not raw.is_file():
                cfg = (_cold_item_platform(args.platform, args.users, seed, args.words) if setting == "cold-item"
                       else virtual_mall(n_users=args.users, seed=seed, description_words=args.words))
                _raw(generate(cfg), base / "raw")
            protocol = (ProtocolConfig(name="cold-item", seed=seed, cold_fraction=0.2) if setting == "cold-item" else
                        ProtocolConfig(name="temporal"))
            got = {v: mist_test_scores(_prepare(raw, base / f"prepared-{v}", v, args.text_encoder, protocol),
                              base / f"run-{v}", args.epochs, seed) for v in variants}
            row = _cold_item_row(got, seed) if setting == "cold-item" else _cross_scene_row(got, seed)
            row["content_dims"] = {v: _content_dims(base / f"prepared-{v}") for v in variants if v != "id"}
            doc[setting.replace("-", "_")].append(row)
            print(f"{setting} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row["auc"].items()), flush=True)
            write_json(args.json, _summary(doc))
    return 0


def _content_dims(prepared: Path) -> int:
    """The width of the prepared items' content vectors (text_dims auto's choice, for text; the factors kept, when
    aligned), from the manifest."""
    import json

    return int(json.loads((prepared / "manifest.json").read_text())["content"]["items"]["dims"])


def _cold_item_platform(platform: str, users: int, seed: int, words: int) -> Any:
    from mistrec.data import SyntheticConfig
    from mistrec.data.synthetic import transfer_platform

    if platform == "default":
        return SyntheticConfig(n_users=users, description_words=words, seed=seed)
    return transfer_platform(n_users=users, seed=seed, description_words=words)


def _cold_item_row(got: dict[str, Any], seed: int) -> dict[str, Any]:
    """Test AUC over the rows whose item has no training row, per variant; each against ids only, paired."""
    cold = got["id"]["new_item"]
    return {"seed": seed, "cold_rows": int(cold.sum()), "warm_rows": int((~cold).sum()),
            "auc": {v: auc_or_nan(g["label"][cold], g["p"][cold]) for v, g in got.items()},
            "warm_auc": {v: auc_or_nan(g["label"][~cold], g["p"][~cold]) for v, g in got.items()},
            "paired_vs_id": {v: paired_auc_over_users(g, got["id"], cold, seed) for v, g in got.items() if v != "id"},
            "train_seconds": {v: round(g["seconds"], 1) for v, g in got.items()}}


MIN_ROWS = 200  # a scene's sparse-user rows below this are reported but left out of the mean


def _cross_scene_row(got: dict[str, Any], seed: int) -> dict[str, Any]:
    """Per scene, test AUC over the rows of users with 0-2 training events there before the sample."""
    ref = got["id"]
    sparse = ref["activity"] <= 2
    per_scene: dict[str, Any] = {}
    for s, name in enumerate(ref["names"], start=1):
        mask = sparse & (ref["scenario"] == s)
        per_scene[name] = {"rows": int(mask.sum()), **{f"auc_{v}": auc_or_nan(g["label"][mask], g["p"][mask])
                                                        for v, g in got.items()}}
    counted = {k: v for k, v in per_scene.items() if v["rows"] >= MIN_ROWS}
    return {"seed": seed, "sparse_users_0_2": per_scene, "scenes_counted": sorted(counted),
            "auc": {v: float(np.mean([r[f"auc_{v}"] for r in counted.values()])) for v in got},
            "paired_sparse_vs_id": {v: paired_auc_over_users(g, ref, sparse, seed) for v, g in got.items()
                                    if v != "id"},
            "all_rows_auc": {v: auc_or_nan(g["label"], g["p"]) for v, g in got.items()},
            "train_seconds": {v: round(g["seconds"], 1) for v, g in got.items()}}


def default_text_variant() -> str:
    """The variant that is what `content: {embed_text: true}` gives with the library's defaults: "aligned" where
    `content.align` defaults to cooccurrence, else "text" (the text as embedded)."""
    from mistrec.data.config import ContentConfig

    return "aligned" if ContentConfig().align == "cooccurrence" else "text"


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The issue's keys, means over seeds: `cold_item_auc_text` and `cross_scene_gain_content` are the default text
    path's (`default_text_variant`, named in `text_variant`); `..._embedded` and `..._aligned` each text variant's
    where it was run."""
    default = doc["text_variant"] = default_text_variant()
    names = {"text": "embedded", "aligned": "aligned"}
    if doc["cold_item"]:
        by = doc["cold_item_auc_by_variant"] = {v: float(np.mean([r["auc"][v] for r in doc["cold_item"]]))
                                                for v in doc["cold_item"][0]["auc"]}
        doc["cold_item_auc_id_only"] = by["id"]
        doc.update({f"cold_item_auc_text_{names[v]}": by[v] for v in names if v in by})
        if default in by:
            doc["cold_item_auc_text"] = by[default]
    if doc["cross_scene"]:
        rows = doc["cross_scene"]
        doc["cross_scene_auc_by_variant"] = {v: float(np.mean([r["auc"][v] for r in rows])) for v in rows[0]["auc"]}
        gains = {v: float(np.mean([r["auc"][v] - r["auc"]["id"] for r in rows])) for v in names if v in rows[0]["auc"]}
        doc.update({f"cross_scene_gain_content_{names[v]}": g for v, g in gains.items()})
        if default in gains:
            doc["cross_scene_gain_content"] = gains[default]
    return doc


if __name__ == "__main__":
    raise SystemExit(main())
