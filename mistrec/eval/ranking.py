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
- A model that orders a ranking by more than its click logit (models/base.OrdersRanking: mist's `rank_exposure`)
  is ranked by those scores.
- `sampled_negatives=N` ranks each query's positives against N sampled non-relevant candidates instead
  (the protocol of some papers); every output then says so in `ranking_candidates`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from mistrec import metrics
from mistrec.batch import Batch
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.eval.activity import ActivityCounts, group_index, ranking_by_activity
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import (
    RANKING_REASON_TEXT,
    ChoosesExposure,
    ChoosesOnRanking,
    GuardsOnRanking,
    Model,
    RankingOption,
    ranking_order,
    ranking_reasons,
)

__all__ = ["SCREEN_CANDIDATES", "RankingResult", "choose_exposure", "choose_on_ranking", "rank_full_catalogue",
           "ranking_choices"]

# choose_on_ranking: the candidates each block of queries is scored against first (a scenario's most-taken items)
SCREEN_CANDIDATES = 256


@dataclass
class RankingResult:
    """Full-catalogue (or sampled) ranking of one split: the metrics by scenario and activity group, each
    scenario's top items, the time taken, and per-query arrays for paired tests over users."""

    metrics: dict[str, Any]  # {"overall": {...}, "by_scenario": {name: {...}}, "by_activity": {...}, "sampled": ...}
    top_items: dict[str, np.ndarray]  # scenario -> (queries, max K) dataset item indices
    seconds: float
    # candidate set ("full catalogue" or "N sampled negatives") -> scenario -> per-query arrays: "user", "group"
    # (activity group index, -1 without counts) and every per-query metric, for paired tests over users
    per_query: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)


def choose_on_ranking(model: ChoosesOnRanking, enc: FeatureEncoder, ds: PreparedDataset, quiet: bool = True,
                      screen: int | None = SCREEN_CANDIDATES) -> dict[str, Any]:
    """A model's after-training choices made on the validation queries' full-catalogue ranking (ChoosesOnRanking):
    at most the model's `ranking_queries` queries a scenario (the seeded sample `rank_full_catalogue` ranks with
    that `max_queries`), each scored once and ranked under every option (the model's `ranking_scorer`), each
    query's NDCG@10, user and activity group (0: no training event in the scenario) handed to the model to settle.
    The model is left in evaluation mode. Returns what it chose; {} without options or validation queries.

    NDCG@10 reads a positive's rank only where it is at most 10, so each block of queries is first scored against
    its positives and the scenario's `screen` most-taken training items alone: a query whose every positive already
    has 10 candidates at or above it there (as `_Chunk.ranks` counts them) under every option has NDCG@10 0 under
    every option, whatever the rest of the catalogue scores, and is not scored further; the others are scored
    against the whole catalogue. The figures are those of ranking every query in full (`screen=None`; tested)."""
    options = model.ranking_options()
    if not options or not (ds.interactions["split"] == "valid").any():
        return {}
    cast(Model, model).eval()
    activity = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)
    ndcg: dict[RankingOption, dict[int, dict[str, np.ndarray]]] = {option: {} for option in options}
    df = _interactions(ds)
    for sq in _scenario_queries(cast(Model, model), enc, ds, "valid", max_queries=model.ranking_queries, df=df):
        ranks = np.empty((len(options), len(sq.pos_q)), dtype=np.int64)
        scorer = model.ranking_scorer(sq.items)
        first = None if screen is None else torch.from_numpy(_most_taken(df, sq, screen))
        for ch in tqdm(sq.chunks(), total=sq.n_chunks, desc=f"choosing on the ranking of {sq.name}",
                       disable=True if quiet else None, leave=False):
            queries, rest = sq.batch.subset(torch.arange(ch.lo, ch.hi)), ch
            if first is not None:
                columns = torch.unique(torch.cat([first, ch.pos_c]))  # sorted; every positive among them
                part = ch.select(columns=columns)
                beyond = torch.ones(len(ch.p_sel), dtype=torch.bool)  # each positive: below the top 10 everywhere
                for scores in scorer(queries, columns):
                    beyond &= part.above(scores.masked_fill(part.excluded, float("-inf"))) >= 10
                ranks[:, ch.p_sel[beyond.numpy()]] = 11  # NDCG@10 0; the rank itself is not needed
                open_rows = torch.unique(part.r_local[~beyond])
                if not len(open_rows):
                    continue
                queries, rest = queries.subset(open_rows), ch.select(rows=open_rows)
            for v, scores in enumerate(scorer(queries, None)):
                ranks[v, rest.p_sel] = rest.ranks(scores.masked_fill(rest.excluded, float("-inf")))
        group = group_index(activity.of(sq.users, np.full(len(sq.users), sq.index)))
        for v, option in enumerate(options):
            value = metrics.ranking_from_ranks(ranks[v], sq.pos_q, len(sq.users), 10)["ndcg"]
            ndcg[option][sq.index] = {"user": sq.users, "group": group, "ndcg@10": value}
    return model.settle_ranking(ndcg, enc.spec_.scenario_names)


