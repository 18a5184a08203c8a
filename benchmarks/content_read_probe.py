"""How much of the planted item vectors the descriptions carry, and how much of it mist's item vectors hold.

    python benchmarks/content_read_probe.py --json benchmarks/results/content_read_probe.json \
        benchmarks/work/cold-start-s22/cold-item-transfer-seed0 [...]

Reads `benchmarks/cold_start.py` work directories (a seed's raw data, its prepared variants and trained runs) and
reports, per directory, the R^2 with which the planted vectors of the items held out of training are predicted:

- from the descriptions by a ridge regression fitted on the trained items' planted vectors: on word counts, on
  their square roots, on the generator's word lists' signed square-root counts (knowing the lists: the inverse of
  how descriptions are drawn), and by scikit-learn's MLP (64 units) on word counts;
- from mist's item vectors ("id" and "text" runs): its id embeddings (over the trained items, 5-fold, since a
  held-out item's id embedding is the unknown one) and its projection of the content W x + b (held-out items).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json
from cold_start import DECODE_ALPHAS, decode, planted_items


def _r2(truth: np.ndarray, pred: np.ndarray, ref: np.ndarray) -> float:
    return float(1.0 - ((truth - pred) ** 2).sum() / ((truth - ref.mean(axis=0)) ** 2).sum())


def one(base: Path) -> dict[str, Any]:
    import torch
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict
    from sklearn.neural_network import MLPRegressor

    from mistrec.data.prepared import PreparedDataset
    from mistrec.data.synthetic import WORDS
    from mistrec.models.layers import FeatureEmbedding
    from mistrec.train.artifact import load_run

    items, planted, fit = planted_items(base / "raw", base / "prepared-id")
    vocab = PreparedDataset.load(base / "prepared-id").vocab["item_id"]
    words = CountVectorizer()
    counts = words.fit_transform(items["description"].to_list()).toarray().astype(float)
    lists = np.zeros((len(items), planted.shape[1]))
    for j in range(planted.shape[1]):
        for sign, column in ((1.0, 2 * j), (-1.0, 2 * j + 1)):
            for w in WORDS[column]:
                if w in words.vocabulary_:
                    lists[:, j] += sign * counts[:, words.vocabulary_[w]]
    reads = {"ridge_counts": counts, "ridge_sqrt_counts": np.sqrt(counts),
             "ridge_word_lists_signed_sqrt": np.sign(lists) * np.sqrt(np.abs(lists))}
    out: dict[str, Any] = {"dir": str(base), "held_out_items": int((~fit).sum()), "trained_items": int(fit.sum())}
    for name, x in reads.items():  # ridge_counts is what the "decoded" variant gives mist
        out[f"text_{name}_r2"] = _r2(planted[~fit], decode(x, planted, fit)[~fit], planted[fit])
    mlp = MLPRegressor(hidden_layer_sizes=(64,), alpha=1.0, max_iter=2000, random_state=0)
    out["text_mlp_counts_r2"] = _r2(planted[~fit], mlp.fit(counts[fit], planted[fit]).predict(counts[~fit]),
                                    planted[fit])
    index = dict(zip(vocab["item_id"].to_list(), vocab["index"].to_list(), strict=True))
    key = np.array([index[n] for n in items["item_id"].to_list()])
    for variant in ("id", "text"):
        run = base / f"run-{variant}"
        if not (run / "metrics.json").is_file():
            continue
        model, enc, _ = load_run(run)
        emb = next(m for m in model.modules() if isinstance(m, FeatureEmbedding))
        with torch.no_grad():
            ids = emb.item.weight[torch.as_tensor(np.asarray(enc.item_map_)[key])].numpy()
            trained_pred = cross_val_predict(RidgeCV(alphas=DECODE_ALPHAS), ids[fit], planted[fit], cv=5)
            out[f"mist_{variant}_id_embedding_r2_trained_5fold"] = _r2(planted[fit], trained_pred, planted[fit])
            if emb.content_dim:
                c = emb.content_proj(emb.item_content[torch.as_tensor(key)]).numpy()
                pred = RidgeCV(alphas=DECODE_ALPHAS).fit(c[fit], planted[fit]).predict(c[~fit])
                out[f"mist_{variant}_content_projection_r2_held_out"] = _r2(planted[~fit], pred, planted[fit])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    rows = []
    for d in args.dirs:
        rows.append(one(Path(d)))
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    write_json(args.json, {"rows": rows, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
