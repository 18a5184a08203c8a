"""Full-catalogue ranking evaluation: every query is scored against every item of its scenario's catalogue.

A query is a (user, scenario) pair with at least one positive in the evaluated split. Its time is the time of
the earliest of those positives, and its history is the user's last L training events strictly before that
time (so no history event follows any of the positives it is asked to find). Its relevant items are those
positives.

- The catalogue of a scenario: every item that occurs in it in the prepared data (any split). Items without
  a training row are part of it: they are the cold items a model must still rank.
- Items the user met before in that scenario (training rows, and validation rows when the test split is
  evaluated) are not candidates, unless they are among the query's positives.
- Ties are broken against the relevant item: its rank is 1 + the candidates scored higher + the
  non-relevant candidates scored the same. A model that scores many items alike earns no credit for it.
- `sampled_negatives=N` ranks each query's positives against N sampled non-relevant candidates instead
  (the protocol of some papers); every output then says so in `ranking_candidates`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from mistrec import metrics
from mistrec.batch import Batch
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Model

__all__ = ["RankingResult", "rank_full_catalogue", "score_in_blocks"]


@dataclass
class RankingResult:
    metrics: dict[str, Any]  # {"overall": {...}, "by_scenario": {name: {...}}}
    top_items: dict[str, np.ndarray]  # scenario -> (queries, max K) dataset item indices
    seconds: float


def rank_full_catalogue(
    model: Model, enc: FeatureEncoder, ds: PreparedDataset, split: str = "test", ks: tuple[int, ...] = (10, 20),
    sampled_negatives: int | None = None, max_rows_per_chunk: int = 32768, seed: int = 0,
    quiet: bool = True,
) -> RankingResult:
    """HR@K, NDCG@K, Recall@K, MRR, coverage@K, intra-list diversity@K and novelty@K, overall and per scenario.

    `max_rows_per_chunk` bounds the query x candidate rows scored at once (memory).
    """
    if not ks or min(ks) < 1:
        raise ConfigError(f"Ranking cut-offs must be ints >= 1. Got {ks!r}.")
    if sampled_negatives is not None and sampled_negatives < 1:
        raise ConfigError(f"sampled_negatives must be >= 1 (or None for the full catalogue). Got {sampled_negatives}.")
    start_time = time.perf_counter()
    model.eval()
    k_max = max(ks)
    df = ds.interactions
    if "sampled" in df.columns:
        df = df.filter(~pl.col("sampled"))  # a sampled negative is no interaction the user had
    seen_splits = ["train"] if split == "valid" else ["train", "valid"]
    names = tuple(ds.scenarios)
    candidates_label = "full catalogue" if sampled_negatives is None else f"{sampled_negatives} sampled negatives"
    popularity = _popularity(df.filter(pl.col("split") == "train"), enc.spec_.n_items)
    vectors, vector_fields = _item_vectors(enc)
    rng = np.random.default_rng(seed)
    by: dict[str, Any] = {}
    tops: dict[str, np.ndarray] = {}
    per_query_all: list[dict[str, np.ndarray]] = []
    all_top: list[np.ndarray] = []
    catalogue_union: set[int] = set()
    for s_idx, s_name in enumerate(names, start=1):
        scen = df.filter(pl.col("scenario") == s_idx)
        catalogue = np.unique(scen["item"].to_numpy())
        pos = scen.filter((pl.col("split") == split) & (pl.col("label") > 0)).select("user", "item", "timestamp")
        if pos.height == 0 or catalogue.size == 0:
            continue
        catalogue_union.update(catalogue.tolist())
        q = pos.group_by("user").agg(pl.col("timestamp").min().alias("t")).sort("user")
        users, times = q["user"].to_numpy().astype(np.int64), q["t"].to_numpy()
        pos_q = np.searchsorted(users, pos["user"].to_numpy())  # users are sorted and unique
        pos_c = np.searchsorted(catalogue, pos["item"].to_numpy())
        seen = scen.filter(pl.col("split").is_in(seen_splits) & pl.col("user").is_in(users))
        seen_q = np.searchsorted(users, seen["user"].to_numpy())
        seen_c = np.searchsorted(catalogue, seen["item"].to_numpy())
        hist_start, hist_end = ds.events.windows(users, times, enc.spec_.history_length)
        queries = EncodedRows(user=users, item=np.zeros_like(users), scenario=np.full(len(users), s_idx),
                              label=np.zeros(len(users), np.float32), timestamp=times, hist_start=hist_start,
                              hist_end=hist_end, conversion=np.full(len(users), np.nan, np.float32),
                              events=ds.events)
        items = enc.item_batch(catalogue)
        n_cand = catalogue.size
        chunk = max(1, max_rows_per_chunk // n_cand)
        ranks = np.empty(len(pos_q), dtype=np.int64)
        top = np.empty((len(users), min(k_max, n_cand)), dtype=np.int64)
        bar = tqdm(range(0, len(users), chunk), desc=f"ranking {s_name}", disable=True if quiet else None,
                   leave=False)
        order = np.argsort(pos_q, kind="stable")
        pos_bounds = np.searchsorted(pos_q[order], np.arange(0, len(users) + chunk, chunk))
        seen_order = np.argsort(seen_q, kind="stable")
        seen_bounds = np.searchsorted(seen_q[seen_order], np.arange(0, len(users) + chunk, chunk))
        query_batch = enc.batch(queries, np.arange(len(users)), history=model.reads_history,
                                history_side=model.reads_history_side)
        for j, lo in enumerate(bar):
            hi = min(lo + chunk, len(users))
            scores = score_in_blocks(model, query_batch.subset(torch.arange(lo, hi)), items, max_rows_per_chunk)
            p_sel = order[pos_bounds[j]:pos_bounds[j + 1]]
            s_sel = seen_order[seen_bounds[j]:seen_bounds[j + 1]]
            is_pos = torch.zeros(scores.shape, dtype=torch.bool)
            is_pos[pos_q[p_sel] - lo, pos_c[p_sel]] = True
            excluded = torch.zeros(scores.shape, dtype=torch.bool)
            excluded[seen_q[s_sel] - lo, seen_c[s_sel]] = True
            excluded &= ~is_pos
            if sampled_negatives is not None:  # keep positives and N random other candidates per query
                keys = torch.from_numpy(rng.random(scores.shape)).masked_fill(is_pos | excluded, 2.0)
                keep = torch.zeros_like(is_pos)
                keep.scatter_(1, keys.topk(min(sampled_negatives, n_cand), dim=1, largest=False).indices, True)
                excluded |= ~(keep | is_pos)
            scores = scores.masked_fill(excluded, float("-inf"))
            r_local = torch.from_numpy(pos_q[p_sel] - lo)
            s_pos = scores[r_local, torch.from_numpy(pos_c[p_sel])].unsqueeze(1)
            rows = scores.index_select(0, r_local)
            higher = (rows > s_pos).sum(1)
            tied = ((rows == s_pos) & ~is_pos.index_select(0, r_local)).sum(1)
            ranks[p_sel] = (1 + higher + tied).numpy()
            top[lo:hi] = catalogue[scores.topk(top.shape[1], dim=1).indices.numpy()]
        bar.close()
        per_query: dict[str, np.ndarray] = {}
        for k in ks:
            at_k = metrics.ranking_from_ranks(ranks, pos_q, len(users), k)
            per_query["mrr"] = at_k.pop("mrr")  # no cut-off: the same for every k
            per_query.update({f"{name}@{k}": v for name, v in at_k.items()})
        entry: dict[str, Any] = {name: float(np.mean(v)) for name, v in per_query.items()}
        entry.update(_beyond_accuracy(top, ks, catalogue.size, popularity, vectors))
        entry.update({"n_queries": len(users), "n_relevant": len(pos_q), "catalogue": int(n_cand),
                      "ranking_candidates": candidates_label})
        by[s_name] = entry
        tops[s_name] = top
        per_query_all.append(per_query)
        all_top.append(top)
    overall: dict[str, Any] = {}
    if per_query_all:
        overall = {name: float(np.mean(np.concatenate([pq[name] for pq in per_query_all])))
                   for name in per_query_all[0]}
        width = min(t.shape[1] for t in all_top)
        overall.update(_beyond_accuracy(np.concatenate([t[:, :width] for t in all_top]), ks, len(catalogue_union),
                                        popularity, vectors))
        overall.update({"n_queries": int(sum(v["n_queries"] for v in by.values())),
                        "n_relevant": int(sum(v["n_relevant"] for v in by.values())),
                        "catalogue": len(catalogue_union), "ranking_candidates": candidates_label})
    notes = {"diversity_features": vector_fields or "none: no categorical item features, diversity not computed"}
    return RankingResult(metrics={"overall": overall, "by_scenario": by, "notes": notes}, top_items=tops,
                         seconds=time.perf_counter() - start_time)


def score_in_blocks(model: Model, queries: Batch, items: Batch, max_rows: int = 32768) -> torch.Tensor:
    """(U, C) logits, the candidates scored in blocks of at most `max_rows` query x item rows, so that a large
    catalogue never builds one huge (U, C, L, H) attention block."""
    per_block = max(1, max_rows // max(len(queries), 1))
    with torch.no_grad():
        return torch.cat([model.score_candidates(queries, items.subset(slice(a, a + per_block))).float()
                          for a in range(0, len(items), per_block)], dim=1)


def _beyond_accuracy(top: np.ndarray, ks: tuple[int, ...], catalogue: int, popularity: np.ndarray,
                     vectors: np.ndarray | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        t = top[:, :k]
        out[f"coverage@{k}"] = metrics.coverage(t, catalogue)
        out[f"novelty@{k}"] = metrics.novelty(t, popularity)
        if vectors is not None:
            out[f"diversity@{k}"] = metrics.intra_list_diversity(t, vectors)
    return out


def _popularity(train: pl.DataFrame, n_items: int) -> np.ndarray:
    """Share of training users who interacted with each item; 1 / (users + 1) for items none did."""
    pairs = train.select("user", "item").unique()
    n_users = max(train["user"].n_unique(), 1)
    counts = np.bincount(pairs["item"].to_numpy(), minlength=n_items).astype(np.float64)
    return np.where(counts > 0, counts / n_users, 1.0 / (n_users + 1))


def _item_vectors(enc: FeatureEncoder, max_width: int = 4096) -> tuple[np.ndarray | None, list[str]]:
    """One multi-hot row per item over its categorical and multi-valued features (the value 0, unknown, left
    out), for intra-list distance. Features wider than `max_width` values are left out (named in the notes)."""
    parts, used = [], []
    names = enc.feature_names_
    n = enc.item_cat_.shape[0]
    for j, (name, card) in enumerate(zip(names["item_cat"], enc.spec_.item_cat, strict=True)):
        if card <= max_width:
            m = np.zeros((n, card), dtype=np.float32)
            m[np.arange(n), enc.item_cat_[:, j]] = 1.0
            parts.append(m[:, 1:])
            used.append(name)
    for j, (name, card) in enumerate(zip(names["item_seq"], enc.spec_.item_seq, strict=True)):
        if card <= max_width:
            m = np.zeros((n, card), dtype=np.float32)
            rows = np.repeat(np.arange(n), enc.item_seq_.shape[2])
            m[rows, enc.item_seq_[:, j].ravel()] = 1.0
            parts.append(m[:, 1:])
            used.append(name)
    if not parts:
        return None, []
    return np.concatenate(parts, axis=1), used