def choose_exposure(model: ChoosesExposure, enc: FeatureEncoder, ds: PreparedDataset, quiet: bool = True
                    ) -> dict[str, Any]:
    """mist's `rank_exposure: auto` after training: per scenario, whether its ranking adds the exposure (log P(shown),
    models/base.OrdersRanking) or orders by the click logit alone, whichever ranks the validation queries higher
    in NDCG@10 (at most `ranking_queries` a scenario, the seeded sample `rank_full_catalogue` ranks with that
    `max_queries`; a tie keeps the exposure). The exposure is the item's share of the scenario's training rows: it
    helps where what users are shown follows what is popular (MovieLens' ratings: NDCG@10 on the family shelf 0.16
    -> 0.33) and hurts where it follows each user's own interest (the synthetic platforms choose the shown item by
    the user's interest: 0.43 -> 0.28 in home_feed; docs/benchmarks.md, "rank_exposure chosen per scenario").
    Each block of queries is scored once and ranked both ways. A scenario with no validation query keeps it. Sets
    `model.exposed`; returns what it chose, {} with nothing to choose or no validation rows."""
    exposed = model.exposed
    if exposed is None or not (ds.interactions["split"] == "valid").any():
        return {}
    cast(Model, model).eval()
    exposed.fill_(True)
    # each block of queries scored once and ranked both ways: by the logit, and by the ranking scores with the
    # exposure on (every scenario's, as `exposed` now stands)
    ndcg: dict[bool, dict[str, float]] = {True: {}, False: {}}
    queries_in: dict[str, int] = {}
    for sq in _scenario_queries(cast(Model, model), enc, ds, "valid", max_queries=model.ranking_queries,
                                df=_interactions(ds)):
        ranks = {on: np.empty(len(sq.pos_q), dtype=np.int64) for on in (True, False)}
        scorer = cast(Model, model).candidate_scorer(sq.items)
        for ch in tqdm(sq.chunks(), total=sq.n_chunks, desc=f"choosing the order of {sq.name}",
                       disable=True if quiet else None, leave=False):
            queries = sq.batch.subset(torch.arange(ch.lo, ch.hi))
            logits = scorer(queries)
            ordered = ranking_order(model, logits, queries.scenario, sq.items.item, queries)
            for on, scores in ((False, logits), (True, ordered)):
                ranks[on][ch.p_sel] = ch.ranks(scores.masked_fill(ch.excluded, float("-inf")))
        for on, r in ranks.items():
            ndcg[on][sq.name] = float(np.mean(metrics.ranking_from_ranks(r, sq.pos_q, len(sq.users), 10)["ndcg"]))
        queries_in[sq.name] = len(sq.users)
    record: dict[str, Any] = {}
    for s, name in enumerate(enc.spec_.scenario_names, start=1):
        if name not in queries_in:
            continue  # no validation query: the exposure stays
        keep = ndcg[True][name] >= ndcg[False][name]
        exposed[s] = keep
        record[name] = {"valid_ndcg@10_exposure": ndcg[True][name], "valid_ndcg@10_logit": ndcg[False][name],
                        "queries": queries_in[name], "chosen": "exposure" if keep else "logit"}
    return {"rank_exposure": record}


def ranking_choices(model: Model, enc: FeatureEncoder, ds: PreparedDataset, quiet: bool = True,
                    stream: bool = False) -> dict[str, Any]:
    """A trained model's choices made on the validation queries' ranking, in the order `mistrec train` makes them
    (eval/fit.py; benchmarks/rechoose.py makes them again the same way): mist's `rank_exposure: auto`
    (choose_exposure), then `co_scale: auto` (choose_on_ranking), ranked in the order chosen first; a model that
    guards an earlier choice on the ranking (GuardsOnRanking: mist's `prior_tilt: auto`) has the second made in each
    of its states and keeps, per scenario, the state that ranks better. {} for a model with neither. They rank the
    validation rows in memory: with `stream` (training that read the data a shard at a time) none is made, the model
    stays as trained (the exposure in every scenario, co_scale 1, a guarded choice in its trained state: prior_tilt
    0), and stderr says so."""
    choosers: list[Callable[[Any, FeatureEncoder, PreparedDataset, bool], dict[str, Any]]] = []
    if isinstance(model, ChoosesExposure) and model.exposed is not None:
        choosers.append(choose_exposure)
    if isinstance(model, ChoosesOnRanking) and model.ranking_options():
        choosers.append(choose_on_ranking)
    guard = cast(GuardsOnRanking, model) if isinstance(model, GuardsOnRanking) else None
    if stream and choosers:
        states = guard.guard_states() if guard is not None else ()
        if guard is not None and states:  # a choice the ranking cannot weigh goes back to its trained state
            guard.use_guard_state(states[-1])
        print(f"{model.name}'s choices on the validation users' ranking (mist's rank_exposure and co_scale: auto) "
              "need the rows in memory: with stream: true they stay as trained (the exposure in every scenario, "
              "co_scale 1, prior_tilt 0).", file=sys.stderr)
        return {}
    chosen: dict[str, Any] = {}
    for choose in choosers:
        states = guard.guard_states() if guard is not None and choose is choose_on_ranking else ()
        if guard is None or not states:
            chosen.update(choose(model, enc, ds, quiet))
            continue
        records = {}  # GuardsOnRanking: the ranking choice made in each state, the model keeping per scenario the
        for state in states:  # state that ranks its validation queries better (mist's `prior_tilt`)
            guard.use_guard_state(state)
            records[state] = choose(model, enc, ds, quiet)
        chosen.update(guard.settle_guard(records, enc.spec_.scenario_names))
    return chosen


def _most_taken(df: pl.DataFrame, sq: _ScenarioQueries, n: int) -> np.ndarray:
    """The catalogue columns of the scenario's `n` items with the most training positives (the earlier column on
    a tie): the candidates most likely to outrank a query's positives, screened first."""
    train = df.filter((pl.col("scenario") == sq.index) & (pl.col("split") == "train") & (pl.col("label") > 0))
    counts = np.zeros(sq.catalogue.size, dtype=np.int64)
    np.add.at(counts, np.searchsorted(sq.catalogue, train["item"].to_numpy()), 1)
    return np.sort(np.argsort(-counts, kind="stable")[:n])


@dataclass
class _Chunk:
    """One block of a scenario's queries (rows lo..hi of its batch): their positives (`p_sel`, indices into the
    scenario's flat positives), which candidates are positives and which are excluded (met before, not
    positives), as (rows, candidates) masks. `select` cuts it to some of its rows or candidates."""

    lo: int
    hi: int
    p_sel: np.ndarray
    pos_c: torch.Tensor  # (positives,) each positive's candidate column
    r_local: torch.Tensor  # (positives,) each positive's row in the block
    is_pos: torch.Tensor
    excluded: torch.Tensor

    def above(self, masked: torch.Tensor) -> torch.Tensor:
        """For each positive, its query's candidates scored `masked` (-inf where a candidate is not one) above it,
        and the non-positives tied with it (ties count against the positive)."""
        s_pos = masked[self.r_local, self.pos_c].unsqueeze(1)
        rows = masked.index_select(0, self.r_local)
        higher = (rows > s_pos).sum(1)
        tied = ((rows == s_pos) & ~self.is_pos.index_select(0, self.r_local)).sum(1)
        return higher + tied

    def ranks(self, masked: torch.Tensor) -> np.ndarray:
        """The 1-based rank of each positive among its query's candidates (`above` + 1)."""
        return (1 + self.above(masked)).numpy()

    def select(self, rows: torch.Tensor | None = None, columns: torch.Tensor | None = None) -> _Chunk:
        """The same block cut to the rows `rows` (sorted; only their positives kept) or to the candidates
        `columns` (sorted, holding every positive's column): scores are then (rows, columns) matrices. `lo` and
        `hi` stay those of the whole block."""
        out = _Chunk(self.lo, self.hi, self.p_sel, self.pos_c, self.r_local, self.is_pos, self.excluded)
        if rows is not None:
            keep = torch.isin(self.r_local, rows)
            out.p_sel, out.pos_c = self.p_sel[keep.numpy()], self.pos_c[keep]
            out.r_local = torch.searchsorted(rows, self.r_local[keep])
            out.is_pos, out.excluded = self.is_pos.index_select(0, rows), self.excluded.index_select(0, rows)
        if columns is not None:
            at = torch.searchsorted(columns, out.pos_c).clamp_max(len(columns) - 1)
            assert bool((columns[at] == out.pos_c).all()), "columns must hold every positive's"
            out.pos_c = at
            out.is_pos, out.excluded = out.is_pos.index_select(1, columns), out.excluded.index_select(1, columns)
        return out


@dataclass
class _ScenarioQueries:
    """One scenario's queries of a split, ready to be scored against its catalogue a block at a time."""

    index: int
    name: str
    catalogue: np.ndarray  # dataset item indices, sorted
    users: np.ndarray  # the queries' users, sorted
    n_total: int  # the scenario's queries before `max_queries`' sample
    pos_q: np.ndarray  # each positive's query
    pos_c: np.ndarray  # each positive's column in the catalogue
    seen_q: np.ndarray
    seen_c: np.ndarray
    batch: Batch  # the queries, their histories read as the model reads them
    items: Batch  # the catalogue
    chunk: int  # queries a block

    @property
    def n_chunks(self) -> int:
        return -(-len(self.users) // self.chunk)

    def chunks(self) -> Iterator[_Chunk]:
        n, chunk = len(self.users), self.chunk
        order = np.argsort(self.pos_q, kind="stable")
        pos_bounds = np.searchsorted(self.pos_q[order], np.arange(0, n + chunk, chunk))
        seen_order = np.argsort(self.seen_q, kind="stable")
        seen_bounds = np.searchsorted(self.seen_q[seen_order], np.arange(0, n + chunk, chunk))
        for j, lo in enumerate(range(0, n, chunk)):
            hi = min(lo + chunk, n)
            p_sel = order[pos_bounds[j]:pos_bounds[j + 1]]
            s_sel = seen_order[seen_bounds[j]:seen_bounds[j + 1]]
            shape = (hi - lo, self.catalogue.size)
            is_pos = torch.zeros(shape, dtype=torch.bool)
            is_pos[self.pos_q[p_sel] - lo, self.pos_c[p_sel]] = True
            excluded = torch.zeros(shape, dtype=torch.bool)
            excluded[self.seen_q[s_sel] - lo, self.seen_c[s_sel]] = True
            excluded &= ~is_pos
            yield _Chunk(lo, hi, p_sel, torch.from_numpy(self.pos_c[p_sel]), torch.from_numpy(self.pos_q[p_sel] - lo),
                         is_pos, excluded)


def _scenario_queries(model: Model, enc: FeatureEncoder, ds: PreparedDataset, split: str,
                      max_rows_per_chunk: int = 32768, max_queries: int | None = None, seed: int = 0,
                      df: pl.DataFrame | None = None) -> Iterator[_ScenarioQueries]:
    """Each scenario's queries of `split` (those with a positive there and a catalogue), in the scenarios' order:
    with `max_queries` a sample of at most that many a scenario, drawn from its own seeded stream (the same
    queries for every model on the same data, whatever else is drawn); `df`: the interactions without sampled
    negatives (computed when not given)."""
    if df is None:
        df = _interactions(ds)
    seen_splits = ["train"] if split == "valid" else ["train", "valid"]
    query_rng = np.random.default_rng([seed, 1])  # its own stream: the negatives do not depend on the sample
    for s_idx, s_name in enumerate(ds.scenarios, start=1):
        scen = df.filter(pl.col("scenario") == s_idx)
        catalogue = np.unique(scen["item"].to_numpy())
        pos = scen.filter((pl.col("split") == split) & (pl.col("label") > 0)).select("user", "item", "timestamp")
        if pos.height == 0 or catalogue.size == 0:
            continue
        q = pos.group_by("user").agg(pl.col("timestamp").min().alias("t")).sort("user")
        n_total = q.height
        if max_queries is not None and n_total > max_queries:
            q = q[np.sort(query_rng.choice(n_total, size=max_queries, replace=False))]
            pos = pos.filter(pl.col("user").is_in(q["user"].to_numpy()))
        users, times = q["user"].to_numpy().astype(np.int64), q["t"].to_numpy()
        seen = scen.filter(pl.col("split").is_in(seen_splits) & pl.col("user").is_in(users))
        hist_start, hist_end = ds.events.windows(users, times, enc.spec_.history_length)
        queries = EncodedRows(user=users, item=np.zeros_like(users), scenario=np.full(len(users), s_idx),
                              label=np.zeros(len(users), np.float32), timestamp=times, hist_start=hist_start,
                              hist_end=hist_end, conversion=np.full(len(users), np.nan, np.float32),
                              events=ds.events)
        yield _ScenarioQueries(
            index=s_idx, name=s_name, catalogue=catalogue, users=users, n_total=n_total,
            pos_q=np.searchsorted(users, pos["user"].to_numpy()),  # users are sorted and unique
            pos_c=np.searchsorted(catalogue, pos["item"].to_numpy()),
            seen_q=np.searchsorted(users, seen["user"].to_numpy()),
            seen_c=np.searchsorted(catalogue, seen["item"].to_numpy()),
            batch=enc.batch(queries, np.arange(len(users)), history=model.reads_history,
                            history_side=model.reads_history_side),
            items=enc.item_batch(catalogue), chunk=max(1, max_rows_per_chunk // catalogue.size))


def _interactions(ds: PreparedDataset) -> pl.DataFrame:
    """The prepared interactions without the sampled negatives (a sampled negative is no interaction the user
    had)."""
    df = ds.interactions
    return df.filter(~pl.col("sampled")) if "sampled" in df.columns else df


@dataclass
class _View:
    """One candidate set the same scores are ranked in: the full catalogue, or N sampled negatives per query."""

    label: str
    sampled: int | None
    ranks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def rank_full_catalogue(
    model: Model, enc: FeatureEncoder, ds: PreparedDataset, split: str = "test", ks: tuple[int, ...] = (10, 20),
    sampled_negatives: int | None = None, max_rows_per_chunk: int = 32768, seed: int = 0,
    quiet: bool = True, activity: ActivityCounts | None = None, also_sampled: int | None = None,
    max_queries: int | None = None,
) -> RankingResult:
    """HR@K, NDCG@K, Recall@K, MRR, coverage@K, intra-list diversity@K and novelty@K, overall and per scenario.

    `max_rows_per_chunk` bounds the query x candidate rows scored at once (memory). With `activity` the per-query
    metrics are also averaged per activity group (`by_activity`). `also_sampled=N` ranks the same scores a second
    time against N sampled negatives per query (the CDR papers' 1 + N lists) under `metrics["sampled"]`: one
    scoring pass for both. `max_queries` ranks a seeded sample of at most that many queries per scenario, the
    same for every model on the same data (`n_queries_total` says how many there were).
    """
    if not ks or min(ks) < 1:
        raise ConfigError(f"Ranking cut-offs must be ints >= 1. Got {ks!r}.")
    for name, n in (("sampled_negatives", sampled_negatives), ("also_sampled", also_sampled),
                    ("max_queries", max_queries)):
        if n is not None and n < 1:
            raise ConfigError(f"{name} must be >= 1 (or None). Got {n}.")
    if sampled_negatives is not None and also_sampled is not None:
        raise ConfigError("also_sampled adds sampled lists to the full-catalogue ranking: not with sampled_negatives.")
    start_time = time.perf_counter()
    model.eval()
    k_max = max(ks)
    df = _interactions(ds)
    names = tuple(ds.scenarios)
    asked = sampled_negatives is not None or also_sampled is not None
    smallest = df.group_by("scenario").agg(pl.col("item").n_unique().alias("n")).sort("n").row(0, named=True) \
        if asked and df.height else None
    for flag, n in (("sampled_negatives", sampled_negatives), ("also_sampled", also_sampled)):
        if n is not None and smallest is not None and n >= smallest["n"]:
            raise ConfigError(f"{flag} {n} is not below the {smallest['n']:,} items of the catalogue of scenario "
                              f"{names[smallest['scenario'] - 1]}: such lists would be the whole catalogue, not "
                              "a sample. Rank against the full catalogue (leave the option out), or sample fewer.")
    views = [_View("full catalogue" if sampled_negatives is None else f"{sampled_negatives} sampled negatives",
                   sampled_negatives)]
    if also_sampled is not None:
        views.append(_View(f"{also_sampled} sampled negatives", also_sampled))
    popularity = _popularity(df.filter(pl.col("split") == "train"), enc.spec_.n_items)
    vectors, vector_fields = _item_vectors(enc)
    rng = np.random.default_rng(seed)
    by: list[dict[str, Any]] = [{} for _ in views]
    per_query_all: list[dict[str, dict[str, np.ndarray]]] = [{} for _ in views]
    tops: dict[str, np.ndarray] = {}
    catalogue_union: set[int] = set()
    reordered: dict[str, set[str]] = {}  # per scenario, why the model ordered its lists by more than the logit
    for sq in _scenario_queries(model, enc, ds, split, max_rows_per_chunk, max_queries, seed, df):
        s_idx, s_name, users, catalogue, pos_q = sq.index, sq.name, sq.users, sq.catalogue, sq.pos_q
        catalogue_union.update(catalogue.tolist())
        n_cand = catalogue.size
        for v in views:
            v.ranks = np.empty(len(pos_q), dtype=np.int64)
        top = np.empty((len(users), min(k_max, n_cand)), dtype=np.int64)
        scorer = model.candidate_scorer(sq.items, max_rows_per_chunk)  # the candidates' side prepared once
        for ch in tqdm(sq.chunks(), total=sq.n_chunks, desc=f"ranking {s_name}", disable=True if quiet else None,
                       leave=False):
            queries = sq.batch.subset(torch.arange(ch.lo, ch.hi))
            logits = scorer(queries)
            scores = ranking_order(model, logits, queries.scenario, sq.items.item, queries)
            if scores is not logits:  # OrdersRanking: the model says which of its mechanisms did it
                why = reordered.setdefault(s_name, set())
                why.update(r for row in ranking_reasons(model, queries.scenario, queries) for r in row)
            for v in views:
                drop = ch.excluded
                if v.sampled is not None:  # keep positives and N random other candidates per query
                    keys = torch.from_numpy(rng.random(scores.shape)).masked_fill(ch.is_pos | ch.excluded, 2.0)
                    keep = torch.zeros_like(ch.is_pos)
                    keep.scatter_(1, keys.topk(min(v.sampled, n_cand), dim=1, largest=False).indices, True)
                    drop = ch.excluded | ~(keep | ch.is_pos)
                masked = scores.masked_fill(drop, float("-inf"))
                v.ranks[ch.p_sel] = ch.ranks(masked)
                if v is views[0]:
                    top[ch.lo:ch.hi] = catalogue[masked.topk(top.shape[1], dim=1).indices.numpy()]
        group = (group_index(activity.of(users, np.full(len(users), s_idx))) if activity is not None
                 else np.full(len(users), -1, dtype=np.int8))
        for i, v in enumerate(views):
            per_query: dict[str, np.ndarray] = {"user": users, "group": group}
            for k in ks:
                at_k = metrics.ranking_from_ranks(v.ranks, pos_q, len(users), k)
                per_query["mrr"] = at_k.pop("mrr")  # no cut-off: the same for every k
                per_query.update({f"{name}@{k}": val for name, val in at_k.items()})
            entry: dict[str, Any] = {name: float(np.mean(val)) for name, val in per_query.items()
                                     if name not in ("user", "group")}
            if i == 0:
                entry.update(_beyond_accuracy(top, ks, catalogue.size, popularity, vectors))
            entry.update({"n_queries": len(users), "n_queries_total": sq.n_total, "n_relevant": len(pos_q),
                          "catalogue": int(n_cand), "ranking_candidates": v.label})
            by[i][s_name] = entry
            per_query_all[i][s_name] = per_query
        tops[s_name] = top
    result: dict[str, Any] = {}
    for i, v in enumerate(views):
        block = _summary(by[i], per_query_all[i], len(catalogue_union), v.label)
        if i == 0:
            if per_query_all[0]:
                width = min(t.shape[1] for t in tops.values())
                block["overall"].update(_beyond_accuracy(np.concatenate([t[:, :width] for t in tops.values()]), ks,
                                                         len(catalogue_union), popularity, vectors))
            result.update(block)
        else:
            result["sampled"] = block
    result["notes"] = {"diversity_features": vector_fields or
                       "none: no categorical item features, diversity not computed"}
    found = sorted(set().union(*reordered.values()))
    if found:
        result["notes"]["ranked_by"] = ("the model's ranking scores, not its click logit: the click probability "
                                        + "; ".join(RANKING_REASON_TEXT.get(r, r) for r in found))
        result["notes"]["ranked_by_scenario"] = {name: sorted(why) for name, why in reordered.items() if why}
    return RankingResult(metrics=result, top_items=tops, seconds=time.perf_counter() - start_time,
                         per_query={v.label: per_query_all[i] for i, v in enumerate(views)})


def _summary(by: dict[str, Any], per_query: dict[str, dict[str, np.ndarray]], catalogue: int,
             label: str) -> dict[str, Any]:
    """One candidate set's metrics: per scenario (given), overall (the mean over every query), by activity."""
    overall: dict[str, Any] = {}
    if per_query:
        names = [k for k in next(iter(per_query.values())) if k not in ("user", "group")]
        overall = {name: float(np.mean(np.concatenate([pq[name] for pq in per_query.values()]))) for name in names}
        overall.update({"n_queries": int(sum(v["n_queries"] for v in by.values())),
                        "n_relevant": int(sum(v["n_relevant"] for v in by.values())),
                        "catalogue": catalogue, "ranking_candidates": label})
    block: dict[str, Any] = {"overall": overall, "by_scenario": by}
    if per_query and all((pq["group"] >= 0).all() for pq in per_query.values()):
        block["by_activity"] = ranking_by_activity(per_query)
    return block


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
